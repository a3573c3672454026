// RAII ownership of librdkafka handles, and client configuration with errors
// that name the offending property.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <librdkafka/rdkafka.h>

namespace rill::kafka {

struct KafkaDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
};
struct ConfDeleter {
  void operator()(rd_kafka_conf_t* conf) const { rd_kafka_conf_destroy(conf); }
};
struct TopicDeleter {
  void operator()(rd_kafka_topic_t* rkt) const { rd_kafka_topic_destroy(rkt); }
};
struct MessageDeleter {
  void operator()(rd_kafka_message_t* message) const { rd_kafka_message_destroy(message); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* queue) const { rd_kafka_queue_destroy(queue); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* event) const { rd_kafka_event_destroy(event); }
};
struct ErrorDeleter {
  void operator()(rd_kafka_error_t* error) const { rd_kafka_error_destroy(error); }
};
struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* list) const {
    rd_kafka_topic_partition_list_destroy(list);
  }
};

using KafkaPtr = std::unique_ptr<rd_kafka_t, KafkaDeleter>;
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;
using ErrorPtr = std::unique_ptr<rd_kafka_error_t, ErrorDeleter>;

// A client request that failed as a whole, with librdkafka's code.
class Error : public std::runtime_error {
 public:
  Error(rd_kafka_resp_err_t code, const std::string& what)
      : std::runtime_error(what + ": " + rd_kafka_err2str(code)), code_(code) {}
  Error(const ErrorPtr& error, const std::string& what)
      : std::runtime_error(what + ": " + rd_kafka_error_string(error.get())),
        code_(rd_kafka_error_code(error.get())) {}
  rd_kafka_resp_err_t code() const { return code_; }

 private:
  rd_kafka_resp_err_t code_;
};

// A librdkafka configuration from properties; throws ConfigError naming the
// property librdkafka rejects.
ConfPtr make_conf(const std::map<std::string, std::string>& properties);

// Whether librdkafka knows `property` and takes `value` for it; when it does
// not, `reason` gets librdkafka's words, which may quote the value.
enum class PropertyCheck { kAccepted, kUnknown, kInvalid };
PropertyCheck check_property(const std::string& property, const std::string& value,
                             std::string& reason);

// Creates a client; throws ConfigError with librdkafka's reason.
KafkaPtr make_client(rd_kafka_type_t type, ConfPtr conf);

// Callbacks a client's configuration carries; they run on librdkafka's
// threads, or in serve() for the delivery reports, with the configuration's
// opaque.
using LogCallback = void (*)(const rd_kafka_t*, int level, const char* facility,
                             const char* message);
using StatisticsCallback = int (*)(rd_kafka_t*, char* json, std::size_t size, void* opaque);
using DeliveryCallback = void (*)(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque);
using RebalanceCallback = void (*)(rd_kafka_t*, rd_kafka_resp_err_t,
                                   rd_kafka_topic_partition_list_t* partitions, void* opaque);
inline void set_opaque(rd_kafka_conf_t* conf, void* opaque) {
  rd_kafka_conf_set_opaque(conf, opaque);
}
inline void on_log(rd_kafka_conf_t* conf, LogCallback callback) {
  rd_kafka_conf_set_log_cb(conf, callback);
}
inline void on_statistics(rd_kafka_conf_t* conf, StatisticsCallback callback) {
  rd_kafka_conf_set_stats_cb(conf, callback);
}
inline void on_delivery(rd_kafka_conf_t* conf, DeliveryCallback callback) {
  rd_kafka_conf_set_dr_msg_cb(conf, callback);
}
inline void on_rebalance(rd_kafka_conf_t* conf, RebalanceCallback callback) {
  rd_kafka_conf_set_rebalance_cb(conf, callback);
}

// Serves the client's queued callbacks (delivery reports, statistics),
// waiting up to `timeout_ms` for one.
inline void serve(rd_kafka_t* rk, int timeout_ms) {
  rd_kafka_poll(rk, timeout_ms);
}

// A handle on `topic`, for producing to it; a consumer holding one keeps the
// topic's metadata current with its subscription's. Throws Error.
TopicPtr open_topic(rd_kafka_t* rk, const std::string& topic);

// Partition count of a topic, or nullopt when it does not exist. Throws
// std::runtime_error when the broker cannot be reached in time.
std::optional<int32_t> partition_count(rd_kafka_t* rk, const std::string& topic,
                                       std::chrono::milliseconds timeout);

struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* metadata) const {
    rd_kafka_metadata_destroy(metadata);
  }
};
using MetadataPtr = std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter>;

// The metadata of every topic on the cluster. Asking for all topics rather
// than naming them keeps any broker from auto-creating one by being asked.
// Asked of a group's consumer, it also makes librdkafka 2.0.2 check the
// group's subscription again: it checks one only against an answer that
// lists every topic, or against its own periodic refresh
// (topic.metadata.refresh.interval.ms). Throws std::runtime_error.
MetadataPtr all_topics(rd_kafka_t* rk, std::chrono::milliseconds timeout);

// Whether an error is transient (a leader moving, a topic just created, a
// broker briefly unreachable), so the same request may succeed when retried.
bool is_retriable(rd_kafka_resp_err_t err);

// Whether an error says the producer lost its idempotence or transaction
// state (a sequence gap, an unknown producer id, an epoch fenced or bumped):
// every record in flight is in doubt, and the producer may have to be
// replaced.
bool is_producer_state_error(rd_kafka_resp_err_t err);

// The low and high watermarks of each partition, in order, retrying
// transient errors for up to `timeout` per partition; throws
// std::runtime_error naming the partition otherwise. Under read_committed the
// high watermark is the last stable offset. One query to a leader that died
// waits up to the client's socket.timeout.ms, whatever `timeout` says
// (librdkafka 2.0.2).
std::vector<std::pair<int64_t, int64_t>> watermarks(
    rd_kafka_t* rk, const std::vector<std::pair<std::string, int32_t>>& partitions,
    std::chrono::milliseconds timeout);

// For each partition, the first offset whose record's timestamp is
// `timestamp_ms` or later, in order; the high watermark where no record is
// that late. Throws Error when a leader refuses or does not answer within
// `timeout`. Not for the fault-tolerant runtime (see watermarks): a tool's
// call on a healthy cluster.
std::vector<int64_t> offsets_for_time(
    rd_kafka_t* rk, const std::vector<std::pair<std::string, int32_t>>& partitions,
    int64_t timestamp_ms, std::chrono::milliseconds timeout);

}  // namespace rill::kafka
