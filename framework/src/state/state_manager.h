// The state of one task: it opens the task's stores under
// <state.dir>/<application.id>/<task>/ (holding that directory's lock), wraps
// logged stores with their changelog, reads and writes the checkpoint of
// changelog offsets, and applies restored changelog records.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "rill/topology.h"

#include "state/logging_stores.h"
#include "state/state_directory.h"

namespace rill::state {
class CacheBudget;
class RocksDbResources;
}  // namespace rill::state
namespace rill::metrics {
struct TaskMetrics;
}

namespace rill::state {

class StateManager {
 public:
  // One logged store's changelog partition and where restoring starts.
  struct Changelog {
    std::string store;
    std::string topic;
    int32_t partition = 0;
    // The first offset to restore: from the checkpoint, or 0 for a full restore.
    int64_t restore_from = 0;
  };

  // `task_directory` empty means no directory: persistent stores are refused
  // (the test driver passes a temporary one instead).
  StateManager(const Topology& topology, const Topology::Subtopology& subtopology, TaskId task,
               std::string application_id, std::filesystem::path task_directory,
               state::RocksDbResources* resources);
  ~StateManager();
  StateManager(const StateManager&) = delete;
  StateManager& operator=(const StateManager&) = delete;

  // Locks the task directory (throws StateStoreError when another instance
  // holds it), reads the checkpoint, wipes persistent stores that have none
  // (they cannot be trusted after an unclean stop) and opens every store.
  // Logged stores write to `collector`; `timestamp` stamps changelog records.
  // Key-value and window stores get a record cache counted against `cache`, the budget
  // the instance's tasks share; none when it is nullptr or 0 bytes. A standby
  // (`collector` nullptr) writes no changelog: it only follows it.
  // Times the task's key-value stores into `metrics` (metrics.recording.level
  // =DEBUG); call before open().
  void record_store_latency_into(metrics::TaskMetrics* metrics) { metrics_ = metrics; }

  void open(internal::RecordCollector* collector, std::function<int64_t()> timestamp,
            state::CacheBudget* cache);

  StateStore* get(std::string_view name) const;
  const std::vector<Changelog>& changelogs() const { return changelogs_; }

  // Restore: applies changelog records of `store` to its unlogged inner store,
  // a key-value store's in one write batch.
  void restore(const std::string& store, std::span<const state::BytesWrite> records);
  // The restore of `store` is over, or there is none: see
  // RocksDbKeyValueStore::end_restore.
  void end_restore(const std::string& store);
  // `store` is about to be restored from its whole changelog, with no reader
  // until end_restore: see RocksDbKeyValueStore::begin_bulk_restore.
  // False when the store is not one that restores in bulk.
  bool begin_bulk_restore(const std::string& store);
  // Whether restore() may run for `store` on several threads at once, with
  // records of different keys: RocksDB key-value stores.
  bool restores_concurrently(const std::string& store) const;
  // Marks `store` restored up to (excluding) `next_offset`.
  void restored(const std::string& store, int64_t next_offset);

  // Flushes every store: record caches hand on their entries (which writes
  // changelog records and forwards results), then the stores persist. First
  // step of a commit that writes a checkpoint.
  void flush();
  // Only the record caches hand on their entries; the stores keep what they
  // hold in memory. First step of a commit that writes no checkpoint
  // (exactly-once), where persisting would make files for nothing: RocksDB
  // flushes its memtables when they fill, and a store without a checkpoint
  // is restored in full after a crash.
  void hand_on_cached();
  // Writes the checkpoint: for each changelog, the offset after the last
  // acknowledged record. Call after flush() and the producer's flush.
  void checkpoint();
  // A snapshot of the task's persistent logged stores, taken at a commit
  // once every changelog write is acknowledged: each one's RocksDB checkpoint under `directory`,
  // laid out as under the task's directory, and returns the changelog offsets they cover. Stores in
  // memory or without a changelog are left out: opening the task rebuilds them from their
  // changelogs (or they are not kept at all).
  CheckpointOffsets snapshot_to(const std::filesystem::path& directory);

  // Per store: what RocksDB estimates of a persistent store (keys or windows,
  // and bytes of SST files plus memtables; -1 for other stores) and the record
  // cache's hits and misses. Safe from any thread while the stores are open.
  struct StoreMetrics {
    std::string store;
    int64_t estimated_keys = -1;
    int64_t bytes = -1;
    StateStore::CacheCounts cache;
  };
  std::vector<StoreMetrics> store_metrics() const;

  // Closes the stores and releases the lock; `clean` (after a commit) writes
  // the checkpoint first, otherwise the next open restores in full.
  void close(bool clean);

 private:
  struct OpenStore {
    std::unique_ptr<StateStore> store;
    state::BytesStore* inner = nullptr;   // the unlogged store, for restore
    state::RecordCache* cache = nullptr;  // its record cache, if any
    std::unique_ptr<state::ChangelogWriter> writer;
    StoreKind kind = StoreKind::kKeyValue;
    Changelog* changelog = nullptr;
    int64_t checkpointed = -1;  // next offset to read, or -1
  };
  const Topology& topology_;
  const Topology::Subtopology& subtopology_;
  TaskId task_;
  std::string application_id_;
  std::filesystem::path directory_;
  state::RocksDbResources* resources_;
  metrics::TaskMetrics* metrics_ = nullptr;
  int lock_fd_ = -1;
  std::map<std::string, OpenStore, std::less<>> stores_;
  std::vector<Changelog> changelogs_;
};

}  // namespace rill::state
