#include "state/caching_stores.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/intrusive/set.hpp>
#include <boost/intrusive/unordered_set.hpp>

#include "state/forwarding_stores.h"
#include "state/key_layout.h"

namespace rill::state {
namespace {

namespace bi = boost::intrusive;

// The cache's entries of a range, copied when the iterator is made (as a
// RocksDB iterator reads a snapshot), merged with the store's entries: a
// cached key's newest value wins over the store's, and a cached delete hides
// the store's entry.
class MergedIterator final : public KeyValueBytesIterator {
 public:
  using Cached = std::vector<std::pair<std::string, std::optional<std::string>>>;

  MergedIterator(std::unique_ptr<KeyValueBytesIterator> store, Cached cached,
                 std::shared_ptr<const bool> open)
      : store_(std::move(store)), cached_(std::move(cached)), open_(std::move(open)) {
    settle();
  }

  bool valid() const override { return *open_ && source_ != Source::kNone; }
  void next() override {
    if (!valid()) return;
    if (source_ == Source::kCache) {
      if (same_key_) store_->next();
      ++position_;
    } else {
      store_->next();
    }
    settle();
  }
  std::string_view key() const override {
    return source_ == Source::kCache ? cached_[position_].first : store_->key();
  }
  std::string_view value() const override {
    return source_ == Source::kCache ? *cached_[position_].second : store_->value();
  }

 private:
  enum class Source { kNone, kCache, kStore };

  // Stands on the smaller of the two keys, skipping cached deletes and the
  // store entries they hide.
  void settle() {
    while (true) {
      const bool store_valid = store_->valid();
      if (position_ == cached_.size()) {
        source_ = store_valid ? Source::kStore : Source::kNone;
        return;
      }
      const auto& [cached_key, cached_value] = cached_[position_];
      const int order = store_valid ? compare_bytes(cached_key, store_->key()) : -1;
      if (order > 0) {
        source_ = Source::kStore;
        return;
      }
      same_key_ = order == 0;
      if (cached_value) {
        source_ = Source::kCache;
        return;
      }
      if (same_key_) store_->next();
      ++position_;
    }
  }

  std::unique_ptr<KeyValueBytesIterator> store_;
  Cached cached_;
  std::shared_ptr<const bool> open_;
  std::size_t position_ = 0;
  Source source_ = Source::kNone;
  bool same_key_ = false;
};

// One cached key: its value and its links in the key order, in the index by
// hash and in the order of updates, with the key's bytes and then room for the
// value right after it in the same allocation. One allocation per key, where a
// std::map and an unordered index took two nodes, a copy of the key view and
// the value's own buffer (about 220 bytes for a key and value of 16).
class CacheEntry {
 public:
  using KeyHook = bi::set_member_hook<bi::link_mode<bi::normal_link>, bi::optimize_size<true>>;
  using HashHook =
      bi::unordered_set_member_hook<bi::link_mode<bi::normal_link>, bi::store_hash<true>>;

  // An entry of `key` with room for a value of `value_capacity` bytes in
  // place; a larger value gets a buffer of its own.
  static CacheEntry* create(std::string_view key, std::size_t value_capacity) {
    void* memory = ::operator new(sizeof(CacheEntry) + key.size() + value_capacity);
    auto* entry = new (memory) CacheEntry(key.size(), value_capacity);
    std::memcpy(entry->key_bytes(), key.data(), key.size());
    return entry;
  }
  static void destroy(CacheEntry* entry) {
    entry->~CacheEntry();
    ::operator delete(entry);
  }
  struct Destroy {
    void operator()(CacheEntry* entry) const { destroy(entry); }
  };

  CacheEntry(const CacheEntry&) = delete;
  CacheEntry& operator=(const CacheEntry&) = delete;

  std::string_view key() const { return {key_bytes(), key_size_}; }
  // std::nullopt: a delete.
  std::optional<std::string_view> value() const {
    if (!has_value_) return std::nullopt;
    return std::string_view(buffer_ != nullptr ? buffer_.get() : value_bytes(), value_size_);
  }
  std::optional<std::string> value_copy() const {
    const auto bytes = value();
    return bytes ? std::optional<std::string>(*bytes) : std::nullopt;
  }
  // In place when it fits the room after the key, or the buffer of a value
  // before it.
  void set_value(std::optional<std::string_view> value) {
    has_value_ = value.has_value();
    if (!value) return;
    const std::size_t length = value->size();
    if (length <= value_capacity_) {
      std::memmove(value_bytes(), value->data(), length);
      buffer_.reset();
      buffer_capacity_ = 0;
    } else if (length <= buffer_capacity_) {
      std::memmove(buffer_.get(), value->data(), length);
    } else {
      const std::size_t capacity = std::max(length, 2 * std::size_t{buffer_capacity_});
      auto buffer = std::make_unique_for_overwrite<char[]>(capacity);
      std::memcpy(buffer.get(), value->data(), length);
      buffer_ = std::move(buffer);
      buffer_capacity_ = static_cast<uint32_t>(capacity);
    }
    value_size_ = static_cast<uint32_t>(length);
  }

  KeyHook by_key;
  HashHook by_hash;
  int64_t timestamp = 0;
  // Counted against the budget: key, value and kEntryOverhead.
  std::size_t size = 0;
  // Where it stands in the order of updates among the dirty or among the
  // clean entries (UpdateOrder).
  uint32_t slot = 0;
  // Not yet handed on. A clean entry holds what the store below holds, kept
  // for reads only, unless it is `unwritten`.
  bool dirty = true;
  // Handed on to the changelog and downstream but not yet written to the
  // store below, which takes it when the cache lets it go or flushes.
  bool unwritten = false;

 private:
  CacheEntry(std::size_t key_size, std::size_t value_capacity)
      : key_size_(static_cast<uint32_t>(key_size)),
        value_capacity_(static_cast<uint32_t>(value_capacity)) {}
  ~CacheEntry() = default;
  char* key_bytes() { return reinterpret_cast<char*>(this + 1); }
  const char* key_bytes() const { return reinterpret_cast<const char*>(this + 1); }
  char* value_bytes() { return key_bytes() + key_size_; }
  const char* value_bytes() const { return key_bytes() + key_size_; }

  // Declared after the flags above, so that they pack into 96 bytes.
  uint32_t key_size_;
  uint32_t value_capacity_;
  uint32_t buffer_capacity_ = 0;
  uint32_t value_size_ = 0;
  bool has_value_ = false;
  // A value larger than the room in place.
  std::unique_ptr<char[]> buffer_;
};
static_assert(sizeof(CacheEntry) <= 96);
using OwnedEntry = std::unique_ptr<CacheEntry, CacheEntry::Destroy>;

struct EntryKey {
  using type = std::string_view;
  std::string_view operator()(const CacheEntry& entry) const { return entry.key(); }
};
using EntriesByKey =
    bi::set<CacheEntry, bi::member_hook<CacheEntry, CacheEntry::KeyHook, &CacheEntry::by_key>,
            bi::key_of_value<EntryKey>, bi::compare<BytesLess>, bi::constant_time_size<false>>;
using EntriesByHash =
    bi::unordered_set<CacheEntry,
                      bi::member_hook<CacheEntry, CacheEntry::HashHook, &CacheEntry::by_hash>,
                      bi::key_of_value<EntryKey>, bi::hash<BytesHash>, bi::power_2_buckets<true>>;

// How far ahead a walk over entries loads them (prefetch).
constexpr std::size_t kPrefetchAhead = 8;

// Loads the cache lines of an entry that is about to be read: its fields and
// the key and value bytes that follow them.
inline void prefetch(const CacheEntry* entry) {
  if (entry == nullptr) return;  // a hole
  __builtin_prefetch(entry);
  __builtin_prefetch(reinterpret_cast<const char*>(entry) + 64);
  __builtin_prefetch(entry + 1);
}

// The dirty or the clean entries, least recently updated first, as slots of a
// vector with a hole where an entry left. Updating an entry touches only the
// entry and its slot, where a linked list also wrote to both neighbours, two
// more cache misses on entries scattered over the heap; and a walk from the
// oldest knows the entries ahead, whose loads overlap (prefetch), where
// following links waited for one miss after another (three quarters of
// handing on an exactly-once commit's entries). The holes are closed up once
// they outnumber the entries.
class UpdateOrder {
 public:
  CacheEntry* oldest() const { return head_ < slots_.size() ? slots_[head_] : nullptr; }
  std::size_t size() const { return entries_; }
  // From the oldest; a null slot is a hole.
  std::span<CacheEntry* const> slots() const { return std::span(slots_).subspan(head_); }

  void add_newest(CacheEntry& entry) {
    if (slots_.size() - head_ > 2 * entries_ + kSlack) close_holes();
    entry.slot = static_cast<uint32_t>(slots_.size());
    slots_.push_back(&entry);
    ++entries_;
  }
  void remove(const CacheEntry& entry) {
    slots_[entry.slot] = nullptr;
    if (--entries_ == 0) {
      slots_.clear();
      head_ = 0;
      return;
    }
    while (slots_[head_] == nullptr) ++head_;
  }

 private:
  static constexpr std::size_t kSlack = 64;

  void close_holes() {
    std::size_t to = 0;
    for (std::size_t from = head_; from < slots_.size(); ++from) {
      if (from + kPrefetchAhead < slots_.size())
        __builtin_prefetch(slots_[from + kPrefetchAhead], 1);
      if (CacheEntry* entry = slots_[from]) {
        entry->slot = static_cast<uint32_t>(to);
        slots_[to++] = entry;
      }
    }
    slots_.resize(to);
    head_ = 0;
  }

  std::vector<CacheEntry*> slots_;
  // The oldest entry's slot (0 when empty): the holes before it are never
  // looked at again.
  std::size_t head_ = 0;
  std::size_t entries_ = 0;
};

// What an entry costs beyond its key and value bytes, counted as Kafka
// Streams counts it (NamedCache's node: three links of 8 bytes, the dirty
// flag, and the record context's timestamp, offset and partition), so that
// one statestore.cache.max.bytes holds as many entries in both. Like Kafka
// Streams' count, it is below what an entry occupies in memory (here
// sizeof(CacheEntry), 96 bytes, with the key's and the value's bytes in one
// allocation, and a bucket of 8 in the index by hash).
constexpr std::size_t kEntryOverhead = 3 * 8 + 1 + 8 + 8 + 4;

class CachingKeyValueStore final : public BasicForwardingKeyValueStore<CachingKeyValueBytesStore> {
 public:
  // Whether a commit without a flush may leave its entries for the store
  // below to take later (see defers_store_writes), or writes them there at
  // once (a window store, whose changelog layer logs only what its segments
  // admit).
  enum class Writes { kDeferrable, kAtOnce };

  CachingKeyValueStore(std::unique_ptr<KeyValueBytesStore> inner, CacheBudget& budget,
                       Writes writes = Writes::kDeferrable)
      : BasicForwardingKeyValueStore(std::move(inner)), budget_(budget), writes_mode_(writes) {}
  ~CachingKeyValueStore() override { drop_entries(); }
  CachingKeyValueStore(const CachingKeyValueStore&) = delete;
  CachingKeyValueStore& operator=(const CachingKeyValueStore&) = delete;

  void hand_on() override { hand_on_dirty(/*write_store=*/false); }
  void flush() override {
    hand_on_dirty(/*write_store=*/true);
    store_unwritten();
    inner_->flush();
  }
  void store_handed_on() override { store_unwritten(); }
  // Without a flush: what the cache holds is lost, as the records since the
  // last commit are replayed. Entries handed on but not written to the store
  // are lost with them: a store closed without a flush gets no checkpoint,
  // so its changelog restores them.
  void close() override {
    drop_entries();
    *open_ = false;
    inner_->close();
  }

  std::optional<std::string> get(std::string_view key) const override {
    if (const CacheEntry* entry = lookup(key)) return entry->value_copy();
    return inner_->get(key);
  }
  std::optional<std::string_view> read(std::string_view key, std::string& buffer) const override {
    if (const CacheEntry* entry = lookup(key)) return entry->value();
    auto value = inner_->get(key);
    if (!value) return std::nullopt;
    buffer = std::move(*value);
    return buffer;
  }

  // Writes without a timestamp go straight to the store below; a cached entry
  // of the key is dropped, since the write supersedes it.
  void put(std::string_view key, std::string_view value) override {
    ++writes_;
    discard(key);
    inner_->put(key, value);
  }
  std::optional<std::string> put_if_absent(std::string_view key, std::string_view value) override {
    ++writes_;
    CacheEntry* entry = find(key);
    if (entry == nullptr) return inner_->put_if_absent(key, value);
    if (entry->value()) return entry->value_copy();
    // A cached delete: the key has no value, whatever the store below holds.
    erase(entry);
    inner_->put(key, value);
    return std::nullopt;
  }
  void remove(std::string_view key) override {
    ++writes_;
    discard(key);
    inner_->remove(key);
  }
  void write_all(std::span<const BytesWrite> writes) override {
    ++writes_;
    for (const BytesWrite& write : writes) discard(write.key);
    inner_->write_all(writes);
  }
  void remove_range(std::string_view from, std::string_view to_exclusive) override {
    ++writes_;
    if (compare_bytes(from, to_exclusive) < 0) {
      EntriesByKey& by_key = in_key_order();
      for (auto it = by_key.lower_bound(from);
           it != by_key.end() && compare_bytes(it->key(), to_exclusive) < 0;) {
        // The changelog layer below writes a tombstone for each key its store
        // holds: a key the store has not taken yet goes there first.
        let_go(*it++);
      }
    }
    inner_->remove_range(from, to_exclusive);
  }

  std::unique_ptr<KeyValueBytesIterator> range(std::string_view from,
                                               std::string_view to) const override {
    auto store = inner_->range(from, to);
    if (compare_bytes(from, to) > 0) return store;
    return merged(std::move(store), from, key_successor(to));
  }
  std::unique_ptr<KeyValueBytesIterator> prefix_scan(std::string_view prefix) const override {
    return merged(inner_->prefix_scan(prefix), prefix, prefix_successor(prefix));
  }
  std::unique_ptr<KeyValueBytesIterator> all() const override {
    return merged(inner_->all(), {}, std::nullopt);
  }

  void set_flush_listener(FlushListener listener, bool read_old_values) override {
    // An old value is read from the store below, which must hold the last
    // value handed on.
    if (read_old_values) store_unwritten();
    listener_ = std::move(listener);
    read_old_values_ = read_old_values;
  }

  void put_cached(std::string_view key, std::optional<std::string_view> value,
                  int64_t timestamp) override {
    ++writes_;
    if (!enabled_) {
      hand_on(key, value, timestamp);
      return;
    }
    CacheEntry* found = find(key);
    // The entry being handed on keeps its value for the listener: the
    // update takes a new one.
    if (found != nullptr && detach_if_handing_on(found)) found = nullptr;
    if (found == nullptr) {
      found = CacheEntry::create(key, value ? value->size() : 0);
      insert(*found);
    } else {
      unlink(*found);
    }
    CacheEntry& entry = *found;
    entry.dirty = true;
    entry.set_value(value);
    entry.timestamp = timestamp;
    link_newest(entry);
    resize(entry, kEntryOverhead + key.size() + (value ? value->size() : 0));
    // `key` and `value` may point into buffers that handing on reuses: not
    // read from here on.
    make_room();
  }

  void disable() override {
    hand_on_dirty(/*write_store=*/true);
    store_unwritten();
    drop_entries();
    enabled_ = false;
  }
  // The entries not yet handed on.
  std::size_t cached_entries() const override { return dirty_.size(); }
  // Whether any entry, handed on or not, is cached.
  bool empty() const { return by_hash_.empty(); }
  bool enabled() const { return enabled_; }
  // Copies of the entries the store below lacks (not yet handed on, or not
  // yet written) with from <= key < to_exclusive (no upper end without it),
  // in key order.
  MergedIterator::Cached dirty_entries(std::string_view from,
                                       const std::optional<std::string>& to_exclusive) const {
    MergedIterator::Cached cached;
    const EntriesByKey& by_key = in_key_order();
    for (auto it = by_key.lower_bound(from);
         it != by_key.end() && (!to_exclusive || compare_bytes(it->key(), *to_exclusive) < 0); ++it)
      if (it->dirty || it->unwritten) cached.emplace_back(it->key(), it->value_copy());
    return cached;
  }
  const std::shared_ptr<bool>& open_flag() const { return open_; }
  uint64_t hits() const override { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const override { return misses_.load(std::memory_order_relaxed); }

 private:
  static BytesWrite write_of(const CacheEntry& entry) { return {entry.key(), entry.value()}; }
  // Sorts `entries` by key and returns their writes in that order: RocksDB's
  // memtable takes keys in order several times faster than scattered ones.
  static std::vector<BytesWrite> writes_in_key_order(std::vector<CacheEntry*>& entries) {
    std::sort(entries.begin(), entries.end(), [](const CacheEntry* a, const CacheEntry* b) {
      return compare_bytes(a->key(), b->key()) < 0;
    });
    std::vector<BytesWrite> writes;
    writes.reserve(entries.size());
    for (const CacheEntry* entry : entries) writes.push_back(write_of(*entry));
    return writes;
  }

  // How much of an entry a commit's batch wrote before handing it on.
  enum class Handed { kNotYet, kLogged, kWritten };

  // Whether a commit hands on to the changelog and downstream only, leaving
  // the store below to take an entry when the cache lets it go or flushes.
  // Exactly-once commits every 100 ms without a flush, and a key updated in
  // every interval was written to RocksDB's memtable each time: a quarter of
  // an exactly-once count's CPU. Old values are read from the store below,
  // which must then hold every value handed on.
  bool defers_store_writes() const {
    return writes_mode_ == Writes::kDeferrable && !(read_old_values_ && listener_);
  }

  // Brings the budget back within its bound. Clean entries go first: they
  // cost no write. When only dirty ones are left, the least recently updated
  // go on together, a sixteenth of the bound's worth, in one batch written in
  // key order: one scattered RocksDB write per entry was a quarter of a
  // window count's CPU. Handing on every dirty entry, as Kafka Streams'
  // cache does, emitted a fifth more records in that count, for windows still
  // being updated; a sixteenth emitted none more than one at a time.
  void make_room() {
    let_go_clean();
    if (!budget_.exceeded() || dirty_.oldest() == nullptr) return;
    hand_on_batch(/*write_store=*/true, budget_.max_bytes() / 16);
    let_go_clean();
  }
  // Lets clean entries go, least recently updated first, while the budget
  // is exceeded.
  void let_go_clean() {
    while (budget_.exceeded())
      if (CacheEntry* oldest = clean_.oldest())
        let_go(*oldest);
      else
        return;
  }

  // Only the thread running the task writes; a load and a store, no lock.
  static void count(std::atomic<uint64_t>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // The cached entry of `key`, counting a hit, or nullptr, counting a miss.
  const CacheEntry* lookup(std::string_view key) const {
    if (!by_hash_.empty()) {
      if (const CacheEntry* entry = find(key)) {
        count(hits_);
        return entry;
      }
    }
    if (enabled_) count(misses_);
    return nullptr;
  }

  std::unique_ptr<KeyValueBytesIterator> merged(
      std::unique_ptr<KeyValueBytesIterator> store, std::string_view from,
      const std::optional<std::string>& to_exclusive) const {
    MergedIterator::Cached cached = dirty_entries(from, to_exclusive);
    if (cached.empty()) return store;
    return std::make_unique<MergedIterator>(std::move(store), std::move(cached), open_);
  }

  void resize(CacheEntry& entry, std::size_t size) {
    if (size == entry.size) return;
    budget_.add(size - entry.size);
    entry.size = size;
  }

  UpdateOrder& order_of(const CacheEntry& entry) { return entry.dirty ? dirty_ : clean_; }
  void link_newest(CacheEntry& entry) { order_of(entry).add_newest(entry); }
  void unlink(CacheEntry& entry) { order_of(entry).remove(entry); }

  CacheEntry* find(std::string_view key) {
    const auto found = by_hash_.find(key);
    return found == by_hash_.end() ? nullptr : &*found;
  }
  const CacheEntry* find(std::string_view key) const {
    const auto found = by_hash_.find(key);
    return found == by_hash_.end() ? nullptr : &*found;
  }
  // The entries in key order, ordering them first if no range asked before.
  // Every entry is in one of the two orders, or being handed on.
  EntriesByKey& in_key_order() const {
    if (!ordered_) {
      for (const UpdateOrder* order : {&dirty_, &clean_})
        for (CacheEntry* entry : order->slots())
          if (entry != nullptr) by_key_.insert_unique(*entry);
      for (const HandingOn* handing_on : handing_on_)
        if (!handing_on->detached) by_key_.insert_unique(*handing_on->entry);
      ordered_ = true;
    }
    return by_key_;
  }
  // Adds a new entry to both indexes, growing the hash index's buckets to
  // keep one entry per bucket on average.
  void insert(CacheEntry& entry) {
    if (ordered_) by_key_.insert_unique(entry);
    if (by_hash_.size() >= bucket_count_) {
      const std::size_t count = bucket_count_ * 2;
      auto buckets = std::make_unique<EntriesByHash::bucket_type[]>(count);
      by_hash_.rehash(EntriesByHash::bucket_traits(buckets.get(), count));
      buckets_ = std::move(buckets);
      bucket_count_ = count;
    }
    by_hash_.insert(entry);
  }
  // Takes an entry out of both indexes.
  void remove_from_indexes(CacheEntry& entry) {
    if (ordered_) by_key_.erase(by_key_.iterator_to(entry));
    by_hash_.erase(by_hash_.iterator_to(entry));
  }
  void erase(CacheEntry* entry) {
    if (!handing_on_.empty() && detach_if_handing_on(entry)) {
      forget_old_value(entry->key());
      return;
    }
    unlink(*entry);
    resize(*entry, 0);
    drop_unlinked(*entry);
  }
  void forget_old_value(std::string_view key) {
    if (unforwarded_old_values_.empty()) return;
    if (auto it = unforwarded_old_values_.find(key); it != unforwarded_old_values_.end())
      unforwarded_old_values_.erase(it);
  }
  void discard(std::string_view key) {
    if (by_hash_.empty()) return;
    if (CacheEntry* entry = find(key)) erase(entry);
  }
  void drop_entries() {
    for (UpdateOrder* order : {&dirty_, &clean_})
      while (CacheEntry* oldest = order->oldest()) erase(oldest);
    unforwarded_old_values_.clear();
  }

  // Hands on every dirty entry, least recently updated first. What was
  // handed on stays as a clean entry while it fits in the budget, so that the
  // keys of the next commit interval are read from memory, not from the store
  // below (as Kafka Streams' cache keeps flushed entries); updates take the
  // room of clean entries before anything is handed on early. Keeping only
  // half the budget had a store whose keys fitted drop some of them at every
  // commit and read them back from RocksDB, which filled its block cache with
  // the blocks of files that the next flushes replace. `write_store`: the
  // store below takes the batch at once (a flush follows, or room is needed).
  void hand_on_dirty(bool write_store) {
    while (dirty_.oldest() != nullptr) hand_on_batch(write_store);
    unforwarded_old_values_.clear();
  }

  // The least recently updated dirty entries, up to the one that reaches
  // `max_bytes`, go to the store below first, in one batch: in key order
  // when the store takes them (RocksDB's memtable takes keys in order several
  // times faster than scattered ones), as they come when only the changelog
  // does. Then each goes to the listener in the order it was dirtied, as when
  // handed on one at a time. A write to this store by a listener, or an
  // eviction meanwhile, ends the round: the entries left go in the next one,
  // written again with their newest values.
  void hand_on_batch(bool write_store,
                     std::size_t max_bytes = std::numeric_limits<std::size_t>::max()) {
    const Handed handed =
        !write_store && defers_store_writes() ? Handed::kLogged : Handed::kWritten;
    // Only the changelog takes a logged batch, in any order: a small one is
    // still in the processor's caches when its entries are handed on, where
    // a commit's whole batch (tens of thousands of entries) was read from
    // memory once more for each pass.
    const std::size_t max_entries =
        handed == Handed::kLogged ? kLoggedBatchEntries : std::numeric_limits<std::size_t>::max();
    std::vector<CacheEntry*> dirtied;
    std::size_t bytes = 0;
    const std::span<CacheEntry* const> slots = dirty_.slots();
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (i + kPrefetchAhead < slots.size()) prefetch(slots[i + kPrefetchAhead]);
      CacheEntry* entry = slots[i];
      if (entry == nullptr) continue;
      dirtied.push_back(entry);
      bytes += entry->size;
      if (bytes >= max_bytes || dirtied.size() == max_entries) break;
    }
    if (handed == Handed::kLogged) {
      may_hold_unwritten_ = true;
      std::vector<BytesWrite> writes;
      writes.reserve(dirtied.size());
      for (const CacheEntry* entry : dirtied) writes.push_back(write_of(*entry));
      inner_->log_only(writes);
    } else {
      std::vector<CacheEntry*> by_key = dirtied;
      const std::vector<BytesWrite> writes = writes_in_key_order(by_key);
      if (read_old_values_ && listener_)
        for (const CacheEntry* entry : by_key)
          unforwarded_old_values_.try_emplace(std::string(entry->key()), inner_->get(entry->key()));
      inner_->write_all(writes);
    }
    const uint64_t writes_before = writes_;
    for (CacheEntry* entry : dirtied) {
      if (writes_ != writes_before || dirty_.oldest() != entry) return;
      evict_oldest(*entry, /*keep_clean=*/enabled_, handed);
    }
  }

  // An entry being handed on stays in the indexes, in neither order, while
  // its listener runs. A write to its key or its removal meanwhile takes it
  // out of the indexes, into `detached`, so that the listener's views of its
  // key and value stay valid and the write starts a new entry.
  struct HandingOn {
    CacheEntry* entry;
    OwnedEntry detached;
  };
  bool detach_if_handing_on(CacheEntry* entry) {
    for (HandingOn* handing_on : handing_on_) {
      if (handing_on->entry != entry || handing_on->detached) continue;
      remove_from_indexes(*entry);
      handing_on->detached.reset(entry);
      return true;
    }
    return false;
  }

  // Hands on `oldest`, the least recently updated dirty entry. With
  // `keep_clean` it stays as a clean entry, unless the listener wrote to this
  // store meanwhile or the budget has no room for it. `handed`: what a batch
  // wrote of it already.
  void evict_oldest(CacheEntry& oldest, bool keep_clean, Handed handed) {
    unlink(oldest);
    const std::size_t size = oldest.size;
    resize(oldest, 0);
    oldest.dirty = false;
    // Set already while its listener runs, whose reads must find it.
    oldest.unwritten = handed == Handed::kLogged;
    HandingOn handing_on{&oldest, {}};
    handing_on_.push_back(&handing_on);
    const uint64_t writes = writes_;
    try {
      hand_on(oldest.key(), oldest.value(), oldest.timestamp, handed);
    } catch (...) {
      handing_on_.pop_back();
      if (!handing_on.detached) drop_unlinked(oldest);
      throw;
    }
    handing_on_.pop_back();
    if (handing_on.detached) return;  // destroyed with the frame
    if (!keep_clean || writes_ != writes || budget_.bytes() + size > budget_.max_bytes()) {
      if (handed == Handed::kLogged) store(oldest);
      drop_unlinked(oldest);
      return;
    }
    link_newest(oldest);
    resize(oldest, size);
  }
  // Lets an entry go, writing it to the store below first if that has not
  // taken it yet.
  void let_go(CacheEntry& entry) {
    if (entry.unwritten) store(entry);
    erase(&entry);
  }
  void store(const CacheEntry& entry) {
    const BytesWrite write = write_of(entry);
    inner_->store_only(std::span(&write, 1));
  }
  // Writes every unwritten entry to the store below, in one batch in key order.
  void store_unwritten() {
    if (!may_hold_unwritten_) return;
    may_hold_unwritten_ = false;
    std::vector<CacheEntry*> unwritten;
    const std::span<CacheEntry* const> slots = clean_.slots();
    for (std::size_t i = 0; i < slots.size(); ++i) {
      if (i + kPrefetchAhead < slots.size()) prefetch(slots[i + kPrefetchAhead]);
      if (slots[i] != nullptr && slots[i]->unwritten) unwritten.push_back(slots[i]);
    }
    if (unwritten.empty()) return;
    inner_->store_only(writes_in_key_order(unwritten));
    for (CacheEntry* entry : unwritten) entry->unwritten = false;
  }
  // Destroys an entry that is in neither order and counts nothing against
  // the budget.
  void drop_unlinked(CacheEntry& entry) {
    forget_old_value(entry.key());
    remove_from_indexes(entry);
    CacheEntry::destroy(&entry);
  }
  void hand_on(std::string_view key, std::optional<std::string_view> value, int64_t timestamp,
               Handed handed = Handed::kNotYet) {
    std::optional<std::string> old_value;
    if (read_old_values_ && listener_) {
      // Written in a batch before it was handed on, it replaces the value
      // the store below held before the batch.
      const auto unforwarded = unforwarded_old_values_.empty() ? unforwarded_old_values_.end()
                                                               : unforwarded_old_values_.find(key);
      if (unforwarded == unforwarded_old_values_.end()) {
        old_value = inner_->get(key);
      } else {
        old_value = std::move(unforwarded->second);
        unforwarded_old_values_.erase(unforwarded);
      }
    }
    if (handed == Handed::kNotYet) {
      if (value)
        inner_->put(key, *value);
      else
        inner_->remove(key);
    }
    if (listener_)
      listener_(key, value, old_value ? std::optional<std::string_view>(*old_value) : std::nullopt,
                timestamp);
  }

  CacheBudget& budget_;
  const Writes writes_mode_;
  // With read_old_values_: what the store below held for the keys written in
  // a batch and not yet handed on.
  std::unordered_map<std::string, std::optional<std::string>, BytesHash, std::equal_to<>>
      unforwarded_old_values_;
  // The entries being handed on, innermost last: a listener's write can make
  // room by handing on another entry.
  std::vector<HandingOn*> handing_on_;
  FlushListener listener_;
  bool read_old_values_ = false;
  bool enabled_ = true;
  // The entries of a logged batch (hand_on_batch).
  static constexpr std::size_t kLoggedBatchEntries = 256;
  // The entries in key order, for ranges, kept from the first range on: a
  // store read by key only (a count, a tumbling window) never pays for it.
  mutable EntriesByKey by_key_;
  mutable bool ordered_ = false;
  // The entries by key hash, for the point lookups of every read and write:
  // the key order compares keys at each of its ~17 levels for 100,000
  // entries, each a cache miss.
  static constexpr std::size_t kInitialBuckets = 64;
  std::size_t bucket_count_ = kInitialBuckets;
  std::unique_ptr<EntriesByHash::bucket_type[]> buckets_ =
      std::make_unique<EntriesByHash::bucket_type[]>(kInitialBuckets);
  EntriesByHash by_hash_{EntriesByHash::bucket_traits(buckets_.get(), kInitialBuckets)};
  UpdateOrder dirty_;
  UpdateOrder clean_;
  // Whether a batch was logged without the store since store_unwritten()
  // last looked: it walks every clean entry.
  bool may_hold_unwritten_ = false;
  // Writes to this store, so that handing on an entry sees whether its
  // listener wrote to it.
  uint64_t writes_ = 0;
  // Read by the iterators, which read as exhausted once the store is closed.
  std::shared_ptr<bool> open_ = std::make_shared<bool>(true);
  mutable std::atomic<uint64_t> hits_{0};
  mutable std::atomic<uint64_t> misses_{0};
};

// A window store's entries as a key-value iterator whose keys are window keys
// (key | window start, key_layout.h).
class WindowKeysIterator final : public KeyValueBytesIterator {
 public:
  explicit WindowKeysIterator(std::unique_ptr<WindowBytesIterator> windows)
      : windows_(std::move(windows)) {}
  bool valid() const override { return windows_->valid(); }
  void next() override { windows_->next(); }
  std::string_view key() const override {
    key_.clear();
    append_window_key(key_, windows_->key(), windows_->window_start());
    return key_;
  }
  std::string_view value() const override { return windows_->value(); }

 private:
  std::unique_ptr<WindowBytesIterator> windows_;
  mutable std::string key_;
};

// Window keys of one record key (of `key_size` bytes) as window entries: a
// range of window keys also holds the windows of longer keys that start with
// the same bytes, which are skipped.
class KeyWindowsIterator final : public WindowBytesIterator {
 public:
  KeyWindowsIterator(std::unique_ptr<KeyValueBytesIterator> entries, std::size_t key_size)
      : entries_(std::move(entries)), size_(key_size + kTimestampSize) {
    settle();
  }
  bool valid() const override { return entries_->valid(); }
  void next() override {
    entries_->next();
    settle();
  }
  std::string_view key() const override { return parse_window_key(entries_->key()).key; }
  int64_t window_start() const override { return parse_window_key(entries_->key()).window_start; }
  std::string_view value() const override { return entries_->value(); }

 private:
  void settle() {
    while (entries_->valid() && entries_->key().size() != size_) entries_->next();
  }
  std::unique_ptr<KeyValueBytesIterator> entries_;
  std::size_t size_;
};

// The windows of a store merged with the cached windows not yet handed on, in
// the store's order: by time segment, then key bytes, then start. A cached
// window replaces the store's.
class MergedWindowsIterator final : public WindowBytesIterator {
 public:
  // `cached`: window keys and values, in that order.
  MergedWindowsIterator(std::unique_ptr<WindowBytesIterator> store,
                        std::vector<std::pair<std::string, std::string>> cached,
                        int64_t segment_interval, std::shared_ptr<const bool> open)
      : store_(std::move(store)),
        cached_(std::move(cached)),
        interval_(segment_interval),
        open_(std::move(open)) {
    settle();
  }
  bool valid() const override { return *open_ && (from_cache_ || store_->valid()); }
  void next() override {
    if (!valid()) return;
    if (from_cache_)
      ++position_;
    else
      store_->next();
    settle();
  }
  std::string_view key() const override {
    return from_cache_ ? parse_window_key(cached_[position_].first).key : store_->key();
  }
  int64_t window_start() const override {
    return from_cache_ ? parse_window_key(cached_[position_].first).window_start
                       : store_->window_start();
  }
  std::string_view value() const override {
    return from_cache_ ? std::string_view(cached_[position_].second) : store_->value();
  }

 private:
  // Negative when the cached window comes first, 0 when it is the store's.
  int compare(const std::string& cached) const {
    const WindowKey window = parse_window_key(cached);
    const int64_t cached_segment = window.window_start / interval_;
    const int64_t store_segment = store_->window_start() / interval_;
    if (cached_segment != store_segment) return cached_segment < store_segment ? -1 : 1;
    const int order = compare_bytes(window.key, store_->key());
    if (order != 0) return order;
    const int64_t start = store_->window_start();
    return window.window_start < start ? -1 : (window.window_start > start ? 1 : 0);
  }
  void settle() {
    from_cache_ = false;
    if (position_ == cached_.size()) return;
    if (!store_->valid()) {
      from_cache_ = true;
      return;
    }
    const int order = compare(cached_[position_].first);
    if (order == 0) store_->next();  // the cached window replaces it
    from_cache_ = order <= 0;
  }

  std::unique_ptr<WindowBytesIterator> store_;
  std::vector<std::pair<std::string, std::string>> cached_;
  int64_t interval_;
  std::shared_ptr<const bool> open_;
  std::size_t position_ = 0;
  bool from_cache_ = false;
};

// The window store below as a key-value store of window keys, which the
// key-value record cache folds updates in front of. It serves the calls that
// cache makes for a window store: a window's get, put and remove, and one
// record key's windows as a range.
class WindowKeyValueView final : public KeyValueBytesStore {
 public:
  explicit WindowKeyValueView(std::unique_ptr<WindowBytesStore> windows)
      : windows_(std::move(windows)) {}

  WindowBytesStore& windows() const { return *windows_; }
  // Whether the last put reached the store: false when its window had expired.
  bool last_put_stored() const { return last_put_stored_; }

  std::string_view name() const override { return windows_->name(); }
  bool persistent() const override { return windows_->persistent(); }
  bool is_open() const override { return windows_->is_open(); }
  void flush() override { windows_->flush(); }
  void close() override { windows_->close(); }

  std::optional<std::string> get(std::string_view key) const override {
    const WindowKey window = parse_window_key(key);
    return windows_->fetch(window.key, window.window_start);
  }
  void put(std::string_view key, std::string_view value) override {
    const WindowKey window = parse_window_key(key);
    last_put_stored_ = windows_->put(window.key, window.window_start, value);
  }
  std::optional<std::string> put_if_absent(std::string_view key, std::string_view value) override {
    if (auto existing = get(key)) return existing;
    put(key, value);
    return std::nullopt;
  }
  void remove(std::string_view key) override {
    const WindowKey window = parse_window_key(key);
    windows_->remove(window.key, window.window_start);
  }
  void write_all(std::span<const BytesWrite> writes) override {
    std::vector<WindowWrite> windows;
    windows.reserve(writes.size());
    for (const BytesWrite& write : writes) {
      const WindowKey window = parse_window_key(write.key);
      windows.push_back({window.key, window.window_start, write.value});
    }
    windows_->put_all(windows);
  }
  // A window cache writes what it hands on to the changelog and the store
  // together.
  void log_only(std::span<const BytesWrite>) override { unsupported("log_only"); }
  void store_only(std::span<const BytesWrite>) override { unsupported("store_only"); }
  void remove_range(std::string_view, std::string_view) override { unsupported("remove_range"); }
  // `from` and `to` are windows of one record key.
  std::unique_ptr<KeyValueBytesIterator> range(std::string_view from,
                                               std::string_view to) const override {
    const WindowKey first = parse_window_key(from);
    const WindowKey last = parse_window_key(to);
    if (first.key != last.key) unsupported("a range over several keys");
    return std::make_unique<WindowKeysIterator>(
        windows_->fetch(first.key, first.window_start, last.window_start));
  }
  std::unique_ptr<KeyValueBytesIterator> prefix_scan(std::string_view) const override {
    unsupported("prefix_scan");
  }
  std::unique_ptr<KeyValueBytesIterator> all() const override { unsupported("all"); }
  uint64_t approximate_num_entries() const override { return 0; }

 private:
  [[noreturn]] void unsupported(std::string_view what) const {
    throw std::logic_error("window store '" + std::string(name()) + "' behind a record cache: " +
                           std::string(what) + " is not a window operation");
  }

  std::unique_ptr<WindowBytesStore> windows_;
  bool last_put_stored_ = true;
};

// The record cache of a window store: the key-value cache over the window
// store's entries, keyed by window key. Reads ask the window store itself
// while nothing is cached, which is always the case for the stores of a
// stream-stream join (they disable the cache).
class CachingWindowStore final : public CachingWindowBytesStore {
 public:
  CachingWindowStore(std::unique_ptr<WindowBytesStore> inner, CacheBudget& budget) {
    auto view = std::make_unique<WindowKeyValueView>(std::move(inner));
    view_ = view.get();
    cache_ = std::make_unique<CachingKeyValueStore>(std::move(view), budget,
                                                    CachingKeyValueStore::Writes::kAtOnce);
  }

  std::string_view name() const override { return windows().name(); }
  bool persistent() const override { return windows().persistent(); }
  bool is_open() const override { return windows().is_open(); }
  void flush() override { cache_->flush(); }
  void close() override { cache_->close(); }

  int64_t window_size() const override { return windows().window_size(); }
  int64_t retention_period() const override { return windows().retention_period(); }
  int64_t segment_interval() const override { return windows().segment_interval(); }
  // The store's, or a later window start still in the cache.
  int64_t observed_stream_time() const override {
    return std::max(windows().observed_stream_time(), cached_stream_time_);
  }

  bool put(std::string_view key, int64_t window_start, std::string_view value) override {
    if (cache_->empty()) return windows().put(key, window_start, value);
    cache_->put(window_key(key, window_start), value);
    return view_->last_put_stored();
  }
  void remove(std::string_view key, int64_t window_start) override {
    if (cache_->empty()) return windows().remove(key, window_start);
    cache_->remove(window_key(key, window_start));
  }
  std::optional<std::string> fetch(std::string_view key, int64_t window_start) const override {
    if (window_start < earliest_live_time()) return std::nullopt;
    if (cache_->empty()) return windows().fetch(key, window_start);
    return cache_->get(window_key(key, window_start));
  }
  std::unique_ptr<WindowBytesIterator> fetch(std::string_view key, int64_t time_from,
                                             int64_t time_to) const override {
    const int64_t from = std::max(time_from, earliest_live_time());
    if (cache_->empty() || from > time_to) return windows().fetch(key, from, time_to);
    const std::string first(window_key(key, from));
    return std::make_unique<KeyWindowsIterator>(cache_->range(first, window_key(key, time_to)),
                                                key.size());
  }
  std::unique_ptr<WindowBytesIterator> fetch_all(int64_t time_from,
                                                 int64_t time_to) const override {
    const int64_t from = std::max(time_from, earliest_live_time());
    auto store = windows().fetch_all(from, time_to);
    if (cache_->empty() || from > time_to) return store;
    std::vector<std::pair<std::string, std::string>> cached;
    for (auto& [key, value] : cache_->dirty_entries({}, std::nullopt)) {
      const int64_t start = parse_window_key(key).window_start;
      if (value && start >= from && start <= time_to)
        cached.emplace_back(std::move(key), std::move(*value));
    }
    if (cached.empty()) return store;
    const int64_t interval = segment_interval();
    std::sort(cached.begin(), cached.end(), [interval](const auto& a, const auto& b) {
      const WindowKey x = parse_window_key(a.first);
      const WindowKey y = parse_window_key(b.first);
      if (x.window_start / interval != y.window_start / interval)
        return x.window_start / interval < y.window_start / interval;
      return compare_bytes(a.first, b.first) < 0;
    });
    return std::make_unique<MergedWindowsIterator>(std::move(store), std::move(cached), interval,
                                                   cache_->open_flag());
  }
  std::unique_ptr<WindowBytesIterator> all() const override {
    return fetch_all(0, std::numeric_limits<int64_t>::max());
  }

  void set_flush_listener(FlushListener listener, bool read_old_values) override {
    listener_ = std::move(listener);
    read_old_values_ = read_old_values;
    if (!listener_) {
      cache_->set_flush_listener(nullptr, false);
      return;
    }
    cache_->set_flush_listener(
        [this](std::string_view key, std::optional<std::string_view> value,
               std::optional<std::string_view> old_value, int64_t timestamp) {
          const WindowKey window = parse_window_key(key);
          listener_(window.key, window.window_start, value, old_value, timestamp);
        },
        read_old_values);
  }
  bool put_cached(std::string_view key, int64_t window_start, std::optional<std::string_view> value,
                  int64_t timestamp) override {
    if (expired(window_start)) return false;
    if (!value) {
      std::optional<std::string> old_value;
      if (read_old_values_ && listener_) old_value = fetch(key, window_start);
      remove(key, window_start);
      if (listener_) listener_(key, window_start, std::nullopt, old_value, timestamp);
      return true;
    }
    cached_stream_time_ = std::max(cached_stream_time_, window_start);
    const bool enabled = cache_->enabled();
    cache_->put_cached(window_key(key, window_start), value, timestamp);
    // A disabled cache wrote it through, and nothing else.
    return enabled || view_->last_put_stored();
  }

  void hand_on() override { cache_->hand_on(); }
  // A window cache writes what it hands on at once.
  void store_handed_on() override {}
  void disable() override { cache_->disable(); }
  std::size_t cached_entries() const override { return cache_->cached_entries(); }
  uint64_t hits() const override { return cache_->hits(); }
  uint64_t misses() const override { return cache_->misses(); }

 private:
  WindowBytesStore& windows() const { return view_->windows(); }

  // As the segmented store below counts time: windows that start before this
  // are no longer kept, and a write to a segment older than the earliest
  // kept is refused.
  int64_t earliest_live_time() const {
    const int64_t observed = observed_stream_time();
    if (observed < 0) return 0;
    return std::max<int64_t>(0, observed - retention_period() + 1);
  }
  bool expired(int64_t window_start) const {
    const int64_t observed = observed_stream_time();
    if (observed < 0) return false;
    const int64_t interval = segment_interval();
    return window_start / interval < std::max<int64_t>(0, observed - retention_period()) / interval;
  }
  // The window key in a buffer reused by every call: the key-value cache
  // copies what it keeps, and reads nothing it was given once handing on
  // (whose processors may write here again) has begun.
  std::string_view window_key(std::string_view key, int64_t window_start) const {
    key_buffer_.clear();
    append_window_key(key_buffer_, key, window_start);
    return key_buffer_;
  }

  WindowKeyValueView* view_ = nullptr;
  std::unique_ptr<CachingKeyValueStore> cache_;
  FlushListener listener_;
  bool read_old_values_ = false;
  int64_t cached_stream_time_ = -1;
  mutable std::string key_buffer_;
};

}  // namespace

std::unique_ptr<BytesStore> with_record_cache(std::unique_ptr<BytesStore> store, StoreKind kind,
                                              CacheBudget& budget) {
  switch (kind) {
    case StoreKind::kKeyValue:
      return std::make_unique<CachingKeyValueStore>(
          std::unique_ptr<KeyValueBytesStore>(static_cast<KeyValueBytesStore*>(store.release())),
          budget);
    case StoreKind::kWindow:
      return std::make_unique<CachingWindowStore>(
          std::unique_ptr<WindowBytesStore>(static_cast<WindowBytesStore*>(store.release())),
          budget);
    case StoreKind::kSession:
      return store;
  }
  return store;
}

}  // namespace rill::state
