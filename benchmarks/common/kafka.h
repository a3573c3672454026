// Thin RAII over librdkafka's C API for the benchmark programs (the
// generator, the raw pass-through and the tool): handles that free
// themselves, configuration whose errors name the property, and the metadata
// and admin calls the harness needs.
#pragma once

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <librdkafka/rdkafka.h>

namespace bench::kafka {

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* queue) const { rd_kafka_queue_destroy(queue); }
};
struct TopicDeleter {
  void operator()(rd_kafka_topic_t* topic) const { rd_kafka_topic_destroy(topic); }
};
struct MessageDeleter {
  void operator()(rd_kafka_message_t* message) const { rd_kafka_message_destroy(message); }
};
struct ListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};

using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;
using ListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, ListDeleter>;

inline ConfPtr make_conf(const std::map<std::string, std::string>& properties) {
  ConfPtr conf(rd_kafka_conf_new());
  char error[512];
  for (const auto& [key, value] : properties)
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), error, sizeof error) !=
        RD_KAFKA_CONF_OK)
      throw std::runtime_error("librdkafka property '" + key + "': " + error);
  return conf;
}

inline KafkaPtr make_client(rd_kafka_type_t type, ConfPtr conf) {
  char error[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), error, sizeof error);
  if (rk == nullptr) throw std::runtime_error(std::string("rd_kafka_new: ") + error);
  conf.release();  // rd_kafka_new owns it now.
  return KafkaPtr(rk);
}

// Sends one record, copied by librdkafka, to the partition the producer's
// partitioner picks; `timestamp` 0 means now. Returns nullptr, or an error the
// caller destroys (RD_KAFKA_RESP_ERR__QUEUE_FULL: poll and try again).
inline rd_kafka_error_t* produce_copy(rd_kafka_t* rk, rd_kafka_topic_t* topic, std::string_view key,
                                      std::string_view value, int64_t timestamp) {
  rd_kafka_vu_t fields[6];
  fields[0].vtype = RD_KAFKA_VTYPE_RKT;
  fields[0].u.rkt = topic;
  fields[1].vtype = RD_KAFKA_VTYPE_PARTITION;
  fields[1].u.i32 = RD_KAFKA_PARTITION_UA;
  fields[2].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  fields[2].u.i = RD_KAFKA_MSG_F_COPY;
  fields[3].vtype = RD_KAFKA_VTYPE_KEY;
  fields[3].u.mem = {const_cast<char*>(key.data()), key.size()};
  fields[4].vtype = RD_KAFKA_VTYPE_VALUE;
  fields[4].u.mem = {const_cast<char*>(value.data()), value.size()};
  fields[5].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
  fields[5].u.i64 = timestamp;
  return rd_kafka_produceva(rk, fields, 6);
}

// Partition count of `topic`, or -1 when it does not exist.
inline int partition_count(rd_kafka_t* rk, const std::string& topic, int timeout_ms = 10'000) {
  TopicPtr handle(rd_kafka_topic_new(rk, topic.c_str(), nullptr));
  const rd_kafka_metadata_t* metadata = nullptr;
  if (rd_kafka_metadata(rk, 0, handle.get(), &metadata, timeout_ms) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return -1;
  int count = -1;
  if (metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
    count = metadata->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(metadata);
  return count;
}

// Creates topics with `partitions` partitions, replication factor 1 and the
// given topic configs; an existing topic is an error.
inline void create_topics(rd_kafka_t* rk, const std::vector<std::string>& topics, int partitions,
                          const std::map<std::string, std::string>& configs,
                          int timeout_ms = 30'000) {
  char error[512];
  std::vector<rd_kafka_NewTopic_t*> requests;
  for (const auto& name : topics) {
    rd_kafka_NewTopic_t* topic =
        rd_kafka_NewTopic_new(name.c_str(), partitions, 1, error, sizeof error);
    if (topic == nullptr) throw std::runtime_error("topic '" + name + "': " + error);
    for (const auto& [key, value] : configs)
      rd_kafka_NewTopic_set_config(topic, key.c_str(), value.c_str());
    requests.push_back(topic);
  }
  QueuePtr queue(rd_kafka_queue_new(rk));
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, timeout_ms, error, sizeof error);
  rd_kafka_CreateTopics(rk, requests.data(), requests.size(), options, queue.get());
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy_array(requests.data(), requests.size());

  rd_kafka_event_t* event = rd_kafka_queue_poll(queue.get(), timeout_ms + 5'000);
  if (event == nullptr) throw std::runtime_error("creating topics timed out");
  std::string failure;
  if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    failure = rd_kafka_event_error_string(event);
  } else {
    const rd_kafka_CreateTopics_result_t* result = rd_kafka_event_CreateTopics_result(event);
    size_t count = 0;
    const rd_kafka_topic_result_t** results = rd_kafka_CreateTopics_result_topics(result, &count);
    for (size_t i = 0; i < count; ++i)
      if (rd_kafka_topic_result_error(results[i]) != RD_KAFKA_RESP_ERR_NO_ERROR)
        failure += std::string(rd_kafka_topic_result_name(results[i])) + ": " +
                   rd_kafka_topic_result_error_string(results[i]) + "; ";
  }
  rd_kafka_event_destroy(event);
  if (!failure.empty()) throw std::runtime_error("creating topics: " + failure);
}

}  // namespace bench::kafka
