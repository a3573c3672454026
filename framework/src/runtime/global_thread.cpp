#include "runtime/global_thread.h"

#include <algorithm>
#include <vector>

#include "kafka/group.h"
#include "kafka/producer.h"
#include "log/log.h"
#include "runtime/active_task.h"

namespace rill::runtime {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kPollMs = 100;
constexpr std::size_t kBatch = 1000;

}  // namespace

GlobalThread::GlobalThread(const Topology& topology, const std::string& application_id,
                           std::filesystem::path directory, state::RocksDbResources* resources,
                           ErrorHandling& errors, kafka::KafkaPtr consumer,
                           kafka::KafkaPtr dead_letter_producer,
                           std::chrono::milliseconds checkpoint_interval,
                           std::chrono::milliseconds timeout,
                           std::chrono::milliseconds stall_timeout, Listener listener)
    : dead_letter_producer_(std::move(dead_letter_producer)),
      dead_letters_(dead_letter_producer_
                        ? std::make_unique<ProducerCollector>(dead_letter_producer_.get(),
                                                              dead_letter_deliveries_, timeout)
                        : nullptr),
      state_(topology, application_id, std::move(directory), resources, errors, dead_letters_.get(),
             [] {
               return std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                   .count();
             }),
      consumer_(std::move(consumer)),
      queue_(kafka::MessageQueue::of_consumer(consumer_.get())),
      checkpoint_interval_(checkpoint_interval),
      timeout_(timeout),
      stall_timeout_(stall_timeout),
      listener_(std::move(listener)),
      batch_(kBatch) {}

GlobalThread::~GlobalThread() {
  try {
    stop();
  } catch (...) {
    // A destructor must not throw; closing the stores logged what failed.
  }
  queue_.reset();
  try {
    kafka::assign(consumer_.get(), {});
  } catch (const kafka::Error&) {
    // Destroying the consumer stops its fetches anyway.
  }
  // The consumer never joined its group nor committed: there is nothing to
  // leave, and librdkafka's close could wait on a coordinator for nothing.
  kafka::destroy_unclosed(std::move(consumer_));
}

void GlobalThread::restore(std::optional<int64_t> until_ms) {
  state_.open();
  std::vector<kafka::TopicPartition> assignment;
  std::vector<std::pair<std::string, int32_t>> topic_partitions;
  for (const std::string& topic : state_.topics()) {
    auto count = kafka::partition_count(consumer_.get(), topic, timeout_);
    if (!count)
      throw std::runtime_error("the topic '" + topic + "' of global store '" +
                               state_.store_of(topic) + "' does not exist (waited " +
                               std::to_string(timeout_.count()) + " ms); create it first");
    for (int32_t p = 0; p < *count; ++p) topic_partitions.emplace_back(topic, p);
  }
  const auto offsets = kafka::watermarks(consumer_.get(), topic_partitions, timeout_);
  std::vector<int64_t> limits;
  if (until_ms)
    limits = kafka::offsets_for_time(consumer_.get(), topic_partitions, *until_ms + 1, timeout_);
  for (std::size_t i = 0; i < topic_partitions.size(); ++i) {
    const auto& [topic, p] = topic_partitions[i];
    const std::string store = state_.store_of(topic);
    const auto low = offsets[i].first;
    const auto high = until_ms ? std::min(offsets[i].second, limits[i]) : offsets[i].second;
    if (until_ms && low > 0 && high > 0)
      log::get().warn(
          "global store {}: {}[{}] starts at offset {}: the records before it are deleted "
          "(retention), so the state as of {} ms lacks them",
          store, topic, p, low, *until_ms);
    int64_t from = std::max(low, state_.checkpointed(topic, p).value_or(low));
    if (from > offsets[i].second) from = low;  // the topic was recreated since the checkpoint
    from = std::min(from, high);
    Partition& partition = partitions_[{topic, p}];
    partition.store = store;
    partition.end = high;
    if (until_ms) partition.limit = limits[i];
    partition.position = &state_.position(topic, p);
    *partition.position = from;
    partition.progress = {store, topic, p, 0, static_cast<uint64_t>(high - from), false};
    assignment.push_back({topic, p, from});
    if (from < high)
      log::get().info("global store {}: restoring {}[{}] offsets {} to {}", store, topic, p, from,
                      high);
  }
  try {
    kafka::assign(consumer_.get(), assignment);
  } catch (const kafka::Error& e) {
    throw std::runtime_error(std::string("assigning the global topics' partitions failed: ") +
                             e.what());
  }
  for (auto& [key, partition] : partitions_)
    if (listener_) listener_(partition.progress);

  auto pending = [&] {
    std::size_t left = 0;
    for (auto& [key, partition] : partitions_) {
      if (partition.progress.done) continue;
      if (*partition.position >= partition.end) {
        partition.progress.done = true;
        if (listener_) listener_(partition.progress);
        continue;
      }
      ++left;
    }
    return left;
  };
  auto last_report = Clock::now(), last_progress = Clock::now();
  while (pending() > 0) {
    if (stopping_.load()) throw std::runtime_error("closed while restoring the global stores");
    if (Clock::now() - last_progress > stall_timeout_)
      throw std::runtime_error("restoring the global stores applied no record for " +
                               std::to_string(stall_timeout_.count()) +
                               " ms (task.timeout.ms); is the cluster reachable?");
    if (poll_once(kPollMs) > 0) last_progress = Clock::now();
    if (Clock::now() - last_report >= std::chrono::seconds(1)) {
      last_report = Clock::now();
      for (auto& [key, partition] : partitions_)
        if (!partition.progress.done && listener_) listener_(partition.progress);
    }
  }
  uint64_t restored = 0;
  for (const auto& [key, partition] : partitions_) restored += partition.progress.restored;
  log::get().info("global stores restored: {} records from {} partitions", restored,
                  partitions_.size());
}

std::size_t GlobalThread::poll_once(int timeout_ms) {
  const std::size_t count = queue_->take(batch_.data(), batch_.size(), timeout_ms);
  std::size_t applied = 0;
  // Consecutive records mostly come from one partition: look it up once.
  rd_kafka_topic_t* last_topic = nullptr;
  int32_t last_partition = -1;
  std::pair<const Key, Partition>* partition = nullptr;
  for (std::size_t i = 0; i < count; ++i) {
    kafka::MessagePtr message(batch_[i]);
    if (message->err == RD_KAFKA_RESP_ERR__FATAL)
      throw std::runtime_error("global consumer: " + kafka::error_of(*message));
    if (message->rkt == nullptr) continue;
    if (message->rkt != last_topic || message->partition != last_partition) {
      auto it = partitions_.find({kafka::topic_of(*message), message->partition});
      last_topic = message->rkt;
      last_partition = message->partition;
      partition = it == partitions_.end() ? nullptr : &*it;
    }
    if (partition == nullptr) continue;
    const std::string& topic = partition->first.first;
    Partition& state = partition->second;
    if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      // Past a transaction's commit marker, for instance.
      *state.position = std::max(*state.position, message->offset);
      continue;
    }
    if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      log::get().warn("reading global topic {}[{}]: {}", topic, message->partition,
                      kafka::error_of(*message));
      continue;
    }
    if (message->offset >= state.limit) {
      // A replay's end reached: the partition counts as read to it.
      *state.position = std::max(*state.position, state.limit);
      continue;
    }
    state_.process(raw_record_of(*message, topic, headers_));
    *state.position = message->offset + 1;
    ++applied;
    if (!state.progress.done) ++state.progress.restored;
  }
  return applied;
}

void GlobalThread::start() {
  thread_ = std::thread([this] { run(); });
}

void GlobalThread::run() {
  auto last_checkpoint = Clock::now();
  uint64_t since_checkpoint = 0;
  try {
    while (!stopping_.load()) {
      since_checkpoint += poll_once(kPollMs);
      if (since_checkpoint >= kCheckpointRecords &&
          Clock::now() - last_checkpoint >= checkpoint_interval_) {
        state_.checkpoint();
        since_checkpoint = 0;
        last_checkpoint = Clock::now();
      }
    }
  } catch (const std::exception& e) {
    {
      std::lock_guard lock(error_mutex_);
      error_ = std::string("global thread: ") + e.what();
    }
    failed_.store(true, std::memory_order_release);
  }
}

std::string GlobalThread::error() const {
  std::lock_guard lock(error_mutex_);
  return error_;
}

void GlobalThread::stop() {
  stopping_.store(true);
  if (thread_.joinable()) thread_.join();
  state_.close(true);
  if (dead_letter_producer_) kafka::flush(dead_letter_producer_.get(), std::chrono::seconds(30));
}

}  // namespace rill::runtime
