// Runtime behaviours on the real broker: backpressure, punctuation by wall-clock
// time, commit requests, and the uncaught exception handler.
#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "rill/kafka_streams.h"
#include "rill/rill.h"

#include "support/eventually.h"
#include "support/kafka_cluster.h"

using namespace rill;
using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

StreamsConfig config_for(const std::string& application_id) {
  return StreamsConfig{{"application.id", application_id},
                       {"bootstrap.servers", bootstrap_servers()},
                       {"commit.interval.ms", "1000"},
                       {"num.stream.threads", "2"},
                       {"source.topic.wait.ms", "5000"}};
}

std::vector<TestRecord> records(int count, int partitions) {
  // Recent timestamps: the broker deletes records older than its retention.
  const int64_t base = now_ms();
  std::vector<TestRecord> out;
  for (int i = 0; i < count; ++i)
    out.push_back({"k" + std::to_string(i), std::to_string(i), i % partitions, -1, base + i, {}});
  return out;
}

}  // namespace

TEST_CASE("a slow task holds back fetching of its partitions and loses no record",
          "[kafka][runtime][backpressure]") {
  const std::string input = unique_name("slow-in"), output = unique_name("slow-out");
  create_topic(input, 2);
  create_topic(output, 2);
  produce(input, records(3000, 2));

  StreamsBuilder builder;
  builder.stream(input, serdes::string(), serdes::string())
      .peek([](const std::string&, const std::string&) {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      })
      .to(output);
  auto config = config_for(unique_name("app-slow"));
  config.set("buffered.records.per.partition", "20");
  KafkaStreams streams(builder.build(), config);
  streams.start();
  auto out = consume(output, 3000, 90s);
  auto stats = streams.stats();
  REQUIRE(streams.close(30s));

  CHECK(out.size() == 3000);
  std::set<std::string> values;
  for (const auto& record : out) values.insert(*record.value);
  CHECK(values.size() == 3000);
  CHECK(stats.partition_pauses > 0);
  CHECK(stats.processed_records == 3000);
}

namespace {

// Emits a "tick" record on each wall-clock punctuation and asks for a commit
// after every record.
class Ticker : public Processor<std::string, std::string> {
 public:
  void init(ProcessorContext<std::string, std::string>& context) override {
    context_ = &context;
    context.schedule(100ms, PunctuationType::kWallClockTime, [this](int64_t time) {
      context_->forward({"tick", std::to_string(time), time, {}});
    });
  }
  void process(const Record<std::string, std::string>& record) override {
    context_->forward(record);
    context_->commit();
  }

 private:
  ProcessorContext<std::string, std::string>* context_ = nullptr;
};

}  // namespace

TEST_CASE("wall-clock punctuations fire in the running application and commit() commits",
          "[kafka][runtime][punctuation]") {
  const std::string input = unique_name("tick-in"), output = unique_name("tick-out");
  create_topic(input, 1);
  create_topic(output, 1);
  produce(input, records(5, 1));

  Topology topology;
  topology.add_source<std::string, std::string>("source", {input})
      .add_processor("ticker", [] { return std::make_unique<Ticker>(); }, {"source"})
      .add_sink<std::string, std::string>("sink", output, {"ticker"});
  auto config = config_for(unique_name("app-tick"));
  config.set("commit.interval.ms", "600000");  // only requested commits happen
  KafkaStreams streams(std::move(topology), config);
  streams.start();
  auto out = consume(output, 10, 60s);
  REQUIRE(streams.close(30s));

  int ticks = 0, inputs = 0;
  for (const auto& record : out) (*record.key == "tick" ? ticks : inputs)++;
  CHECK(inputs == 5);
  CHECK(ticks >= 5);
  CHECK(streams.stats().commits >= 1);
}

namespace {

// 400 records in on two partitions, copied to `output` by a processor that
// throws once, at the record "250".
Topology fails_once_at_250(const std::string& input, const std::string& output) {
  create_topic(input, 2);
  create_topic(output, 2);
  produce(input, records(400, 2));
  static std::atomic<bool> failed_once{false};
  failed_once = false;
  StreamsBuilder builder;
  builder.stream(input, serdes::string(), serdes::string())
      .map_values([](const std::string& value) {
        if (value == "250" && !failed_once.exchange(true))
          throw std::runtime_error("transient failure at 250");
        return value;
      })
      .to(output);
  return builder.build();
}

}  // namespace

TEST_CASE("the uncaught exception handler can restart a failed task from its last commit",
          "[kafka][runtime][errors]") {
  const std::string input = unique_name("flaky-in"), output = unique_name("flaky-out");
  KafkaStreams streams(fails_once_at_250(input, output), config_for(unique_name("app-flaky")));
  std::atomic<int> handled{0};
  std::string seen_error;
  streams.set_uncaught_exception_handler([&](const std::exception& error) {
    seen_error = error.what();
    ++handled;
    return KafkaStreams::ExceptionResponse::kReplaceThread;
  });
  streams.start();
  std::set<std::string> values;
  for (int attempt = 0; attempt < 60 && values.size() < 400; ++attempt) {
    values.clear();
    for (const auto& record : consume(output, 1u << 30, 1s)) values.insert(*record.value);
  }
  REQUIRE(streams.close(30s));
  CHECK(values.size() == 400);
  CHECK(handled == 1);
  CHECK(seen_error.find("transient failure at 250") != std::string::npos);
  CHECK(seen_error.find("topic " + input) != std::string::npos);
  CHECK(streams.state() == KafkaStreams::State::kNotRunning);
}

TEST_CASE("under exactly_once_v2 a restarted task's aborted outputs never show",
          "[kafka][runtime][errors][exactly-once]") {
  const std::string input = unique_name("flaky-eos-in"), output = unique_name("flaky-eos-out");
  auto config = config_for(unique_name("app-flaky-eos"));
  config.set("processing.guarantee", "exactly_once_v2");
  config.set("commit.interval.ms", "100");
  KafkaStreams streams(fails_once_at_250(input, output), config);
  std::atomic<int> handled{0};
  streams.set_uncaught_exception_handler([&](const std::exception&) {
    ++handled;
    return KafkaStreams::ExceptionResponse::kReplaceThread;
  });
  streams.start();
  std::vector<TestRecord> out;
  for (int attempt = 0; attempt < 60 && out.size() < 400; ++attempt)
    out = consume(output, 1u << 30, 1s);
  const auto stats = streams.stats();
  REQUIRE(streams.close(30s));
  // Records before 250 on its partition were output in the transaction the
  // failure aborted, then output again: read_committed sees each once.
  std::map<std::string, int> seen;
  for (const auto& record : out) ++seen[*record.value];
  CHECK(out.size() == 400);
  CHECK(seen.size() == 400);
  CHECK(handled == 1);
  CHECK(stats.aborted_transactions >= 1);
}

TEST_CASE("without a handler a failed task shuts the instance down in ERROR",
          "[kafka][runtime][errors]") {
  const std::string input = unique_name("broken-in"), output = unique_name("broken-out");
  create_topic(input, 1);
  create_topic(output, 1);
  produce(input, records(10, 1));
  StreamsBuilder builder;
  builder.stream(input, serdes::string(), serdes::string())
      .map_values([](const std::string& value) -> std::string {
        if (value == "3") throw std::runtime_error("cannot handle 3");
        return value;
      })
      .to(output);
  KafkaStreams streams(builder.build(), config_for(unique_name("app-broken")));
  streams.start();
  REQUIRE(streams.wait_for_stop(60s));
  CHECK(streams.state() == KafkaStreams::State::kError);
  CHECK_THAT(streams.error(),
             Catch::Contains("cannot handle 3") && Catch::Contains("partition 0, offset 3"));
}

TEST_CASE("a running instance folds each window's updates in the record cache until it commits",
          "[kafka][runtime][windows][cache]") {
  const std::string input = unique_name("fold-in"), output = unique_name("fold-out");
  create_topic(input, 1);
  create_topic(output, 1);
  // 2 keys in 4 one-minute windows, 125 records in each of the 8, all in the
  // topic before the instance starts, so that most land between two commits.
  const int64_t base = now_ms() / 60'000 * 60'000 - 10 * 60'000;
  std::vector<TestRecord> in;
  for (int i = 0; i < 1000; ++i)
    in.push_back({i % 2 == 0 ? "a" : "b", "v", 0, -1, base + (i / 2 % 4) * 60'000 + i, {}});
  produce(input, in);
  StreamsBuilder builder;
  builder.stream(input, serdes::string(), serdes::string())
      .group_by_key()
      .windowed_by(TimeWindows::of_size_and_grace(1min, 1h))
      .count()
      .to_stream()
      .to(output);
  KafkaStreams streams(builder.build(), config_for(unique_name("app-fold")));
  streams.start();
  // The output key is the record key and the window start (8 bytes), the
  // value the count (8 bytes), both big-endian.
  auto be64 = [](std::string_view bytes) {
    uint64_t value = 0;
    for (char c : bytes) value = (value << 8) | static_cast<unsigned char>(c);
    return static_cast<int64_t>(value);
  };
  std::map<std::pair<std::string, int64_t>, int64_t> latest;
  std::size_t outputs = 0;
  const bool complete = eventually(
      [&] {
        latest.clear();
        outputs = 0;
        read_to_end(
            output,
            [&](const TestRecord& record) {
              ++outputs;
              const std::string_view key = record.key.value_or("");
              if (key.size() < 8) return;
              latest[{std::string(key.substr(0, key.size() - 8)),
                      be64(key.substr(key.size() - 8))}] = be64(record.value.value_or(""));
            },
            10s);
        return latest.size() == 8 &&
               std::all_of(latest.begin(), latest.end(),
                           [](const auto& window) { return window.second == 125; });
      },
      60s, 200ms);
  REQUIRE(streams.close(30s));
  CHECK(complete);
  for (int window = 0; window < 4; ++window)
    for (const char* key : {"a", "b"}) CHECK(latest[{key, base + window * 60'000}] == 125);
  // Without the cache, 1,000 records would have made 1,000 outputs.
  CHECK(outputs >= 8);
  CHECK(outputs <= 200);
}

TEST_CASE("records later than a window's grace are dropped and counted by the running instance",
          "[kafka][runtime][windows]") {
  const std::string input = unique_name("late-in"), output = unique_name("late-out");
  create_topic(input, 1);
  create_topic(output, 1);
  StreamsBuilder builder;
  builder.stream(input, serdes::string(), serdes::string())
      .group_by_key()
      .windowed_by(TimeWindows::of_size_and_grace(1min, 10s))
      .count()
      .to_stream()
      .to(output);
  auto config = config_for(unique_name("app-late"));
  config.set("statestore.cache.max.bytes", "0");
  KafkaStreams streams(builder.build(), config);
  streams.start();
  // Stream time moves to base + 5 min; the window [base, base + 1 min)
  // closed at base + 1 min + 10 s, so the last two records are late.
  const int64_t base = now_ms() / 60'000 * 60'000 - 10 * 60'000;
  produce(input, {{"k", "1", 0, -1, base, {}},
                  {"k", "2", 0, -1, base + 5 * 60'000, {}},
                  {"k", "3", 0, -1, base + 1000, {}},
                  {"k", "4", 0, -1, base + 59'000, {}},
                  {"k", "5", 0, -1, base + 5 * 60'000 + 1, {}}});
  auto out = consume(output, 3, 60s);
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (streams.stats().processed_records < 5 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  const auto stats = streams.stats();
  REQUIRE(streams.close(30s));
  CHECK(stats.processed_records == 5);
  CHECK(stats.dropped_records == 2);
  CHECK(out.size() == 3);  // counts 1 (first window), 1 and 2 (second window)
}
