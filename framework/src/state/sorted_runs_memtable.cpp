#include "state/sorted_runs_memtable.h"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <utility>
#include <vector>

#include "state/memtable_entries.h"

namespace rill::state {
namespace {

using rocksdb::MemTableRep;
using Entries = MemtableEntries;

// Puts `entries` in order. `run_starts` are the places where an entry comes
// before the one ahead of it; `unordered`: they were too many to note.
void put_in_order(Entries& entries, const std::vector<std::size_t>& run_starts, bool unordered,
                  EntryLess less) {
  if (unordered) {
    sort_bytewise(entries);
    return;
  }
  if (run_starts.empty()) return;
  // Neighbouring runs merged pairwise, until one is left.
  std::vector<std::size_t> bounds{0};
  bounds.insert(bounds.end(), run_starts.begin(), run_starts.end());
  bounds.push_back(entries.size());
  std::vector<std::size_t> merged;
  while (bounds.size() > 2) {
    merged.clear();
    std::size_t run = 0;
    for (; run + 2 < bounds.size(); run += 2) {
      std::inplace_merge(entries.begin() + static_cast<std::ptrdiff_t>(bounds[run]),
                         entries.begin() + static_cast<std::ptrdiff_t>(bounds[run + 1]),
                         entries.begin() + static_cast<std::ptrdiff_t>(bounds[run + 2]), less);
      merged.push_back(bounds[run]);
    }
    if (run + 1 < bounds.size() - 1) merged.push_back(bounds[run]);  // an odd run out
    merged.push_back(entries.size());
    bounds.swap(merged);
  }
}

class EntryIterator final : public MemTableRep::Iterator {
 public:
  // Over `shared` (ordered, and not written any more), or over `owned`.
  EntryIterator(const MemTableRep::KeyComparator& compare, const Entries* shared, Entries owned)
      : compare_(compare),
        owned_(std::move(owned)),
        entries_(shared != nullptr ? *shared : owned_),
        position_(entries_.size()) {}

  bool Valid() const override { return position_ < entries_.size(); }
  const char* key() const override { return entries_[position_]; }
  void Next() override { ++position_; }
  void Prev() override { position_ = position_ == 0 ? entries_.size() : position_ - 1; }
  void SeekToFirst() override { position_ = 0; }
  void SeekToLast() override { position_ = entries_.empty() ? 0 : entries_.size() - 1; }

  void Seek(const rocksdb::Slice& internal_key, const char* memtable_key) override {
    position_ = EntrySeeks(compare_, internal_key, memtable_key).seek(entries_);
  }
  void SeekForPrev(const rocksdb::Slice& internal_key, const char* memtable_key) override {
    position_ = EntrySeeks(compare_, internal_key, memtable_key).seek_for_prev(entries_);
  }

 private:
  const MemTableRep::KeyComparator& compare_;
  Entries owned_;
  const Entries& entries_;
  std::size_t position_;
};

class SortedRunsRep final : public MemTableRep {
 public:
  SortedRunsRep(const KeyComparator& compare, rocksdb::Allocator* allocator)
      : MemTableRep(allocator), compare_(compare) {}

  // RocksDB inserts one entry at a time, while reads may come from other
  // threads.
  void Insert(rocksdb::KeyHandle handle) override {
    const auto* entry = static_cast<const char*>(handle);
    std::unique_lock lock(mutex_);
    if (!unordered_ && !entries_.empty() && compare_(entries_.back(), entry) > 0) {
      run_starts_.push_back(entries_.size());
      // Short runs are not worth merging: a sort puts them in order.
      if (run_starts_.size() >= kFewRuns && entries_.size() < kShortRun * run_starts_.size()) {
        unordered_ = true;
        run_starts_ = {};
      }
    }
    entries_.push_back(entry);
    bytes_.store(sizeof(*this) + entries_.capacity() * sizeof(const char*) +
                     run_starts_.capacity() * sizeof(std::size_t),
                 std::memory_order_relaxed);
  }

  bool Contains(const char* key) const override {
    std::shared_lock lock(mutex_);
    return std::any_of(entries_.begin(), entries_.end(),
                       [&](const char* entry) { return compare_(entry, key) == 0; });
  }

  void MarkReadOnly() override {
    std::unique_lock lock(mutex_);
    read_only_ = true;
  }

  std::size_t ApproximateMemoryUsage() override { return bytes_.load(std::memory_order_relaxed); }

  // A memtable that takes no more writes is put in order once, in place;
  // one still written is read through an ordered copy.
  Iterator* GetIterator(rocksdb::Arena* arena) override {
    const Entries* shared = nullptr;
    Entries copy;
    std::vector<std::size_t> runs;
    bool unordered = false;
    {
      std::unique_lock lock(mutex_);
      if (read_only_) {
        put_in_order(entries_, run_starts_, unordered_, EntryLess{compare_});
        run_starts_.clear();
        unordered_ = false;
        shared = &entries_;
      } else {
        copy = entries_;
        runs = run_starts_;
        unordered = unordered_;
      }
    }
    if (shared == nullptr) put_in_order(copy, runs, unordered, EntryLess{compare_});
    if (arena == nullptr) return new EntryIterator(compare_, shared, std::move(copy));
    // RocksDB destroys an iterator made for its arena without freeing it, and
    // Arena is not public: the memory stays with this memtable, which
    // outlives its iterators (few: a flush takes one).
    static_assert(alignof(EntryIterator) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
    std::lock_guard lock(iterator_memory_mutex_);
    auto& memory = iterator_memory_.emplace_back(new std::byte[sizeof(EntryIterator)]);
    return new (memory.get()) EntryIterator(compare_, shared, std::move(copy));
  }

 private:
  static constexpr std::size_t kFewRuns = 64;
  static constexpr std::size_t kShortRun = 16;

  const KeyComparator& compare_;
  mutable std::shared_mutex mutex_;
  Entries entries_;
  // Where an entry comes before the one ahead of it.
  std::vector<std::size_t> run_starts_;
  bool unordered_ = false;
  bool read_only_ = false;
  std::atomic<std::size_t> bytes_{sizeof(*this)};
  std::mutex iterator_memory_mutex_;
  std::vector<std::unique_ptr<std::byte[]>> iterator_memory_;
};

class SortedRunsRepFactory final : public rocksdb::MemTableRepFactory {
 public:
  MemTableRep* CreateMemTableRep(const MemTableRep::KeyComparator& compare,
                                 rocksdb::Allocator* allocator, const rocksdb::SliceTransform*,
                                 rocksdb::Logger*) override {
    return new SortedRunsRep(compare, allocator);
  }
  const char* Name() const override { return "RillSortedRunsRepFactory"; }
};

}  // namespace

std::shared_ptr<rocksdb::MemTableRepFactory> sorted_runs_memtable_factory() {
  return std::make_shared<SortedRunsRepFactory>();
}

}  // namespace rill::state
