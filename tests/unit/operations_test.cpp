// What operators rely on without a broker: the metrics registry's families
// and lag parsing, the endpoint's address checks, the JSON log format, and
// that the shipped dashboard and alerting rules name metrics that exist and
// pass promtool.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <prometheus/text_serializer.h>
#include <spdlog/sinks/ostream_sink.h>

#include "rill/json.h"
#include "rill/kafka_streams.h"
#include "rill/rill.h"

#include "log/log.h"
#include "metrics/http_server.h"
#include "metrics/registry.h"
#include "runtime/allocator.h"
#include "support/command.h"

using namespace rill;
using rill::testing::CommandResult;
using rill::testing::run_command;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// librdkafka's statistics for a consumer with two partitions of one topic:
// one assigned and lagging, one not fetched by this client.
constexpr const char* kConsumerStatistics = R"({
  "name": "app-consumer#consumer-1", "type": "consumer",
  "topics": {"orders": {"topic": "orders", "partitions": {
    "0": {"partition": 0, "fetch_state": "active", "consumer_lag": 42},
    "1": {"partition": 1, "fetch_state": "none", "consumer_lag": -1},
    "-1": {"partition": -1, "fetch_state": "none", "consumer_lag": -1}}}}
})";

constexpr const char* kProducerStatistics = R"({
  "name": "app-producer#producer-2", "type": "producer", "msg_cnt": 7, "msg_size": 700,
  "brokers": {"b1": {"txerrs": 2}, "b2": {"txerrs": 1}}
})";

// A registry with one of everything, so every family appears.
std::unique_ptr<metrics::Registry> full_registry() {
  auto registry = std::make_unique<metrics::Registry>("app", "app-1", true, true);
  registry->set_instance_values([] {
    metrics::InstanceValues values;
    values.state = "RUNNING";
    values.ready = true;
    values.commits = 3;
    values.stores = true;
    values.rocksdb_memory_bytes = 5'000'000;
    values.rocksdb_memory_limit_bytes = 100'000'000;
    values.rocksdb_memtable_bytes = 4'000'000;
    values.store_cache_bytes = 700'000;
    values.store_cache_max_bytes = 10'000'000;
    values.heap_known = true;
    values.heap_allocated_bytes = 90'000'000;
    values.heap_free_bytes = 30'000'000;
    return values;
  });
  auto task = registry->task({0, 1}, {"source", "count", "sink"}, {"counts"});
  if (auto* latency = task->latency_of("counts")) latency->get.observe_ns(3'000);
  task->assigned = true;
  task->processed.add(5);
  task->processor_records[1].add(4);
  task->process_latency.observe_ns(2'000);
  task->process_latency.observe_ns(2'000'000);
  task->end_to_end_latency.observe_ns(30'000'000);
  registry->on_statistics(kConsumerStatistics);
  registry->on_statistics(kProducerStatistics);
  registry->publish_partitions({{"orders", 0, 12, true}});
  registry->publish_stores({{"0_1", "counts", 10, 4096, 6, 2}});
  registry->on_restore_progress("counts", "app-counts-changelog", 1, 30, 100, false);
  registry->commit_latency.observe_ns(5'000'000);
  registry->set_worker_threads(2);
  registry->worker_busy_ns(1).add(1'500'000'000);
  return registry;
}

std::string exposition(const metrics::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

}  // namespace

TEST_CASE("the registry exports task counters, histograms, lag and statistics", "[metrics][unit]") {
  auto registry = full_registry();
  const std::string text = exposition(*registry);
  INFO(text);
  CHECK(registry->consumer_lag("orders", 0) == 42);
  CHECK(registry->consumer_lag("orders", 1) == -1);  // not fetched here: not ours
  CHECK(
      text.find(
          R"(rill_consumer_lag_records{application_id="app",client_id="app-1",topic="orders",partition="0"} 42)") !=
      std::string::npos);
  CHECK(text.find("partition=\"1\"} -1") == std::string::npos);
  CHECK(
      text.find(
          R"(rill_records_processed_total{application_id="app",client_id="app-1",task="0_1"} 5)") !=
      std::string::npos);
  CHECK(
      text.find(
          R"(rill_processor_records_total{application_id="app",client_id="app-1",task="0_1",processor="count"} 4)") !=
      std::string::npos);
  // 2 µs falls in the 5 µs bucket, 2 ms in the 5 ms one; both are under 10 ms.
  CHECK(
      text.find(
          R"(rill_process_latency_seconds_bucket{application_id="app",client_id="app-1",task="0_1",le="1e-06"} 0)") !=
      std::string::npos);
  CHECK(
      text.find(
          R"(rill_process_latency_seconds_bucket{application_id="app",client_id="app-1",task="0_1",le="5e-06"} 1)") !=
      std::string::npos);
  CHECK(
      text.find(
          R"(rill_process_latency_seconds_bucket{application_id="app",client_id="app-1",task="0_1",le="0.01"} 2)") !=
      std::string::npos);
  CHECK(
      text.find(
          R"(rill_process_latency_seconds_count{application_id="app",client_id="app-1",task="0_1"} 2)") !=
      std::string::npos);
  CHECK(text.find(R"(rill_producer_queue_messages{application_id="app",client_id="app-1"} 7)") !=
        std::string::npos);
  CHECK(text.find(R"(rill_rocksdb_memory_bytes{application_id="app",client_id="app-1"} 5000000)") !=
        std::string::npos);
  CHECK(
      text.find(
          R"(rill_rocksdb_memory_limit_bytes{application_id="app",client_id="app-1"} 100000000)") !=
      std::string::npos);
  CHECK(
      text.find(R"(rill_rocksdb_memtable_bytes{application_id="app",client_id="app-1"} 4000000)") !=
      std::string::npos);
  CHECK(text.find(R"(rill_store_cache_bytes{application_id="app",client_id="app-1"} 700000)") !=
        std::string::npos);
  CHECK(
      text.find(R"(rill_store_cache_max_bytes{application_id="app",client_id="app-1"} 10000000)") !=
      std::string::npos);
  CHECK(
      text.find(R"(rill_heap_allocated_bytes{application_id="app",client_id="app-1"} 90000000)") !=
      std::string::npos);
  CHECK(text.find(R"(rill_heap_free_bytes{application_id="app",client_id="app-1"} 30000000)") !=
        std::string::npos);
  CHECK(text.find(
            R"(rill_producer_request_errors_total{application_id="app",client_id="app-1"} 3)") !=
        std::string::npos);
  CHECK(
      text.find(
          R"(rill_restore_remaining_records{application_id="app",client_id="app-1",store="counts",topic="app-counts-changelog",partition="1"} 70)") !=
      std::string::npos);
  CHECK(
      text.find(
          R"(rill_store_get_latency_seconds_count{application_id="app",client_id="app-1",task="0_1",store="counts"} 1)") !=
      std::string::npos);
  CHECK(
      text.find(
          R"(rill_worker_busy_seconds_total{application_id="app",client_id="app-1",thread="1"} 1.5)") !=
      std::string::npos);
  CHECK(text.find(R"(rill_state{application_id="app",client_id="app-1",state="RUNNING"} 1)") !=
        std::string::npos);

  // A task no longer assigned disappears; assigned again, it continues.
  registry->task({0, 1}, {})->assigned = false;
  CHECK(exposition(*registry).find("rill_records_processed_total") == std::string::npos);
  auto again = registry->task({0, 1}, {"source", "count", "sink"});
  again->assigned = true;
  CHECK(again->processed.value() == 5);
}

TEST_CASE("promtool accepts the exposition, the alerting rules and the scrape config",
          "[metrics][unit]") {
  const std::string file = "/tmp/rill-unit-exposition.prom";
  std::ofstream(file) << exposition(*full_registry());
  CommandResult metrics_check = run_command("promtool check metrics < " + file);
  INFO(metrics_check.output);
  CHECK(metrics_check.exit_code == 0);
  CHECK(metrics_check.output.empty());
  std::remove(file.c_str());

  const std::string config = std::string(RILL_SOURCE_DIR) + "/config/prometheus/";
  CommandResult rules = run_command("promtool check rules " + config + "alerts.yml");
  INFO(rules.output);
  CHECK(rules.exit_code == 0);
  CommandResult scrape = run_command("promtool check config " + config + "prometheus.yml");
  INFO(scrape.output);
  CHECK(scrape.exit_code == 0);
}

TEST_CASE("the dashboard and the alerts name only metrics rill exports", "[metrics][unit]") {
  std::set<std::string> exported;
  for (const auto& family : full_registry()->Collect()) {
    exported.insert(family.name);
    if (family.type == prometheus::MetricType::Histogram) exported.insert(family.name + "_bucket");
  }
  // Families that only appear with data a unit test cannot make.
  for (const char* name : {"rill_buffered_records", "rill_partition_paused"})
    CHECK(exported.contains(name));

  const std::string dashboard =
      read_file(std::string(RILL_SOURCE_DIR) + "/config/grafana/rill-dashboard.json");
  const std::string alerts =
      read_file(std::string(RILL_SOURCE_DIR) + "/config/prometheus/alerts.yml");
  REQUIRE_NOTHROW(nlohmann::json::parse(dashboard));
  // Every "rill_" followed by lowercase letters and underscores. A scan rather
  // than std::regex: GCC 12 reports a false maybe-uninitialized inside <regex>
  // under -fsanitize, which would fail the sanitizer builds.
  const auto is_name_char = [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; };
  int referenced = 0;
  for (const std::string* text : {&dashboard, &alerts}) {
    std::size_t at = 0;
    while ((at = text->find("rill_", at)) != std::string::npos) {
      std::size_t end = at + 5;
      while (end < text->size() && is_name_char((*text)[end])) ++end;
      const std::string name = text->substr(at, end - at);
      at = end;
      if (name == "rill_" || name.starts_with("rill_dashboard")) continue;
      INFO(name);
      CHECK(exported.contains(name));
      ++referenced;
    }
  }
  CHECK(referenced > 20);
}

// Keeps an allocation the compiler could otherwise leave out.
char* volatile kept_allocation = nullptr;

TEST_CASE("the heap's figures follow an allocation and its release", "[metrics][unit]") {
  const std::string allocator = runtime::allocator_library();
  INFO(allocator);
  const bool reported = allocator.starts_with("libtcmalloc") || allocator.starts_with("libc.so");
  const runtime::HeapMemory before = runtime::heap_memory();
  REQUIRE(before.known == reported);
  if (!reported) return;  // a sanitizer's allocator: the metrics leave the heap out

  constexpr std::size_t kBytes = std::size_t{64} << 20;
  kept_allocation = new char[kBytes];
  std::memset(kept_allocation, 1, kBytes);
  const runtime::HeapMemory holding = runtime::heap_memory();
  delete[] kept_allocation;
  kept_allocation = nullptr;
  const runtime::HeapMemory after = runtime::heap_memory();
  CHECK(holding.allocated_bytes >= before.allocated_bytes + kBytes);
  CHECK(after.allocated_bytes + kBytes <= holding.allocated_bytes);
}

TEST_CASE("the heap's free pages beyond what is kept go back to the system", "[metrics][unit]") {
  const std::string allocator = runtime::allocator_library();
  INFO(allocator);
  constexpr std::size_t kBytes = std::size_t{64} << 20;
  kept_allocation = new char[kBytes];
  std::memset(kept_allocation, 1, kBytes);
  delete[] kept_allocation;
  kept_allocation = nullptr;
  const runtime::HeapMemory freed = runtime::heap_memory();
  const uint64_t released = runtime::release_free_heap(std::size_t{8} << 20);
  const runtime::HeapMemory after = runtime::heap_memory();
  if (allocator.starts_with("libtcmalloc")) {
    // tcmalloc kept the freed pages until asked.
    CHECK(freed.free_bytes >= kBytes);
    CHECK(released >= kBytes - (std::size_t{8} << 20));
    CHECK(after.free_bytes + released <= freed.free_bytes);
  } else {
    // glibc gives a block this large back as it is freed (mmap); malloc_trim
    // does not tell what it gave back.
    CHECK(released == 0);
  }
}

TEST_CASE("metrics.address takes host:port or a port, and names itself when invalid",
          "[metrics][config][unit]") {
  using metrics::parse_listen_address;
  CHECK(parse_listen_address("metrics.address", "9464") ==
        std::pair<std::string, uint16_t>{"127.0.0.1", 9464});
  CHECK(parse_listen_address("metrics.address", "0.0.0.0:80") ==
        std::pair<std::string, uint16_t>{"0.0.0.0", 80});
  CHECK(parse_listen_address("metrics.address", "[::1]:0") ==
        std::pair<std::string, uint16_t>{"::1", 0});
  for (const char* bad : {"localhost:9464", "127.0.0.1:", "127.0.0.1:70000", "port"}) {
    INFO(bad);
    CHECK_THROWS_WITH(parse_listen_address("metrics.address", bad),
                      Catch::Contains("metrics.address") && Catch::Contains(bad));
  }

  Topology topology;
  topology.add_source<std::string, std::string>("source", {"in"})
      .add_sink<std::string, std::string>("sink", "out", {"source"});
  StreamsConfig config{{"application.id", "app"},
                       {"bootstrap.servers", "127.0.0.1:1"},
                       {"metrics.address", "127.0.0.1:http"}};
  CHECK_THROWS_AS(KafkaStreams(topology, config), ConfigError);
  config.set("metrics.address", "9464").set("log.format", "xml");
  CHECK_THROWS_WITH(KafkaStreams(topology, config), Catch::Contains("log.format"));
}

TEST_CASE("log.format=json writes one escaped JSON object per line, librdkafka's lines too",
          "[log][unit]") {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  log::get().sinks().push_back(sink);
  log::librdkafka().sinks().push_back(sink);
  log::configure("json", "info");
  log::get().info("a \"quoted\" word\tand a\nnew line \\ done");
  log::librdkafka().warn("FAIL: broker down");
  log::get().debug("below the level");
  log::get().sinks().pop_back();
  log::librdkafka().sinks().pop_back();
  log::configure("text", "");

  std::istringstream lines(out.str());
  std::vector<nlohmann::json> parsed;
  for (std::string line; std::getline(lines, line);) {
    INFO(line);
    REQUIRE_NOTHROW(parsed.push_back(nlohmann::json::parse(line)));
  }
  REQUIRE(parsed.size() == 2);
  CHECK(parsed[0]["message"] == "a \"quoted\" word\tand a\nnew line \\ done");
  CHECK(parsed[0]["level"] == "info");
  CHECK(parsed[0]["logger"] == "rill");
  CHECK(parsed[0]["time"].get<std::string>().size() >= 23);
  CHECK(parsed[1]["logger"] == "librdkafka");
  CHECK(parsed[1]["level"] == "warning");
}
