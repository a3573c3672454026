// KTable::group_by and KGroupedTable through TopologyTestDriver: sums, counts,
// reductions and aggregations that stay right as rows change, move to another
// group and are deleted, record for record as Kafka Streams emits them; the
// Change<V> layout on the repartition topic; KStream::to_table.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/rill.h"
#include "rill/test_driver.h"

using namespace rill;

namespace {

using Results = std::vector<KeyValue<std::string, std::optional<int64_t>>>;

StreamsConfig config_with_cache(const std::string& cache_bytes) {
  return StreamsConfig{{"application.id", "app"}, {"statestore.cache.max.bytes", cache_bytes}};
}

// Rows are "<region>:<amount>"; a row's group is its region.
KeyValue<std::string, int64_t> region_and_amount(const std::string&, const std::string& row) {
  const auto colon = row.find(':');
  return {row.substr(0, colon), std::stoll(row.substr(colon + 1))};
}

// The updates Kafka Streams' KGroupedTable emits for these rows, with no
// record cache: a change within a group is one update; a move subtracts from
// the old group, then adds to the new; a delete only subtracts.
void pipe_account_changes(
    TopologyTestDriver::InputTopic<std::string, std::optional<std::string>>& in) {
  in.pipe_input("a", "east:5", 1);
  in.pipe_input("b", "east:3", 2);
  in.pipe_input("a", "east:7", 3);      // same group: east 8 - 5 + 7
  in.pipe_input("a", "west:7", 4);      // moves: east 10 - 7, then west 0 + 7
  in.pipe_input("b", std::nullopt, 5);  // deleted: east 3 - 3
  in.pipe_input("c", std::nullopt, 6);  // deletes nothing
}

Results read_results(TopologyTestDriver::OutputTopic<std::string, std::optional<int64_t>>& out) {
  Results results;
  for (const auto& r : out.read_records_to_list()) results.push_back({r.key, r.value});
  return results;
}

struct Driven {
  std::optional<TopologyTestDriver> driver;
  std::optional<TopologyTestDriver::InputTopic<std::string, std::optional<std::string>>> in;
  std::optional<TopologyTestDriver::OutputTopic<std::string, std::optional<int64_t>>> out;
};

// accounts -> group_by region -> aggregation -> "out".
template <class Aggregate>
void drive(Driven& d, const std::string& cache, Aggregate aggregate) {
  StreamsBuilder builder;
  auto grouped =
      builder.table("accounts", serdes::string(), serdes::string()).group_by(region_and_amount);
  aggregate(grouped).to_stream().to("out", serdes::string(), serdes::int64());
  d.driver.emplace(builder.build(), config_with_cache(cache));
  d.in.emplace(d.driver->create_input_topic("accounts", serdes::string(),
                                            serdes::nullable(serdes::string())));
  d.out.emplace(
      d.driver->create_output_topic("out", serdes::string(), serdes::nullable(serdes::int64())));
  pipe_account_changes(*d.in);
}

}  // namespace

TEST_CASE("KGroupedTable reduce subtracts old rows and adds new ones", "[unit][kgrouped-table]") {
  Driven d;
  drive(d, "0", [](const KGroupedTable<std::string, int64_t>& g) {
    return g.reduce(std::plus<>(), std::minus<>(),
                    Materialized<std::string, int64_t>::as("sum-per-region"));
  });
  CHECK(read_results(*d.out) ==
        Results{{"east", 5}, {"east", 8}, {"east", 10}, {"east", 3}, {"west", 7}, {"east", 0}});
  auto& store = d.driver->get_timestamped_key_value_store<std::string, int64_t>("sum-per-region");
  CHECK(store.get("east") == ValueAndTimestamp<int64_t>{0, 5});
  CHECK(store.get("west") == ValueAndTimestamp<int64_t>{7, 4});
  // The repartition topic is named after the store, as in Kafka Streams.
  const auto topics = d.driver->written_topics();
  CHECK(std::find(topics.begin(), topics.end(), "app-sum-per-region-repartition") != topics.end());
}

TEST_CASE("KGroupedTable count follows rows between groups", "[unit][kgrouped-table]") {
  auto cache = GENERATE(std::string("0"), std::string("10485760"));
  Driven d;
  drive(d, cache, [](const KGroupedTable<std::string, int64_t>& g) {
    return g.count(Materialized<std::string, int64_t>::as("count-per-region"));
  });
  // The driver commits after each record, so the cache holds nothing back.
  CHECK(read_results(*d.out) ==
        Results{{"east", 1}, {"east", 2}, {"east", 2}, {"east", 1}, {"west", 1}, {"east", 0}});
}

TEST_CASE("KGroupedTable aggregate takes an initializer, an adder and a subtractor",
          "[unit][kgrouped-table]") {
  Driven d;
  drive(d, "0", [](const KGroupedTable<std::string, int64_t>& g) {
    // Sum of squares, with the key-taking forms.
    return g.aggregate([] { return int64_t{0}; },
                       [](const std::string&, int64_t v, int64_t sum) { return sum + v * v; },
                       [](const std::string&, int64_t v, int64_t sum) { return sum - v * v; });
  });
  CHECK(read_results(*d.out) ==
        Results{{"east", 25}, {"east", 34}, {"east", 58}, {"east", 9}, {"west", 49}, {"east", 0}});
}

TEST_CASE("group_by after filter and map_values sees their old values", "[unit][kgrouped-table]") {
  StreamsBuilder builder;
  builder.table("accounts", serdes::string(), serdes::string())
      .map_values([](const std::string& row) { return row + "0"; })  // amounts x10
      .filter([](const std::string& row) { return row.find(":-") == std::string::npos; })
      .group_by(region_and_amount)
      .reduce(std::plus<>(), std::minus<>())
      .to_stream()
      .to("out", serdes::string(), serdes::int64());
  TopologyTestDriver driver(builder.build(), config_with_cache("0"));
  auto in =
      driver.create_input_topic("accounts", serdes::string(), serdes::nullable(serdes::string()));
  auto out = driver.create_output_topic("out", serdes::string(), serdes::nullable(serdes::int64()));
  in.pipe_input("a", "east:1", 1);
  in.pipe_input("b", "east:2", 2);
  in.pipe_input("a", "east:-4", 3);  // filtered out: leaves the group
  in.pipe_input("a", "west:-1", 4);  // still filtered out: no change reaches the groups
  in.pipe_input("a", "west:5", 5);   // back in, in another group
  CHECK(read_results(out) == Results{{"east", 10}, {"east", 30}, {"east", 20}, {"west", 50}});
}

TEST_CASE("KStream::to_table keeps each key's latest value and can be regrouped",
          "[unit][kgrouped-table]") {
  StreamsBuilder builder;
  auto table = builder.stream("rows", serdes::string(), serdes::nullable(serdes::string()))
                   .to_table("rows-table");
  static_assert(std::is_same_v<decltype(table), KTable<std::string, std::string>>);
  CHECK(table.queryable_store_name() == "KSTREAM-TOTABLE-STATE-STORE-0000000001");
  table.group_by(region_and_amount)
      .count()
      .to_stream()
      .to("out", serdes::string(), serdes::int64());
  TopologyTestDriver driver(builder.build(), config_with_cache("0"));
  auto in = driver.create_input_topic("rows", serdes::string(), serdes::nullable(serdes::string()));
  auto out = driver.create_output_topic("out", serdes::string(), serdes::nullable(serdes::int64()));
  pipe_account_changes(in);
  CHECK(read_results(out) ==
        Results{{"east", 1}, {"east", 2}, {"east", 2}, {"east", 1}, {"west", 1}, {"east", 0}});
  auto& store = driver.get_timestamped_key_value_store<std::string, std::string>(
      "KSTREAM-TOTABLE-STATE-STORE-0000000001");
  CHECK(store.get("a") == ValueAndTimestamp<std::string>{"west:7", 4});
  CHECK(store.get("b") == std::nullopt);
}

TEST_CASE("group_by needs a table that can send old values", "[unit][kgrouped-table]") {
  StreamsBuilder builder;
  auto windowed = builder.stream("in", serdes::string(), serdes::string())
                      .group_by_key()
                      .windowed_by(TimeWindows::of_size_with_no_grace(std::chrono::minutes(1)))
                      .count();
  CHECK_THROWS_WITH(windowed.group_by([](const Windowed<std::string>& key, int64_t count) {
    return KeyValue{key.key, count};
  }),
                    Catch::Contains("cannot send the old values"));
}

TEST_CASE("serdes::changed writes Kafka Streams' Change layout", "[unit][kgrouped-table]") {
  auto serde = serdes::changed(serdes::string());
  auto bytes = [&](const Change<std::string>& change) {
    std::string out;
    REQUIRE(serde->serialize(change, out));
    return out;
  };
  CHECK(bytes({std::nullopt, "old"}) == std::string("old\x00", 4));
  CHECK(bytes({"new", std::nullopt}) == std::string("new\x01", 4));
  // Zig-zag varint 3 (0x06), the new value, the old value, flag 2.
  CHECK(bytes({"new", "old"}) == std::string("\x06newold\x02", 8));
  const std::string long_value(200, 'x');
  const std::string both = bytes({long_value, "o"});
  CHECK(both.substr(0, 2) == "\x90\x03");  // 400 = 0x190, as two varint bytes
  for (const Change<std::string>& change :
       {Change<std::string>{std::nullopt, "old"}, Change<std::string>{"new", std::nullopt},
        Change<std::string>{"new", "old"}, Change<std::string>{long_value, ""}})
    CHECK(serde->deserialize(bytes(change)) == change);
  // Kafka Streams' versioned-table flags carry an is-latest byte before the flag.
  CHECK(serde->deserialize(std::string("\x06newold\x01\x05", 9)) ==
        Change<std::string>{"new", "old"});
  std::string none;
  CHECK_THROWS_AS(serde->serialize({std::nullopt, std::nullopt}, none), SerdeError);
  CHECK_THROWS_AS(serde->deserialize(std::string("x\x09", 2)), SerdeError);
}
