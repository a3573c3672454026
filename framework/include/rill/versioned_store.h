// Versioned key-value stores, as Kafka Streams' (KIP-889): every value a key
// had, each valid from its own timestamp until the next version's, kept for
// a history retention of stream time. They answer "what was this key's value
// at time T?" for any T within the retention, and take updates out of order.
//
//   auto prices = rill::Stores::versioned_key_value<std::string, double>("prices", 7 * 24h);
//   ...
//   auto& store = context.state_store<rill::VersionedKeyValueStore<std::string, double>>("prices");
//   store.put("tea", 4.5, record.timestamp);
//   std::optional<rill::VersionedRecord<double>> then = store.get("tea", midnight);
//
// Like other stores they are persistent (RocksDB) or in memory, and
// changelogged and restored from the changelog; they have no record cache.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rill/internal/bytes_store.h"
#include "rill/processor.h"
#include "rill/serde.h"

namespace rill {

// One version of a key's value.
template <class V>
struct VersionedRecord {
  V value;
  // When this version became valid.
  int64_t timestamp = 0;
  // When the next version (or a deletion) replaced it; std::nullopt for the
  // latest version.
  std::optional<int64_t> valid_to;

  bool operator==(const VersionedRecord&) const = default;
};

namespace internal {

// How versions lie in the key-value store below, and so in its changelog:
//   'L' key                      -> timestamp, value   the latest version, unless deleted
//   'H' size(4) key timestamp    -> valid_to, value    older versions, in time order
// Times are 8 big-endian bytes with the sign bit flipped, so that byte order
// is time order; the key's size keeps one key's versions apart from a longer
// key's with the same prefix.
class VersionLayout {
 public:
  static void append_time(std::string& out, int64_t time) {
    const uint64_t bits = static_cast<uint64_t>(time) ^ (uint64_t{1} << 63);
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(bits >> shift));
  }
  static int64_t read_time(std::string_view in) {
    uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<unsigned char>(in[i]);
    return static_cast<int64_t>(bits ^ (uint64_t{1} << 63));
  }
  static std::string latest_key(std::string_view key) {
    std::string out(1, 'L');
    out.append(key);
    return out;
  }
  static std::string history_prefix(std::string_view key) {
    std::string out(1, 'H');
    const auto size = static_cast<uint32_t>(key.size());
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(size >> shift));
    out.append(key);
    return out;
  }
  static std::string history_key(std::string_view prefix, int64_t timestamp) {
    std::string out(prefix);
    append_time(out, timestamp);
    return out;
  }
  // A time and the value bytes after it.
  static std::string entry(int64_t time, std::string_view value) {
    std::string out;
    out.reserve(8 + value.size());
    append_time(out, time);
    out.append(value);
    return out;
  }
};

}  // namespace internal

template <class K, class V>
class VersionedKeyValueStore : public StateStore {
 public:
  // No stream time yet: after opening, until the first put.
  static constexpr int64_t kNoStreamTime = std::numeric_limits<int64_t>::min();

  VersionedKeyValueStore(std::unique_ptr<state::KeyValueBytesStore> bytes, SerdePtr<K> key_serde,
                         SerdePtr<V> value_serde, int64_t history_retention_ms)
      : bytes_(std::move(bytes)),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)),
        history_retention_ms_(history_retention_ms) {}

  std::string_view name() const override { return bytes_->name(); }
  void flush() override { bytes_->flush(); }
  void close() override { bytes_->close(); }
  bool persistent() const { return bytes_->persistent(); }
  int64_t history_retention_ms() const { return history_retention_ms_; }

  // Stores `value` (std::nullopt, or a value its serde writes as null: a
  // deletion) as `key`'s version from `timestamp` until the next later
  // version or deletion. Returns false, storing nothing, when `timestamp` is
  // older than the history retention before the store's stream time (the
  // latest timestamp put since it was opened).
  bool put(const K& key, const std::optional<V>& value, int64_t timestamp) {
    if (stream_time_ != kNoStreamTime && timestamp < stream_time_ - history_retention_ms_)
      return false;
    stream_time_ = std::max(stream_time_, timestamp);
    const std::string key_bytes = serialize_key(key);
    std::optional<std::string> value_bytes;
    if (value) {
      value_bytes.emplace();
      if (!value_serde_->serialize(*value, *value_bytes)) value_bytes.reset();
    }
    const std::string latest_key = Layout::latest_key(key_bytes);
    const std::string prefix = Layout::history_prefix(key_bytes);
    const std::optional<std::string> latest = bytes_->get(latest_key);
    const std::optional<int64_t> latest_time =
        latest ? std::optional<int64_t>(Layout::read_time(*latest)) : std::nullopt;
    if (latest_time && timestamp >= *latest_time) {
      // In order: the latest version becomes history, valid until now.
      if (timestamp > *latest_time)
        bytes_->put(Layout::history_key(prefix, *latest_time),
                    Layout::entry(timestamp, std::string_view(*latest).substr(8)));
      if (value_bytes)
        bytes_->put(latest_key, Layout::entry(timestamp, *value_bytes));
      else
        bytes_->remove(latest_key);
      expire(prefix);
      return true;
    }
    // Out of order, or no latest version: among the history, the version
    // valid at `timestamp` ends there, and the new one lasts until the next
    // change after it (a version, a deletion, or the latest version).
    std::optional<int64_t> ends_at = latest_time;
    for (const Version& version : history(prefix)) {
      if (version.from > timestamp) {
        ends_at = ends_at ? std::min(*ends_at, version.from) : version.from;
        break;
      }
      if (version.to <= timestamp) continue;
      ends_at = ends_at ? std::min(*ends_at, version.to) : version.to;
      const std::string stored_key = Layout::history_key(prefix, version.from);
      if (version.from == timestamp)
        bytes_->remove(stored_key);
      else
        bytes_->put(stored_key, Layout::entry(timestamp, version.value));
    }
    if (value_bytes) {
      if (ends_at)
        bytes_->put(Layout::history_key(prefix, timestamp), Layout::entry(*ends_at, *value_bytes));
      else
        bytes_->put(latest_key, Layout::entry(timestamp, *value_bytes));
    }
    expire(prefix);
    return true;
  }

  // A deletion at `timestamp`; returns the version valid just before it
  // (std::nullopt: none, or the deletion is older than the retention allows).
  std::optional<VersionedRecord<V>> remove(const K& key, int64_t timestamp) {
    std::optional<VersionedRecord<V>> before = get(key, timestamp);
    if (!put(key, std::nullopt, timestamp)) return std::nullopt;
    return before;
  }

  // The latest version, unless the key is deleted.
  std::optional<VersionedRecord<V>> get(const K& key) const {
    const std::optional<std::string> latest = bytes_->get(Layout::latest_key(serialize_key(key)));
    if (!latest) return std::nullopt;
    return record(std::string_view(*latest).substr(8), Layout::read_time(*latest), std::nullopt);
  }

  // The version valid at `as_of`: the latest one with a timestamp at or
  // before it, unless a deletion came between. std::nullopt also when
  // `as_of` is older than the history retention before the stream time.
  std::optional<VersionedRecord<V>> get(const K& key, int64_t as_of) const {
    if (stream_time_ != kNoStreamTime && as_of < stream_time_ - history_retention_ms_)
      return std::nullopt;
    const std::string key_bytes = serialize_key(key);
    if (const std::optional<std::string> latest = bytes_->get(Layout::latest_key(key_bytes))) {
      const int64_t from = Layout::read_time(*latest);
      if (from <= as_of) return record(std::string_view(*latest).substr(8), from, std::nullopt);
    }
    for (const Version& version : history(Layout::history_prefix(key_bytes))) {
      if (version.from > as_of) break;
      if (as_of < version.to) return record(version.value, version.from, version.to);
    }
    return std::nullopt;
  }

  state::KeyValueBytesStore& bytes_store() { return *bytes_; }

 private:
  using Layout = internal::VersionLayout;

  std::string serialize_key(const K& key) const {
    std::string bytes;
    if (!key_serde_->serialize(key, bytes))
      throw std::invalid_argument("state store '" + std::string(name()) +
                                  "': key serialized to null");
    return bytes;
  }

  std::optional<VersionedRecord<V>> record(std::string_view value, int64_t from,
                                           std::optional<int64_t> to) const {
    return VersionedRecord<V>{value_serde_->deserialize(value), from, to};
  }

  // One older version, as stored.
  struct Version {
    int64_t from = 0;
    int64_t to = 0;
    std::string value;
  };
  // A key's older versions in time order, read before any is changed.
  std::vector<Version> history(const std::string& prefix) const {
    std::vector<Version> versions;
    for (auto it = bytes_->prefix_scan(prefix); it->valid(); it->next())
      versions.push_back({Layout::read_time(it->key().substr(prefix.size())),
                          Layout::read_time(it->value()), std::string(it->value().substr(8))});
    return versions;
  }

  // Drops the key's versions that ended before the retention: no query can
  // reach them any more.
  void expire(const std::string& prefix) {
    const int64_t horizon = stream_time_ - history_retention_ms_;
    std::vector<std::string> expired;
    for (auto it = bytes_->prefix_scan(prefix); it->valid(); it->next()) {
      if (Layout::read_time(it->value()) > horizon) break;
      expired.emplace_back(it->key());
    }
    for (const std::string& key : expired) bytes_->remove(key);
  }

  std::unique_ptr<state::KeyValueBytesStore> bytes_;
  SerdePtr<K> key_serde_;
  SerdePtr<V> value_serde_;
  int64_t history_retention_ms_;
  int64_t stream_time_ = kNoStreamTime;
};

}  // namespace rill
