// One application instance's metrics, turned into Prometheus families when
// scraped. Tasks write to their TaskMetrics without locks; what changes
// rarely (lag from librdkafka statistics, partition buffers, restores) is
// published here under a mutex by the thread that owns it.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include <prometheus/collectable.h>

#include "metrics/task_metrics.h"

namespace rill::metrics {

inline constexpr std::array<int64_t, 12> kCommitLatencyBounds = {
    1'000'000,   5'000'000,   10'000'000,    25'000'000,    50'000'000,    100'000'000,
    250'000'000, 500'000'000, 1'000'000'000, 2'500'000'000, 5'000'000'000, 10'000'000'000};

// Instance-wide values the runtime already keeps; read at scrape time.
struct InstanceValues {
  std::string state;
  bool ready = false;
  uint64_t commits = 0;
  uint64_t partition_pauses = 0;
  uint64_t skipped_records = 0;
  uint64_t dead_lettered_records = 0;
  uint64_t production_errors = 0;
  uint64_t failed_tasks = 0;
  uint64_t active_tasks = 0;
  uint64_t standby_tasks = 0;
  uint64_t restored_records = 0;
  uint64_t standby_records = 0;
  uint64_t worker_threads = 0;
  // Snapshots (state.snapshot.interval.ms above 0 only).
  bool snapshots = false;
  uint64_t snapshots_uploaded = 0;
  uint64_t snapshot_failures = 0;
  uint64_t snapshot_bytes = 0;
  int64_t last_snapshot_ms = 0;  // 0: none yet
  int64_t last_snapshot_duration_ms = 0;
  uint64_t snapshot_duration_ms = 0;  // all uploaded snapshots together
  uint64_t snapshot_restores = 0;
  uint64_t snapshot_fallbacks = 0;
  // The stores' memory (instances with stores only): RocksDB's shared bound
  // and what uses it, and the record caches against statestore.cache.max.bytes.
  bool stores = false;
  uint64_t rocksdb_memory_bytes = 0;
  uint64_t rocksdb_memory_limit_bytes = 0;
  uint64_t rocksdb_memtable_bytes = 0;
  uint64_t store_cache_bytes = 0;
  uint64_t store_cache_max_bytes = 0;
  // The process's heap (runtime::heap_memory()), when the allocator tells.
  bool heap_known = false;
  uint64_t heap_allocated_bytes = 0;
  uint64_t heap_free_bytes = 0;
};

struct PartitionGauges {
  std::string topic;
  int32_t partition = 0;
  uint64_t buffered = 0;
  bool paused = false;
};

struct StoreGauges {
  std::string task;
  std::string store;
  int64_t estimated_keys = -1;  // -1: the store cannot tell
  int64_t size_bytes = -1;
  uint64_t cache_hits = 0;
  uint64_t cache_misses = 0;
};

// A sink that keeps a database table (sinks/postgres_sink.h): how it fares.
struct SinkValues {
  std::string sink;
  std::string table;
  // Connected and writing; false while the database is away or refuses.
  bool available = false;
  // When it became unavailable (ms since the epoch), and why.
  int64_t unavailable_since_ms = 0;
  std::string last_error;
  uint64_t rows_written = 0;
  uint64_t rows_rejected = 0;
  uint64_t batches = 0;
  uint64_t failures = 0;
  // Records of the sink's topic not applied yet over its assigned partitions
  // (-1: unknown).
  int64_t lag = -1;
};

class Registry final : public prometheus::Collectable {
 public:
  // `record_latencies`: metrics.enabled; `record_store_latency`:
  // metrics.recording.level=DEBUG.
  Registry(std::string application_id, std::string instance, bool record_latencies,
           bool record_store_latency = false);

  // The metrics of task `id`, created at its first assignment and kept after.
  std::shared_ptr<TaskMetrics> task(TaskId id, std::vector<std::string> processor_names,
                                    std::vector<std::string> store_names = {});
  // False when metrics.enabled is off: tasks then skip the clock reads.
  bool record_latencies() const { return record_latencies_; }
  bool record_store_latency() const { return record_store_latency_; }

  void set_instance_values(std::function<InstanceValues()> read) {
    read_instance_ = std::move(read);
  }
  void set_sink_values(std::function<std::vector<SinkValues>()> read) {
    read_sinks_ = std::move(read);
  }

  // Written by the polling thread.
  LatencyHistogram commit_latency{kCommitLatencyBounds};
  Counter rebalances;
  LatencyHistogram rebalance_latency{kCommitLatencyBounds};
  // Deletions of committed repartition records that succeeded or failed,
  // and each purged partition's log start offset after its last one.
  Counter repartition_purges;
  Counter repartition_purge_failures;
  void on_records_purged(const std::string& topic, int32_t partition, int64_t log_start_offset);
  // Time each worker thread spent running tasks, written by that thread at
  // the end of each run of a task.
  void set_worker_threads(std::size_t threads) {
    worker_busy_ns_ = std::make_unique<Counter[]>(threads);
    worker_threads_ = threads;
  }
  Counter& worker_busy_ns(std::size_t thread) { return worker_busy_ns_[thread]; }

  // From librdkafka's statistics JSON (consumer and producer), on their
  // polling thread.
  void on_statistics(std::string_view json);
  // From the polling thread, about every second.
  void publish_partitions(std::vector<PartitionGauges> partitions);
  void publish_stores(std::vector<StoreGauges> stores);
  // From the changelog reader.
  // Changelog records still to restore, over every partition restoring.
  uint64_t restore_remaining() const;
  void on_restore_progress(const std::string& store, const std::string& topic, int32_t partition,
                           uint64_t restored, uint64_t total, bool done);

  std::vector<prometheus::MetricFamily> Collect() const override;

  // Consumer lag of one partition as the last statistics reported it; -1 when
  // unknown. For tests and logs.
  int64_t consumer_lag(const std::string& topic, int32_t partition) const;

 private:
  const std::string application_id_;
  const std::string instance_;
  const bool record_latencies_;
  const bool record_store_latency_;
  std::function<InstanceValues()> read_instance_;
  std::function<std::vector<SinkValues>()> read_sinks_;
  std::unique_ptr<Counter[]> worker_busy_ns_;
  std::size_t worker_threads_ = 0;

  mutable std::mutex mutex_;
  std::map<TaskId, std::shared_ptr<TaskMetrics>> tasks_;
  std::map<std::pair<std::string, int32_t>, int64_t> consumer_lag_;
  struct ProducerStats {
    int64_t queue_messages = 0;
    int64_t queue_bytes = 0;
    int64_t errors = 0;
  } producer_;
  std::vector<PartitionGauges> partitions_;
  std::vector<StoreGauges> stores_;
  std::map<std::tuple<std::string, std::string, int32_t>, uint64_t> restore_remaining_;
  std::map<std::pair<std::string, int32_t>, int64_t> purged_log_starts_;
};

}  // namespace rill::metrics
