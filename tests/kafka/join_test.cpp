// Joins on the real broker: a stream-table join reads its two partitions in
// timestamp order (max.task.idle.ms), so each order sees its customer's row
// as of the order's time; a stream-global-table join enriches from a table
// every instance holds whole; stream-table and stream-stream joins stay exact
// under exactly-once while instances are killed and added.
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <signal.h>

#include "rill/kafka_streams.h"
#include "rill/rill.h"

#include "support/counts.h"
#include "support/kafka_cluster.h"
#include "support/process.h"

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

TEST_CASE(
    "a stream-table join on three instances, one killed and a fourth added, enriches every order "
    "exactly once",
    "[kafka][join][assignment]") {
  const std::string app = unique_name("app-join");
  const std::string orders = unique_name("join-orders"), customers = unique_name("join-customers");
  const std::string output = unique_name("join-out");
  constexpr int kPartitions = 6, kCustomers = 60, kOrdersPerPhase = 5;
  create_topic(orders, kPartitions);
  create_topic(customers, kPartitions);
  create_topic(output, kPartitions);
  // The rows come first, and the orders after them in time: every order finds
  // its customer's row, whichever instance has the task and however it got
  // its store (created, or restored after the owner was killed).
  std::vector<TestRecord> rows;
  for (int c = 0; c < kCustomers; ++c)
    rows.push_back({"c" + std::to_string(c), "row" + std::to_string(c), -1, -1, now_ms(), {}});
  produce(customers, rows);
  int placed = 0;
  std::set<std::string> expected;
  auto produce_phase = [&] {
    std::vector<TestRecord> batch;
    for (int i = 0; i < kOrdersPerPhase; ++i) {
      for (int c = 0; c < kCustomers; ++c) {
        const std::string order = "o" + std::to_string(placed++);
        batch.push_back({"c" + std::to_string(c), order, -1, -1, now_ms(), {}});
        expected.insert("c" + std::to_string(c) + " " + order + "|row" + std::to_string(c));
      }
    }
    produce(orders, batch);
  };
  auto start = [&](const std::string& name) {
    return ChildProcess(
        {test_binary("rill_test_app"), "join", "input=" + orders + "," + customers,
         "output=" + output, "application.id=" + app, "bootstrap.servers=" + bootstrap_servers(),
         "processing.guarantee=exactly_once_v2", "session.timeout.ms=6000",
         "commit.interval.ms=200",
         // A killed instance's open transaction blocks readers until it times out.
         "producer.transaction.timeout.ms=10000", "state.dir=" + temp_state_dir(app + "-" + name)},
        "/tmp/" + app + "-" + name + ".log");
  };
  auto outputs = [&] {
    std::vector<std::string> seen;
    read_to_end(
        output, [&](const TestRecord& r) { seen.push_back(*r.key + " " + *r.value); }, 30s);
    return seen;
  };
  auto all_enriched = [&] {
    const auto deadline = std::chrono::steady_clock::now() + 180s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (outputs().size() >= expected.size()) return true;
      std::this_thread::sleep_for(500ms);
    }
    return false;
  };

  std::map<std::string, std::optional<ChildProcess>> instances;
  for (const std::string name : {"a", "b", "c"}) instances[name].emplace(start(name));
  produce_phase();
  REQUIRE(all_enriched());
  produce_phase();
  instances["a"]->signal(SIGKILL);
  REQUIRE(instances["a"]->wait(30s).has_value());
  instances.erase("a");
  instances["d"].emplace(start("d"));
  // The fourth instance takes tasks over (the killed one's, once the group
  // drops it), with their table stores restored from the changelog.
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  while (tasks_held(*instances["d"]) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(200ms);
  CHECK(tasks_held(*instances["d"]) > 0);
  produce_phase();
  const bool reached = all_enriched();
  std::string log_tails;
  for (auto& [name, instance] : instances) {
    instance->signal(SIGTERM);
    CHECK(instance->wait(60s) == 0);
    log_tails += name + ":\n" + instance->log_tail(2000) + "\n";
  }
  INFO(log_tails);
  REQUIRE(reached);
  // Exactly once: every order once, with its customer's row, nothing else.
  const std::vector<std::string> seen = outputs();
  CHECK(seen.size() == expected.size());
  CHECK(std::set<std::string>(seen.begin(), seen.end()) == expected);
}

TEST_CASE(
    "a stream-stream left join on three instances under exactly-once, one killed and a fourth "
    "added, emits every match once and every unmatched order once after its window",
    "[kafka][join][stream-join]") {
  const std::string app = unique_name("app-sjoin");
  const std::string orders = unique_name("sjoin-orders"), payments = unique_name("sjoin-payments");
  const std::string output = unique_name("sjoin-out");
  constexpr int kPartitions = 6, kOrdersPerPhase = 300;
  create_topic(orders, kPartitions);
  create_topic(payments, kPartitions);
  create_topic(output, kPartitions);
  // Four orders in five are paid half a second after them, within the 2 s
  // window; the fifth is emitted with no payment once stream time passes its
  // time + 2 s, which the next phase's records (or the last ticks) bring.
  int placed = 0, paid = 0;
  std::set<std::string> expected;
  auto produce_phase = [&] {
    const int64_t at = now_ms();
    std::vector<TestRecord> order_batch, payment_batch;
    for (int i = 0; i < kOrdersPerPhase; ++i, ++placed) {
      const std::string order = "o" + std::to_string(placed);
      order_batch.push_back({order, order, -1, -1, at, {}});
      if (placed % 5 == 0) {
        expected.insert(order + " " + order + "|none");
        continue;
      }
      const std::string payment = "p" + std::to_string(placed);
      payment_batch.push_back({order, payment, -1, -1, at + 500, {}});
      expected.insert(order + " " + order + "|" + payment);
      ++paid;
    }
    produce(orders, order_batch);
    produce(payments, payment_batch);
  };
  auto start = [&](const std::string& name) {
    return ChildProcess(
        {test_binary("rill_test_app"), "stream-join", "input=" + orders + "," + payments,
         "output=" + output, "application.id=" + app, "bootstrap.servers=" + bootstrap_servers(),
         "processing.guarantee=exactly_once_v2", "session.timeout.ms=6000",
         "commit.interval.ms=200", "producer.transaction.timeout.ms=10000",
         "state.dir=" + temp_state_dir(app + "-" + name)},
        "/tmp/" + app + "-" + name + ".log");
  };
  auto outputs = [&] {
    std::vector<std::string> seen;
    read_to_end(
        output, [&](const TestRecord& r) { seen.push_back(*r.key + " " + *r.value); }, 30s);
    return seen;
  };
  // Waits until `enough` says the committed output is complete.
  auto await_output = [&](auto enough) {
    const auto deadline = std::chrono::steady_clock::now() + 180s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (enough(outputs())) return true;
      std::this_thread::sleep_for(500ms);
    }
    return false;
  };
  auto matches_reach = [&](int count) {
    return [count](const std::vector<std::string>& seen) {
      return std::count_if(seen.begin(), seen.end(), [](const std::string& line) {
               return !line.ends_with("|none");
             }) >= count;
    };
  };

  std::map<std::string, std::optional<ChildProcess>> instances;
  // What is missing or unexpected, and the instances' logs.
  auto diagnosis = [&] {
    std::string text;
    const std::vector<std::string> seen = outputs();
    const std::set<std::string> seen_set(seen.begin(), seen.end());
    int shown = 0;
    for (const std::string& line : expected)
      if (!seen_set.contains(line) && ++shown <= 10) text += "missing: " + line + "\n";
    for (const std::string& line : seen_set)
      if (!expected.contains(line) && ++shown <= 20) text += "unexpected: " + line + "\n";
    for (auto& [name, instance] : instances) text += name + ":\n" + instance->log_tail(4000) + "\n";
    return text;
  };
  for (const std::string name : {"a", "b", "c"}) instances[name].emplace(start(name));
  produce_phase();
  if (!await_output(matches_reach(paid))) FAIL("the first phase's matches: " << diagnosis());
  produce_phase();
  instances["a"]->signal(SIGKILL);
  REQUIRE(instances["a"]->wait(30s).has_value());
  instances.erase("a");
  instances["d"].emplace(start("d"));
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  while (tasks_held(*instances["d"]) == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(200ms);
  CHECK(tasks_held(*instances["d"]) > 0);
  produce_phase();
  if (!await_output(matches_reach(paid)))
    FAIL("the matches after an instance was killed: " << diagnosis());
  // A payment a minute later on every partition closes the last windows.
  std::vector<TestRecord> ticks;
  for (int p = 0; p < kPartitions; ++p)
    ticks.push_back({"tick" + std::to_string(p), "tick", p, -1, now_ms() + 60'000, {}});
  produce(payments, ticks);
  const bool reached = await_output(
      [&](const std::vector<std::string>& seen) { return seen.size() >= expected.size(); });
  std::string log_tails;
  for (auto& [name, instance] : instances) {
    instance->signal(SIGTERM);
    CHECK(instance->wait(60s) == 0);
    log_tails += name + ":\n" + instance->log_tail(2000) + "\n";
  }
  INFO(log_tails);
  REQUIRE(reached);
  // Exactly once: every match once, every unpaid order once with no payment,
  // nothing else.
  const std::vector<std::string> seen = outputs();
  CHECK(seen.size() == expected.size());
  CHECK(std::set<std::string>(seen.begin(), seen.end()) == expected);
}
