// A RocksDB memtable for a bulk restore. As RocksDB's vector memtable, it
// appends each entry and puts the entries in order once, when the memtable is
// read (by its flush, on RocksDB's thread). Unlike it, it notes where an entry
// comes before the one appended last, and merges the ascending runs between
// those places instead of sorting the whole vector: the changelog reader
// writes each batch in key order, so a memtable holds one run or a few.
// Sorting what was in order already took a sixth of a full restore's CPU.
#pragma once

#include <memory>

#include <rocksdb/memtablerep.h>

namespace rill::state {

std::shared_ptr<rocksdb::MemTableRepFactory> sorted_runs_memtable_factory();

}  // namespace rill::state
