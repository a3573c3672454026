// A RocksDB memtable for stores read one key prefix at a time: the window
// stores of stream-stream joins, whose every read names a record key (its
// windows within the join window) and whose records arrive in no key order.
//
// RocksDB's skip list searches a few dozen scattered entries for every insert
// and for every seek: half of a join's CPU. Here an insert appends nothing but
// the entry's place in a hash table under its prefix (the store's prefix
// extractor's part of the user key; the whole user key outside its domain),
// and a seek in prefix mode reads the entries of its prefix alone. Reads in
// total order (a flush, on RocksDB's thread; a scan across keys) put every
// entry in order first, once for a memtable that takes no more writes.
//
// The store must have a prefix extractor, read one prefix at a time in prefix
// mode (ReadOptions::total_order_seek false) and in total order otherwise.
// Writes and prefix-mode reads come from one thread at a time, as a task's
// store is used; total-order reads may come from any thread.
#pragma once

#include <memory>

#include <rocksdb/memtablerep.h>

namespace rill::state {

std::shared_ptr<rocksdb::MemTableRepFactory> key_hashed_memtable_factory();

}  // namespace rill::state
