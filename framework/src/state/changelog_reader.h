// Reads changelogs into local stores on a thread of its own, with a consumer
// of its own (assigned, never subscribed), so the polling thread keeps
// fetching and other tasks keep processing meanwhile:
// - restoring: a newly assigned task's stores, from their checkpoint to the
//   changelog's end; the task processes nothing until then;
// - standby: warm copies of stores whose tasks run on other instances, kept
//   following the changelog, so that on failover only the tail is restored.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "rill/kafka_streams.h"

#include "kafka/fetch_hold_back.h"
#include "kafka/handles.h"
#include "state/restore_watch.h"
#include "state/state_manager.h"

namespace rill::state {

using RestoreProgress = KafkaStreams::RestoreProgress;

// What the reader restores stores for: an active task (the runtime's
// ActiveTask). The reader only reports to it; the task's owner decides.
class RestoringTask {
 public:
  virtual ~RestoringTask() = default;
  virtual TaskId id() const = 0;
  virtual StateManager& state() = 0;
  // The stores could not be restored; `by_cluster` when the broker, not the
  // changelog's records, is the cause.
  virtual void report_failure(std::string reason, bool by_cluster) = 0;
  // The reader is done with the task's stores, restored or not.
  virtual void report_restored() = 0;
};

// A standby replica of a task: its stores, fed from the changelog only.
struct StandbyTask {
  StandbyTask(const Topology& topology, TaskId task, std::string application_id,
              std::filesystem::path directory, RocksDbResources* resources)
      : id(task),
        state(topology, topology.subtopologies().at(static_cast<std::size_t>(task.subtopology)),
              task, std::move(application_id), std::move(directory), resources) {}
  TaskId id;
  StateManager state;
  // Held while the reader writes the stores and while a query reads them
  // (StoreQueryOptions::stale_stores): the only copies read off their writer's
  // thread. `readable` turns false, under it, before the stores close.
  std::mutex store_mutex;
  bool readable = true;
};

class ChangelogReader {
 public:
  using Listener = std::function<void(const RestoreProgress&)>;

  // `on_restored` runs on the reader's thread after each task is restored.
  // Records the reader's consumer fetches ahead (its queued.min.messages).
  static constexpr std::size_t kQueuedRecords = 100'000;

  // `ends` answers the reader's questions for changelogs' ends, off the
  // connection where `consumer`'s fetches wait; it reads uncommitted records,
  // as the end of a restore under exactly-once is the high watermark, not the
  // last stable offset (see start_restores).
  ChangelogReader(kafka::KafkaPtr consumer, kafka::KafkaPtr ends, Listener listener,
                  std::function<void()> on_restored);
  ~ChangelogReader();

  // Restores the stores of `tasks`, then reports each restored. Tasks
  // submitted together start in one turn, with their partitions fetched side
  // by side from the first fetch.
  void submit(std::vector<std::shared_ptr<RestoringTask>> tasks);
  // Stops restoring `tasks` and waits until the reader no longer touches them.
  void wait_idle(const std::vector<const RestoringTask*>& tasks);
  // Keeps `standby`'s stores following their changelogs until removed.
  void add_standby(std::shared_ptr<StandbyTask> standby);
  // Stops following and waits until the reader no longer touches it; the
  // caller then closes it (which writes its checkpoint).
  void remove_standby(const StandbyTask& standby);

  uint64_t restored_records() const { return restored_records_.load(std::memory_order_relaxed); }
  uint64_t standby_records() const { return standby_records_.load(std::memory_order_relaxed); }

 private:
  // One changelog partition being read into one store.
  struct Reading {
    StateManager* state = nullptr;
    std::string store;
    std::shared_ptr<RestoringTask> task;   // restoring
    std::shared_ptr<StandbyTask> standby;  // or following
    int64_t next_offset = 0;
    int64_t end = -1;  // restoring: the changelog's high watermark when the restore began
    RestoreProgress progress;
    bool done = false;
    // Records of the current batch not yet written to the store.
    std::vector<state::BytesWrite> pending;
    // Tells this reading from an earlier one of the same partition.
    uint64_t serial = 0;
    // Where the consumer last told the partition ends (a restore waits there).
    int64_t consumer_end = -1;
    RestoreWatch watch{RestoreWatch::Clock::now()};
  };
  using Key = std::pair<std::string, int32_t>;

  void run();
  // Starts the waiting restores whose changelogs' ends the broker tells.
  void start_restores();
  // `offsets`: the low and high watermarks of the task's changelogs, in order.
  void start_restore(const std::shared_ptr<RestoringTask>& task,
                     std::span<const std::pair<int64_t, int64_t>> offsets);
  void start_standby(const std::shared_ptr<StandbyTask>& standby);
  // Queues a changelog record for the store; write_pending() writes the queue.
  void apply(Reading& reading, const rd_kafka_message_t& message);
  // Records [begin, end) of a reading's pending batch, written by one thread.
  struct WriteJob {
    Reading* reading = nullptr;
    std::size_t begin = 0;
    std::size_t end = 0;
    uint64_t written = 0;
    std::string failure;
  };
  void write_pending(Reading& reading);
  static void sort_pending(Reading& reading);
  static void write(WriteJob& job);
  // Accounts for the jobs that wrote `reading`'s batch, and clears it.
  void account_written(Reading& reading, std::span<WriteJob> jobs);
  void write_all_pending();
  void take_writes();
  void run_writer();
  void finish(Reading& reading);
  // Ends the store's restore: see StateManager::end_restore.
  static void end_restore(StateManager& state, const std::string& store);
  // The task's stores are all up to date: it may process.
  void complete(RestoringTask& task);
  void assign();
  // Assigns the partitions of stalled restores anew (see RestoreWatch).
  void refetch_stalled();
  void report(Reading& reading);
  // Waits until the reader's turn after `turn` has ended.
  void wait_for_turn(std::unique_lock<std::mutex>& lock, uint64_t turn);

  kafka::KafkaPtr consumer_;
  kafka::KafkaPtr ends_;
  Listener listener_;
  std::function<void()> on_restored_;

  // Commands from other threads, taken by the reader at each turn.
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::shared_ptr<RestoringTask>> restore_requests_;
  std::vector<std::shared_ptr<StandbyTask>> standby_requests_;
  std::set<const void*> removals_;  // tasks or standbys to let go
  uint64_t turn_ = 0;
  bool stopping_ = false;

  // The reader thread's own.
  struct WaitingRestore {
    std::shared_ptr<RestoringTask> task;
    std::chrono::steady_clock::time_point since;  // first asked for its ends
  };
  std::vector<WaitingRestore> waiting_;  // restores that do not know their ends yet
  std::map<Key, Reading> readings_;
  // What the consumer is assigned: each partition with the serial of the
  // reading it was assigned for. Reader thread only.
  std::map<Key, uint64_t> assigned_;
  // Handles on the topics the consumer has been assigned, which keep their
  // metadata current (see assign()). Reader thread only.
  std::map<std::string, kafka::TopicPtr> known_topics_;
  uint64_t next_serial_ = 0;
  bool assignment_changed_ = false;
  kafka::FetchHoldBack hold_back_{kQueuedRecords};
  kafka::FetchWaker waker_{consumer_.get()};

  std::atomic<uint64_t> restored_records_{0};
  std::atomic<uint64_t> standby_records_{0};

  // A turn's store writes, shared with the writer threads.
  struct Writes {
    std::mutex mutex;
    std::condition_variable started;
    std::condition_variable finished;
    std::vector<WriteJob> jobs;  // set by the reader between rounds
    std::atomic<std::size_t> next{0};
    std::size_t left = 0;  // jobs not yet done
    std::size_t busy = 0;  // writers inside a round
    uint64_t round = 0;
    bool stopping = false;
  };
  Writes writes_;
  std::vector<std::thread> writers_;
  std::thread thread_;
};

}  // namespace rill::state
