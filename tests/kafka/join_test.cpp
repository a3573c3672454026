// Joins on the real broker: a stream-table join reads its two partitions in
// timestamp order (max.task.idle.ms), so each order sees its customer's row
// as of the order's time; a stream-global-table join enriches from a table
// every instance holds whole; stream-table and stream-stream joins stay exact
// under exactly-once while instances are killed and added; a foreign-key join
// of tables with different partition counts ends with every order joined to
// its current customer while foreign keys, rows and instances change.
#include <algorithm>
#include <atomic>
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
#include "support/eventually.h"
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

// Instances of rill_test_app running one join topology under exactly-once,
// started, killed and replaced by name, and the join's committed output.
class JoinInstances {
 public:
  JoinInstances(std::string topology, std::string inputs, std::string output)
      : topology_(std::move(topology)),
        inputs_(std::move(inputs)),
        output_(std::move(output)),
        app_(unique_name("app-" + topology_)) {}

  void start(const std::string& name) {
    instances_[name].emplace(ChildProcess(
        {test_binary("rill_test_app"), topology_, "input=" + inputs_, "output=" + output_,
         "application.id=" + app_, "bootstrap.servers=" + bootstrap_servers(),
         "processing.guarantee=exactly_once_v2", "session.timeout.ms=6000",
         "commit.interval.ms=200",
         // A killed instance's open transaction blocks readers until it times out.
         "producer.transaction.timeout.ms=10000", "state.dir=" + temp_state_dir(app_ + "-" + name)},
        "/tmp/" + app_ + "-" + name + ".log"));
  }

  // SIGKILLs `killed` and starts `added`, which must take tasks over (the
  // killed one's, once the group drops it), their stores restored from the
  // changelogs.
  void kill_and_add(const std::string& killed, const std::string& added) {
    instances_.at(killed)->signal(SIGKILL);
    REQUIRE(instances_.at(killed)->wait(30s).has_value());
    instances_.erase(killed);
    start(added);
    const auto deadline = std::chrono::steady_clock::now() + 90s;
    while (tasks_held(*instances_[added]) == 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(200ms);
    CHECK(tasks_held(*instances_[added]) > 0);
  }

  // "key value" of each committed output record.
  std::vector<std::string> outputs() const {
    std::vector<std::string> seen;
    read_to_end(
        output_, [&](const TestRecord& r) { seen.push_back(*r.key + " " + *r.value); }, 30s);
    return seen;
  }

  // Waits up to 180 s for the committed output to satisfy `enough`.
  template <class Enough>
  bool await_output(Enough enough) const {
    const auto deadline = std::chrono::steady_clock::now() + 180s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (enough(outputs())) return true;
      std::this_thread::sleep_for(500ms);
    }
    return false;
  }

  // What the output misses or has beyond `expected`, and the instances' logs.
  std::string diagnosis(const std::set<std::string>& expected) const {
    const std::vector<std::string> seen = outputs();
    const std::set<std::string> seen_set(seen.begin(), seen.end());
    std::string text;
    int missing = 0, unexpected = 0;
    for (const std::string& line : expected)
      if (!seen_set.contains(line) && ++missing <= 10) text += "missing: " + line + "\n";
    for (const std::string& line : seen_set)
      if (!expected.contains(line) && ++unexpected <= 10) text += "unexpected: " + line + "\n";
    text += std::to_string(missing) + " missing, " + std::to_string(unexpected) + " unexpected, " +
            std::to_string(seen.size()) + " records\n";
    for (const auto& [name, instance] : instances_)
      text += name + ":\n" + instance->log_tail(4000) + "\n";
    return text;
  }

  // SIGTERMs every instance; each must exit with 0.
  void stop() {
    for (auto& [name, instance] : instances_) {
      instance->signal(SIGTERM);
      const auto code = instance->wait(60s);
      INFO(name << ":\n" << instance->log_tail(2000));
      CHECK(code == 0);
    }
    instances_.clear();
  }

 private:
  std::string topology_, inputs_, output_, app_;
  std::map<std::string, std::optional<ChildProcess>> instances_;
};

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

// With max.task.idle.ms, a task whose table partition is read to its end
// waits that long for a row that may still come before it takes an order
// alone, and goes on once the wait is over although no record arrives.
TEST_CASE("a stream-table join waits out max.task.idle.ms for an empty table partition",
          "[kafka][join]") {
  const std::string customers = unique_name("customers"), orders = unique_name("orders"),
                    output = unique_name("enriched");
  create_topic(customers, 1);
  create_topic(orders, 1);
  create_topic(output, 1);
  produce(orders, {{"c1", "first", 0, -1, now_ms(), {}}});

  StreamsBuilder builder;
  auto table = builder.table(customers, serdes::string(), serdes::string());
  builder.stream(orders, serdes::string(), serdes::string())
      .left_join(table,
                 [](const std::string& order, const std::optional<std::string>& customer) {
                   return order + "/" + row_or_none(customer);
                 })
      .to(output, serdes::string(), serdes::string());
  constexpr auto kIdle = 2s;
  StreamsConfig config{{"application.id", unique_name("app-join-idle")},
                       {"bootstrap.servers", bootstrap_servers()},
                       {"commit.interval.ms", "500"},
                       {"max.task.idle.ms", std::to_string(kIdle.count() * 1000)}};
  KafkaStreams streams(builder.build(), config);
  streams.start();
  REQUIRE(eventually([&] { return streams.state() == KafkaStreams::State::kRunning; }));
  const auto running = std::chrono::steady_clock::now();
  const auto out = consume(output, 1, 60s);
  const auto waited = std::chrono::steady_clock::now() - running;
  REQUIRE(streams.close(30s));
  CHECK(key_values(out) == std::set<std::string>{"c1 first/none"});
  CHECK(waited >= kIdle - 200ms);
}

// The group assigns a task's driving topic and the instance assigns the
// other sources itself, so the consumer has not subscribed to them. Unless
// it already keeps their metadata, it learns their leaders at librdkafka's
// next scan of topics it knows nothing of, up to a second after they are
// assigned, and the task waits that long for their first records.
TEST_CASE("a join's tasks read both sides from their first fetch", "[kafka][join]") {
  const std::string customers = unique_name("customers"), orders = unique_name("orders"),
                    output = unique_name("enriched");
  create_topic(customers, 1);
  create_topic(orders, 1);
  create_topic(output, 1);
  const int64_t placed = now_ms();
  produce(customers, {{"c1", "ada", 0, -1, placed - 1000, {}}});
  produce(orders, {{"c1", "first", 0, -1, placed, {}}});

  using Clock = std::chrono::steady_clock;
  std::atomic<int64_t> joined_at{0};
  StreamsBuilder builder;
  auto table = builder.table(customers, serdes::string(), serdes::string());
  builder.stream(orders, serdes::string(), serdes::string())
      .left_join(table,
                 [&](const std::string& order, const std::optional<std::string>& customer) {
                   joined_at.store(Clock::now().time_since_epoch().count());
                   return order + "/" + row_or_none(customer);
                 })
      .to(output, serdes::string(), serdes::string());
  StreamsConfig config{{"application.id", unique_name("app-join-first-fetch")},
                       {"bootstrap.servers", bootstrap_servers()},
                       {"commit.interval.ms", "500"}};
  KafkaStreams streams(builder.build(), config);
  streams.start();
  REQUIRE(eventually([&] { return streams.state() == KafkaStreams::State::kRunning; }));
  const auto running = Clock::now();
  const auto out = consume(output, 1, 60s);
  REQUIRE(streams.close(30s));
  CHECK(key_values(out) == std::set<std::string>{"c1 first/ada"});
  // About 0.1 s here; 0.9 s and more while the consumer did not know the
  // followers' leaders.
  const auto joined = Clock::time_point(Clock::duration(joined_at.load()));
  CHECK(joined - running < 600ms);
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
  auto all_enriched = [&](const std::vector<std::string>& seen) {
    return seen.size() >= expected.size();
  };

  JoinInstances instances("join", orders + "," + customers, output);
  for (const std::string name : {"a", "b", "c"}) instances.start(name);
  produce_phase();
  if (!instances.await_output(all_enriched))
    FAIL("the first phase: " << instances.diagnosis(expected));
  produce_phase();
  instances.kill_and_add("a", "d");
  produce_phase();
  if (!instances.await_output(all_enriched))
    FAIL("after an instance was killed: " << instances.diagnosis(expected));
  instances.stop();
  // Exactly once: every order once, with its customer's row, nothing else.
  const std::vector<std::string> seen = instances.outputs();
  CHECK(seen.size() == expected.size());
  CHECK(std::set<std::string>(seen.begin(), seen.end()) == expected);
}

TEST_CASE(
    "a stream-stream left join on three instances under exactly-once, one killed and a fourth "
    "added, emits every match once and every unmatched order once after its window",
    "[kafka][join][stream-join]") {
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
  auto all_matches = [&](const std::vector<std::string>& seen) {
    return std::count_if(seen.begin(), seen.end(),
                         [](const std::string& line) { return !line.ends_with("|none"); }) >= paid;
  };

  JoinInstances instances("stream-join", orders + "," + payments, output);
  for (const std::string name : {"a", "b", "c"}) instances.start(name);
  produce_phase();
  if (!instances.await_output(all_matches))
    FAIL("the first phase's matches: " << instances.diagnosis(expected));
  produce_phase();
  instances.kill_and_add("a", "d");
  produce_phase();
  if (!instances.await_output(all_matches))
    FAIL("the matches after an instance was killed: " << instances.diagnosis(expected));
  // A payment a minute later on every partition closes the last windows.
  std::vector<TestRecord> ticks;
  for (int p = 0; p < kPartitions; ++p)
    ticks.push_back({"tick" + std::to_string(p), "tick", p, -1, now_ms() + 60'000, {}});
  produce(payments, ticks);
  if (!instances.await_output(
          [&](const std::vector<std::string>& seen) { return seen.size() >= expected.size(); }))
    FAIL("the unmatched orders: " << instances.diagnosis(expected));
  instances.stop();
  // Exactly once: every match once, every unpaid order once with no payment,
  // nothing else.
  const std::vector<std::string> seen = instances.outputs();
  CHECK(seen.size() == expected.size());
  CHECK(std::set<std::string>(seen.begin(), seen.end()) == expected);
}

TEST_CASE(
    "a foreign-key join on three instances follows changing foreign keys, rows and deletions "
    "while an instance is killed and another added",
    "[kafka][join][foreign-key]") {
  const std::string orders = unique_name("fk-orders"), customers = unique_name("fk-customers");
  const std::string output = unique_name("fk-out");
  constexpr int kCustomers = 20, kOrders = 200;
  // Different partition counts: the join needs no co-partitioning.
  create_topic(orders, 6);
  create_topic(customers, 3);
  create_topic(output, 6);
  std::map<std::string, std::string> customer_rows;  // the current rows
  std::map<std::string, std::optional<std::string>> order_rows;
  auto set_customers = [&](const std::string& version) {
    std::vector<TestRecord> batch;
    for (int c = 0; c < kCustomers; ++c) {
      const std::string key = "c" + std::to_string(c);
      customer_rows[key] = key + "-" + version;
      batch.push_back({key, customer_rows[key], -1, -1, now_ms(), {}});
    }
    produce(customers, batch);
  };
  // Order i names customer (i + shift) % (kCustomers + 2): the last two name
  // no customer.
  auto set_orders = [&](int shift, int delete_every) {
    std::vector<TestRecord> batch;
    for (int i = 0; i < kOrders; ++i) {
      const std::string key = "o" + std::to_string(i);
      if (delete_every > 0 && i % delete_every == 0) {
        order_rows[key] = std::nullopt;
        batch.push_back({key, std::nullopt, -1, -1, now_ms(), {}});
        continue;
      }
      order_rows[key] =
          "c" + std::to_string((i + shift) % (kCustomers + 2)) + "|item" + std::to_string(i);
      batch.push_back({key, order_rows[key], -1, -1, now_ms(), {}});
    }
    produce(orders, batch);
  };
  // The joined table each order must end with.
  auto expected = [&] {
    std::map<std::string, std::optional<std::string>> rows;
    for (const auto& [key, order] : order_rows) {
      if (!order) {
        rows[key] = std::nullopt;
        continue;
      }
      const std::string customer = order->substr(0, order->find('|'));
      const auto row = customer_rows.find(customer);
      rows[key] = order->substr(order->find('|') + 1) + "|" +
                  (row == customer_rows.end() ? std::string("none") : row->second);
    }
    return rows;
  };
  auto last_rows = [&] {
    std::map<std::string, std::optional<std::string>> last;
    read_to_end(
        output, [&](const TestRecord& r) { last[*r.key] = r.value; }, 30s);
    return last;
  };
  auto await_rows = [&](const std::map<std::string, std::optional<std::string>>& want) {
    const auto deadline = std::chrono::steady_clock::now() + 180s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (last_rows() == want) return true;
      std::this_thread::sleep_for(500ms);
    }
    return false;
  };
  auto differences = [&](const std::map<std::string, std::optional<std::string>>& want) {
    const auto seen = last_rows();
    std::string text;
    int shown = 0;
    for (const auto& [key, row] : want) {
      const auto it = seen.find(key);
      if (it != seen.end() && it->second == row) continue;
      if (++shown > 10) break;
      text += key + ": expected " + row.value_or("(deleted)") + ", last " +
              (it == seen.end() ? std::string("(none)") : it->second.value_or("(deleted)")) + "\n";
    }
    return text;
  };

  JoinInstances instances("fk-join", orders + "," + customers, output);
  for (const std::string name : {"a", "b", "c"}) instances.start(name);
  set_customers("v1");
  set_orders(0, 0);
  if (!await_rows(expected())) FAIL("the first rows: " << differences(expected()));
  // Foreign keys change, customer rows change, some orders are deleted, and
  // an instance dies while the subscriptions and answers are on their way.
  set_orders(7, 0);
  set_customers("v2");
  instances.kill_and_add("a", "d");
  set_orders(13, 9);
  set_customers("v3");
  if (!await_rows(expected()))
    FAIL("after the changes: " << differences(expected()) << instances.diagnosis({}));
  instances.stop();
}
