#include "kafka/producer.h"

#include "kafka/handles.h"

namespace rill::kafka {

std::optional<std::string> fatal_error(rd_kafka_t* producer) {
  char reason[512];
  if (rd_kafka_fatal_error(producer, reason, sizeof reason) == RD_KAFKA_RESP_ERR_NO_ERROR)
    return std::nullopt;
  return std::string(reason);
}
namespace {

// Takes ownership of `error`.
TransactionResult result_of(rd_kafka_error_t* error) {
  if (error == nullptr) return std::nullopt;
  TransactionError failed{rd_kafka_error_string(error), rd_kafka_error_is_retriable(error) != 0,
                          rd_kafka_error_is_fatal(error) != 0};
  rd_kafka_error_destroy(error);
  return failed;
}

class LibrdkafkaTransactionalProducer final : public TransactionalProducer {
 public:
  LibrdkafkaTransactionalProducer(rd_kafka_t* producer, rd_kafka_t* group_consumer)
      : producer_(producer), group_consumer_(group_consumer) {}

  TransactionResult init_transactions(std::chrono::milliseconds timeout) override {
    return result_of(rd_kafka_init_transactions(producer_, static_cast<int>(timeout.count())));
  }
  TransactionResult begin_transaction() override {
    return result_of(rd_kafka_begin_transaction(producer_));
  }
  TransactionResult send_offsets_to_transaction(
      const std::vector<TopicPartition>& offsets) override {
    PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
    for (const TopicPartition& tp : offsets)
      rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset =
          tp.offset;
    rd_kafka_consumer_group_metadata_t* group = rd_kafka_consumer_group_metadata(group_consumer_);
    TransactionResult result =
        result_of(rd_kafka_send_offsets_to_transaction(producer_, list.get(), group, -1));
    rd_kafka_consumer_group_metadata_destroy(group);
    return result;
  }
  TransactionResult commit_transaction() override {
    return result_of(rd_kafka_commit_transaction(producer_, -1));
  }
  TransactionResult abort_transaction(std::chrono::milliseconds timeout) override {
    return result_of(rd_kafka_abort_transaction(producer_, static_cast<int>(timeout.count())));
  }

 private:
  rd_kafka_t* producer_;
  rd_kafka_t* group_consumer_;
};

}  // namespace

std::unique_ptr<TransactionalProducer> transactional_producer_of(rd_kafka_t* producer,
                                                                 rd_kafka_t* group_consumer) {
  return std::make_unique<LibrdkafkaTransactionalProducer>(producer, group_consumer);
}

}  // namespace rill::kafka
