#include "runtime/active_task.h"

#include "log/log.h"

namespace rill::runtime {
namespace {

int64_t wall_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void on_records_arrived(rd_kafka_t*, void* opaque) {
  static_cast<InputPartition*>(opaque)->on_arrival();
}

}  // namespace

InputPartition::InputPartition(rd_kafka_t* consumer, std::string topic_name, int32_t partition_id,
                               internal::SourceNodeBase* source_node, std::size_t batch_capacity,
                               std::size_t hold_back_records,
                               std::atomic<uint64_t>& hold_back_count,
                               std::function<void()> arrival)
    : topic(std::move(topic_name)),
      partition(partition_id),
      source(source_node),
      on_arrival(std::move(arrival)),
      queue(kafka::MessageQueue::of_partition(consumer, topic, partition)),
      batch(batch_capacity),
      hold_back(hold_back_records),
      hold_backs(hold_back_count) {
  queue.on_arrival(on_records_arrived, this);
}

InputPartition::~InputPartition() {
  queue.on_arrival(nullptr, nullptr);
  kafka::destroy_messages(batch.data(), next, size);
}

bool InputPartition::take() {
  next = 0;
  size = 0;
  if (at_end_offset) return false;
  const std::size_t taken = queue.take(batch.data(), batch.size(), 0);
  size = taken;
  may_have_more = size == batch.size();
  if (end_offset != kUnbounded) {
    // A partition's end event carries the offset the partition ends at.
    for (std::size_t i = 0; i < size; ++i) {
      const rd_kafka_message_t& message = *batch[i];
      if ((message.err == RD_KAFKA_RESP_ERR_NO_ERROR ||
           message.err == RD_KAFKA_RESP_ERR__PARTITION_EOF) &&
          message.offset >= end_offset) {
        kafka::destroy_messages(batch.data(), i, size);
        size = i;
        at_end_offset = true;
        may_have_more = false;
        break;
      }
    }
  }
  if (size == 0) return false;
  switch (hold_back.observe(queue.length(), taken)) {
    case kafka::FetchHoldBack::Change::kHeldBack:
      hold_backs.fetch_add(1, std::memory_order_relaxed);
      break;
    case kafka::FetchHoldBack::Change::kDrained:
      fetch_wanted.store(true, std::memory_order_release);  // the polling thread wakes it
      break;
    case kafka::FetchHoldBack::Change::kNone:
      break;
  }
  return true;
}

std::size_t InputPartition::waiting() const {
  return unprocessed.load(std::memory_order_relaxed) +
         archived_waiting.load(std::memory_order_relaxed) + (at_end_offset ? 0 : queue.length());
}

bool InputPartition::archive_pending() {
  if (archive == nullptr) return false;
  if (!at_end_offset && archive->has_record()) return true;
  archive.reset();
  archived_waiting.store(0, std::memory_order_relaxed);
  return false;
}

ActiveTask::ActiveTask(const Topology& topology, TaskId id, std::string application_id,
                       rd_kafka_t* producer, DeliveryTracker& deliveries, ErrorHandling& errors,
                       TaskGate& gate, std::size_t max_batch, int64_t max_idle_ms,
                       std::chrono::milliseconds metadata_timeout,
                       std::filesystem::path task_directory, state::RocksDbResources* resources)
    : id_(id),
      collector_(producer, deliveries, metadata_timeout),
      state_(topology, topology.subtopologies().at(static_cast<std::size_t>(id.subtopology)), id,
             application_id, std::move(task_directory), resources),
      task_(
          topology, id, application_id, collector_, errors,
          [] {
            return std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                .count();
          },
          &state_),
      gate_(gate),
      max_batch_(max_batch),
      max_idle_ms_(max_idle_ms) {}

void ActiveTask::record_into(std::shared_ptr<metrics::TaskMetrics> metrics, bool timed,
                             bool timed_stores) {
  metrics_ = std::move(metrics);
  timed_ = timed && metrics_ != nullptr;
  if (timed_stores) state_.record_store_latency_into(metrics_.get());
  task_.record_into(metrics_.get());
  collector_.record_into(metrics_.get(), timed_);
}

void ActiveTask::open(state::CacheBudget* cache) {
  task_.build_nodes();
  state_.open(
      &collector_, [this] { return task_.stream_time(); }, cache);
}

std::string_view to_string(TaskState state) {
  switch (state) {
    case TaskState::kCreated:
      return "CREATED";
    case TaskState::kRestoring:
      return "RESTORING";
    case TaskState::kRunning:
      return "RUNNING";
    case TaskState::kFailed:
      return "FAILED";
    case TaskState::kClosed:
      return "CLOSED";
  }
  return "UNKNOWN";
}

void ActiveTask::transition_to(TaskState next) {
  const TaskState now = task_state();
  bool allowed = false;
  switch (next) {
    case TaskState::kCreated:
      break;
    case TaskState::kRestoring:
      allowed = now == TaskState::kCreated;
      break;
    case TaskState::kRunning:
      allowed = now == TaskState::kCreated || now == TaskState::kRestoring;
      break;
    case TaskState::kFailed:
      allowed = now != TaskState::kClosed;
      break;
    case TaskState::kClosed:
      allowed = true;
      break;
  }
  if (!allowed)
    throw std::logic_error("task " + id_.to_string() + ": no change from " +
                           std::string(to_string(now)) + " to " + std::string(to_string(next)));
  {
    // Under the queries' lock: no query is posted to a task that stopped running.
    std::lock_guard lock(queries_mutex_);
    task_state_.store(next, std::memory_order_release);
  }
  if (next != TaskState::kRunning) drop_queries();
}

void ActiveTask::close(bool clean) {
  std::string error;
  if (initialized_) {
    try {
      task_.close();
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  try {
    state_.close(clean);
  } catch (const std::exception& e) {
    if (error.empty()) error = e.what();
  }
  collector_.release_topics();
  if (!error.empty()) throw FatalError(error);
}

void ActiveTask::report_failure(std::string reason, bool by_cluster) {
  {
    std::lock_guard lock(failure_mutex_);
    if (failure_reported()) return;
    failure_ = std::move(reason);
    failed_by_cluster_ = by_cluster;
    std::lock_guard queries_lock(queries_mutex_);
    failure_reported_.store(true, std::memory_order_release);
  }
  drop_queries();
}

bool ActiveTask::post_query(std::function<void()> query) {
  std::lock_guard lock(queries_mutex_);
  if (task_state() != TaskState::kRunning || failure_reported()) return false;
  queries_.push_back(std::move(query));
  queries_waiting_.store(true, std::memory_order_release);
  return true;
}

void ActiveTask::run_queries() {
  if (!queries_waiting_.load(std::memory_order_acquire)) return;
  std::vector<std::function<void()>> queries;
  {
    std::lock_guard lock(queries_mutex_);
    queries.swap(queries_);
    queries_waiting_.store(false, std::memory_order_relaxed);
  }
  for (auto& query : queries) query();
}

// Dropped queries break their promises: their callers learn the store moved.
void ActiveTask::drop_queries() {
  std::vector<std::function<void()>> dropped;
  std::lock_guard lock(queries_mutex_);
  dropped.swap(queries_);
  queries_waiting_.store(false, std::memory_order_relaxed);
}

bool ActiveTask::has_waiting() const {
  if (queries_waiting_.load(std::memory_order_acquire)) return true;
  for (const auto& input : inputs_)
    if (input->waiting() > 0) return true;
  return false;
}

bool ActiveTask::should_run_again() const {
  if (queries_waiting_.load(std::memory_order_acquire)) return true;
  if (awaited_input_ != nullptr && awaited_input_->queue.length() == 0) return false;
  return !idle_wait_ && has_waiting();
}

// Among partitions with records waiting, the one whose next record is oldest,
// so a task reading several partitions processes them in timestamp order. A
// partition whose batch is used up is asked for more only while its last take
// came back full: an idle partition costs one take per run, not per record.
InputPartition* ActiveTask::next_input() {
  InputPartition* best = nullptr;
  int64_t best_timestamp = 0;
  for (auto& input : inputs_) {
    if (input->archive_pending()) {
      const int64_t timestamp = input->archive->head().timestamp;
      if (best == nullptr || timestamp < best_timestamp) {
        best = input.get();
        best_timestamp = timestamp;
      }
      continue;
    }
    if (input->next == input->size) {
      // A partial take leaves may_have_more false, but records may have
      // arrived since: ready_to_process counted them, so they must be taken.
      if (!input->may_have_more && input->queue.length() == 0) continue;
      if (!input->take()) continue;
    }
    int64_t timestamp = kafka::timestamp_of(*input->batch[input->next]);
    if (best == nullptr || timestamp < best_timestamp) {
      best = input.get();
      best_timestamp = timestamp;
    }
  }
  return best;
}

bool ActiveTask::ready_to_process(int64_t now) {
  if (inputs_.size() < 2 || max_idle_ms_ < 0) return true;
  bool idle_input = false;
  for (auto& input : inputs_) {
    if (input->next < input->size || input->archive_pending()) continue;
    // Taken now, so that next_input() sees what made the input count as
    // buffered: a queue may hold events that are not records (a fetch
    // barrier after a seek), which a take drops.
    if (input->queue.length() > 0 && input->take()) continue;
    if (!input->at_end && !input->at_end_offset) {
      idle_since_ = -1;
      awaited_input_ = input.get();
      return false;
    }
    idle_input = true;
  }
  if (!idle_input) {
    idle_since_ = -1;
    return true;
  }
  if (idle_since_ < 0) idle_since_ = now;
  idle_wait_ = now - idle_since_ < max_idle_ms_;
  return !idle_wait_;
}

// Once per partition and owner: where the consumer started it (the committed
// offset, or the reset policy's), beside what its last owner logged when it
// closed the partition.
void ActiveTask::note_first_offset(const InputPartition& input, int64_t offset) const {
  log::get().info("task {}: {}[{}] starts at offset {}", id_.to_string(), input.topic,
                  input.partition, offset);
}

bool ActiveTask::run(int64_t now) {
  bool wake_poll_thread = false;
  awaited_input_ = nullptr;
  idle_wait_ = false;
  // Dekker-style handshake with the poll thread: announce running, then look at
  // the gate; the poll thread closes the gate, then waits for running == 0.
  gate_.running.fetch_add(1);
  if (!gate_.closed.load() && task_state() == TaskState::kRunning && !failure_reported()) {
    std::size_t done = 0;
    // Records taken out of the batches; the partitions' end events are not.
    std::size_t taken = 0;
    const uint64_t dropped_before = task_.dropped();
    try {
      if (!initialized_) {
        task_.init();
        initialized_ = true;
      }
      run_queries();
      task_.punctuate_wall_clock(now);
      if (timed_) collector_.set_now_ms(ProducerCollector::kNotSampled);
      for (auto& input : inputs_) input->may_have_more = true;
      while (done < max_batch_ && !gate_.closed.load(std::memory_order_relaxed) &&
             ready_to_process(now)) {
        InputPartition* input = next_input();
        if (input == nullptr) break;
        if (input->archive != nullptr) {
          const archive::ArchivedRecord& record = input->archive->head();
          if (record.offset >= input->end_offset) {
            input->at_end_offset = true;
            continue;
          }
          ++taken;
          const internal::RawRecord raw = raw_record_of(record, input->topic, input->partition);
          task_.process(*input->source, raw);
          input->next_offset = record.offset + 1;
          input->last_timestamp.store(raw.timestamp, std::memory_order_relaxed);
          input->archive->advance();
          ++done;
          continue;
        }
        kafka::MessagePtr message(input->batch[input->next++]);
        if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          // Fetch errors of the partition (end of partition, offset out of
          // range) come through its queue; librdkafka handles them.
          if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            input->at_end = true;
          else
            log::get().warn("task {}: {}[{}]: {}", id_.to_string(), input->topic, input->partition,
                            kafka::error_of(*message));
          continue;
        }
        input->at_end = false;
        if (message->offset < input->next_offset) {
          // Delivered again below what this input processed: under
          // exactly-once its outputs would be committed twice.
          if (!input->redelivery_logged) {
            input->redelivery_logged = true;
            log::get().warn("task {}: {}[{}]: offset {} again after {}; skipped", id_.to_string(),
                            input->topic, input->partition, message->offset,
                            input->next_offset - 1);
          }
          continue;
        }
        ++taken;
        const internal::RawRecord raw = raw_record_of(*message, input->topic, headers_);
        // A clock read costs as much as a light processor: time one record
        // in kLatencySampleEvery, and its outputs' end-to-end latency with it.
        const bool sampled = timed_ && ++records_since_sample_ == metrics::kLatencySampleEvery;
        int64_t started_ns = 0;
        if (sampled) {
          records_since_sample_ = 0;
          started_ns = wall_clock_ns();
          collector_.set_now_ms(started_ns / 1'000'000);
        }
        task_.process(*input->source, raw);
        if (sampled) {
          metrics_->process_latency.observe_ns(wall_clock_ns() - started_ns);
          collector_.set_now_ms(ProducerCollector::kNotSampled);
        }
        if (input->next_offset < 0) note_first_offset(*input, message->offset);
        input->next_offset = message->offset + 1;
        input->last_timestamp.store(raw.timestamp, std::memory_order_relaxed);
        ++done;
      }
    } catch (const TaskCorruptedError& e) {
      report_failure("task " + id_.to_string() + ": " + e.what(), true);
      wake_poll_thread = true;
    } catch (const std::exception& e) {
      report_failure("task " + id_.to_string() + ": " + e.what(), false);
      wake_poll_thread = true;
    }
    if (timed_) collector_.set_now_ms(0);
    gate_.processed.fetch_add(done, std::memory_order_relaxed);
    if (const uint64_t dropped = task_.dropped() - dropped_before; dropped > 0)
      gate_.dropped.fetch_add(dropped, std::memory_order_relaxed);
    if (metrics_ != nullptr) {
      metrics_->consumed.add(taken);
      metrics_->processed.add(done);
    }
    for (auto& input : inputs_) {
      input->unprocessed.store(input->size - input->next, std::memory_order_relaxed);
      if (input->archive != nullptr)
        input->archived_waiting.store(input->archive->remaining(), std::memory_order_relaxed);
      wake_poll_thread = wake_poll_thread || input->fetch_wanted.load(std::memory_order_relaxed);
    }
  }
  scheduled.store(false);
  gate_.running.fetch_sub(1);
  return wake_poll_thread;
}

}  // namespace rill::runtime
