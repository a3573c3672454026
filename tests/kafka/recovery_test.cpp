// What the runtime does when the cluster refuses it, on the real broker: a
// close after a failed transaction leaves no checkpoint, consumer lag reaches
// zero on transactional topics, internal topics take the "topic." configs,
// a record too large for every topic still leaves a trace instead of
// stopping the application, and an output topic that does not exist stops it
// after task.timeout.ms without replaying the input in a loop until then.
// Broker faults themselves are in tests/faults/.
#include <filesystem>
#include <map>
#include <string>
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
  return StreamsConfig{
      {"application.id", application_id},
      {"bootstrap.servers", bootstrap_servers()},
      {"source.topic.wait.ms", "5000"},
      {"state.dir", (std::filesystem::temp_directory_path() / unique_name("rill-state")).string()}};
}

// The latest count of each key in a count's output topic.
std::map<std::string, int64_t> latest_counts(const std::string& output) {
  std::map<std::string, int64_t> counts;
  for (const auto& record : consume(output, 1u << 30, 3s)) {
    REQUIRE(record.value->size() == 8);
    int64_t count = 0;
    for (unsigned char byte : *record.value) count = (count << 8) | byte;
    counts[*record.key] = count;
  }
  return counts;
}

}  // namespace

TEST_CASE(
    "under exactly_once_v2 an instance that stops in ERROR keeps no checkpoint of "
    "uncommitted state, so a restart counts every record once",
    "[kafka][recovery][exactly-once]") {
  const std::string input = unique_name("ckpt-in"), output = unique_name("ckpt-counts"),
                    narrow = unique_name("ckpt-narrow");
  create_topic(input, 1);
  create_topic(output, 1);
  // The broker refuses records over 2000 bytes here: not a fault that a retry
  // cures, and under exactly-once not one to skip either (the transaction
  // with it aborts), so the instance stops in ERROR.
  create_topic(narrow, 1, {{"max.message.bytes", "2000"}});
  std::vector<TestRecord> records;
  const int64_t base = now_ms();
  for (int i = 0; i < 50; ++i)
    records.push_back({"k" + std::to_string(i % 5), "v", 0, -1, base + i, {}});
  records.push_back({"big", "big", 0, -1, base + 50, {}});
  produce(input, records);

  // The second run is the fixed application: its output fits.
  auto topology = [&](std::size_t output_bytes) {
    StreamsBuilder builder;
    auto lines = builder.stream(input, serdes::string(), serdes::string());
    lines.filter([](const std::string&, const std::string& value) { return value == "big"; })
        .map_values([output_bytes](const std::string&) { return std::string(output_bytes, 'x'); })
        .to(narrow);
    lines.group_by_key()
        .count(Materialized<std::string, int64_t>::as("counts"))
        .to_stream()
        .to(output, serdes::string(), serdes::int64());
    return builder.build();
  };
  const std::string app = unique_name("app-ckpt");
  auto config = config_for(app);
  config.set("processing.guarantee", "exactly_once_v2");
  config.set("commit.interval.ms", "2000");
  // Every update goes to the store and its changelog at once, before the
  // broker's refusal makes the transaction abortable.
  config.set("statestore.cache.max.bytes", "0");
  {
    KafkaStreams streams(topology(5000), config);
    streams.start();
    REQUIRE(streams.wait_for_stop(90s));
    CHECK(streams.state() == KafkaStreams::State::kError);
    CHECK_THAT(streams.error(), Catch::Contains(narrow));
  }
  CHECK_FALSE(std::filesystem::exists(std::filesystem::path(config.get_string("state.dir")) / app /
                                      "0_0" / ".checkpoint"));
  // The stores took the counts of the aborted transaction; trusting them
  // would count those records twice when they are read again.
  KafkaStreams streams(topology(100), config);
  streams.start();
  const std::map<std::string, int64_t> expected{{"k0", 10}, {"k1", 10}, {"k2", 10},
                                                {"k3", 10}, {"k4", 10}, {"big", 1}};
  CHECK(eventually([&] {
    auto counts = latest_counts(output);
    return counts.size() == expected.size() &&
           std::all_of(counts.begin(), counts.end(),
                       [&](auto& c) { return c.second >= expected.at(c.first); });
  }));
  REQUIRE(streams.close(30s));
  CHECK(latest_counts(output) == expected);
}

TEST_CASE("under exactly_once_v2 consumer lag of input and repartition topics reaches zero",
          "[kafka][recovery][exactly-once]") {
  const std::string input = unique_name("lag-in"), output = unique_name("lag-out");
  const std::string app = unique_name("app-lag");
  create_topic(input, 3);
  create_topic(output, 3);
  std::vector<TestRecord> records;
  const int64_t base = now_ms();
  for (int i = 0; i < 300; ++i)
    records.push_back({"k" + std::to_string(i), std::to_string(i % 7), -1, -1, base + i, {}});
  produce(input, records);

  StreamsBuilder builder;
  builder.stream(input, serdes::string(), serdes::string())
      .group_by([](const std::string&, const std::string& value) { return value; },
                Grouped<std::string, std::string>{"by-value"})
      .count(Materialized<std::string, int64_t>::as("counts"))
      .to_stream()
      .to(output, serdes::string(), serdes::int64());
  auto config = config_for(app);
  config.set("processing.guarantee", "exactly_once_v2");
  KafkaStreams streams(builder.build(), config);
  streams.start();
  const std::string repartition = app + "-by-value-repartition";
  // Every record read from the repartition topic came in a transaction whose
  // commit marker follows it: the committed offsets must pass the markers.
  CHECK(eventually([&] {
    return streams.stats().processed_records >= 600 &&
           committed_offsets(app, input) == end_offsets(input) &&
           committed_offsets(app, repartition) == end_offsets(repartition);
  }));
  INFO("repartition committed " << committed_offsets(app, repartition) << " of "
                                << end_offsets(repartition));
  CHECK(committed_offsets(app, repartition) == end_offsets(repartition));
  REQUIRE(streams.close(30s));
}

TEST_CASE("internal topics are created with the application's topic. configs",
          "[kafka][recovery][config]") {
  const std::string input = unique_name("topiccfg-in"), output = unique_name("topiccfg-out");
  const std::string app = unique_name("app-topiccfg");
  create_topic(input, 2);
  create_topic(output, 2);
  StreamsBuilder builder;
  builder.stream(input, serdes::string(), serdes::string())
      .group_by([](const std::string&, const std::string& value) { return value; },
                Grouped<std::string, std::string>{"rekey"})
      .count(Materialized<std::string, int64_t>::as("counts"))
      .to_stream()
      .to(output, serdes::string(), serdes::int64());
  auto config = config_for(app);
  config.set("topic.min.insync.replicas", "1");
  config.set("topic.segment.bytes", "10485760");
  KafkaStreams streams(builder.build(), config);
  streams.start();
  REQUIRE(eventually([&] { return streams.state() == KafkaStreams::State::kRunning; }));
  REQUIRE(streams.close(30s));

  auto changelog = topic_configs(app + "-counts-changelog");
  CHECK(changelog["cleanup.policy"] == "compact");
  CHECK(changelog["min.insync.replicas"] == "1");
  CHECK(changelog["segment.bytes"] == "10485760");
  auto repartition = topic_configs(app + "-rekey-repartition");
  CHECK(repartition["cleanup.policy"] == "delete");
  CHECK(repartition["retention.ms"] == "-1");
  CHECK(repartition["segment.bytes"] == "10485760");
}

TEST_CASE(
    "a record too large for its output and the dead-letter topic is dead-lettered cut "
    "to its first bytes, and processing goes on",
    "[kafka][recovery][errors]") {
  const std::string input = unique_name("large-in"), output = unique_name("large-out"),
                    dead_letters = unique_name("large-dlq");
  create_topic(input, 1, {{"max.message.bytes", "4000000"}});
  create_topic(output, 1);
  create_topic(dead_letters, 1);
  const std::string large(1'500'000, 'L');
  const int64_t base = now_ms();
  produce(input, {{"a", "small-1", 0, -1, base, {}},
                  {"b", large, 0, -1, base + 1, {{"trace", "t-1"}}},
                  {"c", "small-2", 0, -1, base + 2, {}}});

  StreamsBuilder builder;
  builder.stream(input, serdes::string(), serdes::string()).to(output);
  auto config = config_for(unique_name("app-large"));
  config.set("commit.interval.ms", "200");
  config.set("processing.exception.handler", "dead-letter");
  config.set("errors.dead.letter.queue.topic.name", dead_letters);
  KafkaStreams streams(builder.build(), config);
  streams.start();
  auto out = consume(output, 2, 60s);
  auto dead = consume(dead_letters, 1, 30s);
  CHECK(streams.state() == KafkaStreams::State::kRunning);
  REQUIRE(streams.close(30s));

  REQUIRE(out.size() == 2);
  CHECK(*out[0].value == "small-1");
  CHECK(*out[1].value == "small-2");
  REQUIRE(dead.size() == 1);
  CHECK(*dead[0].key == "b");
  CHECK(dead[0].value->size() == 64 * 1024);
  std::map<std::string, std::string> headers(dead[0].headers.begin(), dead[0].headers.end());
  CHECK(headers["__rill.errors.truncated"] == "true");
  CHECK(headers["__rill.errors.value.size"] == "1500000");
  CHECK(headers["__streams.errors.offset"] == "1");
  CHECK(headers["trace"] == "t-1");
}

TEST_CASE(
    "an output topic that does not exist stops the instance after task.timeout.ms, naming the "
    "topic, with retries that wait longer each time",
    "[kafka][recovery][errors]") {
  const std::string input = unique_name("nosink-in"), missing = unique_name("nosink-out");
  create_topic(input, 2);
  std::vector<TestRecord> records;
  const int64_t base = now_ms();
  for (int i = 0; i < 200; ++i)
    records.push_back({"k" + std::to_string(i), "v", -1, -1, base + i, {}});
  produce(input, records);

  StreamsBuilder builder;
  builder.stream(input, serdes::string(), serdes::string()).to(missing);
  auto config = config_for(unique_name("app-nosink"));
  config.set("task.timeout.ms", "8000");
  // Records queued for the topic are refused when a commit flushes them.
  config.set("commit.interval.ms", "1000");
  // librdkafka refuses records for a topic the cluster does not know once
  // this long has passed since the producer first asked for it.
  config.set("producer.topic.metadata.propagation.max.ms", "1000");
  KafkaStreams streams(builder.build(), config);
  streams.start();
  REQUIRE(streams.wait_for_stop(90s));
  CHECK(streams.state() == KafkaStreams::State::kError);
  CHECK_THAT(streams.error(), Catch::Contains(missing) && Catch::Contains("task.timeout.ms"));
  // Each retry processes the records since the last commit again. Retried
  // at once, the tasks went back about 200 times in these 8 s; waiting twice
  // as long each time, from 100 ms up to 5 s, makes about 8.
  const KafkaStreams::Stats stats = streams.stats();
  INFO("tasks went back to the last commit " << stats.task_rewinds << " times");
  CHECK(stats.task_rewinds >= 2);
  CHECK(stats.task_rewinds <= 20);
}
