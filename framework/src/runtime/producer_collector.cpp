#include "runtime/producer_collector.h"

#include <stdexcept>
#include <thread>
#include <utility>

#include "kafka/producer.h"
#include "kafka/records.h"
#include "log/log.h"
#include "runtime/error_handling.h"

namespace rill::runtime {

void DeliveryTracker::on_delivery(const rd_kafka_message_t& message) {
  if (message.err == RD_KAFKA_RESP_ERR_NO_ERROR) {
    if (message._private != nullptr) {
      auto& delivered = *static_cast<std::atomic<int64_t>*>(message._private);
      int64_t current = delivered.load(std::memory_order_relaxed);
      while (message.offset > current &&
             !delivered.compare_exchange_weak(current, message.offset, std::memory_order_release))
        ;
    }
    return;
  }
  // A record still in flight when its producer is destroyed, for a new one
  // after a fault or at a close, or purged by an abort, is past the last
  // commit under either guarantee (at least once commits only acknowledged
  // outputs): the tasks produce it again from there.
  switch (message.err) {
    case RD_KAFKA_RESP_ERR__DESTROY:
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
      return;
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
      // Refused to a fenced producer, the record belongs to a transaction
      // that is aborted and redone. An idempotent producer, though, gets
      // INVALID_PRODUCER_EPOCH for a request sent before librdkafka bumped
      // its epoch (after a broker stopped answering): the record is lost,
      // and a commit past it would lose its input (below).
      if (policy_.transactional) return;
      break;
    default:
      break;
  }
  std::string error = std::string("the broker refused a record for topic ") +
                      kafka::topic_of(message) + ": " + kafka::describe(message.err);
  if (kafka::is_retriable(message.err) || kafka::is_producer_state_error(message.err)) {
    std::lock_guard lock(mutex_);
    if (!rewind_.exchange(true)) rewind_reason_ = std::move(error);
    return;
  }
  if (policy_.skip_refused_records) {
    skipped_.fetch_add(1, std::memory_order_relaxed);
    log::get().warn("{}; record skipped (production.exception.handler=log-and-continue)", error);
    return;
  }
  std::lock_guard lock(mutex_);
  if (!failed_.exchange(true)) fatal_error_ = std::move(error);
}

std::atomic<int64_t>& DeliveryTracker::acknowledged_offset(const std::string& topic,
                                                           int32_t partition) {
  std::lock_guard lock(mutex_);
  return acknowledged_.try_emplace({topic, partition}, -1).first->second;
}

std::string DeliveryTracker::fatal_error() const {
  if (!failed_.load()) return {};
  std::lock_guard lock(mutex_);
  return fatal_error_;
}

std::string DeliveryTracker::take_rewind_reason() {
  if (!rewind_.load()) return {};
  std::lock_guard lock(mutex_);
  rewind_.store(false);
  return std::exchange(rewind_reason_, {});
}

void ProducerCollector::release_topics() {
  topics_.clear();
  partition_counts_.clear();
}

int ProducerCollector::register_topic(const std::string& topic) {
  for (std::size_t i = 0; i < topics_.size(); ++i)
    if (topic == kafka::topic_name(topics_[i].get())) return static_cast<int>(i);
  topics_.push_back(kafka::open_topic(producer_, topic));
  partition_counts_.push_back(-1);
  return static_cast<int>(topics_.size() - 1);
}

int32_t ProducerCollector::partition_count(int topic) {
  auto index = static_cast<std::size_t>(topic);
  if (partition_counts_[index] < 0) {
    const std::string name = kafka::topic_name(topics_[index].get());
    auto count = kafka::partition_count(producer_, name, metadata_timeout_);
    if (!count) throw std::runtime_error("output topic '" + name + "' does not exist");
    partition_counts_[index] = *count;
  }
  return partition_counts_[index];
}

void ProducerCollector::send(int topic, int32_t partition, NullableBytes key, NullableBytes value,
                             int64_t timestamp, const Headers& headers) {
  kafka::HeadersPtr kafka_headers;
  if (!headers.empty()) {
    kafka_headers = kafka::make_headers(headers.size());
    for (const Header& header : headers)
      kafka::add_header(kafka_headers.get(), header.key,
                        header.value ? header.value->data() : nullptr,
                        header.value ? header.value->size() : 0);
  }
  produce(topic, partition, key, value, timestamp, std::move(kafka_headers), nullptr);
  if (metrics_ != nullptr) {
    metrics_->produced.add();
    if (timed_ && now_ms_ > 0) {
      metrics_->end_to_end_latency.observe_ns((now_ms_ - timestamp) * 1'000'000);
    } else if (timed_ && now_ms_ == 0 && ++outputs_since_sample_ == metrics::kLatencySampleEvery) {
      outputs_since_sample_ = 0;
      const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
      metrics_->end_to_end_latency.observe_ns((now_ms - timestamp) * 1'000'000);
    }
  }
}

std::atomic<int64_t>& ProducerCollector::acknowledged_offset(int topic, int32_t partition) {
  return deliveries_.acknowledged_offset(
      kafka::topic_name(topics_[static_cast<std::size_t>(topic)].get()), partition);
}

void ProducerCollector::send_changelog(int topic, int32_t partition, NullableBytes key,
                                       NullableBytes value, int64_t timestamp,
                                       std::atomic<int64_t>* delivered_offset) {
  produce(topic, partition, key, value, timestamp, nullptr, delivered_offset);
}

void ProducerCollector::produce(int topic, int32_t partition, NullableBytes key,
                                NullableBytes value, int64_t timestamp, kafka::HeadersPtr headers,
                                void* opaque) {
  rd_kafka_topic_t* handle = topics_[static_cast<std::size_t>(topic)].get();
  const kafka::ErrorPtr error =
      kafka::produce(producer_, handle, partition, key.value_or(std::string_view()),
                     value.value_or(std::string_view()), timestamp, headers, opaque);
  if (!error) return;
  const kafka::Error refusal(
      error, std::string("cannot produce to topic '") + kafka::topic_name(handle) + "'");
  if (refusal.code() == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
    throw RecordTooLargeError(
        std::string(refusal.what()) + " (" +
        std::to_string((key ? key->size() : 0) + (value ? value->size() : 0)) +
        " bytes of key and value)");
  // A partition the topic lacks comes from the topology's partitioner.
  if (refusal.code() == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)
    throw std::runtime_error(refusal.what());
  // The producer refuses any record (a transaction that must abort, a fatal
  // idempotence error): not this record's fault.
  throw TaskCorruptedError(refusal.what());
}

}  // namespace rill::runtime
