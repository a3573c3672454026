// A task as the running application holds it: the StreamTask, the input
// partitions feeding it, and its turn on the worker pool.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "kafka/handles.h"
#include "runtime/partition_buffer.h"
#include "runtime/producer_collector.h"
#include "runtime/state_manager.h"
#include "runtime/stream_task.h"

namespace rill::runtime {

// One assigned input partition. The polling thread fills `buffer`; the task's
// worker drains it. Fields marked "poll thread" are touched by it alone;
// `next_offset` is written by the worker and read by the polling thread only
// while every task is stopped at the commit gate.
struct InputPartition {
  InputPartition(std::string topic_name, int32_t partition_id,
                 internal::SourceNodeBase* source_node, std::size_t capacity)
      : topic(std::move(topic_name)),
        partition(partition_id),
        source(source_node),
        buffer(capacity) {}
  ~InputPartition();

  const std::string topic;
  const int32_t partition;
  internal::SourceNodeBase* const source;
  PartitionBuffer<rd_kafka_message_t*> buffer;
  // Set by the worker when a paused partition's buffer has drained to half.
  std::atomic<bool> drained{false};
  std::atomic<bool> paused{false};
  int64_t next_offset = -1;
  // Poll thread: records fetched while the buffer was full, kept in order.
  std::vector<rd_kafka_message_t*> overflow;
  int64_t committed_offset = -1;
};

// Shared by every task of the application: the gate that stops all tasks for a
// commit or a rebalance, and the count of tasks currently running.
struct TaskGate {
  std::atomic<bool> closed{false};
  std::atomic<int> running{0};
  std::atomic<uint64_t> processed{0};
  // Records processors dropped on purpose (late for their window, null key).
  std::atomic<uint64_t> dropped{0};
};

class ActiveTask {
 public:
  ActiveTask(const Topology& topology, TaskId id, std::string application_id, rd_kafka_t* producer,
             ErrorHandling& errors, TaskGate& gate, std::size_t max_batch,
             std::chrono::milliseconds metadata_timeout, std::filesystem::path task_directory,
             state::RocksDbResources* resources);

  // Where the task records its metrics; call before open(). `timed` adds the
  // latency histograms, which cost a clock read per record; `timed_stores`
  // the store latency histograms, two clock reads per store operation.
  void record_into(std::shared_ptr<metrics::TaskMetrics> metrics, bool timed, bool timed_stores);
  metrics::TaskMetrics* metrics() const { return metrics_.get(); }

  // Creates the nodes and opens the task's stores (throws StateStoreError when
  // its directory is locked). Processors are initialized at the first run, once
  // the stores are restored.
  void open(std::size_t cache_budget_per_store);
  // Closes processors and stores; `clean` writes the checkpoint.
  void close(bool clean);
  StateManager& state() { return state_; }

  TaskId id() const { return id_; }
  StreamTask& stream_task() { return task_; }
  std::vector<std::unique_ptr<InputPartition>>& inputs() { return inputs_; }

  // Worker side: processes buffered records until the buffers are empty, the
  // batch is done, or the gate closes. Returns true when the polling thread
  // has work: a paused partition drained, or the task failed.
  bool run(int64_t now);
  bool has_buffered() const;

  // True while a run is posted or executing; the poll thread posts a run only
  // when it flips this from false to true.
  std::atomic<bool> scheduled{false};
  // Set once by the worker when processing failed beyond the handlers.
  std::atomic<bool> failed{false};
  std::string failure;
  // Set before the task is dropped, so a stale posted run does nothing.
  std::atomic<bool> closed{false};
  // While set, the task's stores are being restored and it processes nothing.
  std::atomic<bool> restoring{false};

 private:
  InputPartition* next_input();

  TaskId id_;
  ProducerCollector collector_;
  StateManager state_;
  StreamTask task_;
  bool initialized_ = false;
  TaskGate& gate_;
  std::size_t max_batch_;
  std::shared_ptr<metrics::TaskMetrics> metrics_;
  bool timed_ = false;
  uint32_t records_since_sample_ = 0;
  std::vector<std::unique_ptr<InputPartition>> inputs_;
  Headers headers_;
};

}  // namespace rill::runtime
