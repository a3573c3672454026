// The active tasks of an instance and what happens to them, as Kafka Streams'
// TaskManager: created when the group assigns their partitions, closed when
// it takes them back, rewound to the last commit after a fault of the
// cluster, handed to the uncaught exception handler when their records fail
// them, and stopped all together at the gate for each commit.
//
// Everything here runs on the polling thread. Workers and the changelog
// reader only report to it: a task's `failed` flag, its `restoring` flag and
// commit requests, which the polling thread reads at its next turn.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "rill/kafka_streams.h"
#include "rill/topology.h"

#include "kafka/admin.h"
#include "kafka/consumer.h"
#include "kafka/fetch_hold_back.h"
#include "kafka/handles.h"
#include "kafka/producer.h"
#include "runtime/active_task.h"
#include "runtime/resume.h"
#include "runtime/streams_producer.h"

namespace rill::metrics {
class Registry;
}
namespace rill::state {
class CacheBudget;
class ChangelogReader;
class RocksDbResources;
class TaskSnapshots;
}  // namespace rill::state

namespace rill::runtime {

class GlobalStateManager;

// The instance's counts of what its tasks went through; read by metrics and
// KafkaStreams::stats from any thread.
struct TaskCounters {
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> aborted_transactions{0};
  std::atomic<uint64_t> rewinds{0};
  std::atomic<uint64_t> active_tasks{0};
  std::atomic<uint64_t> failed_tasks{0};
  std::atomic<uint64_t> partition_pauses{0};
};

class TaskManager {
 public:
  struct Settings {
    std::string application_id;
    bool exactly_once = false;
    // Records a task takes from a partition at once, and records fetched
    // ahead per partition.
    std::size_t max_batch = 500;
    std::size_t buffer_capacity = 1000;
    // How long an output may wait for the cluster's acknowledgement before a
    // commit gives up on it (the transaction or message timeout).
    std::chrono::milliseconds delivery_timeout{60000};
    // How long one call to the cluster may block the polling thread while
    // recovering, and how long a task waits for a topic's metadata.
    std::chrono::milliseconds call_timeout{10000};
    std::chrono::milliseconds metadata_timeout{30000};
    // task.timeout.ms: how long faults may keep the instance from committing.
    std::chrono::milliseconds task_timeout{300000};
    // max.task.idle.ms: see ActiveTask::ready_to_process; negative never waits.
    int64_t max_task_idle_ms = 0;
    // A replay (KafkaStreams::replay_until): each source partition is
    // processed only below its offset here.
    std::map<std::pair<std::string, int32_t>, int64_t> input_end_offsets;
    // repartition.purge.interval.ms: how often, at most, a commit is followed
    // by the deletion of the repartition records it covered.
    std::chrono::milliseconds repartition_purge_interval{30000};
    std::filesystem::path state_directory;
    bool metrics_enabled = true;
    // The archive (archive.location), and the source topics read from it
    // where retention deleted their records (archive.topics); null: none.
    std::shared_ptr<const archive::Archive> archive;
    std::set<std::string> archived_topics;
  };

  // The clients tasks use and the calls whose outcome the manager decides on.
  struct Clients {
    // The group consumer: each input partition's queue comes from it.
    rd_kafka_t* consumer = nullptr;
    // Its commit, committed, seek and position.
    kafka::Consumer* group = nullptr;
    // The producer tasks write through, and a fresh one when it is fenced or
    // fails.
    kafka::KafkaPtr producer;
    std::function<kafka::KafkaPtr()> make_producer;
    // Under exactly-once: the transactional calls of a producer.
    std::function<std::unique_ptr<kafka::TransactionalProducer>(rd_kafka_t*)> transactional;
  };

  // What the instance shares with its tasks. Pointers may be null: no stores
  // (rocksdb, cache_budget, changelog_reader), no global stores.
  struct Shared {
    const Topology& topology;
    DeliveryTracker& deliveries;
    ErrorHandling& errors;
    TaskGate& gate;
    TaskCounters& counters;
    metrics::Registry& metrics;
    const std::atomic<bool>& stopping;
    state::RocksDbResources* rocksdb = nullptr;
    state::CacheBudget* cache_budget = nullptr;
    state::ChangelogReader* changelog_reader = nullptr;
    // Snapshots taken at commits and read by new tasks; nullptr: none.
    state::TaskSnapshots* snapshots = nullptr;
    const GlobalStateManager* global_stores = nullptr;
    // Posts a task's run on the worker pool (when it is not posted yet).
    std::function<void(const std::shared_ptr<ActiveTask>&)> schedule = {};
    // Called before a task is created on this instance: its standby, if any,
    // must let go of the task's directory.
    std::function<void(const TaskId&)> before_create = {};
    // Stops the instance with an error: an output refused for good.
    std::function<void(const std::string&)> fail_instance = {};
  };

  TaskManager(Settings settings, Clients clients, Shared shared);
  ~TaskManager();
  TaskManager(const TaskManager&) = delete;
  TaskManager& operator=(const TaskManager&) = delete;

  // Under exactly-once: makes the producer's transactions start anew and
  // begins the first. Throws naming the call.
  void start();

  // The group assigned `partitions` (with their followers): their tasks are
  // created, or get the partitions. While a rewind waits to reopen, they join
  // what it reopens.
  void assign(const std::vector<kafka::TopicPartition>& partitions);
  // After assign(): `partitions` with the offset the consumer starts at
  // where a partition's first records come from its archive (the archive's
  // end), or where this instance committed it before (the group's committed
  // offset, raised to this instance's own: see OwnCommits); the others keep
  // theirs (librdkafka looks up the group's committed offset).
  std::vector<kafka::TopicPartition> start_positions(std::vector<kafka::TopicPartition> partitions);
  // The group takes `partitions` back; `lost` when another member may own
  // them already. Tasks left with no partition close, with a checkpoint only
  // when they committed first.
  void revoke(const std::vector<kafka::TopicPartition>& partitions, bool lost);

  // The commit barrier: stops every task at the gate, flushes their state and
  // outputs, commits the input offsets (in the transaction, under
  // exactly-once) and lets them go on. Returns whether it committed: not
  // while tasks wait to be rewound, nor when an output is not acknowledged
  // yet (the next commit tries again) or was refused (a refusal by the
  // cluster rewinds every task to the last commit).
  bool commit();

  // Takes what workers and the changelog reader reported since the last
  // turn: tasks whose stores are restored start running; failed tasks go
  // back to the last commit when the cluster caused the failure, and to
  // `handler` otherwise. Returns the error that stops the instance, if the
  // handler says so.
  std::optional<std::string> update(const KafkaStreams::ExceptionHandler& handler);

  // Takes every task back to the last commit (Kafka Streams closes corrupted
  // tasks dirty and revives them): under exactly-once the open transaction
  // aborts; the tasks close without a checkpoint, so their stores restore
  // what the changelogs committed, and their inputs are read again from the
  // committed offsets. Failed tasks stay for the uncaught exception handler
  // unless `including_failed` (or the producer they hold is replaced).
  // `wait_if_recurring`: tasks failed on the cluster, see rewind().
  void rewind_all(const std::string& reason, bool new_producer, bool including_failed = true,
                  bool wait_if_recurring = false);

  // Another attempt at reopening what a rewind closed, once its backoff is
  // over.
  void recover_when_due(std::chrono::steady_clock::time_point now);
  bool recovery_pending() const { return recovery_.pending; }

  // Set when faults have kept the instance from committing for longer than
  // task.timeout.ms: the error it fails with.
  std::optional<std::string> timed_out(std::chrono::steady_clock::time_point now) const;

  // Under a replay: whether every source partition is processed to its end
  // offset, and everything processed, repartition topics' records included,
  // is committed. `ends` gives the end (high watermark, or last stable offset
  // under read_committed) of partitions, for the repartition topics. Call
  // right after a commit.
  using EndOffsets = std::function<std::vector<int64_t>(
      const std::vector<std::pair<std::string, int32_t>>& partitions)>;
  bool replay_complete(const EndOffsets& ends);

  // Closes every task, with a checkpoint only after a commit made now when
  // `try_commit`.
  void close_all(bool try_commit);

  // Posts a run of every task (wall-clock punctuations, and a task whose
  // arrival signal came while its previous run was ending).
  void schedule_all();
  // Whether a task asked for a commit (ProcessorContext::commit) since the last call.
  bool commit_requested();
  // Has librdkafka's fetcher woken, from a thread of its own (FetchWaker), for
  // held-back partitions whose queue drained to half (see FetchHoldBack).
  void wake_fetchers();
  // Before the consumer closes: no wake-up is sent after.
  void stop_waking_fetchers();

  const std::map<TaskId, std::shared_ptr<ActiveTask>>& tasks() const { return tasks_; }
  // From any thread: the tasks as of the last time the gate opened or tasks
  // closed. Queries reach the tasks through it while the polling thread
  // changes tasks().
  std::vector<std::shared_ptr<ActiveTask>> published_tasks() const;
  bool has_task(const TaskId& id) const { return tasks_.contains(id); }
  // "0_1 0_4": the ids of the active tasks, for logs.
  std::string task_ids() const;
  rd_kafka_t* producer() const { return clients_.producer.get(); }

 private:
  struct TopicPartitionHash {
    std::size_t operator()(const std::pair<std::string, int32_t>& tp) const {
      return std::hash<std::string>()(tp.first) * 31 + static_cast<std::size_t>(tp.second);
    }
  };

  void close_gate();
  void open_gate();
  void publish_tasks();
  // Turns the reports of other threads into task states (see TaskState).
  void take_reports();
  // The commit itself; call with the gate closed.
  bool commit_offsets();
  // Waits up to `timeout` for the producer's records in flight, as
  // kafka::flush does; under at-least-once it returns
  // RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST as soon as the group has taken this
  // instance's partitions away (see revoke()).
  rd_kafka_resp_err_t flush_while_assigned(std::chrono::milliseconds timeout);
  // `inputs` are committed as far as they were processed.
  void mark_committed(const std::vector<InputPartition*>& inputs);
  // The next offset to read of every partition whose task processed records
  // since the last commit.
  std::vector<kafka::TopicPartition> collect_offsets(std::vector<InputPartition*>& committed);
  bool commit_transaction(const std::vector<kafka::TopicPartition>& offsets,
                          const std::vector<InputPartition*>& inputs);
  // After a commit: deletes the records of repartition topics below the
  // committed offsets, as Kafka Streams does, so that they stop growing. The
  // request runs in the background; update() takes its answer.
  void purge_repartition_topics();
  void take_purge_answer();
  void create_transactions();

  void create_tasks(const std::vector<kafka::TopicPartition>& partitions);
  // Before create_tasks makes the tasks of `partitions` it does not hold yet:
  // standbys let go of their directories, and those without local state get
  // their newest snapshots (state.snapshot.*).
  void prepare_new_tasks(const std::vector<kafka::TopicPartition>& partitions);
  // For the partitions of archived topics whose next offset (committed,
  // raised to the own commit) the topic no longer holds: a cursor over their
  // archive from that offset, and the
  // archive's end in archive_live_starts_. Throws when the archive cannot be
  // read, or when it ends before the topic starts (records are in neither).
  std::map<std::pair<std::string, int32_t>, std::unique_ptr<archive::ArchiveCursor>> archive_reads(
      const std::vector<kafka::TopicPartition>& partitions);
  void open_task(ActiveTask& task);
  // Closes the tasks of `partitions`; `clean` after they committed.
  void close_partitions(const std::vector<kafka::TopicPartition>& partitions, bool clean);
  void close_tasks(const std::vector<std::shared_ptr<ActiveTask>>& closing, bool clean);

  void note_stall(const std::string& reason);
  // Closes `rewound` without committing and reopens their partitions from the
  // last commit, now or, while the cluster still refuses, with backoff. Under
  // exactly-once every task must be in `rewound`: the transaction they share
  // aborts. `wait_if_recurring`: the tasks failed on the cluster; if they
  // did after a recovery, before a commit, they wait before they resume.
  // Call with the gate closed.
  void rewind(const std::vector<std::shared_ptr<ActiveTask>>& rewound, const std::string& reason,
              bool new_producer, bool wait_if_recurring = false);
  // Closes tasks without committing and keeps their partitions to reopen.
  void close_for_recovery(const std::vector<std::shared_ptr<ActiveTask>>& closing);
  // One attempt to reopen what rewind() closed. Call with the gate closed.
  void recover();
  // Creates tasks again on `partitions`, reading from the offsets last
  // committed. Throws, with nothing created, when the committed offsets
  // cannot be read or the consumer cannot seek to them: guessing would lose
  // or repeat input.
  void reopen(const std::vector<kafka::TopicPartition>& partitions);

  // Where the consumer starts the partitions archive_reads() gave a cursor.
  std::map<std::pair<std::string, int32_t>, int64_t> archive_live_starts_;
  OwnCommits own_commits_;
  Settings settings_;
  Clients clients_;
  Shared shared_;
  std::unique_ptr<kafka::FetchWaker> fetch_waker_;  // null without a consumer
  // By source topic: the sub-topology reading it.
  std::map<std::string, int32_t> subtopology_of_topic_;
  // The source topics that are repartition topics, and the purge of their
  // committed records: null when the cluster cannot delete records.
  std::set<std::string> repartition_topics_;
  std::unique_ptr<kafka::RecordDeletion> purge_;
  std::map<std::pair<std::string, int32_t>, int64_t> purged_below_;
  std::chrono::steady_clock::time_point next_purge_{};
  bool purge_failing_ = false;
  // Under exactly-once: the transactions of the producer.
  std::unique_ptr<StreamsProducer> transactions_;

  std::map<TaskId, std::shared_ptr<ActiveTask>> tasks_;
  mutable std::mutex published_mutex_;
  std::vector<std::shared_ptr<ActiveTask>> published_;
  std::unordered_map<std::pair<std::string, int32_t>,
                     std::pair<InputPartition*, std::shared_ptr<ActiveTask>>, TopicPartitionHash>
      inputs_;

  // Tasks that rewind() closed and that wait to reopen from the last commit.
  struct Recovery {
    bool pending = false;
    bool new_producer = false;
    std::vector<kafka::TopicPartition> partitions;
    std::chrono::steady_clock::time_point next_attempt;
    std::chrono::milliseconds backoff{0};
    // A recovery reopened partitions, and no commit succeeded since: a
    // fault now came back (see rewind).
    bool resumed_since_commit = false;
  };
  Recovery recovery_;
  // Since the first fault that kept the instance from committing.
  std::optional<std::chrono::steady_clock::time_point> stalled_since_;
  std::string stall_reason_;
};

}  // namespace rill::runtime
