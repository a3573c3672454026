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

TEST_CASE("table-table joins follow Kafka Streams' semantics record for record", "[unit][join]") {
  enum Kind { kInner, kLeft, kOuter };
  const Kind kind = GENERATE(kInner, kLeft, kOuter);
  const std::string cache = GENERATE(std::string("0"), std::string("10485760"));
  INFO("kind " << kind << ", cache " << cache);
  StreamsBuilder builder;
  auto left = builder.table("left", serdes::string(), serdes::string());
  auto right = builder.table("right", serdes::string(), serdes::string());
  auto text = [](const std::optional<std::string>& v) { return v ? *v : std::string("null"); };
  const Materialized<std::string, std::string> store =
      Materialized<std::string, std::string>::as("joined");
  KTable<std::string, std::string> joined;
  if (kind == kInner)
    joined = left.join(
        right, [](const std::string& l, const std::string& r) { return l + "/" + r; }, store);
  else if (kind == kLeft)
    joined = left.left_join(
        right,
        [text](const std::string& l, const std::optional<std::string>& r) {
          return l + "/" + text(r);
        },
        store);
  else
    joined = left.outer_join(
        right,
        [text](const std::optional<std::string>& l, const std::optional<std::string>& r) {
          return text(l) + "/" + text(r);
        },
        store);
  joined.to_stream().to("out", serdes::string(), serdes::string());

  TopologyTestDriver driver(builder.build(), StreamsConfig{{"application.id", "app"},
                                                           {"statestore.cache.max.bytes", cache}});
  auto left_in =
      driver.create_input_topic("left", serdes::string(), serdes::nullable(serdes::string()));
  auto right_in =
      driver.create_input_topic("right", serdes::string(), serdes::nullable(serdes::string()));
  auto out =
      driver.create_output_topic("out", serdes::string(), serdes::nullable(serdes::string()));
  // Kafka Streams' table of table-table join semantics, all on key "k".
  left_in.pipe_input("k", std::nullopt, 1);
  right_in.pipe_input("k", std::nullopt, 2);
  left_in.pipe_input("k", "A", 3);
  right_in.pipe_input("k", "a", 4);
  left_in.pipe_input("k", "B", 5);
  right_in.pipe_input("k", "b", 6);
  left_in.pipe_input("k", std::nullopt, 7);
  right_in.pipe_input("k", std::nullopt, 8);
  left_in.pipe_input("k", "C", 9);
  right_in.pipe_input("k", "c", 10);
  right_in.pipe_input("k", std::nullopt, 11);
  left_in.pipe_input("k", std::nullopt, 12);
  right_in.pipe_input("k", std::nullopt, 13);
  right_in.pipe_input("k", "d", 14);
  left_in.pipe_input("k", "D", 15);

  using Row = std::pair<int64_t, std::optional<std::string>>;
  std::vector<Row> rows;
  for (const auto& r : out.read_records_to_list()) rows.emplace_back(r.timestamp, r.value);
  const std::optional<std::string> deleted;
  std::vector<Row> expected;
  if (kind == kInner)
    expected = {{4, "A/a"},  {5, "B/a"},    {6, "B/b"}, {7, deleted},
                {10, "C/c"}, {11, deleted}, {15, "D/d"}};
  else if (kind == kLeft)
    expected = {{3, "A/null"}, {4, "A/a"},  {5, "B/a"},     {6, "B/b"},    {7, deleted},
                {9, "C/null"}, {10, "C/c"}, {11, "C/null"}, {12, deleted}, {15, "D/d"}};
  else
    expected = {{3, "A/null"},  {4, "A/a"},    {5, "B/a"},     {6, "B/b"},
                {7, "null/b"},  {8, deleted},  {9, "C/null"},  {10, "C/c"},
                {11, "C/null"}, {12, deleted}, {14, "null/d"}, {15, "D/d"}};
  CHECK(rows == expected);
  // The joined table's store holds the last row.
  auto& kept = driver.get_timestamped_key_value_store<std::string, std::string>("joined");
  CHECK(kept.get("k") == ValueAndTimestamp<std::string>{"D/d", 15});
}

TEST_CASE("a joined table without a store is read through both tables", "[unit][join]") {
  StreamsBuilder builder;
  auto names = builder.table("names", serdes::string(), serdes::string());
  auto cities = builder.table("cities", serdes::string(), serdes::string());
  auto people = names.join(cities, [](const std::string& name, const std::string& city) {
    return name + " of " + city;
  });
  CHECK(people.queryable_store_name().empty());
  builder.stream("greetings", serdes::string(), serdes::string())
      .left_join(people,
                 [](const std::string& greeting, const std::optional<std::string>& person) {
                   return greeting + ", " + row_or_none(person);
                 })
      .to("out", serdes::string(), serdes::string());
  TopologyTestDriver driver(builder.build(), StreamsConfig{{"application.id", "app"}});
  auto names_in = driver.create_input_topic("names", serdes::string(), serdes::string());
  auto cities_in = driver.create_input_topic("cities", serdes::string(), serdes::string());
  auto greetings = driver.create_input_topic("greetings", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::string());
  names_in.pipe_input("p1", "Ada", 1);
  greetings.pipe_input("p1", "hello", 2);  // no city yet: no joined row
  cities_in.pipe_input("p1", "Paris", 3);
  greetings.pipe_input("p1", "bonjour", 4);
  CHECK(read_all(out) ==
        std::vector<Output>{{"p1", "hello, none", 2}, {"p1", "bonjour, Ada of Paris", 4}});
}

TEST_CASE("a table-table joiner may take the key", "[unit][join]") {
  StreamsBuilder builder;
  auto names = builder.table("names", serdes::string(), serdes::string());
  auto cities = builder.table("cities", serdes::string(), serdes::string());
  auto people = names.left_join(cities, [](const std::string& id, const std::string& name,
                                           const std::optional<std::string>& city) {
    return id + ": " + name + " of " + row_or_none(city);
  });
  people.to_stream().to("people", serdes::string(), serdes::string());
  // Read through both tables, where the joiner needs the key too.
  builder.stream("greetings", serdes::string(), serdes::string())
      .join(people, [](const std::string& greeting,
                       const std::string& person) { return greeting + ", " + person; })
      .to("out", serdes::string(), serdes::string());
  TopologyTestDriver driver(builder.build(), StreamsConfig{{"application.id", "app"}});
  auto names_in = driver.create_input_topic("names", serdes::string(), serdes::string());
  auto cities_in = driver.create_input_topic("cities", serdes::string(), serdes::string());
  auto greetings = driver.create_input_topic("greetings", serdes::string(), serdes::string());
  auto people_out = driver.create_output_topic("people", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::string());
  names_in.pipe_input("p1", "Ada", 1);
  cities_in.pipe_input("p1", "Paris", 2);
  greetings.pipe_input("p1", "hello", 3);
  CHECK(read_all(people_out) ==
        std::vector<Output>{{"p1", "p1: Ada of none", 1}, {"p1", "p1: Ada of Paris", 2}});
  CHECK(read_all(out) == std::vector<Output>{{"p1", "hello, p1: Ada of Paris", 3}});
}

TEST_CASE("a stream-table join reads a versioned table as of each record's timestamp",
          "[unit][join][versioned-store]") {
  StreamsBuilder builder;
  auto prices = builder.table("prices", serdes::string(), serdes::string(),
                              Materialized<std::string, std::string>::as_versioned(
                                  "prices", std::chrono::milliseconds(1000)));
  prices.to_stream().to("price-updates", serdes::string(), serdes::nullable(serdes::string()));
  builder.stream("orders", serdes::string(), serdes::string())
      .left_join(prices,
                 [](const std::string& order, const std::optional<std::string>& price) {
                   return order + "/" + row_or_none(price);
                 })
      .to("out", serdes::string(), serdes::string());

  TopologyTestDriver driver(builder.build(), StreamsConfig{{"application.id", "app"}});
  auto order_in = driver.create_input_topic("orders", serdes::string(), serdes::string());
  auto price_in =
      driver.create_input_topic("prices", serdes::string(), serdes::nullable(serdes::string()));
  auto out = driver.create_output_topic("out", serdes::string(), serdes::string());
  auto updates = driver.create_output_topic("price-updates", serdes::string(),
                                            serdes::nullable(serdes::string()));

  price_in.pipe_input("tea", "4", 100);
  price_in.pipe_input("tea", "6", 300);
  price_in.pipe_input("tea", "5", 200);           // late: history only, no update downstream
  price_in.pipe_input("tea", std::nullopt, 400);  // deleted from 400 on
  order_in.pipe_input("tea", "o1", 150);          // each order sees the price of its time
  order_in.pipe_input("tea", "o2", 250);
  order_in.pipe_input("tea", "o3", 350);
  order_in.pipe_input("tea", "o4", 50);
  order_in.pipe_input("tea", "o5", 450);
  CHECK(read_all(out) == std::vector<Output>{{"tea", "o1/4", 150},
                                             {"tea", "o2/5", 250},
                                             {"tea", "o3/6", 350},
                                             {"tea", "o4/none", 50},
                                             {"tea", "o5/none", 450}});
  std::vector<std::optional<std::string>> changes;
  for (const auto& record : updates.read_records_to_list()) changes.push_back(record.value);
  CHECK(changes == std::vector<std::optional<std::string>>{"4", "6", std::nullopt});

  // The table's store answers as of any time within its history retention.
  auto& store = driver.get_versioned_key_value_store<std::string, std::string>("prices");
  CHECK(store.get("tea", 250) == VersionedRecord<std::string>{"5", 200, 300});
  CHECK(store.get("tea") == std::nullopt);
  price_in.pipe_input("tea", "7", 2000);  // stream time 2000: history from 1000 on
  CHECK(store.get("tea", 250) == std::nullopt);
  CHECK(store.get("tea", 2500) == VersionedRecord<std::string>{"7", 2000, std::nullopt});
}

TEST_CASE("only a table read from a topic can be versioned", "[unit][join][versioned-store]") {
  StreamsBuilder builder;
  auto counts = [&] {
    builder.stream("in", serdes::string(), serdes::string())
        .group_by_key()
        .count(Materialized<std::string, int64_t>::as_versioned("counts", std::chrono::hours(1)));
  };
  CHECK_THROWS_WITH(counts(), Catch::Contains("only a table read from a topic can be versioned"));
}
