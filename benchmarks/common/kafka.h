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

#include "kafka/admin.h"
#include "kafka/group.h"
#include "kafka/handles.h"
#include "kafka/producer.h"
#include "kafka/records.h"

namespace bench::kafka {

constexpr std::chrono::milliseconds kMetadataTimeout{10'000};

// The partition count of `topic`; throws when it does not exist.
inline int existing_partitions(rd_kafka_t* rk, const std::string& topic) {
  const auto count = rill::kafka::partition_count(rk, topic, kMetadataTimeout);
  if (!count) throw std::runtime_error("topic '" + topic + "' does not exist");
  return *count;
}

}  // namespace bench::kafka
