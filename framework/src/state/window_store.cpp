// The segmented window byte store.
#include "state/window_store.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

#include "state/key_layout.h"

namespace rill::state {
namespace {

constexpr int64_t kMaxTime = std::numeric_limits<int64_t>::max();
// Segment id, then the window start after the key.
constexpr std::size_t kOverhead = 2 * kTimestampSize;

class WindowIterator final : public WindowBytesIterator {
 public:
  explicit WindowIterator(SegmentScan scan) : scan_(std::move(scan)) {}
  bool valid() const override { return scan_.valid(); }
  void next() override { scan_.next(); }
  std::string_view key() const override {
    const std::string_view stored = scan_.key();
    return stored.substr(kTimestampSize, stored.size() - kOverhead);
  }
  int64_t window_start() const override {
    const std::string_view stored = scan_.key();
    return read_be64(stored, stored.size() - kTimestampSize);
  }
  std::string_view value() const override { return scan_.value(); }

 private:
  SegmentScan scan_;
};

int64_t checked_positive(std::string_view store, std::string_view what, int64_t value) {
  if (value <= 0)
    throw std::invalid_argument("window store '" + std::string(store) + "': " + std::string(what) +
                                " must be positive, got " + std::to_string(value));
  return value;
}

}  // namespace

SegmentedWindowStore::SegmentedWindowStore(std::string name,
                                           std::unique_ptr<KeyValueBytesStore> store,
                                           int64_t window_size, int64_t retention,
                                           int64_t segment_interval)
    : name_(std::move(name)),
      store_(std::move(store)),
      window_size_(checked_positive(name_, "window size", window_size)),
      segments_(*store_, retention, checked_positive(name_, "segment interval", segment_interval)) {
  if (retention < 0)
    throw std::invalid_argument("window store '" + name_ + "': negative retention " +
                                std::to_string(retention));
}

void SegmentedWindowStore::check_start(int64_t window_start) const {
  if (window_start < 0)
    throw std::invalid_argument("window store '" + name_ + "': negative window start " +
                                std::to_string(window_start));
}

std::string_view SegmentedWindowStore::store_key(std::string_view key, int64_t window_start) const {
  key_buffer_.clear();
  append_be64(key_buffer_, segments_.segment_id(window_start));
  append_window_key(key_buffer_, key, window_start);
  return key_buffer_;
}

bool SegmentedWindowStore::put(std::string_view key, int64_t window_start, std::string_view value) {
  check_start(window_start);
  if (!segments_.admit(window_start)) return false;
  store_->put(store_key(key, window_start), value);
  segments_.note_key(segments_.segment_id(window_start), KeyFilter::hash(key));
  return true;
}

void SegmentedWindowStore::remove(std::string_view key, int64_t window_start) {
  check_start(window_start);
  store_->remove(store_key(key, window_start));
}

void SegmentedWindowStore::put_all(std::span<WindowWrite> writes) {
  for (const WindowWrite& write : writes) check_start(write.window_start);
  // Stream time moves as one put after another would move it. A window whose
  // segment a later put expired is then left out, as that segment's removal
  // would have taken it.
  for (const WindowWrite& write : writes)
    if (write.value) segments_.admit(write.window_start);
  batch_keys_.clear();
  std::vector<std::pair<std::size_t, const WindowWrite*>> kept;
  kept.reserve(writes.size());
  for (WindowWrite& write : writes) {
    const bool live = segments_.live(write.window_start);
    // A removal is logged even when its window has gone, as remove() logs it.
    write.stored = live || !write.value;
    if (!live) continue;
    kept.emplace_back(batch_keys_.size(), &write);
    append_be64(batch_keys_, segments_.segment_id(write.window_start));
    append_window_key(batch_keys_, write.key, write.window_start);
  }
  std::vector<BytesWrite> batch;
  batch.reserve(kept.size());
  for (const auto& [offset, write] : kept) {
    batch.push_back({std::string_view(batch_keys_).substr(offset, write->key.size() + kOverhead),
                     write->value});
    if (write->value)
      segments_.note_key(segments_.segment_id(write->window_start), KeyFilter::hash(write->key));
  }
  std::stable_sort(batch.begin(), batch.end(), [](const BytesWrite& a, const BytesWrite& b) {
    return compare_bytes(a.key, b.key) < 0;
  });
  store_->write_all(batch);
}

std::optional<std::string> SegmentedWindowStore::fetch(std::string_view key,
                                                       int64_t window_start) const {
  if (window_start < segments_.earliest_live_time() ||
      !segments_.may_hold(segments_.segment_id(window_start), KeyFilter::hash(key)))
    return std::nullopt;
  return store_->get(store_key(key, window_start));
}

std::unique_ptr<WindowBytesIterator> SegmentedWindowStore::fetch(std::string_view key,
                                                                 int64_t time_from,
                                                                 int64_t time_to) const {
  const int64_t from = std::max(time_from, segments_.earliest_live_time());
  std::vector<SegmentScan::Range> ranges;
  if (from <= time_to) {
    const KeyFilter::Hash key_hash = KeyFilter::hash(key);
    for (int64_t id :
         segments_.between(segments_.segment_id(from), segments_.segment_id(time_to))) {
      if (!segments_.may_hold(id, key_hash)) continue;
      SegmentScan::Range range;
      append_be64(range.from, id);
      range.to = range.from;
      append_window_key(range.from, key, from);
      append_window_key(*range.to, key, time_to);
      ranges.push_back(std::move(range));
    }
  }
  // Both bounds start with segment and key, so every key between them does too;
  // only longer keys that start with this one need skipping.
  const std::size_t size = key.size() + kOverhead;
  return std::make_unique<WindowIterator>(
      SegmentScan(*store_, std::move(ranges),
                  [size](std::string_view stored) { return stored.size() == size; }));
}

std::unique_ptr<WindowBytesIterator> SegmentedWindowStore::fetch_all(int64_t time_from,
                                                                     int64_t time_to) const {
  const int64_t from = std::max(time_from, segments_.earliest_live_time());
  std::vector<SegmentScan::Range> ranges;
  if (from <= time_to) {
    for (int64_t id : segments_.between(segments_.segment_id(from), segments_.segment_id(time_to)))
      ranges.push_back({be64(id), std::nullopt});
  }
  return std::make_unique<WindowIterator>(
      SegmentScan(*store_, std::move(ranges), [from, time_to](std::string_view stored) {
        if (stored.size() < kOverhead) return false;
        const int64_t start = read_be64(stored, stored.size() - kTimestampSize);
        return start >= from && start <= time_to;
      }));
}

std::unique_ptr<WindowBytesIterator> SegmentedWindowStore::all() const {
  return fetch_all(0, kMaxTime);
}

}  // namespace rill::state
