// Tuning of the RocksDB instances behind persistent state stores, and the one
// memory bound all stores of an application instance share.
//
// Plain structs: every field says what it does and its default. Defaults follow
// Kafka Streams (RocksDBStore and its BoundedMemoryRocksDBConfig example) unless
// a comment says otherwise.
#pragma once

#include <cstddef>

namespace rill {

enum class RocksDbCompression { kNone, kSnappy, kLz4, kZstd };

enum class RocksDbCompaction {
  // Fewer rewrites per byte written; suits stores that are mostly overwritten.
  kUniversal,
  // Less space and faster reads at the cost of more rewriting.
  kLevel,
};

// How a memtable finds its entries.
enum class RocksDbMemtable {
  // RocksDB's skip list: in key order, for reads of any range.
  kSkipList,
  // For window stores read one record key at a time, as the window stores of
  // stream-stream joins are: an index by segment and record key, where the
  // skip list searched a few dozen scattered entries at every insert and
  // lookup. A read across record keys puts the memtable in order first.
  // Other stores keep the skip list.
  kHashedByKey,
};

// Options of one store's RocksDB.
struct RocksDbOptions {
  // Capacity of the LRU block cache of this store alone. Used only when the
  // store is opened without shared RocksDbResources; with them, every store
  // uses the shared cache instead.
  // Default: 50 MiB, Kafka Streams' per-store block cache.
  std::size_t block_cache_bytes = std::size_t{50} << 20;

  // Size of an SST data block, the unit of reads and of block caching.
  // Default: 4 KiB.
  std::size_t block_size_bytes = std::size_t{4} << 10;

  // Size one memtable grows to before it becomes immutable and is flushed.
  // With shared RocksDbResources, memtables of all stores together are also
  // bounded by RocksDbMemoryOptions::memtable_bytes.
  // Default: 16 MiB.
  std::size_t write_buffer_bytes = std::size_t{16} << 20;

  // Memtables (the active one and those waiting for flush) a store may hold.
  // Default: 3.
  int max_write_buffers = 3;

  // Compression of SST blocks. Default: kNone, as Kafka Streams.
  RocksDbCompression compression = RocksDbCompression::kNone;

  // Bits per key of the Bloom filter that lets point lookups skip SST files
  // without the key; 0 disables the filter. Default: 10 (about 1% false positives).
  double bloom_filter_bits_per_key = 10.0;

  // Compaction style. Default: kUniversal.
  RocksDbCompaction compaction = RocksDbCompaction::kUniversal;

  // Flushes and compactions this store may run at once, on RocksDB's
  // process-wide thread pool (which grows to the largest value any store asks).
  // Default: 2.
  int max_background_jobs = 2;

  // Open file handles the store may keep; -1 keeps all SST files open.
  // Default: -1.
  int max_open_files = -1;

  // Default: kSkipList, as RocksDB. The DSL's stream-stream joins set
  // kHashedByKey on their window stores.
  RocksDbMemtable memtable = RocksDbMemtable::kSkipList;

  // Write every update to RocksDB's write-ahead log as well. Off by default, as
  // in Kafka Streams: the changelog topic is the durable copy and restores a
  // store after a crash, and flush() and close() write memtables to SST files.
  // Turn it on for stores with logging disabled that must survive a crash.
  // Default: false.
  bool write_ahead_log = false;
};

// The memory bound shared by all RocksDB stores of an application instance:
// one LRU block cache, with memtables charged to that same cache, so the
// instance's RocksDB memory stays near `block_cache_bytes` whatever the number
// of stores and tasks.
struct RocksDbMemoryOptions {
  // Capacity of the shared block cache, which includes the memtables.
  // Default: 100 MiB.
  std::size_t block_cache_bytes = std::size_t{100} << 20;

  // The part of block_cache_bytes memtables of all stores may take together;
  // beyond it, the largest memtable is flushed. Must not exceed block_cache_bytes.
  // Default: 64 MiB. With 32 MiB, the eight stores of a stream-stream join over
  // four partitions flushed memtables of about 4 MiB, and each lookup of the
  // other side searched more, smaller files: the join took 13% more CPU.
  std::size_t memtable_bytes = std::size_t{64} << 20;

  // Fraction of the cache kept for index and filter blocks, which are cached
  // (not held outside the bound) and evicted last. Default: 0.1.
  double index_filter_ratio = 0.1;

  // Fail reads and writes that would exceed the cache capacity, rather than
  // exceed it briefly. Default: false (a full cache then means errors).
  bool strict_capacity_limit = false;
};

}  // namespace rill
