#include "kafka/admin.h"

#include <memory>
#include <stdexcept>

#include "kafka/handles.h"

namespace rill::kafka {
namespace {

// The one result event of an admin request, or nullptr after `timeout`.
EventPtr await_result(rd_kafka_queue_t* queue, std::chrono::milliseconds timeout) {
  return EventPtr(rd_kafka_queue_poll(queue, static_cast<int>(timeout.count())));
}

}  // namespace

std::map<std::string, int32_t> topic_partitions(rd_kafka_t* rk, std::chrono::milliseconds timeout) {
  const MetadataPtr metadata = all_topics(rk, timeout);
  std::map<std::string, int32_t> topics;
  for (int i = 0; i < metadata->topic_cnt; ++i)
    if (metadata->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
        metadata->topics[i].partition_cnt > 0)
      topics[metadata->topics[i].topic] = metadata->topics[i].partition_cnt;
  return topics;
}

std::vector<std::string> under_replicated_partitions(rd_kafka_t* rk,
                                                     std::chrono::milliseconds timeout) {
  const MetadataPtr metadata = all_topics(rk, timeout);
  std::vector<std::string> lagging;
  for (int i = 0; i < metadata->topic_cnt; ++i) {
    const rd_kafka_metadata_topic_t& topic = metadata->topics[i];
    for (int p = 0; p < topic.partition_cnt; ++p) {
      const rd_kafka_metadata_partition_t& partition = topic.partitions[p];
      if (partition.isr_cnt < partition.replica_cnt)
        lagging.push_back(std::string(topic.topic) + " [" + std::to_string(partition.id) +
                          "]: " + std::to_string(partition.isr_cnt) + " of " +
                          std::to_string(partition.replica_cnt) + " replicas in sync");
    }
  }
  return lagging;
}

void create_topics(rd_kafka_t* rk, const std::vector<NewTopic>& topics,
                   std::chrono::milliseconds timeout) {
  if (topics.empty()) return;
  std::vector<rd_kafka_NewTopic_t*> requests;
  char error[512];
  for (const auto& topic : topics) {
    rd_kafka_NewTopic_t* request = rd_kafka_NewTopic_new(
        topic.name.c_str(), topic.partitions, topic.replication_factor, error, sizeof error);
    if (request == nullptr)
      throw std::runtime_error("cannot create topic '" + topic.name + "': " + error);
    for (const auto& [key, value] : topic.configs)
      rd_kafka_NewTopic_set_config(request, key.c_str(), value.c_str());
    requests.push_back(request);
  }
  QueuePtr queue(rd_kafka_queue_new(rk));
  rd_kafka_AdminOptions_t* options = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_AdminOptions_set_operation_timeout(options, static_cast<int>(timeout.count()), error,
                                              sizeof error);
  rd_kafka_CreateTopics(rk, requests.data(), requests.size(), options, queue.get());
  rd_kafka_event_t* event =
      rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count()) + 5000);
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_NewTopic_destroy_array(requests.data(), requests.size());
  if (event == nullptr) throw std::runtime_error("creating topics timed out");
  std::string failure;
  if (rd_kafka_event_error(event) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    failure = std::string("creating topics failed: ") + rd_kafka_event_error_string(event);
  } else {
    size_t count = 0;
    const rd_kafka_topic_result_t** results =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(event), &count);
    for (size_t i = 0; i < count && failure.empty(); ++i) {
      rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        failure = std::string("cannot create topic '") + rd_kafka_topic_result_name(results[i]) +
                  "': " + rd_kafka_topic_result_error_string(results[i]);
    }
  }
  rd_kafka_event_destroy(event);
  if (!failure.empty()) throw std::runtime_error(failure);
}

void delete_topics(rd_kafka_t* rk, const std::vector<std::string>& topics,
                   std::chrono::milliseconds timeout) {
  if (topics.empty()) return;
  std::vector<rd_kafka_DeleteTopic_t*> requests;
  for (const std::string& topic : topics)
    requests.push_back(rd_kafka_DeleteTopic_new(topic.c_str()));
  QueuePtr queue(rd_kafka_queue_new(rk));
  rd_kafka_DeleteTopics(rk, requests.data(), requests.size(), nullptr, queue.get());
  EventPtr event = await_result(queue.get(), timeout);
  rd_kafka_DeleteTopic_destroy_array(requests.data(), requests.size());
  if (!event) throw Error(RD_KAFKA_RESP_ERR__TIMED_OUT, "deleting topics");
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw Error(rd_kafka_event_error(event.get()), "deleting topics");
  std::size_t count = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(event.get()), &count);
  for (std::size_t i = 0; i < count; ++i) {
    const rd_kafka_resp_err_t err = rd_kafka_topic_result_error(results[i]);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
      throw Error(
          err, std::string("cannot delete topic '") + rd_kafka_topic_result_name(results[i]) + "'");
  }
}

std::map<std::string, std::string> topic_configs(rd_kafka_t* rk, const std::string& topic,
                                                 std::chrono::milliseconds timeout) {
  rd_kafka_ConfigResource_t* resource =
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  QueuePtr queue(rd_kafka_queue_new(rk));
  rd_kafka_DescribeConfigs(rk, &resource, 1, nullptr, queue.get());
  EventPtr event = await_result(queue.get(), timeout);
  rd_kafka_ConfigResource_destroy(resource);
  const std::string what = "describing the configs of topic '" + topic + "'";
  if (!event) throw Error(RD_KAFKA_RESP_ERR__TIMED_OUT, what);
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw Error(rd_kafka_event_error(event.get()), what);
  std::size_t resource_count = 0;
  const rd_kafka_ConfigResource_t** resources = rd_kafka_DescribeConfigs_result_resources(
      rd_kafka_event_DescribeConfigs_result(event.get()), &resource_count);
  if (resource_count != 1) throw Error(RD_KAFKA_RESP_ERR__BAD_MSG, what);
  if (rd_kafka_resp_err_t err = rd_kafka_ConfigResource_error(resources[0])) throw Error(err, what);
  std::map<std::string, std::string> configs;
  std::size_t entry_count = 0;
  const rd_kafka_ConfigEntry_t** entries =
      rd_kafka_ConfigResource_configs(resources[0], &entry_count);
  for (std::size_t i = 0; i < entry_count; ++i)
    if (rd_kafka_ConfigEntry_source(entries[i]) == RD_KAFKA_CONFIG_SOURCE_DYNAMIC_TOPIC_CONFIG &&
        rd_kafka_ConfigEntry_value(entries[i]) != nullptr)
      configs[rd_kafka_ConfigEntry_name(entries[i])] = rd_kafka_ConfigEntry_value(entries[i]);
  return configs;
}

RecordDeletion::RecordDeletion(rd_kafka_t* rk) : rk_(rk), queue_(rd_kafka_queue_new(rk)) {}

bool RecordDeletion::start(const std::vector<TopicPartition>& below,
                           std::chrono::milliseconds timeout) {
  if (in_flight_ || below.empty()) return false;
  PartitionListPtr offsets = to_list(below);
  rd_kafka_DeleteRecords_t* request = rd_kafka_DeleteRecords_new(offsets.get());
  rd_kafka_AdminOptions_t* options =
      rd_kafka_AdminOptions_new(rk_, RD_KAFKA_ADMIN_OP_DELETERECORDS);
  char error[512];
  rd_kafka_AdminOptions_set_request_timeout(options, static_cast<int>(timeout.count()), error,
                                            sizeof error);
  rd_kafka_AdminOptions_set_operation_timeout(options, static_cast<int>(timeout.count()), error,
                                              sizeof error);
  rd_kafka_DeleteRecords(rk_, &request, 1, options, queue_.get());
  rd_kafka_AdminOptions_destroy(options);
  rd_kafka_DeleteRecords_destroy(request);
  requested_ = below;
  in_flight_ = true;
  return true;
}

std::optional<std::vector<TopicPartition>> RecordDeletion::take_answer() {
  if (!in_flight_) return std::nullopt;
  EventPtr event = await_result(queue_.get(), std::chrono::milliseconds(0));
  if (!event) return std::nullopt;
  in_flight_ = false;
  std::vector<TopicPartition> answer = std::move(requested_);
  if (const rd_kafka_resp_err_t err = rd_kafka_event_error(event.get())) {
    for (TopicPartition& tp : answer) tp.error = err;
    return answer;
  }
  const rd_kafka_topic_partition_list_t* offsets =
      rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(event.get()));
  if (offsets == nullptr) {
    for (TopicPartition& tp : answer) tp.error = RD_KAFKA_RESP_ERR__BAD_MSG;
    return answer;
  }
  return from_list(*offsets);
}

}  // namespace rill::kafka
