// A versioned store in a running application on the broker: as-of queries
// answer from its versions across updates, deletions and out-of-order puts,
// and answer the same after the store is restored from its changelog by an
// instance that starts without local state.
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/kafka_streams.h"
#include "rill/rill.h"

#include "support/counts.h"
#include "support/kafka_cluster.h"

using namespace rill;
using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

using Prices = VersionedKeyValueStore<std::string, std::string>;

std::string describe(const std::optional<VersionedRecord<std::string>>& found) {
  if (!found) return "none";
  return found->value + " " + std::to_string(found->timestamp) + ".." +
         (found->valid_to ? std::to_string(*found->valid_to) : "latest");
}

// Each record of "versions" puts its value as its key's version at its
// timestamp; the value "-" deletes.
class PutVersion final : public Processor<std::string, std::string, std::string, std::string> {
 public:
  void init(ProcessorContext<std::string, std::string>& context) override {
    store_ = &context.state_store<Prices>("prices");
  }
  void process(const Record<std::string, std::string>& record) override {
    if (record.value == "-")
      store_->remove(record.key, record.timestamp);
    else
      store_->put(record.key, record.value, record.timestamp);
  }

 private:
  Prices* store_ = nullptr;
};

// Each record of "queries" asks for its key's version as of the time in its
// value; the answer goes out as "value from..to" (to: "latest"), or "none".
class AnswerAsOf final : public Processor<std::string, std::string, std::string, std::string> {
 public:
  void init(ProcessorContext<std::string, std::string>& context) override {
    context_ = &context;
    store_ = &context.state_store<Prices>("prices");
  }
  void process(const Record<std::string, std::string>& record) override {
    context_->forward({record.key + "@" + record.value,
                       describe(store_->get(record.key, std::stoll(record.value))),
                       record.timestamp,
                       {}});
  }

 private:
  ProcessorContext<std::string, std::string>* context_ = nullptr;
  Prices* store_ = nullptr;
};

Topology prices_topology(const std::string& versions, const std::string& queries,
                         const std::string& answers) {
  Topology topology;
  topology.add_source<std::string, std::string>("versions", {versions})
      .add_source<std::string, std::string>("queries", {queries})
      .add_processor("put", [] { return std::make_unique<PutVersion>(); }, {"versions"})
      .add_processor("answer", [] { return std::make_unique<AnswerAsOf>(); }, {"queries"})
      .add_state_store(
          Stores::versioned_key_value<std::string, std::string>("prices", std::chrono::hours(48)),
          {"put", "answer"})
      .add_sink<std::string, std::string>("answers", answers, {"answer"});
  return topology;
}

// The version of the model: the event with the latest timestamp at or before
// `as_of` (the later one of equal timestamps), until the next later event.
std::string model_answer(const std::vector<std::pair<int64_t, std::string>>& events,
                         int64_t as_of) {
  std::optional<std::pair<int64_t, std::string>> found;
  for (const auto& event : events)
    if (event.first <= as_of && (!found || event.first >= found->first)) found = event;
  if (!found || found->second == "-") return "none";
  std::optional<int64_t> to;
  for (const auto& event : events)
    if (event.first > found->first && (!to || event.first < *to)) to = event.first;
  return found->second + " " + std::to_string(found->first) + ".." +
         (to ? std::to_string(*to) : "latest");
}

}  // namespace

TEST_CASE(
    "a versioned store answers as-of queries, and the same after a restore from its changelog",
    "[kafka][versioned-store]") {
  const std::string app = unique_name("app-versioned");
  const std::string versions = unique_name("versions"), queries = unique_name("queries"),
                    answers = unique_name("answers");
  create_topic(versions, 2);
  create_topic(queries, 2);
  create_topic(answers, 1);
  const std::string state_dir = temp_state_dir(app);
  StreamsConfig config{{"application.id", app},
                       {"bootstrap.servers", bootstrap_servers()},
                       {"state.dir", state_dir},
                       {"commit.interval.ms", "200"}};

  // 12 keys, 8 events each at times out of order, deletions among them.
  const int64_t base = now_ms() - 3600'000;
  std::map<std::string, std::vector<std::pair<int64_t, std::string>>> events;
  std::vector<TestRecord> version_records;
  const int offsets[] = {0, 40, 20, 60, 10, 50, 70, 30};
  for (int round = 0; round < 8; ++round) {
    for (int k = 0; k < 12; ++k) {
      const std::string key = "product-" + std::to_string(k);
      const int64_t at = base + offsets[round] * 1000 + k;
      const std::string value = (round + k) % 5 == 4 ? "-" : "price-" + std::to_string(round);
      events[key].emplace_back(at, value);
      version_records.push_back({key, value, -1, -1, at, {}});
    }
  }
  produce(versions, version_records);
  // Queries every 5 s from before the first event to after the last.
  std::vector<TestRecord> query_records;
  std::map<std::string, std::string> expected;
  for (int k = 0; k < 12; ++k) {
    const std::string key = "product-" + std::to_string(k);
    for (int second = -5; second <= 80; second += 5) {
      const int64_t as_of = base + second * 1000 + 6;
      query_records.push_back({key, std::to_string(as_of), -1, -1, now_ms(), {}});
      expected[key + "@" + std::to_string(as_of)] = model_answer(events[key], as_of);
    }
  }
  auto answered = [&](std::size_t skip) {
    std::map<std::string, std::string> got;
    std::size_t seen = 0;
    REQUIRE(read_to_end(
        answers,
        [&](const TestRecord& record) {
          if (seen++ >= skip) got[*record.key] = *record.value;
        },
        30s));
    return got;
  };
  auto await_answers = [&](std::size_t total) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (end_offsets(answers) < static_cast<int64_t>(total) &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(100ms);
    REQUIRE(end_offsets(answers) == static_cast<int64_t>(total));
  };

  {
    KafkaStreams streams(prices_topology(versions, queries, answers), config);
    streams.start();
    // Every version is stored before a query asks.
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (committed_offsets(app, versions) < static_cast<int64_t>(version_records.size()) &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(100ms);
    REQUIRE(committed_offsets(app, versions) == static_cast<int64_t>(version_records.size()));
    produce(queries, query_records);
    await_answers(query_records.size());
    CHECK(answered(0) == expected);
    REQUIRE(streams.close(30s));
    streams.cleanup();
  }

  // Without local state: the store comes back from its changelog.
  KafkaStreams streams(prices_topology(versions, queries, answers), config);
  streams.start();
  produce(queries, query_records);
  await_answers(2 * query_records.size());
  CHECK(answered(query_records.size()) == expected);
  CHECK(streams.stats().restored_records > 0);
  REQUIRE(streams.close(30s));
  std::filesystem::remove_all(state_dir);
}
