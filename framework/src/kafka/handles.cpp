#include "kafka/handles.h"

#include <algorithm>
#include <stdexcept>
#include <thread>

#include "rill/config.h"

namespace rill::kafka {

ConfPtr make_conf(const std::map<std::string, std::string>& properties) {
  ConfPtr conf(rd_kafka_conf_new());
  char error[512];
  for (const auto& [key, value] : properties) {
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), error, sizeof error) !=
        RD_KAFKA_CONF_OK)
      // librdkafka's message may quote the value.
      throw ConfigError("librdkafka property '" + key +
                        "': " + (is_secret_key(key) ? "invalid value" : std::string(error)));
  }
  return conf;
}

PropertyCheck check_property(const std::string& property, const std::string& value,
                             std::string& reason) {
  ConfPtr conf(rd_kafka_conf_new());
  char error[512] = {0};
  switch (rd_kafka_conf_set(conf.get(), property.c_str(), value.c_str(), error, sizeof error)) {
    case RD_KAFKA_CONF_OK:
      return PropertyCheck::kAccepted;
    case RD_KAFKA_CONF_UNKNOWN:
      reason = error;
      return PropertyCheck::kUnknown;
    case RD_KAFKA_CONF_INVALID:
      break;
  }
  reason = error;
  return PropertyCheck::kInvalid;
}

KafkaPtr make_client(rd_kafka_type_t type, ConfPtr conf) {
  char error[512];
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), error, sizeof error);
  if (rk == nullptr) throw ConfigError(std::string("cannot create Kafka client: ") + error);
  conf.release();  // rd_kafka_new took ownership.
  return KafkaPtr(rk);
}

TopicPtr open_topic(rd_kafka_t* rk, const std::string& topic) {
  TopicPtr handle(rd_kafka_topic_new(rk, topic.c_str(), nullptr));
  if (!handle) throw Error(rd_kafka_last_error(), "cannot open topic '" + topic + "'");
  return handle;
}

std::optional<int32_t> partition_count(rd_kafka_t* rk, const std::string& topic,
                                       std::chrono::milliseconds timeout) {
  TopicPtr handle(rd_kafka_topic_new(rk, topic.c_str(), nullptr));
  const rd_kafka_metadata_t* metadata = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk, 0, handle.get(), &metadata, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error("cannot read metadata of topic '" + topic +
                             "': " + rd_kafka_err2str(err));
  std::optional<int32_t> count;
  if (metadata->topic_cnt == 1 && metadata->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
      metadata->topics[0].partition_cnt > 0)
    count = metadata->topics[0].partition_cnt;
  rd_kafka_metadata_destroy(metadata);
  return count;
}

MetadataPtr all_topics(rd_kafka_t* rk, std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* metadata = nullptr;
  const rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk, 1, nullptr, &metadata, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error(std::string("cannot read the cluster's topics: ") +
                             rd_kafka_err2str(err));
  return MetadataPtr(metadata);
}

bool is_retriable(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    // librdkafka's own verdict from metadata: a broker that restarted, or
    // has not heard of a topic just created, answers without it for a while.
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
    case RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH:
    case RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
    case RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR:
    case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
    case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
    case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS:
      return true;
    default:
      return false;
  }
}

bool is_producer_state_error(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__STATE:
    case RD_KAFKA_RESP_ERR__INCONSISTENT:
    case RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER:
    case RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_ID_MAPPING:
    case RD_KAFKA_RESP_ERR_INVALID_TXN_STATE:
      return true;
    default:
      return false;
  }
}

std::vector<std::pair<int64_t, int64_t>> watermarks(
    rd_kafka_t* rk, const std::vector<std::pair<std::string, int32_t>>& partitions,
    std::chrono::milliseconds timeout) {
  using Clock = std::chrono::steady_clock;
  // One partition at a time: librdkafka 2.0.2's rd_kafka_offsets_for_times,
  // which asks each leader once for many partitions, reports a partition's
  // first answer even when its retry to a moved leader succeeded, so after a
  // leader moves it says "not leader" for as long as that broker is down.
  std::vector<std::pair<int64_t, int64_t>> result(partitions.size());
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    const auto& [topic, partition] = partitions[i];
    const auto deadline = Clock::now() + timeout;
    auto backoff = std::chrono::milliseconds(50);
    while (true) {
      int64_t low = 0, high = 0;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      const rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
          rk, topic.c_str(), partition, &low, &high,
          static_cast<int>(std::clamp<int64_t>(left.count(), 1, 5000)));
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        result[i] = {low, high};
        break;
      }
      if (!is_retriable(err) || Clock::now() + backoff >= deadline)
        throw Error(err,
                    "cannot read the offsets of " + topic + "[" + std::to_string(partition) + "]");
      // librdkafka 2.0.2 does not learn a new leader from this refusal: a
      // client that only asks for offsets, and fetches nothing, would ask
      // the old leader until its next periodic metadata refresh (5 minutes).
      // Asking for the topic's metadata updates its leaders.
      if (err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
          err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
          err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        try {
          partition_count(rk, topic, std::max(left, std::chrono::milliseconds(100)));
        } catch (const std::runtime_error&) {
          // Asked again at the next attempt.
        }
      }
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
    }
  }
  return result;
}

std::vector<int64_t> offsets_for_time(
    rd_kafka_t* rk, const std::vector<std::pair<std::string, int32_t>>& partitions,
    int64_t timestamp_ms, std::chrono::milliseconds timeout) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(partitions.size())));
  for (const auto& [topic, partition] : partitions)
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), partition)->offset = timestamp_ms;
  if (const rd_kafka_resp_err_t err =
          rd_kafka_offsets_for_times(rk, list.get(), static_cast<int>(timeout.count())))
    throw Error(err, "cannot look up offsets by time");
  std::vector<int64_t> offsets;
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& found = list->elems[i];
    if (found.err != RD_KAFKA_RESP_ERR_NO_ERROR)
      throw Error(found.err, std::string("cannot look up offsets by time in ") + found.topic + "[" +
                                 std::to_string(found.partition) + "]");
    offsets.push_back(found.offset);
  }
  // No record that late: the end, as the broker says with offset -1.
  for (std::size_t i = 0; i < offsets.size(); ++i)
    if (offsets[i] < 0) offsets[i] = watermarks(rk, {partitions[i]}, timeout).front().second;
  return offsets;
}

}  // namespace rill::kafka
