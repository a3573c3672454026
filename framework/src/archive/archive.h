// The archive of a topic's events in an object store, so that a topic whose
// retention removed its old records stays replayable from its first event.
//
// Each partition's records are kept in segments, zstd-compressed files of
// consecutive records with their offsets, timestamps (and timestamp types),
// keys, values and headers exactly as the topic held them. A segment covers
// a range of offsets [start, end): every record the topic held in it, read
// committed (transaction markers and aborted records are not records). The
// partition's index lists its segments with their ranges, record counts,
// timestamps and SHA-256, and is written after them: a segment the index does
// not list does not exist for readers. Objects live under
//
//   <prefix>/<topic>/<partition>/index.json
//   <prefix>/<topic>/<partition>/segments/<start offset, 20 digits>.segment
//
// The ranges of a partition's segments follow each other without a gap, so
// the archive covers [first segment's start, last segment's end).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rill/record.h"

#include "objects/object_store.h"

namespace rill::archive {

struct ArchivedRecord {
  int64_t offset = 0;
  int64_t timestamp = 0;
  // librdkafka's rd_kafka_timestamp_type_t: 1 the producer's time, 2 the log's.
  int8_t timestamp_type = 1;
  std::optional<std::string> key;
  std::optional<std::string> value;
  Headers headers;

  bool operator==(const ArchivedRecord&) const = default;
};

// A readable account of a record, for messages that compare two.
std::string describe(const ArchivedRecord& record);

// A segment's bytes: the records encoded and compressed.
std::string encode_segment(const std::vector<ArchivedRecord>& records);
// Throws objects::ObjectStoreError naming `object` when the bytes are not a
// segment (truncated, corrupt, or of another format).
std::vector<ArchivedRecord> decode_segment(std::string_view bytes, const std::string& object);

struct SegmentEntry {
  std::string object;  // the segment's key in the store
  int64_t start_offset = 0;
  int64_t end_offset = 0;  // the first offset after the range
  uint64_t records = 0;
  int64_t min_timestamp = -1;
  int64_t max_timestamp = -1;
  uint64_t bytes = 0;  // compressed
  std::string sha256;
};

struct PartitionIndex {
  std::string topic;
  int32_t partition = 0;
  std::vector<SegmentEntry> segments;

  // The range the archive covers; both -1 when it holds no segment.
  int64_t start_offset() const { return segments.empty() ? -1 : segments.front().start_offset; }
  int64_t end_offset() const { return segments.empty() ? -1 : segments.back().end_offset; }
  uint64_t records() const;

  std::string to_json() const;
  // Throws objects::ObjectStoreError naming `object` when the text is not an
  // index, or its ranges overlap or leave a gap.
  static PartitionIndex from_json(std::string_view text, const std::string& object);
};

// A topic's archive at a location. Safe to use from several threads.
class Archive {
 public:
  explicit Archive(objects::ObjectLocation location);

  // The partition's index; nullopt when nothing of it is archived.
  std::optional<PartitionIndex> read_index(const std::string& topic, int32_t partition) const;
  // The partitions of `topic` with an index, in order.
  std::vector<int32_t> partitions(const std::string& topic) const;
  // Uploads a segment of records in [start, end) and returns its entry; the
  // caller adds it to the index and writes the index.
  SegmentEntry write_segment(const std::string& topic, int32_t partition, int64_t start,
                             int64_t end, const std::vector<ArchivedRecord>& records);
  void write_index(const PartitionIndex& index);
  // The segment's records, after checking its size and checksum against the
  // entry. Throws objects::ObjectStoreError naming the object otherwise.
  std::vector<ArchivedRecord> read_segment(const SegmentEntry& segment) const;

  // The object's address, for messages.
  std::string address(const std::string& key) const { return location_.store->address(key); }
  std::string index_address(const std::string& topic, int32_t partition) const;

 private:
  std::string partition_key(const std::string& topic, int32_t partition) const;

  objects::ObjectLocation location_;
};

// The first archived offset whose record's timestamp is `timestamp_ms` or
// later, as Kafka's offsets-for-time lookup; nullopt when no archived record
// is that late. Downloads one segment at most.
std::optional<int64_t> first_offset_at_or_after(const Archive& archive, const PartitionIndex& index,
                                                int64_t timestamp_ms);

// Reads a partition's archived records in offset order from `from` on,
// downloading one segment at a time.
class ArchiveCursor {
 public:
  ArchiveCursor(std::shared_ptr<const Archive> archive, PartitionIndex index, int64_t from);

  // Whether a record is at the head, downloading the next segment when the
  // current one is used up. Throws objects::ObjectStoreError when a segment
  // cannot be read or fails its checksum.
  bool has_record();
  // The head; only after has_record() returned true.
  const ArchivedRecord& head() const { return records_[next_]; }
  void advance() { ++next_; }
  // The first offset after the archive's range: the live topic takes over.
  int64_t end_offset() const { return index_.end_offset(); }
  // Records left: the current segment's exactly, the others' as their index
  // counts them (a segment not downloaded yet counts whole).
  uint64_t remaining() const;

 private:
  std::shared_ptr<const Archive> archive_;
  const PartitionIndex index_;
  const int64_t from_;
  std::size_t segment_ = 0;  // the next segment to download
  std::vector<ArchivedRecord> records_;
  std::size_t next_ = 0;
};

}  // namespace rill::archive
