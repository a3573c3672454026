#include "state/changelog_reader.h"

#include <algorithm>
#include <chrono>

#include "kafka/group.h"
#include "kafka/records.h"
#include "log/log.h"

namespace rill::state {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kBatch = 5000;
// Records a turn leaves for the next one's write while more are fetched.
constexpr std::size_t kWriteRecords = 50'000;
// A restore of a whole changelog of at least this many records goes into
// a vector memtable (StateManager::begin_bulk_restore).
constexpr int64_t kBulkRestoreRecords = 20'000;
// A store's batch splits into ranges of at least this many records.
constexpr std::size_t kParallelWriteRecords = 1000;
// The reader's thread and its writers.
constexpr unsigned kMaxWriteThreads = 4;
constexpr int kPollMs = 100;
// A restore that cannot learn its changelogs' ends within kEndOffsetsTimeout
// fails its task, which the runtime rewinds and retries with backoff. A turn
// of the reader asks for them for kEndOffsetsTurn at most, kEndOffsetsAttempt
// per waiting task, and puts the tasks that got no answer behind the others:
// tasks whose changelog leaders answer start at once while a dead leader is
// still being replaced, and the turn (which closing a task waits for) stays
// short however many tasks wait.
constexpr std::chrono::seconds kEndOffsetsTimeout(10);
constexpr std::chrono::milliseconds kEndOffsetsAttempt(250);
constexpr std::chrono::seconds kEndOffsetsTurn(1);
// How long a restore may read nothing before its partition is assigned anew.
constexpr std::chrono::seconds kRestoreStall(30);

}  // namespace

ChangelogReader::ChangelogReader(kafka::KafkaPtr consumer, kafka::KafkaPtr ends, Listener listener,
                                 std::function<void()> on_restored)
    : consumer_(std::move(consumer)),
      ends_(std::move(ends)),
      listener_(std::move(listener)),
      on_restored_(std::move(on_restored)) {
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 1; i < std::min(cores, kMaxWriteThreads); ++i)
    writers_.emplace_back([this] { run_writer(); });
  thread_ = std::thread([this] { run(); });
}

ChangelogReader::~ChangelogReader() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
  {
    std::lock_guard lock(writes_.mutex);
    writes_.stopping = true;
  }
  writes_.started.notify_all();
  for (std::thread& writer : writers_) writer.join();
  waker_.stop();
  try {
    kafka::assign(consumer_.get(), {});
  } catch (const kafka::Error&) {
    // Destroying the consumer stops its fetches anyway.
  }
  known_topics_.clear();
  // The reader's consumer never joined its group nor committed, so there is
  // no group to leave; librdkafka's close could wait on a coordinator for
  // nothing (seen after the process was stopped past its session timeout).
  kafka::destroy_unclosed(std::move(consumer_));
  kafka::destroy_unclosed(std::move(ends_));
}

void ChangelogReader::submit(std::vector<std::shared_ptr<RestoringTask>> tasks) {
  if (tasks.empty()) return;
  {
    std::lock_guard lock(mutex_);
    for (auto& task : tasks) restore_requests_.push_back(std::move(task));
  }
  changed_.notify_all();
  // A reader waiting for records of the restores under way starts this one
  // now rather than after its poll: tasks created together restore together.
  kafka::MessageQueue::of_consumer(consumer_.get()).wake();
}

void ChangelogReader::add_standby(std::shared_ptr<StandbyTask> standby) {
  {
    std::lock_guard lock(mutex_);
    standby_requests_.push_back(std::move(standby));
  }
  changed_.notify_all();
  kafka::MessageQueue::of_consumer(consumer_.get()).wake();
}

// Asks the reader to let go of `owner` and waits one full turn of its loop.
// The reader's turn may be in a call to the broker (about kEndOffsetsTurn at
// most): letting go of the task before the turn ends would leave the reader
// writing to a closed store.
void ChangelogReader::wait_for_turn(std::unique_lock<std::mutex>& lock, uint64_t turn) {
  while (!changed_.wait_for(lock, std::chrono::seconds(30),
                            [&] { return stopping_ || turn_ > turn + 1; }))
    log::get().warn("the changelog reader is still busy with a task it is asked to let go of");
}

void ChangelogReader::wait_idle(const std::vector<const RestoringTask*>& tasks) {
  std::unique_lock lock(mutex_);
  for (const RestoringTask* task : tasks) {
    std::erase_if(restore_requests_, [&](const auto& queued) { return queued.get() == task; });
    removals_.insert(task);
  }
  const uint64_t turn = turn_;
  changed_.notify_all();
  wait_for_turn(lock, turn);
}

void ChangelogReader::remove_standby(const StandbyTask& standby) {
  std::unique_lock lock(mutex_);
  std::erase_if(standby_requests_, [&](const auto& queued) { return queued.get() == &standby; });
  removals_.insert(&standby);
  const uint64_t turn = turn_;
  changed_.notify_all();
  wait_for_turn(lock, turn);
}

void ChangelogReader::run() {
  std::vector<rd_kafka_message_t*> batch(kBatch);
  // A batch's messages stay alive until its records are written.
  std::vector<kafka::MessagePtr> held;
  held.reserve(kBatch);
  kafka::MessageQueue queue = kafka::MessageQueue::of_consumer(consumer_.get());
  while (true) {
    std::vector<std::shared_ptr<StandbyTask>> standbys;
    {
      std::unique_lock lock(mutex_);
      ++turn_;
      changed_.notify_all();
      if (readings_.empty() && waiting_.empty() && restore_requests_.empty() &&
          standby_requests_.empty() && removals_.empty())
        changed_.wait_for(lock, std::chrono::milliseconds(kPollMs));
      if (stopping_) return;
      for (auto& task : restore_requests_) waiting_.push_back({std::move(task), Clock::now()});
      restore_requests_.clear();
      standbys.swap(standby_requests_);
      std::erase_if(waiting_, [&](const WaitingRestore& waiting) {
        return removals_.contains(static_cast<const void*>(waiting.task.get()));
      });
      for (auto it = readings_.begin(); it != readings_.end();) {
        const void* owner = it->second.task ? static_cast<const void*>(it->second.task.get())
                                            : static_cast<const void*>(it->second.standby.get());
        if (removals_.contains(owner)) {
          it = readings_.erase(it);
          assignment_changed_ = true;
        } else {
          ++it;
        }
      }
      removals_.clear();
    }
    start_restores();
    for (auto& standby : standbys) start_standby(standby);
    if (assignment_changed_) assign();
    if (readings_.empty()) continue;

    const std::size_t count = queue.take(batch.data(), batch.size(), kPollMs);
    // Consecutive records mostly come from one partition: look it up once.
    rd_kafka_topic_t* last_topic = nullptr;
    int32_t last_partition = -1;
    Reading* last_reading = nullptr;
    for (std::size_t i = 0; i < count; ++i) {
      held.emplace_back(batch[i]);
      const rd_kafka_message_t& message = *held.back();
      if (message.rkt != last_topic || message.partition != last_partition) {
        auto it = readings_.find({kafka::topic_of(message), message.partition});
        last_topic = message.rkt;
        last_partition = message.partition;
        last_reading = it == readings_.end() ? nullptr : &it->second;
      }
      if (last_reading == nullptr) continue;
      Reading& reading = *last_reading;
      // The end of what the consumer may read: the high watermark, or under
      // exactly-once the last stable offset, which stops before a transaction
      // still open. Past the restore's end it ends the restore even when the
      // changelog's last records were compacted away or are markers.
      if (message.err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        reading.consumer_end = message.offset;
        if (reading.task && !reading.done && message.offset >= reading.end) {
          write_pending(reading);
          if (!reading.done) finish(reading);
        }
        continue;
      }
      if (message.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log::get().warn("reading changelog {}[{}]: {}", kafka::topic_of(message), message.partition,
                        kafka::error_of(message));
        continue;
      }
      if (!reading.done) apply(reading, message);
    }
    // Records wait for the write while more are fetched already, up to
    // kWriteRecords: a larger batch, sorted, goes into the memtable faster.
    const std::size_t fetched = queue.length();
    std::size_t pending = 0;
    for (const auto& [key, reading] : readings_) pending += reading.pending.size();
    if (fetched == 0 || pending >= kWriteRecords) {
      write_all_pending();
      held.clear();
    }
    if (hold_back_.observe(fetched, count) == kafka::FetchHoldBack::Change::kDrained)
      for (const auto& [key, reading] : readings_) waker_.wake(key.first, key.second);
    for (auto& [key, reading] : readings_) {
      if (!reading.pending.empty()) continue;
      if (reading.task && !reading.done && reading.next_offset >= reading.end) finish(reading);
      if (reading.standby) reading.state->restored(reading.store, reading.next_offset);
    }
    refetch_stalled();
    // Restores that finished leave the assignment.
    for (auto it = readings_.begin(); it != readings_.end();) {
      if (it->second.done) {
        it = readings_.erase(it);
        assignment_changed_ = true;
      } else {
        ++it;
      }
    }
  }
}

// A restore reads up to the changelog's high watermark when it starts, even
// under exactly-once, where the consumer's own end is the last stable offset.
// A transaction of the task's previous owner may still be open there: the
// group moved the task on while that instance was cut off, and it had sent
// the transaction's input offsets before the move (after it, the group
// refuses them), so the transaction may yet commit. The task then resumes
// from those offsets, and its store must hold that transaction's writes,
// which all lie below the high watermark (an instance sends offsets only
// once its writes are acknowledged). Stopping at the stable offset lost them.
// The restore ends when the transaction does: a commit hands on its records,
// an abort lets the stable offset pass them (see the end-of-partition rule in
// run()).
void ChangelogReader::start_restores() {
  const auto turn_end = Clock::now() + kEndOffsetsTurn;
  std::vector<WaitingRestore> unanswered;
  for (auto it = waiting_.begin(); it != waiting_.end() && Clock::now() < turn_end;) {
    const std::shared_ptr<RestoringTask>& task = it->task;
    std::vector<Key> changelogs;
    for (const auto& changelog : task->state().changelogs())
      changelogs.emplace_back(changelog.topic, changelog.partition);
    std::vector<std::pair<int64_t, int64_t>> offsets;
    std::string failure;
    try {
      // Leaders of changelogs created moments ago may not be known yet.
      offsets = kafka::watermarks(ends_.get(), changelogs, kEndOffsetsAttempt);
    } catch (const kafka::Error& e) {
      if (kafka::is_retriable(e.code()) && Clock::now() - it->since < kEndOffsetsTimeout) {
        unanswered.push_back(std::move(*it));  // asked again after the others
        it = waiting_.erase(it);
        continue;
      }
      failure = e.what();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (failure.empty()) {
      start_restore(task, offsets);
    } else {
      // The broker, not the task: it goes back to the last commit and retries.
      task->report_failure(
          "task " + task->id().to_string() + ": restoring state failed: " + failure, true);
      task->report_restored();
      on_restored_();
    }
    it = waiting_.erase(it);
  }
  for (auto& waiting : unanswered) waiting_.push_back(std::move(waiting));
}

void ChangelogReader::start_restore(const std::shared_ptr<RestoringTask>& task,
                                    std::span<const std::pair<int64_t, int64_t>> offsets) {
  std::vector<Key> started;
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    const StateManager::Changelog& changelog = task->state().changelogs()[i];
    const auto [low, high] = offsets[i];
    Reading reading;
    reading.state = &task->state();
    reading.store = changelog.store;
    reading.task = task;
    reading.next_offset = std::max(changelog.restore_from, low);
    reading.end = high;
    reading.progress = {changelog.store,
                        changelog.topic,
                        changelog.partition,
                        0,
                        static_cast<uint64_t>(std::max<int64_t>(0, high - reading.next_offset)),
                        false};
    report(reading);
    if (reading.next_offset >= high) {
      task->state().restored(changelog.store, reading.next_offset);
      end_restore(task->state(), changelog.store);
      continue;
    }
    // A whole changelog into an empty store, large enough to pay for opening
    // the store twice.
    bool bulk = false;
    if (changelog.restore_from == 0 && high - reading.next_offset >= kBulkRestoreRecords) {
      try {
        bulk = task->state().begin_bulk_restore(changelog.store);
      } catch (const std::exception& e) {
        log::get().warn("state store '{}': {}", changelog.store, e.what());
      }
    }
    log::get().info("task {}: restoring store {} from {}[{}] offsets {} to {}{}",
                    task->id().to_string(), changelog.store, changelog.topic, changelog.partition,
                    reading.next_offset, high, bulk ? " in bulk" : "");
    reading.serial = ++next_serial_;
    readings_[{changelog.topic, changelog.partition}] = std::move(reading);
    assignment_changed_ = true;
    started.push_back({changelog.topic, changelog.partition});
  }
  if (started.empty()) complete(*task);
}

void ChangelogReader::start_standby(const std::shared_ptr<StandbyTask>& standby) {
  for (const auto& changelog : standby->state.changelogs()) {
    // A standby follows for as long as it lives: its stores compact meanwhile.
    end_restore(standby->state, changelog.store);
    Reading reading;
    reading.state = &standby->state;
    reading.store = changelog.store;
    reading.standby = standby;
    reading.next_offset = changelog.restore_from;
    reading.serial = ++next_serial_;
    readings_[{changelog.topic, changelog.partition}] = std::move(reading);
    assignment_changed_ = true;
  }
  log::get().info("standby task {}: following its changelogs", standby->id.to_string());
}

void ChangelogReader::apply(Reading& reading, const rd_kafka_message_t& message) {
  // Fetched for an earlier reading of the partition, below where this one is.
  if (message.offset < reading.next_offset) return;
  std::optional<std::string_view> value;
  if (message.payload != nullptr) value = kafka::value_of(message);
  reading.pending.push_back({kafka::key_of(message), value});
  reading.next_offset = message.offset + 1;
}

void ChangelogReader::write_pending(Reading& reading) {
  if (reading.pending.empty()) return;
  sort_pending(reading);
  WriteJob job{&reading, 0, reading.pending.size(), 0, {}};
  write(job);
  account_written(reading, {&job, 1});
}

// In key order, RocksDB's memtable inserts each record next to the one
// before instead of searching its skip list from the top, and a batch splits
// into key ranges that threads write at once. Stable: a key's last write in
// the batch stays its last.
void ChangelogReader::sort_pending(Reading& reading) {
  std::stable_sort(reading.pending.begin(), reading.pending.end(),
                   [](const BytesWrite& a, const BytesWrite& b) { return a.key < b.key; });
}

// Runs on the reader's thread or on a writer: touches its records' store only.
void ChangelogReader::write(WriteJob& job) {
  Reading& reading = *job.reading;
  const std::span<const BytesWrite> records(reading.pending.data() + job.begin,
                                            job.end - job.begin);
  try {
    if (reading.standby) {
      std::lock_guard lock(reading.standby->store_mutex);
      reading.state->restore(reading.store, records);
    } else {
      reading.state->restore(reading.store, records);
    }
    job.written = records.size();
  } catch (const std::exception& e) {
    job.failure = e.what();
  }
}

void ChangelogReader::account_written(Reading& reading, std::span<WriteJob> jobs) {
  reading.pending.clear();
  uint64_t written = 0;
  std::string failure;
  for (WriteJob& job : jobs) {
    written += job.written;
    if (failure.empty()) failure = std::move(job.failure);
  }
  if (!failure.empty()) {
    if (reading.task) {
      reading.task->report_failure(
          "task " + reading.task->id().to_string() + ": restoring state failed: " + failure, false);
      finish(reading);
    } else {
      log::get().error("standby task {}: {}", reading.standby->id.to_string(), failure);
    }
    return;
  }
  if (reading.task) {
    reading.progress.restored += written;
    restored_records_.fetch_add(written, std::memory_order_relaxed);
  } else {
    standby_records_.fetch_add(written, std::memory_order_relaxed);
  }
}

// The stores' writes are most of a restore's time: a turn's writes go side
// by side, on the reader's thread and its writers, when they are large
// enough to pay for it. Stores are RocksDB instances of their own, and a
// RocksDB store's batch splits into key ranges written at once.
void ChangelogReader::write_all_pending() {
  std::vector<WriteJob>& jobs = writes_.jobs;
  jobs.clear();
  const std::size_t threads = writers_.size() + 1;
  for (auto& [key, reading] : readings_) {
    if (reading.pending.empty()) continue;
    sort_pending(reading);
    const std::size_t size = reading.pending.size();
    std::size_t parts = 1;
    if (threads > 1 && !reading.standby && size >= 2 * kParallelWriteRecords &&
        reading.state->restores_concurrently(reading.store))
      parts = std::min(threads, size / kParallelWriteRecords);
    std::size_t begin = 0;
    for (std::size_t part = 1; part <= parts; ++part) {
      std::size_t end = size * part / parts;
      // A key's writes stay in one range, in order.
      while (end < size && end > begin && reading.pending[end].key == reading.pending[end - 1].key)
        ++end;
      if (end > begin) jobs.push_back({&reading, begin, end, 0, {}});
      begin = end;
    }
  }
  if (jobs.size() > 1 && !writers_.empty()) {
    {
      std::lock_guard lock(writes_.mutex);
      writes_.next.store(0, std::memory_order_relaxed);
      writes_.left = jobs.size();
      ++writes_.round;
    }
    writes_.started.notify_all();
    take_writes();
    std::unique_lock lock(writes_.mutex);
    writes_.finished.wait(lock, [&] { return writes_.left == 0 && writes_.busy == 0; });
  } else {
    for (WriteJob& job : jobs) write(job);
  }
  // A reading's jobs are consecutive.
  for (std::size_t first = 0; first < jobs.size();) {
    std::size_t last = first + 1;
    while (last < jobs.size() && jobs[last].reading == jobs[first].reading) ++last;
    account_written(*jobs[first].reading, std::span(jobs).subspan(first, last - first));
    first = last;
  }
}

// Writes the round's jobs not yet taken by another thread.
void ChangelogReader::take_writes() {
  std::vector<WriteJob>& jobs = writes_.jobs;
  for (std::size_t i = writes_.next.fetch_add(1); i < jobs.size(); i = writes_.next.fetch_add(1)) {
    write(jobs[i]);
    std::lock_guard lock(writes_.mutex);
    if (--writes_.left == 0) writes_.finished.notify_all();
  }
}

void ChangelogReader::run_writer() {
  uint64_t round = 0;
  std::unique_lock lock(writes_.mutex);
  while (true) {
    // A round whose jobs are all done is over: the reader may be changing
    // them for the next.
    writes_.started.wait(
        lock, [&] { return writes_.stopping || (writes_.round != round && writes_.left > 0); });
    if (writes_.stopping) return;
    round = writes_.round;
    ++writes_.busy;
    lock.unlock();
    take_writes();
    lock.lock();
    if (--writes_.busy == 0) writes_.finished.notify_all();
  }
}

void ChangelogReader::end_restore(StateManager& state, const std::string& store) {
  try {
    state.end_restore(store);
  } catch (const std::exception& e) {
    // The store's next flush tries again.
    log::get().warn("state store '{}': {}", store, e.what());
  }
}

void ChangelogReader::finish(Reading& reading) {
  reading.done = true;
  reading.state->restored(reading.store, reading.next_offset);
  end_restore(*reading.state, reading.store);
  reading.progress.done = true;
  report(reading);
  log::get().info("task {}: restored {} records of store {}", reading.task->id().to_string(),
                  reading.progress.restored, reading.store);
  // The task is restored when none of its readings is left.
  for (const auto& [key, other] : readings_)
    if (other.task == reading.task && !other.done) return;
  complete(*reading.task);
}

void ChangelogReader::complete(RestoringTask& task) {
  log::get().info("task {}: restore complete", task.id().to_string());
  task.report_restored();
  on_restored_();
}

// Incremental: partitions whose reading goes on keep their fetch position
// and the records fetched ahead. A partition whose reading was replaced (its
// task closed and came back) is assigned anew from the new reading's offset.
void ChangelogReader::assign() {
  assignment_changed_ = false;
  std::vector<kafka::TopicPartition> added, removed;
  for (const auto& [key, serial] : assigned_) {
    auto reading = readings_.find(key);
    if (reading == readings_.end() || reading->second.serial != serial)
      removed.push_back({key.first, key.second});
  }
  for (const auto& [key, reading] : readings_) {
    auto assigned = assigned_.find(key);
    if (assigned == assigned_.end() || assigned->second != reading.serial)
      added.push_back({key.first, key.second, reading.next_offset});
  }
  // A partition of a topic the consumer has no metadata for waits for its
  // leader until librdkafka's next scan of unknown topics, up to a second:
  // ask for the topic's metadata first (bounded like a turn's other calls),
  // and keep a handle on the topic, which keeps its metadata current for the
  // next time one of its partitions is assigned.
  for (const auto& tp : added) {
    if (known_topics_.contains(tp.topic)) continue;
    try {
      kafka::TopicPtr handle = kafka::open_topic(consumer_.get(), tp.topic);
      kafka::partition_count(consumer_.get(), tp.topic, kEndOffsetsAttempt);
      known_topics_.emplace(tp.topic, std::move(handle));
    } catch (const std::exception&) {
      // The scan finds the leader later; asked again at the next assignment.
    }
  }
  // The reader's consumer belongs to no group it joins: assignments are its own.
  try {
    if (!removed.empty()) kafka::incremental_unassign(consumer_.get(), removed);
    for (const auto& tp : removed) assigned_.erase({tp.topic, tp.partition});
    if (!added.empty()) kafka::incremental_assign(consumer_.get(), added);
    for (const auto& tp : added)
      assigned_[{tp.topic, tp.partition}] = readings_.at({tp.topic, tp.partition}).serial;
  } catch (const kafka::Error& e) {
    log::get().error("assigning changelog partitions: {}", e.what());
  }
}

// Assigned anew, a partition's fetch starts over from its leader as the
// cluster now has it; records fetched for it before are below the reading's
// next offset, which apply() skips.
void ChangelogReader::refetch_stalled() {
  const auto now = Clock::now();
  std::vector<kafka::TopicPartition> stalled;
  for (auto& [key, reading] : readings_) {
    if (!reading.task || reading.done) continue;
    if (!reading.watch.stalled(reading.next_offset, reading.consumer_end == reading.next_offset,
                               now, kRestoreStall))
      continue;
    log::get().warn(
        "task {}: restoring store {} from {}[{}] read nothing for {} s, at offset {} of {}; "
        "fetching the partition anew",
        reading.task->id().to_string(), reading.store, key.first, key.second, kRestoreStall.count(),
        reading.next_offset, reading.end);
    stalled.push_back({key.first, key.second, reading.next_offset});
  }
  if (stalled.empty()) return;
  try {
    kafka::incremental_unassign(consumer_.get(), stalled);
    kafka::incremental_assign(consumer_.get(), stalled);
  } catch (const kafka::Error& e) {
    log::get().error("assigning stalled changelog partitions anew: {}", e.what());
  }
}

void ChangelogReader::report(Reading& reading) {
  if (listener_) listener_(reading.progress);
}

}  // namespace rill::state
