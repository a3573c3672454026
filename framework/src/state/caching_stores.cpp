#include "state/caching_stores.h"

#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "state/forwarding_stores.h"
#include "state/key_layout.h"

namespace rill::state {
namespace {

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

struct Entry;
using Node = std::pair<const std::string, Entry>;

struct Entry {
  std::optional<std::string> value;  // std::nullopt: a delete
  int64_t timestamp = 0;
  // Counted against the budget: key, value and kEntryOverhead.
  std::size_t size = 0;
  // Not yet handed on. A clean entry holds what the store below holds, kept
  // for reads only.
  bool dirty = true;
  // The order of updates among the dirty or among the clean entries, through
  // the map's nodes (which never move).
  Node* older = nullptr;
  Node* newer = nullptr;
};

// The dirty or the clean entries, least recently updated first.
struct Order {
  Node* oldest = nullptr;
  Node* newest = nullptr;
};

// What an entry costs beyond its key and value bytes, counted as Kafka
// Streams counts it (NamedCache's node: three links of 8 bytes, the dirty
// flag, and the record context's timestamp, offset and partition), so that
// one statestore.cache.max.bytes holds as many entries in both and emits the
// same records. Like Kafka Streams' count, it is below what an entry occupies
// in memory (here about sizeof(Node) + 48 bytes).
constexpr std::size_t kEntryOverhead = 3 * 8 + 1 + 8 + 8 + 4;

class CachingKeyValueStore final : public BasicForwardingKeyValueStore<CachingKeyValueBytesStore> {
 public:
  CachingKeyValueStore(std::unique_ptr<KeyValueBytesStore> inner, CacheBudget& budget)
      : BasicForwardingKeyValueStore(std::move(inner)), budget_(budget) {}
  ~CachingKeyValueStore() override { drop_entries(); }
  CachingKeyValueStore(const CachingKeyValueStore&) = delete;
  CachingKeyValueStore& operator=(const CachingKeyValueStore&) = delete;

  // Hands on every dirty entry, least recently updated first. What was
  // handed on stays as a clean entry while the budget is at most half full, so
  // that the keys of the next commit interval are read from memory, not from
  // the store below (as Kafka Streams' cache keeps flushed entries); the other
  // half stays free for updates.
  void hand_on() override {
    while (dirty_.oldest != nullptr) evict_oldest(/*keep_clean=*/enabled_);
  }
  void flush() override {
    hand_on();
    inner_->flush();
  }
  // Without a flush: what the cache holds is lost, as the records since the
  // last commit are replayed.
  void close() override {
    drop_entries();
    *open_ = false;
    inner_->close();
  }

  std::optional<std::string> get(std::string_view key) const override {
    if (const Entry* entry = lookup(key)) return entry->value;
    return inner_->get(key);
  }
  std::optional<std::string_view> read(std::string_view key, std::string& buffer) const override {
    if (const Entry* entry = lookup(key))
      return entry->value ? std::optional<std::string_view>(*entry->value) : std::nullopt;
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
    auto it = entries_.find(key);
    if (it == entries_.end()) return inner_->put_if_absent(key, value);
    if (it->second.value) return it->second.value;
    // A cached delete: the key has no value, whatever the store below holds.
    erase(it);
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
      for (auto it = entries_.lower_bound(from);
           it != entries_.end() && compare_bytes(it->first, to_exclusive) < 0;)
        it = erase(it);
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
    auto it = entries_.lower_bound(key);
    if (it == entries_.end() || it->first != key)
      it = entries_.emplace_hint(it, std::piecewise_construct, std::forward_as_tuple(key),
                                 std::forward_as_tuple());
    else
      unlink(*it);
    Entry& entry = it->second;
    entry.dirty = true;
    if (!value)
      entry.value.reset();
    else if (entry.value)
      entry.value->assign(*value);  // reuses the buffer of the value before
    else
      entry.value.emplace(*value);
    entry.timestamp = timestamp;
    link_newest(*it);
    resize(entry, kEntryOverhead + key.size() + (value ? value->size() : 0));
    // `key` and `value` may point into buffers that handing on reuses: not
    // read from here on. Clean entries go first: they cost no write.
    while (budget_.exceeded() && clean_.oldest != nullptr)
      erase(entries_.find(clean_.oldest->first));
    while (budget_.exceeded() && dirty_.oldest != nullptr) evict_oldest(false);
  }

  void disable() override {
    while (dirty_.oldest != nullptr) evict_oldest(false);
    drop_entries();
    enabled_ = false;
  }
  // The entries not yet handed on.
  std::size_t cached_entries() const override { return dirty_entries_; }
  uint64_t hits() const override { return hits_.load(std::memory_order_relaxed); }
  uint64_t misses() const override { return misses_.load(std::memory_order_relaxed); }

 private:
  using Entries = std::map<std::string, Entry, BytesLess>;

  // Only the thread running the task writes; a load and a store, no lock.
  static void count(std::atomic<uint64_t>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // The cached entry of `key`, counting a hit, or nullptr, counting a miss.
  const Entry* lookup(std::string_view key) const {
    if (!entries_.empty()) {
      auto it = entries_.find(key);
      if (it != entries_.end()) {
        count(hits_);
        return &it->second;
      }
    }
    if (enabled_) count(misses_);
    return nullptr;
  }

  std::unique_ptr<KeyValueBytesIterator> merged(
      std::unique_ptr<KeyValueBytesIterator> store, std::string_view from,
      const std::optional<std::string>& to_exclusive) const {
    MergedIterator::Cached cached;
    for (auto it = entries_.lower_bound(from);
         it != entries_.end() && (!to_exclusive || compare_bytes(it->first, *to_exclusive) < 0);
         ++it)
      if (it->second.dirty) cached.emplace_back(it->first, it->second.value);
    if (cached.empty()) return store;
    return std::make_unique<MergedIterator>(std::move(store), std::move(cached), open_);
  }

  void resize(Entry& entry, std::size_t size) {
    if (size == entry.size) return;
    budget_.add(size - entry.size);
    entry.size = size;
  }

  Order& order_of(const Entry& entry) { return entry.dirty ? dirty_ : clean_; }
  void link_newest(Node& node) {
    Order& order = order_of(node.second);
    node.second.older = order.newest;
    node.second.newer = nullptr;
    (order.newest != nullptr ? order.newest->second.newer : order.oldest) = &node;
    order.newest = &node;
    if (node.second.dirty) ++dirty_entries_;
  }
  void unlink(Node& node) {
    Entry& entry = node.second;
    Order& order = order_of(entry);
    (entry.older != nullptr ? entry.older->second.newer : order.oldest) = entry.newer;
    (entry.newer != nullptr ? entry.newer->second.older : order.newest) = entry.older;
    if (entry.dirty) --dirty_entries_;
  }

  Entries::iterator erase(Entries::iterator it) {
    unlink(*it);
    resize(it->second, 0);
    return entries_.erase(it);
  }
  void discard(std::string_view key) {
    if (entries_.empty()) return;
    auto it = entries_.find(key);
    if (it != entries_.end()) erase(it);
  }
  void drop_entries() {
    for (Order* order : {&dirty_, &clean_})
      while (order->oldest != nullptr) erase(entries_.find(order->oldest->first));
  }

  // Taken out of the map before it is handed on, so that the listener's
  // processors may write to this store again. With `keep_clean` it goes back
  // as a clean entry, unless the listener wrote to this store meanwhile or
  // the budget is more than half full.
  void evict_oldest(bool keep_clean) {
    Node& oldest = *dirty_.oldest;
    unlink(oldest);
    const std::size_t size = oldest.second.size;
    resize(oldest.second, 0);
    auto node = entries_.extract(oldest.first);
    if (node.empty()) return;  // never: tells GCC 12 the handle holds a node
    Entry& entry = node.mapped();
    const uint64_t writes = writes_;
    hand_on(node.key(), entry.value ? std::optional<std::string_view>(*entry.value) : std::nullopt,
            entry.timestamp);
    if (!keep_clean || writes_ != writes || budget_.bytes() + size > budget_.max_bytes() / 2)
      return;
    entry.dirty = false;
    auto inserted = entries_.insert(std::move(node));
    link_newest(*inserted.position);
    resize(inserted.position->second, size);
  }
  void hand_on(std::string_view key, std::optional<std::string_view> value, int64_t timestamp) {
    std::optional<std::string> old_value;
    if (read_old_values_ && listener_) old_value = inner_->get(key);
    if (value)
      inner_->put(key, *value);
    else
      inner_->remove(key);
    if (listener_)
      listener_(key, value, old_value ? std::optional<std::string_view>(*old_value) : std::nullopt,
                timestamp);
  }

  CacheBudget& budget_;
  FlushListener listener_;
  bool read_old_values_ = false;
  bool enabled_ = true;
  Entries entries_;
  Order dirty_;
  Order clean_;
  std::size_t dirty_entries_ = 0;
  // Writes to this store, so that handing on an entry sees whether its
  // listener wrote to it.
  uint64_t writes_ = 0;
  // Read by the iterators, which read as exhausted once the store is closed.
  std::shared_ptr<bool> open_ = std::make_shared<bool>(true);
  mutable std::atomic<uint64_t> hits_{0};
  mutable std::atomic<uint64_t> misses_{0};
};

}  // namespace

std::unique_ptr<BytesStore> with_record_cache(std::unique_ptr<BytesStore> store, StoreKind kind,
                                              CacheBudget& budget) {
  if (kind != StoreKind::kKeyValue) return store;
  return std::make_unique<CachingKeyValueStore>(
      std::unique_ptr<KeyValueBytesStore>(static_cast<KeyValueBytesStore*>(store.release())),
      budget);
}

}  // namespace rill::state
