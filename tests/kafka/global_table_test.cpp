// A global table on the real broker: an instance restores it from every
// partition of its topic before it reports RUNNING, a task looks rows up in
// it while the global thread keeps it up to date, and a restart restores only
// what the topic gained after the checkpoint.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/kafka_streams.h"
#include "rill/rill.h"

#include "support/kafka_cluster.h"
#include "support/temp_dir.h"

using namespace rill;
using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

using Customers = KeyValueStore<std::string, ValueAndTimestamp<std::string>>;

// Names each order's customer (the order's value) from the global table.
class NameCustomer final : public Processor<std::string, std::string> {
 public:
  void init(ProcessorContext<std::string, std::string>& context) override {
    context_ = &context;
    customers_ = &context.state_store<Customers>("customers");
  }
  void process(const Record<std::string, std::string>& record) override {
    auto row = customers_->get(record.value);
    context_->forward({record.key, row ? row->value : "unknown", record.timestamp, {}});
  }

 private:
  ProcessorContext<std::string, std::string>* context_ = nullptr;
  Customers* customers_ = nullptr;
};

// What an instance reported about the global store up to its first RUNNING.
struct AtRunning {
  std::mutex mutex;
  // By partition of the customers topic: the restore's last report.
  std::map<int32_t, KafkaStreams::RestoreProgress> restores;
  bool running = false;
  // At the first RUNNING: partitions reported restored, records they
  // restored, and records applied to global stores (Stats).
  std::size_t done_partitions = 0;
  uint64_t restored = 0;
  uint64_t total = 0;
  uint64_t global_records = 0;
};

struct Instance {
  std::unique_ptr<KafkaStreams> streams;
  std::shared_ptr<AtRunning> seen = std::make_shared<AtRunning>();
};

Instance start_instance(const std::string& app, const std::string& state_dir,
                        const std::string& guarantee, const std::string& customers,
                        const std::string& orders, const std::string& named) {
  StreamsBuilder builder;
  builder.global_table(customers, serdes::string(), serdes::string(),
                       Materialized<std::string, std::string>::as("customers"));
  builder.stream(orders, serdes::string(), serdes::string())
      .process([] { return std::make_unique<NameCustomer>(); })
      .to(named, serdes::string(), serdes::string());
  StreamsConfig config{{"application.id", app},       {"bootstrap.servers", bootstrap_servers()},
                       {"state.dir", state_dir},      {"processing.guarantee", guarantee},
                       {"commit.interval.ms", "200"}, {"source.topic.wait.ms", "10000"}};
  Instance instance;
  instance.streams = std::make_unique<KafkaStreams>(builder.build(), config);
  KafkaStreams* streams = instance.streams.get();
  auto seen = instance.seen;
  streams->set_restore_listener([seen, customers](const KafkaStreams::RestoreProgress& progress) {
    if (progress.topic != customers) return;
    std::lock_guard lock(seen->mutex);
    seen->restores[progress.partition] = progress;
  });
  streams->set_state_listener([seen, streams](KafkaStreams::State state, KafkaStreams::State) {
    if (state != KafkaStreams::State::kRunning) return;
    std::lock_guard lock(seen->mutex);
    if (seen->running) return;
    seen->running = true;
    for (const auto& [partition, progress] : seen->restores) {
      seen->done_partitions += progress.done ? 1 : 0;
      seen->restored += progress.restored;
      seen->total += progress.total;
    }
    seen->global_records = streams->stats().global_records;
  });
  streams->start();
  return instance;
}

void wait_running(const Instance& instance) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (instance.streams->state() != KafkaStreams::State::kRunning &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
}

// The latest value per key of `topic`.
std::map<std::string, std::string> read_named(const std::string& topic) {
  std::map<std::string, std::string> latest;
  REQUIRE(read_to_end(
      topic, [&](const TestRecord& r) { latest[r.key.value_or("")] = r.value.value_or(""); }, 30s));
  return latest;
}

// Produces orders and waits until each is named in `named`.
std::map<std::string, std::string> name_orders(const std::string& orders, const std::string& named,
                                               const std::vector<TestRecord>& batch) {
  produce(orders, batch);
  std::map<std::string, std::string> latest;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  auto all_named = [&] {
    for (const auto& order : batch)
      if (!latest.contains(*order.key)) return false;
    return true;
  };
  while (std::chrono::steady_clock::now() < deadline) {
    latest = read_named(named);
    if (all_named()) break;
    std::this_thread::sleep_for(200ms);
  }
  return latest;
}

TestRecord record(const std::string& key, const std::string& value) {
  return {key, value, -1, -1, now_ms(), {}};
}

}  // namespace

TEST_CASE(
    "a global table is restored before RUNNING, followed while running, and restarts "
    "from its checkpoint",
    "[kafka][global]") {
  // Under exactly-once the global consumer reads committed records only.
  const std::string guarantee = GENERATE(as<std::string>(), "at_least_once", "exactly_once_v2");
  CAPTURE(guarantee);
  const std::string customers = unique_name("customers"), orders = unique_name("orders"),
                    named = unique_name("named-orders"), app = unique_name("app-global");
  create_topic(customers, 3);
  create_topic(orders, 2);
  create_topic(named, 2);
  TempDir state_dir;

  constexpr int kCustomers = 300;
  std::vector<TestRecord> rows;
  for (int i = 0; i < kCustomers; ++i)
    rows.push_back(record("c" + std::to_string(i), "name-" + std::to_string(i)));
  produce(customers, rows);

  {
    Instance instance = start_instance(app, state_dir.path(), guarantee, customers, orders, named);
    wait_running(instance);
    {
      // RUNNING came only after every partition was restored: all the rows
      // produced before start() were in the global store by then.
      std::lock_guard lock(instance.seen->mutex);
      REQUIRE(instance.seen->running);
      CHECK(instance.seen->restores.size() == 3);
      CHECK(instance.seen->done_partitions == 3);
      CHECK(instance.seen->restored == kCustomers);
      CHECK(instance.seen->total == kCustomers);
      CHECK(instance.seen->global_records == kCustomers);
    }

    // A task reads the rows.
    std::vector<TestRecord> first;
    for (int i = 0; i < 10; ++i)
      first.push_back(record("o" + std::to_string(i), "c" + std::to_string(i * 29)));
    auto named_orders = name_orders(orders, named, first);
    for (int i = 0; i < 10; ++i)
      CHECK(named_orders["o" + std::to_string(i)] == "name-" + std::to_string(i * 29));

    // Rows written while the instance runs reach the tasks: a new customer
    // and a deleted one.
    produce(customers,
            {record("c-new", "late"), {std::string("c0"), std::nullopt, -1, -1, now_ms(), {}}});
    bool seen_new = false, seen_deleted = false;
    const auto follow_deadline = std::chrono::steady_clock::now() + 60s;
    for (int probe = 0;
         !(seen_new && seen_deleted) && std::chrono::steady_clock::now() < follow_deadline;
         ++probe) {
      const std::string p = std::to_string(probe);
      auto latest =
          name_orders(orders, named, {record("new-" + p, "c-new"), record("gone-" + p, "c0")});
      seen_new = latest["new-" + p] == "late";
      seen_deleted = latest["gone-" + p] == "unknown";
    }
    CHECK(seen_new);
    CHECK(seen_deleted);
    CHECK(instance.streams->stats().global_records == kCustomers + 2);
    REQUIRE(instance.streams->close(30s));
    CHECK(instance.streams->state() == KafkaStreams::State::kNotRunning);
  }
  CHECK(std::filesystem::exists(state_dir.path() / app / "global" / ".checkpoint"));

  // While it is stopped the topic gains 5 rows: a restart restores those only.
  std::vector<TestRecord> tail;
  for (int i = 0; i < 5; ++i)
    tail.push_back(record("t" + std::to_string(i), "tail-" + std::to_string(i)));
  produce(customers, tail);
  {
    Instance instance = start_instance(app, state_dir.path(), guarantee, customers, orders, named);
    wait_running(instance);
    {
      std::lock_guard lock(instance.seen->mutex);
      REQUIRE(instance.seen->running);
      CHECK(instance.seen->done_partitions == 3);
      CHECK(instance.seen->total == 5);
      CHECK(instance.seen->restored == 5);
      CHECK(instance.seen->global_records == 5);
    }
    // The rows from before the restart are still there, from the local store.
    auto latest = name_orders(
        orders, named,
        {record("after-1", "c1"), record("after-t", "t3"), record("after-new", "c-new")});
    CHECK(latest["after-1"] == "name-1");
    CHECK(latest["after-t"] == "tail-3");
    CHECK(latest["after-new"] == "late");
    REQUIRE(instance.streams->close(30s));
  }
}

TEST_CASE("a missing global topic fails start() naming it", "[kafka][global]") {
  const std::string orders = unique_name("orders"), named = unique_name("named-orders");
  create_topic(orders, 1);
  TempDir state_dir;
  StreamsBuilder builder;
  builder.global_table(unique_name("no-such-topic"), serdes::string(), serdes::string(),
                       Materialized<std::string, std::string>::as("customers"));
  builder.stream(orders, serdes::string(), serdes::string()).to(named);
  KafkaStreams streams(builder.build(), {{"application.id", unique_name("app-global-missing")},
                                         {"bootstrap.servers", bootstrap_servers()},
                                         {"state.dir", state_dir.path().string()},
                                         {"source.topic.wait.ms", "2000"}});
  CHECK_THROWS_WITH(streams.start(), Catch::Contains("of global store 'customers' does not exist"));
}

TEST_CASE("a corrupt record of a global topic under log-and-fail fails the instance",
          "[kafka][global]") {
  const std::string rates = unique_name("rates"), orders = unique_name("orders");
  create_topic(rates, 2);
  create_topic(orders, 1);
  TempDir state_dir;
  produce(rates, {{std::string("eur"), std::string(8, '\0'), -1, -1, now_ms(), {}}});
  StreamsBuilder builder;
  builder.global_table(rates, serdes::string(), serdes::int64(),
                       Materialized<std::string, int64_t>::as("rates"));
  builder.stream(orders, serdes::string(), serdes::string()).to(unique_name("out"));
  KafkaStreams streams(builder.build(), {{"application.id", unique_name("app-global-corrupt")},
                                         {"bootstrap.servers", bootstrap_servers()},
                                         {"state.dir", state_dir.path().string()},
                                         {"source.topic.wait.ms", "10000"}});
  streams.start();
  produce(rates, {{std::string("usd"), std::string("not 8 bytes"), -1, -1, now_ms(), {}}});
  REQUIRE(streams.wait_for_stop(60s));
  CHECK(streams.state() == KafkaStreams::State::kError);
  CHECK_THAT(streams.error(),
             Catch::Contains("global thread: deserialization error at topic " + rates));
}
