// Repartition topics stop growing: after commits, the records they covered
// are deleted (DeleteRecords), and counts through the topic stay exact, also
// for an instance that starts on the purged topic.
#include <filesystem>
#include <map>
#include <numeric>
#include <thread>

#include <catch2/catch.hpp>

#include "rill/kafka_streams.h"
#include "rill/rill.h"

#include "support/counts.h"
#include "support/eventually.h"
#include "support/http_client.h"
#include "support/kafka_cluster.h"

using namespace rill;
using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kKeys = 30;

// Values name the key they are counted under: group_by repartitions by value.
std::vector<TestRecord> votes(int per_key) {
  std::vector<TestRecord> records;
  for (int round = 0; round < per_key; ++round)
    for (int k = 0; k < kKeys; ++k)
      records.push_back({"voter-" + std::to_string(round),
                         "candidate-" + std::to_string(k),
                         -1,
                         -1,
                         now_ms(),
                         {}});
  return records;
}

Topology count_by_value(const std::string& input, const std::string& output) {
  StreamsBuilder builder;
  builder.stream(input, serdes::string(), serdes::string())
      .group_by([](const std::string&, const std::string& value) { return value; })
      .count(Materialized<std::string, int64_t>::as("counts"))
      .to_stream()
      .to(output, serdes::string(), serdes::int64());
  return builder.build();
}

// The last count of each key in the committed output.
std::map<std::string, int64_t> last_counts(const std::string& output) {
  std::map<std::string, int64_t> counts;
  REQUIRE(read_to_end(
      output,
      [&](const TestRecord& record) {
        counts[*record.key] = serdes::int64()->deserialize(std::string_view(*record.value));
      },
      30s));
  return counts;
}

bool all_counted(const std::string& output, int64_t per_key) {
  const auto counts = last_counts(output);
  if (counts.size() != kKeys) return false;
  for (const auto& [key, count] : counts)
    if (count != per_key) return false;
  return true;
}

}  // namespace

TEST_CASE("commits purge the repartition records they covered, and counts stay exact",
          "[kafka][purge]") {
  const bool exactly_once = GENERATE(false, true);
  INFO((exactly_once ? "exactly_once_v2" : "at_least_once"));
  const std::string app = unique_name("app-purge");
  const std::string input = unique_name("purge-in"), output = unique_name("purge-out");
  const std::string repartition = app + "-counts-repartition";
  create_topic(input, 3);
  create_topic(output, 3);
  const std::string state_dir = temp_state_dir(app);
  StreamsConfig config{
      {"application.id", app},
      {"bootstrap.servers", bootstrap_servers()},
      {"state.dir", state_dir},
      {"commit.interval.ms", "200"},
      {"repartition.purge.interval.ms", "0"},
      {"statestore.cache.max.bytes", "0"},
      {"metrics.address", "127.0.0.1:0"},
      {"processing.guarantee", exactly_once ? "exactly_once_v2" : "at_least_once"}};

  produce(input, votes(100));
  {
    KafkaStreams streams(count_by_value(input, output), config);
    streams.start();
    REQUIRE(eventually([&] { return all_counted(output, 100); }, 90s));
    // Every record of the repartition topic is processed and committed: the
    // purges that follow the commits delete them all.
    std::vector<int64_t> starts, ends;
    const bool purged = eventually(
        [&] {
          starts = start_offsets_by_partition(repartition);
          ends = end_offsets_by_partition(repartition);
          return starts == ends;
        },
        60s);
    INFO("log starts " << ::Catch::Detail::stringify(starts) << ", ends "
                       << ::Catch::Detail::stringify(ends));
    REQUIRE(purged);
    CHECK(std::accumulate(ends.begin(), ends.end(), int64_t{0}) >= kKeys * 100);

    // The instance takes the broker's answer at its next turn.
    std::string body;
    const bool counted = eventually(
        [&] {
          body = http_get(streams.metrics_port(), "/metrics").body;
          return metric_sum(body, "rill_repartition_purges_total", {{"outcome", "ok"}}) > 0 &&
                 metric_sum(body, "rill_repartition_log_start_offset", {{"topic", repartition}}) ==
                     static_cast<double>(std::accumulate(ends.begin(), ends.end(), int64_t{0}));
        },
        30s);
    INFO(body);
    CHECK(counted);
    REQUIRE(streams.close(30s));
  }

  // A new instance resumes from the committed offsets on the purged topic.
  produce(input, votes(50));
  KafkaStreams streams(count_by_value(input, output), config);
  streams.start();
  CHECK(eventually([&] { return all_counted(output, 150); }, 90s));
  CHECK(eventually(
      [&] {
        return start_offsets_by_partition(repartition) == end_offsets_by_partition(repartition);
      },
      60s));
  REQUIRE(streams.close(30s));
  std::filesystem::remove_all(state_dir);
}
