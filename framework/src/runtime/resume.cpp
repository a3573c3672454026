#include "runtime/resume.h"

#include <stdexcept>
#include <string>

#include "kafka/records.h"
#include "log/log.h"

namespace rill::runtime {

kafka::TopicPartition OwnCommits::raise(kafka::TopicPartition tp,
                                        const std::string& application_id) const {
  auto own = offsets_.find({tp.topic, tp.partition});
  if (own == offsets_.end() || own->second <= tp.offset) return tp;
  log::get().warn(
      "{}: the group answers offset {} for {}, below {} where this instance's own commit took "
      "it; resuming at {}",
      application_id, tp.offset < 0 ? std::string("none") : std::to_string(tp.offset),
      tp.to_string(), own->second, own->second);
  tp.offset = own->second;
  return tp;
}

std::vector<kafka::TopicPartition> committed_offsets(kafka::Consumer& consumer,
                                                     std::vector<kafka::TopicPartition> partitions,
                                                     std::chrono::milliseconds timeout,
                                                     const OwnCommits& own,
                                                     const std::string& application_id) {
  std::vector<kafka::TopicPartition> committed = consumer.committed(std::move(partitions), timeout);
  for (kafka::TopicPartition& tp : committed)
    if (tp.error == RD_KAFKA_RESP_ERR_NO_ERROR) tp = own.raise(std::move(tp), application_id);
  return committed;
}

std::vector<kafka::TopicPartition> resume_positions(kafka::Consumer& consumer,
                                                    std::vector<kafka::TopicPartition> partitions,
                                                    std::chrono::milliseconds timeout,
                                                    const OwnCommits& own,
                                                    const std::string& application_id) {
  if (partitions.empty()) return partitions;
  std::vector<kafka::TopicPartition> positions =
      committed_offsets(consumer, std::move(partitions), timeout, own, application_id);
  for (kafka::TopicPartition& tp : positions) {
    if (tp.error != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw std::runtime_error("cannot read the committed offset of " + tp.to_string() + ": " +
                               kafka::describe(tp.error));
    if (tp.offset < 0) tp.offset = RD_KAFKA_OFFSET_BEGINNING;
  }
  return positions;
}

void seek_to(kafka::Consumer& consumer, const std::vector<kafka::TopicPartition>& positions) {
  if (positions.empty()) return;
  for (const kafka::TopicPartition& tp : consumer.seek(positions))
    if (tp.error != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw std::runtime_error("cannot seek " + tp.to_string() + ": " + kafka::describe(tp.error));
}

}  // namespace rill::runtime
