// The global thread of an instance (Kafka Streams' GlobalStreamThread): a
// consumer of its own, in no group, assigned every partition of every global
// store's topic. restore() brings the global stores up to the end offsets the
// topics have when it is called, before the instance processes anything; the
// thread then keeps applying new records and checkpoints now and then.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rill/kafka_streams.h"

#include "kafka/handles.h"
#include "kafka/records.h"
#include "runtime/global_state_manager.h"
#include "runtime/producer_collector.h"

namespace rill::runtime {

class GlobalThread {
 public:
  using Listener = std::function<void(const KafkaStreams::RestoreProgress&)>;

  // Kafka Streams' OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT: a running global
  // store is checkpointed once `checkpoint_interval` has passed and at least
  // this many records were applied since the last checkpoint (and at close).
  static constexpr uint64_t kCheckpointRecords = 10'000;

  // The global stores live in `directory`. `consumer` must have
  // enable.partition.eof set; `dead_letter_producer` (may be null) takes
  // the records the error handlers send to the dead-letter topic. Metadata
  // calls wait up to `timeout`; a restore that applies nothing for
  // `stall_timeout` (task.timeout.ms, as in Kafka Streams) fails.
  GlobalThread(const Topology& topology, const std::string& application_id,
               std::filesystem::path directory, state::RocksDbResources* resources,
               ErrorHandling& errors, kafka::KafkaPtr consumer,
               kafka::KafkaPtr dead_letter_producer, std::chrono::milliseconds checkpoint_interval,
               std::chrono::milliseconds timeout, std::chrono::milliseconds stall_timeout,
               Listener listener);
  ~GlobalThread();
  GlobalThread(const GlobalThread&) = delete;
  GlobalThread& operator=(const GlobalThread&) = delete;

  // Opens the global stores and applies every record of their topics up to
  // the partitions' end offsets read now, from the checkpoint on. Blocks;
  // throws std::runtime_error naming a missing topic, an unreachable cluster
  // or a record a handler chose to fail on. With `until_ms` (a replay), each
  // partition ends for good at its first record later than that time.
  void restore(std::optional<int64_t> until_ms = std::nullopt);
  // Starts the thread that applies new records.
  void start();
  // Stops the thread; then closes the stores, writing their checkpoint.
  // Call once no task reads them any more.
  void stop();

  // Whether the thread stopped on an error, and the error; from any thread.
  bool failed() const { return failed_.load(std::memory_order_acquire); }
  std::string error() const;
  // The stores, for tasks' read-only views.
  const GlobalStateManager& state() const { return state_; }

 private:
  struct Partition {
    std::string store;
    int64_t end = 0;
    // A replay's end: no record from this offset on is applied.
    int64_t limit = std::numeric_limits<int64_t>::max();
    // The state manager's position of the partition.
    int64_t* position = nullptr;
    KafkaStreams::RestoreProgress progress;
  };
  using Key = std::pair<std::string, int32_t>;

  // Applies what one poll returns; returns the number of records applied.
  std::size_t poll_once(int timeout_ms);
  void run();

  kafka::KafkaPtr dead_letter_producer_;
  // What ProducerCollector counts acknowledgements into; the dead-letter
  // producer writes no changelog and has no delivery report callback.
  DeliveryTracker dead_letter_deliveries_{DeliveryPolicy{}};
  std::unique_ptr<ProducerCollector> dead_letters_;
  GlobalStateManager state_;
  kafka::KafkaPtr consumer_;
  std::optional<kafka::MessageQueue> queue_;
  std::chrono::milliseconds checkpoint_interval_;
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds stall_timeout_;
  Listener listener_;
  std::map<Key, Partition> partitions_;
  std::vector<rd_kafka_message_t*> batch_;
  // The headers of the record being applied.
  Headers headers_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> failed_{false};
  mutable std::mutex error_mutex_;
  std::string error_;
  std::thread thread_;
};

}  // namespace rill::runtime
