// A regrouped table on the real broker: sums per group stay right as rows are
// updated, move to another group and are deleted, with the changes going
// through the repartition topic in Kafka Streams' Change layout. The output
// is read back with an independent consumer.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/kafka_streams.h"
#include "rill/rill.h"

#include "support/kafka_cluster.h"

using namespace rill;
using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

int64_t read_int64(const std::string& bytes) {
  uint64_t bits = 0;
  for (unsigned char c : bytes) bits = (bits << 8) | c;
  return static_cast<int64_t>(bits);
}

}  // namespace

TEST_CASE("a regrouped table's sums stay right through updates, moves and deletes",
          "[kafka][ktable][group-by]") {
  const std::string input = unique_name("accounts"), output = unique_name("region-sums");
  const std::string application_id = unique_name("app-regroup");
  create_topic(input, 3);
  create_topic(output, 2);

  // Rows are "<region>:<balance>", keyed by account; what each region sums
  // once every change is in.
  std::vector<TestRecord> changes;
  std::map<std::string, std::string> rows;
  const int64_t base = now_ms();
  auto change = [&](const std::string& account, std::optional<std::string> row) {
    changes.push_back({account, row, -1, -1, base + static_cast<int64_t>(changes.size()), {}});
    if (row)
      rows[account] = *row;
    else
      rows.erase(account);
  };
  const std::vector<std::string> regions = {"east", "west", "north"};
  for (int i = 0; i < 30; ++i)
    change("acct-" + std::to_string(i), regions[i % 3] + ":" + std::to_string(i + 1));
  for (int i = 0; i < 30; ++i) {  // even accounts move, odd ones change in place
    const std::string& region = regions[(i + (i % 2 == 0 ? 1 : 0)) % 3];
    change("acct-" + std::to_string(i), region + ":" + std::to_string(2 * i + 3));
  }
  for (int i = 0; i < 30; i += 4) change("acct-" + std::to_string(i), std::nullopt);
  std::map<std::string, int64_t> expected = {{"east", 0}, {"west", 0}, {"north", 0}};
  for (const auto& [account, row] : rows)
    expected[row.substr(0, row.find(':'))] += std::stoll(row.substr(row.find(':') + 1));

  StreamsBuilder builder;
  builder.table(input, serdes::string(), serdes::string())
      .group_by([](const std::string&, const std::string& row) {
        const auto colon = row.find(':');
        return KeyValue<std::string, int64_t>{row.substr(0, colon),
                                              std::stoll(row.substr(colon + 1))};
      })
      .reduce(std::plus<>(), std::minus<>(), Materialized<std::string, int64_t>::as("sums"))
      .to_stream()
      .to(output, serdes::string(), serdes::int64());
  StreamsConfig config{{"application.id", application_id},
                       {"bootstrap.servers", bootstrap_servers()},
                       {"commit.interval.ms", "500"},
                       // Every change travels, rather than the latest per key.
                       {"statestore.cache.max.bytes", "0"},
                       {"source.topic.wait.ms", "10000"}};
  KafkaStreams streams(builder.build(), config);
  streams.start();
  produce(input, changes);

  // The latest sum per region, read until every region shows its expected one.
  std::map<std::string, int64_t> latest;
  std::size_t updates = 0;
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (latest != expected && std::chrono::steady_clock::now() < deadline) {
    latest.clear();
    updates = 0;
    REQUIRE(read_to_end(
        output,
        [&](const TestRecord& r) {
          REQUIRE(r.key);
          REQUIRE(r.value);
          latest[*r.key] = read_int64(*r.value);
          ++updates;
        },
        30s));
    if (latest != expected) std::this_thread::sleep_for(500ms);
  }
  REQUIRE(streams.close(30s));
  CHECK(latest == expected);
  CHECK(updates >= 3);

  // The changes went through "<application.id>-<store>-repartition": 30
  // inserts (new value only), 15 moves (old only, then new only), 15 changes
  // in place (both values in one record) and 8 deletes (old only). Records are
  // purged once committed; those left each end in Kafka Streams' encoding flag.
  const std::string repartition = application_id + "-sums-repartition";
  CHECK(end_offsets(repartition) >= 30 + 2 * 15 + 15 + 8);
  REQUIRE(read_to_end(
      repartition,
      [&](const TestRecord& r) {
        REQUIRE(r.value);
        REQUIRE(!r.value->empty());
        CHECK(r.value->back() <= 2);
      },
      30s));
}
