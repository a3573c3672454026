// KTable through TopologyTestDriver: tables read from topics (tombstones
// delete), map_values, filter and to_stream, with the record cache on and off.
#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/rill.h"
#include "rill/test_driver.h"

using namespace rill;

namespace {

using Updates = std::vector<KeyValue<std::string, std::optional<std::string>>>;
using LengthUpdates = std::vector<KeyValue<std::string, std::optional<int64_t>>>;

StreamsConfig config_with_cache(const std::string& cache_bytes) {
  return StreamsConfig{{"application.id", "app"}, {"statestore.cache.max.bytes", cache_bytes}};
}

}  // namespace

TEST_CASE("table() keeps the latest value per key and tombstones delete", "[unit][ktable]") {
  auto cache = GENERATE(std::string("0"), std::string("10485760"));
  StreamsBuilder builder;
  auto users = builder.table("users", serdes::string(), serdes::string());
  users.to_stream().to("out", serdes::string(), serdes::string());
  CHECK(users.queryable_store_name() == "users-STATE-STORE-0000000000");
  CHECK(users.node_name() == "KTABLE-SOURCE-0000000002");

  TopologyTestDriver driver(builder.build(), config_with_cache(cache));
  auto in =
      driver.create_input_topic("users", serdes::string(), serdes::nullable(serdes::string()));
  auto out =
      driver.create_output_topic("out", serdes::string(), serdes::nullable(serdes::string()));
  in.pipe_input("a", "alice", 1);
  in.pipe_input("b", "bob", 2);
  in.pipe_input("a", "ann", 3);
  in.pipe_input("a", std::nullopt, 4);
  in.pipe_input("c", std::nullopt, 5);  // deletes nothing: no update

  auto records = out.read_records_to_list();
  REQUIRE(records.size() == 4);
  CHECK(records[3].key == "a");
  CHECK(records[3].value == std::nullopt);
  CHECK(records[3].timestamp == 4);
  Updates updates;
  for (const auto& r : records) updates.push_back({r.key, r.value});
  CHECK(updates == Updates{{"a", "alice"}, {"b", "bob"}, {"a", "ann"}, {"a", std::nullopt}});

  auto& store = driver.get_timestamped_key_value_store<std::string, std::string>(
      "users-STATE-STORE-0000000000");
  CHECK(store.get("a") == std::nullopt);
  CHECK(store.get("b") == ValueAndTimestamp<std::string>{"bob", 2});
  // The changelog ends with the deletion of "a".
  std::optional<CapturedRecord> last;
  while (auto record = driver.read_raw("app-users-STATE-STORE-0000000000-changelog")) last = record;
  REQUIRE(last);
  CHECK(last->key == "a");
  CHECK(last->value == std::nullopt);
}

TEST_CASE("map_values and filter transform table updates", "[unit][ktable]") {
  auto cache = GENERATE(std::string("0"), std::string("10485760"));
  StreamsBuilder builder;
  auto names = builder.table("names", serdes::string(), serdes::string(),
                             Materialized<std::string, std::string>::as("names"));
  names.map_values([](const std::string& name) { return static_cast<int64_t>(name.size()); })
      .to_stream()
      .to("lengths", serdes::string(), serdes::int64());
  auto is_long = [](const std::string&, const std::string& name) { return name.size() > 3; };
  names.filter(is_long).to_stream().to("long", serdes::string(), serdes::string());
  names.filter_not(is_long).to_stream().to("short", serdes::string(), serdes::string());

  TopologyTestDriver driver(builder.build(), config_with_cache(cache));
  auto in =
      driver.create_input_topic("names", serdes::string(), serdes::nullable(serdes::string()));
  in.pipe_input("a", "alice", 1);
  in.pipe_input("b", "bob", 2);
  in.pipe_input("a", "al", 3);
  in.pipe_input("a", std::nullopt, 4);

  auto lengths =
      driver.create_output_topic("lengths", serdes::string(), serdes::nullable(serdes::int64()));
  CHECK(lengths.read_key_values_to_list() ==
        LengthUpdates{{"a", 5}, {"b", 3}, {"a", 2}, {"a", std::nullopt}});
  // An update failing the predicate deletes its key from the filtered table.
  auto long_names =
      driver.create_output_topic("long", serdes::string(), serdes::nullable(serdes::string()));
  CHECK(long_names.read_key_values_to_list() ==
        Updates{{"a", "alice"}, {"b", std::nullopt}, {"a", std::nullopt}, {"a", std::nullopt}});
  auto short_names =
      driver.create_output_topic("short", serdes::string(), serdes::nullable(serdes::string()));
  CHECK(short_names.read_key_values_to_list() ==
        Updates{{"a", std::nullopt}, {"b", "bob"}, {"a", "al"}, {"a", std::nullopt}});
}

TEST_CASE("a map_values returning std::nullopt deletes the key", "[unit][ktable]") {
  StreamsBuilder builder;
  auto upper = builder.table("t", serdes::string(), serdes::string())
                   .map_values([](const std::string& key,
                                  const std::string& value) -> std::optional<std::string> {
                     if (value == "gone") return std::nullopt;
                     std::string result = key + ":";
                     for (char c : value)
                       result += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
                     return result;
                   });
  static_assert(std::is_same_v<decltype(upper), KTable<std::string, std::string>>);
  upper.to_stream().to("out", serdes::string(), serdes::string());
  CHECK(upper.node_name() == "KTABLE-MAPVALUES-0000000003");

  TopologyTestDriver driver(builder.build(), config_with_cache("0"));
  auto in = driver.create_input_topic("t", serdes::string(), serdes::string());
  in.pipe_input("k", "abc", 1);
  in.pipe_input("k", "gone", 2);
  CHECK(driver.create_output_topic("out", serdes::string(), serdes::nullable(serdes::string()))
            .read_key_values_to_list() == Updates{{"k", "k:ABC"}, {"k", std::nullopt}});
}

TEST_CASE("an aggregation's table streams its updates", "[unit][ktable]") {
  StreamsBuilder builder;
  KStream<std::string, std::optional<int64_t>> updates =
      builder.stream("in", serdes::string(), serdes::string()).group_by_key().count().to_stream();
  updates.filter([](const std::optional<int64_t>& count) { return count && *count % 2 == 0; })
      .to("even", serdes::string(), serdes::int64());
  TopologyTestDriver driver(builder.build(), config_with_cache("0"));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  for (int i = 0; i < 4; ++i) in.pipe_input("a", "x", i);
  CHECK(driver.create_output_topic("even", serdes::string(), serdes::int64())
            .read_key_values_to_list() ==
        std::vector<KeyValue<std::string, int64_t>>{{"a", 2}, {"a", 4}});
}

TEST_CASE("table() drops records with a null key", "[unit][ktable]") {
  StreamsBuilder builder;
  auto key_serde = serdes::nullable(serdes::string());
  builder.table("t", key_serde, serdes::string())
      .to_stream()
      .to("out", key_serde, serdes::string());
  TopologyTestDriver driver(builder.build(), config_with_cache("0"));
  auto in = driver.create_input_topic("t", key_serde, serdes::string());
  in.pipe_input(std::nullopt, "x", 1);
  in.pipe_input("k", "y", 2);
  CHECK(driver.queue_size("out") == 1);
  CHECK(driver.dropped_records() == 1);
}

TEST_CASE("a table's store is named and kept as Materialized says", "[unit][ktable]") {
  StreamsBuilder builder;
  Materialized<std::string, std::string> materialized =
      Materialized<std::string, std::string>::as("users");
  materialized.in_memory = true;
  builder.table("users-topic", serdes::string(), serdes::string(), materialized)
      .to_stream()
      .to("out", serdes::string(), serdes::string());
  Topology topology = builder.build();
  CHECK(topology.describe() ==
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: KSTREAM-SOURCE-0000000000 (topics: [users-topic])\n"
        "      --> KTABLE-SOURCE-0000000001\n"
        "    Processor: KTABLE-SOURCE-0000000001 (stores: [users])\n"
        "      --> KTABLE-TOSTREAM-0000000002\n"
        "      <-- KSTREAM-SOURCE-0000000000\n"
        "    Processor: KTABLE-TOSTREAM-0000000002 (stores: [])\n"
        "      --> KSTREAM-SINK-0000000003\n"
        "      <-- KTABLE-SOURCE-0000000001\n"
        "    Sink: KSTREAM-SINK-0000000003 (topic: out)\n"
        "      <-- KTABLE-TOSTREAM-0000000002\n"
        "\n");

  TopologyTestDriver driver(std::move(topology), config_with_cache("0"));
  driver.create_input_topic("users-topic", serdes::string(), serdes::string())
      .pipe_input("a", "alice", 1);
  auto& store = driver.get_timestamped_key_value_store<std::string, std::string>("users");
  CHECK_FALSE(store.persistent());
  CHECK(store.get("a") == ValueAndTimestamp<std::string>{"alice", 1});
  CHECK(driver.queue_size("app-users-changelog") == 1);
}

TEST_CASE("a commit hands on a cached table's updates through a cached table after it in the task",
          "[unit][ktable][cache]") {
  // The downstream store's name sorts before the upstream's: handing on the
  // caches once, by name, left the update in the downstream cache past the
  // commit, which then committed the input without it.
  StreamsBuilder builder;
  builder
      .table("in", serdes::string(), serdes::string(),
             Materialized<std::string, std::string>::as("z-upstream"))
      .to_stream()
      .to_table("", Materialized<std::string, std::string>::as("a-downstream"))
      .to_stream()
      .to("out", serdes::string(), serdes::nullable(serdes::string()));
  TopologyTestDriver driver(
      builder.build(),
      StreamsConfig{{"application.id", "app"}, {"statestore.cache.max.bytes", "1048576"}});
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::string());
  in.pipe_input("k", "v1", 1);
  const auto records = out.read_records_to_list();
  REQUIRE(records.size() == 1);
  CHECK(records[0].value == "v1");
}
