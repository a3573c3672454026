// The windowed join of two streams, as Kafka Streams' KStreamKStreamJoin.
//
// Each side's records go through a window node, which hands the record to its
// side's join node and then keeps it in its side's window store; the join node
// looks up the other side's store for records of the same key within the join
// window. Matches go on with the later of the two timestamps.
//
// Left and outer joins hold a record without a partner in a shared store of
// unjoined records until its window closes, then emit it with no partner, as
// Kafka Streams has done since 3.1: never eagerly while a partner may still
// come. The two join nodes of a task share the join's stream time (the
// largest timestamp either side has seen).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rill/operators/aggregate.h"
#include "rill/processor.h"
#include "rill/record.h"
#include "rill/serde.h"
#include "rill/state.h"
#include "rill/value_and_timestamp.h"
#include "rill/windows.h"

namespace rill::operators {

enum class JoinSide : uint8_t { kRight = 0, kLeft = 1 };

// The records of a key and timestamp, in arrival order: a join window store
// keeps every record (Kafka Streams' retainDuplicates) as one list per window.
// Each element is its serde's bytes after a 4-byte big-endian length.
template <class V>
SerdePtr<std::vector<V>> record_list_serde(SerdePtr<V> inner);

// A record of a left or outer join waiting for its window to close. Stored
// as the timestamp (8 bytes, big-endian), the side (right 0, left 1) and the
// key's bytes, so the store iterates by time, right before left, as Kafka
// Streams' TimestampedKeyAndJoinSide.
template <class K>
struct UnjoinedKey {
  int64_t timestamp = 0;
  JoinSide side = JoinSide::kLeft;
  K key;
};
template <class K>
SerdePtr<UnjoinedKey<K>> unjoined_key_serde(SerdePtr<K> inner);

// The unjoined records of one UnjoinedKey: left or right ones, never both.
template <class VL, class VR>
struct UnjoinedRecords {
  std::vector<VL> left;
  std::vector<VR> right;
};
template <class VL, class VR>
SerdePtr<UnjoinedRecords<VL, VR>> unjoined_records_serde(SerdePtr<VL> left, SerdePtr<VR> right);

// A task's join time, shared by its two join nodes.
struct JoinTime {
  static constexpr int64_t kUnknown = std::numeric_limits<int64_t>::min();
  static constexpr int64_t kNoneWaiting = std::numeric_limits<int64_t>::max();
  int64_t stream_time = -1;
  // The earliest unjoined record's time: kUnknown after a restart (the store
  // may hold some), kNoneWaiting when the store is empty.
  int64_t earliest_unjoined = kUnknown;
};

// One JoinTime per task, handed to both join nodes as they are created.
class JoinTimes {
 public:
  std::shared_ptr<JoinTime> of(const TaskId& task) {
    std::lock_guard lock(mutex_);
    std::weak_ptr<JoinTime>& entry = times_[task];
    if (std::shared_ptr<JoinTime> time = entry.lock()) return time;
    auto time = std::make_shared<JoinTime>();
    entry = time;
    return time;
  }

 private:
  std::mutex mutex_;
  std::map<TaskId, std::weak_ptr<JoinTime>> times_;
};

// What both join nodes of a join know.
template <class K, class VL, class VR, class VOut>
struct StreamJoinSpec {
  // The joined value: either side is null only for a record without a
  // partner of a left (right side) or outer join.
  using Joiner = std::function<VOut(const K& key, const VL* left, const VR* right,
                                    const RecordContext& record)>;
  std::string left_store;
  std::string right_store;
  // The store of unjoined records; empty for an inner join.
  std::string unjoined_store;
  int64_t before = 0;
  int64_t after = 0;
  int64_t grace = 0;
  bool left_outer = false;   // left and outer joins
  bool right_outer = false;  // outer joins
  Joiner joiner;
  std::shared_ptr<JoinTimes> times;
};

namespace detail {
inline int64_t saturated_add(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum))
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  return sum;
}
}  // namespace detail

// Hands each record on, then keeps it in the side's window store. Records
// with a null key or value are not kept; one too old for the store is counted
// as dropped.
template <class K, class V>
class JoinWindowProcessor final : public Processor<K, V, K, V> {
 public:
  using Store = WindowStore<K, std::vector<V>>;

  explicit JoinWindowProcessor(std::string store) : store_name_(std::move(store)) {}

  void init(ProcessorContext<K, V>& context) override {
    context_ = &context;
    store_ = &context.template state_store<Store>(store_name_);
    // Every record is kept, at once: there is nothing to fold.
    store_->disable_cache();
  }

  void process(const Record<K, V>& record) override {
    context_->forward(record);
    if (is_null(record.key) || is_null(record.value) || record.timestamp < 0) return;
    std::vector<V> records = store_->fetch(record.key, record.timestamp).value_or(std::vector<V>{});
    records.push_back(record.value);
    if (!store_->put(record.key, records, record.timestamp))
      context_->record_dropped(kExpiredWindow);
  }

 private:
  std::string store_name_;
  ProcessorContext<K, V>* context_ = nullptr;
  Store* store_ = nullptr;
};

// One side's join node. A record joins the other side's records of its key
// within the window; in a left (this side) or outer join, a record without
// a partner waits in the unjoined store until its window closes, or goes on
// at once when its window has closed already.
template <JoinSide kSide, class K, class VL, class VR, class VOut>
class StreamStreamJoinProcessor final
    : public Processor<K, std::conditional_t<kSide == JoinSide::kLeft, VL, VR>, K, VOut> {
 public:
  static constexpr bool kLeft = kSide == JoinSide::kLeft;
  static constexpr JoinSide kOtherSide = kLeft ? JoinSide::kRight : JoinSide::kLeft;
  using This = std::conditional_t<kLeft, VL, VR>;
  using Other = std::conditional_t<kLeft, VR, VL>;
  using Spec = StreamJoinSpec<K, VL, VR, VOut>;
  using Unjoined = KeyValueStore<UnjoinedKey<K>, UnjoinedRecords<VL, VR>>;

  explicit StreamStreamJoinProcessor(Spec spec)
      : spec_(std::move(spec)),
        before_(kLeft ? spec_.before : spec_.after),
        after_(kLeft ? spec_.after : spec_.before),
        outer_(kLeft ? spec_.left_outer : spec_.right_outer),
        other_outer_(kLeft ? spec_.right_outer : spec_.left_outer) {}

  void init(ProcessorContext<K, VOut>& context) override {
    context_ = &context;
    other_ = &context.template state_store<WindowStore<K, std::vector<Other>>>(
        kLeft ? spec_.right_store : spec_.left_store);
    other_->disable_cache();
    if (!spec_.unjoined_store.empty())
      unjoined_ = &context.template state_store<Unjoined>(spec_.unjoined_store);
    time_ = spec_.times->of(context.task_id());
  }

  void process(const Record<K, This>& record) override {
    JoinTime& time = *time_;
    time.stream_time = std::max(time.stream_time, record.timestamp);
    // KIP-962: a record without a key cannot join, but a left or outer join
    // keeps it.
    if (outer_ && is_null(record.key) && !is_null(record.value)) {
      forward(record.key, &record.value, nullptr, record.timestamp, record.headers);
      return;
    }
    if (is_null(record.key) || is_null(record.value)) {
      context_->record_dropped(kNullJoinKeyOrValue);
      return;
    }
    if (record.timestamp < 0) {
      context_->record_dropped(kNegativeTimestamp);
      return;
    }
    if (unjoined_ != nullptr && record.timestamp == time.stream_time) emit_closed(record.headers);

    int64_t from = std::max<int64_t>(0, detail::saturated_add(record.timestamp, -before_));
    const int64_t to = std::max<int64_t>(0, detail::saturated_add(record.timestamp, after_));
    // Records the other store no longer keeps do not join, even before their
    // segment is dropped (as Kafka Streams' window stores hide them).
    const int64_t observed = other_->bytes_store().observed_stream_time();
    if (observed >= 0)
      from = std::max(from, detail::saturated_add(observed, 1 - other_->retention_period()));
    bool matched = false;
    if (from <= to) {
      for (auto partners = other_->fetch(record.key, from, to); partners.valid(); partners.next()) {
        const int64_t partner_time = partners.key();
        // Only the other side of an outer join (or the left of a left join)
        // has records waiting.
        if (other_outer_) unjoined_->remove(UnjoinedKey<K>{partner_time, kOtherSide, record.key});
        const int64_t joined_time = std::max(record.timestamp, partner_time);
        for (const Other& partner : partners.value()) {
          matched = true;
          forward(record.key, &record.value, &partner, joined_time, record.headers);
        }
      }
    }
    if (matched || !outer_) return;
    if (unjoined_ == nullptr || to < time.stream_time) {
      forward(record.key, &record.value, nullptr, record.timestamp, record.headers);
      return;
    }
    if (time.earliest_unjoined != JoinTime::kUnknown)
      time.earliest_unjoined = std::min(time.earliest_unjoined, record.timestamp);
    const UnjoinedKey<K> key{record.timestamp, kSide, record.key};
    UnjoinedRecords<VL, VR> waiting = unjoined_->get(key).value_or(UnjoinedRecords<VL, VR>{});
    if constexpr (kLeft) {
      waiting.left.push_back(record.value);
    } else {
      waiting.right.push_back(record.value);
    }
    unjoined_->put(key, waiting);
  }

 private:
  // Emits, with no partner, the unjoined records whose window has closed:
  // by time, right before left, then by key.
  void emit_closed(const Headers& headers) {
    JoinTime& time = *time_;
    if (time.earliest_unjoined == JoinTime::kNoneWaiting) return;
    if (time.earliest_unjoined != JoinTime::kUnknown &&
        detail::saturated_add(time.earliest_unjoined, after_ + spec_.grace) >= time.stream_time)
      return;
    int64_t earliest_waiting = JoinTime::kNoneWaiting;
    bool left_open = false;
    bool right_open = false;
    std::vector<UnjoinedKey<K>> emitted;
    for (auto it = unjoined_->all(); it.valid() && !(left_open && right_open); it.next()) {
      const UnjoinedKey<K> key = it.key();
      const bool left = key.side == JoinSide::kLeft;
      const int64_t lookback = left ? spec_.after : spec_.before;
      if (detail::saturated_add(key.timestamp, lookback + spec_.grace) >= time.stream_time) {
        (left ? left_open : right_open) = true;
        earliest_waiting = std::min(earliest_waiting, key.timestamp);
        continue;
      }
      const UnjoinedRecords<VL, VR> records = it.value();
      for (const VL& value : records.left) emit(key.key, &value, nullptr, key.timestamp, headers);
      for (const VR& value : records.right) emit(key.key, nullptr, &value, key.timestamp, headers);
      emitted.push_back(key);
    }
    time.earliest_unjoined = earliest_waiting;
    for (const UnjoinedKey<K>& key : emitted) unjoined_->remove(key);
  }

  // This side's record with its partner (or none).
  void forward(const K& key, const This* value, const Other* partner, int64_t timestamp,
               const Headers& headers) {
    if constexpr (kLeft) {
      emit(key, value, partner, timestamp, headers);
    } else {
      emit(key, partner, value, timestamp, headers);
    }
  }

  void emit(const K& key, const VL* left, const VR* right, int64_t timestamp,
            const Headers& headers) {
    context_->forward(
        Record<K, VOut>{key, spec_.joiner(key, left, right, RecordContext{timestamp, &headers}),
                        timestamp, headers});
  }

  Spec spec_;
  int64_t before_;
  int64_t after_;
  bool outer_;
  bool other_outer_;
  ProcessorContext<K, VOut>* context_ = nullptr;
  WindowStore<K, std::vector<Other>>* other_ = nullptr;
  Unjoined* unjoined_ = nullptr;
  std::shared_ptr<JoinTime> time_;
};

// ---------------------------------------------------------------------------
// Implementation of the templates above.

namespace detail {

inline void append_be32(std::string& out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((value >> shift) & 0xff));
}

inline uint32_t read_be32(std::string_view bytes, std::size_t offset) {
  uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i)
    value = (value << 8) | static_cast<unsigned char>(bytes[offset + i]);
  return value;
}

template <class V>
void append_list(const Serde<V>& serde, const std::vector<V>& values, std::string& out) {
  for (const V& value : values) {
    const std::size_t length_at = out.size();
    append_be32(out, 0);
    serde.serialize(value, out);
    const auto length = static_cast<uint32_t>(out.size() - length_at - 4);
    for (std::size_t i = 0; i < 4; ++i)
      out[length_at + i] = static_cast<char>((length >> (24 - 8 * i)) & 0xff);
  }
}

template <class V>
std::vector<V> read_list(const Serde<V>& serde, std::string_view bytes, std::string_view what) {
  std::vector<V> values;
  std::size_t at = 0;
  while (at < bytes.size()) {
    if (bytes.size() - at < 4) throw SerdeError(std::string(what) + ": a truncated length");
    const uint32_t size = read_be32(bytes, at);
    at += 4;
    if (bytes.size() - at < size) throw SerdeError(std::string(what) + ": a truncated record");
    values.push_back(serde.deserialize(bytes.substr(at, size)));
    at += size;
  }
  return values;
}

template <class V>
class RecordListSerde final : public Serde<std::vector<V>> {
 public:
  explicit RecordListSerde(SerdePtr<V> inner)
      : inner_(std::move(inner)), name_("record_list<" + std::string(inner_->name()) + ">") {}
  bool serialize(const std::vector<V>& values, std::string& out) const override {
    append_list(*inner_, values, out);
    return true;
  }
  std::vector<V> deserialize(NullableBytes bytes) const override {
    if (!bytes) return {};
    return read_list(*inner_, *bytes, name_);
  }
  std::string_view name() const override { return name_; }

 private:
  SerdePtr<V> inner_;
  std::string name_;
};

template <class K>
class UnjoinedKeySerde final : public Serde<UnjoinedKey<K>> {
 public:
  explicit UnjoinedKeySerde(SerdePtr<K> inner)
      : inner_(std::move(inner)), name_("unjoined_key<" + std::string(inner_->name()) + ">") {}
  bool serialize(const UnjoinedKey<K>& key, std::string& out) const override {
    serdes::detail::append_be64(out, key.timestamp);
    out.push_back(static_cast<char>(key.side));
    inner_->serialize(key.key, out);
    return true;
  }
  UnjoinedKey<K> deserialize(NullableBytes bytes) const override {
    if (!bytes || bytes->size() < 9)
      throw SerdeError(name_ + ": expected a timestamp, a side and a key");
    return {serdes::detail::read_be64(*bytes, 0), static_cast<JoinSide>((*bytes)[8] != 0),
            inner_->deserialize(bytes->substr(9))};
  }
  std::string_view name() const override { return name_; }

 private:
  SerdePtr<K> inner_;
  std::string name_;
};

template <class VL, class VR>
class UnjoinedRecordsSerde final : public Serde<UnjoinedRecords<VL, VR>> {
 public:
  UnjoinedRecordsSerde(SerdePtr<VL> left, SerdePtr<VR> right)
      : left_(std::move(left)),
        right_(std::move(right)),
        name_("unjoined_records<" + std::string(left_->name()) + ", " +
              std::string(right_->name()) + ">") {}
  bool serialize(const UnjoinedRecords<VL, VR>& records, std::string& out) const override {
    const bool left = !records.left.empty();
    out.push_back(static_cast<char>(left ? JoinSide::kLeft : JoinSide::kRight));
    if (left) {
      append_list(*left_, records.left, out);
    } else {
      append_list(*right_, records.right, out);
    }
    return true;
  }
  UnjoinedRecords<VL, VR> deserialize(NullableBytes bytes) const override {
    if (!bytes || bytes->empty()) throw SerdeError(name_ + ": expected a side and records");
    UnjoinedRecords<VL, VR> records;
    if ((*bytes)[0] != 0) {
      records.left = read_list(*left_, bytes->substr(1), name_);
    } else {
      records.right = read_list(*right_, bytes->substr(1), name_);
    }
    return records;
  }
  std::string_view name() const override { return name_; }

 private:
  SerdePtr<VL> left_;
  SerdePtr<VR> right_;
  std::string name_;
};

}  // namespace detail

template <class V>
SerdePtr<std::vector<V>> record_list_serde(SerdePtr<V> inner) {
  return std::make_shared<detail::RecordListSerde<V>>(std::move(inner));
}

template <class K>
SerdePtr<UnjoinedKey<K>> unjoined_key_serde(SerdePtr<K> inner) {
  return std::make_shared<detail::UnjoinedKeySerde<K>>(std::move(inner));
}

template <class VL, class VR>
SerdePtr<UnjoinedRecords<VL, VR>> unjoined_records_serde(SerdePtr<VL> left, SerdePtr<VR> right) {
  return std::make_shared<detail::UnjoinedRecordsSerde<VL, VR>>(std::move(left), std::move(right));
}

}  // namespace rill::operators
