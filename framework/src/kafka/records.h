// Fetched records and the queues they wait in. Inline, because every record
// of every task passes through these calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <librdkafka/rdkafka.h>

#include "kafka/handles.h"

namespace rill::kafka {

// librdkafka's text for an error code.
inline const char* describe(rd_kafka_resp_err_t err) {
  return rd_kafka_err2str(err);
}

// Views of a fetched record's fields, valid while the message lives. A null
// key or value has a null data().
inline std::string_view key_of(const rd_kafka_message_t& message) {
  return {static_cast<const char*>(message.key), message.key_len};
}
inline std::string_view value_of(const rd_kafka_message_t& message) {
  return {static_cast<const char*>(message.payload), message.len};
}
inline int64_t timestamp_of(const rd_kafka_message_t& message) {
  return rd_kafka_message_timestamp(&message, nullptr);
}
inline const char* topic_of(const rd_kafka_message_t& message) {
  return rd_kafka_topic_name(message.rkt);
}
// The error a message carries instead of a record (end of partition, a fetch
// or consumer error), with librdkafka's text.
inline std::string error_of(const rd_kafka_message_t& message) {
  return rd_kafka_message_errstr(&message);
}

// A fetched record's headers, or nullptr when it has none. They are parsed
// into the message on first access, hence the cast.
inline const rd_kafka_headers_t* headers_of(const rd_kafka_message_t& message) {
  rd_kafka_headers_t* headers = nullptr;
  if (rd_kafka_message_headers(const_cast<rd_kafka_message_t*>(&message), &headers) !=
      RD_KAFKA_RESP_ERR_NO_ERROR)
    return nullptr;
  return headers;
}

// Calls `each(name, value, size)` for every header, in order; a null header
// value has a null `value`.
template <typename Each>
void for_each_header(const rd_kafka_headers_t* headers, Each&& each) {
  const char* name = nullptr;
  const void* value = nullptr;
  std::size_t size = 0;
  for (std::size_t i = 0;
       rd_kafka_header_get_all(headers, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i)
    each(name, static_cast<const char*>(value), size);
}

// Frees the messages of batch[from, to), taken from a queue and not handed on.
inline void destroy_messages(rd_kafka_message_t** batch, std::size_t from, std::size_t to) {
  for (std::size_t i = from; i < to; ++i) rd_kafka_message_destroy(batch[i]);
}

// A queue of fetched records and events, owned: a consumer's own queue, or
// one partition's queue taken out of it.
class MessageQueue {
 public:
  // Called on a librdkafka thread when messages arrive in an empty queue. It
  // runs under the queue's lock: it must be quick and must not call
  // librdkafka.
  using ArrivalCallback = void (*)(rd_kafka_t*, void* opaque);

  // The queue of the consumer's group and assigned partitions, where
  // rebalances, errors and (unless taken out) records arrive.
  static MessageQueue of_consumer(rd_kafka_t* consumer) {
    return MessageQueue(rd_kafka_queue_get_consumer(consumer));
  }
  // The queue of one partition, no longer forwarded to the consumer's queue:
  // its records wait here until taken.
  static MessageQueue of_partition(rd_kafka_t* consumer, const std::string& topic,
                                   int32_t partition) {
    MessageQueue queue(rd_kafka_queue_get_partition(consumer, topic.c_str(), partition));
    rd_kafka_queue_forward(queue.queue_.get(), nullptr);
    return queue;
  }

  // Runs `callback` with `opaque` whenever messages arrive in the empty queue;
  // nullptr stops it, after which none is running.
  void on_arrival(ArrivalCallback callback, void* opaque) {
    rd_kafka_queue_cb_event_enable(queue_.get(), callback, opaque);
  }
  // Moves up to `capacity` messages into `batch`, waiting up to `timeout_ms`
  // for the first; the caller owns them. Returns how many.
  std::size_t take(rd_kafka_message_t** batch, std::size_t capacity, int timeout_ms) {
    // librdkafka's batch call waits until the batch is full or the timeout
    // has passed: records that arrived would wait out the timeout. So wait
    // for one, then take what else is there.
    std::size_t taken = take_now(batch, capacity);
    if (taken > 0 || timeout_ms == 0 || capacity == 0) return taken;
    if (rd_kafka_consume_batch_queue(queue_.get(), timeout_ms, batch, 1) != 1) return 0;
    return 1 + take_now(batch + 1, capacity - 1);
  }
  std::size_t length() const { return rd_kafka_queue_length(queue_.get()); }
  // Wakes a thread waiting in take().
  void wake() { rd_kafka_queue_yield(queue_.get()); }

 private:
  explicit MessageQueue(rd_kafka_queue_t* queue) : queue_(queue) {}
  std::size_t take_now(rd_kafka_message_t** batch, std::size_t capacity) {
    const ssize_t taken = rd_kafka_consume_batch_queue(queue_.get(), 0, batch, capacity);
    return taken > 0 ? static_cast<std::size_t>(taken) : 0;
  }
  QueuePtr queue_;
};

}  // namespace rill::kafka
