// Where tasks resume when they are created again after a rewind.
#pragma once

#include <chrono>
#include <vector>

#include "kafka/consumer.h"

namespace rill::runtime {

// Seeks each of `partitions` to the offset the group committed for it, or to
// its beginning when the group committed none (auto.offset.reset=earliest),
// and returns those positions. Throws when a committed offset cannot be read
// (having sought nothing) or a seek fails: starting anywhere else would replay
// input from the beginning or skip it. The caller tries again later.
std::vector<kafka::TopicPartition> seek_to_committed(kafka::Consumer& consumer,
                                                     std::vector<kafka::TopicPartition> partitions,
                                                     std::chrono::milliseconds timeout);

}  // namespace rill::runtime
