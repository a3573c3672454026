// librdkafka for the benchmark programs (the generator, the raw pass-through
// and the tool): rill's handles and client calls (kafka/handles.h), and a
// produce call that copies.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "kafka/handles.h"

namespace bench::kafka {

constexpr std::chrono::milliseconds kMetadataTimeout{10'000};

// The partition count of `topic`; throws when it does not exist.
inline int existing_partitions(rd_kafka_t* rk, const std::string& topic) {
  const auto count = rill::kafka::partition_count(rk, topic, kMetadataTimeout);
  if (!count) throw std::runtime_error("topic '" + topic + "' does not exist");
  return *count;
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

}  // namespace bench::kafka
