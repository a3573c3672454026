#include "archive/archive.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <zstd.h>

namespace rill::archive {
namespace {

using objects::ObjectStoreError;
using Json = nlohmann::json;

// The decompressed segment starts with these bytes and a record count; each
// record is its offset, timestamp and timestamp type, then key, value and
// headers as length-prefixed bytes (length -1: null). Integers are little
// endian.
constexpr std::string_view kMagic = "RILLSEG1";
constexpr int kCompressionLevel = 3;

void put_u64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
}
void put_u32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
}
void put_bytes(std::string& out, const std::optional<std::string>& bytes) {
  if (!bytes) {
    put_u32(out, UINT32_MAX);
    return;
  }
  put_u32(out, static_cast<uint32_t>(bytes->size()));
  out += *bytes;
}

class Reader {
 public:
  Reader(std::string_view bytes, const std::string& object) : bytes_(bytes), object_(object) {}

  uint64_t u64() { return read_le<uint64_t>(8); }
  uint32_t u32() { return read_le<uint32_t>(4); }
  uint8_t u8() { return read_le<uint8_t>(1); }
  std::string_view take(std::size_t size) {
    need(size);
    const std::string_view taken = bytes_.substr(at_, size);
    at_ += size;
    return taken;
  }
  std::optional<std::string> bytes() {
    const uint32_t size = u32();
    if (size == UINT32_MAX) return std::nullopt;
    return std::string(take(size));
  }
  bool done() const { return at_ == bytes_.size(); }

 private:
  template <class T>
  T read_le(std::size_t size) {
    need(size);
    uint64_t value = 0;
    for (std::size_t i = 0; i < size; ++i)
      value |= uint64_t{static_cast<unsigned char>(bytes_[at_ + i])} << (8 * i);
    at_ += size;
    return static_cast<T>(value);
  }
  void need(std::size_t size) const {
    if (bytes_.size() - at_ < size)
      throw ObjectStoreError("segment " + object_ + " is truncated at byte " + std::to_string(at_) +
                             " of its records");
  }

  std::string_view bytes_;
  const std::string& object_;
  std::size_t at_ = 0;
};

std::string text_of(const std::optional<std::string>& bytes) {
  if (!bytes) return "null";
  std::string shown = bytes->size() > 64 ? bytes->substr(0, 64) + "..." : *bytes;
  return "'" + shown + "' (" + std::to_string(bytes->size()) + " bytes)";
}

}  // namespace

std::string describe(const ArchivedRecord& record) {
  std::string text = fmt::format("offset {} timestamp {} (type {}) key {} value {}", record.offset,
                                 record.timestamp, record.timestamp_type, text_of(record.key),
                                 text_of(record.value));
  if (!record.headers.empty()) {
    text += " headers";
    for (const Header& header : record.headers)
      text += " " + header.key + "=" + text_of(header.value);
  }
  return text;
}

// ---- segments ------------------------------------------------------------------

std::string encode_segment(const std::vector<ArchivedRecord>& records) {
  std::string plain(kMagic);
  put_u32(plain, static_cast<uint32_t>(records.size()));
  for (const ArchivedRecord& record : records) {
    put_u64(plain, static_cast<uint64_t>(record.offset));
    put_u64(plain, static_cast<uint64_t>(record.timestamp));
    plain.push_back(static_cast<char>(record.timestamp_type));
    put_bytes(plain, record.key);
    put_bytes(plain, record.value);
    put_u32(plain, static_cast<uint32_t>(record.headers.size()));
    for (const Header& header : record.headers) {
      put_bytes(plain, header.key);
      put_bytes(plain, header.value);
    }
  }
  std::string compressed(ZSTD_compressBound(plain.size()), '\0');
  const std::size_t size = ZSTD_compress(compressed.data(), compressed.size(), plain.data(),
                                         plain.size(), kCompressionLevel);
  if (ZSTD_isError(size) != 0)
    throw std::runtime_error(std::string("cannot compress a segment: ") + ZSTD_getErrorName(size));
  compressed.resize(size);
  return compressed;
}

std::vector<ArchivedRecord> decode_segment(std::string_view bytes, const std::string& object) {
  const unsigned long long size = ZSTD_getFrameContentSize(bytes.data(), bytes.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
    throw ObjectStoreError("segment " + object + " is not a zstd frame of known size");
  std::string plain(size, '\0');
  const std::size_t decompressed =
      ZSTD_decompress(plain.data(), plain.size(), bytes.data(), bytes.size());
  if (ZSTD_isError(decompressed) != 0 || decompressed != size)
    throw ObjectStoreError(
        "segment " + object + " does not decompress: " +
        (ZSTD_isError(decompressed) != 0 ? ZSTD_getErrorName(decompressed) : "short"));
  Reader in(plain, object);
  if (in.take(kMagic.size()) != kMagic)
    throw ObjectStoreError("segment " + object + " is not a rill segment");
  const uint32_t count = in.u32();
  std::vector<ArchivedRecord> records;
  records.reserve(std::min<uint32_t>(count, 1'000'000));
  for (uint32_t i = 0; i < count; ++i) {
    ArchivedRecord record;
    record.offset = static_cast<int64_t>(in.u64());
    record.timestamp = static_cast<int64_t>(in.u64());
    record.timestamp_type = static_cast<int8_t>(in.u8());
    record.key = in.bytes();
    record.value = in.bytes();
    const uint32_t headers = in.u32();
    for (uint32_t h = 0; h < headers; ++h) {
      std::optional<std::string> name = in.bytes();
      if (!name) throw ObjectStoreError("segment " + object + " has a header without a name");
      record.headers.add(std::move(*name), in.bytes());
    }
    records.push_back(std::move(record));
  }
  if (!in.done()) throw ObjectStoreError("segment " + object + " has bytes after its records");
  return records;
}

// ---- indexes -------------------------------------------------------------------

uint64_t PartitionIndex::records() const {
  uint64_t total = 0;
  for (const SegmentEntry& segment : segments) total += segment.records;
  return total;
}

std::string PartitionIndex::to_json() const {
  Json list = Json::array();
  for (const SegmentEntry& segment : segments)
    list.push_back({{"object", segment.object},
                    {"start_offset", segment.start_offset},
                    {"end_offset", segment.end_offset},
                    {"records", segment.records},
                    {"min_timestamp", segment.min_timestamp},
                    {"max_timestamp", segment.max_timestamp},
                    {"bytes", segment.bytes},
                    {"sha256", segment.sha256}});
  return Json{{"topic", topic}, {"partition", partition}, {"segments", std::move(list)}}.dump(1) +
         "\n";
}

PartitionIndex PartitionIndex::from_json(std::string_view text, const std::string& object) {
  PartitionIndex index;
  try {
    const Json json = Json::parse(text);
    index.topic = json.at("topic").get<std::string>();
    index.partition = json.at("partition").get<int32_t>();
    for (const Json& entry : json.at("segments"))
      index.segments.push_back(
          {entry.at("object").get<std::string>(), entry.at("start_offset").get<int64_t>(),
           entry.at("end_offset").get<int64_t>(), entry.at("records").get<uint64_t>(),
           entry.at("min_timestamp").get<int64_t>(), entry.at("max_timestamp").get<int64_t>(),
           entry.at("bytes").get<uint64_t>(), entry.at("sha256").get<std::string>()});
  } catch (const std::exception& e) {
    throw ObjectStoreError("index " + object + " is not an archive index: " + e.what());
  }
  for (std::size_t i = 0; i < index.segments.size(); ++i) {
    const SegmentEntry& segment = index.segments[i];
    if (segment.start_offset < 0 || segment.end_offset < segment.start_offset)
      throw ObjectStoreError(fmt::format("index {}: segment {} has the range [{}, {})", object,
                                         segment.object, segment.start_offset, segment.end_offset));
    if (i > 0 && index.segments[i - 1].end_offset != segment.start_offset)
      throw ObjectStoreError(fmt::format(
          "index {}: segment {} starts at {}, not where the one "
          "before ends ({})",
          object, segment.object, segment.start_offset, index.segments[i - 1].end_offset));
  }
  return index;
}

// ---- the archive ---------------------------------------------------------------

Archive::Archive(objects::ObjectLocation location) : location_(std::move(location)) {}

std::string Archive::partition_key(const std::string& topic, int32_t partition) const {
  return location_.key(topic + "/" + std::to_string(partition));
}

std::string Archive::index_address(const std::string& topic, int32_t partition) const {
  return address(partition_key(topic, partition) + "/index.json");
}

std::optional<PartitionIndex> Archive::read_index(const std::string& topic,
                                                  int32_t partition) const {
  const std::string key = partition_key(topic, partition) + "/index.json";
  if (location_.store->list(key).empty()) return std::nullopt;
  return PartitionIndex::from_json(location_.store->get_text(key), address(key));
}

std::vector<int32_t> Archive::partitions(const std::string& topic) const {
  const std::string prefix = location_.key(topic + "/");
  std::vector<int32_t> found;
  for (const std::string& key : location_.store->list(prefix)) {
    if (!key.ends_with("/index.json")) continue;
    const std::string middle = key.substr(prefix.size(), key.size() - prefix.size() - 11);
    if (!middle.empty() && std::all_of(middle.begin(), middle.end(), ::isdigit))
      found.push_back(std::stoi(middle));
  }
  std::sort(found.begin(), found.end());
  return found;
}

SegmentEntry Archive::write_segment(const std::string& topic, int32_t partition, int64_t start,
                                    int64_t end, const std::vector<ArchivedRecord>& records) {
  SegmentEntry entry;
  entry.object = partition_key(topic, partition) + fmt::format("/segments/{:020d}.segment", start);
  entry.start_offset = start;
  entry.end_offset = end;
  entry.records = records.size();
  for (const ArchivedRecord& record : records) {
    if (entry.min_timestamp < 0 || record.timestamp < entry.min_timestamp)
      entry.min_timestamp = record.timestamp;
    entry.max_timestamp = std::max(entry.max_timestamp, record.timestamp);
  }
  const std::string bytes = encode_segment(records);
  entry.bytes = bytes.size();
  entry.sha256 = objects::sha256_of(bytes);
  location_.store->put_text(entry.object, bytes);
  return entry;
}

void Archive::write_index(const PartitionIndex& index) {
  location_.store->put_text(partition_key(index.topic, index.partition) + "/index.json",
                            index.to_json());
}

std::vector<ArchivedRecord> Archive::read_segment(const SegmentEntry& segment) const {
  const std::string object = address(segment.object);
  const std::string bytes = location_.store->get_text(segment.object);
  if (bytes.size() != segment.bytes)
    throw ObjectStoreError(fmt::format("segment {} holds {} bytes; its index says {}", object,
                                       bytes.size(), segment.bytes));
  if (objects::sha256_of(bytes) != segment.sha256)
    throw ObjectStoreError("segment " + object + " does not match its index's SHA-256");
  std::vector<ArchivedRecord> records = decode_segment(bytes, object);
  if (records.size() != segment.records)
    throw ObjectStoreError(fmt::format("segment {} holds {} records; its index says {}", object,
                                       records.size(), segment.records));
  return records;
}

std::optional<int64_t> first_offset_at_or_after(const Archive& archive, const PartitionIndex& index,
                                                int64_t timestamp_ms) {
  // Timestamps need not grow with offsets, but the first segment holding a
  // record that late holds the first such record.
  for (const SegmentEntry& segment : index.segments) {
    if (segment.records == 0 || segment.max_timestamp < timestamp_ms) continue;
    for (const ArchivedRecord& record : archive.read_segment(segment))
      if (record.timestamp >= timestamp_ms) return record.offset;
  }
  return std::nullopt;
}

// ---- reading in order ----------------------------------------------------------

ArchiveCursor::ArchiveCursor(std::shared_ptr<const Archive> archive, PartitionIndex index,
                             int64_t from)
    : archive_(std::move(archive)), index_(std::move(index)), from_(from) {
  while (segment_ < index_.segments.size() && index_.segments[segment_].end_offset <= from_)
    ++segment_;
}

bool ArchiveCursor::has_record() {
  while (next_ == records_.size()) {
    if (segment_ == index_.segments.size()) return false;
    records_ = archive_->read_segment(index_.segments[segment_++]);
    next_ = 0;
    while (next_ < records_.size() && records_[next_].offset < from_) ++next_;
  }
  return true;
}

uint64_t ArchiveCursor::remaining() const {
  uint64_t left = records_.size() - next_;
  for (std::size_t i = segment_; i < index_.segments.size(); ++i)
    left += index_.segments[i].records;
  return left;
}

}  // namespace rill::archive
