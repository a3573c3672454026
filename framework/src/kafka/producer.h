// The transactional calls of the runtime's producer, behind an interface so
// that what the runtime makes of their outcomes has unit tests without a
// broker.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "kafka/consumer.h"

namespace rill::kafka {

// A transactional call that failed, as librdkafka classifies it.
struct TransactionError {
  std::string message;
  // The same call may succeed when made again.
  bool retriable = false;
  // The producer is unusable: fenced by a newer one with its transactional.id,
  // or its transaction state lost. Only a new producer goes on.
  bool fatal = false;
};
// std::nullopt: the call succeeded.
using TransactionResult = std::optional<TransactionError>;

class TransactionalProducer {
 public:
  virtual ~TransactionalProducer() = default;
  virtual TransactionResult init_transactions(std::chrono::milliseconds timeout) = 0;
  virtual TransactionResult begin_transaction() = 0;
  // Adds the group consumer's `offsets` to the open transaction.
  virtual TransactionResult send_offsets_to_transaction(
      const std::vector<TopicPartition>& offsets) = 0;
  virtual TransactionResult commit_transaction() = 0;
  virtual TransactionResult abort_transaction(std::chrono::milliseconds timeout) = 0;
};

// The TransactionalProducer of a librdkafka producer handle whose offsets
// are those of `group_consumer`'s group; it owns neither.
std::unique_ptr<TransactionalProducer> transactional_producer_of(rd_kafka_t* producer,
                                                                 rd_kafka_t* group_consumer);

}  // namespace rill::kafka
