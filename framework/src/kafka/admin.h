// Topic management through the admin API: which topics exist, creating and
// deleting them, and the configs set on them.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "kafka/consumer.h"
#include "kafka/handles.h"

namespace rill::kafka {

struct NewTopic {
  std::string name;
  int32_t partitions = 1;
  int32_t replication_factor = -1;
  std::map<std::string, std::string> configs;
};

// Every topic on the cluster with its partition count. Asks for all topics
// rather than naming them, so that no broker auto-creates a topic by being
// asked about it. Throws std::runtime_error when the cluster cannot be reached
// in time.
std::map<std::string, int32_t> topic_partitions(rd_kafka_t* rk, std::chrono::milliseconds timeout);

// The partitions whose in-sync replicas are fewer than their replicas, as
// "topic [partition]: i of r replicas in sync", per the metadata of the broker
// that answers; empty when every replica is in sync. Throws std::runtime_error
// when the cluster cannot be reached in time.
std::vector<std::string> under_replicated_partitions(rd_kafka_t* rk,
                                                     std::chrono::milliseconds timeout);

// Creates topics that do not exist yet (an existing one is fine). Throws
// std::runtime_error naming the topic the broker refused.
void create_topics(rd_kafka_t* rk, const std::vector<NewTopic>& topics,
                   std::chrono::milliseconds timeout);

// Deletes `topics`; one that does not exist is fine. Throws Error naming the
// topic the broker refused, or when it does not answer within `timeout`.
void delete_topics(rd_kafka_t* rk, const std::vector<std::string>& topics,
                   std::chrono::milliseconds timeout);

// The configs set on `topic` itself (not the broker's defaults). Throws Error
// when the broker refuses or does not answer within `timeout`.
std::map<std::string, std::string> topic_configs(rd_kafka_t* rk, const std::string& topic,
                                                 std::chrono::milliseconds timeout);

// Deletes the records of partitions below given offsets (DeleteRecords)
// without blocking the caller, one request at a time: the caller takes the
// answer at a later turn. The cluster answers each partition with its log
// start offset after the deletion, or with its own error.
class RecordDeletion {
 public:
  explicit RecordDeletion(rd_kafka_t* rk);

  // Sends a request to delete every record of each partition below its
  // offset. False, sending nothing, while the previous request has no answer.
  bool start(const std::vector<TopicPartition>& below, std::chrono::milliseconds timeout);
  bool in_flight() const { return in_flight_; }
  // The answer to the request in flight once it came, nullopt before: each
  // partition with its log start offset or its error (the request's error on
  // every partition when it failed as a whole).
  std::optional<std::vector<TopicPartition>> take_answer();

 private:
  rd_kafka_t* rk_;
  QueuePtr queue_;
  std::vector<TopicPartition> requested_;
  bool in_flight_ = false;
};

}  // namespace rill::kafka
