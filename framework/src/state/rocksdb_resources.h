// The RocksDB resources shared by every persistent store of an application
// instance: one LRU block cache and one write-buffer manager whose memtables
// are charged to that cache, so that all stores together stay within one
// memory bound (Kafka Streams' BoundedMemoryRocksDBConfig, built in).
#pragma once

#include <cstddef>
#include <memory>

#include <rocksdb/cache.h>
#include <rocksdb/write_buffer_manager.h>

#include "rill/internal/bytes_store.h"
#include "rill/state_options.h"

namespace rill::state {

// Create one per application instance and hand it to every store it opens; it
// may be destroyed before the stores (they hold the cache and manager too).
// Thread-safe: stores on any thread share it.
class RocksDbResources {
 public:
  // Throws std::invalid_argument when memtable_bytes exceeds block_cache_bytes
  // or index_filter_ratio is outside [0, 1].
  explicit RocksDbResources(const RocksDbMemoryOptions& options = {});

  const RocksDbMemoryOptions& options() const { return options_; }
  const std::shared_ptr<rocksdb::Cache>& block_cache() const { return block_cache_; }
  const std::shared_ptr<rocksdb::WriteBufferManager>& write_buffer_manager() const {
    return write_buffer_manager_;
  }

  // The memory bound.
  std::size_t capacity() const { return block_cache_->GetCapacity(); }
  // Bytes in use within the bound: cached blocks plus memtable reservations.
  std::size_t usage() const { return block_cache_->GetUsage(); }
  // Bytes memtables of all stores use.
  std::size_t memtable_usage() const { return write_buffer_manager_->memory_usage(); }

 private:
  RocksDbMemoryOptions options_;
  std::shared_ptr<rocksdb::Cache> block_cache_;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffer_manager_;
};

}  // namespace rill::state
