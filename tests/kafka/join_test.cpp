// Joins on the real broker: a stream-table join reads its two partitions in
// timestamp order (max.task.idle.ms), so each order sees its customer's row
// as of the order's time; a stream-global-table join enriches from a table
// every instance holds whole.
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/kafka_streams.h"
#include "rill/rill.h"

#include "support/kafka_cluster.h"

using namespace rill;
using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

std::string row_or_none(const std::optional<std::string>& row) {
  return row ? *row : "none";
}

// "key value" of each record.
std::set<std::string> key_values(const std::vector<TestRecord>& records) {
  std::set<std::string> out;
  for (const auto& record : records) out.insert(*record.key + " " + *record.value);
  return out;
}

}  // namespace

TEST_CASE("a stream-table join on the broker sees each row as of the order's time",
          "[kafka][join]") {
  const std::string customers = unique_name("customers"), orders = unique_name("orders"),
                    output = unique_name("enriched");
  create_topic(customers, 1);
  create_topic(orders, 1);
  create_topic(output, 1);
  // Many rows, fetched a few hundred at a time: without waiting for the
  // customers' partition while its records are being fetched, the task would
  // take the orders as soon as they are fetched, and orders placed after
  // their customer's row was written would find no row yet.
  constexpr int kCustomers = 20'000;
  const int64_t base = now_ms() - 3'600'000;
  std::vector<TestRecord> rows;
  for (int i = 0; i < kCustomers; ++i)
    rows.push_back({"c" + std::to_string(i), "name" + std::to_string(i), 0, -1, base + i * 10, {}});
  produce(customers, rows);
  // For a few customers, an order placed just before the row was written and
  // one just after it.
  std::vector<TestRecord> placed;
  std::set<std::string> expected;
  for (const int i : {10, 5'000, 12'000, 19'990}) {
    const std::string customer = "c" + std::to_string(i);
    placed.push_back({customer, "before" + std::to_string(i), 0, -1, base + i * 10 - 5, {}});
    placed.push_back({customer, "after" + std::to_string(i), 0, -1, base + i * 10 + 5, {}});
    expected.insert(customer + " before" + std::to_string(i) + "/none");
    expected.insert(customer + " after" + std::to_string(i) + "/name" + std::to_string(i));
  }
  produce(orders, placed);

  StreamsBuilder builder;
  auto table = builder.table(customers, serdes::string(), serdes::string());
  builder.stream(orders, serdes::string(), serdes::string())
      .left_join(table,
                 [](const std::string& order, const std::optional<std::string>& customer) {
                   return order + "/" + row_or_none(customer);
                 })
      .to(output, serdes::string(), serdes::string());
  StreamsConfig config{{"application.id", unique_name("app-join")},
                       {"bootstrap.servers", bootstrap_servers()},
                       {"commit.interval.ms", "500"},
                       {"buffered.records.per.partition", "200"}};
  KafkaStreams streams(builder.build(), config);
  streams.start();
  const auto out = consume(output, placed.size(), 120s);
  REQUIRE(streams.close(30s));
  CHECK(key_values(out) == expected);
}

TEST_CASE("a stream-global-table join on the broker enriches every order", "[kafka][join]") {
  const std::string products = unique_name("products"), orders = unique_name("orders"),
                    output = unique_name("lines");
  create_topic(products, 3);
  create_topic(orders, 2);
  create_topic(output, 2);
  produce(products, {{"p1", "pen", -1, -1, now_ms(), {}}, {"p2", "pad", -1, -1, now_ms(), {}}});
  // Orders keyed by order id name their product in the value.
  produce(orders, {{"o1", "p1", -1, -1, now_ms(), {}},
                   {"o2", "p2", -1, -1, now_ms(), {}},
                   {"o3", "p9", -1, -1, now_ms(), {}},
                   {"o4", "p1", -1, -1, now_ms(), {}}});

  StreamsBuilder builder;
  auto catalogue = builder.global_table(products, serdes::string(), serdes::string());
  builder.stream(orders, serdes::string(), serdes::string())
      .join(
          catalogue, [](const std::string&, const std::string& product) { return product; },
          [](const std::string& product, const std::string& name) { return product + "=" + name; })
      .to(output, serdes::string(), serdes::string());
  StreamsConfig config{{"application.id", unique_name("app-global-join")},
                       {"bootstrap.servers", bootstrap_servers()},
                       {"commit.interval.ms", "500"}};
  KafkaStreams streams(builder.build(), config);
  // The global table is loaded before RUNNING: no order misses its product.
  streams.start();
  const auto out = consume(output, 3, 90s);
  REQUIRE(streams.close(30s));
  CHECK(key_values(out) == std::set<std::string>{"o1 p1=pen", "o2 p2=pad", "o4 p1=pen"});
}
