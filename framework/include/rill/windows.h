// Window definitions for windowed aggregations, as Kafka Streams' TimeWindows,
// SlidingWindows and SessionWindows, the JoinWindows of stream-stream joins,
// and the serdes of windowed keys.
//
// Windows follow event time. A window closes when the stream time (the largest
// record timestamp the aggregation has seen) passes its end by the grace
// period; records for a closed window are dropped and counted.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "rill/serde.h"
#include "rill/state.h"
#include "rill/value_and_timestamp.h"

namespace rill {

// The longest size, advance, gap or grace period a window takes: 100 years,
// as in YAML pipelines. Far beyond any retention, and small enough that no sum
// of them overflows.
inline constexpr std::chrono::milliseconds kMaxWindowDuration{36500LL * 86'400'000};

namespace internal {
// `duration` in milliseconds, or std::invalid_argument naming the windows and
// the parameter when it is negative, zero where zero makes no sense
// (`positive`), or beyond kMaxWindowDuration.
inline int64_t window_duration(std::string_view windows, std::string_view parameter,
                               std::chrono::milliseconds duration, bool positive) {
  const int64_t ms = duration.count();
  if (ms < 0 || (positive && ms == 0) || ms > kMaxWindowDuration.count())
    throw std::invalid_argument(std::string(windows) + ": " + std::string(parameter) + " must be " +
                                (positive ? "positive" : "non-negative") + " and at most " +
                                std::to_string(kMaxWindowDuration.count()) +
                                " ms (100 years), got " + std::to_string(ms) + " ms");
  return ms;
}
}  // namespace internal

// Fixed-size windows aligned to the epoch: tumbling (a new window every `size`)
// or hopping (a new window every `advance`, overlapping when advance < size).
// The window starting at s holds the records with s <= timestamp < s + size;
// it takes no more records once stream time >= s + size + grace.
class TimeWindows {
 public:
  static TimeWindows of_size_with_no_grace(std::chrono::milliseconds size) {
    return of_size_and_grace(size, std::chrono::milliseconds(0));
  }
  static TimeWindows of_size_and_grace(std::chrono::milliseconds size,
                                       std::chrono::milliseconds grace) {
    const int64_t size_ms = internal::window_duration("time windows", "size", size, true);
    return TimeWindows(size_ms, size_ms,
                       internal::window_duration("time windows", "grace period", grace, false));
  }
  // Hopping windows: a window starts every `advance` (0 < advance <= size).
  TimeWindows advance_by(std::chrono::milliseconds advance) const {
    if (advance.count() <= 0 || advance.count() > size_)
      throw std::invalid_argument("time windows: advance must be positive and at most the size (" +
                                  std::to_string(size_) + " ms), got " +
                                  std::to_string(advance.count()) + " ms");
    return TimeWindows(size_, advance.count(), grace_);
  }

  int64_t size_ms() const { return size_; }
  int64_t advance_ms() const { return advance_; }
  int64_t grace_ms() const { return grace_; }

  // Calls f(Window) for each window holding `timestamp`, earliest first (Kafka
  // Streams' windowsFor). A negative timestamp is in no window; near the
  // largest time, window ends stop at it.
  template <class F>
  void for_each_window(int64_t timestamp, F f) const {
    if (timestamp < 0) return;
    int64_t start = std::max<int64_t>(0, timestamp - size_ + advance_) / advance_ * advance_;
    do {
      f(Window{start, internal::window_end(start, size_)});
    } while (!__builtin_add_overflow(start, advance_, &start) && start <= timestamp);
  }

 private:
  TimeWindows(int64_t size, int64_t advance, int64_t grace)
      : size_(size), advance_(advance), grace_(grace) {}
  int64_t size_;
  int64_t advance_;
  int64_t grace_;
};

// Windows defined by the records themselves: two records are in a common
// window when their timestamps differ by at most the time difference. Each
// record has a window ending at its timestamp, [t - difference, t], and one
// starting just after it, [t + 1, t + 1 + difference] (both ends inclusive),
// as Kafka Streams' sliding windows. A window takes no more records once
// stream time > its end + grace.
class SlidingWindows {
 public:
  static SlidingWindows of_time_difference_with_no_grace(std::chrono::milliseconds difference) {
    return of_time_difference_and_grace(difference, std::chrono::milliseconds(0));
  }
  static SlidingWindows of_time_difference_and_grace(std::chrono::milliseconds difference,
                                                     std::chrono::milliseconds grace) {
    return SlidingWindows(
        internal::window_duration("sliding windows", "time difference", difference, true),
        internal::window_duration("sliding windows", "grace period", grace, false));
  }

  int64_t time_difference_ms() const { return difference_; }
  int64_t grace_ms() const { return grace_; }

 private:
  SlidingWindows(int64_t difference, int64_t grace) : difference_(difference), grace_(grace) {}
  int64_t difference_;
  int64_t grace_;
};

// Sessions of activity per key: a record within the inactivity gap of a
// session joins it, and a record that bridges two sessions merges them. A
// session's window runs from its first to its last record timestamp (both
// inclusive); it takes no more records once stream time > end + gap + grace.
class SessionWindows {
 public:
  static SessionWindows of_inactivity_gap_with_no_grace(std::chrono::milliseconds gap) {
    return of_inactivity_gap_and_grace(gap, std::chrono::milliseconds(0));
  }
  static SessionWindows of_inactivity_gap_and_grace(std::chrono::milliseconds gap,
                                                    std::chrono::milliseconds grace) {
    return SessionWindows(
        internal::window_duration("session windows", "inactivity gap", gap, true),
        internal::window_duration("session windows", "grace period", grace, false));
  }

  int64_t inactivity_gap_ms() const { return gap_; }
  int64_t grace_ms() const { return grace_; }

 private:
  SessionWindows(int64_t gap, int64_t grace) : gap_(gap), grace_(grace) {}
  int64_t gap_;
  int64_t grace_;
};

// How far apart in time two records of a stream-stream join may be, as Kafka
// Streams' JoinWindows: a left record at t joins the right records from
// t - before to t + after (both inclusive); a right record at t joins the left
// records from t - after to t + before. A record arriving once stream time has
// passed its window's end by the grace period joins the records still kept;
// left and outer joins emit a record without a partner only once its window
// has closed (stream time > its time + after, or + before for a right record,
// + grace).
class JoinWindows {
 public:
  // before = after = difference.
  static JoinWindows of_time_difference_with_no_grace(std::chrono::milliseconds difference) {
    return of_time_difference_and_grace(difference, std::chrono::milliseconds(0));
  }
  static JoinWindows of_time_difference_and_grace(std::chrono::milliseconds difference,
                                                  std::chrono::milliseconds grace) {
    const int64_t ms =
        internal::window_duration("join windows", "time difference", difference, false);
    return JoinWindows(ms, ms,
                       internal::window_duration("join windows", "grace period", grace, false));
  }
  // Either bound may be negative (a window wholly after or before the
  // record), as long as before + after >= 0.
  JoinWindows before(std::chrono::milliseconds before) const {
    return JoinWindows(bound("before", before), after_, grace_);
  }
  JoinWindows after(std::chrono::milliseconds after) const {
    return JoinWindows(before_, bound("after", after), grace_);
  }

  int64_t before_ms() const { return before_; }
  int64_t after_ms() const { return after_; }
  int64_t grace_ms() const { return grace_; }
  // before + after.
  int64_t size_ms() const { return before_ + after_; }

 private:
  JoinWindows(int64_t before, int64_t after, int64_t grace)
      : before_(before), after_(after), grace_(grace) {
    if (before_ + after_ < 0)
      throw std::invalid_argument("join windows: before + after must not be negative, got " +
                                  std::to_string(before_) + " ms + " + std::to_string(after_) +
                                  " ms");
  }
  static int64_t bound(std::string_view which, std::chrono::milliseconds ms) {
    if (ms.count() < -kMaxWindowDuration.count() || ms.count() > kMaxWindowDuration.count())
      throw std::invalid_argument("join windows: " + std::string(which) + " must be within " +
                                  std::to_string(kMaxWindowDuration.count()) +
                                  " ms (100 years) of 0, got " + std::to_string(ms.count()) +
                                  " ms");
    return ms.count();
  }
  int64_t before_;
  int64_t after_;
  int64_t grace_;
};

namespace serdes {

// The key's bytes, then the window start as 8 big-endian bytes: Kafka Streams'
// TimeWindowedSerializer. Reading needs the window size to know the end;
// without it the end reads as the largest time (as Kafka Streams).
template <class K>
SerdePtr<Windowed<K>> time_windowed(
    SerdePtr<K> inner, std::optional<std::chrono::milliseconds> window_size = std::nullopt);

// The key's bytes, then the session end and the session start, each 8
// big-endian bytes: Kafka Streams' SessionWindowedSerializer.
template <class K>
SerdePtr<Windowed<K>> session_windowed(SerdePtr<K> inner);

}  // namespace serdes

// ---------------------------------------------------------------------------
// Implementation of the templates above.

namespace serdes::detail {

template <class K>
class TimeWindowedSerde final : public Serde<Windowed<K>> {
 public:
  TimeWindowedSerde(SerdePtr<K> inner, std::optional<std::chrono::milliseconds> window_size)
      : inner_(std::move(inner)),
        window_size_(window_size ? window_size->count() : std::numeric_limits<int64_t>::max()),
        name_("time_windowed<" + std::string(inner_->name()) + ">") {}

  bool serialize(const Windowed<K>& key, std::string& out) const override {
    if (!inner_->serialize(key.key, out)) return false;
    append_be64(out, key.window.start);
    return true;
  }
  Windowed<K> deserialize(NullableBytes bytes) const override {
    if (!bytes || bytes->size() < 8)
      throw SerdeError(name_ + ": expected a key and an 8-byte window start, got " +
                       (bytes ? std::to_string(bytes->size()) + " bytes" : "null"));
    const std::size_t key_size = bytes->size() - 8;
    const int64_t start = read_be64(*bytes, key_size);
    return {inner_->deserialize(bytes->substr(0, key_size)),
            {start, internal::window_end(start, window_size_)}};
  }
  std::string_view name() const override { return name_; }

 private:
  SerdePtr<K> inner_;
  int64_t window_size_;
  std::string name_;
};

template <class K>
class SessionWindowedSerde final : public Serde<Windowed<K>> {
 public:
  explicit SessionWindowedSerde(SerdePtr<K> inner)
      : inner_(std::move(inner)), name_("session_windowed<" + std::string(inner_->name()) + ">") {}

  bool serialize(const Windowed<K>& key, std::string& out) const override {
    if (!inner_->serialize(key.key, out)) return false;
    append_be64(out, key.window.end);
    append_be64(out, key.window.start);
    return true;
  }
  Windowed<K> deserialize(NullableBytes bytes) const override {
    if (!bytes || bytes->size() < 16)
      throw SerdeError(name_ + ": expected a key and 16 bytes of session end and start, got " +
                       (bytes ? std::to_string(bytes->size()) + " bytes" : "null"));
    const std::size_t key_size = bytes->size() - 16;
    return {inner_->deserialize(bytes->substr(0, key_size)),
            {read_be64(*bytes, key_size + 8), read_be64(*bytes, key_size)}};
  }
  std::string_view name() const override { return name_; }

 private:
  SerdePtr<K> inner_;
  std::string name_;
};

}  // namespace serdes::detail

template <class K>
SerdePtr<Windowed<K>> serdes::time_windowed(SerdePtr<K> inner,
                                            std::optional<std::chrono::milliseconds> window_size) {
  return std::make_shared<detail::TimeWindowedSerde<K>>(std::move(inner), window_size);
}

template <class K>
SerdePtr<Windowed<K>> serdes::session_windowed(SerdePtr<K> inner) {
  return std::make_shared<detail::SessionWindowedSerde<K>>(std::move(inner));
}

}  // namespace rill
