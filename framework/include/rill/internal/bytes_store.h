// Internal: the byte-level state store interfaces that the typed stores of
// rill/state.h wrap. Implementations (in memory, RocksDB, time-segmented window
// and session stores) live in framework/src/state/; changelogging layers wrap
// these interfaces. Nothing here is part of the stable API.
//
// Keys are ordered by unsigned byte comparison (memcmp), as RocksDB's default
// comparator and Kafka Streams' Bytes: "a" < "ab" < "b" < "\x80".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace rill {

// A store operation failed for a reason outside the caller's code: the store
// could not be opened (its directory is locked or unreadable), RocksDB reported
// an I/O error, or the store was used after close(). The message names the store.
class StateStoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace rill

namespace rill::state {

// What every byte store has.
class BytesStore {
 public:
  virtual ~BytesStore() = default;
  virtual std::string_view name() const = 0;
  // True when the data lives on disk (RocksDB) and survives a restart.
  virtual bool persistent() const = 0;
  virtual bool is_open() const = 0;
  // Makes every write so far durable in the store's files (RocksDB flushes its
  // memtables). Nothing to do for in-memory stores.
  virtual void flush() = 0;
  // Flushes and releases the store; open iterators become invalid (valid()
  // returns false). Idempotent.
  virtual void close() = 0;
};

// A cursor over key-value entries in key order. key() and value() are valid
// while valid() is true and stay valid until the next call to next(). Iterators
// see writes made while they are open only as far as the implementation allows
// (RocksDB: not at all), so do not rely on either.
class KeyValueBytesIterator {
 public:
  virtual ~KeyValueBytesIterator() = default;
  virtual bool valid() const = 0;
  virtual void next() = 0;
  virtual std::string_view key() const = 0;
  virtual std::string_view value() const = 0;
};

// One write of a batch: a value to put, or std::nullopt to delete the key.
struct BytesWrite {
  std::string_view key;
  std::optional<std::string_view> value;
};

class KeyValueBytesStore : public BytesStore {
 public:
  virtual std::optional<std::string> get(std::string_view key) const = 0;
  virtual void put(std::string_view key, std::string_view value) = 0;
  // Stores `value` only when `key` has no value. Returns the value already
  // there (and stores nothing), or std::nullopt when it stored `value`.
  virtual std::optional<std::string> put_if_absent(std::string_view key,
                                                   std::string_view value) = 0;
  virtual void remove(std::string_view key) = 0;
  // Applies the writes in order, atomically where the implementation can
  // (RocksDB: one WriteBatch). Meant for restoring from a changelog.
  virtual void write_all(std::span<const BytesWrite> writes) = 0;
  // write_all in its two halves, for a record cache that hands its entries on
  // at every exactly-once commit but writes the store only when it lets an
  // entry go: log_only writes to the changelog alone (a store below every
  // changelog layer has none), store_only to the store alone.
  virtual void log_only(std::span<const BytesWrite> writes) { (void)writes; }
  virtual void store_only(std::span<const BytesWrite> writes) { write_all(writes); }
  // Removes every key k with from <= k < to_exclusive (RocksDB: DeleteRange,
  // one range tombstone however many keys it covers).
  virtual void remove_range(std::string_view from, std::string_view to_exclusive) = 0;

  // Keys k with from <= k <= to; empty when from > to.
  virtual std::unique_ptr<KeyValueBytesIterator> range(std::string_view from,
                                                       std::string_view to) const = 0;
  // Keys that start with `prefix`; every key when the prefix is empty.
  virtual std::unique_ptr<KeyValueBytesIterator> prefix_scan(std::string_view prefix) const = 0;
  virtual std::unique_ptr<KeyValueBytesIterator> all() const = 0;
  // Exact for in-memory stores, RocksDB's estimate otherwise.
  virtual uint64_t approximate_num_entries() const = 0;
};

// What the runtime asks of a record cache (statestore.cache.max.bytes), the
// outermost layer it puts on a key-value or window store.
class RecordCache {
 public:
  virtual ~RecordCache() = default;
  // Hands on what the cache holds, without flushing the store below.
  virtual void hand_on() = 0;
  // Writes the store below with what was handed on but kept from it, so
  // that the store's files hold every commit (as a snapshot copies them).
  virtual void store_handed_on() = 0;
  // Hands on what the cache holds; from then on put_cached writes through.
  virtual void disable() = 0;
  virtual std::size_t cached_entries() const = 0;
  // Reads the cache answered and reads that went past it, while enabled. Safe
  // from any thread.
  virtual uint64_t hits() const = 0;
  virtual uint64_t misses() const = 0;
};

// A key-value store behind the record cache; the typed KeyValueStore reaches
// the cache through it. Writes made with a timestamp wait in the cache, one
// entry per key holding its newest value, until a commit (flush()) or an
// eviction hands them on: to the store below (and so to its changelog), then
// to the flush listener. A commit without a flush (exactly-once's) hands on to
// the changelog and the listener only: the store below takes such an entry
// when the cache lets it go or flushes. Reads and iterators see the entries
// the store below lacks before it; other writes go straight through.
class CachingKeyValueBytesStore : public KeyValueBytesStore, public RecordCache {
 public:
  // A key, its newest value (std::nullopt: deleted) and the value the store
  // held before (std::nullopt: none, or not asked for), as the cache hands
  // them on.
  using FlushListener =
      std::function<void(std::string_view key, std::optional<std::string_view> value,
                         std::optional<std::string_view> old_value, int64_t timestamp)>;
  // With `read_old_values`, each key handed on costs one more read of the
  // store below (Kafka Streams' sendOldValues).
  virtual void set_flush_listener(FlushListener listener, bool read_old_values) = 0;
  // Caches `value` (std::nullopt: a delete) as `key`'s newest; once disabled,
  // writes it through and hands it to the listener at once.
  virtual void put_cached(std::string_view key, std::optional<std::string_view> value,
                          int64_t timestamp) = 0;
  // get() without copying a cached value: the view stays valid until the next
  // write to the store. A value read from the store below lands in `buffer`.
  virtual std::optional<std::string_view> read(std::string_view key, std::string& buffer) const = 0;
};

// Entries of a window store, each a record key, a window start and a value.
class WindowBytesIterator {
 public:
  virtual ~WindowBytesIterator() = default;
  virtual bool valid() const = 0;
  virtual void next() = 0;
  virtual std::string_view key() const = 0;
  virtual int64_t window_start() const = 0;
  virtual std::string_view value() const = 0;
};

// One write of a window batch: a value to put, or std::nullopt to delete the
// window. put_all sets `stored`.
struct WindowWrite {
  std::string_view key;
  int64_t window_start = 0;
  std::optional<std::string_view> value;
  // Whether the write reached the store: false for a put whose window has
  // expired, or expires within the batch.
  bool stored = false;
};

// Values per (key, window start), kept for `retention` milliseconds of stream
// time: the store's stream time is the largest window start written to it, and
// windows that start at or before stream time - retention expire. Window starts
// are milliseconds since the epoch, never negative.
class WindowBytesStore : public BytesStore {
 public:
  // Size of the windows, so that readers can tell a window's end.
  virtual int64_t window_size() const = 0;
  virtual int64_t retention_period() const = 0;
  // The largest window start written since the store was opened, or -1.
  virtual int64_t observed_stream_time() const = 0;
  // The length of its time segments, which order fetch_all() and all().
  virtual int64_t segment_interval() const = 0;

  // Returns false, storing nothing, when the window has expired already.
  virtual bool put(std::string_view key, int64_t window_start, std::string_view value) = 0;
  virtual void remove(std::string_view key, int64_t window_start) = 0;
  // Applies the writes as put() and remove() one after another would leave
  // the store, but may take them in another order (RocksDB's memtable takes
  // keys in order several times faster than scattered ones): a window that a
  // later put of the batch expires is not written at all.
  virtual void put_all(std::span<WindowWrite> writes) {
    for (WindowWrite& write : writes) {
      write.stored = true;
      if (write.value)
        write.stored = put(write.key, write.window_start, *write.value);
      else
        remove(write.key, write.window_start);
    }
  }
  virtual std::optional<std::string> fetch(std::string_view key, int64_t window_start) const = 0;
  // Windows of `key` with time_from <= start <= time_to, by start time.
  virtual std::unique_ptr<WindowBytesIterator> fetch(std::string_view key, int64_t time_from,
                                                     int64_t time_to) const = 0;
  // Windows of every key with time_from <= start <= time_to, ordered by time
  // segment, then key bytes, then start time (as Kafka Streams).
  virtual std::unique_ptr<WindowBytesIterator> fetch_all(int64_t time_from,
                                                         int64_t time_to) const = 0;
  virtual std::unique_ptr<WindowBytesIterator> all() const = 0;
};

// A window store behind the record cache, as CachingKeyValueBytesStore for
// key-value stores: puts with a timestamp wait in the cache, one entry per key
// and window, until a commit or an eviction hands them on. Kafka Streams
// caches window stores the same way, so that a window's repeated updates are
// folded before the store, its changelog and the processors downstream.
class CachingWindowBytesStore : public WindowBytesStore, public RecordCache {
 public:
  // A window, its newest value (std::nullopt: deleted) and the value the
  // store held before (std::nullopt: none, or not asked for).
  using FlushListener = std::function<void(
      std::string_view key, int64_t window_start, std::optional<std::string_view> value,
      std::optional<std::string_view> old_value, int64_t timestamp)>;
  virtual void set_flush_listener(FlushListener listener, bool read_old_values) = 0;
  // Caches `value` as the window's newest; once disabled, writes it through
  // and hands it to the listener at once. A delete (std::nullopt) is never
  // cached: it goes through at once, and to the listener. Returns false,
  // storing nothing, when the window has expired already.
  virtual bool put_cached(std::string_view key, int64_t window_start,
                          std::optional<std::string_view> value, int64_t timestamp) = 0;
};

// Entries of a session store: a record key, the session's first and last
// record timestamps (both inclusive) and the session's aggregate.
class SessionBytesIterator {
 public:
  virtual ~SessionBytesIterator() = default;
  virtual bool valid() const = 0;
  virtual void next() = 0;
  virtual std::string_view key() const = 0;
  virtual int64_t session_start() const = 0;
  virtual int64_t session_end() const = 0;
  virtual std::string_view value() const = 0;
};

// Aggregates per (key, session), kept for `retention` milliseconds of stream
// time, which for sessions is the largest session end written.
class SessionBytesStore : public BytesStore {
 public:
  virtual int64_t retention_period() const = 0;
  virtual int64_t observed_stream_time() const = 0;

  // Requires 0 <= start <= end. Returns false, storing nothing, when the
  // session has expired already.
  virtual bool put(std::string_view key, int64_t start, int64_t end, std::string_view value) = 0;
  virtual void remove(std::string_view key, int64_t start, int64_t end) = 0;
  virtual std::optional<std::string> fetch_session(std::string_view key, int64_t start,
                                                   int64_t end) const = 0;
  // Sessions of `key` with end >= earliest_session_end and start <=
  // latest_session_start: those a record at time t may merge with, for
  // earliest_session_end = t - gap and latest_session_start = t + gap (Kafka
  // Streams' findSessions). Ordered by session end, then start.
  virtual std::unique_ptr<SessionBytesIterator> find_sessions(
      std::string_view key, int64_t earliest_session_end, int64_t latest_session_start) const = 0;
  // Every session of `key`.
  virtual std::unique_ptr<SessionBytesIterator> fetch(std::string_view key) const = 0;
  virtual std::unique_ptr<SessionBytesIterator> all() const = 0;
};

// The block cache and write-buffer manager shared by the RocksDB stores of an
// application instance (framework/src/state/rocksdb_resources.h).
class RocksDbResources;

}  // namespace rill::state
