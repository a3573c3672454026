// Stream-table and stream-global-table joins through TopologyTestDriver, with
// Kafka Streams' semantics: the stream side triggers, table updates emit
// nothing, a left join goes on without a row, and null keys and values are
// handled as Kafka Streams 4 handles them.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/json.h"
#include "rill/rill.h"
#include "rill/test_driver.h"

using namespace rill;
using Json = nlohmann::json;

namespace {

struct Output {
  std::string key;
  std::string value;
  int64_t timestamp;
  bool operator==(const Output&) const = default;
};

std::vector<Output> read_all(TopologyTestDriver::OutputTopic<std::string, std::string>& out) {
  std::vector<Output> all;
  for (const auto& r : out.read_records_to_list()) all.push_back({r.key, r.value, r.timestamp});
  return all;
}

std::string row_or_none(const std::optional<std::string>& row) {
  return row ? *row : "none";
}

}  // namespace

TEST_CASE("a stream-table join follows Kafka Streams' semantics record for record",
          "[unit][join]") {
  const bool left = GENERATE(false, true);
  const std::string cache = GENERATE(std::string("0"), std::string("10485760"));
  INFO((left ? "left join" : "inner join") << ", cache " << cache);
  StreamsBuilder builder;
  auto customers = builder.table("customers", serdes::string(), serdes::string());
  auto orders = builder.stream("orders", serdes::string(), serdes::string());
  if (left)
    orders
        .left_join(customers,
                   [](const std::string& order, const std::optional<std::string>& customer) {
                     return order + "/" + row_or_none(customer);
                   })
        .to("out", serdes::string(), serdes::string());
  else
    orders
        .join(customers, [](const std::string& order,
                            const std::string& customer) { return order + "/" + customer; })
        .to("out", serdes::string(), serdes::string());

  TopologyTestDriver driver(builder.build(), StreamsConfig{{"application.id", "app"},
                                                           {"statestore.cache.max.bytes", cache}});
  auto order_in = driver.create_input_topic("orders", serdes::string(), serdes::string());
  auto customer_in =
      driver.create_input_topic("customers", serdes::string(), serdes::nullable(serdes::string()));
  auto out = driver.create_output_topic("out", serdes::string(), serdes::string());

  order_in.pipe_input("c1", "o1", 1);             // no row yet
  customer_in.pipe_input("c1", "alice", 2);       // a table update emits nothing
  order_in.pipe_input("c1", "o2", 3);             // joins alice
  order_in.pipe_input("c2", "o3", 4);             // no row for c2
  customer_in.pipe_input("c1", "ann", 5);         // the row changes
  order_in.pipe_input("c1", "o4", 6);             // joins the row as it is now
  customer_in.pipe_input("c1", std::nullopt, 7);  // the row is deleted
  order_in.pipe_input("c1", "o5", 8);             // no row any more

  std::vector<Output> expected{{"c1", "o2/alice", 3}, {"c1", "o4/ann", 6}};
  if (left)
    expected = {{"c1", "o1/none", 1},
                {"c1", "o2/alice", 3},
                {"c2", "o3/none", 4},
                {"c1", "o4/ann", 6},
                {"c1", "o5/none", 8}};
  CHECK(read_all(out) == expected);
}

TEST_CASE("a join reads a table without a store of its own through the store it derives from",
          "[unit][join]") {
  StreamsBuilder builder;
  auto customers = builder.table("customers", serdes::string(), serdes::string());
  // Neither operation keeps a store: the join reads the source table's store
  // and applies them on the way.
  auto shouting = customers.filter([](const std::string& name) { return name != "bob"; })
                      .map_values([](const std::string& name) {
                        std::string upper = name;
                        for (char& c : upper) c = static_cast<char>(std::toupper(c));
                        return upper;
                      });
  CHECK(shouting.queryable_store_name().empty());
  builder.stream("orders", serdes::string(), serdes::string())
      .left_join(shouting,
                 [](const std::string& order, const std::optional<std::string>& customer) {
                   return order + "/" + row_or_none(customer);
                 })
      .to("out", serdes::string(), serdes::string());

  TopologyTestDriver driver(builder.build(), StreamsConfig{{"application.id", "app"}});
  auto order_in = driver.create_input_topic("orders", serdes::string(), serdes::string());
  auto customer_in = driver.create_input_topic("customers", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::string());
  customer_in.pipe_input("c1", "alice", 1);
  customer_in.pipe_input("c2", "bob", 2);
  order_in.pipe_input("c1", "o1", 3);
  order_in.pipe_input("c2", "o2", 4);  // bob is filtered out of the table
  CHECK(read_all(out) == std::vector<Output>{{"c1", "o1/ALICE", 3}, {"c2", "o2/none", 4}});
}

TEST_CASE("a stream whose key changed is repartitioned before it joins a table", "[unit][join]") {
  StreamsBuilder builder;
  auto customers = builder.table("customers", serdes::string(), serdes::string());
  // Orders keyed by order id carry their customer in the value: "c1:o1".
  builder.stream("orders", serdes::string(), serdes::string())
      .select_key([](const std::string&, const std::string& value) {
        return value.substr(0, value.find(':'));
      })
      .join(
          customers,
          [](const std::string& customer_id, const std::string& order,
             const std::string& customer) { return customer_id + "=" + customer + "/" + order; },
          Joined<std::string, std::string>{"enrich"})
      .to("out", serdes::string(), serdes::string());
  const Topology topology = builder.build();

  // The orders go through "enrich-repartition" into the sub-topology of the
  // table, which the join node shares through the table's store.
  const auto& subtopologies = topology.subtopologies();
  REQUIRE(subtopologies.size() == 2);
  const std::string description = topology.describe();
  INFO(description);
  CHECK_THAT(description, Catch::Contains("--> enrich-repartition-sink"));
  CHECK_THAT(description, Catch::Contains("Processor: enrich (stores: [customers-STATE-STORE"));
  CHECK_THAT(description, Catch::Contains("topics: [enrich-repartition]"));

  TopologyTestDriver driver(topology, StreamsConfig{{"application.id", "app"}});
  auto order_in = driver.create_input_topic("orders", serdes::string(), serdes::string());
  auto customer_in = driver.create_input_topic("customers", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::string());
  customer_in.pipe_input("c1", "alice", 1);
  order_in.pipe_input("o1", "c1:o1", 2);
  order_in.pipe_input("o2", "c9:o2", 3);
  CHECK(read_all(out) == std::vector<Output>{{"c1", "c1=alice/c1:o1", 2}});
}

TEST_CASE("a stream joins a global table through a key selector, without a repartition",
          "[unit][join]") {
  const bool left = GENERATE(false, true);
  INFO((left ? "left join" : "inner join"));
  StreamsBuilder builder;
  auto products = builder.global_table("products", serdes::string(), serdes::string());
  auto orders = builder.stream("orders", serdes::string(), serdes::string());
  // The value names the product; "-" names none.
  auto product_of = [](const std::string&, const std::string& value) -> std::optional<std::string> {
    if (value == "-") return std::nullopt;
    return value;
  };
  if (left)
    orders
        .left_join(products, product_of,
                   [](const std::string& product, const std::optional<std::string>& name) {
                     return product + "=" + row_or_none(name);
                   })
        .to("out", serdes::string(), serdes::string());
  else
    orders
        .join(products, product_of,
              [](const std::string& product, const std::string& name) {
                return product + "=" + name;
              })
        .to("out", serdes::string(), serdes::string());
  const Topology topology = builder.build();
  CHECK(topology.subtopologies().size() == 1);
  CHECK_THAT(topology.describe(), !Catch::Contains("repartition"));

  TopologyTestDriver driver(topology, StreamsConfig{{"application.id", "app"}});
  auto order_in = driver.create_input_topic("orders", serdes::string(), serdes::string());
  auto product_in = driver.create_input_topic("products", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::string());
  product_in.pipe_input("p1", "pen", 1);
  order_in.pipe_input("o1", "p1", 2);
  order_in.pipe_input("o2", "p2", 3);  // no such product
  order_in.pipe_input("o3", "-", 4);   // no join key
  product_in.pipe_input("p2", "pad", 5);
  order_in.pipe_input("o4", "p2", 6);

  std::vector<Output> expected{{"o1", "p1=pen", 2}, {"o4", "p2=pad", 6}};
  if (left)
    expected = {
        {"o1", "p1=pen", 2}, {"o2", "p2=none", 3}, {"o3", "-=none", 4}, {"o4", "p2=pad", 6}};
  CHECK(read_all(out) == expected);
  // Kafka Streams drops (and counts) a record without a join key in an inner join only.
  CHECK(driver.dropped_records() == (left ? 0 : 1));
}

TEST_CASE("null keys and values meet a join as they meet Kafka Streams 4's", "[unit][join]") {
  const bool left = GENERATE(false, true);
  INFO((left ? "left join" : "inner join"));
  StreamsBuilder builder;
  auto rows = builder.table("rows", serdes::json(), serdes::json());
  auto stream = builder.stream("in", serdes::json(), serdes::json());
  auto joiner = [](const Json& value, const std::optional<Json>& row) {
    return Json{{"value", value}, {"row", row ? *row : Json()}};
  };
  if (left)
    stream.left_join(rows, joiner).to("out", serdes::json(), serdes::json());
  else
    stream.join(rows, [joiner](const Json& value, const Json& row) { return joiner(value, row); })
        .to("out", serdes::json(), serdes::json());

  TopologyTestDriver driver(builder.build(), StreamsConfig{{"application.id", "app"}});
  auto in = driver.create_input_topic("in", serdes::json(), serdes::json());
  auto rows_in = driver.create_input_topic("rows", serdes::json(), serdes::json());
  auto out = driver.create_output_topic("out", serdes::json(), serdes::json());
  rows_in.pipe_input(Json("k"), Json("row"), 1);
  in.pipe_input(Json("k"), Json(), 2);      // a null value: dropped by both
  in.pipe_input(Json(), Json("v1"), 3);     // a null key: a left join goes on without a row
  in.pipe_input(Json("k"), Json("v2"), 4);  // joins
  std::vector<Json> values;
  for (const auto& r : out.read_records_to_list()) values.push_back(r.value);
  if (left)
    CHECK(values == std::vector<Json>{Json{{"value", "v1"}, {"row", nullptr}},
                                      Json{{"value", "v2"}, {"row", "row"}}});
  else
    CHECK(values == std::vector<Json>{Json{{"value", "v2"}, {"row", "row"}}});
  CHECK(driver.dropped_records() == (left ? 1 : 2));
}

TEST_CASE("a join with a windowed table is refused when the topology is built", "[unit][join]") {
  StreamsBuilder builder;
  auto windowed = builder.stream("clicks", serdes::string(), serdes::string())
                      .group_by_key()
                      .windowed_by(TimeWindows::of_size_with_no_grace(std::chrono::minutes(1)))
                      .count();
  auto orders = builder.stream("orders", serdes::string(), serdes::string())
                    .map([](const std::string& key, const std::string& value) {
                      return KeyValue{Windowed<std::string>{key, {0, 60000}}, value};
                    });
  CHECK_THROWS_WITH(
      orders.join(windowed, [](const std::string& v, int64_t n) { return v + std::to_string(n); }),
      Catch::Contains("the table's rows cannot be read"));
}
