#include "state/key_hashed_memtable.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

#include <rocksdb/slice_transform.h>

#include "state/memtable_entries.h"

namespace rill::state {
namespace {

using rocksdb::MemTableRep;
using rocksdb::Slice;
using Entries = MemtableEntries;

constexpr std::size_t kInitialCapacity = 1024;
// Iterators of prefix-mode reads one thread may hold at once in one memtable
// without a heap allocation (a lookup holds one).
constexpr std::size_t kIteratorSlots = 4;

std::string_view view(const Slice& bytes) {
  return {bytes.data(), bytes.size()};
}

// The user key of a memtable entry: a length-prefixed internal key, then the value.
Slice user_key_of(const char* entry) {
  const Slice internal = rocksdb::GetLengthPrefixedSlice(entry);
  return {internal.data(), internal.size() - kInternalKeyFooter};
}

// The hash of a prefix: its low bits place an entry, all of it tells entries
// apart without reading them.
using Hash = uint32_t;

// An open-addressing table of entries by the hash of their prefix, probed
// linearly, with each entry's hash beside it: a probe reads only the entries
// whose hash matches, and a larger table is filled without reading any. Its
// arrays are in the memtable's arena, so that they count against the
// memtables' bound and go with it.
struct Table {
  std::size_t capacity() const { return mask + 1; }

  std::size_t mask = 0;
  std::atomic<const char*>* entries = nullptr;
  std::atomic<Hash>* hashes = nullptr;
};

class KeyHashedRep;

// The Get running on this thread, which the iterator RocksDB's Get asks for
// belongs to.
struct CurrentGet {
  const KeyHashedRep* rep = nullptr;
  std::byte* storage = nullptr;
  class EntriesIterator** made = nullptr;
};
thread_local CurrentGet current_get;

// Entries in order: those of one prefix (gathered at each seek, in prefix
// mode), or all of the memtable's.
class EntriesIterator final : public MemTableRep::Iterator {
 public:
  // `slot`: the flag of the memtable's iterator slot this one occupies, or null.
  EntriesIterator(const KeyHashedRep& rep, bool prefix_mode, std::atomic<bool>* slot);
  ~EntriesIterator() override;
  EntriesIterator(const EntriesIterator&) = delete;
  EntriesIterator& operator=(const EntriesIterator&) = delete;

  bool Valid() const override { return position_ < entries_->size(); }
  const char* key() const override { return (*entries_)[position_]; }
  void Next() override {
    // A flush reads every entry in order, which is not the arena's.
    if (++position_ + kPrefetchAhead < entries_->size())
      __builtin_prefetch((*entries_)[position_ + kPrefetchAhead]);
  }
  void Prev() override { position_ = position_ == 0 ? entries_->size() : position_ - 1; }
  void Seek(const Slice& internal_key, const char* memtable_key) override;
  void SeekForPrev(const Slice& internal_key, const char* memtable_key) override;
  void SeekToFirst() override;
  void SeekToLast() override;

 private:
  // Reads the entries of the target's prefix in prefix mode, or all.
  void gather(const Slice& internal_key);
  void gather_all();

  const KeyHashedRep& rep_;
  const bool prefix_mode_;
  std::atomic<bool>* const slot_;
  // The entries of one prefix, gathered by the last seek.
  Entries of_prefix_;
  // All entries, once a read asked for them.
  std::shared_ptr<const Entries> all_;
  const Entries* entries_ = &of_prefix_;
  std::size_t position_ = 0;
};

class KeyHashedRep final : public MemTableRep {
 public:
  KeyHashedRep(const KeyComparator& compare, rocksdb::Allocator* allocator,
               const rocksdb::SliceTransform* prefix_extractor)
      : MemTableRep(allocator), compare_(compare), prefix_extractor_(prefix_extractor) {
    table_.store(new_table(kInitialCapacity), std::memory_order_release);
  }

  // One writer; an entry is visible once its place is stored.
  void Insert(rocksdb::KeyHandle handle) override {
    const auto* entry = static_cast<const char*>(handle);
    if ((count_ + 1) * 4 > current().capacity() * 3) grow();
    place(current(), entry, hash_of(prefix_of(user_key_of(entry))));
    ++count_;
  }

  bool Contains(const char* key) const override {
    bool found = false;
    for_each_of_prefix(prefix_of(user_key_of(key)),
                       [&](const char* entry) { found = found || compare_(entry, key) == 0; });
    return found;
  }

  void MarkReadOnly() override { read_only_.store(true, std::memory_order_release); }
  // Its flush was the reader that needed the copy in order most.
  void MarkFlushed() override {
    std::lock_guard lock(sorted_mutex_);
    sorted_.reset();
  }

  // The tables are in the arena, which RocksDB counts itself.
  std::size_t ApproximateMemoryUsage() override { return sizeof(*this); }

  // RocksDB's own Get seeks an iterator that it asks for without an arena and
  // never frees. The iterator it gets here lives on this call's stack.
  void Get(const rocksdb::LookupKey& key, void* callback_args,
           bool (*callback)(void* arg, const char* entry)) override {
    // Ends the call's claim on this thread's Get and destroys its iterator,
    // however the call ends.
    struct Scope {
      alignas(EntriesIterator) std::byte storage[sizeof(EntriesIterator)];
      EntriesIterator* made = nullptr;
      ~Scope() {
        current_get = {};
        if (made != nullptr) made->~EntriesIterator();
      }
    } scope;
    current_get = {this, scope.storage, &scope.made};
    MemTableRep::Get(key, callback_args, callback);
  }

  Iterator* GetIterator(rocksdb::Arena* arena) override { return make_iterator(arena, false); }
  Iterator* GetDynamicPrefixIterator(rocksdb::Arena* arena) override {
    if (arena == nullptr && current_get.rep == this && *current_get.made == nullptr) {
      *current_get.made =
          new (current_get.storage) EntriesIterator(*this, prefix_extractor_ != nullptr, nullptr);
      return *current_get.made;
    }
    return make_iterator(arena, prefix_extractor_ != nullptr);
  }

  // The part of `user_key` entries are hashed by.
  std::string_view prefix_of(const Slice& user_key) const {
    if (prefix_extractor_ != nullptr && prefix_extractor_->InDomain(user_key))
      return view(prefix_extractor_->Transform(user_key));
    return view(user_key);
  }
  bool in_prefix_domain(const Slice& user_key) const {
    return prefix_extractor_ != nullptr && prefix_extractor_->InDomain(user_key);
  }

  // Calls `visit` with each entry of `prefix`, in no order.
  template <class Visit>
  void for_each_of_prefix(std::string_view prefix, Visit&& visit) const {
    const Table& table = *table_.load(std::memory_order_acquire);
    const Hash hash = hash_of(prefix);
    for (std::size_t i = hash & table.mask;; i = (i + 1) & table.mask) {
      const char* entry = table.entries[i].load(std::memory_order_acquire);
      if (entry == nullptr) return;
      if (table.hashes[i].load(std::memory_order_relaxed) == hash &&
          prefix_of(user_key_of(entry)) == prefix)
        visit(entry);
    }
  }

  // Every entry in order: once the memtable takes no more writes, one copy
  // its readers share until it is flushed; before, a copy of the reader's own.
  std::shared_ptr<const Entries> all_in_order() const {
    if (read_only_.load(std::memory_order_acquire)) {
      std::lock_guard lock(sorted_mutex_);
      // Not counted in the usage: RocksDB requires the usage of a memtable
      // that takes no more writes to stay as it was.
      if (!sorted_) sorted_ = std::make_shared<const Entries>(collect());
      return sorted_;
    }
    return std::make_shared<const Entries>(collect());
  }

  const KeyComparator& comparator() const { return compare_; }

 private:
  static Hash hash_of(std::string_view prefix) {
    const uint64_t hash = std::hash<std::string_view>{}(prefix);
    return static_cast<Hash>(hash ^ (hash >> 32));
  }

  const Table& current() const { return *table_.load(std::memory_order_relaxed); }

  // A table of `capacity` (a power of 2) empty places, in the arena.
  Table* new_table(std::size_t capacity) {
    std::size_t bytes =
        sizeof(Table) + capacity * (sizeof(std::atomic<const char*>) + sizeof(std::atomic<Hash>));
    bytes += alignof(Table);
    char* memory = nullptr;
    Allocate(bytes, &memory);
    void* aligned = memory;
    std::align(alignof(Table), bytes - alignof(Table), aligned, bytes);
    auto* table = new (aligned) Table;
    table->mask = capacity - 1;
    table->entries = reinterpret_cast<std::atomic<const char*>*>(table + 1);
    table->hashes = reinterpret_cast<std::atomic<Hash>*>(table->entries + capacity);
    for (std::size_t i = 0; i < capacity; ++i) {
      new (&table->entries[i]) std::atomic<const char*>(nullptr);
      new (&table->hashes[i]) std::atomic<Hash>(0);
    }
    return table;
  }

  static void place(const Table& table, const char* entry, Hash hash) {
    std::size_t i = hash & table.mask;
    while (table.entries[i].load(std::memory_order_relaxed) != nullptr) i = (i + 1) & table.mask;
    table.hashes[i].store(hash, std::memory_order_relaxed);
    table.entries[i].store(entry, std::memory_order_release);
  }

  // Twice the places. The smaller table stays in the arena until the memtable
  // goes, as a reader may still be probing it.
  void grow() {
    const Table& old = current();
    Table* bigger = new_table(old.capacity() * 2);
    for (std::size_t i = 0; i < old.capacity(); ++i)
      if (const char* entry = old.entries[i].load(std::memory_order_relaxed))
        place(*bigger, entry, old.hashes[i].load(std::memory_order_relaxed));
    table_.store(bigger, std::memory_order_release);
  }

  // Every entry, in order.
  Entries collect() const {
    const Table& table = *table_.load(std::memory_order_acquire);
    Entries entries;
    entries.reserve(count_);
    for (std::size_t i = 0; i < table.capacity(); ++i)
      if (const char* entry = table.entries[i].load(std::memory_order_acquire))
        entries.push_back(entry);
    sort_bytewise(entries);
    return entries;
  }

  Iterator* make_iterator(rocksdb::Arena* arena, bool prefix_mode) {
    if (arena == nullptr) return new EntriesIterator(*this, prefix_mode, nullptr);
    // RocksDB destroys an iterator made for its arena without freeing it, and
    // Arena is not public. A lookup's iterator takes a free slot of this
    // memtable; others (a flush's, a scan's) stay with the memtable, which
    // outlives its iterators.
    if (prefix_mode) {
      for (IteratorSlot& slot : iterator_slots_)
        if (!slot.busy.exchange(true, std::memory_order_acquire))
          return new (slot.storage) EntriesIterator(*this, prefix_mode, &slot.busy);
    }
    std::lock_guard lock(retired_mutex_);
    auto& memory = retired_iterators_.emplace_back(new IteratorStorage);
    return new (memory->bytes) EntriesIterator(*this, prefix_mode, nullptr);
  }

  struct IteratorStorage {
    alignas(EntriesIterator) std::byte bytes[sizeof(EntriesIterator)];
  };
  struct IteratorSlot {
    alignas(EntriesIterator) std::byte storage[sizeof(EntriesIterator)];
    std::atomic<bool> busy{false};
  };

  const KeyComparator& compare_;
  const rocksdb::SliceTransform* const prefix_extractor_;
  std::size_t count_ = 0;
  std::atomic<Table*> table_{nullptr};
  std::atomic<bool> read_only_{false};
  mutable std::mutex sorted_mutex_;
  mutable std::shared_ptr<const Entries> sorted_;
  std::array<IteratorSlot, kIteratorSlots> iterator_slots_;
  std::mutex retired_mutex_;
  std::vector<std::unique_ptr<IteratorStorage>> retired_iterators_;
};

EntriesIterator::EntriesIterator(const KeyHashedRep& rep, bool prefix_mode, std::atomic<bool>* slot)
    : rep_(rep), prefix_mode_(prefix_mode), slot_(slot) {
  if (!prefix_mode_) gather_all();
  position_ = entries_->size();
}

EntriesIterator::~EntriesIterator() {
  Entries().swap(of_prefix_);
  all_.reset();
  // Last: the slot is free for the next lookup.
  if (slot_ != nullptr) slot_->store(false, std::memory_order_release);
}

void EntriesIterator::gather_all() {
  if (!all_) all_ = rep_.all_in_order();
  entries_ = all_.get();
}

void EntriesIterator::gather(const Slice& internal_key) {
  const Slice user_key(internal_key.data(), internal_key.size() - kInternalKeyFooter);
  if (!prefix_mode_ || !rep_.in_prefix_domain(user_key)) {
    gather_all();
    return;
  }
  of_prefix_.clear();
  entries_ = &of_prefix_;
  rep_.for_each_of_prefix(rep_.prefix_of(user_key),
                          [this](const char* entry) { of_prefix_.push_back(entry); });
  std::sort(of_prefix_.begin(), of_prefix_.end(), EntryLess{rep_.comparator()});
}

void EntriesIterator::Seek(const Slice& internal_key, const char* memtable_key) {
  gather(internal_key);
  position_ = EntrySeeks(rep_.comparator(), internal_key, memtable_key).seek(*entries_);
}

void EntriesIterator::SeekForPrev(const Slice& internal_key, const char* memtable_key) {
  gather(internal_key);
  position_ = EntrySeeks(rep_.comparator(), internal_key, memtable_key).seek_for_prev(*entries_);
}

void EntriesIterator::SeekToFirst() {
  gather_all();
  position_ = 0;
}

void EntriesIterator::SeekToLast() {
  gather_all();
  position_ = entries_->empty() ? 0 : entries_->size() - 1;
}

class KeyHashedRepFactory final : public rocksdb::MemTableRepFactory {
 public:
  MemTableRep* CreateMemTableRep(const MemTableRep::KeyComparator& compare,
                                 rocksdb::Allocator* allocator,
                                 const rocksdb::SliceTransform* prefix_extractor,
                                 rocksdb::Logger*) override {
    return new KeyHashedRep(compare, allocator, prefix_extractor);
  }
  const char* Name() const override { return "RillKeyHashedRepFactory"; }
};

}  // namespace

std::shared_ptr<rocksdb::MemTableRepFactory> key_hashed_memtable_factory() {
  return std::make_shared<KeyHashedRepFactory>();
}

}  // namespace rill::state
