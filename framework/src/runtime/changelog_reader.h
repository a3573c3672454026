// Restores the stores of newly assigned tasks from their changelogs, on a
// thread of its own with a consumer of its own (no group), so the polling
// thread keeps fetching and the other tasks keep processing meanwhile. A task
// processes nothing until its stores are restored.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "rill/kafka_streams.h"

#include "kafka/handles.h"
#include "runtime/active_task.h"

namespace rill::runtime {

using RestoreProgress = KafkaStreams::RestoreProgress;

class ChangelogReader {
 public:
  using Listener = std::function<void(const RestoreProgress&)>;

  // `on_restored` runs on the reader's thread after each task is restored.
  ChangelogReader(kafka::KafkaPtr consumer, Listener listener, std::function<void()> on_restored);
  ~ChangelogReader();

  // Restores `task`'s changelogs, then clears its `restoring` flag.
  void submit(std::shared_ptr<ActiveTask> task);
  // Waits until `task` is no longer being restored (call before closing it).
  void wait_idle(const ActiveTask& task);
  uint64_t restored_records() const { return restored_records_.load(std::memory_order_relaxed); }

 private:
  void run();
  void restore(ActiveTask& task);

  kafka::KafkaPtr consumer_;
  Listener listener_;
  std::function<void()> on_restored_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<ActiveTask>> queue_;
  const ActiveTask* current_ = nullptr;
  bool stopping_ = false;
  std::atomic<uint64_t> restored_records_{0};
  std::thread thread_;
};

}  // namespace rill::runtime
