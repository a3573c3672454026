// Foreign-key table-table joins (Kafka Streams' KIP-213) through
// TopologyTestDriver, and the resolver's rule for stale answers by hand.
#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/rill.h"
#include "rill/test_driver.h"

#include "support/capturing_context.h"

using namespace rill;

namespace {

// Orders "customer|product" name their customer; an order without a customer
// ("|product") has no foreign key.
std::optional<std::string> customer_of(const std::string& order) {
  const std::string customer = order.substr(0, order.find('|'));
  if (customer.empty()) return std::nullopt;
  return customer;
}
std::string product_of(const std::string& order) {
  return order.substr(order.find('|') + 1);
}

// "key=value@time", "key=(deleted)@time" for a deletion.
struct Row {
  Row(std::string key, std::optional<std::string> value, int64_t timestamp)
      : text(key + "=" + value.value_or("(deleted)") + "@" + std::to_string(timestamp)) {}
  std::string text;
  bool operator==(const Row&) const = default;
};

}  // namespace

namespace Catch {
template <>
struct StringMaker<Row> {
  static std::string convert(const Row& row) { return row.text; }
};
}  // namespace Catch

TEST_CASE("foreign-key joins follow a changing foreign key and deletions on both sides",
          "[unit][join][foreign-key]") {
  const bool left = GENERATE(false, true);
  const std::string cache = GENERATE(std::string("0"), std::string("10485760"));
  INFO((left ? "left join" : "inner join") << ", cache " << cache);
  StreamsBuilder builder;
  auto orders = builder.table("orders", serdes::string(), serdes::string());
  auto customers = builder.table("customers", serdes::string(), serdes::string());
  const auto store = Materialized<std::string, std::string>::as("enriched");
  KTable<std::string, std::string> enriched;
  if (left)
    enriched = orders.left_join(
        customers, customer_of,
        [](const std::string& order, const std::optional<std::string>& customer) {
          return product_of(order) + "/" + customer.value_or("null");
        },
        store);
  else
    enriched = orders.join(
        customers, customer_of,
        [](const std::string& order, const std::string& customer) {
          return product_of(order) + "/" + customer;
        },
        store);
  enriched.to_stream().to("out", serdes::string(), serdes::nullable(serdes::string()));

  TopologyTestDriver driver(builder.build(), StreamsConfig{{"application.id", "app"},
                                                           {"statestore.cache.max.bytes", cache}});
  auto order_in =
      driver.create_input_topic("orders", serdes::string(), serdes::nullable(serdes::string()));
  auto customer_in =
      driver.create_input_topic("customers", serdes::string(), serdes::nullable(serdes::string()));
  auto out =
      driver.create_output_topic("out", serdes::string(), serdes::nullable(serdes::string()));
  std::vector<Row> expected;
  auto check = [&](const std::vector<Row>& inner, const std::vector<Row>& left_join) {
    std::vector<Row> rows;
    for (const auto& r : out.read_records_to_list()) rows.emplace_back(r.key, r.value, r.timestamp);
    CHECK(rows == (left ? left_join : inner));
  };
  const std::optional<std::string> deleted;

  customer_in.pipe_input("c1", "Ann", 1);
  order_in.pipe_input("o1", "c1|apple", 2);
  check({{"o1", "apple/Ann", 2}}, {{"o1", "apple/Ann", 2}});
  order_in.pipe_input("o2", "c2|pear", 3);  // c2 does not exist yet
  check({}, {{"o2", "pear/null", 3}});
  customer_in.pipe_input("c2", "Bob", 4);
  check({{"o2", "pear/Bob", 4}}, {{"o2", "pear/Bob", 4}});
  customer_in.pipe_input("c1", "Anna", 5);
  check({{"o1", "apple/Anna", 5}}, {{"o1", "apple/Anna", 5}});
  // The foreign key changes: the old customer's updates no longer reach o1.
  order_in.pipe_input("o1", "c2|apple", 6);
  check({{"o1", "apple/Bob", 6}}, {{"o1", "apple/Bob", 6}});
  customer_in.pipe_input("c1", "Annie", 7);
  check({}, {});
  // A deleted foreign row reaches every order that names it, in key order.
  customer_in.pipe_input("c2", std::nullopt, 8);
  check({{"o1", deleted, 8}, {"o2", deleted, 8}},
        {{"o1", "apple/null", 8}, {"o2", "pear/null", 8}});
  // A deleted order deletes its joined row (the inner join has none left).
  order_in.pipe_input("o2", std::nullopt, 9);
  check({}, {{"o2", deleted, 9}});
  // No foreign key: no joined row in an inner join.
  order_in.pipe_input("o3", "|plum", 10);
  check({}, {{"o3", "plum/null", 10}});
  customer_in.pipe_input("c2", "Bo", 11);
  check({{"o1", "apple/Bo", 11}}, {{"o1", "apple/Bo", 11}});
  // A foreign key that names no row deletes the row the old one made.
  order_in.pipe_input("o1", "c3|apple", 12);
  check({{"o1", deleted, 12}}, {{"o1", "apple/null", 12}});
  customer_in.pipe_input("c3", "Cy", 13);
  check({{"o1", "apple/Cy", 13}}, {{"o1", "apple/Cy", 13}});
  // A row that loses its foreign key.
  order_in.pipe_input("o1", "|apple", 14);
  check({{"o1", deleted, 14}}, {{"o1", "apple/null", 14}});
  customer_in.pipe_input("c3", "Cyd", 15);
  check({}, {});

  auto& kept = driver.get_timestamped_key_value_store<std::string, std::string>("enriched");
  if (left) {
    CHECK(kept.get("o1") == ValueAndTimestamp<std::string>{"apple/null", 14});
    CHECK(kept.get("o3") == ValueAndTimestamp<std::string>{"plum/null", 10});
  } else {
    CHECK_FALSE(kept.get("o1"));
    CHECK_FALSE(kept.get("o3"));
  }
  CHECK_FALSE(kept.get("o2"));
}

TEST_CASE("a foreign-key join's internal topics and store are named as Kafka Streams names them",
          "[unit][join][foreign-key]") {
  auto joiner = [](const std::string& order, const std::string& customer) {
    return order + customer;
  };
  {
    StreamsBuilder builder;
    auto orders = builder.table("orders", serdes::string(), serdes::string());
    auto customers = builder.table("customers", serdes::string(), serdes::string());
    orders.join(customers, customer_of, joiner).to_stream().to("out");
    const std::string text = builder.build().describe();
    INFO(text);
    CHECK(std::regex_search(
        text, std::regex("KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-[0-9]{10}-topic")));
    CHECK(text.find("KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-") != std::string::npos);
    CHECK(text.find("KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-") != std::string::npos);
    CHECK(text.find("KTABLE-FK-JOIN-OUTPUT-") != std::string::npos);
  }
  {
    StreamsBuilder builder;
    auto orders = builder.table("orders", serdes::string(), serdes::string());
    auto customers = builder.table("customers", serdes::string(), serdes::string());
    orders.join(customers, customer_of, joiner, {}, "enrich").to_stream().to("out");
    const std::string text = builder.build().describe();
    INFO(text);
    CHECK(text.find("enrich-subscription-registration-topic") != std::string::npos);
    CHECK(text.find("enrich-subscription-response-topic") != std::string::npos);
    CHECK(text.find("enrich-subscription-store") != std::string::npos);
  }
}

TEST_CASE(
    "the internal topics of a foreign-key join take the partition counts of the tables "
    "they lead to",
    "[unit][join][foreign-key]") {
  StreamsBuilder builder;
  auto orders = builder.table("orders", serdes::string(), serdes::string());
  auto customers = builder.table("customers", serdes::string(), serdes::string());
  orders
      .join(
          customers, customer_of,
          [](const std::string& order, const std::string& customer) { return order + customer; },
          {}, "enrich")
      .to_stream()
      .to("out");
  const Topology topology = builder.build();
  const auto counts = topology.partition_counts("app", {{"orders", 6}, {"customers", 3}});
  // Subscriptions meet the customers; answers meet the orders.
  CHECK(counts.at("app-enrich-subscription-registration-topic") == 3);
  CHECK(counts.at("app-enrich-subscription-response-topic") == 6);
  CHECK(counts.at("app-enrich-subscription-store-changelog") == 3);
}

TEST_CASE("a foreign-key join drops an answer asked for a row that has changed since",
          "[unit][join][foreign-key]") {
  using namespace rill::operators;
  std::map<std::string, std::string> orders{{"o1", "c1|apple"}};
  RowReaderFactory<std::string, std::string> rows = [&orders](ProcessingContext&) {
    return [&orders](const std::string& key,
                     int64_t) -> std::optional<ValueAndTimestamp<std::string>> {
      auto it = orders.find(key);
      if (it == orders.end()) return std::nullopt;
      return ValueAndTimestamp<std::string>{it->second, 1};
    };
  };
  SubscriptionResolverProcessor<std::string, std::string, std::string, std::string> resolver(
      rows, serdes::string(), serdes::string(),
      [](const std::string&, const std::string& order, const std::optional<std::string>& customer) {
        return product_of(order) + "/" + customer.value_or("null");
      },
      false);
  rill::testing::CapturingContext<std::string, std::optional<std::string>> context;
  resolver.init(context);
  auto hash_of = [](const std::string& value) { return subscription_hash(value); };

  // The answer for the order's first value arrives after the order changed.
  orders["o1"] = "c2|apple";
  resolver.process({"o1", SubscriptionResponse{hash_of("c1|apple"), "Ann", 0}, 5, {}});
  CHECK(context.forwarded.empty());
  resolver.process({"o1", SubscriptionResponse{hash_of("c2|apple"), "Bob", 0}, 6, {}});
  REQUIRE(context.forwarded.size() == 1);
  CHECK(context.forwarded[0].value == std::optional<std::string>("apple/Bob"));
  // An answer asked for a deleted row: the row is gone, so it deletes.
  orders.erase("o1");
  resolver.process({"o1", SubscriptionResponse{hash_of("c2|apple"), "Bob", 0}, 7, {}});
  CHECK(context.forwarded.size() == 1);
  resolver.process({"o1", SubscriptionResponse{std::nullopt, std::nullopt, 0}, 8, {}});
  REQUIRE(context.forwarded.size() == 2);
  CHECK_FALSE(context.forwarded[1].value);
  CHECK(context.dropped == 0);  // stale answers are expected, not dropped records
}

TEST_CASE("subscriptions and answers keep every field through their serdes",
          "[unit][join][foreign-key]") {
  using namespace rill::operators;
  const Subscription subscription{SubscriptionInstruction::kSubscribeAnswerAlways,
                                  0x0102030405060708, 7, std::string("k\0y", 3)};
  std::string bytes;
  REQUIRE(subscription_serde()->serialize(subscription, bytes));
  const Subscription read = subscription_serde()->deserialize(bytes);
  CHECK(read.instruction == subscription.instruction);
  CHECK(read.value_hash == subscription.value_hash);
  CHECK(read.primary_partition == 7);
  CHECK(read.primary_key == subscription.primary_key);

  for (const auto& response : {SubscriptionResponse{42, std::string(), 3},
                               SubscriptionResponse{std::nullopt, std::nullopt, 3}}) {
    bytes.clear();
    REQUIRE(subscription_response_serde()->serialize(response, bytes));
    const SubscriptionResponse back = subscription_response_serde()->deserialize(bytes);
    CHECK(back.value_hash == response.value_hash);
    CHECK(back.foreign_value == response.foreign_value);
  }
  CHECK_THROWS_AS(subscription_serde()->deserialize(std::string_view("\x01xyz")), SerdeError);
  CHECK_THROWS_WITH(subscription_serde()->deserialize(std::string_view("\x00\x01", 2)),
                    Catch::Contains("foreign-key join subscription"));
  // Prefix scans of one foreign key never reach another whose bytes extend it.
  CHECK(subscription_key("c1", "o1").rfind(subscription_prefix("c1"), 0) == 0);
  CHECK(subscription_key("c10", "o1").rfind(subscription_prefix("c1"), 0) != 0);
}
