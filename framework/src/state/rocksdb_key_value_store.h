// A key-value byte store in its own RocksDB instance, one directory per store.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "rill/internal/bytes_store.h"
#include "rill/state_options.h"

namespace rill::state {

class RocksDbKeyValueStore final : public KeyValueBytesStore {
 public:
  // Opens the RocksDB in `directory`, creating both when missing. With
  // `resources`, the store uses their shared block cache and write-buffer
  // manager; without, a cache of its own (options.block_cache_bytes). Throws
  // StateStoreError naming the store and directory when RocksDB cannot open it
  // (for instance, another process holds its lock). `compactions_paused`: see
  // resume_compactions(). `timestamp_suffix_bytes`: for a window store, the
  // bytes of timestamp its keys end in after the segment and record key that
  // its lookups name; with options.memtable kHashedByKey, the store's
  // memtables and filters index keys without them, and a range within one
  // segment and record key reads only what holds that prefix.
  RocksDbKeyValueStore(std::string name, std::filesystem::path directory,
                       const RocksDbOptions& options, RocksDbResources* resources,
                       bool compactions_paused = false, std::size_t timestamp_suffix_bytes = 0);
  ~RocksDbKeyValueStore() override;
  RocksDbKeyValueStore(const RocksDbKeyValueStore&) = delete;
  RocksDbKeyValueStore& operator=(const RocksDbKeyValueStore&) = delete;

  std::string_view name() const override { return name_; }
  bool persistent() const override { return true; }
  bool is_open() const override { return db_ != nullptr; }
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

  // A store read within one prefix keeps the iterator of those reads between
  // them; after this many writes without such a read, it lets it go.
  static constexpr uint32_t kWritesBeforeRelease = 10'000;

  const std::filesystem::path& directory() const { return directory_; }
  // Writes a RocksDB checkpoint of the store into `directory`, which must not
  // exist: its immutable files hard-linked, its memtable flushed first. The
  // store goes on meanwhile; the checkpoint stays as it was.
  void checkpoint_to(const std::filesystem::path& directory) const;
  // For metrics (GetIntProperty) and tests. Requires is_open().
  rocksdb::DB& db() const { return *db_; }

  // A store opened for a restore onto its files (from a checkpoint or a
  // snapshot) opens with its automatic compactions off: compacting what the
  // files already held would take the cores from the restore, and the task
  // would come up later. They resume here, at the store's next flush (each
  // commit under at-least-once), or on their own once level 0 holds as many
  // files as slow RocksDB's writes (which it does not do while they are off).
  void resume_compactions();

  // For a restore of a whole changelog into this store, empty and read by
  // no one until the restore ends: reopens it with a vector memtable
  // (sorted_runs_memtable.h), whose writes are appends, put in order once as
  // each memtable is flushed, and with compactions off. end_restore() ends
  // it; resume_compactions() too, reopening the store as it opens otherwise.
  // Requires no open iterator.
  void begin_bulk_restore();
  bool bulk_restoring() const { return bulk_restore_; }
  // The restore into this store is over, or there was none. Onto its files,
  // its compactions resume. After a bulk restore it opens again with the skip
  // list and its compactions still off, as a store restored onto its files
  // while the restore went on: they resume at its next flush or once level 0
  // reaches the slowdown trigger, so that the restores still going on keep
  // the cores (W5 took 5-10% longer with compactions at once).
  void end_restore();

 private:
  class Iterator;

  void open(bool compactions_paused, bool bulk_restore);
  void allow_compactions();
  // Flushes and closes the store, then opens it again.
  void reopen(bool compactions_paused, bool bulk_restore);
  void check_open() const;
  // Drops the prefix iterator unless a read holds it.
  void release_prefix_iterator();
  // After each write: a prefix iterator no read borrowed for
  // kWritesBeforeRelease writes goes. Under exactly-once no commit flushes
  // the store, and a store whose partner side went quiet would otherwise keep
  // the memtables of its last read, flushed since, until it closes.
  void note_write();
  void check(const rocksdb::Status& status, std::string_view operation) const;
  std::unique_ptr<KeyValueBytesIterator> scan(std::string_view from,
                                              std::optional<std::string> to_exclusive,
                                              bool within_one_prefix = false) const;

  std::string name_;
  std::filesystem::path directory_;
  // The bytes after the prefix its memtables and filters index keys by; 0
  // without a prefix.
  std::size_t prefix_suffix_bytes_;
  // As the store opens outside a restore.
  rocksdb::Options options_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteOptions write_options_;
  // The batch of each put and remove, cleared and reused: RocksDB's own Put
  // allocates a batch every time.
  rocksdb::WriteBatch single_write_;
  std::atomic<bool> compactions_paused_{false};
  bool bulk_restore_ = false;
  uint64_t level0_slowdown_trigger_ = 0;
  // Open iterators: RocksDB must not close under them, so close() releases them.
  mutable std::vector<Iterator*> iterators_;
  // The iterator in prefix mode that reads within one prefix (a window
  // store's lookups of one key) borrow in turn, and whether one holds it. It
  // keeps the memtables and files it read alive until its next use, so every
  // flush lets them go.
  mutable std::unique_ptr<rocksdb::Iterator> prefix_iterator_;
  mutable std::atomic<bool> prefix_iterator_busy_{false};
  // Writes since a read last borrowed the prefix iterator. Written by the
  // store's writer and by reads, never both at once in a way that matters: a
  // lost count only moves the release by a few writes.
  mutable std::atomic<uint32_t> writes_since_prefix_read_{0};
};

}  // namespace rill::state
