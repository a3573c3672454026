// The byte stores behind global stores. One global thread writes a global
// store while tasks read it on the worker threads, so unlike a task's stores
// (which only their task touches, without locks) these are shared: one
// SharedKeyValueStore per global store, and a view of it per reader.
#pragma once

#include <memory>
#include <shared_mutex>
#include <string>

#include "rill/internal/bytes_store.h"

namespace rill::state {

// A key-value store safe for one writer and concurrent readers, over the
// RocksDB or in-memory store of a global store. Both take a std::shared_mutex:
// the in-memory store's map is not safe to read while it changes, and
// RocksDbKeyValueStore keeps a registry of open iterators that concurrent
// readers would race on (RocksDB's own reads and writes are thread-safe). The
// lock is on global stores only: the stores of tasks stay lock-free.
// Iterators copy the entries they cover under the lock, so no reader's
// iterator holds the writer back, and none sees a half-applied write.
class SharedKeyValueStore final : public KeyValueBytesStore {
 public:
  explicit SharedKeyValueStore(std::unique_ptr<KeyValueBytesStore> inner);

  std::string_view name() const override { return name_; }
  bool persistent() const override { return persistent_; }
  bool is_open() const override;
  void flush() override;
  void close() override;

  std::optional<std::string> get(std::string_view key) const override;
  void put(std::string_view key, std::string_view value) override;
  std::optional<std::string> put_if_absent(std::string_view key, std::string_view value) override;
  void remove(std::string_view key) override;
  void write_all(std::span<const BytesWrite> writes) override;
  void remove_range(std::string_view from, std::string_view to_exclusive) override;
  std::unique_ptr<KeyValueBytesIterator> range(std::string_view from,
                                               std::string_view to) const override;
  std::unique_ptr<KeyValueBytesIterator> prefix_scan(std::string_view prefix) const override;
  std::unique_ptr<KeyValueBytesIterator> all() const override;
  uint64_t approximate_num_entries() const override;

  // The unlocked store, for metrics that read RocksDB properties.
  const KeyValueBytesStore& inner() const { return *inner_; }

 private:
  std::string name_;
  bool persistent_;
  mutable std::shared_mutex mutex_;
  std::unique_ptr<KeyValueBytesStore> inner_;
};

// What one reader holds of a shared global store: a task's typed store wraps
// one (each task has its own typed store, whose serialization buffers are not
// shared), as does the global store's update processor. A read-only view
// refuses writes with a StateStoreError; no view closes the shared store,
// which belongs to the global state manager.
class GlobalStoreView final : public KeyValueBytesStore {
 public:
  GlobalStoreView(SharedKeyValueStore& shared, bool writable)
      : shared_(shared), writable_(writable) {}

  std::string_view name() const override { return shared_.name(); }
  bool persistent() const override { return shared_.persistent(); }
  bool is_open() const override { return shared_.is_open(); }
  void flush() override {}
  void close() override {}

  std::optional<std::string> get(std::string_view key) const override { return shared_.get(key); }
  void put(std::string_view key, std::string_view value) override;
  std::optional<std::string> put_if_absent(std::string_view key, std::string_view value) override;
  void remove(std::string_view key) override;
  void write_all(std::span<const BytesWrite> writes) override;
  void remove_range(std::string_view from, std::string_view to_exclusive) override;
  std::unique_ptr<KeyValueBytesIterator> range(std::string_view from,
                                               std::string_view to) const override {
    return shared_.range(from, to);
  }
  std::unique_ptr<KeyValueBytesIterator> prefix_scan(std::string_view prefix) const override {
    return shared_.prefix_scan(prefix);
  }
  std::unique_ptr<KeyValueBytesIterator> all() const override { return shared_.all(); }
  uint64_t approximate_num_entries() const override { return shared_.approximate_num_entries(); }

 private:
  void require_writable() const;

  SharedKeyValueStore& shared_;
  bool writable_;
};

}  // namespace rill::state
