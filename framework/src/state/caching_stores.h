// The record cache (statestore.cache.max.bytes): a layer in front of a
// key-value store that folds the updates of a key until a commit, and the one
// budget all these layers of an instance share.
//
// Kafka Streams bounds the cache of each stream thread (ThreadCache) and keeps
// one NamedCache per store in it; when a write takes the thread's total over
// its budget, it evicts from the NamedCache being written to only, so that
// evicted records reach the processors of the task writing, on its own thread.
// rill's tasks are not bound to a thread (a task runs on one worker at a time,
// any of them), so the budget here is the instance's: every store's layer
// keeps its own entries, adds their bytes to one atomic counter (CacheBudget),
// and when a write takes that total over the budget, evicts its own least
// recently updated entries until the total is within it or the store holds no
// more. No store ever touches another's entries, so eviction hands records on
// only to the writing task's processors, on its thread, and nothing is locked:
// a store's entries are touched only by its task's worker (and by a commit's
// flush on the polling thread while every task waits at the gate). A write
// costs one relaxed atomic add, and only when it changes the size of an entry.
//
// The total stays within the budget after every write, up to one entry per
// worker writing at the same moment: a store leaves the total over the budget
// only by emptying itself, and every other store was within it, or empty, when
// its last write ended.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>

#include "rill/internal/bytes_store.h"
#include "rill/state.h"

namespace rill::state {

// statestore.cache.max.bytes for every record cache of an instance (or of a
// test driver) together. Outlives the stores that count against it.
class CacheBudget {
 public:
  explicit CacheBudget(std::size_t max_bytes) : max_bytes_(max_bytes) {}
  CacheBudget(const CacheBudget&) = delete;
  CacheBudget& operator=(const CacheBudget&) = delete;

  std::size_t max_bytes() const { return max_bytes_; }
  // What the caches hold together, entry bookkeeping included.
  std::size_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  bool exceeded() const { return bytes() > max_bytes_; }
  // A cache's share changed by `delta` (modulo 2^64, so a shrinking share
  // passes a wrapped-around negative delta).
  void add(std::size_t delta) { bytes_.fetch_add(delta, std::memory_order_relaxed); }

 private:
  const std::size_t max_bytes_;
  std::atomic<std::size_t> bytes_{0};
};

// `store` (of `kind`) behind a record cache whose entries count against
// `budget`: a CachingKeyValueBytesStore for a key-value store. Window and
// session stores have no cache; they come back as they are.
std::unique_ptr<BytesStore> with_record_cache(std::unique_ptr<BytesStore> store, StoreKind kind,
                                              CacheBudget& budget);

}  // namespace rill::state
