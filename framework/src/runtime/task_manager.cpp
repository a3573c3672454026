#include "runtime/task_manager.h"

#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "rill/state.h"

#include "kafka/group.h"
#include "kafka/producer.h"
#include "kafka/records.h"
#include "log/log.h"
#include "metrics/registry.h"
#include "runtime/error_handling.h"
#include "runtime/global_state_manager.h"
#include "runtime/resume.h"
#include "state/changelog_reader.h"
#include "state/task_snapshots.h"

namespace rill::runtime {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kMinRecoveryBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxRecoveryBackoff = std::chrono::milliseconds(5'000);

bool contains(const std::vector<kafka::TopicPartition>& partitions, const std::string& topic,
              int32_t partition) {
  return std::any_of(partitions.begin(), partitions.end(), [&](const kafka::TopicPartition& tp) {
    return tp.topic == topic && tp.partition == partition;
  });
}

int64_t ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count();
}
int64_t since_ms(Clock::time_point start) {
  return ms_between(start, Clock::now());
}

}  // namespace

TaskManager::TaskManager(Settings settings, Clients clients, Shared shared)
    : settings_(std::move(settings)), clients_(std::move(clients)), shared_(std::move(shared)) {
  for (const auto& sub : shared_.topology.subtopologies()) {
    for (const auto& topic : sub.source_topics) {
      subtopology_of_topic_[topic.full_name(settings_.application_id)] = sub.id;
      if (topic.internal) repartition_topics_.insert(topic.full_name(settings_.application_id));
    }
  }
  if (clients_.consumer != nullptr)
    fetch_waker_ = std::make_unique<kafka::FetchWaker>(clients_.consumer);
  if (!repartition_topics_.empty() && clients_.consumer != nullptr)
    purge_ = std::make_unique<kafka::RecordDeletion>(clients_.consumer);
  // As in Kafka Streams, the first purge waits one interval after the start.
  next_purge_ = Clock::now() + settings_.repartition_purge_interval;
  if (settings_.exactly_once) create_transactions();
}

TaskManager::~TaskManager() = default;

void TaskManager::start() {
  if (!settings_.exactly_once) return;
  transactions_->init(settings_.metadata_timeout);
  transactions_->begin();
}

void TaskManager::create_transactions() {
  transactions_ = std::make_unique<StreamsProducer>(clients_.transactional(producer()));
}

// ---- the gate: every task stopped ------------------------------------------

void TaskManager::close_gate() {
  shared_.gate.closed.store(true);
  while (shared_.gate.running.load() != 0)
    std::this_thread::sleep_for(std::chrono::microseconds(50));
}

void TaskManager::open_gate() {
  publish_tasks();
  shared_.gate.closed.store(false);
  for (auto& [id, task] : tasks_)
    if (task->has_waiting()) shared_.schedule(task);
}

void TaskManager::publish_tasks() {
  std::vector<std::shared_ptr<ActiveTask>> tasks;
  tasks.reserve(tasks_.size());
  for (const auto& [id, task] : tasks_) tasks.push_back(task);
  std::lock_guard lock(published_mutex_);
  published_.swap(tasks);
}

std::vector<std::shared_ptr<ActiveTask>> TaskManager::published_tasks() const {
  std::lock_guard lock(published_mutex_);
  return published_;
}

void TaskManager::schedule_all() {
  for (auto& [id, task] : tasks_) shared_.schedule(task);
}

bool TaskManager::commit_requested() {
  bool requested = false;
  for (auto& [id, task] : tasks_)
    requested = task->stream_task().take_commit_request() || requested;
  return requested;
}

void TaskManager::wake_fetchers() {
  for (auto& [key, entry] : inputs_)
    if (entry.first->fetch_wanted.exchange(false, std::memory_order_acquire) && fetch_waker_)
      fetch_waker_->wake(key.first, key.second);
}

void TaskManager::stop_waking_fetchers() {
  if (fetch_waker_) fetch_waker_->stop();
}

std::string TaskManager::task_ids() const {
  std::string ids;
  for (const auto& [id, task] : tasks_) ids += (ids.empty() ? "" : " ") + id.to_string();
  return ids;
}

// ---- assignment ------------------------------------------------------------

void TaskManager::assign(const std::vector<kafka::TopicPartition>& partitions) {
  // A task may gain a partition: no worker may be reading its inputs.
  close_gate();
  if (recovery_.pending) {
    for (const auto& tp : partitions)
      if (!contains(recovery_.partitions, tp.topic, tp.partition))
        recovery_.partitions.push_back({tp.topic, tp.partition});
  } else {
    create_tasks(partitions);
  }
  open_gate();
}

void TaskManager::revoke(const std::vector<kafka::TopicPartition>& partitions, bool lost) {
  close_gate();
  // A task writes its checkpoint only when its stores hold nothing the
  // commit did not cover.
  const bool committed = !lost && commit_offsets();
  close_partitions(partitions, committed);
  if (settings_.exactly_once) {
    // Unless it committed, the open transaction holds outputs and changelog
    // writes of the tasks just closed, whose offsets no later commit
    // carries: committed with the other tasks' share, they would be counted
    // again by the partitions' next owner. It must not commit, and the other
    // tasks go back with it. A failed commit that already rewound left it to
    // recovery.
    if (!committed && (lost || !recovery_.pending))
      rewind_all(lost ? "partitions lost" : "partitions revoked without a commit", false, false);
  } else if (lost || (!committed && rd_kafka_outq_len(producer()) > 0)) {
    // Under at-least-once nothing fences what the producer still holds of
    // the tasks just closed: their changelog writes would land whenever the
    // cluster takes them, after the writes of the partitions' next owner,
    // which restored the changelogs without them, and a later restore would
    // take those stale counts for the latest. They go with this producer, and
    // the other tasks back to the last commit with a new one.
    rewind_all(lost ? "partitions lost" : "partitions revoked without a commit", true, false);
  }
  open_gate();
}

std::vector<kafka::TopicPartition> TaskManager::start_positions(
    std::vector<kafka::TopicPartition> partitions) {
  std::vector<kafka::TopicPartition> returning;
  std::vector<std::size_t> returning_at;
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    kafka::TopicPartition& tp = partitions[i];
    if (auto start = archive_live_starts_.find({tp.topic, tp.partition});
        start != archive_live_starts_.end()) {
      tp.offset = start->second;
      archive_live_starts_.erase(start);
    } else if (own_commits_.knows(tp.topic, tp.partition)) {
      returning.push_back({tp.topic, tp.partition});
      returning_at.push_back(i);
    }
  }
  if (returning.empty()) return partitions;
  try {
    const std::vector<kafka::TopicPartition> committed =
        committed_offsets(*clients_.group, std::move(returning), settings_.call_timeout,
                          own_commits_, settings_.application_id);
    for (std::size_t i = 0; i < committed.size(); ++i) {
      if (committed[i].error != RD_KAFKA_RESP_ERR_NO_ERROR) continue;  // librdkafka looks it up
      if (committed[i].offset >= 0) partitions[returning_at[i]].offset = committed[i].offset;
    }
  } catch (const kafka::Error& e) {
    log::get().warn("{}: cannot check the committed offsets of partitions that come back: {}",
                    settings_.application_id, e.what());
  }
  return partitions;
}

std::map<std::pair<std::string, int32_t>, std::unique_ptr<archive::ArchiveCursor>>
TaskManager::archive_reads(const std::vector<kafka::TopicPartition>& partitions) {
  std::map<std::pair<std::string, int32_t>, std::unique_ptr<archive::ArchiveCursor>> cursors;
  archive_live_starts_.clear();
  std::vector<kafka::TopicPartition> archived;
  if (settings_.archive != nullptr)
    for (const auto& tp : partitions)
      if (settings_.archived_topics.contains(tp.topic))
        archived.push_back({tp.topic, tp.partition});
  if (archived.empty()) return cursors;
  for (const kafka::TopicPartition& next :
       committed_offsets(*clients_.group, archived, settings_.call_timeout, own_commits_,
                         settings_.application_id)) {
    if (next.error != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw std::runtime_error("cannot read the committed offset of " + next.to_string() + ": " +
                               kafka::describe(next.error));
    // Without a commit, a partition starts at its first record (as
    // resume_positions does), which the archive may hold alone.
    const int64_t from = std::max<int64_t>(next.offset, 0);
    const int64_t topic_start =
        kafka::watermarks(clients_.consumer, {{next.topic, next.partition}}, settings_.call_timeout)
            .front()
            .first;
    if (from >= topic_start) continue;  // the topic holds every record from there
    std::optional<archive::PartitionIndex> index =
        settings_.archive->read_index(next.topic, next.partition);
    if (!index || index->end_offset() < topic_start)
      throw std::runtime_error(fmt::format(
          "{}: records [{}, {}) are no longer in the topic, and its archive ({}) {}",
          next.to_string(), from, topic_start,
          settings_.archive->index_address(next.topic, next.partition),
          index ? "ends at offset " + std::to_string(index->end_offset()) : "does not exist"));
    if (from < index->start_offset())
      log::get().warn(
          "{}: {}: records [{}, {}) are neither in the topic nor in its archive; "
          "reading on from the archive's first record",
          settings_.application_id, next.to_string(), from, index->start_offset());
    archive_live_starts_[{next.topic, next.partition}] = index->end_offset();
    log::get().info("{}: {}: reading offsets [{}, {}) from the archive, then the topic",
                    settings_.application_id, next.to_string(),
                    std::max(from, index->start_offset()), index->end_offset());
    cursors[{next.topic, next.partition}] =
        std::make_unique<archive::ArchiveCursor>(settings_.archive, std::move(*index), from);
  }
  return cursors;
}

void TaskManager::prepare_new_tasks(const std::vector<kafka::TopicPartition>& partitions) {
  std::vector<TaskId> fresh;
  for (const auto& tp : partitions) {
    auto sub = subtopology_of_topic_.find(tp.topic);
    if (sub == subtopology_of_topic_.end()) continue;
    const TaskId id{sub->second, tp.partition};
    if (!tasks_.contains(id) && std::find(fresh.begin(), fresh.end(), id) == fresh.end())
      fresh.push_back(id);
  }
  for (const TaskId& id : fresh)
    if (shared_.before_create) shared_.before_create(id);
  if (shared_.snapshots == nullptr) return;
  // The tasks' snapshots download side by side: restoring tasks moved
  // together takes as long as the largest, not their sum.
  std::vector<std::thread> downloads;
  for (const TaskId& id : fresh)
    downloads.emplace_back([this, id] {
      shared_.snapshots->restore_if_empty(id, settings_.state_directory / id.to_string());
    });
  for (std::thread& download : downloads) download.join();
}

void TaskManager::create_tasks(const std::vector<kafka::TopicPartition>& partitions) {
  prepare_new_tasks(partitions);
  auto archive_cursors = archive_reads(partitions);
  std::vector<std::shared_ptr<state::RestoringTask>> restores;
  // Submitted together, the restores start together, also when a later task
  // fails to open.
  try {
    for (const auto& tp : partitions) {
      auto sub = subtopology_of_topic_.find(tp.topic);
      if (sub == subtopology_of_topic_.end()) continue;
      TaskId id{sub->second, tp.partition};
      std::shared_ptr<ActiveTask> task;
      if (auto found = tasks_.find(id); found != tasks_.end()) task = found->second;
      if (!task) {
        // Into tasks_ only once open: a task that failed to open is no one's.
        task = std::make_shared<ActiveTask>(
            shared_.topology, id, settings_.application_id, producer(), shared_.deliveries,
            shared_.errors, shared_.gate, settings_.max_batch, settings_.max_task_idle_ms,
            settings_.metadata_timeout, settings_.state_directory / id.to_string(),
            shared_.rocksdb);
        if (shared_.global_stores != nullptr)
          task->stream_task().use_global_stores(shared_.global_stores);
        if (settings_.metrics_enabled) {
          const auto& subtopology =
              shared_.topology.subtopologies().at(static_cast<std::size_t>(id.subtopology));
          auto task_metrics = shared_.metrics.task(id, subtopology.nodes, subtopology.stores);
          task_metrics->assigned.store(true, std::memory_order_relaxed);
          task->record_into(std::move(task_metrics), true, shared_.metrics.record_store_latency());
        }
        open_task(*task);
        tasks_[id] = task;
        log::get().info("{}: created task {}", settings_.application_id, id.to_string());
        if (task->state().changelogs().empty()) {
          task->transition_to(TaskState::kRunning);
        } else {
          task->transition_to(TaskState::kRestoring);
          task->submitted_for_restore();
          restores.push_back(task);
        }
        shared_.counters.active_tasks.store(tasks_.size(), std::memory_order_relaxed);
      }
      auto input = std::make_unique<InputPartition>(
          clients_.consumer, tp.topic, tp.partition, task->stream_task().source_for(tp.topic),
          settings_.max_batch, settings_.buffer_capacity, shared_.counters.partition_pauses,
          [this, weak_task = std::weak_ptr<ActiveTask>(task)] {
            if (auto arrived_for = weak_task.lock()) shared_.schedule(arrived_for);
          });
      if (auto end = settings_.input_end_offsets.find({tp.topic, tp.partition});
          end != settings_.input_end_offsets.end())
        input->end_offset = end->second;
      if (auto cursor = archive_cursors.find({tp.topic, tp.partition});
          cursor != archive_cursors.end()) {
        input->archived_waiting.store(cursor->second->remaining(), std::memory_order_relaxed);
        input->archive = std::move(cursor->second);
      }
      inputs_[{tp.topic, tp.partition}] = {input.get(), task};
      task->inputs().push_back(std::move(input));
    }
  } catch (...) {
    shared_.changelog_reader->submit(std::move(restores));
    throw;
  }
  shared_.changelog_reader->submit(std::move(restores));
}

// A task directory stays locked until its previous owner on this machine
// (another instance sharing state.dir) has closed the task: wait a while.
void TaskManager::open_task(ActiveTask& task) {
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (true) {
    try {
      task.open(shared_.cache_budget);
      return;
    } catch (const StateStoreError& e) {
      if (Clock::now() >= deadline) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
}

void TaskManager::close_partitions(const std::vector<kafka::TopicPartition>& partitions,
                                   bool clean) {
  std::vector<std::shared_ptr<ActiveTask>> emptied;
  // Where each partition's next owner starts, for the log: with the offset
  // its first record has there (see ActiveTask::run), a hand-over that
  // skips or repeats records shows.
  std::string positions;
  for (const auto& tp : partitions) {
    std::erase_if(recovery_.partitions, [&](const kafka::TopicPartition& waiting) {
      return waiting.topic == tp.topic && waiting.partition == tp.partition;
    });
    auto it = inputs_.find({tp.topic, tp.partition});
    if (it == inputs_.end()) continue;
    const InputPartition& closing = *it->second.first;
    positions += fmt::format(
        " {}[{}] committed at {}, processed to {};", tp.topic, tp.partition,
        closing.committed_offset < 0 ? "none" : std::to_string(closing.committed_offset),
        closing.next_offset < 0 ? "none" : std::to_string(closing.next_offset));
    auto task = it->second.second;
    inputs_.erase(it);
    std::erase_if(task->inputs(), [&](const std::unique_ptr<InputPartition>& input) {
      return input->topic == tp.topic && input->partition == tp.partition;
    });
    if (task->inputs().empty()) emptied.push_back(std::move(task));
  }
  if (!positions.empty())
    log::get().info("{}: closing partitions{}{}", settings_.application_id,
                    clean ? " after a commit:" : " without a commit:", positions);
  close_tasks(emptied, clean);
}

void TaskManager::close_tasks(const std::vector<std::shared_ptr<ActiveTask>>& closing, bool clean) {
  std::vector<bool> was_running;
  std::vector<const state::RestoringTask*> restoring;
  for (const auto& task : closing) {
    // A run posted before does nothing from now on.
    was_running.push_back(task->task_state() == TaskState::kRunning);
    task->transition_to(TaskState::kClosed);
    // First: a partition's arrival callback holds the task while it runs, and
    // must never be the last to let go of it.
    for (const auto& input : task->inputs()) inputs_.erase({input->topic, input->partition});
    task->inputs().clear();
    // Only a task still restoring is in the reader's hands.
    if (task->in_restore()) restoring.push_back(task.get());
  }
  // One turn of the reader lets go of them all: a turn may wait on a broker
  // for up to a second, and a revocation after a broker fault closes many
  // restoring tasks at once.
  if (!restoring.empty()) shared_.changelog_reader->wait_idle(restoring);
  for (std::size_t i = 0; i < closing.size(); ++i) {
    const auto& task = closing[i];
    try {
      task->close(clean && was_running[i] && !task->failure_reported());
    } catch (const std::exception& e) {
      log::get().warn("{}: {}", settings_.application_id, e.what());
    }
    log::get().info("{}: closed task {}{}", settings_.application_id, task->id().to_string(),
                    clean ? "" : " without a checkpoint: its stores restore in full");
    if (task->metrics() != nullptr) {
      task->metrics()->assigned.store(false, std::memory_order_relaxed);
      task->metrics()->restoring.store(false, std::memory_order_relaxed);
    }
    tasks_.erase(task->id());
  }
  publish_tasks();
  shared_.counters.active_tasks.store(tasks_.size(), std::memory_order_relaxed);
}

void TaskManager::close_all(bool try_commit) {
  close_gate();
  // Tasks the revocation left (failed ones, or all when the consumer could
  // not leave the group) keep a checkpoint only under a commit.
  const bool committed = try_commit && !tasks_.empty() && commit_offsets();
  std::vector<std::shared_ptr<ActiveTask>> closing;
  for (auto& [id, task] : tasks_) closing.push_back(task);
  close_tasks(closing, committed);
}

// ---- commit ----------------------------------------------------------------

bool TaskManager::commit() {
  close_gate();
  const bool committed = commit_offsets();
  open_gate();
  return committed;
}

bool TaskManager::commit_offsets() {
  if (recovery_.pending) return false;
  const auto commit_start = Clock::now();
  // Every task is stopped: what they reported so far is all there is.
  take_reports();
  // Record caches hand on what they hold first: the changelog writes and
  // results that causes must be in this commit.
  for (auto& [id, task] : tasks_) {
    if (task->task_state() != TaskState::kRunning) continue;
    try {
      // Exactly-once writes no checkpoint while running (below).
      if (settings_.exactly_once)
        task->state().hand_on_cached();
      else
        task->state().flush();
    } catch (const TaskCorruptedError& e) {
      task->report_failure("task " + id.to_string() + ": flushing state: " + e.what(), true);
    } catch (const std::exception& e) {
      task->report_failure("task " + id.to_string() + ": flushing state: " + e.what(), false);
    }
  }
  take_reports();
  // A producer in a fatal state (fenced, or its idempotence sequence broken)
  // never delivers what it holds: waiting for the flush would only stall
  // until the records time out.
  if (std::optional<std::string> fatal = kafka::fatal_error(producer())) {
    rewind_all("the producer failed: " + *fatal, true);
    return false;
  }
  const auto flush_start = Clock::now();
  const rd_kafka_resp_err_t flushed = flush_while_assigned(settings_.delivery_timeout);
  const auto flush_end = Clock::now();
  if (flushed == RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST) {
    note_stall("the group took the partitions away while outputs were in flight");
    return false;
  }
  if (flushed != RD_KAFKA_RESP_ERR_NO_ERROR) {
    note_stall("outputs not acknowledged within " +
               std::to_string(settings_.delivery_timeout.count()) +
               " ms: " + kafka::describe(flushed));
    return false;
  }
  if (std::string refused = shared_.deliveries.fatal_error(); !refused.empty()) {
    shared_.fail_instance(refused);
    return false;
  }
  if (std::string refused = shared_.deliveries.take_rewind_reason(); !refused.empty()) {
    rewind_all(refused, false);
    return false;
  }
  for (auto& [id, task] : tasks_) {
    if (task->task_state() == TaskState::kFailed && task->failed_by_cluster()) {
      rewind_all(task->failure(), false);
      return false;
    }
  }
  std::vector<InputPartition*> committed;
  const std::vector<kafka::TopicPartition> offsets = collect_offsets(committed);
  if (settings_.exactly_once) {
    // A failed task's outputs are in the open transaction: it must not
    // commit. The handler decides about the failed task at the next turn.
    for (auto& [id, task] : tasks_) {
      if (task->task_state() != TaskState::kFailed) continue;
      rewind_all(task->failure(), false, /*including_failed=*/false);
      return false;
    }
    if (!commit_transaction(offsets, committed)) return false;
    // No checkpoint while running: until the next commit the stores take
    // writes that may yet be aborted, so after a crash they are restored in
    // full. A clean close writes it.
  } else {
    if (!offsets.empty()) {
      try {
        clients_.group->commit(offsets);
      } catch (const kafka::Error& e) {
        // The records will be processed again (at-least-once).
        note_stall(e.what());
        return false;
      }
      mark_committed(committed);
    }
    // Every changelog write so far is acknowledged (the flush above): record
    // how far the changelogs go, so a restart restores only what follows.
    for (auto& [id, task] : tasks_) {
      if (task->task_state() != TaskState::kRunning) continue;
      try {
        task->state().checkpoint();
      } catch (const std::exception& e) {
        log::get().warn("{}: task {}: {}", settings_.application_id, id.to_string(), e.what());
      }
    }
  }
  if (shared_.snapshots != nullptr)
    for (auto& [id, task] : tasks_)
      if (task->task_state() == TaskState::kRunning)
        shared_.snapshots->after_commit(id, task->state());
  ++shared_.counters.commits;
  purge_repartition_topics();
  if (stalled_since_) {
    log::get().info("{}: committing again after {} ms of faults", settings_.application_id,
                    since_ms(*stalled_since_));
    stalled_since_.reset();
  }
  recovery_.resumed_since_commit = false;
  shared_.metrics.commit_latency.observe_ns(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - commit_start).count());
  log::get().debug(
      "{}: committed {} partitions in {} ms: {} ms handing on the caches, {} ms flushing the "
      "producer, {} ms committing",
      settings_.application_id, offsets.size(), since_ms(commit_start),
      ms_between(commit_start, flush_start), ms_between(flush_start, flush_end),
      since_ms(flush_end));
  return true;
}

// A flush waits for a cluster that cannot take records, up to the delivery
// timeout (minutes), and the group does not wait: once this instance's
// session timed out, another may own its partitions, and under
// at-least-once what the producer delivers from then on lands after that
// owner's writes. Waiting in slices lets the lost assignment reach revoke(),
// which lets the producer go with what it holds, within one slice.
rd_kafka_resp_err_t TaskManager::flush_while_assigned(std::chrono::milliseconds timeout) {
  // Under exactly-once the transaction fences such writes: they are aborted.
  if (settings_.exactly_once) return kafka::flush(producer(), timeout);
  constexpr std::chrono::milliseconds kSlice{100};
  const auto deadline = Clock::now() + timeout;
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const rd_kafka_resp_err_t flushed =
        kafka::flush(producer(), std::clamp(left, std::chrono::milliseconds(0), kSlice));
    if (flushed != RD_KAFKA_RESP_ERR__TIMED_OUT || left <= kSlice) return flushed;
    if (clients_.consumer != nullptr && kafka::assignment_lost(clients_.consumer))
      return RD_KAFKA_RESP_ERR__ASSIGNMENT_LOST;
  }
}

// A partition whose records are all processed commits the consumer's
// position instead when it is one further: on a transactional topic the last
// record is followed by a commit marker, which librdkafka steps over without
// handing it on, and committing before it would leave the group's lag at 1
// for good. Never further than the marker: a position past records no task
// processed (seen after a clean close under at-least-once, where 1 in about
// 10 hand-overs committed a batch of unprocessed records) would lose them.
std::vector<kafka::TopicPartition> TaskManager::collect_offsets(
    std::vector<InputPartition*>& committed) {
  std::vector<kafka::TopicPartition> drained;
  std::vector<InputPartition*> drained_inputs;
  for (auto& [id, task] : tasks_) {
    if (task->task_state() == TaskState::kFailed) continue;
    for (auto& input : task->inputs()) {
      if (input->next == input->size && input->queue.length() == 0) {
        drained.push_back({input->topic, input->partition});
        drained_inputs.push_back(input.get());
      }
    }
  }
  if (!drained.empty()) {
    try {
      drained = clients_.group->position(std::move(drained));
      for (std::size_t i = 0; i < drained.size(); ++i)
        if (drained[i].error == RD_KAFKA_RESP_ERR_NO_ERROR &&
            drained[i].offset == drained_inputs[i]->next_offset + 1)
          drained_inputs[i]->next_offset = drained[i].offset;
    } catch (const kafka::Error&) {
      // The processed offsets are committed instead; the marker comes next time.
    }
  }
  std::vector<kafka::TopicPartition> offsets;
  for (auto& [id, task] : tasks_) {
    if (task->task_state() == TaskState::kFailed) continue;
    for (auto& input : task->inputs()) {
      if (input->next_offset <= input->committed_offset) continue;
      offsets.push_back({input->topic, input->partition, input->next_offset});
      committed.push_back(input.get());
    }
  }
  return offsets;
}

void TaskManager::mark_committed(const std::vector<InputPartition*>& inputs) {
  for (InputPartition* input : inputs) {
    input->committed_offset = input->next_offset;
    own_commits_.record(input->topic, input->partition, input->next_offset);
  }
}

// Commits outputs, changelog writes and `offsets` atomically. When the
// transaction cannot commit, nothing of it is visible to read_committed
// readers: every task goes back to the last commit, with a new producer if
// this one was fenced or failed.
bool TaskManager::commit_transaction(const std::vector<kafka::TopicPartition>& offsets,
                                     const std::vector<InputPartition*>& inputs) {
  const StreamsProducer::CommitResult result =
      transactions_->commit(offsets, !shared_.stopping.load());
  // Before a rewind, which closes the inputs (a commit whose next
  // transaction could not begin).
  if (result.committed) {
    mark_committed(inputs);
    if (log::get().should_log(spdlog::level::debug)) {
      std::string listed;
      for (const kafka::TopicPartition& tp : offsets)
        listed += fmt::format(" {}[{}]={}", tp.topic, tp.partition, tp.offset);
      log::get().debug("{}: the transaction committed offsets{}", settings_.application_id,
                       listed.empty() ? " (none)" : listed);
    }
  }
  if (result.rewind_reason) rewind_all(*result.rewind_reason, result.replace_producer);
  return result.committed;
}

// ---- replay ------------------------------------------------------------------

bool TaskManager::replay_complete(const EndOffsets& ends) {
  if (recovery_.pending) return false;
  close_gate();
  bool complete = true;
  for (const auto& [id, task] : tasks_)
    complete = complete && task->task_state() == TaskState::kRunning;
  for (const auto& [partition, end] : settings_.input_end_offsets) {
    auto it = inputs_.find(partition);
    const InputPartition* input = it == inputs_.end() ? nullptr : it->second.first;
    complete = complete && input != nullptr &&
               (input->at_end_offset || input->next_offset >= end) && input->next == input->size &&
               input->committed_offset == input->next_offset;
  }
  open_gate();
  // What went through repartition topics: every record written is committed
  // (the commit flushed every output first, so nothing is still on its way).
  // The group's offsets, not the tasks': a partition that got nothing since
  // a restart has its commit from before.
  std::vector<std::pair<std::string, int32_t>> internal;
  std::vector<kafka::TopicPartition> asked;
  for (const auto& [key, entry] : inputs_) {
    if (!repartition_topics_.contains(key.first)) continue;
    internal.push_back(key);
    asked.push_back({key.first, key.second});
  }
  if (!complete || internal.empty()) return complete;
  const std::vector<int64_t> end_offsets = ends(internal);
  const std::vector<kafka::TopicPartition> committed =
      clients_.group->committed(std::move(asked), settings_.call_timeout);
  for (std::size_t i = 0; i < internal.size(); ++i)
    if (end_offsets[i] > 0 &&
        (committed[i].error != RD_KAFKA_RESP_ERR_NO_ERROR || committed[i].offset < end_offsets[i]))
      return false;
  return true;
}

// ---- purging repartition topics --------------------------------------------

// Safe under any fault: only records below an offset the group committed go,
// and every later owner of the partition starts at or after it.
void TaskManager::purge_repartition_topics() {
  const auto now = Clock::now();
  if (!purge_ || purge_->in_flight() || now < next_purge_) return;
  std::vector<kafka::TopicPartition> below;
  for (const auto& [key, entry] : inputs_) {
    if (!repartition_topics_.contains(key.first)) continue;
    const int64_t committed = entry.first->committed_offset;
    auto purged = purged_below_.find(key);
    if (committed <= 0 || (purged != purged_below_.end() && purged->second >= committed)) continue;
    below.push_back({key.first, key.second, committed});
  }
  if (below.empty()) return;
  purge_->start(below, settings_.call_timeout);
  next_purge_ = now + settings_.repartition_purge_interval;
}

void TaskManager::take_purge_answer() {
  std::optional<std::vector<kafka::TopicPartition>> answer = purge_->take_answer();
  if (!answer) return;
  std::string failure;
  for (const kafka::TopicPartition& tp : *answer) {
    if (tp.error == RD_KAFKA_RESP_ERR_NO_ERROR) {
      purged_below_[{tp.topic, tp.partition}] = tp.offset;
      shared_.metrics.on_records_purged(tp.topic, tp.partition, tp.offset);
      continue;
    }
    if (tp.error == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
        tp.error == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION) {
      log::get().info(
          "{}: the cluster cannot delete records ({}): repartition topics keep "
          "every record",
          settings_.application_id, kafka::describe(tp.error));
      purge_.reset();
      return;
    }
    if (failure.empty()) failure = tp.to_string() + ": " + kafka::describe(tp.error);
  }
  if (failure.empty()) {
    shared_.metrics.repartition_purges.add(1);
    purge_failing_ = false;
    return;
  }
  shared_.metrics.repartition_purge_failures.add(1);
  // A broker fault fails purges until it passes; say so once, and try again
  // at the next interval.
  if (!purge_failing_)
    log::get().warn("{}: purging committed repartition records failed ({}); retrying every {} ms",
                    settings_.application_id, failure,
                    settings_.repartition_purge_interval.count());
  purge_failing_ = true;
}

// ---- failures and recovery from faults of the cluster ----------------------

void TaskManager::take_reports() {
  for (auto& [id, task] : tasks_) {
    const TaskState state = task->task_state();
    if (task->failure_reported() && state != TaskState::kFailed) {
      task->transition_to(TaskState::kFailed);
    } else if (state == TaskState::kRestoring && !task->in_restore()) {
      task->transition_to(TaskState::kRunning);
      shared_.schedule(task);
    }
  }
}

std::optional<std::string> TaskManager::update(const KafkaStreams::ExceptionHandler& handler) {
  take_reports();
  if (purge_) take_purge_answer();
  std::vector<std::shared_ptr<ActiveTask>> failed;
  for (auto& [id, task] : tasks_)
    if (task->task_state() == TaskState::kFailed && !task->scheduled.load()) failed.push_back(task);
  for (auto& task : failed) {
    if (task->task_state() == TaskState::kClosed) continue;  // rewound with an earlier one
    const bool by_cluster = task->failed_by_cluster();
    if (!by_cluster) {
      FatalError error(task->failure());
      const KafkaStreams::ExceptionResponse response =
          handler ? handler(error) : KafkaStreams::ExceptionResponse::kShutdownClient;
      shared_.counters.failed_tasks.fetch_add(1, std::memory_order_relaxed);
      if (response == KafkaStreams::ExceptionResponse::kShutdownClient) return task->failure();
      log::get().warn("{}: restarting task {} after: {}", settings_.application_id,
                      task->id().to_string(), task->failure());
    }
    // Back to the last commit. Under exactly-once the failed task's outputs
    // are in the open transaction with every other task's since the last
    // commit, so all go back; after a fault of the cluster, tasks that failed
    // on their records stay for the handler. Tasks the same fault of the
    // cluster failed go back together, in one recovery.
    close_gate();
    if (settings_.exactly_once) {
      rewind_all(task->failure(), false, /*including_failed=*/!by_cluster,
                 /*wait_if_recurring=*/by_cluster);
    } else if (!by_cluster) {
      rewind({task}, task->failure(), false);
    } else {
      std::vector<std::shared_ptr<ActiveTask>> by_this_fault;
      for (auto& other : failed)
        if (other->task_state() == TaskState::kFailed && other->failed_by_cluster())
          by_this_fault.push_back(other);
      rewind(by_this_fault, task->failure(), false, /*wait_if_recurring=*/true);
    }
    open_gate();
  }
  return std::nullopt;
}

void TaskManager::note_stall(const std::string& reason) {
  if (!stalled_since_) stalled_since_ = Clock::now();
  stall_reason_ = reason;
}

std::optional<std::string> TaskManager::timed_out(Clock::time_point now) const {
  if (!stalled_since_ || now - *stalled_since_ <= settings_.task_timeout) return std::nullopt;
  return "no commit for task.timeout.ms (" + std::to_string(settings_.task_timeout.count()) +
         " ms) while the cluster kept failing; last: " + stall_reason_;
}

void TaskManager::rewind_all(const std::string& reason, bool new_producer, bool including_failed,
                             bool wait_if_recurring) {
  std::vector<std::shared_ptr<ActiveTask>> rewound;
  for (auto& [id, task] : tasks_)
    if (including_failed || new_producer || task->task_state() != TaskState::kFailed ||
        task->failed_by_cluster())
      rewound.push_back(task);
  rewind(rewound, reason, new_producer, wait_if_recurring);
}

void TaskManager::rewind(const std::vector<std::shared_ptr<ActiveTask>>& rewound,
                         const std::string& reason, bool new_producer, bool wait_if_recurring) {
  note_stall(reason);
  if (settings_.exactly_once) ++shared_.counters.aborted_transactions;
  ++shared_.counters.rewinds;
  // Most faults are over when they are noticed: try at once. A task that the
  // cluster fails again after the tasks resumed, before they could commit,
  // meets one that is not (an output topic that does not exist, say): trying
  // at once again would process the same records in a loop, on every worker,
  // until task.timeout.ms. Each time it comes back, the next attempt waits
  // twice as long, and tasks failing meanwhile join that attempt.
  const bool wait = wait_if_recurring && recovery_.resumed_since_commit;
  const bool attempt_scheduled = recovery_.pending;
  if (wait && !attempt_scheduled)
    recovery_.backoff = std::clamp(recovery_.backoff * 2, kMinRecoveryBackoff, kMaxRecoveryBackoff);
  if (wait)
    log::get().warn(
        "{}: {}; {}{}the fault came back before a commit: resuming {} tasks from the last "
        "commit in {} ms",
        settings_.application_id, reason, settings_.exactly_once ? "transaction aborted, " : "",
        new_producer ? "with a new producer, " : "", rewound.size(), recovery_.backoff.count());
  else
    log::get().warn("{}: {}; {}{}resuming {} tasks from the last commit", settings_.application_id,
                    reason, settings_.exactly_once ? "transaction aborted, " : "",
                    new_producer ? "with a new producer, " : "", rewound.size());
  close_for_recovery(rewound);
  recovery_.pending = true;
  recovery_.new_producer = recovery_.new_producer || new_producer;
  if (shared_.stopping.load()) return;  // closing: nothing reopens
  if (wait) {
    if (!attempt_scheduled) recovery_.next_attempt = Clock::now() + recovery_.backoff;
    return;
  }
  recovery_.backoff = std::chrono::milliseconds(0);
  recover();
}

void TaskManager::close_for_recovery(const std::vector<std::shared_ptr<ActiveTask>>& closing) {
  std::vector<kafka::TopicPartition> closed;
  for (const auto& task : closing)
    for (const auto& input : task->inputs()) closed.push_back({input->topic, input->partition});
  close_partitions(closed, false);
  for (const auto& tp : closed)
    if (!contains(recovery_.partitions, tp.topic, tp.partition)) recovery_.partitions.push_back(tp);
}

void TaskManager::recover_when_due(Clock::time_point now) {
  if (!recovery_.pending || now < recovery_.next_attempt) return;
  close_gate();
  recover();
  open_gate();
}

// Abort the transaction (or settle outputs in flight, at least once), replace
// the producer if it cannot go on, read the committed offsets and reopen. On
// failure the next attempt waits longer, up to kMaxRecoveryBackoff.
void TaskManager::recover() {
  try {
    if (kafka::fatal_error(producer())) recovery_.new_producer = true;
    if (recovery_.new_producer && !tasks_.empty()) {
      // Tasks still running hold the producer that is about to go.
      std::vector<std::shared_ptr<ActiveTask>> running;
      for (auto& [id, task] : tasks_) running.push_back(task);
      close_for_recovery(running);
    }
    if (settings_.exactly_once && transactions_->transaction_open() && !recovery_.new_producer &&
        transactions_->abort(settings_.call_timeout) ==
            StreamsProducer::AbortResult::kReplaceProducer)
      recovery_.new_producer = true;
    if (recovery_.new_producer) {
      // Only tasks hold the producer, and they are closed: it can go, under
      // at-least-once with nothing more of what it holds sent from now on.
      if (!settings_.exactly_once) kafka::purge(producer());
      transactions_.reset();
      clients_.producer.reset();
      clients_.producer = clients_.make_producer();
      if (settings_.exactly_once) create_transactions();
      recovery_.new_producer = false;
    }
    if (settings_.exactly_once) {
      if (!transactions_->ready()) transactions_->init(settings_.call_timeout);
      if (!transactions_->transaction_open()) transactions_->begin();
    } else if (flush_while_assigned(settings_.call_timeout) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("outputs in flight are not settled yet");
    }
    // Refusals of outputs that were aborted or will be produced again.
    shared_.deliveries.take_rewind_reason();
    const std::size_t reopened = recovery_.partitions.size();
    reopen(recovery_.partitions);
    recovery_.partitions.clear();
    recovery_.pending = false;
    recovery_.resumed_since_commit = true;
    log::get().info("{}: resumed {} partitions from the last commit", settings_.application_id,
                    reopened);
  } catch (const std::exception& e) {
    recovery_.backoff = std::clamp(recovery_.backoff * 2, kMinRecoveryBackoff, kMaxRecoveryBackoff);
    recovery_.next_attempt = Clock::now() + recovery_.backoff;
    note_stall(e.what());
    log::get().warn("{}: cannot resume yet: {}; next attempt in {} ms", settings_.application_id,
                    e.what(), recovery_.backoff.count());
  }
}

void TaskManager::reopen(const std::vector<kafka::TopicPartition>& partitions) {
  const std::vector<kafka::TopicPartition> positions = resume_positions(
      *clients_.group, partitions, settings_.call_timeout, own_commits_, settings_.application_id);
  try {
    // The inputs take their partitions' records out of the consumer's queue
    // before the seek: a partition assigned while the recovery waited has
    // been fetched into that queue since, and what the seek fetched there
    // before its task existed would be skipped (see handle_event). The gate
    // is closed, and what was fetched before the seek is discarded by it.
    create_tasks(partitions);
    seek_to(*clients_.group, positions);
    // Partitions read from their archive first fetch from its end.
    std::vector<kafka::TopicPartition> live_starts;
    for (const auto& [tp, offset] : archive_live_starts_)
      live_starts.push_back({tp.first, tp.second, offset});
    archive_live_starts_.clear();
    seek_to(*clients_.group, live_starts);
  } catch (...) {
    // All or none: a task created before the failure would process into the
    // new transaction while the others wait, and the next attempt, which
    // seeks every partition back, would give its partitions a second input
    // and keep its store's updates. It closes dirty and waits with them.
    const std::vector<kafka::TopicPartition> waiting = partitions;
    close_partitions(waiting, false);
    for (const auto& tp : waiting)
      if (!contains(recovery_.partitions, tp.topic, tp.partition))
        recovery_.partitions.push_back(tp);
    throw;
  }
  for (const kafka::TopicPartition& position : positions) {
    auto it = inputs_.find({position.topic, position.partition});
    if (it != inputs_.end()) it->second.first->committed_offset = position.offset;
  }
}

}  // namespace rill::runtime
