// Keyed aggregations (count, reduce, aggregate) through TopologyTestDriver,
// with and without repartitioning and with the record cache on and off: the
// results, their timestamps, the stores and changelogs behind them, and how
// the nodes, stores and topics are named.
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "rill/json.h"
#include "rill/rill.h"
#include "rill/test_driver.h"

using namespace rill;

namespace {

using Counts = std::vector<KeyValue<std::string, int64_t>>;

StreamsConfig config_with_cache(const std::string& cache_bytes) {
  return StreamsConfig{{"application.id", "app"}, {"statestore.cache.max.bytes", cache_bytes}};
}

std::string be64(int64_t value) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((static_cast<uint64_t>(value) >> shift) & 0xff));
  return out;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

struct Point {
  int x = 0;
};

}  // namespace

TEST_CASE("count counts per key with and without the record cache", "[unit][aggregate]") {
  auto cache = GENERATE(std::string("0"), std::string("10485760"));
  StreamsBuilder builder;
  auto counts = builder.stream("in", serdes::string(), serdes::string())
                    .group_by_key()
                    .count(Materialized<std::string, int64_t>::as("counts"));
  counts.to_stream().to("out", serdes::string(), serdes::int64());
  CHECK(counts.queryable_store_name() == "counts");

  TopologyTestDriver driver(builder.build(), config_with_cache(cache));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::int64());
  in.pipe_input("a", "x", 1);
  in.pipe_input("b", "x", 2);
  in.pipe_input("a", "x", 3);

  auto records = out.read_records_to_list();
  REQUIRE(records.size() == 3);
  CHECK(records[0].key == "a");
  CHECK(records[0].value == 1);
  CHECK(records[0].timestamp == 1);
  CHECK(records[1].key == "b");
  CHECK(records[1].value == 1);
  CHECK(records[2].key == "a");
  CHECK(records[2].value == 2);
  CHECK(records[2].timestamp == 3);

  // The store keeps each count with its latest timestamp; so does the changelog.
  auto& store = driver.get_timestamped_key_value_store<std::string, int64_t>("counts");
  CHECK(store.get("a") == ValueAndTimestamp<int64_t>{2, 3});
  CHECK(store.get("b") == ValueAndTimestamp<int64_t>{1, 2});
  CHECK(store.get("c") == std::nullopt);
  CHECK(driver.queue_size("app-counts-changelog") == 3);
  std::optional<CapturedRecord> last;
  while (auto record = driver.read_raw("app-counts-changelog")) last = record;
  REQUIRE(last);
  CHECK(last->key == "a");
  CHECK(last->value == be64(3) + be64(2));

  // The key did not change: no repartition topic.
  CHECK(driver.written_topics() == std::vector<std::string>{"app-counts-changelog", "out"});
}

TEST_CASE("an aggregate keeps the latest timestamp of its records", "[unit][aggregate]") {
  StreamsBuilder builder;
  builder.stream("in", serdes::string(), serdes::string())
      .group_by_key()
      .count()
      .to_stream()
      .to("out", serdes::string(), serdes::int64());
  TopologyTestDriver driver(builder.build(), config_with_cache("0"));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::int64());
  in.pipe_input("a", "x", 10);
  in.pipe_input("a", "x", 5);
  auto records = out.read_records_to_list();
  REQUIRE(records.size() == 2);
  CHECK(records[1].value == 2);
  CHECK(records[1].timestamp == 10);
}

TEST_CASE("the record cache folds the updates of one commit", "[unit][aggregate][cache]") {
  auto build = [](bool caching) {
    StreamsBuilder builder;
    Materialized<std::string, int64_t> materialized;
    materialized.caching_enabled = caching;
    builder.stream("in", serdes::string(), serdes::string())
        .flat_map_values([](const std::string& line) { return split(line); })
        .group_by_key()
        .count(materialized)
        .to_stream()
        .to("out", serdes::string(), serdes::int64());
    return builder.build();
  };
  auto run = [](Topology topology, const std::string& cache) {
    TopologyTestDriver driver(std::move(topology), config_with_cache(cache));
    driver.create_input_topic("in", serdes::string(), serdes::string()).pipe_input("a", "x y z", 1);
    return driver.create_output_topic("out", serdes::string(), serdes::int64())
        .read_key_values_to_list();
  };
  // One input, three updates of "a": the cache hands on the last at the commit.
  CHECK(run(build(true), "10485760") == Counts{{"a", 3}});
  CHECK(run(build(true), "0") == Counts{{"a", 1}, {"a", 2}, {"a", 3}});
  CHECK(run(build(false), "10485760") == Counts{{"a", 1}, {"a", 2}, {"a", 3}});
}

TEST_CASE("group_by repartitions through a topic named after the store", "[unit][aggregate]") {
  auto cache = GENERATE(std::string("0"), std::string("10485760"));
  StreamsBuilder builder;
  builder.stream("in", serdes::string(), serdes::string())
      .group_by([](const std::string&, const std::string& word) { return word; })
      .count()
      .to_stream()
      .to("out", serdes::string(), serdes::int64());
  Topology topology = builder.build();
  CHECK(topology.node("KSTREAM-KEY-SELECT-0000000001").kind == Topology::NodeKind::kProcessor);
  CHECK(topology.node("KSTREAM-AGGREGATE-0000000003").stores ==
        std::vector<std::string>{"KSTREAM-AGGREGATE-STATE-STORE-0000000002"});
  CHECK(topology.subtopologies().size() == 2);

  TopologyTestDriver driver(std::move(topology), config_with_cache(cache));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::int64());
  in.pipe_input("k1", "hello", 1);
  in.pipe_input("k2", "world", 2);
  in.pipe_input("k3", "hello", 3);
  CHECK(out.read_key_values_to_list() == Counts{{"hello", 1}, {"world", 1}, {"hello", 2}});
  CHECK(driver.queue_size("app-KSTREAM-AGGREGATE-STATE-STORE-0000000002-repartition") == 3);
}

TEST_CASE("group_by_key repartitions by the grouped name only after a key change",
          "[unit][aggregate]") {
  StreamsBuilder builder;
  builder.stream("in", serdes::string(), serdes::string())
      .select_key([](const std::string&, const std::string& word) { return word; })
      .group_by_key({.name = "by-word"})
      .count(Materialized<std::string, int64_t>::as("word-counts"))
      .to_stream()
      .to("out", serdes::string(), serdes::int64());
  TopologyTestDriver driver(builder.build(), config_with_cache("10485760"));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::int64());
  in.pipe_input("k1", "hello", 1);
  in.pipe_input("k2", "hello", 2);
  CHECK(out.read_key_values_to_list() == Counts{{"hello", 1}, {"hello", 2}});
  CHECK(driver.queue_size("app-by-word-repartition") == 2);
  CHECK(driver.get_timestamped_key_value_store<std::string, int64_t>("word-counts").get("hello") ==
        ValueAndTimestamp<int64_t>{2, 2});
}

TEST_CASE("reduce combines the values of a key", "[unit][aggregate]") {
  auto cache = GENERATE(std::string("0"), std::string("10485760"));
  StreamsBuilder builder;
  builder.stream("in", serdes::string(), serdes::int64())
      .group_by_key()
      .reduce([](int64_t sum, int64_t value) { return sum + value; },
              Materialized<std::string, int64_t>::as("sums"))
      .to_stream()
      .to("out", serdes::string(), serdes::int64());
  TopologyTestDriver driver(builder.build(), config_with_cache(cache));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::int64());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::int64());
  in.pipe_input("a", 5, 1);
  in.pipe_input("b", 1, 2);
  in.pipe_input("a", 7, 3);
  CHECK(out.read_key_values_to_list() == Counts{{"a", 5}, {"b", 1}, {"a", 12}});
  CHECK(driver.get_timestamped_key_value_store<std::string, int64_t>("sums").get("a") ==
        ValueAndTimestamp<int64_t>{12, 3});
}

TEST_CASE("aggregate folds values into another type", "[unit][aggregate]") {
  auto cache = GENERATE(std::string("0"), std::string("10485760"));
  StreamsBuilder builder;
  auto grouped = builder.stream("in", serdes::string(), serdes::string()).group_by_key();
  // aggregator(key, value, aggregate)
  grouped
      .aggregate([] { return std::string("|"); },
                 [](const std::string&, const std::string& value, const std::string& aggregate) {
                   return aggregate + value + "|";
                 })
      .to_stream()
      .to("joined", serdes::string(), serdes::string());
  // aggregator(value, aggregate), into JSON, as configured pipelines do.
  grouped
      .aggregate([] { return nlohmann::json::array(); },
                 [](const std::string& value, nlohmann::json list) {
                   list.push_back(value);
                   return list;
                 },
                 Materialized<std::string, nlohmann::json>::as("lists"))
      .to_stream()
      .to("lists", serdes::string(), serdes::json());
  TopologyTestDriver driver(builder.build(), config_with_cache(cache));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto joined = driver.create_output_topic("joined", serdes::string(), serdes::string());
  auto lists = driver.create_output_topic("lists", serdes::string(), serdes::json());
  in.pipe_input("a", "x", 1);
  in.pipe_input("a", "y", 2);
  CHECK(joined.read_key_values_to_list() ==
        std::vector<KeyValue<std::string, std::string>>{{"a", "|x|"}, {"a", "|x|y|"}});
  CHECK(lists.read_key_values_to_list() ==
        std::vector<KeyValue<std::string, nlohmann::json>>{{"a", {"x"}}, {"a", {"x", "y"}}});
  CHECK(driver.get_timestamped_key_value_store<std::string, nlohmann::json>("lists")
            .get("a")
            ->value == nlohmann::json{"x", "y"});
}

TEST_CASE("records with a null key or value are dropped and counted", "[unit][aggregate]") {
  StreamsBuilder builder;
  auto nullable_string = serdes::nullable(serdes::string());
  builder.stream("in", nullable_string, nullable_string)
      .group_by_key()
      .count()
      .to_stream()
      .to("out", nullable_string, serdes::int64());
  TopologyTestDriver driver(builder.build(), config_with_cache("0"));
  auto in = driver.create_input_topic("in", nullable_string, nullable_string);
  auto out = driver.create_output_topic("out", nullable_string, serdes::int64());
  in.pipe_input(std::nullopt, "x", 1);
  in.pipe_input("a", std::nullopt, 2);
  in.pipe_input("a", "x", 3);
  CHECK(out.read_key_values_to_list() ==
        std::vector<KeyValue<std::optional<std::string>, int64_t>>{{"a", 1}});
  CHECK(driver.dropped_records() == 2);
  CHECK(driver.skipped_records() == 0);
}

TEST_CASE("describe() shows an aggregation's store on its processor", "[unit][aggregate]") {
  StreamsBuilder builder;
  builder.stream("in", serdes::string(), serdes::string())
      .group_by_key()
      .count()
      .to_stream()
      .to("out", serdes::string(), serdes::int64());
  // Kafka Streams describes the same topology with the same text.
  CHECK(builder.build().describe() ==
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: KSTREAM-SOURCE-0000000000 (topics: [in])\n"
        "      --> KSTREAM-AGGREGATE-0000000002\n"
        "    Processor: KSTREAM-AGGREGATE-0000000002 (stores: "
        "[KSTREAM-AGGREGATE-STATE-STORE-0000000001])\n"
        "      --> KTABLE-TOSTREAM-0000000003\n"
        "      <-- KSTREAM-SOURCE-0000000000\n"
        "    Processor: KTABLE-TOSTREAM-0000000003 (stores: [])\n"
        "      --> KSTREAM-SINK-0000000004\n"
        "      <-- KSTREAM-AGGREGATE-0000000002\n"
        "    Sink: KSTREAM-SINK-0000000004 (topic: out)\n"
        "      <-- KTABLE-TOSTREAM-0000000003\n"
        "\n");

  StreamsBuilder reduced;
  reduced.stream("in", serdes::string(), serdes::int64())
      .group_by_key()
      .reduce([](int64_t a, int64_t b) { return a + b; });
  CHECK_THAT(reduced.build().describe(),
             Catch::Contains("Processor: KSTREAM-REDUCE-0000000002 (stores: "
                             "[KSTREAM-REDUCE-STATE-STORE-0000000001])"));
}

TEST_CASE("Materialized keeps a store in memory and without a changelog", "[unit][aggregate]") {
  StreamsBuilder builder;
  Materialized<std::string, int64_t> materialized = Materialized<std::string, int64_t>::as("m");
  materialized.in_memory = true;
  materialized.logging_enabled = false;
  builder.stream("in", serdes::string(), serdes::string())
      .group_by_key()
      .count(materialized)
      .to_stream()
      .to("out", serdes::string(), serdes::int64());
  TopologyTestDriver driver(builder.build(), config_with_cache("10485760"));
  driver.create_input_topic("in", serdes::string(), serdes::string()).pipe_input("a", "x", 1);
  auto& store = driver.get_timestamped_key_value_store<std::string, int64_t>("m");
  CHECK_FALSE(store.persistent());
  CHECK(store.get("a") == ValueAndTimestamp<int64_t>{1, 1});
  CHECK(driver.written_topics() == std::vector<std::string>{"out"});
}

TEST_CASE("an aggregate without a serde for its type is refused", "[unit][aggregate]") {
  StreamsBuilder builder;
  auto grouped = builder.stream("in", serdes::string(), serdes::string()).group_by_key();
  CHECK_THROWS_WITH(grouped.aggregate([] { return Point{}; },
                                      [](const std::string&, Point p) {
                                        ++p.x;
                                        return p;
                                      }),
                    Catch::Contains("no value serde for type") && Catch::Contains("Point"));
}

TEST_CASE("aggregations work on JSON keys and values and drop JSON nulls", "[unit][aggregate]") {
  using nlohmann::json;
  StreamsBuilder builder;
  builder.stream("in", serdes::json(), serdes::json())
      .group_by_key()
      .aggregate([] { return json::object(); },
                 [](const json&, const json& value, json totals) {
                   totals[value["item"].get<std::string>()] =
                       totals.value(value["item"].get<std::string>(), 0) + value["n"].get<int>();
                   return totals;
                 })
      .to_stream()
      .to("out", serdes::json(), serdes::json());
  TopologyTestDriver driver(builder.build(), config_with_cache("0"));
  auto in = driver.create_input_topic("in", serdes::json(), serdes::json());
  auto out = driver.create_output_topic("out", serdes::json(), serdes::json());
  in.pipe_input(json{{"user", 1}}, json{{"item", "apple"}, {"n", 2}}, 1);
  in.pipe_input(nullptr, json{{"item", "apple"}, {"n", 1}}, 2);
  in.pipe_input(json{{"user", 1}}, nullptr, 3);
  in.pipe_input(json{{"user", 1}}, json{{"item", "apple"}, {"n", 3}}, 4);
  CHECK(out.read_key_values_to_list() ==
        std::vector<KeyValue<json, json>>{{json{{"user", 1}}, json{{"apple", 2}}},
                                          {json{{"user", 1}}, json{{"apple", 5}}}});
  CHECK(driver.dropped_records() == 2);
}
