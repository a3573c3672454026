// The RecordCollector of a running application: sink nodes' records go to the
// shared librdkafka producer. Delivery results arrive through DeliveryTracker.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "rill/internal/node.h"

#include "kafka/handles.h"
#include "kafka/producer.h"
#include "metrics/task_metrics.h"

namespace rill::runtime {

// Sorts what the broker refused, for the commit protocol (no commit past a
// refused output). A refusal caused by the cluster (a timeout, too few in-sync
// replicas, a leader moving) loses an output whose input is not committed yet:
// it asks for a rewind to the last commit. A refusal of the record itself (too
// large, invalid) goes to production.exception.handler.
struct DeliveryPolicy {
  // production.exception.handler=log-and-continue: a refused record is
  // skipped (never under exactly-once, where it belongs to a transaction).
  bool skip_refused_records = false;
  // The producer writes transactions, so a write refused to a fenced or
  // bumped epoch is aborted and redone with its transaction.
  bool transactional = false;
};

class DeliveryTracker {
 public:
  explicit DeliveryTracker(DeliveryPolicy policy) : policy_(policy) {}

  // Called from librdkafka's delivery report callback, on any thread. A
  // record's opaque, when set, is the std::atomic<int64_t> to raise to its offset.
  void on_delivery(const rd_kafka_message_t& message);

  // The first refusal that must stop the application, or empty.
  std::string fatal_error() const;
  // The first refusal caused by the cluster since the last call, or empty.
  std::string take_rewind_reason();
  uint64_t skipped() const { return skipped_.load(std::memory_order_relaxed); }
  // One counter per changelog partition for the instance's life: records in
  // flight when their task closes are acknowledged afterwards.
  std::atomic<int64_t>& acknowledged_offset(const std::string& topic, int32_t partition);

 private:
  const DeliveryPolicy policy_;
  std::atomic<uint64_t> skipped_{0};
  std::atomic<bool> failed_{false};
  std::atomic<bool> rewind_{false};
  mutable std::mutex mutex_;
  std::string fatal_error_;
  std::string rewind_reason_;
  std::map<std::pair<std::string, int32_t>, std::atomic<int64_t>> acknowledged_;
};

class ProducerCollector final : public internal::RecordCollector {
 public:
  ProducerCollector(rd_kafka_t* producer, DeliveryTracker& deliveries,
                    std::chrono::milliseconds metadata_timeout)
      : producer_(producer), deliveries_(deliveries), metadata_timeout_(metadata_timeout) {}

  int register_topic(const std::string& topic) override;
  int32_t partition_count(int topic) override;
  void send(int topic, int32_t partition, NullableBytes key, NullableBytes value, int64_t timestamp,
            const Headers& headers) override;
  void send_changelog(int topic, int32_t partition, NullableBytes key, NullableBytes value,
                      int64_t timestamp, std::atomic<int64_t>* delivered_offset) override;
  std::atomic<int64_t>& acknowledged_offset(int topic, int32_t partition) override;
  // Lets go of the topic handles, once the task sends nothing more. librdkafka
  // requires them gone before their producer is destroyed, and a closed task
  // can outlive the producer: a run posted before its close still holds it.
  void release_topics();

  // Counts outputs into `metrics` and, when `timed`, their end-to-end latency.
  void record_into(metrics::TaskMetrics* metrics, bool timed) {
    metrics_ = metrics;
    timed_ = timed && metrics != nullptr;
  }
  // While a sampled input record is processed, the wall-clock time it began,
  // which times its outputs without a clock read each; kNotSampled while
  // another record is processed; 0 outside record processing (outputs of
  // cache flushes at commits), where one output in kLatencySampleEvery reads
  // the clock.
  static constexpr int64_t kNotSampled = -1;
  void set_now_ms(int64_t now_ms) { now_ms_ = now_ms; }

 private:
  void produce(int topic, int32_t partition, NullableBytes key, NullableBytes value,
               int64_t timestamp, kafka::HeadersPtr headers, void* opaque);

  rd_kafka_t* producer_;
  DeliveryTracker& deliveries_;
  std::chrono::milliseconds metadata_timeout_;
  std::vector<kafka::TopicPtr> topics_;
  std::vector<int32_t> partition_counts_;
  metrics::TaskMetrics* metrics_ = nullptr;
  bool timed_ = false;
  int64_t now_ms_ = 0;
  uint32_t outputs_since_sample_ = 0;
};

}  // namespace rill::runtime
