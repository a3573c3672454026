// The calls the runtime makes on its group consumer, behind an interface so
// that the logic deciding them (where to resume after a rewind, what to
// commit) has unit tests without a broker, as Kafka Streams tests its task
// manager with a MockConsumer.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "kafka/handles.h"

namespace rill::kafka {

// A partition of a topic, with an offset or the error a request gave it.
struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = RD_KAFKA_OFFSET_INVALID;
  rd_kafka_resp_err_t error = RD_KAFKA_RESP_ERR_NO_ERROR;

  std::string to_string() const { return topic + "[" + std::to_string(partition) + "]"; }
};

class Consumer {
 public:
  virtual ~Consumer() = default;
  // The offsets the group committed for `partitions`: each comes back with its
  // offset (negative: nothing committed) or its own error. Throws Error when
  // the group coordinator does not answer within `timeout`.
  virtual std::vector<TopicPartition> committed(std::vector<TopicPartition> partitions,
                                                std::chrono::milliseconds timeout) = 0;
  // Moves the fetch position of assigned partitions, waiting until the
  // client's fetcher has it (a local change); each comes back with its own
  // error, if any. Throws Error when the request fails as a whole.
  virtual std::vector<TopicPartition> seek(std::vector<TopicPartition> positions) = 0;
  // Commits `offsets` to the group and waits for the coordinator's answer.
  // Throws Error when it refuses or does not answer.
  virtual void commit(const std::vector<TopicPartition>& offsets) = 0;
  // The fetch positions of assigned partitions (the offset after the last
  // record handed on, past any transaction marker), each with its own error.
  virtual std::vector<TopicPartition> position(std::vector<TopicPartition> partitions) = 0;
};

// The Consumer of a librdkafka consumer handle, which it does not own.
std::unique_ptr<Consumer> consumer_of(rd_kafka_t* handle);

// Between TopicPartition values and librdkafka's lists, offsets and errors
// included.
PartitionListPtr to_list(const std::vector<TopicPartition>& partitions);
std::vector<TopicPartition> from_list(const rd_kafka_topic_partition_list_t& list);

}  // namespace rill::kafka
