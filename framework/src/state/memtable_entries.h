// Entries of rill's RocksDB memtables, kept as addresses in a vector: each an
// internal key (length-prefixed) followed by its value, as RocksDB encodes
// them. What both memtables (sorted_runs_memtable.h, key_hashed_memtable.h)
// need to order them and to seek in them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include <rocksdb/memtablerep.h>

namespace rill::state {

using MemtableEntries = std::vector<const char*>;

// An internal key is the user key, then 8 bytes of sequence number and type.
inline constexpr std::size_t kInternalKeyFooter = 8;
// How many entries ahead a read in an order other than the arena's (the order
// of writes) prefetches: each entry would otherwise wait for memory.
inline constexpr std::size_t kPrefetchAhead = 8;

// Puts `entries` in the order of their internal keys under RocksDB's bytewise
// comparator, which the stores with rill's memtables keep: user key, then
// sequence number and type, the later first. Faster than std::sort with the
// memtable's comparator, which decodes both entries of every comparison and
// compares through three virtual calls.
void sort_bytewise(MemtableEntries& entries);

// Orders entries as the memtable's comparator does.
struct EntryLess {
  const rocksdb::MemTableRep::KeyComparator& compare;
  bool operator()(const char* a, const char* b) const { return compare(a, b) < 0; }
};

// Where a memtable iterator's seeks land in `entries`, which are in order:
// `memtable_key` (the target encoded as an entry) when RocksDB gives one, else
// `internal_key`.
class EntrySeeks {
 public:
  EntrySeeks(const rocksdb::MemTableRep::KeyComparator& compare, const rocksdb::Slice& internal_key,
             const char* memtable_key)
      : compare_(compare), internal_key_(internal_key), memtable_key_(memtable_key) {}

  // The first entry at or after the target; entries.size() when none.
  std::size_t seek(const MemtableEntries& entries) const {
    return first_where(entries, [&](const char* entry) { return order(entry) < 0; });
  }
  // The last entry at or before the target; entries.size() when none.
  std::size_t seek_for_prev(const MemtableEntries& entries) const {
    const std::size_t after =
        first_where(entries, [&](const char* entry) { return order(entry) <= 0; });
    return after == 0 ? entries.size() : after - 1;
  }

 private:
  int order(const char* entry) const {
    return memtable_key_ != nullptr ? compare_(entry, memtable_key_)
                                    : compare_(entry, internal_key_);
  }
  template <class Before>
  static std::size_t first_where(const MemtableEntries& entries, Before&& before) {
    return static_cast<std::size_t>(std::partition_point(entries.begin(), entries.end(), before) -
                                    entries.begin());
  }

  const rocksdb::MemTableRep::KeyComparator& compare_;
  const rocksdb::Slice& internal_key_;
  const char* memtable_key_;
};

}  // namespace rill::state
