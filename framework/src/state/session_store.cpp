// The segmented session byte store.
#include "state/session_store.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

#include "state/key_layout.h"

namespace rill::state {
namespace {

constexpr int64_t kMaxTime = std::numeric_limits<int64_t>::max();
// Segment id before the key, session end and start after it.
constexpr std::size_t kOverhead = 3 * kTimestampSize;

class SessionIterator final : public SessionBytesIterator {
 public:
  explicit SessionIterator(SegmentScan scan) : scan_(std::move(scan)) {}
  bool valid() const override { return scan_.valid(); }
  void next() override { scan_.next(); }
  std::string_view key() const override {
    const std::string_view stored = scan_.key();
    return stored.substr(kTimestampSize, stored.size() - kOverhead);
  }
  int64_t session_start() const override {
    const std::string_view stored = scan_.key();
    return read_be64(stored, stored.size() - kTimestampSize);
  }
  int64_t session_end() const override {
    const std::string_view stored = scan_.key();
    return read_be64(stored, stored.size() - 2 * kTimestampSize);
  }
  std::string_view value() const override { return scan_.value(); }

 private:
  SegmentScan scan_;
};

int64_t checked_interval(std::string_view store, int64_t interval) {
  if (interval <= 0)
    throw std::invalid_argument("session store '" + std::string(store) +
                                "': segment interval must be positive, got " +
                                std::to_string(interval));
  return interval;
}

}  // namespace

SegmentedSessionStore::SegmentedSessionStore(std::string name,
                                             std::unique_ptr<KeyValueBytesStore> store,
                                             int64_t retention, int64_t segment_interval)
    : name_(std::move(name)),
      store_(std::move(store)),
      segments_(*store_, retention, checked_interval(name_, segment_interval)) {
  if (retention < 0)
    throw std::invalid_argument("session store '" + name_ + "': negative retention " +
                                std::to_string(retention));
}

void SegmentedSessionStore::check_session(int64_t start, int64_t end) const {
  if (start < 0 || end < start)
    throw std::invalid_argument("session store '" + name_ + "': invalid session [" +
                                std::to_string(start) + ", " + std::to_string(end) +
                                "]; needs 0 <= start <= end");
}

std::string_view SegmentedSessionStore::store_key(std::string_view key, int64_t start,
                                                  int64_t end) const {
  key_buffer_.clear();
  append_be64(key_buffer_, segments_.segment_id(end));
  append_session_key(key_buffer_, key, start, end);
  return key_buffer_;
}

bool SegmentedSessionStore::put(std::string_view key, int64_t start, int64_t end,
                                std::string_view value) {
  check_session(start, end);
  if (!segments_.admit(end)) return false;
  store_->put(store_key(key, start, end), value);
  segments_.note_key(segments_.segment_id(end), KeyFilter::hash(key));
  return true;
}

void SegmentedSessionStore::remove(std::string_view key, int64_t start, int64_t end) {
  check_session(start, end);
  store_->remove(store_key(key, start, end));
}

std::optional<std::string> SegmentedSessionStore::fetch_session(std::string_view key, int64_t start,
                                                                int64_t end) const {
  if (start < 0 || end < start || end < segments_.earliest_live_time() ||
      !segments_.may_hold(segments_.segment_id(end), KeyFilter::hash(key)))
    return std::nullopt;
  return store_->get(store_key(key, start, end));
}

std::unique_ptr<SessionBytesIterator> SegmentedSessionStore::find_sessions(
    std::string_view key, int64_t earliest_session_end, int64_t latest_session_start) const {
  const int64_t earliest_end = std::max(earliest_session_end, segments_.earliest_live_time());
  std::vector<SegmentScan::Range> ranges;
  if (latest_session_start >= 0) {
    // A session's end bounds nothing about its start from above, so every
    // later segment may hold a match.
    const KeyFilter::Hash key_hash = KeyFilter::hash(key);
    for (int64_t id : segments_.between(segments_.segment_id(earliest_end), kMaxTime)) {
      if (!segments_.may_hold(id, key_hash)) continue;
      SegmentScan::Range range;
      append_be64(range.from, id);
      range.to = range.from;
      append_session_key(range.from, key, 0, earliest_end);
      append_session_key(*range.to, key, kMaxTime, kMaxTime);
      ranges.push_back(std::move(range));
    }
  }
  // Both bounds start with segment and key, so every key between them does too;
  // longer keys that start with this one are skipped by size.
  const std::size_t size = key.size() + kOverhead;
  return std::make_unique<SessionIterator>(SegmentScan(
      *store_, std::move(ranges), [size, latest_session_start](std::string_view stored) {
        return stored.size() == size &&
               read_be64(stored, size - kTimestampSize) <= latest_session_start;
      }));
}

std::unique_ptr<SessionBytesIterator> SegmentedSessionStore::fetch(std::string_view key) const {
  return find_sessions(key, 0, kMaxTime);
}

std::unique_ptr<SessionBytesIterator> SegmentedSessionStore::all() const {
  const int64_t earliest_end = segments_.earliest_live_time();
  std::vector<SegmentScan::Range> ranges;
  for (int64_t id : segments_.between(segments_.segment_id(earliest_end), kMaxTime))
    ranges.push_back({be64(id), std::nullopt});
  return std::make_unique<SessionIterator>(
      SegmentScan(*store_, std::move(ranges), [earliest_end](std::string_view stored) {
        return stored.size() >= kOverhead &&
               read_be64(stored, stored.size() - 2 * kTimestampSize) >= earliest_end;
      }));
}

}  // namespace rill::state
