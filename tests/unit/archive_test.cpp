// The archive's own formats, in a local directory: records come back from a
// segment exactly (null keys and values, headers, timestamp types); a
// truncated, corrupt or changed segment is refused naming its object; an
// index with a gap is refused; a cursor reads in order from any offset.
#include "archive/archive.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/temp_dir.h"

using namespace rill;
using namespace rill::testing;
namespace fs = std::filesystem;

namespace {

std::vector<archive::ArchivedRecord> sample_records(int64_t first, int count,
                                                    int64_t time = 1'764'900'000'000) {
  std::vector<archive::ArchivedRecord> records;
  for (int i = 0; i < count; ++i) {
    archive::ArchivedRecord record;
    // Offsets with gaps, as transaction markers and compaction leave.
    record.offset = first + 2 * i;
    record.timestamp = time + i * 10;
    record.timestamp_type = static_cast<int8_t>(i % 2 + 1);
    if (i % 5 != 0) record.key = "key-" + std::to_string(i % 7);
    if (i % 11 != 0) record.value = std::string("value\0with nul ", 15) + std::to_string(i);
    if (i % 3 == 0) {
      record.headers.add("trace", "t-" + std::to_string(i));
      record.headers.add("empty", std::nullopt);
    }
    records.push_back(std::move(record));
  }
  return records;
}

archive::Archive directory_archive(const fs::path& root) {
  objects::ObjectLocation location;
  location.store = std::make_unique<objects::DirectoryObjectStore>(root);
  location.prefix = "events";
  return archive::Archive(std::move(location));
}

}  // namespace

TEST_CASE("a segment gives back its records exactly, and refuses damaged bytes", "[archive]") {
  const auto records = sample_records(100, 200);
  const std::string bytes = archive::encode_segment(records);
  CHECK(archive::decode_segment(bytes, "s") == records);
  CHECK(archive::decode_segment(archive::encode_segment({}), "s").empty());
  // Compressed: the repeated parts shrink.
  CHECK(bytes.size() < 200 * 40);

  CHECK_THROWS_WITH(archive::decode_segment(bytes.substr(0, bytes.size() / 2), "obj-1"),
                    Catch::Contains("obj-1"));
  std::string flipped = bytes;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x5a);
  CHECK_THROWS_WITH(archive::decode_segment(flipped, "obj-2"), Catch::Contains("obj-2"));
  CHECK_THROWS_WITH(archive::decode_segment("not a segment", "obj-3"), Catch::Contains("obj-3"));
}

TEST_CASE("a partition's archive is read in order from any offset, and checked as it is read",
          "[archive]") {
  TempDir dir;
  archive::Archive archive = directory_archive(dir.path());
  archive::PartitionIndex index{"orders", 2, {}};
  // Three segments: [0, 40), [40, 80), and [80, 90) without records.
  const auto first = sample_records(0, 20), second = sample_records(40, 20, 1'764'900'001'000);
  index.segments.push_back(archive.write_segment("orders", 2, 0, 40, first));
  index.segments.push_back(archive.write_segment("orders", 2, 40, 80, second));
  index.segments.push_back(archive.write_segment("orders", 2, 80, 90, {}));
  archive.write_index(index);

  const auto read = archive.read_index("orders", 2);
  REQUIRE(read);
  CHECK(read->start_offset() == 0);
  CHECK(read->end_offset() == 90);
  CHECK(read->records() == 40);
  CHECK(read->segments[1].min_timestamp == second.front().timestamp);
  CHECK(read->segments[1].max_timestamp == second.back().timestamp);
  CHECK_FALSE(archive.read_index("orders", 3));
  CHECK(archive.partitions("orders") == std::vector<int32_t>{2});

  auto shared = std::make_shared<const archive::Archive>(directory_archive(dir.path()));
  auto read_from = [&](int64_t from) {
    archive::ArchiveCursor cursor(shared, *read, from);
    std::vector<int64_t> offsets;
    while (cursor.has_record()) {
      offsets.push_back(cursor.head().offset);
      cursor.advance();
    }
    CHECK(cursor.remaining() == 0);
    return offsets;
  };
  std::vector<int64_t> all;
  for (const auto& record : first) all.push_back(record.offset);
  for (const auto& record : second) all.push_back(record.offset);
  CHECK(read_from(0) == all);
  // From an offset between two records, and from the second segment.
  CHECK(read_from(7) == std::vector<int64_t>(all.begin() + 4, all.end()));
  CHECK(read_from(41) == std::vector<int64_t>(all.begin() + 21, all.end()));
  CHECK(read_from(85).empty());
  {
    archive::ArchiveCursor cursor(shared, *read, 10);
    REQUIRE(cursor.has_record());
    CHECK(cursor.remaining() == 35);
    CHECK(cursor.head() == first[5]);
  }

  // The first record at or after a time, as Kafka's lookup by time answers.
  CHECK(archive::first_offset_at_or_after(archive, *read, first[3].timestamp) == first[3].offset);
  CHECK(archive::first_offset_at_or_after(archive, *read, second[3].timestamp - 5) ==
        second[3].offset);
  CHECK(archive::first_offset_at_or_after(archive, *read, first.back().timestamp + 1) ==
        second.front().offset);
  CHECK_FALSE(archive::first_offset_at_or_after(archive, *read, second.back().timestamp + 1));

  SECTION("a segment changed behind the index is refused, naming it") {
    const fs::path segment = dir.path() / read->segments[1].object;
    std::fstream file(segment, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(12);
    file.put('x');
    file.close();
    archive::ArchiveCursor cursor(shared, *read, 30);
    std::size_t read_records = 0;
    CHECK_THROWS_WITH(
        [&] {
          while (cursor.has_record()) {
            cursor.advance();
            ++read_records;
          }
        }(),
        Catch::Contains(read->segments[1].object) && Catch::Contains("SHA-256"));
    CHECK(read_records == 5);  // the first segment's records from offset 30
  }
  SECTION("an index whose segments leave a gap is refused") {
    archive::PartitionIndex gap = *read;
    gap.segments[1].start_offset = 41;
    CHECK_THROWS_WITH(archive::PartitionIndex::from_json(gap.to_json(), "idx"),
                      Catch::Contains("idx") && Catch::Contains("starts at 41"));
    CHECK_THROWS_WITH(archive::PartitionIndex::from_json("{\"topic\": 1}", "idx2"),
                      Catch::Contains("idx2"));
  }
}
