// The transactional calls of the runtime's producer, behind an interface so
// that what the runtime makes of their outcomes has unit tests without a
// broker.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "kafka/consumer.h"

namespace rill::kafka {

struct HeadersDeleter {
  void operator()(rd_kafka_headers_t* headers) const { rd_kafka_headers_destroy(headers); }
};
using HeadersPtr = std::unique_ptr<rd_kafka_headers_t, HeadersDeleter>;

// Headers for one record to produce; a null `value` is a null header value.
inline HeadersPtr make_headers(std::size_t count) {
  return HeadersPtr(rd_kafka_headers_new(count));
}
inline void add_header(rd_kafka_headers_t* headers, std::string_view name, const char* value,
                       std::size_t size) {
  rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value,
                      static_cast<ssize_t>(size));
}

inline const char* topic_name(const rd_kafka_topic_t* topic) {
  return rd_kafka_topic_name(topic);
}

// Queues a record: `key` and `value` are copied, a null data() is a null key
// or value; partition -1 leaves the choice to the partitioner. `opaque` comes
// back with the delivery report. While the producer's queue is full it serves
// delivery reports and tries again, which is the backpressure from a slow
// broker. Returns the error that refused the record, or nullptr; `headers` is
// taken only when the record is queued.
inline ErrorPtr produce(rd_kafka_t* producer, rd_kafka_topic_t* topic, int32_t partition,
                        std::string_view key, std::string_view value, int64_t timestamp,
                        HeadersPtr& headers, void* opaque) {
  rd_kafka_vu_t fields[8];
  fields[0].vtype = RD_KAFKA_VTYPE_RKT;
  fields[0].u.rkt = topic;
  fields[1].vtype = RD_KAFKA_VTYPE_PARTITION;
  fields[1].u.i32 = partition < 0 ? RD_KAFKA_PARTITION_UA : partition;
  fields[2].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
  fields[2].u.i = RD_KAFKA_MSG_F_COPY;
  fields[3].vtype = RD_KAFKA_VTYPE_KEY;
  fields[3].u.mem = {const_cast<char*>(key.data()), key.size()};
  fields[4].vtype = RD_KAFKA_VTYPE_VALUE;
  fields[4].u.mem = {const_cast<char*>(value.data()), value.size()};
  fields[5].vtype = RD_KAFKA_VTYPE_TIMESTAMP;
  fields[5].u.i64 = timestamp;
  fields[6].vtype = RD_KAFKA_VTYPE_OPAQUE;
  fields[6].u.ptr = opaque;
  fields[7].vtype = RD_KAFKA_VTYPE_HEADERS;
  fields[7].u.headers = headers.get();
  const std::size_t field_count = headers ? 8 : 7;
  while (true) {
    ErrorPtr error(rd_kafka_produceva(producer, fields, field_count));
    if (!error) {
      [[maybe_unused]] rd_kafka_headers_t* taken = headers.release();  // librdkafka owns them now
      return nullptr;
    }
    if (rd_kafka_error_code(error.get()) != RD_KAFKA_RESP_ERR__QUEUE_FULL) return error;
    rd_kafka_poll(producer, 1);
  }
}

// Waits up to `timeout` for every queued record's delivery report; returns
// RD_KAFKA_RESP_ERR__TIMED_OUT when records are still in flight.
inline rd_kafka_resp_err_t flush(rd_kafka_t* producer, std::chrono::milliseconds timeout) {
  return rd_kafka_flush(producer, static_cast<int>(timeout.count()));
}

// Drops every record the producer holds, queued or in flight: none is sent
// from now on (a request already sent may still be written), and each is
// reported with RD_KAFKA_RESP_ERR__PURGE_QUEUE or __PURGE_INFLIGHT.
inline void purge(rd_kafka_t* producer) {
  rd_kafka_purge(producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
}

// The error that made the producer unusable (fenced, idempotence lost), or
// nullopt while it is usable.
std::optional<std::string> fatal_error(rd_kafka_t* producer);

// A transactional call that failed, as librdkafka classifies it.
struct TransactionError {
  std::string message;
  // The same call may succeed when made again.
  bool retriable = false;
  // The producer is unusable: fenced by a newer one with its transactional.id,
  // or its transaction state lost. Only a new producer goes on.
  bool fatal = false;
};
// std::nullopt: the call succeeded.
using TransactionResult = std::optional<TransactionError>;

class TransactionalProducer {
 public:
  virtual ~TransactionalProducer() = default;
  virtual TransactionResult init_transactions(std::chrono::milliseconds timeout) = 0;
  virtual TransactionResult begin_transaction() = 0;
  // Adds the group consumer's `offsets` to the open transaction.
  virtual TransactionResult send_offsets_to_transaction(
      const std::vector<TopicPartition>& offsets) = 0;
  virtual TransactionResult commit_transaction() = 0;
  virtual TransactionResult abort_transaction(std::chrono::milliseconds timeout) = 0;
};

// The TransactionalProducer of a librdkafka producer handle whose offsets
// are those of `group_consumer`'s group; it owns neither.
std::unique_ptr<TransactionalProducer> transactional_producer_of(rd_kafka_t* producer,
                                                                 rd_kafka_t* group_consumer);

}  // namespace rill::kafka
