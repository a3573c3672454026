#include "runtime/resume.h"

#include <stdexcept>
#include <string>

#include "kafka/records.h"

namespace rill::runtime {

std::vector<kafka::TopicPartition> seek_to_committed(kafka::Consumer& consumer,
                                                     std::vector<kafka::TopicPartition> partitions,
                                                     std::chrono::milliseconds timeout) {
  if (partitions.empty()) return partitions;
  std::vector<kafka::TopicPartition> positions = consumer.committed(std::move(partitions), timeout);
  for (kafka::TopicPartition& tp : positions) {
    if (tp.error != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw std::runtime_error("cannot read the committed offset of " + tp.to_string() + ": " +
                               kafka::describe(tp.error));
    if (tp.offset < 0) tp.offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  for (const kafka::TopicPartition& tp : consumer.seek(positions))
    if (tp.error != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw std::runtime_error("cannot seek " + tp.to_string() + ": " + kafka::describe(tp.error));
  return positions;
}

}  // namespace rill::runtime
