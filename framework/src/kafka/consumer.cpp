#include "kafka/consumer.h"

#include "kafka/handles.h"

namespace rill::kafka {
namespace {

class LibrdkafkaConsumer final : public Consumer {
 public:
  explicit LibrdkafkaConsumer(rd_kafka_t* handle) : handle_(handle) {}

  std::vector<TopicPartition> committed(std::vector<TopicPartition> partitions,
                                        std::chrono::milliseconds timeout) override {
    for (TopicPartition& tp : partitions) tp.offset = RD_KAFKA_OFFSET_INVALID;
    PartitionListPtr list = to_list(partitions);
    if (rd_kafka_resp_err_t err =
            rd_kafka_committed(handle_, list.get(), static_cast<int>(timeout.count()));
        err != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw Error(err, "cannot read the committed offsets");
    return from_list(*list);
  }

  std::vector<TopicPartition> seek(std::vector<TopicPartition> positions) override {
    PartitionListPtr list = to_list(positions);
    // No timeout: a seek only changes the client's fetcher state, which takes
    // microseconds. librdkafka 2.0.2 reads the timeout as microseconds (fixed
    // in 2.1.0), so a finite one gave up after a thousandth of it, reported
    // a failure, and left the seek to happen later anyway.
    if (rd_kafka_error_t* error = rd_kafka_seek_partitions(handle_, list.get(), -1)) {
      const rd_kafka_resp_err_t code = rd_kafka_error_code(error);
      rd_kafka_error_destroy(error);
      throw Error(code, "cannot seek to the committed offsets");
    }
    return from_list(*list);
  }

  void commit(const std::vector<TopicPartition>& offsets) override {
    PartitionListPtr list = to_list(offsets);
    if (rd_kafka_resp_err_t err = rd_kafka_commit(handle_, list.get(), 0))
      throw Error(err, "committing offsets failed");
  }

  std::vector<TopicPartition> position(std::vector<TopicPartition> partitions) override {
    PartitionListPtr list = to_list(partitions);
    if (rd_kafka_resp_err_t err = rd_kafka_position(handle_, list.get()))
      throw Error(err, "cannot read the fetch positions");
    return from_list(*list);
  }

 private:
  rd_kafka_t* handle_;
};

}  // namespace

PartitionListPtr to_list(const std::vector<TopicPartition>& partitions) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const TopicPartition& tp : partitions)
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset =
        tp.offset;
  return list;
}

std::vector<TopicPartition> from_list(const rd_kafka_topic_partition_list_t& list) {
  std::vector<TopicPartition> partitions;
  partitions.reserve(static_cast<std::size_t>(list.cnt));
  for (int i = 0; i < list.cnt; ++i)
    partitions.push_back(
        {list.elems[i].topic, list.elems[i].partition, list.elems[i].offset, list.elems[i].err});
  return partitions;
}

std::unique_ptr<Consumer> consumer_of(rd_kafka_t* handle) {
  return std::make_unique<LibrdkafkaConsumer>(handle);
}

}  // namespace rill::kafka
