// `rill archive`: copies a topic's records into its archive, and checks an
// archive against the topic.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "archive/archive.h"

namespace rill::archive {

struct ArchiveRequest {
  std::string topic;
  // librdkafka settings of the consumer: bootstrap.servers, security...
  std::map<std::string, std::string> consumer_properties;
  // Archive records below this offset of each partition (default: all the
  // topic holds now)...
  std::optional<int64_t> until_offset;
  // ...or up to the last record at or before this time.
  std::optional<int64_t> until_ms;
  // A segment closes once its records' keys and values reach this size.
  std::size_t segment_bytes = 16 << 20;
  std::chrono::milliseconds timeout{30'000};
  // Called after each segment, and once a partition is done.
  std::function<void(int32_t partition, uint64_t records_done, uint64_t records_total)> progress;
};

struct PartitionArchived {
  int32_t partition = 0;
  int64_t from = 0;  // the range archived by this run: [from, to)
  int64_t to = 0;
  uint64_t records = 0;
  uint64_t segments = 0;
};

// Appends to each partition's archive the records after its end (or from the
// partition's first record when nothing is archived yet) up to the request's
// end. Throws std::runtime_error when the topic no longer holds the records
// after the archive's end (retention deleted them first): the archive would
// have a gap.
std::vector<PartitionArchived> archive_topic(Archive& archive, const ArchiveRequest& request);

struct PartitionVerified {
  int32_t partition = 0;
  uint64_t segments = 0;
  // Records compared one by one with the topic's, and records the topic no
  // longer holds, checked against their segment's checksum only.
  uint64_t compared = 0;
  uint64_t checksum_only = 0;
  // What does not match, each naming the object and the offset; empty when
  // the archive is sound.
  std::vector<std::string> problems;
};

// Downloads every segment (checking its checksum and record count) and
// compares each archived record the topic still holds with the topic's.
std::vector<PartitionVerified> verify_archive(const Archive& archive,
                                              const ArchiveRequest& request);

}  // namespace rill::archive
