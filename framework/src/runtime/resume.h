// Where tasks resume when they are created again after a rewind.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kafka/consumer.h"

namespace rill::runtime {

// How far this instance's own commits took each input partition. A group's
// committed offsets only move forward while it has members, so an answer
// below one of these is stale: after a group coordinator was cut off, the
// group answered offsets from before commits whose transactions had
// succeeded, and a task resuming there counted their records again (their
// outputs and state updates were committed). Resuming at the own commit is
// right whoever committed last: a later owner only takes a partition further.
class OwnCommits {
 public:
  void record(const std::string& topic, int32_t partition, int64_t offset) {
    int64_t& known = offsets_[{topic, partition}];
    if (offset > known) known = offset;
  }
  bool knows(const std::string& topic, int32_t partition) const {
    return offsets_.contains({topic, partition});
  }
  // `tp` with its offset raised to this instance's own commit, and a warning
  // in the log when it is.
  kafka::TopicPartition raise(kafka::TopicPartition tp, const std::string& application_id) const;

 private:
  std::map<std::pair<std::string, int32_t>, int64_t> offsets_;
};

// The offsets the group committed for `partitions`, each raised to `own`. A
// partition whose offset cannot be read keeps its error; a partition without
// a commit, an offset below 0. Every reader of committed offsets (a rewind, an
// assignment, an archived partition's first read) goes through here.
std::vector<kafka::TopicPartition> committed_offsets(kafka::Consumer& consumer,
                                                     std::vector<kafka::TopicPartition> partitions,
                                                     std::chrono::milliseconds timeout,
                                                     const OwnCommits& own,
                                                     const std::string& application_id);

// Where each of `partitions` resumes: the offset the group committed for it
// (raised to `own`), or its beginning when the group committed none
// (auto.offset.reset=earliest). Throws when a committed offset cannot be read:
// starting anywhere else would replay input from the beginning or skip it.
// The caller tries again later.
std::vector<kafka::TopicPartition> resume_positions(kafka::Consumer& consumer,
                                                    std::vector<kafka::TopicPartition> partitions,
                                                    std::chrono::milliseconds timeout,
                                                    const OwnCommits& own,
                                                    const std::string& application_id);

// Seeks to `positions`; throws naming the first partition a seek failed for.
void seek_to(kafka::Consumer& consumer, const std::vector<kafka::TopicPartition>& positions);

}  // namespace rill::runtime
