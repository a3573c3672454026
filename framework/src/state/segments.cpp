// Time segments of window and session stores.
#include "state/segments.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace rill::state {

namespace {
// Greater than every key of a segmented store: segment ids are never negative,
// so their first byte is at most 0x7f.
constexpr std::string_view kAfterAllSegments = "\x80";
}  // namespace

Segments::Segments(KeyValueBytesStore& store, int64_t retention, int64_t interval)
    : store_(store), retention_(retention), interval_(interval) {
  // One seek per segment: jump from each segment's first key to the next segment.
  std::string from;
  for (;;) {
    auto first = store_.range(from, kAfterAllSegments);
    if (!first->valid()) break;
    if (first->key().size() < kTimestampSize)
      throw StateStoreError("state store '" + std::string(store_.name()) +
                            "': a key without a segment id; the store holds other data");
    const int64_t id = read_be64(first->key(), 0);
    held_.insert(id);
    if (id == std::numeric_limits<int64_t>::max()) break;
    from = be64(id + 1);
  }
}

int64_t Segments::earliest_live_segment() const {
  if (observed_ < 0) return 0;
  return segment_id(std::max<int64_t>(0, observed_ - retention_));
}

int64_t Segments::earliest_live_time() const {
  if (observed_ < 0) return 0;
  return std::max<int64_t>(0, observed_ - retention_ + 1);
}

bool Segments::admit(int64_t timestamp) {
  if (timestamp > observed_) {
    observed_ = timestamp;
    const int64_t earliest = earliest_live_segment();
    if (!held_.empty() && *held_.begin() < earliest) {
      store_.remove_range({}, be64(earliest));
      held_.erase(held_.begin(), held_.lower_bound(earliest));
      filters_.erase(filters_.begin(), filters_.lower_bound(earliest));
    }
  }
  const int64_t id = segment_id(timestamp);
  if (id < earliest_live_segment()) return false;
  if (held_.insert(id).second) {
    // A new segment is sized like the newest one before it.
    const std::size_t expected =
        filters_.empty() ? KeyFilter::kMinKeys : filters_.rbegin()->second.keys();
    filters_.emplace(id, KeyFilter(expected));
  }
  return true;
}

std::vector<int64_t> Segments::between(int64_t first, int64_t last) const {
  std::vector<int64_t> ids;
  for (auto it = held_.lower_bound(first); it != held_.end() && *it <= last; ++it)
    ids.push_back(*it);
  return ids;
}

SegmentScan::SegmentScan(const KeyValueBytesStore& store, std::vector<Range> ranges,
                         std::function<bool(std::string_view key)> accept)
    : store_(store), ranges_(std::move(ranges)), accept_(std::move(accept)) {
  settle();
}

void SegmentScan::next() {
  if (current_ == nullptr) return;
  current_->next();
  settle();
}

void SegmentScan::settle() {
  for (;;) {
    if (current_ != nullptr) {
      for (; current_->valid(); current_->next())
        if (accept_(current_->key())) return;
      current_.reset();
    }
    if (next_range_ == ranges_.size()) return;
    const Range& range = ranges_[next_range_++];
    current_ = range.to ? store_.range(range.from, *range.to) : store_.prefix_scan(range.from);
  }
}

}  // namespace rill::state
