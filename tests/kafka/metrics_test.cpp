// The metrics endpoint and probes of a running application, scraped over
// HTTP while it processes records from the real broker: the counters match
// what was processed, the consumer lag falls to zero, /readyz waits for the
// restore, and promtool accepts the exposition.
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include "rill/json.h"
#include "rill/kafka_streams.h"
#include "rill/rill.h"

#include "log/log.h"
#include "metrics/task_metrics.h"
#include "support/command.h"
#include "support/count_topology.h"
#include "support/http_client.h"
#include "support/kafka_cluster.h"

using namespace rill;
using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

std::string temp_state_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("rill-state-" + name);
  std::filesystem::remove_all(dir);
  return dir.string();
}

StreamsConfig metrics_config(const std::string& app, const std::string& state_dir) {
  return {{"application.id", app},
          {"bootstrap.servers", bootstrap_servers()},
          {"state.dir", state_dir},
          {"commit.interval.ms", "200"},
          {"num.stream.threads", "2"},
          // Every update reaches the changelog and the output, so counts are exact.
          {"statestore.cache.max.bytes", "0"},
          {"metrics.address", "127.0.0.1:0"}};
}

// Scrapes until `done(body)` holds or the deadline passes; returns the last body.
template <class Done>
std::string scrape_until(int port, Done done, std::chrono::seconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::string body;
  while (Clock::now() < deadline) {
    HttpResult result = http_get(port, "/metrics");
    if (result.status == 200) {
      body = result.body;
      if (done(body)) break;
    }
    std::this_thread::sleep_for(100ms);
  }
  return body;
}

}  // namespace

TEST_CASE("the metrics endpoint counts what a pipeline processes and its lag falls to zero",
          "[kafka][metrics]") {
  const std::string app = unique_name("app-metrics");
  const std::string input = unique_name("metrics-in"), output = unique_name("metrics-out");
  create_topic(input, 2);
  create_topic(output, 2);
  constexpr int kKeys = 20, kPerKey = 50, kRecords = kKeys * kPerKey;
  std::vector<TestRecord> records;
  for (int round = 0; round < kPerKey; ++round)
    for (int k = 0; k < kKeys; ++k)
      records.push_back({"key-" + std::to_string(k), "x", -1, -1, now_ms(), {}});
  produce(input, records);

  StreamsConfig config = metrics_config(app, temp_state_dir(app));
  config.set("metrics.recording.level", "DEBUG");  // store latencies too
  config.set("rocksdb.block.cache.bytes", "80000000");
  KafkaStreams streams(processor_count_topology(input, output), config);
  streams.start();
  const int port = streams.metrics_port();
  REQUIRE(port > 0);
  CHECK(http_get(port, "/healthz").status == 200);

  const std::string body = scrape_until(
      port,
      [&](const std::string& exposition) {
        // Store gauges are published about every second, like the lag.
        return metric_sum(exposition, "rill_records_processed_total") == kRecords &&
               metric_count(exposition, "rill_store_estimated_keys", {{"store", "counts"}}) == 2 &&
               metric_count(exposition, "rill_consumer_lag_records", {{"topic", input}}) == 2 &&
               metric_sum(exposition, "rill_consumer_lag_records", {{"topic", input}}) == 0;
      },
      60s);
  INFO(body);
  REQUIRE(metric_sum(body, "rill_records_processed_total") == kRecords);
  CHECK(metric_count(body, "rill_consumer_lag_records", {{"topic", input}}) == 2);
  CHECK(metric_sum(body, "rill_consumer_lag_records", {{"topic", input}}) == 0);
  CHECK(metric_sum(body, "rill_records_consumed_total") == kRecords);
  CHECK(metric_sum(body, "rill_processor_records_total", {{"processor", "source"}}) == kRecords);
  CHECK(metric_sum(body, "rill_processor_records_total", {{"processor", "count"}}) == kRecords);
  CHECK(metric_sum(body, "rill_processor_records_total", {{"processor", "sink"}}) == kRecords);
  CHECK(metric_sum(body, "rill_records_produced_total") == kRecords);
  // Latencies are timed on one record in kLatencySampleEvery of each task, and
  // every counted record has one output.
  double sampled = 0;
  for (const char* task : {"0_0", "0_1"})
    sampled += std::floor(metric_sum(body, "rill_records_processed_total", {{"task", task}}) /
                          metrics::kLatencySampleEvery);
  CHECK(sampled > 0);
  CHECK(metric_sum(body, "rill_process_latency_seconds_count") == sampled);
  CHECK(metric_sum(body, "rill_end_to_end_latency_seconds_count") == sampled);
  // The count reads and writes its store once per record.
  CHECK(metric_sum(body, "rill_store_get_latency_seconds_count", {{"store", "counts"}}) ==
        kRecords);
  CHECK(metric_sum(body, "rill_store_put_latency_seconds_count", {{"store", "counts"}}) ==
        kRecords);
  CHECK(metric_count(body, "rill_store_estimated_keys", {{"store", "counts"}}) == 2);
  CHECK(metric_count(body, "rill_records_processed_total", {{"application_id", app}}) == 2);
  CHECK(metric_sum(body, "rill_active_tasks") == 2);
  // One series per worker thread; the first thread to run a task is thread 0.
  CHECK(metric_count(body, "rill_worker_busy_seconds_total") == 2);
  CHECK(metric_sum(body, "rill_worker_busy_seconds_total", {{"thread", "0"}}) > 0);
  CHECK(metric_sum(body, "rill_commits_total") > 0);
  CHECK(metric_sum(body, "rill_rebalances_total") >= 1);
  CHECK(metric_sum(body, "rill_state", {{"state", "RUNNING"}}) == 1);
  CHECK(metric_sum(body, "rill_ready") == 1);
  // The counts' memtables hold what was written, within RocksDB's bound.
  CHECK(metric_sum(body, "rill_rocksdb_memory_limit_bytes") == 80'000'000);
  CHECK(metric_sum(body, "rill_rocksdb_memtable_bytes") > 0);
  CHECK(metric_sum(body, "rill_rocksdb_memory_bytes") >=
        metric_sum(body, "rill_rocksdb_memtable_bytes"));
  CHECK(metric_sum(body, "rill_rocksdb_memory_bytes") <= 80'000'000);
  CHECK(metric_sum(body, "rill_store_cache_max_bytes") == 0);
  CHECK(consume(output, kRecords, 30s).size() == static_cast<std::size_t>(kRecords));
  CHECK(http_get(port, "/readyz").status == 200);
  CHECK(http_get(port, "/nowhere").status == 404);

  // The exposition is valid and lint-clean for Prometheus' own checker.
  const std::string file = (std::filesystem::temp_directory_path() / (app + ".prom")).string();
  std::ofstream(file) << body;
  CommandResult promtool = run_command("promtool check metrics < " + file);
  INFO(promtool.output);
  CHECK(promtool.exit_code == 0);
  CHECK(promtool.output.empty());
  std::filesystem::remove(file);

  REQUIRE(streams.close(30s));
}

TEST_CASE("/readyz answers 503 while stores restore and 200 once every task is restored",
          "[kafka][metrics]") {
  const std::string app = unique_name("app-ready");
  const std::string input = unique_name("ready-in"), output = unique_name("ready-out");
  create_topic(input, 1);
  create_topic(output, 1);
  constexpr int kRecords = 300;
  std::vector<TestRecord> records;
  for (int i = 0; i < kRecords; ++i)
    records.push_back({"key-" + std::to_string(i % 30), "x", -1, -1, now_ms(), {}});
  produce(input, records);

  {  // Fill the changelog: one update per record.
    KafkaStreams streams(processor_count_topology(input, output),
                         metrics_config(app, temp_state_dir(app + "-first")));
    streams.start();
    const std::string body = scrape_until(
        streams.metrics_port(),
        [&](const std::string& exposition) {
          return metric_sum(exposition, "rill_records_processed_total") == kRecords;
        },
        60s);
    REQUIRE(metric_sum(body, "rill_records_processed_total") == kRecords);
    REQUIRE(streams.close(30s));
  }
  const std::string changelog = app + "-counts-changelog";
  REQUIRE(end_offsets(changelog) == kRecords);

  // With an empty state directory the whole changelog is restored. The restore
  // listener holds the restore at its start until the probe has been seen
  // answering "not ready", so the test does not race the restore.
  std::mutex mutex;
  std::condition_variable released_changed;
  bool released = false;
  KafkaStreams streams(processor_count_topology(input, output),
                       metrics_config(app, temp_state_dir(app + "-second")));
  streams.set_restore_listener([&](const KafkaStreams::RestoreProgress& progress) {
    if (progress.done) return;
    std::unique_lock lock(mutex);
    released_changed.wait_for(lock, 30s, [&] { return released; });
  });
  auto release = [&] {
    {
      std::lock_guard lock(mutex);
      released = true;
    }
    released_changed.notify_all();
  };
  streams.start();
  const int port = streams.metrics_port();
  REQUIRE(port > 0);

  HttpResult probe;
  auto deadline = Clock::now() + 30s;
  while (Clock::now() < deadline) {
    probe = http_get(port, "/readyz");
    if (probe.status == 503 && probe.body.find("restoring") != std::string::npos) break;
    std::this_thread::sleep_for(50ms);
  }
  const std::string while_restoring = http_get(port, "/metrics").body;
  release();
  INFO(probe.body);
  REQUIRE(probe.status == 503);
  CHECK(probe.body.find("restoring") != std::string::npos);
  CHECK(http_get(port, "/healthz").status == 200);
  CHECK(metric_sum(while_restoring, "rill_ready") == 0);
  CHECK(metric_sum(while_restoring, "rill_task_restoring") == 1);

  deadline = Clock::now() + 60s;
  while (Clock::now() < deadline && http_get(port, "/readyz").status != 200)
    std::this_thread::sleep_for(50ms);
  REQUIRE(http_get(port, "/readyz").status == 200);
  // Ready only once everything is restored.
  const std::string body = http_get(port, "/metrics").body;
  INFO(body);
  CHECK(metric_sum(body, "rill_restored_records_total") == kRecords);
  CHECK(metric_sum(body, "rill_restore_remaining_records") == 0);
  CHECK(metric_sum(body, "rill_task_restoring") == 0);
  CHECK(metric_sum(body, "rill_ready") == 1);
  REQUIRE(streams.close(30s));
}

TEST_CASE(
    "with metrics.enabled=false the endpoint serves probes and instance series only, and "
    "log.format=json carries librdkafka's lines as JSON too",
    "[kafka][metrics][log]") {
  const std::string app = unique_name("app-quiet");
  const std::string input = unique_name("quiet-in"), output = unique_name("quiet-out");
  create_topic(input, 1);
  create_topic(output, 1);
  constexpr int kRecords = 50;
  std::vector<TestRecord> records;
  for (int i = 0; i < kRecords; ++i)
    records.push_back({"key-" + std::to_string(i % 5), "x", -1, -1, now_ms(), {}});
  produce(input, records);

  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  log::get().sinks().push_back(sink);
  log::librdkafka().sinks().push_back(sink);
  StreamsConfig config = metrics_config(app, temp_state_dir(app));
  config.set("metrics.enabled", "false")
      .set("log.format", "json")
      .set("log.level", "debug")
      .set("consumer.debug", "cgrp");  // makes librdkafka log group protocol lines
  {
    KafkaStreams streams(processor_count_topology(input, output), config);
    streams.start();
    const int port = streams.metrics_port();
    REQUIRE(port > 0);
    auto deadline = Clock::now() + 60s;
    while (Clock::now() < deadline && streams.stats().processed_records < kRecords)
      std::this_thread::sleep_for(50ms);
    CHECK(streams.stats().processed_records == kRecords);
    while (Clock::now() < deadline && http_get(port, "/readyz").status != 200)
      std::this_thread::sleep_for(50ms);
    CHECK(http_get(port, "/readyz").status == 200);
    CHECK(http_get(port, "/healthz").status == 200);
    const std::string body = http_get(port, "/metrics").body;
    INFO(body);
    CHECK(metric_sum(body, "rill_ready") == 1);
    CHECK(metric_sum(body, "rill_active_tasks") == 1);
    CHECK(metric_count(body, "rill_records_processed_total") == 0);
    CHECK(metric_count(body, "rill_process_latency_seconds_count") == 0);
    CHECK(metric_count(body, "rill_consumer_lag_records") == 0);
    REQUIRE(streams.close(30s));
  }
  log::get().sinks().pop_back();
  log::librdkafka().sinks().pop_back();
  log::configure("text", "info");

  std::istringstream lines(captured.str());
  int rill_lines = 0, librdkafka_lines = 0;
  for (std::string line; std::getline(lines, line);) {
    INFO(line);
    nlohmann::json parsed;
    REQUIRE_NOTHROW(parsed = nlohmann::json::parse(line));
    if (parsed["logger"] == "rill") ++rill_lines;
    if (parsed["logger"] == "librdkafka") ++librdkafka_lines;
  }
  CHECK(rill_lines > 0);
  CHECK(librdkafka_lines > 0);
}

TEST_CASE("dead-lettered records are counted, and a failed instance answers 503 on /healthz",
          "[kafka][metrics][errors]") {
  const std::string input = unique_name("failing-in"), output = unique_name("failing-out");
  const std::string dead_letters = unique_name("failing-dlq");
  create_topic(input, 1);
  create_topic(output, 1);
  create_topic(dead_letters, 1);
  std::vector<TestRecord> records;
  for (int i = 0; i < 20; ++i)
    records.push_back({"k", i % 5 == 0 ? "bad" : "good", -1, -1, now_ms(), {}});
  produce(input, records);
  auto topology = [&] {
    StreamsBuilder builder;
    builder.stream(input, serdes::string(), serdes::string())
        .map_values([](const std::string& value) -> std::string {
          if (value == "bad") throw std::runtime_error("cannot handle bad");
          return value;
        })
        .to(output);
    return builder.build();
  };

  {  // Every fifth record goes to the dead letter topic.
    const std::string app = unique_name("app-dlq");
    StreamsConfig config = metrics_config(app, temp_state_dir(app));
    config.set("processing.exception.handler", "dead-letter")
        .set("errors.dead.letter.queue.topic.name", dead_letters);
    KafkaStreams streams(topology(), config);
    streams.start();
    const std::string body = scrape_until(
        streams.metrics_port(),
        [](const std::string& exposition) {
          return metric_sum(exposition, "rill_records_processed_total") == 20;
        },
        60s);
    INFO(body);
    CHECK(metric_sum(body, "rill_records_processed_total") == 20);
    CHECK(metric_sum(body, "rill_dead_lettered_records_total") == 4);
    CHECK(metric_sum(body, "rill_failed_tasks_total") == 0);
    CHECK(http_get(streams.metrics_port(), "/healthz").status == 200);
    REQUIRE(streams.close(30s));
  }

  {  // Without a handler the first bad record stops the instance in ERROR.
    const std::string app = unique_name("app-fail");
    KafkaStreams streams(topology(), metrics_config(app, temp_state_dir(app)));
    streams.start();
    REQUIRE(streams.wait_for_stop(60s));
    REQUIRE(streams.state() == KafkaStreams::State::kError);
    const int port = streams.metrics_port();
    HttpResult health = http_get(port, "/healthz");
    CHECK(health.status == 503);
    CHECK(health.body.find("ERROR") != std::string::npos);
    CHECK(http_get(port, "/readyz").status == 503);
    const std::string body = http_get(port, "/metrics").body;
    INFO(body);
    CHECK(metric_sum(body, "rill_state", {{"state", "ERROR"}}) == 1);
    CHECK(metric_sum(body, "rill_ready") == 0);
    CHECK(metric_sum(body, "rill_failed_tasks_total") == 1);
  }
}

TEST_CASE("window and session stores report their latency and RocksDB estimates",
          "[kafka][metrics][windows]") {
  const std::string app = unique_name("app-metrics-windows");
  const std::string input = unique_name("metrics-windows-in");
  create_topic(input, 1);
  constexpr int kRecords = 40;
  std::vector<TestRecord> records;
  const int64_t now = now_ms();
  for (int i = 0; i < kRecords; ++i)
    records.push_back({"key-" + std::to_string(i % 4), "x", 0, -1, now + i, {}});
  produce(input, records);

  StreamsBuilder builder;
  auto grouped = builder.stream(input, serdes::string(), serdes::string()).group_by_key();
  grouped.windowed_by(TimeWindows::of_size_and_grace(1h, 1h))
      .count(Materialized<std::string, int64_t>::as("window-counts"));
  grouped.windowed_by(SessionWindows::of_inactivity_gap_and_grace(1h, 1h))
      .count(Materialized<std::string, int64_t>::as("session-counts"));
  StreamsConfig config = metrics_config(app, temp_state_dir(app));
  config.set("metrics.recording.level", "DEBUG");
  KafkaStreams streams(builder.build(), config);
  streams.start();
  const int port = streams.metrics_port();
  REQUIRE(port > 0);
  const std::string body = scrape_until(
      port,
      [&](const std::string& exposition) {
        return metric_sum(exposition, "rill_records_processed_total") == kRecords &&
               metric_count(exposition, "rill_store_estimated_keys",
                            {{"store", "window-counts"}}) == 1 &&
               metric_count(exposition, "rill_store_estimated_keys",
                            {{"store", "session-counts"}}) == 1;
      },
      60s);
  INFO(body);
  REQUIRE(streams.close(30s));
  REQUIRE(metric_sum(body, "rill_records_processed_total") == kRecords);
  // A tumbling window count reads and writes its one window per record.
  CHECK(metric_sum(body, "rill_store_get_latency_seconds_count", {{"store", "window-counts"}}) ==
        kRecords);
  CHECK(metric_sum(body, "rill_store_put_latency_seconds_count", {{"store", "window-counts"}}) ==
        kRecords);
  // A session count looks up the sessions a record may join, then writes the
  // merged session (and removes the ones it replaces).
  CHECK(metric_sum(body, "rill_store_get_latency_seconds_count", {{"store", "session-counts"}}) ==
        kRecords);
  CHECK(metric_sum(body, "rill_store_put_latency_seconds_count", {{"store", "session-counts"}}) >=
        kRecords);
  CHECK(metric_count(body, "rill_store_size_bytes", {{"store", "window-counts"}}) == 1);
  CHECK(metric_count(body, "rill_store_size_bytes", {{"store", "session-counts"}}) == 1);
}
