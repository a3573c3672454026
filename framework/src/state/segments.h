// Time segments inside one key-value byte store, standing in for Kafka Streams'
// one RocksDB per segment: every key starts with the id of its segment (8 bytes,
// big-endian), so that an expired segment goes with one remove_range (one range
// tombstone in RocksDB) instead of a delete per entry.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "rill/internal/bytes_store.h"

#include "state/key_filter.h"
#include "state/key_layout.h"

namespace rill::state {

// Which segments a windowed store holds, and its stream time. Segment n holds
// the entries with n * interval <= segment timestamp < (n + 1) * interval (the
// window start for window stores, the session end for session stores).
class Segments {
 public:
  // Finds the segments `store` holds already. Stream time starts unknown (-1)
  // and is set by the next write, as in Kafka Streams.
  Segments(KeyValueBytesStore& store, int64_t retention, int64_t interval);

  int64_t retention() const { return retention_; }
  int64_t interval() const { return interval_; }
  int64_t observed_stream_time() const { return observed_; }
  // Requires timestamp >= 0.
  int64_t segment_id(int64_t timestamp) const { return timestamp / interval_; }

  // Moves stream time to `timestamp` if that is later, dropping the segments
  // that expire. Returns false when the segment of `timestamp` has expired:
  // nothing may be written to it.
  bool admit(int64_t timestamp);
  // Whether the segment of `timestamp` is within retention.
  bool live(int64_t timestamp) const { return segment_id(timestamp) >= earliest_live_segment(); }
  // The earliest segment timestamp still within retention; readers skip older
  // entries, which their segment may still hold.
  int64_t earliest_live_time() const;
  // Segments held with first <= id <= last, in order.
  std::vector<int64_t> between(int64_t first, int64_t last) const;

  // Notes a write of the record key with `key_hash` (KeyFilter::hash) to
  // segment `id`, which admit() admitted.
  void note_key(int64_t id, KeyFilter::Hash key_hash) {
    if (auto filter = filters_.find(id); filter != filters_.end()) filter->second.add(key_hash);
  }
  // False when segment `id` holds no entry of the record key with `key_hash`
  // (KeyFilter::hash). Segments created since the store opened keep a filter
  // of their keys; the others may hold any key.
  bool may_hold(int64_t id, KeyFilter::Hash key_hash) const {
    const auto filter = filters_.find(id);
    return filter == filters_.end() || filter->second.may_contain(key_hash);
  }

 private:
  int64_t earliest_live_segment() const;

  KeyValueBytesStore& store_;
  int64_t retention_;
  int64_t interval_;
  int64_t observed_ = -1;
  std::set<int64_t> held_;
  std::map<int64_t, KeyFilter> filters_;
};

// Reads key ranges of one store one after another, skipping the keys `accept`
// rejects.
class SegmentScan {
 public:
  // Keys from `from` to `to` inclusive, or, without `to`, keys starting with `from`.
  struct Range {
    std::string from;
    std::optional<std::string> to;
  };

  SegmentScan(const KeyValueBytesStore& store, std::vector<Range> ranges,
              std::function<bool(std::string_view key)> accept);

  bool valid() const { return current_ != nullptr; }
  void next();
  std::string_view key() const { return current_->key(); }
  std::string_view value() const { return current_->value(); }

 private:
  void settle();

  const KeyValueBytesStore& store_;
  std::vector<Range> ranges_;
  std::size_t next_range_ = 0;
  std::function<bool(std::string_view)> accept_;
  std::unique_ptr<KeyValueBytesIterator> current_;
};

}  // namespace rill::state
