#include "archive/archiver.h"

#include <fmt/format.h>

#include "kafka/consumer.h"
#include "kafka/group.h"
#include "kafka/handles.h"
#include "kafka/records.h"

namespace rill::archive {
namespace {

using Clock = std::chrono::steady_clock;

// A consumer of its own, outside any group, reading committed records only:
// the archive keeps what read_committed consumers of the topic see.
kafka::KafkaPtr range_consumer(const ArchiveRequest& request) {
  std::map<std::string, std::string> properties = request.consumer_properties;
  properties["group.id"] = "rill-archive";
  properties["enable.auto.commit"] = "false";
  properties["enable.auto.offset.store"] = "false";
  properties["enable.partition.eof"] = "true";
  properties["isolation.level"] = "read_committed";
  // A range the topic no longer holds is an error, not a jump elsewhere.
  properties["auto.offset.reset"] = "error";
  properties.erase("group.instance.id");
  kafka::KafkaPtr consumer = kafka::make_client(RD_KAFKA_CONSUMER, kafka::make_conf(properties));
  kafka::redirect_events_to_consumer(consumer.get());
  return consumer;
}

ArchivedRecord archived_of(const rd_kafka_message_t& message) {
  ArchivedRecord record;
  record.offset = message.offset;
  rd_kafka_timestamp_type_t type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
  record.timestamp = rd_kafka_message_timestamp(&message, &type);
  record.timestamp_type = static_cast<int8_t>(type);
  if (message.key != nullptr) record.key = std::string(kafka::key_of(message));
  if (message.payload != nullptr) record.value = std::string(kafka::value_of(message));
  if (const rd_kafka_headers_t* headers = kafka::headers_of(message))
    kafka::for_each_header(headers, [&](const char* name, const char* value, std::size_t size) {
      record.headers.add(
          name, value ? std::optional<std::string>(std::string(value, size)) : std::nullopt);
    });
  return record;
}

// Reads the partition's records in [from, to) in order, calling each(record).
// Throws std::runtime_error when no record or end arrives for `timeout`.
template <class Each>
void read_range(rd_kafka_t* consumer, const std::string& topic, int32_t partition, int64_t from,
                int64_t to, std::chrono::milliseconds timeout, Each&& each) {
  if (from >= to) return;
  kafka::assign(consumer, {{topic, partition, from}});
  kafka::MessageQueue queue = kafka::MessageQueue::of_consumer(consumer);
  std::vector<rd_kafka_message_t*> batch(1024);
  auto deadline = Clock::now() + timeout;
  bool done = false;
  while (!done) {
    const std::size_t taken = queue.take(batch.data(), batch.size(), 200);
    for (std::size_t i = 0; i < taken; ++i) {
      kafka::MessagePtr message(batch[i]);
      if (done) continue;
      if (message->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        // Under read_committed an end below `to` is an open transaction's
        // records: they come once it ends.
        if (message->offset >= to) done = true;
        continue;
      }
      if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (message->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE ||
            message->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)
          throw std::runtime_error(fmt::format("{}[{}]: offset {} is no longer in the topic: {}",
                                               topic, partition, from, kafka::error_of(*message)));
        continue;  // transient: librdkafka retries
      }
      deadline = Clock::now() + timeout;
      if (message->offset >= to) {
        done = true;
        continue;
      }
      each(*message);
    }
    if (!done && Clock::now() > deadline)
      throw std::runtime_error(
          fmt::format("{}[{}]: no record came for {} ms while reading up to offset {}", topic,
                      partition, timeout.count(), to));
  }
  kafka::assign(consumer, {});
}

// The offset each partition is archived up to: the request's end, within
// what the topic holds now.
std::vector<int64_t> end_offsets(rd_kafka_t* consumer, const ArchiveRequest& request,
                                 const std::vector<std::pair<std::string, int32_t>>& partitions,
                                 const std::vector<std::pair<int64_t, int64_t>>& marks) {
  std::vector<int64_t> ends;
  std::vector<int64_t> by_time;
  if (request.until_ms)
    by_time = kafka::offsets_for_time(consumer, partitions, *request.until_ms + 1, request.timeout);
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    int64_t end = marks[i].second;
    if (request.until_offset) end = std::min(end, *request.until_offset);
    if (request.until_ms) end = std::min(end, by_time[i]);
    ends.push_back(end);
  }
  return ends;
}

std::vector<std::pair<std::string, int32_t>> partitions_of(rd_kafka_t* consumer,
                                                           const ArchiveRequest& request) {
  const std::optional<int32_t> count =
      kafka::partition_count(consumer, request.topic, request.timeout);
  if (!count) throw std::runtime_error("topic '" + request.topic + "' does not exist");
  std::vector<std::pair<std::string, int32_t>> partitions;
  for (int32_t p = 0; p < *count; ++p) partitions.emplace_back(request.topic, p);
  return partitions;
}

}  // namespace

std::vector<PartitionArchived> archive_topic(Archive& archive, const ArchiveRequest& request) {
  const kafka::KafkaPtr consumer = range_consumer(request);
  const auto partitions = partitions_of(consumer.get(), request);
  const auto marks = kafka::watermarks(consumer.get(), partitions, request.timeout);
  const std::vector<int64_t> ends = end_offsets(consumer.get(), request, partitions, marks);
  std::vector<PartitionArchived> done;
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    const int32_t partition = partitions[i].second;
    PartitionIndex index = archive.read_index(request.topic, partition)
                               .value_or(PartitionIndex{request.topic, partition, {}});
    const int64_t low = marks[i].first;
    int64_t from = index.segments.empty() ? low : index.end_offset();
    if (from < low)
      throw std::runtime_error(fmt::format(
          "{}[{}]: the archive ends at offset {} but the topic starts at {}: records [{}, {}) "
          "were deleted before they were archived ({})",
          request.topic, partition, from, low, from, low,
          archive.index_address(request.topic, partition)));
    PartitionArchived archived{partition, from, std::max(from, ends[i]), 0, 0};
    const uint64_t total = archived.to > from ? static_cast<uint64_t>(archived.to - from) : 0;
    std::vector<ArchivedRecord> records;
    std::size_t bytes = 0;
    int64_t segment_start = from;
    auto close_segment = [&](int64_t end) {
      index.segments.push_back(
          archive.write_segment(request.topic, partition, segment_start, end, records));
      archive.write_index(index);
      archived.records += records.size();
      ++archived.segments;
      records.clear();
      bytes = 0;
      segment_start = end;
      if (request.progress) request.progress(partition, archived.records, total);
    };
    read_range(consumer.get(), request.topic, partition, from, archived.to, request.timeout,
               [&](const rd_kafka_message_t& message) {
                 records.push_back(archived_of(message));
                 bytes += message.len + message.key_len + 32;
                 if (bytes >= request.segment_bytes) close_segment(message.offset + 1);
               });
    if (segment_start < archived.to) close_segment(archived.to);
    if (request.progress) request.progress(partition, archived.records, archived.records);
    done.push_back(archived);
  }
  return done;
}

std::vector<PartitionVerified> verify_archive(const Archive& archive,
                                              const ArchiveRequest& request) {
  const kafka::KafkaPtr consumer = range_consumer(request);
  const auto partitions = partitions_of(consumer.get(), request);
  const auto marks = kafka::watermarks(consumer.get(), partitions, request.timeout);
  std::vector<PartitionVerified> verified;
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    const int32_t partition = partitions[i].second;
    PartitionVerified result{partition, 0, 0, 0, {}};
    std::optional<PartitionIndex> index;
    try {
      index = archive.read_index(request.topic, partition);
    } catch (const std::exception& e) {
      result.problems.push_back(e.what());
    }
    if (!index) {
      if (result.problems.empty() && marks[i].second > marks[i].first)
        result.problems.push_back(fmt::format("{}[{}]: nothing archived ({} has no index)",
                                              request.topic, partition,
                                              archive.index_address(request.topic, partition)));
      verified.push_back(std::move(result));
      continue;
    }
    const auto [low, high] = marks[i];
    if (index->end_offset() < low)
      result.problems.push_back(
          fmt::format("{}[{}]: records [{}, {}) are neither archived nor in the topic",
                      request.topic, partition, index->end_offset(), low));
    // The topic's records in the archive's range, compared in order with the
    // archived ones.
    const int64_t compare_from = std::max(low, index->start_offset());
    const int64_t compare_to = std::min(high, index->end_offset());
    std::vector<ArchivedRecord> live;
    if (compare_from < compare_to)
      read_range(consumer.get(), request.topic, partition, compare_from, compare_to,
                 request.timeout,
                 [&](const rd_kafka_message_t& message) { live.push_back(archived_of(message)); });
    std::size_t next_live = 0;
    for (const SegmentEntry& segment : index->segments) {
      ++result.segments;
      std::vector<ArchivedRecord> records;
      try {
        records = archive.read_segment(segment);
      } catch (const std::exception& e) {
        result.problems.push_back(e.what());
        continue;
      }
      for (const ArchivedRecord& record : records) {
        if (record.offset < segment.start_offset || record.offset >= segment.end_offset) {
          result.problems.push_back(fmt::format("segment {}: offset {} outside its range [{}, {})",
                                                archive.address(segment.object), record.offset,
                                                segment.start_offset, segment.end_offset));
          continue;
        }
        if (record.offset < compare_from || record.offset >= compare_to) {
          ++result.checksum_only;
          continue;
        }
        while (next_live < live.size() && live[next_live].offset < record.offset) {
          result.problems.push_back(fmt::format(
              "{}[{}]: offset {} is in the topic but not in "
              "segment {}",
              request.topic, partition, live[next_live].offset, archive.address(segment.object)));
          ++next_live;
        }
        if (next_live == live.size() || live[next_live].offset != record.offset) {
          result.problems.push_back(fmt::format("segment {}: offset {} is not in the topic",
                                                archive.address(segment.object), record.offset));
          continue;
        }
        if (!(live[next_live] == record))
          result.problems.push_back(fmt::format("segment {}: archived {}; the topic has {}",
                                                archive.address(segment.object), describe(record),
                                                describe(live[next_live])));
        ++next_live;
        ++result.compared;
      }
    }
    for (; next_live < live.size(); ++next_live)
      result.problems.push_back(fmt::format("{}[{}]: offset {} is in the topic but not archived",
                                            request.topic, partition, live[next_live].offset));
    if (request.progress) request.progress(partition, result.compared, result.compared);
    verified.push_back(std::move(result));
  }
  return verified;
}

}  // namespace rill::archive
