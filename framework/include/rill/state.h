// State stores: typed key-value, window and session stores that processors
// reach through ProcessingContext::state_store<...>(name), and the builders that
// describe a store for a topology.
//
//   auto counts = rill::Stores::key_value("counts", rill::serdes::string(), rill::serdes::int64());
//   ...
//   auto& store = context.state_store<rill::KeyValueStore<std::string, int64_t>>("counts");
//   store.put(word, store.get(word).value_or(0) + 1);
//
// Stores keep serialized bytes, so ranges and iteration follow the unsigned byte
// order of the serialized keys (as RocksDB and Kafka Streams): strings sort as
// UTF-8 bytes, and big-endian integers sort numerically only when non-negative.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rill/internal/bytes_store.h"
#include "rill/internal/node.h"
#include "rill/internal/store_codec.h"
#include "rill/processor.h"
#include "rill/record.h"
#include "rill/serde.h"
#include "rill/state_options.h"
#include "rill/versioned_store.h"

namespace rill {

// A time window in milliseconds. For time windows the end is exclusive
// (start + size); for sessions both ends are inclusive record timestamps.
struct Window {
  int64_t start = 0;
  int64_t end = 0;
  auto operator<=>(const Window&) const = default;
};

// A key together with the window it was aggregated in.
template <class K>
struct Windowed {
  K key;
  Window window;
  bool operator==(const Windowed&) const = default;
};

namespace internal {

// The typed cursor behind a KeyValueIterator.
template <class K, class V>
class TypedCursor {
 public:
  virtual ~TypedCursor() = default;
  virtual bool valid() const = 0;
  virtual void next() = 0;
  virtual K key() const = 0;
  virtual V value() const = 0;
};

}  // namespace internal

// Iterates over store entries, deserializing keys and values as they are read.
// Use it as a cursor (valid/next/key/value) or in a range-for:
//
//   for (const auto& [word, count] : store.all()) ...
//
// An iterator must not be used after its store is closed (it then reads as
// exhausted).
template <class K, class V>
class KeyValueIterator {
 public:
  explicit KeyValueIterator(std::unique_ptr<internal::TypedCursor<K, V>> cursor)
      : cursor_(std::move(cursor)) {}

  bool valid() const { return cursor_->valid(); }
  void next() { cursor_->next(); }
  K key() const { return cursor_->key(); }
  V value() const { return cursor_->value(); }
  KeyValue<K, V> entry() const { return {key(), value()}; }

  // The remaining entries.
  std::vector<KeyValue<K, V>> to_vector() {
    std::vector<KeyValue<K, V>> entries;
    for (; valid(); next()) entries.push_back(entry());
    return entries;
  }

  class Cursor {
   public:
    using value_type = KeyValue<K, V>;
    using difference_type = std::ptrdiff_t;
    Cursor() = default;
    explicit Cursor(KeyValueIterator* iterator) : iterator_(iterator) {}
    value_type operator*() const { return iterator_->entry(); }
    Cursor& operator++() {
      iterator_->next();
      return *this;
    }
    void operator++(int) { iterator_->next(); }
    bool operator==(std::default_sentinel_t) const { return !iterator_->valid(); }

   private:
    KeyValueIterator* iterator_ = nullptr;
  };
  Cursor begin() { return Cursor(this); }
  std::default_sentinel_t end() { return {}; }

 private:
  std::unique_ptr<internal::TypedCursor<K, V>> cursor_;
};

// The windows of one key, as (window start, value).
template <class V>
using WindowStoreIterator = KeyValueIterator<int64_t, V>;

namespace internal {

template <class K, class V>
class KeyValueCursor final : public TypedCursor<K, V> {
 public:
  KeyValueCursor(std::unique_ptr<state::KeyValueBytesIterator> bytes, SerdePtr<K> key_serde,
                 SerdePtr<V> value_serde)
      : bytes_(std::move(bytes)),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)) {}
  bool valid() const override { return bytes_->valid(); }
  void next() override { bytes_->next(); }
  K key() const override { return key_serde_->deserialize(bytes_->key()); }
  V value() const override { return value_serde_->deserialize(bytes_->value()); }

 private:
  std::unique_ptr<state::KeyValueBytesIterator> bytes_;
  SerdePtr<K> key_serde_;
  SerdePtr<V> value_serde_;
};

// The windows of one key: the key is the window start.
template <class V>
class WindowTimeCursor final : public TypedCursor<int64_t, V> {
 public:
  WindowTimeCursor(std::unique_ptr<state::WindowBytesIterator> bytes, SerdePtr<V> value_serde)
      : bytes_(std::move(bytes)), value_serde_(std::move(value_serde)) {}
  bool valid() const override { return bytes_->valid(); }
  void next() override { bytes_->next(); }
  int64_t key() const override { return bytes_->window_start(); }
  V value() const override { return value_serde_->deserialize(bytes_->value()); }

 private:
  std::unique_ptr<state::WindowBytesIterator> bytes_;
  SerdePtr<V> value_serde_;
};

inline int64_t window_end(int64_t start, int64_t size) {
  return start > std::numeric_limits<int64_t>::max() - size ? std::numeric_limits<int64_t>::max()
                                                            : start + size;
}

template <class K, class V>
class WindowedCursor final : public TypedCursor<Windowed<K>, V> {
 public:
  WindowedCursor(std::unique_ptr<state::WindowBytesIterator> bytes, int64_t window_size,
                 SerdePtr<K> key_serde, SerdePtr<V> value_serde)
      : bytes_(std::move(bytes)),
        window_size_(window_size),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)) {}
  bool valid() const override { return bytes_->valid(); }
  void next() override { bytes_->next(); }
  Windowed<K> key() const override {
    const int64_t start = bytes_->window_start();
    return {key_serde_->deserialize(bytes_->key()), {start, window_end(start, window_size_)}};
  }
  V value() const override { return value_serde_->deserialize(bytes_->value()); }

 private:
  std::unique_ptr<state::WindowBytesIterator> bytes_;
  int64_t window_size_;
  SerdePtr<K> key_serde_;
  SerdePtr<V> value_serde_;
};

template <class K, class V>
class SessionCursor final : public TypedCursor<Windowed<K>, V> {
 public:
  SessionCursor(std::unique_ptr<state::SessionBytesIterator> bytes, SerdePtr<K> key_serde,
                SerdePtr<V> value_serde)
      : bytes_(std::move(bytes)),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)) {}
  bool valid() const override { return bytes_->valid(); }
  void next() override { bytes_->next(); }
  Windowed<K> key() const override {
    return {key_serde_->deserialize(bytes_->key()),
            {bytes_->session_start(), bytes_->session_end()}};
  }
  V value() const override { return value_serde_->deserialize(bytes_->value()); }

 private:
  std::unique_ptr<state::SessionBytesIterator> bytes_;
  SerdePtr<K> key_serde_;
  SerdePtr<V> value_serde_;
};

// GCC 12 reports false "null dereference" and "uninitialized" warnings inside
// std::optional for some instantiations of the serdes and the stores below.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)  // clang has no such warning, and -Werror rejects unknown ones
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// Serializes keys and values of one typed store into buffers reused for every
// call, so a store operation allocates only when a key or value is larger than
// any before.
template <class K, class V>
class StoreSerdes {
 public:
  StoreSerdes(std::string_view store, SerdePtr<K> key_serde, SerdePtr<V> value_serde)
      : store_(store), key_serde_(std::move(key_serde)), value_serde_(std::move(value_serde)) {}

  // Keys must not serialize to null: a store cannot hold a null key.
  template <class T>
  std::string_view key(const T& k, const SerdePtr<T>& serde) const {
    key_buffer_.clear();
    if (!serde->serialize(k, key_buffer_))
      throw std::invalid_argument("state store '" + store_ + "': key serialized to null");
    return key_buffer_;
  }
  std::string_view key(const K& k) const { return this->key(k, key_serde_); }
  // Null (a tombstone) when the serde writes null.
  std::optional<std::string_view> value(const V& v) const {
    value_buffer_.clear();
    if (!value_serde_->serialize(v, value_buffer_)) return std::nullopt;
    return value_buffer_;
  }
  std::optional<V> read_value(const std::optional<std::string>& bytes) const {
    if (!bytes) return std::nullopt;
    return value_serde_->deserialize(std::string_view(*bytes));
  }
  const SerdePtr<K>& key_serde() const { return key_serde_; }
  const SerdePtr<V>& value_serde() const { return value_serde_; }

 private:
  std::string store_;
  SerdePtr<K> key_serde_;
  SerdePtr<V> value_serde_;
  mutable std::string key_buffer_;
  mutable std::string value_buffer_;
};

}  // namespace internal

// A key-value store, as Kafka Streams' KeyValueStore.
template <class K, class V>
class KeyValueStore : public StateStore {
 public:
  KeyValueStore(std::unique_ptr<state::KeyValueBytesStore> bytes, SerdePtr<K> key_serde,
                SerdePtr<V> value_serde)
      : bytes_(std::move(bytes)),
        cache_(dynamic_cast<state::CachingKeyValueBytesStore*>(bytes_.get())),
        serdes_(bytes_->name(), std::move(key_serde), std::move(value_serde)) {}
  // The record cache's listener points back at the store.
  KeyValueStore(const KeyValueStore&) = delete;
  KeyValueStore& operator=(const KeyValueStore&) = delete;

  // Called with the newest value of a key (std::nullopt: deleted) when the
  // record cache hands it on; see set_flush_listener.
  using FlushListener =
      std::function<void(const K& key, const std::optional<V>& value, int64_t timestamp)>;
  // As FlushListener, also with the value the key had in the store before
  // (std::nullopt: none), which is the value last handed on.
  using ChangeListener = std::function<void(const K& key, const std::optional<V>& value,
                                            const std::optional<V>& old_value, int64_t timestamp)>;

  std::string_view name() const override { return bytes_->name(); }
  void flush() override { bytes_->flush(); }
  void close() override { bytes_->close(); }
  bool persistent() const { return bytes_->persistent(); }
  bool is_open() const { return bytes_->is_open(); }
  // The serdes the store reads and writes with.
  const SerdePtr<K>& key_serde() const { return serdes_.key_serde(); }
  const SerdePtr<V>& value_serde() const { return serdes_.value_serde(); }
  state::BytesStore* bytes() override { return bytes_.get(); }

  // The record cache (statestore.cache.max.bytes), for processors that emit
  // what they store, as aggregations do. With a listener set, put(key, value,
  // timestamp) keeps the value in the cache, folding consecutive updates of a
  // key; at each commit (flush()), or when the instance's caches outgrow their
  // budget, each cached key's newest value is written to the store (and its
  // changelog) and handed to the listener, least recently updated first.
  // Without a cache (a budget of 0, or disable_cache()) every such put goes
  // straight through and to the listener.
  void set_flush_listener(FlushListener listener) {
    set_listener([listener = std::move(listener)](
                     const K& key, const std::optional<V>& value, const std::optional<V>&,
                     int64_t timestamp) { listener(key, value, timestamp); },
                 false);
  }
  // As set_flush_listener, handing on the old value too (Kafka Streams'
  // sendOldValues): one more read of the store per key handed on.
  void set_change_listener(ChangeListener listener) { set_listener(std::move(listener), true); }
  // For processors whose results must not wait (Materialized without caching).
  void disable_cache() {
    if (caching_) cache_->disable();
    caching_ = false;
  }
  std::size_t cached_entries() const { return cache_ != nullptr ? cache_->cached_entries() : 0; }

  std::optional<V> get(const K& key) const {
    const std::string_view key_bytes = serdes_.key(key);
    if (cache_ == nullptr) return serdes_.read_value(bytes_->get(key_bytes));
    const auto value = cache_->read(key_bytes, read_buffer_);
    if (!value) return std::nullopt;
    return serdes_.value_serde()->deserialize(*value);
  }
  CacheCounts cache_counts() const override {
    if (cache_ == nullptr) return {};
    return {cache_->hits(), cache_->misses()};
  }
  // Through the record cache when a flush listener is set (see there).
  void put(const K& key, const std::optional<V>& value, int64_t timestamp) {
    if (!listener_ || !caching_) {
      std::optional<V> old_value;
      if (listener_ && read_old_values_) old_value = get(key);
      if (value)
        put(key, *value);
      else
        remove(key);
      if (listener_) listener_(key, value, old_value, timestamp);
      return;
    }
    const std::string_view key_bytes = serdes_.key(key);
    cache_->put_cached(key_bytes, value ? serdes_.value(*value) : std::nullopt, timestamp);
  }
  // A value its serde writes as null (a tombstone) removes the key, as in Kafka Streams.
  void put(const K& key, const V& value) {
    const std::string_view key_bytes = serdes_.key(key);
    if (auto value_bytes = serdes_.value(value))
      bytes_->put(key_bytes, *value_bytes);
    else
      bytes_->remove(key_bytes);
  }
  // Stores the value only when the key has none. Returns the value already
  // there, or std::nullopt when `value` was stored.
  std::optional<V> put_if_absent(const K& key, const V& value) {
    const std::string_view key_bytes = serdes_.key(key);
    auto value_bytes = serdes_.value(value);
    if (!value_bytes) return serdes_.read_value(bytes_->get(key_bytes));
    return serdes_.read_value(bytes_->put_if_absent(key_bytes, *value_bytes));
  }
  // Removes the key; returns the value it had.
  std::optional<V> remove(const K& key) {
    const std::string_view key_bytes = serdes_.key(key);
    auto old = bytes_->get(key_bytes);
    if (old) bytes_->remove(key_bytes);
    return serdes_.read_value(old);
  }

  // Keys from `from` to `to`, both inclusive, in serialized-key byte order.
  KeyValueIterator<K, V> range(const K& from, const K& to) const {
    std::string from_bytes(serdes_.key(from));
    return iterator(bytes_->range(from_bytes, serdes_.key(to)));
  }
  // Keys whose serialized bytes start with the serialized `prefix`, e.g. all
  // "user-1|..." keys for the string prefix "user-1|".
  template <class P>
  KeyValueIterator<K, V> prefix_scan(const P& prefix, const SerdePtr<P>& prefix_serde) const {
    return iterator(bytes_->prefix_scan(serdes_.key(prefix, prefix_serde)));
  }
  KeyValueIterator<K, V> all() const { return iterator(bytes_->all()); }
  uint64_t approximate_num_entries() const { return bytes_->approximate_num_entries(); }

  state::KeyValueBytesStore& bytes_store() { return *bytes_; }

 private:
  KeyValueIterator<K, V> iterator(std::unique_ptr<state::KeyValueBytesIterator> bytes) const {
    return KeyValueIterator<K, V>(std::make_unique<internal::KeyValueCursor<K, V>>(
        std::move(bytes), serdes_.key_serde(), serdes_.value_serde()));
  }

  void set_listener(ChangeListener listener, bool read_old_values) {
    listener_ = std::move(listener);
    read_old_values_ = read_old_values;
    if (!caching_) return;
    cache_->set_flush_listener(
        [this](std::string_view key, std::optional<std::string_view> value,
               std::optional<std::string_view> old_value, int64_t timestamp) {
          K typed_key = serdes_.key_serde()->deserialize(key);
          listener_(typed_key, typed(value), typed(old_value), timestamp);
        },
        read_old_values);
  }
  std::optional<V> typed(std::optional<std::string_view> value) const {
    if (!value) return std::nullopt;
    return serdes_.value_serde()->deserialize(*value);
  }

  std::unique_ptr<state::KeyValueBytesStore> bytes_;
  // The record cache layer, when bytes_ is one; const, since the metrics
  // read its counts from another thread.
  state::CachingKeyValueBytesStore* const cache_;
  bool caching_ = cache_ != nullptr;
  internal::StoreSerdes<K, V> serdes_;
  ChangeListener listener_;
  bool read_old_values_ = false;
  mutable std::string read_buffer_;
};

#pragma GCC diagnostic pop

// Values per key and time window, as Kafka Streams' WindowStore. Windows are
// kept for the store's retention period of stream time (the largest window
// start written); older windows are dropped and no longer returned.
template <class K, class V>
class WindowStore : public StateStore {
 public:
  WindowStore(std::unique_ptr<state::WindowBytesStore> bytes, SerdePtr<K> key_serde,
              SerdePtr<V> value_serde)
      : bytes_(std::move(bytes)),
        cache_(dynamic_cast<state::CachingWindowBytesStore*>(bytes_.get())),
        serdes_(bytes_->name(), std::move(key_serde), std::move(value_serde)) {}
  // The record cache's listener points back at the store.
  WindowStore(const WindowStore&) = delete;
  WindowStore& operator=(const WindowStore&) = delete;

  // Called with a window's newest value (std::nullopt: deleted) when the
  // record cache hands it on; see set_flush_listener.
  using FlushListener = std::function<void(const Windowed<K>& window, const std::optional<V>& value,
                                           int64_t timestamp)>;

  std::string_view name() const override { return bytes_->name(); }
  void flush() override { bytes_->flush(); }
  void close() override { bytes_->close(); }
  bool persistent() const { return bytes_->persistent(); }
  bool is_open() const { return bytes_->is_open(); }
  // The serdes the store reads and writes with.
  const SerdePtr<K>& key_serde() const { return serdes_.key_serde(); }
  const SerdePtr<V>& value_serde() const { return serdes_.value_serde(); }
  state::BytesStore* bytes() override { return bytes_.get(); }
  int64_t window_size() const { return bytes_->window_size(); }
  int64_t retention_period() const { return bytes_->retention_period(); }

  // The record cache (statestore.cache.max.bytes), as KeyValueStore's: with
  // a listener set, put(key, value, window_start, timestamp) keeps the value
  // in the cache, folding a window's consecutive updates; at each commit, or
  // when the instance's caches outgrow their budget, each cached window's
  // newest value is written to the store (and its changelog) and handed to
  // the listener. Without a cache every such put goes straight through and to
  // the listener.
  void set_flush_listener(FlushListener listener) {
    listener_ = std::move(listener);
    if (!caching()) return;
    cache_->set_flush_listener(
        [this](std::string_view key, int64_t window_start, std::optional<std::string_view> value,
               std::optional<std::string_view>, int64_t timestamp) {
          listener_(
              Windowed<K>{serdes_.key_serde()->deserialize(key), window_of(window_start)},
              value ? std::optional<V>(serdes_.value_serde()->deserialize(*value)) : std::nullopt,
              timestamp);
        },
        false);
  }
  // For processors whose results must not wait (Materialized without caching),
  // and for stores that keep every record, as a join's.
  void disable_cache() {
    if (caching_) cache_->disable();
    caching_ = false;
  }
  // Whether put(key, value, window_start, timestamp) waits in a cache.
  bool caching() const { return caching_; }
  CacheCounts cache_counts() const override {
    if (cache_ == nullptr) return {};
    return {cache_->hits(), cache_->misses()};
  }
  // Through the record cache when a flush listener is set (see there).
  // Returns false, storing nothing, when the window has expired already.
  bool put(const K& key, const V& value, int64_t window_start, int64_t timestamp) {
    if (!listener_ || !caching_) {
      const bool stored = put(key, value, window_start);
      if (listener_) listener_(Windowed<K>{key, window_of(window_start)}, value, timestamp);
      return stored;
    }
    const std::string_view key_bytes = serdes_.key(key);
    return cache_->put_cached(key_bytes, window_start, serdes_.value(value), timestamp);
  }

  // Stores the value of `key`'s window that starts at `window_start`; a value
  // its serde writes as null removes the window. Returns false, storing
  // nothing, when the window has expired already (Kafka Streams counts such
  // records as dropped).
  bool put(const K& key, const V& value, int64_t window_start) {
    const std::string_view key_bytes = serdes_.key(key);
    if (auto value_bytes = serdes_.value(value))
      return bytes_->put(key_bytes, window_start, *value_bytes);
    bytes_->remove(key_bytes, window_start);
    return true;
  }
  void remove(const K& key, int64_t window_start) {
    bytes_->remove(serdes_.key(key), window_start);
  }
  std::optional<V> fetch(const K& key, int64_t window_start) const {
    return serdes_.read_value(bytes_->fetch(serdes_.key(key), window_start));
  }
  // `key`'s windows that start from time_from to time_to (inclusive), by start.
  WindowStoreIterator<V> fetch(const K& key, int64_t time_from, int64_t time_to) const {
    return WindowStoreIterator<V>(std::make_unique<internal::WindowTimeCursor<V>>(
        bytes_->fetch(serdes_.key(key), time_from, time_to), serdes_.value_serde()));
  }
  // Every key's windows that start from time_from to time_to (inclusive).
  KeyValueIterator<Windowed<K>, V> fetch_all(int64_t time_from, int64_t time_to) const {
    return windowed(bytes_->fetch_all(time_from, time_to));
  }
  KeyValueIterator<Windowed<K>, V> all() const { return windowed(bytes_->all()); }

  state::WindowBytesStore& bytes_store() { return *bytes_; }

 private:
  KeyValueIterator<Windowed<K>, V> windowed(std::unique_ptr<state::WindowBytesIterator> it) const {
    return KeyValueIterator<Windowed<K>, V>(std::make_unique<internal::WindowedCursor<K, V>>(
        std::move(it), bytes_->window_size(), serdes_.key_serde(), serdes_.value_serde()));
  }
  Window window_of(int64_t window_start) const {
    return {window_start, internal::window_end(window_start, bytes_->window_size())};
  }

  std::unique_ptr<state::WindowBytesStore> bytes_;
  // The record cache layer, when bytes_ is one; const, since the metrics
  // read its counts from another thread.
  state::CachingWindowBytesStore* const cache_;
  bool caching_ = cache_ != nullptr;
  internal::StoreSerdes<K, V> serdes_;
  FlushListener listener_;
};

// Aggregates per key and session, as Kafka Streams' SessionStore. A session's
// window holds its first and last record timestamps (both inclusive).
template <class K, class V>
class SessionStore : public StateStore {
 public:
  SessionStore(std::unique_ptr<state::SessionBytesStore> bytes, SerdePtr<K> key_serde,
               SerdePtr<V> value_serde)
      : bytes_(std::move(bytes)),
        serdes_(bytes_->name(), std::move(key_serde), std::move(value_serde)) {}

  std::string_view name() const override { return bytes_->name(); }
  void flush() override { bytes_->flush(); }
  void close() override { bytes_->close(); }
  bool persistent() const { return bytes_->persistent(); }
  bool is_open() const { return bytes_->is_open(); }
  // The serdes the store reads and writes with.
  const SerdePtr<K>& key_serde() const { return serdes_.key_serde(); }
  const SerdePtr<V>& value_serde() const { return serdes_.value_serde(); }
  state::BytesStore* bytes() override { return bytes_.get(); }
  int64_t retention_period() const { return bytes_->retention_period(); }

  // Stores the session's aggregate; a value its serde writes as null removes
  // the session. Returns false, storing nothing, when the session has expired.
  bool put(const Windowed<K>& session, const V& aggregate) {
    const std::string_view key_bytes = serdes_.key(session.key);
    if (auto value_bytes = serdes_.value(aggregate))
      return bytes_->put(key_bytes, session.window.start, session.window.end, *value_bytes);
    bytes_->remove(key_bytes, session.window.start, session.window.end);
    return true;
  }
  void remove(const Windowed<K>& session) {
    bytes_->remove(serdes_.key(session.key), session.window.start, session.window.end);
  }
  std::optional<V> fetch_session(const K& key, int64_t start, int64_t end) const {
    return serdes_.read_value(bytes_->fetch_session(serdes_.key(key), start, end));
  }
  // `key`'s sessions that end at or after earliest_session_end and start at or
  // before latest_session_start, by end time. For a record at time t and an
  // inactivity gap g, find_sessions(key, t - g, t + g) returns the sessions the
  // record merges with.
  KeyValueIterator<Windowed<K>, V> find_sessions(const K& key, int64_t earliest_session_end,
                                                 int64_t latest_session_start) const {
    return sessions(
        bytes_->find_sessions(serdes_.key(key), earliest_session_end, latest_session_start));
  }
  // Every session of `key`.
  KeyValueIterator<Windowed<K>, V> fetch(const K& key) const {
    return sessions(bytes_->fetch(serdes_.key(key)));
  }
  KeyValueIterator<Windowed<K>, V> all() const { return sessions(bytes_->all()); }

  state::SessionBytesStore& bytes_store() { return *bytes_; }

 private:
  KeyValueIterator<Windowed<K>, V> sessions(std::unique_ptr<state::SessionBytesIterator> it) const {
    return KeyValueIterator<Windowed<K>, V>(std::make_unique<internal::SessionCursor<K, V>>(
        std::move(it), serdes_.key_serde(), serdes_.value_serde()));
  }

  std::unique_ptr<state::SessionBytesStore> bytes_;
  internal::StoreSerdes<K, V> serdes_;
};

enum class StoreKind { kKeyValue, kWindow, kSession };
std::string_view to_string(StoreKind kind);

// Everything about a store except its types: what a topology carries and the
// runtime needs to create, changelog and restore the store.
struct StoreSpec {
  std::string name;
  StoreKind kind = StoreKind::kKeyValue;
  // Persistent stores keep their data in RocksDB under the task's state
  // directory; in-memory stores are rebuilt from the changelog after a restart.
  // Default: true.
  bool persistent = true;
  // Whether writes go to the changelog topic "<application.id>-<name>-changelog".
  // Default: true.
  bool logging_enabled = true;
  // Changelog topic configs, applied over those changelog_topic_config() sets.
  std::map<std::string, std::string> log_config;
  // Window and session stores: how much stream time windows or sessions are
  // kept for; versioned key-value stores: their history retention.
  std::chrono::milliseconds retention{0};
  // A key-value store that keeps every version of a value for `retention`
  // (VersionedKeyValueStore); it has no record cache.
  bool versioned = false;
  // Window stores: the size of the windows, so that a window's end is known.
  std::chrono::milliseconds window_size{0};
  RocksDbOptions rocksdb;
  // Serde and type names, for descriptions and error messages.
  std::string key_serde_name;
  std::string value_serde_name;

  // "<application.id>-<name>-changelog".
  std::string changelog_topic(std::string_view application_id) const;
  // cleanup.policy=compact for key-value stores; compact,delete with
  // retention.ms = retention + 1 day for window and session stores (as Kafka
  // Streams); then log_config.
  std::map<std::string, std::string> changelog_topic_config() const;
  // Where a persistent store lives in a task's directory: <task>/rocksdb/<name>.
  std::filesystem::path directory_in(const std::filesystem::path& task_directory) const;
  // Window and session stores drop expired data a time segment at a time:
  // max(retention / 2, 60 s), as Kafka Streams.
  int64_t segment_interval_ms() const;
};

// Describes a store and creates it, typed, for each task. Made by Stores;
// copyable, so a topology can keep one per store.
class StoreBuilder {
 public:
  // Wraps a byte store of the spec's kind into the typed store.
  using Wrapper = std::function<std::unique_ptr<StateStore>(std::unique_ptr<state::BytesStore>)>;

  // Throws std::invalid_argument when the spec cannot work (empty name or a
  // name not allowed in a topic name, window size <= 0, retention < window size).
  StoreBuilder(StoreSpec spec, Wrapper wrapper,
               std::shared_ptr<const internal::StoreCodec> codec = nullptr);

  const StoreSpec& spec() const { return spec_; }
  // How queries read the store's keys and values without its types; nullptr
  // when it was built without one.
  const internal::StoreCodec* codec() const { return codec_.get(); }
  const std::string& name() const { return spec_.name; }

  // Keeps the store in memory instead of RocksDB.
  StoreBuilder& in_memory();
  StoreBuilder& with_logging_enabled(std::map<std::string, std::string> topic_config = {});
  StoreBuilder& with_logging_disabled();
  // Queries show a stored JSON value as `present` makes it of its text (see
  // Materialized::query_json).
  StoreBuilder& with_query_json(std::function<std::string(std::string_view json)> present);
  // Window and session stores only.
  StoreBuilder& with_retention(std::chrono::milliseconds retention);
  StoreBuilder& with_rocksdb_options(const RocksDbOptions& options);

  // Opens the byte store: a RocksDB in `directory` (created when missing) using
  // `resources`' shared cache, or the store's own cache when `resources` is
  // nullptr; or an in-memory store, which ignores both. Throws StateStoreError
  // when RocksDB cannot open the directory. With `compactions_paused`, a
  // RocksDB key-value store opens with its automatic compactions off, for a
  // restore onto its files (see RocksDbKeyValueStore::resume_compactions).
  std::unique_ptr<state::BytesStore> build_bytes_store(const std::filesystem::path& directory,
                                                       state::RocksDbResources* resources,
                                                       bool compactions_paused = false) const;
  // The typed store over `bytes`: build_bytes_store's result, or a layer
  // wrapped around it (such as changelogging) of the same kind.
  std::unique_ptr<StateStore> wrap(std::unique_ptr<state::BytesStore> bytes) const;
  // wrap(build_bytes_store(directory, resources)).
  std::unique_ptr<StateStore> build(const std::filesystem::path& directory,
                                    state::RocksDbResources* resources) const;

 private:
  StoreSpec spec_;
  Wrapper wrapper_;
  std::shared_ptr<const internal::StoreCodec> codec_;
};

namespace internal {

template <class K, class V>
void fill_serde_names(StoreSpec& spec, const SerdePtr<K>& key_serde,
                      const SerdePtr<V>& value_serde) {
  if (!key_serde)
    throw std::invalid_argument("state store '" + spec.name + "': no key serde for type " +
                                demangle(typeid(K)));
  if (!value_serde)
    throw std::invalid_argument("state store '" + spec.name + "': no value serde for type " +
                                demangle(typeid(V)));
  spec.key_serde_name = key_serde->name();
  spec.value_serde_name = value_serde->name();
}

// The store a wrapper received has another kind than its spec: only a bug can
// cause that.
[[noreturn]] void throw_store_kind_mismatch(std::string_view store, StoreKind expected);

// `more` goes to the typed store's constructor after the serdes.
template <class Typed, class Bytes, class K, class V, class... More>
StoreBuilder::Wrapper typed_wrapper(StoreKind kind, SerdePtr<K> key_serde, SerdePtr<V> value_serde,
                                    More... more) {
  return [kind, key_serde, value_serde, more...](std::unique_ptr<state::BytesStore> store) {
    if (dynamic_cast<Bytes*>(store.get()) == nullptr)
      throw_store_kind_mismatch(store ? store->name() : "", kind);
    std::unique_ptr<Bytes> bytes(static_cast<Bytes*>(store.release()));
    return std::unique_ptr<StateStore>(
        std::make_unique<Typed>(std::move(bytes), key_serde, value_serde, more...));
  };
}

}  // namespace internal

// Builders of store descriptions, as Kafka Streams' Stores: persistent (RocksDB)
// and changelogged unless told otherwise.
class Stores {
 public:
  template <class K, class V>
  static StoreBuilder key_value(std::string name, SerdePtr<K> key_serde = default_serde<K>(),
                                SerdePtr<V> value_serde = default_serde<V>()) {
    StoreSpec spec;
    spec.name = std::move(name);
    spec.kind = StoreKind::kKeyValue;
    internal::fill_serde_names(spec, key_serde, value_serde);
    return StoreBuilder(std::move(spec),
                        internal::typed_wrapper<KeyValueStore<K, V>, state::KeyValueBytesStore>(
                            StoreKind::kKeyValue, key_serde, value_serde),
                        internal::make_store_codec(key_serde, value_serde));
  }

  // Every version of each key's value, kept for `history_retention` of
  // stream time: see VersionedKeyValueStore.
  template <class K, class V>
  static StoreBuilder versioned_key_value(std::string name,
                                          std::chrono::milliseconds history_retention,
                                          SerdePtr<K> key_serde = default_serde<K>(),
                                          SerdePtr<V> value_serde = default_serde<V>()) {
    StoreSpec spec;
    spec.name = std::move(name);
    spec.kind = StoreKind::kKeyValue;
    spec.versioned = true;
    spec.retention = history_retention;
    internal::fill_serde_names(spec, key_serde, value_serde);
    return StoreBuilder(
        std::move(spec),
        internal::typed_wrapper<VersionedKeyValueStore<K, V>, state::KeyValueBytesStore>(
            StoreKind::kKeyValue, key_serde, value_serde, history_retention.count()));
  }

  // Windows of `window_size`, kept for `retention` (at least the window size;
  // for a windowed aggregation, window size + grace period).
  template <class K, class V>
  static StoreBuilder window(std::string name, std::chrono::milliseconds window_size,
                             std::chrono::milliseconds retention,
                             SerdePtr<K> key_serde = default_serde<K>(),
                             SerdePtr<V> value_serde = default_serde<V>()) {
    StoreSpec spec;
    spec.name = std::move(name);
    spec.kind = StoreKind::kWindow;
    spec.window_size = window_size;
    spec.retention = retention;
    internal::fill_serde_names(spec, key_serde, value_serde);
    return StoreBuilder(std::move(spec),
                        internal::typed_wrapper<WindowStore<K, V>, state::WindowBytesStore>(
                            StoreKind::kWindow, key_serde, value_serde),
                        internal::make_store_codec(key_serde, value_serde));
  }

  // Sessions kept for `retention` (for a session aggregation, at least the
  // inactivity gap + grace period).
  template <class K, class V>
  static StoreBuilder session(std::string name, std::chrono::milliseconds retention,
                              SerdePtr<K> key_serde = default_serde<K>(),
                              SerdePtr<V> value_serde = default_serde<V>()) {
    StoreSpec spec;
    spec.name = std::move(name);
    spec.kind = StoreKind::kSession;
    spec.retention = retention;
    internal::fill_serde_names(spec, key_serde, value_serde);
    return StoreBuilder(std::move(spec),
                        internal::typed_wrapper<SessionStore<K, V>, state::SessionBytesStore>(
                            StoreKind::kSession, key_serde, value_serde),
                        internal::make_store_codec(key_serde, value_serde));
  }
};

}  // namespace rill
