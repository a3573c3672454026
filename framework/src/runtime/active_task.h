// A task as the running application holds it: the StreamTask, the input
// partitions feeding it, and its turn on the worker pool.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "archive/archive.h"
#include "kafka/fetch_hold_back.h"
#include "kafka/handles.h"
#include "kafka/records.h"
#include "runtime/producer_collector.h"
#include "runtime/stream_task.h"
#include "state/changelog_reader.h"
#include "state/state_manager.h"

namespace rill::runtime {

// One assigned input partition. Its records stay in librdkafka's own queue
// for the partition, no longer forwarded to the consumer's queue: the task's
// worker takes them from there in batches, and librdkafka stops fetching the
// partition while that queue holds `queued.min.messages` records. So a slow
// task holds back its partitions without pausing them, and nothing fetched is
// ever dropped and fetched again.
struct InputPartition {
  // `on_arrival` runs on a librdkafka thread when records arrive in an empty
  // queue; it must be quick and must not call librdkafka.
  InputPartition(rd_kafka_t* consumer, std::string topic_name, int32_t partition_id,
                 internal::SourceNodeBase* source_node, std::size_t batch_capacity,
                 std::size_t hold_back_at, std::atomic<uint64_t>& hold_backs,
                 std::function<void()> on_arrival);
  // Stops the arrival callback (librdkafka runs it under the queue's lock, so
  // none is running afterwards) and drops records taken but not processed.
  ~InputPartition();
  InputPartition(const InputPartition&) = delete;
  InputPartition& operator=(const InputPartition&) = delete;

  // Worker: takes what the queue holds into `batch`. Returns false when the
  // queue was empty, or the partition is processed to its end offset.
  bool take();
  // Records waiting: taken and not processed, plus still in the queue (none
  // past the end offset), plus archived ones not read yet.
  std::size_t waiting() const;
  // Worker: whether the archive has a record to process before the queue's;
  // lets go of the archive once it is read. Throws ObjectStoreError when a
  // segment cannot be read.
  bool archive_pending();

  // A replay processes the partition only below this offset (see
  // KafkaStreams::replay_until); set before the first take.
  static constexpr int64_t kUnbounded = std::numeric_limits<int64_t>::max();
  int64_t end_offset = kUnbounded;
  // Worker: the partition met its end offset (a record or the partition's
  // end at or past it). No record past it is processed: those taken are
  // dropped, the rest stay in the queue, which holds back fetching.
  bool at_end_offset = false;

  // Records retention deleted from the topic, read from its archive before
  // the queue's (see archive.topics): the consumer fetches from the
  // archive's end. Null when there are none, or once they are processed.
  std::unique_ptr<archive::ArchiveCursor> archive;
  // The archive's records not processed yet, published by the worker.
  std::atomic<std::size_t> archived_waiting{0};

  const std::string topic;
  const int32_t partition;
  internal::SourceNodeBase* const source;
  const std::function<void()> on_arrival;
  kafka::MessageQueue queue;
  // Worker: records taken from the queue; batch[next] is the next to process.
  std::vector<rd_kafka_message_t*> batch;
  std::size_t next = 0, size = 0;
  // Worker: the last take filled the batch, so the queue may hold more.
  bool may_have_more = true;
  // What batch holds past `next`, published by the worker for gauges.
  std::atomic<std::size_t> unprocessed{0};
  // Whether librdkafka holds back fetching (the queue reached `hold_back_at`).
  kafka::FetchHoldBack hold_back;
  // Set by the worker when a held-back queue drained to half; the polling
  // thread then wakes librdkafka's fetcher for the partition.
  std::atomic<bool> fetch_wanted{false};
  // Counts the times a queue was held back (the application's count).
  std::atomic<uint64_t>& hold_backs;
  // Worker: the partition's last event was the end of what the broker holds
  // (lag 0), not a record.
  bool at_end = false;
  // Written by the worker, read by the polling thread only while every task
  // is stopped at the commit gate.
  int64_t next_offset = -1;
  int64_t committed_offset = -1;
  // Worker: a record below next_offset was skipped and said so.
  bool redelivery_logged = false;
  // The timestamp of the last record processed (-1: none yet), for the
  // progress of a replay; written by the worker, read by the polling thread.
  std::atomic<int64_t> last_timestamp{-1};
};

// The RawRecord of a fetched record: views into `message`, valid while it
// lives, and its headers, read from it into `headers` when first looked at.
inline internal::RawRecord raw_record_of(rd_kafka_message_t& message, const std::string& topic,
                                         Headers& headers) {
  internal::RawRecord raw;
  if (message.key != nullptr) raw.key = kafka::key_of(message);
  if (message.payload != nullptr) raw.value = kafka::value_of(message);
  raw.timestamp = kafka::timestamp_of(message);
  raw.metadata = {topic, message.partition, message.offset};
  headers = Headers::read_later(
      [](const void* from, std::vector<Header>& into) {
        const rd_kafka_headers_t* kafka_headers =
            kafka::headers_of(*static_cast<const rd_kafka_message_t*>(from));
        if (kafka_headers == nullptr) return;
        kafka::for_each_header(
            kafka_headers, [&](const char* name, const char* value, std::size_t size) {
              into.push_back({name, value ? std::optional<std::string>(std::string(value, size))
                                          : std::nullopt});
            });
      },
      &message);
  raw.headers = &headers;
  return raw;
}

// The RawRecord of an archived record: views into `record`, valid while it
// lives.
inline internal::RawRecord raw_record_of(const archive::ArchivedRecord& record,
                                         const std::string& topic, int32_t partition) {
  internal::RawRecord raw;
  if (record.key) raw.key = *record.key;
  if (record.value) raw.value = *record.value;
  raw.timestamp = record.timestamp;
  raw.metadata = {topic, partition, record.offset};
  if (!record.headers.empty()) raw.headers = &record.headers;
  return raw;
}

// Shared by every task of the application: the gate that stops all tasks for a
// commit or a rebalance, and the count of tasks currently running.
struct TaskGate {
  std::atomic<bool> closed{false};
  std::atomic<int> running{0};
  std::atomic<uint64_t> processed{0};
  // Records processors dropped on purpose (late for their window, null key).
  std::atomic<uint64_t> dropped{0};
};

// A task's life, as Kafka Streams' Task.State. Only the polling thread (the
// task manager) changes it. Workers and the changelog reader read it, and
// report what they meet (report_failure, report_restored); the polling thread
// turns a report into a change at its next turn.
enum class TaskState : uint8_t {
  kCreated,    // nodes built, stores open
  kRestoring,  // its stores catch up with their changelogs; it processes nothing
  kRunning,    // it processes records
  kFailed,     // a failure was reported: it is rewound, or the handler decides
  kClosed,     // closed; a run posted before does nothing
};
std::string_view to_string(TaskState state);

class ActiveTask final : public state::RestoringTask {
 public:
  ActiveTask(const Topology& topology, TaskId id, std::string application_id, rd_kafka_t* producer,
             DeliveryTracker& deliveries, ErrorHandling& errors, TaskGate& gate,
             std::size_t max_batch, int64_t max_idle_ms, std::chrono::milliseconds metadata_timeout,
             std::filesystem::path task_directory, state::RocksDbResources* resources);

  // Where the task records its metrics; call before open(). `timed` adds the
  // latency histograms, which cost a clock read per record; `timed_stores`
  // the store latency histograms, two clock reads per store operation.
  void record_into(std::shared_ptr<metrics::TaskMetrics> metrics, bool timed, bool timed_stores);
  metrics::TaskMetrics* metrics() const { return metrics_.get(); }

  // Creates the nodes and opens the task's stores (throws StateStoreError when
  // its directory is locked). Processors are initialized at the first run, once
  // the stores are restored.
  void open(state::CacheBudget* cache);
  // Closes processors and stores; `clean` writes the checkpoint.
  void close(bool clean);
  state::StateManager& state() override { return state_; }

  TaskId id() const override { return id_; }
  StreamTask& stream_task() { return task_; }
  std::vector<std::unique_ptr<InputPartition>>& inputs() { return inputs_; }

  // Worker side: processes waiting records until none is left, the batch is
  // done, or the gate closes. Returns true when the polling thread has work:
  // the task failed, or a held-back partition wants fetching.
  bool run(int64_t now);
  // Whether records wait in the task's partitions; from any thread.
  bool has_waiting() const;
  // Worker, after run(): whether another run now would process anything.
  // Not when the last run stopped for an input it must read first (its
  // records are still being fetched), nor while it waits out max.task.idle.ms
  // for an input read to its end: the input's arrival schedules the task, and
  // so does the polling thread's tick, so a worker does not spin meanwhile.
  bool should_run_again() const;

  // From any thread: runs `query` on the task's worker at the start of its
  // next run, between two records, so that it reads the stores (and their
  // record caches) as processing left them, without a lock on the way of
  // records. Returns false, and drops the query, when the task is not running
  // (restoring, failed or closed): its stores cannot be read now. A query the
  // task closes before running is dropped too; the caller then schedules the
  // task (see has_waiting).
  bool post_query(std::function<void()> query);

  // True while a run is posted or executing; the poll thread posts a run only
  // when it flips this from false to true.
  std::atomic<bool> scheduled{false};

  TaskState task_state() const { return task_state_.load(std::memory_order_acquire); }
  // Polling thread only. Throws std::logic_error on a change the life of a
  // task does not have (a closed task never comes back).
  void transition_to(TaskState next);

  // From any thread: the task cannot go on. The first report stays.
  // `by_cluster` when the cluster rather than the task's records caused it
  // (TaskCorruptedError, a restore that could not reach the broker): the
  // runtime then rewinds to the last commit instead of asking the uncaught
  // exception handler.
  void report_failure(std::string reason, bool by_cluster) override;
  bool failure_reported() const { return failure_reported_.load(std::memory_order_acquire); }
  // Once failure_reported() is seen.
  const std::string& failure() const { return failure_; }
  bool failed_by_cluster() const { return failed_by_cluster_; }

  // The changelog reader: it is done with the task's stores, restored or not.
  void report_restored() override { restored_reported_.store(true, std::memory_order_release); }
  // Polling thread: whether the changelog reader may still write to the
  // task's stores (submitted to it, and not reported done).
  bool in_restore() const {
    return submitted_for_restore_ && !restored_reported_.load(std::memory_order_acquire);
  }
  void submitted_for_restore() { submitted_for_restore_ = true; }

 private:
  InputPartition* next_input();
  void note_first_offset(const InputPartition& input, int64_t offset) const;
  void run_queries();
  void drop_queries();
  // Whether the task may process its next record now, as Kafka Streams'
  // PartitionGroup decides with max.task.idle.ms: when every input has a
  // record buffered, or an input that has none is read to its end (lag 0)
  // and has been for max_idle_ms. An input whose records are still being
  // fetched, or whose lag is not known yet, is waited for: its next record may
  // be older than the others'. A task of one input never waits.
  bool ready_to_process(int64_t now);

  TaskId id_;
  ProducerCollector collector_;
  state::StateManager state_;
  StreamTask task_;
  bool initialized_ = false;
  TaskGate& gate_;
  std::size_t max_batch_;
  int64_t max_idle_ms_;
  // When an input read to its end was first seen empty; -1 when none is.
  int64_t idle_since_ = -1;
  // What the last run stopped for (see should_run_again): an input being
  // fetched, or an idle input's wait.
  InputPartition* awaited_input_ = nullptr;
  bool idle_wait_ = false;
  std::shared_ptr<metrics::TaskMetrics> metrics_;
  bool timed_ = false;
  uint32_t records_since_sample_ = 0;
  std::vector<std::unique_ptr<InputPartition>> inputs_;
  // The headers of the record being processed, read from its message only
  // while it is processed.
  Headers headers_;

  std::mutex queries_mutex_;
  std::vector<std::function<void()>> queries_;
  std::atomic<bool> queries_waiting_{false};

  std::atomic<TaskState> task_state_{TaskState::kCreated};
  std::mutex failure_mutex_;
  std::atomic<bool> failure_reported_{false};
  std::string failure_;
  bool failed_by_cluster_ = false;
  std::atomic<bool> restored_reported_{false};
  bool submitted_for_restore_ = false;
};

}  // namespace rill::runtime
