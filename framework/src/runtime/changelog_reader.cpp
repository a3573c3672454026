#include "runtime/changelog_reader.h"

#include <chrono>

#include "log/log.h"

namespace rill::runtime {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kBatch = 1000;

}  // namespace

ChangelogReader::ChangelogReader(kafka::KafkaPtr consumer, Listener listener,
                                 std::function<void()> on_restored)
    : consumer_(std::move(consumer)),
      listener_(std::move(listener)),
      on_restored_(std::move(on_restored)),
      thread_([this] { run(); }) {}

ChangelogReader::~ChangelogReader() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  rd_kafka_consumer_close(consumer_.get());
}

void ChangelogReader::submit(std::shared_ptr<ActiveTask> task) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(task));
  }
  wake_.notify_all();
}

void ChangelogReader::wait_idle(const ActiveTask& task) {
  std::unique_lock lock(mutex_);
  std::erase_if(queue_, [&](const auto& queued) { return queued.get() == &task; });
  wake_.wait(lock, [&] { return current_ != &task; });
}

void ChangelogReader::run() {
  while (true) {
    std::shared_ptr<ActiveTask> task;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      current_ = task.get();
    }
    try {
      restore(*task);
    } catch (const std::exception& e) {
      task->failure = "task " + task->id().to_string() + ": restoring state failed: " + e.what();
      task->failed.store(true);
    }
    task->restoring.store(false);
    {
      std::lock_guard lock(mutex_);
      current_ = nullptr;
    }
    wake_.notify_all();
    on_restored_();
  }
}

void ChangelogReader::restore(ActiveTask& task) {
  rd_kafka_t* consumer = consumer_.get();
  for (const auto& changelog : task.state().changelogs()) {
    int64_t low = 0, high = 0;
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
        consumer, changelog.topic.c_str(), changelog.partition, &low, &high, 30'000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw std::runtime_error("cannot read the end of changelog " + changelog.topic + "[" +
                               std::to_string(changelog.partition) + "]: " + rd_kafka_err2str(err));
    const int64_t start = std::max(changelog.restore_from, low);
    RestoreProgress progress{changelog.store,
                             changelog.topic,
                             changelog.partition,
                             0,
                             static_cast<uint64_t>(std::max<int64_t>(0, high - start)),
                             false};
    if (start >= high) {
      progress.done = true;
      if (listener_) listener_(progress);
      task.state().restored(changelog.store, start);
      continue;
    }
    log::get().info("task {}: restoring store {} from {}[{}] offsets {} to {}",
                    task.id().to_string(), changelog.store, changelog.topic, changelog.partition,
                    start, high);
    if (listener_) listener_(progress);
    auto started = Clock::now();
    auto last_report = started;

    kafka::PartitionListPtr partitions(rd_kafka_topic_partition_list_new(1));
    rd_kafka_topic_partition_list_add(partitions.get(), changelog.topic.c_str(),
                                      changelog.partition)
        ->offset = start;
    // A plain assignment: the restore consumer belongs to no group.
    if (rd_kafka_resp_err_t assigned = rd_kafka_assign(consumer, partitions.get()))
      throw std::runtime_error("cannot read changelog " + changelog.topic + ": " +
                               rd_kafka_err2str(assigned));
    kafka::QueuePtr queue(rd_kafka_queue_get_consumer(consumer));
    rd_kafka_message_t* batch[kBatch];
    int64_t next_offset = start;
    bool end = false;
    while (!end && !task.closed.load()) {
      ssize_t count = rd_kafka_consume_batch_queue(queue.get(), 200, batch, kBatch);
      for (ssize_t i = 0; i < count; ++i) {
        kafka::MessagePtr message(batch[i]);
        if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
          end = true;
          continue;
        }
        if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          log::get().warn("task {}: restoring {}: {}", task.id().to_string(), changelog.store,
                          rd_kafka_message_errstr(message.get()));
          continue;
        }
        std::string_view key(static_cast<const char*>(message->key), message->key_len);
        std::optional<std::string_view> value;
        if (message->payload != nullptr)
          value = std::string_view(static_cast<const char*>(message->payload), message->len);
        task.state().restore(changelog.store, key, value);
        next_offset = message->offset + 1;
        ++progress.restored;
        restored_records_.fetch_add(1, std::memory_order_relaxed);
      }
      if (next_offset >= high) end = true;
      if (listener_ && Clock::now() - last_report > std::chrono::seconds(1)) {
        listener_(progress);
        last_report = Clock::now();
      }
    }
    rd_kafka_assign(consumer, nullptr);
    if (task.closed.load()) return;
    task.state().restored(changelog.store, next_offset);
    progress.done = true;
    if (listener_) listener_(progress);
    log::get().info(
        "task {}: restored {} records of store {} in {} ms", task.id().to_string(),
        progress.restored, changelog.store,
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count());
  }
}

}  // namespace rill::runtime
