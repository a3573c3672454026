// The snapshots of an instance's tasks (state/snapshots.h): taken at commits
// at most every state.snapshot.interval.ms per task, uploaded and pruned by a
// thread of their own so that processing waits only for the RocksDB
// checkpoints, and read when a task starts without local state.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "rill/config.h"
#include "rill/processor.h"

#include "state/snapshots.h"

namespace rill::state {

class StateManager;

class TaskSnapshots {
 public:
  // A task's snapshots go under "<root>/<task>/" in `store`; `staging`
  // holds checkpoints until they are uploaded.
  TaskSnapshots(std::unique_ptr<ObjectStore> store, std::string application_id, std::string root,
                std::chrono::milliseconds interval, std::size_t retained,
                std::filesystem::path staging);
  ~TaskSnapshots();
  TaskSnapshots(const TaskSnapshots&) = delete;
  TaskSnapshots& operator=(const TaskSnapshots&) = delete;

  // The snapshots `config` asks for (state.snapshot.*), or nullptr when it
  // asks for none. Throws std::invalid_argument naming a bad location.
  static std::unique_ptr<TaskSnapshots> from_config(const StreamsConfig& config,
                                                    const std::filesystem::path& state_directory);

  // Has every task snapshot at its next commit, whatever the interval; from
  // any thread.
  void request_all() { requested_.fetch_add(1, std::memory_order_relaxed); }

  // Right after a commit (its stores flushed, its changelog writes
  // acknowledged): snapshots the task when its last one is older than the
  // interval or request_all() asked for one, and queues the upload. Never throws: a failed snapshot
  // is logged, and the next commit tries again.
  void after_commit(const TaskId& task, StateManager& state);

  // Before a task opens its stores (from several threads at once, one per
  // task): when `task_directory` holds no
  // checkpoint, downloads the task's newest snapshot that verifies and
  // installs it there. Returns whether it did; logs the snapshots it skipped
  // and why. Never throws: without a snapshot the task restores in full.
  bool restore_if_empty(const TaskId& task, const std::filesystem::path& task_directory);

  // Takes no more snapshots, and uploads those taken (the last commit's
  // among them) for up to 30 s; drops what is left then. After it, nothing
  // touches the staging directory. Idempotent.
  void stop();

  // Since the start, from any thread: snapshots uploaded and failed, bytes
  // uploaded, when the last one was (ms since the epoch, 0 for none), tasks
  // restored from a snapshot, and tasks that found snapshots but could use
  // none.
  uint64_t uploaded() const { return uploaded_.load(std::memory_order_relaxed); }
  uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }
  uint64_t uploaded_bytes() const { return uploaded_bytes_.load(std::memory_order_relaxed); }
  int64_t last_upload_ms() const { return last_upload_ms_.load(std::memory_order_relaxed); }
  // How long snapshots took, from the checkpoints to the manifest uploaded:
  // the last one, and all uploaded ones together.
  int64_t last_duration_ms() const { return last_duration_ms_.load(std::memory_order_relaxed); }
  uint64_t total_duration_ms() const { return total_duration_ms_.load(std::memory_order_relaxed); }
  uint64_t restores() const { return restores_.load(std::memory_order_relaxed); }
  uint64_t fallbacks() const { return fallbacks_.load(std::memory_order_relaxed); }
  // Bytes of the snapshots being downloaded still to come (0: none).
  uint64_t download_bytes_left() const {
    return download_bytes_left_.load(std::memory_order_relaxed);
  }

 private:
  struct Upload {
    TaskId task;
    std::filesystem::path directory;
    std::string id;
    int64_t created_ms = 0;
    CheckpointOffsets offsets;
    int64_t checkpoint_ms = 0;  // how long taking the checkpoints took
  };
  std::string prefix_of(const TaskId& task) const;
  void run();

  std::unique_ptr<ObjectStore> store_;
  std::string application_id_;
  std::string root_;
  std::chrono::milliseconds interval_;
  std::size_t retained_;
  std::filesystem::path staging_;
  // Taken on the committing thread only.
  std::map<TaskId, std::chrono::steady_clock::time_point> last_taken_;
  // request_all() calls, and how many of them each task has answered.
  std::atomic<uint64_t> requested_{0};
  std::map<TaskId, uint64_t> requests_answered_;

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Upload> uploads_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point stop_deadline_;
  std::atomic<uint64_t> uploaded_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> uploaded_bytes_{0};
  std::atomic<int64_t> last_upload_ms_{0};
  std::atomic<int64_t> last_duration_ms_{0};
  std::atomic<uint64_t> total_duration_ms_{0};
  std::atomic<uint64_t> restores_{0};
  std::atomic<uint64_t> fallbacks_{0};
  std::atomic<uint64_t> download_bytes_left_{0};
  std::thread uploader_;
};

}  // namespace rill::state
