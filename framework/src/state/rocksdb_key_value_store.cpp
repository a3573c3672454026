// The RocksDB key-value byte store.
#include "state/rocksdb_key_value_store.h"

#include <algorithm>
#include <charconv>
#include <system_error>
#include <utility>

#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include "log/log.h"
#include "state/key_hashed_memtable.h"
#include "state/key_layout.h"
#include "state/rocksdb_resources.h"
#include "state/sorted_runs_memtable.h"

namespace rill::state {
namespace {

rocksdb::Slice slice(std::string_view bytes) {
  return {bytes.data(), bytes.size()};
}
std::string_view view(const rocksdb::Slice& bytes) {
  return {bytes.data(), bytes.size()};
}

rocksdb::CompressionType compression_type(RocksDbCompression compression) {
  switch (compression) {
    case RocksDbCompression::kNone:
      return rocksdb::kNoCompression;
    case RocksDbCompression::kSnappy:
      return rocksdb::kSnappyCompression;
    case RocksDbCompression::kLz4:
      return rocksdb::kLZ4Compression;
    case RocksDbCompression::kZstd:
      return rocksdb::kZSTD;
  }
  return rocksdb::kNoCompression;
}

// A key without its last `suffix` bytes: a window store's segment and record
// key, without the window start.
class KeyWithoutSuffix final : public rocksdb::SliceTransform {
 public:
  explicit KeyWithoutSuffix(std::size_t suffix)
      : suffix_(suffix), name_("rill.KeyWithoutSuffix." + std::to_string(suffix)) {}
  const char* Name() const override { return name_.c_str(); }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return {key.data(), key.size() - suffix_};
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() > suffix_; }

 private:
  std::size_t suffix_;
  std::string name_;
};

// The bytes after the prefix a store's memtables and filters index keys by,
// or 0 for none.
std::size_t prefix_suffix_bytes(const RocksDbOptions& options, std::size_t timestamp_suffix_bytes) {
  return options.memtable == RocksDbMemtable::kHashedByKey ? timestamp_suffix_bytes : 0;
}

rocksdb::Options make_options(const RocksDbOptions& options, RocksDbResources* resources,
                              std::size_t prefix_suffix_bytes) {
  rocksdb::BlockBasedTableOptions table;
  table.block_size = options.block_size_bytes;
  if (options.bloom_filter_bits_per_key > 0)
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(options.bloom_filter_bits_per_key));
  // A store read by prefix (a join's window store) keeps only prefixes in its
  // filters: its point reads are few, and rill's own filter of each segment's
  // keys answers most of them first. Whole keys beside the prefixes made each
  // flush hash and add every key twice, and each filter twice the size.
  table.whole_key_filtering = prefix_suffix_bytes == 0;
  if (resources != nullptr) {
    // Index and filter blocks go into the shared cache too, at high priority,
    // so that they count against the bound instead of growing beside it.
    table.block_cache = resources->block_cache();
    table.cache_index_and_filter_blocks = true;
    table.cache_index_and_filter_blocks_with_high_priority = true;
    // In partitions of metadata_block_size, of which a lookup loads one: a
    // whole file's filter is megabytes for a store of millions of keys, and
    // once the filters outgrow their share of the cache each lookup read and
    // checksummed a whole filter again (a 10M-key count took minutes).
    table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
    table.partition_filters = true;
    table.metadata_block_size = 4096;
    table.pin_top_level_index_and_filter = true;
  } else {
    table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  }

  rocksdb::Options db;
  db.create_if_missing = true;
  db.error_if_exists = false;
  db.info_log_level = rocksdb::InfoLogLevel::ERROR_LEVEL;
  db.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  db.write_buffer_size = options.write_buffer_bytes;
  db.max_write_buffer_number = options.max_write_buffers;
  db.compression = compression_type(options.compression);
  db.compaction_style = options.compaction == RocksDbCompaction::kUniversal
                            ? rocksdb::kCompactionStyleUniversal
                            : rocksdb::kCompactionStyleLevel;
  db.max_background_jobs = options.max_background_jobs;
  db.max_open_files = options.max_open_files;
  // Opening reads no table's properties for compaction statistics: a task
  // that takes over a store of many files starts without that wait.
  db.skip_stats_update_on_db_open = true;
  if (options.bloom_filter_bits_per_key > 0) {
    // A bloom filter over the memtable's keys too: a join's window store and
    // a first count look up keys that are not there yet, and a miss in the
    // memtable's skip list costs a full search; 2% of the memtable's size.
    db.memtable_whole_key_filtering = true;
    db.memtable_prefix_bloom_size_ratio = 0.02;
  }
  if (resources != nullptr) db.write_buffer_manager = resources->write_buffer_manager();
  if (prefix_suffix_bytes > 0) {
    // Filters hold prefixes, so that a lookup's seek skips the files without
    // its prefix; the memtable's index finds it without a filter of its own.
    db.prefix_extractor = std::make_shared<KeyWithoutSuffix>(prefix_suffix_bytes);
    db.memtable_factory = key_hashed_memtable_factory();
    db.allow_concurrent_memtable_write = false;
    db.memtable_prefix_bloom_size_ratio = 0;
  }
  return db;
}

}  // namespace

// Streams a RocksDB iterator over [from, to_exclusive). A range in total order
// gets an iterator of its own, bounded by RocksDB (iterate_upper_bound) so that
// it stops reading at the bound. A range within one prefix borrows the store's
// prefix iterator when no other read holds it, and checks the bound itself:
// the bound of a RocksDB iterator is fixed when it is made.
class RocksDbKeyValueStore::Iterator final : public KeyValueBytesIterator {
 public:
  Iterator(const RocksDbKeyValueStore& store, std::string_view from,
           std::optional<std::string> to_exclusive, bool within_one_prefix)
      : store_(&store), to_exclusive_(std::move(to_exclusive)) {
    if (within_one_prefix && !store.prefix_iterator_busy_.exchange(true, std::memory_order_acquire))
      borrow_prefix_iterator();
    if (iterator_ == nullptr) {
      rocksdb::ReadOptions read;
      // In prefix mode a seek reads only the memtable entries of the prefix of
      // `from` and skips the files whose filter rules it out. Every key of that
      // prefix up to the bound is read, in order; keys of other prefixes between
      // them may be left out, which a range within one prefix does not ask for.
      // Other ranges read in total order, which RocksDB does not do by default
      // once the store has a prefix extractor.
      read.total_order_seek = !within_one_prefix;
      if (to_exclusive_) {
        bound_ = slice(*to_exclusive_);
        read.iterate_upper_bound = &bound_;
      }
      owned_.reset(store.db_->NewIterator(read));
      iterator_ = owned_.get();
    }
    iterator_->Seek(slice(from));
    check();
    store_->iterators_.push_back(this);
  }
  ~Iterator() override {
    if (store_ == nullptr) return;
    std::erase(store_->iterators_, this);
    if (borrowed_) store_->prefix_iterator_busy_.store(false, std::memory_order_release);
  }
  Iterator(const Iterator&) = delete;
  Iterator& operator=(const Iterator&) = delete;

  bool valid() const override {
    return iterator_ != nullptr && iterator_->Valid() &&
           (!borrowed_ || !to_exclusive_ || compare_bytes(key(), *to_exclusive_) < 0);
  }
  void next() override {
    if (!valid()) return;
    iterator_->Next();
    check();
  }
  std::string_view key() const override { return view(iterator_->key()); }
  std::string_view value() const override { return view(iterator_->value()); }

  void release() {
    if (borrowed_) store_->prefix_iterator_busy_.store(false, std::memory_order_release);
    iterator_ = nullptr;
    owned_.reset();
    store_ = nullptr;
  }

 private:
  // Brings the store's prefix iterator, made on first use, up to the store's
  // latest writes. Refresh() costs a check while no flush or compaction has
  // changed the store's memtables and files since its last use; a new
  // iterator makes one per file, which took 5% of a stream-stream join's CPU.
  void borrow_prefix_iterator() {
    auto& pooled = store_->prefix_iterator_;
    if (pooled == nullptr) {
      rocksdb::ReadOptions read;
      read.total_order_seek = false;
      pooled.reset(store_->db_->NewIterator(read));
    } else {
      store_->check(pooled->Refresh(), "refresh iterator");
    }
    iterator_ = pooled.get();
    borrowed_ = true;
    store_->writes_since_prefix_read_.store(0, std::memory_order_relaxed);
  }

  // An iterator that stops early may have met an I/O error rather than the end.
  void check() {
    if (!iterator_->Valid()) store_->check(iterator_->status(), "iterate");
  }

  const RocksDbKeyValueStore* store_;
  std::optional<std::string> to_exclusive_;
  rocksdb::Slice bound_;
  std::unique_ptr<rocksdb::Iterator> owned_;
  rocksdb::Iterator* iterator_ = nullptr;
  bool borrowed_ = false;
};

RocksDbKeyValueStore::RocksDbKeyValueStore(std::string name, std::filesystem::path directory,
                                           const RocksDbOptions& options,
                                           RocksDbResources* resources, bool compactions_paused,
                                           std::size_t timestamp_suffix_bytes)
    : name_(std::move(name)),
      directory_(std::move(directory)),
      prefix_suffix_bytes_(prefix_suffix_bytes(options, timestamp_suffix_bytes)),
      options_(make_options(options, resources, prefix_suffix_bytes_)),
      compactions_paused_(compactions_paused) {
  std::error_code error;
  std::filesystem::create_directories(directory_, error);
  if (error)
    throw StateStoreError("state store '" + name_ + "': cannot create directory " +
                          directory_.string() + ": " + error.message());
  open(compactions_paused, false);
  write_options_.disableWAL = !options.write_ahead_log;
}

void RocksDbKeyValueStore::open(bool compactions_paused, bool bulk_restore) {
  rocksdb::DB* db = nullptr;
  rocksdb::Options db_options = options_;
  db_options.disable_auto_compactions = compactions_paused || bulk_restore;
  if (bulk_restore) {
    // Appended in a vector and put in order once when flushed (on RocksDB's
    // own thread), where the skip list searches for each key's place: its
    // inserts were two thirds of a full restore's CPU.
    db_options.memtable_factory = sorted_runs_memtable_factory();
    db_options.allow_concurrent_memtable_write = false;
    // Small memtables are sorted and written while the restore goes on; the
    // last, which the end of the restore waits for, is small too. A restore
    // of 900,000 keys took 0.69 s with 1 MiB, 0.92 s with 16 MiB.
    db_options.write_buffer_size = std::size_t{1} << 20;
    // Nothing reads the store until the restore ends.
    db_options.memtable_whole_key_filtering = false;
    db_options.memtable_prefix_bloom_size_ratio = 0;
  }
  level0_slowdown_trigger_ = static_cast<uint64_t>(db_options.level0_slowdown_writes_trigger);
  const rocksdb::Status status = rocksdb::DB::Open(db_options, directory_.string(), &db);
  if (!status.ok())
    throw StateStoreError("state store '" + name_ + "': cannot open RocksDB in " +
                          directory_.string() + ": " + status.ToString());
  db_.reset(db);
  bulk_restore_ = bulk_restore;
}

void RocksDbKeyValueStore::reopen(bool compactions_paused, bool bulk_restore) {
  close();
  open(compactions_paused, bulk_restore);
  compactions_paused_ = compactions_paused || bulk_restore;
}

void RocksDbKeyValueStore::begin_bulk_restore() {
  check_open();
  if (bulk_restore_) return;
  reopen(false, true);
}

void RocksDbKeyValueStore::end_restore() {
  if (db_ == nullptr) return;
  if (bulk_restore_) {
    reopen(true, false);
  } else {
    allow_compactions();
  }
}

RocksDbKeyValueStore::~RocksDbKeyValueStore() {
  try {
    close();
  } catch (const std::exception& e) {
    log::get().error("state store '{}': {}", name_, e.what());
  }
}

void RocksDbKeyValueStore::check_open() const {
  if (db_ == nullptr) throw StateStoreError("state store '" + name_ + "' is closed");
}

void RocksDbKeyValueStore::check(const rocksdb::Status& status, std::string_view operation) const {
  if (!status.ok())
    throw StateStoreError("state store '" + name_ + "': RocksDB " + std::string(operation) +
                          " failed in " + directory_.string() + ": " + status.ToString());
}

void RocksDbKeyValueStore::release_prefix_iterator() {
  if (prefix_iterator_busy_.exchange(true, std::memory_order_acquire)) return;
  prefix_iterator_.reset();
  prefix_iterator_busy_.store(false, std::memory_order_release);
}

void RocksDbKeyValueStore::note_write() {
  const uint32_t writes = writes_since_prefix_read_.load(std::memory_order_relaxed) + 1;
  writes_since_prefix_read_.store(writes, std::memory_order_relaxed);
  if (writes == kWritesBeforeRelease) release_prefix_iterator();
}

void RocksDbKeyValueStore::flush() {
  check_open();
  release_prefix_iterator();
  resume_compactions();
  rocksdb::FlushOptions options;
  options.wait = true;
  check(db_->Flush(options), "flush");
}

void RocksDbKeyValueStore::close() {
  if (db_ == nullptr) return;
  for (Iterator* iterator : iterators_) iterator->release();
  iterators_.clear();
  prefix_iterator_.reset();
  // Without a write-ahead log the memtables hold the only copy of recent writes.
  rocksdb::FlushOptions options;
  options.wait = true;
  const rocksdb::Status flushed = db_->Flush(options);
  const rocksdb::Status closed = db_->Close();
  db_.reset();
  check(flushed, "flush");
  check(closed, "close");
}

std::optional<std::string> RocksDbKeyValueStore::get(std::string_view key) const {
  check_open();
  std::string value;
  const rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), slice(key), &value);
  if (status.IsNotFound()) return std::nullopt;
  check(status, "get");
  return value;
}

void RocksDbKeyValueStore::put(std::string_view key, std::string_view value) {
  check_open();
  single_write_.Clear();
  check(single_write_.Put(slice(key), slice(value)), "put");
  check(db_->Write(write_options_, &single_write_), "put");
  note_write();
}

std::optional<std::string> RocksDbKeyValueStore::put_if_absent(std::string_view key,
                                                               std::string_view value) {
  // Stores are used by one task thread at a time, so get-then-put cannot race.
  auto existing = get(key);
  if (!existing) put(key, value);
  return existing;
}

void RocksDbKeyValueStore::remove(std::string_view key) {
  check_open();
  single_write_.Clear();
  check(single_write_.Delete(slice(key)), "delete");
  check(db_->Write(write_options_, &single_write_), "delete");
  note_write();
}

void RocksDbKeyValueStore::write_all(std::span<const BytesWrite> writes) {
  check_open();
  rocksdb::WriteBatch batch;
  for (const BytesWrite& write : writes) {
    const rocksdb::Status status = write.value ? batch.Put(slice(write.key), slice(*write.value))
                                               : batch.Delete(slice(write.key));
    check(status, "batch");
  }
  check(db_->Write(write_options_, &batch), "write");
  note_write();
  if (compactions_paused_.load(std::memory_order_relaxed)) {
    static const std::string kLevel0Files =
        rocksdb::DB::Properties::kNumFilesAtLevelPrefix + std::string("0");
    std::string level0_files;
    uint64_t count = 0;
    if (db_->GetProperty(kLevel0Files, &level0_files) &&
        std::from_chars(level0_files.data(), level0_files.data() + level0_files.size(), count).ec ==
            std::errc() &&
        count >= level0_slowdown_trigger_)
      allow_compactions();
  }
}

void RocksDbKeyValueStore::resume_compactions() {
  if (db_ == nullptr) return;
  if (bulk_restore_) {
    // Flushed and opened again with the skip list, which serves reads.
    reopen(false, false);
    return;
  }
  allow_compactions();
}

void RocksDbKeyValueStore::allow_compactions() {
  if (!compactions_paused_.exchange(false)) return;
  check(db_->SetOptions({{"disable_auto_compactions", "false"}}), "resume compactions");
}

void RocksDbKeyValueStore::remove_range(std::string_view from, std::string_view to_exclusive) {
  check_open();
  if (compare_bytes(from, to_exclusive) >= 0) return;
  check(db_->DeleteRange(write_options_, db_->DefaultColumnFamily(), slice(from),
                         slice(to_exclusive)),
        "delete range");
}

std::unique_ptr<KeyValueBytesIterator> RocksDbKeyValueStore::scan(
    std::string_view from, std::optional<std::string> to_exclusive, bool within_one_prefix) const {
  check_open();
  return std::make_unique<Iterator>(*this, from, std::move(to_exclusive), within_one_prefix);
}

std::unique_ptr<KeyValueBytesIterator> RocksDbKeyValueStore::range(std::string_view from,
                                                                   std::string_view to) const {
  // from > to gives an empty iterator: the bound stops it before `from`.
  if (compare_bytes(from, to) > 0) return scan(from, std::string(from));
  const std::size_t suffix = prefix_suffix_bytes_;
  const bool within_one_prefix =
      suffix > 0 && from.size() > suffix && to.size() == from.size() &&
      from.substr(0, from.size() - suffix) == to.substr(0, to.size() - suffix);
  return scan(from, key_successor(to), within_one_prefix);
}

std::unique_ptr<KeyValueBytesIterator> RocksDbKeyValueStore::prefix_scan(
    std::string_view prefix) const {
  return scan(prefix, prefix_successor(prefix));
}

std::unique_ptr<KeyValueBytesIterator> RocksDbKeyValueStore::all() const {
  return scan({}, std::nullopt);
}

uint64_t RocksDbKeyValueStore::approximate_num_entries() const {
  check_open();
  uint64_t entries = 0;
  if (!db_->GetIntProperty(rocksdb::DB::Properties::kEstimateNumKeys, &entries)) return 0;
  return entries;
}

void RocksDbKeyValueStore::checkpoint_to(const std::filesystem::path& directory) const {
  check_open();
  rocksdb::Checkpoint* created = nullptr;
  check(rocksdb::Checkpoint::Create(db_.get(), &created), "checkpoint");
  const std::unique_ptr<rocksdb::Checkpoint> checkpoint(created);
  check(checkpoint->CreateCheckpoint(directory.string()), "checkpoint into " + directory.string());
}

}  // namespace rill::state
