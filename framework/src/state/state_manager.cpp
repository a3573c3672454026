#include "state/state_manager.h"

#include <rocksdb/db.h>
#include <unistd.h>

#include "log/log.h"
#include "metrics/task_metrics.h"
#include "state/caching_stores.h"
#include "state/metered_stores.h"
#include "state/rocksdb_key_value_store.h"
#include "state/session_store.h"
#include "state/state_directory.h"
#include "state/window_store.h"

namespace rill::state {
StateManager::StateManager(const Topology& topology, const Topology::Subtopology& subtopology,
                           TaskId task, std::string application_id,
                           std::filesystem::path task_directory, state::RocksDbResources* resources)
    : topology_(topology),
      subtopology_(subtopology),
      task_(task),
      application_id_(std::move(application_id)),
      directory_(std::move(task_directory)),
      resources_(resources) {}

StateManager::~StateManager() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

void StateManager::open(internal::RecordCollector* collector, std::function<int64_t()> timestamp,
                        state::CacheBudget* cache) {
  if (subtopology_.stores.empty()) return;
  lock_fd_ = lock_state_directory(directory_);
  std::error_code error;

  const CheckpointOffsets checkpoint = read_checkpoint(directory_);
  // A checkpoint describes the stores as they were at a commit; while the task
  // runs it goes stale, so it is removed and written again at each commit.
  std::filesystem::remove(directory_ / kCheckpointFile, error);
  changelogs_.reserve(subtopology_.stores.size());
  for (const std::string& name : subtopology_.stores) {
    const StoreBuilder& builder = topology_.store(name);
    const StoreSpec& spec = builder.spec();
    OpenStore open_store;
    open_store.kind = spec.kind;
    const std::string topic = spec.changelog_topic(application_id_);
    auto found = checkpoint.find({topic, task_.partition});
    const bool trusted = spec.logging_enabled && found != checkpoint.end();
    const auto store_directory = spec.directory_in(directory_);
    if (spec.persistent && !trusted && std::filesystem::exists(store_directory)) {
      log::get().info("task {}: store {} has no checkpoint; wiping it for a full restore",
                      task_.to_string(), name);
      std::filesystem::remove_all(store_directory, error);
    }
    // A changelog's tail is restored onto the files: compactions wait for it.
    auto bytes =
        builder.build_bytes_store(store_directory, resources_,
                                  trusted && spec.persistent && spec.kind == StoreKind::kKeyValue);
    open_store.inner = bytes.get();
    if (metrics::StoreLatency* latency = metrics_ ? metrics_->latency_of(name) : nullptr)
      bytes = state::with_latency(std::move(bytes), spec.kind, *latency);
    if (spec.logging_enabled) {
      changelogs_.push_back(
          {name, topic, task_.partition, trusted && spec.persistent ? found->second : 0});
      open_store.changelog = &changelogs_.back();
      open_store.checkpointed = changelogs_.back().restore_from;
      if (collector != nullptr) {
        open_store.writer = std::make_unique<state::ChangelogWriter>(
            *collector, collector->register_topic(topic), task_.partition, timestamp);
        bytes = state::with_changelog(std::move(bytes), spec.kind, *open_store.writer);
      }
    }
    if (cache != nullptr && cache->max_bytes() > 0 && !spec.versioned) {
      bytes = state::with_record_cache(std::move(bytes), spec.kind, *cache);
      open_store.cache = dynamic_cast<state::RecordCache*>(bytes.get());
    }
    open_store.store = builder.wrap(std::move(bytes));
    stores_.emplace(name, std::move(open_store));
  }
}

StateStore* StateManager::get(std::string_view name) const {
  auto it = stores_.find(name);
  return it == stores_.end() ? nullptr : it->second.store.get();
}

void StateManager::restore(const std::string& store, std::span<const state::BytesWrite> records) {
  OpenStore& open_store = stores_.at(store);
  if (open_store.kind == StoreKind::kKeyValue) {
    static_cast<state::KeyValueBytesStore&>(*open_store.inner).write_all(records);
    return;
  }
  for (const state::BytesWrite& record : records)
    state::apply_changelog_record(*open_store.inner, open_store.kind, record.key, record.value);
}

void StateManager::end_restore(const std::string& store) {
  if (auto* rocksdb = dynamic_cast<RocksDbKeyValueStore*>(stores_.at(store).inner))
    rocksdb->end_restore();
}

bool StateManager::begin_bulk_restore(const std::string& store) {
  const OpenStore& open_store = stores_.at(store);
  auto* rocksdb = dynamic_cast<RocksDbKeyValueStore*>(open_store.inner);
  if (open_store.kind != StoreKind::kKeyValue || rocksdb == nullptr) return false;
  rocksdb->begin_bulk_restore();
  return true;
}

bool StateManager::restores_concurrently(const std::string& store) const {
  const OpenStore& open_store = stores_.at(store);
  const auto* rocksdb = dynamic_cast<const RocksDbKeyValueStore*>(open_store.inner);
  // A vector memtable takes one writer at a time.
  return open_store.kind == StoreKind::kKeyValue && rocksdb != nullptr &&
         !rocksdb->bulk_restoring();
}

void StateManager::restored(const std::string& store, int64_t next_offset) {
  stores_.at(store).checkpointed = next_offset;
}

void StateManager::flush() {
  hand_on_cached();
  for (auto& [name, open_store] : stores_) open_store.store->flush();
}

// What one cache hands on may land in the cache of a store downstream in the
// same task (a foreign-key join's result after its table). A commit that left
// it there would commit the input's offsets without that store's update: hand
// on until no cache holds anything, whatever order the stores come in.
void StateManager::hand_on_cached() {
  for (std::size_t pass = 0; pass <= stores_.size(); ++pass) {
    bool handed_on = false;
    for (auto& [name, open_store] : stores_)
      if (open_store.cache != nullptr && open_store.cache->cached_entries() > 0) {
        open_store.cache->hand_on();
        handed_on = true;
      }
    if (!handed_on) return;
  }
}

void StateManager::checkpoint() {
  if (stores_.empty()) return;
  CheckpointOffsets offsets;
  for (auto& [name, open_store] : stores_) {
    if (open_store.changelog == nullptr) continue;
    if (open_store.writer) {
      int64_t delivered = open_store.writer->delivered_offset();
      if (delivered + 1 > open_store.checkpointed) open_store.checkpointed = delivered + 1;
    }
    offsets[{open_store.changelog->topic, open_store.changelog->partition}] =
        open_store.checkpointed;
  }
  write_checkpoint(directory_, offsets);
}

void StateManager::close(bool clean) {
  if (stores_.empty()) return;
  if (clean) {
    flush();
    checkpoint();
  }
  for (auto& [name, open_store] : stores_) {
    try {
      open_store.store->close();
    } catch (const std::exception& e) {
      log::get().warn("task {}: closing store {}: {}", task_.to_string(), name, e.what());
    }
  }
  stores_.clear();
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
  }
}

namespace {

// The RocksDB database of a store: a key-value store's own, or the one a
// window or session store keeps its segments in; nullptr in memory.
const state::RocksDbKeyValueStore* rocksdb_of(const state::BytesStore* store) {
  if (const auto* window = dynamic_cast<const state::SegmentedWindowStore*>(store))
    store = &window->segments_store();
  else if (const auto* session = dynamic_cast<const state::SegmentedSessionStore*>(store))
    store = &session->segments_store();
  return dynamic_cast<const state::RocksDbKeyValueStore*>(store);
}

}  // namespace

CheckpointOffsets StateManager::snapshot_to(const std::filesystem::path& directory) {
  CheckpointOffsets offsets;
  for (const auto& [name, open_store] : stores_) {
    const auto* rocksdb_store = rocksdb_of(open_store.inner);
    if (open_store.changelog == nullptr || rocksdb_store == nullptr) continue;
    // An exactly-once commit hands on without writing the store.
    if (open_store.cache != nullptr) open_store.cache->store_handed_on();
    const std::filesystem::path target =
        directory / rocksdb_store->directory().lexically_relative(directory_);
    std::filesystem::create_directories(target.parent_path());
    rocksdb_store->checkpoint_to(target);
    // As checkpoint() counts: every changelog write so far is acknowledged.
    int64_t next = open_store.checkpointed;
    if (open_store.writer) next = std::max(next, open_store.writer->delivered_offset() + 1);
    offsets[{open_store.changelog->topic, open_store.changelog->partition}] = next;
  }
  return offsets;
}

std::vector<StateManager::StoreMetrics> StateManager::store_metrics() const {
  std::vector<StoreMetrics> sizes;
  for (const auto& [name, open_store] : stores_) {
    const StateStore::CacheCounts cache = open_store.store->cache_counts();
    const auto* rocksdb_store = rocksdb_of(open_store.inner);
    if (rocksdb_store == nullptr) {
      sizes.push_back({name, -1, -1, cache});
      continue;
    }
    auto property = [&](const std::string& key) {
      uint64_t value = 0;
      return rocksdb_store->db().GetIntProperty(key, &value) ? static_cast<int64_t>(value) : -1;
    };
    const int64_t files = property("rocksdb.total-sst-files-size");
    const int64_t memtables = property("rocksdb.cur-size-all-mem-tables");
    sizes.push_back({name, property("rocksdb.estimate-num-keys"),
                     files < 0 || memtables < 0 ? -1 : files + memtables, cache});
  }
  return sizes;
}

}  // namespace rill::state
