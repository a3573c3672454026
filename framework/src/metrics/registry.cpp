#include "metrics/registry.h"

#include <chrono>
#include <deque>

#include <nlohmann/json.hpp>
#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include "log/log.h"

namespace rill::metrics {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

constexpr double kNanosPerSecond = 1e9;

class Families {
 public:
  explicit Families(Labels common) : common_(std::move(common)) {}

  MetricFamily& family(std::string name, std::string help, MetricType type) {
    families_.push_back({std::move(name), std::move(help), type, {}});
    return families_.back();
  }

  void add(MetricFamily& family, const Labels& labels, double value) {
    ClientMetric metric;
    metric.label = with_common(labels);
    if (family.type == MetricType::Counter)
      metric.counter.value = value;
    else
      metric.gauge.value = value;
    family.metric.push_back(std::move(metric));
  }

  void add(MetricFamily& family, const Labels& labels, const LatencyHistogram& histogram) {
    ClientMetric metric;
    metric.label = with_common(labels);
    auto snapshot = histogram.snapshot();
    auto bounds = histogram.bounds_ns();
    for (std::size_t i = 0; i < bounds.size(); ++i)
      metric.histogram.bucket.push_back(
          {snapshot.cumulative[i], static_cast<double>(bounds[i]) / kNanosPerSecond});
    metric.histogram.sample_count = snapshot.cumulative.back();
    metric.histogram.sample_sum = snapshot.sum_seconds;
    family.metric.push_back(std::move(metric));
  }

  std::vector<MetricFamily> take() {
    // A family without samples is still valid exposition; drop it anyway so
    // the output lists only what this instance measures.
    std::vector<MetricFamily> out;
    for (auto& family : families_)
      if (!family.metric.empty()) out.push_back(std::move(family));
    return out;
  }

 private:
  Labels with_common(const Labels& labels) const {
    Labels all = common_;
    all.insert(all.end(), labels.begin(), labels.end());
    return all;
  }

  Labels common_;
  std::deque<MetricFamily> families_;
};

}  // namespace

LatencyHistogram::Snapshot LatencyHistogram::snapshot() const {
  Snapshot snapshot;
  uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].value();
    snapshot.cumulative.push_back(total);
  }
  snapshot.sum_seconds = static_cast<double>(sum_ns_.value()) / kNanosPerSecond;
  return snapshot;
}

TaskMetrics::TaskMetrics(TaskId task_id, std::vector<std::string> processor_names,
                         std::vector<std::string> store_names)
    : id(task_id),
      task_label(task_id.to_string()),
      processors(std::move(processor_names)),
      processor_records(std::make_unique<Counter[]>(processors.size())),
      stores(std::move(store_names)),
      store_latency(std::make_unique<StoreLatency[]>(stores.size())) {}

Registry::Registry(std::string application_id, std::string instance, bool record_latencies,
                   bool record_store_latency)
    : application_id_(std::move(application_id)),
      instance_(std::move(instance)),
      record_latencies_(record_latencies),
      record_store_latency_(record_latencies && record_store_latency) {}

std::shared_ptr<TaskMetrics> Registry::task(TaskId id, std::vector<std::string> processor_names,
                                            std::vector<std::string> store_names) {
  std::lock_guard lock(mutex_);
  auto& metrics = tasks_[id];
  if (!metrics)
    metrics = std::make_shared<TaskMetrics>(id, std::move(processor_names), std::move(store_names));
  return metrics;
}

void Registry::on_statistics(std::string_view json) {
  nlohmann::json stats;
  try {
    stats = nlohmann::json::parse(json);
  } catch (const std::exception& e) {
    log::get().warn("cannot parse librdkafka statistics: {}", e.what());
    return;
  }
  const std::string type = stats.value("type", "");
  if (type == "producer") {
    ProducerStats producer;
    producer.queue_messages = stats.value("msg_cnt", int64_t{0});
    producer.queue_bytes = stats.value("msg_size", int64_t{0});
    if (auto brokers = stats.find("brokers"); brokers != stats.end())
      for (const auto& broker : *brokers) producer.errors += broker.value("txerrs", int64_t{0});
    std::lock_guard lock(mutex_);
    producer_ = producer;
    return;
  }
  if (type != "consumer") return;
  std::map<std::pair<std::string, int32_t>, int64_t> lag;
  if (auto topics = stats.find("topics"); topics != stats.end()) {
    for (const auto& [topic, topic_stats] : topics->items()) {
      auto partitions = topic_stats.find("partitions");
      if (partitions == topic_stats.end()) continue;
      for (const auto& [partition, partition_stats] : partitions->items()) {
        const int32_t id = partition_stats.value("partition", int32_t{-1});
        const std::string fetch_state = partition_stats.value("fetch_state", "none");
        // Partition -1 is librdkafka's internal placeholder; partitions it
        // does not fetch are not ours.
        if (id < 0 || fetch_state == "none" || fetch_state == "stopped") continue;
        lag[{topic, id}] = partition_stats.value("consumer_lag", int64_t{-1});
      }
    }
  }
  std::lock_guard lock(mutex_);
  consumer_lag_ = std::move(lag);
}

void Registry::publish_partitions(std::vector<PartitionGauges> partitions) {
  std::lock_guard lock(mutex_);
  partitions_ = std::move(partitions);
}

void Registry::publish_stores(std::vector<StoreGauges> stores) {
  std::lock_guard lock(mutex_);
  stores_ = std::move(stores);
}

void Registry::on_restore_progress(const std::string& store, const std::string& topic,
                                   int32_t partition, uint64_t restored, uint64_t total,
                                   bool done) {
  std::lock_guard lock(mutex_);
  restore_remaining_[{store, topic, partition}] = done || restored >= total ? 0 : total - restored;
}

uint64_t Registry::restore_remaining() const {
  std::lock_guard lock(mutex_);
  uint64_t remaining = 0;
  for (const auto& [partition, records] : restore_remaining_) remaining += records;
  return remaining;
}

void Registry::on_records_purged(const std::string& topic, int32_t partition,
                                 int64_t log_start_offset) {
  std::lock_guard lock(mutex_);
  purged_log_starts_[{topic, partition}] = log_start_offset;
}

int64_t Registry::consumer_lag(const std::string& topic, int32_t partition) const {
  std::lock_guard lock(mutex_);
  auto it = consumer_lag_.find({topic, partition});
  return it == consumer_lag_.end() ? -1 : it->second;
}

std::vector<MetricFamily> Registry::Collect() const {
  Families out({{"application_id", application_id_}, {"client_id", instance_}});
  using T = MetricType;

  InstanceValues instance = read_instance_ ? read_instance_() : InstanceValues{};
  auto& state = out.family("rill_state", "1 for the instance's current lifecycle state.", T::Gauge);
  for (const char* name :
       {"CREATED", "REBALANCING", "RUNNING", "PENDING_SHUTDOWN", "NOT_RUNNING", "ERROR"})
    out.add(state, {{"state", name}}, instance.state == name ? 1 : 0);
  out.add(
      out.family("rill_ready",
                 "1 when the instance is RUNNING and every assigned task is restored.", T::Gauge),
      {}, instance.ready ? 1 : 0);
  out.add(out.family("rill_commits_total", "Commits of input offsets.", T::Counter), {},
          static_cast<double>(instance.commits));
  out.add(out.family("rill_commit_latency_seconds",
                     "Time to flush outputs, commit offsets and write checkpoints.", T::Histogram),
          {}, commit_latency);
  out.add(out.family("rill_rebalances_total",
                     "Rebalance callbacks (partitions assigned or revoked).", T::Counter),
          {}, static_cast<double>(rebalances.value()));
  out.add(out.family("rill_rebalance_latency_seconds",
                     "Time spent in a rebalance callback: creating and opening tasks, or "
                     "committing and closing them.",
                     T::Histogram),
          {}, rebalance_latency);
  auto& purges = out.family(
      "rill_repartition_purges_total",
      "Deletions of the repartition records that commits covered, by outcome.", T::Counter);
  out.add(purges, {{"outcome", "ok"}}, static_cast<double>(repartition_purges.value()));
  out.add(purges, {{"outcome", "failed"}}, static_cast<double>(repartition_purge_failures.value()));
  if (instance.snapshots) {
    auto& snapshots =
        out.family("rill_snapshots_total",
                   "Snapshots of tasks' stores taken and uploaded, by outcome.", T::Counter);
    out.add(snapshots, {{"outcome", "ok"}}, static_cast<double>(instance.snapshots_uploaded));
    out.add(snapshots, {{"outcome", "failed"}}, static_cast<double>(instance.snapshot_failures));
    out.add(out.family("rill_snapshot_uploaded_bytes_total", "Bytes of snapshot files uploaded.",
                       T::Counter),
            {}, static_cast<double>(instance.snapshot_bytes));
    out.add(out.family("rill_snapshot_last_upload_timestamp_seconds",
                       "When the last snapshot was uploaded (0: none yet); its age is time() "
                       "minus this.",
                       T::Gauge),
            {}, static_cast<double>(instance.last_snapshot_ms) / 1000.0);
    out.add(out.family("rill_snapshot_last_duration_seconds",
                       "How long the last snapshot took, from its checkpoints to its manifest "
                       "uploaded.",
                       T::Gauge),
            {}, static_cast<double>(instance.last_snapshot_duration_ms) / 1000.0);
    out.add(out.family("rill_snapshot_duration_seconds_total",
                       "How long the uploaded snapshots took together; divided by "
                       "rill_snapshots_total{outcome=\"ok\"}, their mean.",
                       T::Counter),
            {}, static_cast<double>(instance.snapshot_duration_ms) / 1000.0);
    auto& restores = out.family("rill_snapshot_restores_total",
                                "Tasks started without local state, by what they restored from: "
                                "a snapshot and the changelogs' tail, or the changelogs alone "
                                "after every snapshot failed.",
                                T::Counter);
    out.add(restores, {{"from", "snapshot"}}, static_cast<double>(instance.snapshot_restores));
    out.add(restores, {{"from", "changelog"}}, static_cast<double>(instance.snapshot_fallbacks));
  }
  if (instance.heap_known) {
    out.add(out.family("rill_heap_allocated_bytes",
                       "Heap memory in use: handed out by the allocator and not freed.", T::Gauge),
            {}, static_cast<double>(instance.heap_allocated_bytes));
    out.add(out.family("rill_heap_free_bytes",
                       "Heap memory freed and kept by the allocator for reuse, not given back to "
                       "the system.",
                       T::Gauge),
            {}, static_cast<double>(instance.heap_free_bytes));
  }
  if (instance.stores) {
    out.add(out.family("rill_rocksdb_memory_bytes",
                       "Memory RocksDB uses within its bound: cached blocks and the memtables of "
                       "all stores.",
                       T::Gauge),
            {}, static_cast<double>(instance.rocksdb_memory_bytes));
    out.add(
        out.family("rill_rocksdb_memory_limit_bytes",
                   "RocksDB's memory bound for all stores (rocksdb.block.cache.bytes).", T::Gauge),
        {}, static_cast<double>(instance.rocksdb_memory_limit_bytes));
    out.add(out.family("rill_rocksdb_memtable_bytes",
                       "Memory of the memtables of all stores, within RocksDB's bound.", T::Gauge),
            {}, static_cast<double>(instance.rocksdb_memtable_bytes));
    out.add(out.family("rill_store_cache_bytes",
                       "What the record caches of all stores hold, entry bookkeeping included.",
                       T::Gauge),
            {}, static_cast<double>(instance.store_cache_bytes));
    out.add(out.family("rill_store_cache_max_bytes",
                       "The record caches' bound (statestore.cache.max.bytes).", T::Gauge),
            {}, static_cast<double>(instance.store_cache_max_bytes));
  }
  out.add(out.family("rill_active_tasks", "Tasks assigned to this instance.", T::Gauge), {},
          static_cast<double>(instance.active_tasks));
  out.add(out.family("rill_standby_tasks", "Standby replicas kept by this instance.", T::Gauge), {},
          static_cast<double>(instance.standby_tasks));
  out.add(
      out.family("rill_partition_pauses_total",
                 "Times an input partition's fetching was held back because its queue was full.",
                 T::Counter),
      {}, static_cast<double>(instance.partition_pauses));
  out.add(out.family("rill_skipped_records_total",
                     "Records an error handler skipped (log-and-continue), including outputs "
                     "the broker refused.",
                     T::Counter),
          {}, static_cast<double>(instance.skipped_records));
  out.add(out.family("rill_dead_lettered_records_total",
                     "Records written to the dead letter topic.", T::Counter),
          {}, static_cast<double>(instance.dead_lettered_records));
  out.add(
      out.family("rill_production_errors_total", "Output records the broker refused.", T::Counter),
      {}, static_cast<double>(instance.production_errors));
  out.add(out.family("rill_failed_tasks_total", "Tasks that failed beyond their error handlers.",
                     T::Counter),
          {}, static_cast<double>(instance.failed_tasks));
  out.add(out.family("rill_restored_records_total",
                     "Changelog records applied to stores while restoring them.", T::Counter),
          {}, static_cast<double>(instance.restored_records));
  out.add(out.family("rill_standby_records_total", "Changelog records applied to standby replicas.",
                     T::Counter),
          {}, static_cast<double>(instance.standby_records));
  out.add(out.family("rill_worker_threads", "Threads of the worker pool.", T::Gauge), {},
          static_cast<double>(instance.worker_threads));
  auto& busy = out.family("rill_worker_busy_seconds_total",
                          "Time each worker thread spent running tasks; its rate is the "
                          "thread's busy ratio.",
                          T::Counter);
  for (std::size_t thread = 0; thread < worker_threads_; ++thread)
    out.add(busy, {{"thread", std::to_string(thread)}},
            static_cast<double>(worker_busy_ns_[thread].value()) / kNanosPerSecond);

  if (read_sinks_) {
    const std::vector<SinkValues> sinks = read_sinks_();
    auto& up = out.family("rill_postgres_sink_up",
                          "1 while the sink is connected and writing; 0 while its database is "
                          "away or refuses.",
                          T::Gauge);
    auto& rows = out.family("rill_postgres_sink_rows_total",
                            "Rows the sink wrote, or that the database rejected.", T::Counter);
    auto& batches = out.family("rill_postgres_sink_batches_total",
                               "Database transactions that committed a batch.", T::Counter);
    auto& failures = out.family("rill_postgres_sink_failures_total",
                                "Attempts to connect or write that failed.", T::Counter);
    auto& lag = out.family("rill_postgres_sink_lag_records",
                           "Records of the sink's topic not written yet (-1: unknown).", T::Gauge);
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    auto& down =
        out.family("rill_postgres_sink_unavailable_seconds",
                   "How long the sink has not been able to write (0 while it writes).", T::Gauge);
    for (const SinkValues& sink : sinks) {
      const Labels labels{{"sink", sink.sink}, {"table", sink.table}};
      out.add(up, labels, sink.available ? 1 : 0);
      auto with = [&](const char* outcome) {
        Labels l = labels;
        l.push_back({"outcome", outcome});
        return l;
      };
      out.add(rows, with("written"), static_cast<double>(sink.rows_written));
      out.add(rows, with("rejected"), static_cast<double>(sink.rows_rejected));
      out.add(batches, labels, static_cast<double>(sink.batches));
      out.add(failures, labels, static_cast<double>(sink.failures));
      out.add(lag, labels, static_cast<double>(sink.lag));
      out.add(
          down, labels,
          sink.available ? 0.0 : static_cast<double>(now_ms - sink.unavailable_since_ms) / 1000.0);
    }
  }

  std::lock_guard lock(mutex_);
  auto& log_start = out.family("rill_repartition_log_start_offset",
                               "A repartition partition's first offset after the last purge of "
                               "its committed records.",
                               T::Gauge);
  for (const auto& [partition, offset] : purged_log_starts_)
    out.add(log_start,
            {{"topic", partition.first}, {"partition", std::to_string(partition.second)}},
            static_cast<double>(offset));
  auto& consumed = out.family("rill_records_consumed_total",
                              "Records the task took from its input partitions.", T::Counter);
  auto& processed =
      out.family("rill_records_processed_total", "Input records the task processed.", T::Counter);
  auto& produced = out.family("rill_records_produced_total",
                              "Records the task's sinks sent to output topics.", T::Counter);
  auto& dropped = out.family(
      "rill_dropped_records_total",
      "Records processors dropped on purpose (late for their window, null key).", T::Counter);
  auto& by_processor = out.family("rill_processor_records_total",
                                  "Records that reached each processor of the task.", T::Counter);
  auto& process_latency =
      out.family("rill_process_latency_seconds",
                 "Time to process one input record through the task's sub-topology.", T::Histogram);
  auto& end_to_end = out.family(
      "rill_end_to_end_latency_seconds",
      "Time from an output record's timestamp to its hand-over to the producer.", T::Histogram);
  auto& store_get = out.family("rill_store_get_latency_seconds",
                               "Time of one read from the store itself (below the record cache "
                               "and the changelog); metrics.recording.level=DEBUG.",
                               T::Histogram);
  auto& store_put = out.family("rill_store_put_latency_seconds",
                               "Time of one write or delete in the store itself; "
                               "metrics.recording.level=DEBUG.",
                               T::Histogram);
  auto& restoring =
      out.family("rill_task_restoring", "1 while the task's stores are being restored.", T::Gauge);
  for (const auto& [id, task] : tasks_) {
    if (!task->assigned.load(std::memory_order_relaxed)) continue;
    const Labels labels = {{"task", task->task_label}};
    out.add(consumed, labels, static_cast<double>(task->consumed.value()));
    out.add(processed, labels, static_cast<double>(task->processed.value()));
    out.add(produced, labels, static_cast<double>(task->produced.value()));
    out.add(dropped, labels, static_cast<double>(task->dropped.value()));
    out.add(restoring, labels, task->restoring.load(std::memory_order_relaxed) ? 1 : 0);
    for (std::size_t i = 0; i < task->processors.size(); ++i)
      out.add(by_processor, {{"task", task->task_label}, {"processor", task->processors[i]}},
              static_cast<double>(task->processor_records[i].value()));
    if (record_latencies_) {
      out.add(process_latency, labels, task->process_latency);
      out.add(end_to_end, labels, task->end_to_end_latency);
    }
    if (record_store_latency_) {
      for (std::size_t i = 0; i < task->stores.size(); ++i) {
        const Labels store_labels = {{"task", task->task_label}, {"store", task->stores[i]}};
        out.add(store_get, store_labels, task->store_latency[i].get);
        out.add(store_put, store_labels, task->store_latency[i].put);
      }
    }
  }

  auto& lag = out.family("rill_consumer_lag_records",
                         "Records in the partition after the committed offset, from librdkafka "
                         "statistics.",
                         T::Gauge);
  for (const auto& [partition, records] : consumer_lag_)
    if (records >= 0)
      out.add(lag, {{"topic", partition.first}, {"partition", std::to_string(partition.second)}},
              static_cast<double>(records));

  auto& buffered = out.family("rill_buffered_records",
                              "Fetched records waiting in the partition's buffer.", T::Gauge);
  auto& paused =
      out.family("rill_partition_paused",
                 "1 while fetching the partition is held back: its queue is full.", T::Gauge);
  for (const auto& partition : partitions_) {
    const Labels labels = {{"topic", partition.topic},
                           {"partition", std::to_string(partition.partition)}};
    out.add(buffered, labels, static_cast<double>(partition.buffered));
    out.add(paused, labels, partition.paused ? 1 : 0);
  }

  auto& remaining = out.family("rill_restore_remaining_records",
                               "Changelog records still to restore into the store.", T::Gauge);
  for (const auto& [key, records] : restore_remaining_) {
    const auto& [store, topic, partition] = key;
    out.add(remaining,
            {{"store", store}, {"topic", topic}, {"partition", std::to_string(partition)}},
            static_cast<double>(records));
  }

  auto& keys = out.family("rill_store_estimated_keys",
                          "Keys in the store, as RocksDB estimates them.", T::Gauge);
  auto& size =
      out.family("rill_store_size_bytes",
                 "Bytes of the store on disk and in memtables, as RocksDB reports them.", T::Gauge);
  auto& cache_hits = out.family("rill_store_cache_hits_total",
                                "Reads the store's record cache answered.", T::Counter);
  auto& cache_misses =
      out.family("rill_store_cache_misses_total",
                 "Reads that went past the store's record cache to the store.", T::Counter);
  for (const auto& store : stores_) {
    const Labels labels = {{"task", store.task}, {"store", store.store}};
    if (store.cache_hits + store.cache_misses > 0) {
      out.add(cache_hits, labels, static_cast<double>(store.cache_hits));
      out.add(cache_misses, labels, static_cast<double>(store.cache_misses));
    }
    if (store.estimated_keys >= 0) out.add(keys, labels, static_cast<double>(store.estimated_keys));
    if (store.size_bytes >= 0) out.add(size, labels, static_cast<double>(store.size_bytes));
  }

  out.add(out.family("rill_producer_queue_messages",
                     "Messages waiting in librdkafka's producer queue.", T::Gauge),
          {}, static_cast<double>(producer_.queue_messages));
  out.add(out.family("rill_producer_queue_bytes",
                     "Bytes of the messages waiting in librdkafka's producer queue.", T::Gauge),
          {}, static_cast<double>(producer_.queue_bytes));
  out.add(out.family("rill_producer_request_errors_total",
                     "Produce requests the brokers answered with an error.", T::Counter),
          {}, static_cast<double>(producer_.errors));
  return out.take();
}

}  // namespace rill::metrics
