// The shared block cache and write-buffer manager of RocksDB stores.
#include "state/rocksdb_resources.h"

#include <stdexcept>
#include <string>

namespace rill::state {

namespace {

RocksDbMemoryOptions checked(const RocksDbMemoryOptions& options) {
  if (options.memtable_bytes > options.block_cache_bytes)
    throw std::invalid_argument(
        "RocksDB memory: memtable_bytes (" + std::to_string(options.memtable_bytes) +
        ") exceeds block_cache_bytes (" + std::to_string(options.block_cache_bytes) +
        "), the bound memtables are charged to");
  if (!(options.index_filter_ratio >= 0.0 && options.index_filter_ratio <= 1.0))
    throw std::invalid_argument("RocksDB memory: index_filter_ratio must be within [0, 1], got " +
                                std::to_string(options.index_filter_ratio));
  return options;
}

}  // namespace

RocksDbResources::RocksDbResources(const RocksDbMemoryOptions& options)
    : options_(checked(options)) {
  rocksdb::LRUCacheOptions cache;
  cache.capacity = options_.block_cache_bytes;
  cache.num_shard_bits = -1;
  cache.strict_capacity_limit = options_.strict_capacity_limit;
  cache.high_pri_pool_ratio = options_.index_filter_ratio;
  block_cache_ = rocksdb::NewLRUCache(cache);
  write_buffer_manager_ =
      std::make_shared<rocksdb::WriteBufferManager>(options_.memtable_bytes, block_cache_);
}

}  // namespace rill::state
