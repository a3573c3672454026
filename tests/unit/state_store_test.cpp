// The state store layer: byte stores (every case runs over the in-memory and
// the RocksDB key-value store), window and session stores over both, the typed
// stores, store builders, and the shared RocksDB memory bound.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>
#include <rocksdb/table.h>

#include "rill/state.h"

#include "runtime/allocator.h"
#include "state/forwarding_stores.h"
#include "state/in_memory_key_value_store.h"
#include "state/key_filter.h"
#include "state/rocksdb_key_value_store.h"
#include "state/rocksdb_resources.h"
#include "state/session_store.h"
#include "state/window_store.h"
#include "support/temp_dir.h"

using namespace rill;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using testing::TempDir;

namespace {

// kRocksDbHashedByKey: RocksDB with the memtable of stream-stream joins'
// window stores, for the stores below window stores.
enum class Impl { kInMemory, kRocksDb, kRocksDbHashedByKey };

std::string impl_name(Impl impl) {
  switch (impl) {
    case Impl::kInMemory:
      return "in-memory";
    case Impl::kRocksDb:
      return "rocksdb";
    case Impl::kRocksDbHashedByKey:
      return "rocksdb, memtable hashed by key";
  }
  return "?";
}

std::unique_ptr<state::KeyValueBytesStore> open_store(Impl impl, const fs::path& directory,
                                                      state::RocksDbResources* resources = nullptr,
                                                      const std::string& name = "store",
                                                      RocksDbOptions options = {}) {
  if (impl == Impl::kInMemory) return std::make_unique<state::InMemoryKeyValueStore>(name);
  if (impl == Impl::kRocksDb)
    return std::make_unique<state::RocksDbKeyValueStore>(name, directory, options, resources);
  options.memtable = RocksDbMemtable::kHashedByKey;
  return std::make_unique<state::RocksDbKeyValueStore>(name, directory, options, resources, false,
                                                       state::kTimestampSize);
}

using Entries = std::vector<std::pair<std::string, std::string>>;

Entries drain(std::unique_ptr<state::KeyValueBytesIterator> it) {
  Entries entries;
  for (; it->valid(); it->next()) entries.emplace_back(it->key(), it->value());
  return entries;
}

std::vector<std::string> keys_of(std::unique_ptr<state::KeyValueBytesIterator> it) {
  std::vector<std::string> keys;
  for (; it->valid(); it->next()) keys.emplace_back(it->key());
  return keys;
}

struct WindowEntry {
  std::string key;
  int64_t start;
  std::string value;
  bool operator==(const WindowEntry&) const = default;
};

std::vector<WindowEntry> drain(std::unique_ptr<state::WindowBytesIterator> it) {
  std::vector<WindowEntry> entries;
  for (; it->valid(); it->next())
    entries.push_back({std::string(it->key()), it->window_start(), std::string(it->value())});
  return entries;
}

struct SessionEntry {
  std::string key;
  int64_t start;
  int64_t end;
  std::string value;
  bool operator==(const SessionEntry&) const = default;
};

std::vector<SessionEntry> drain(std::unique_ptr<state::SessionBytesIterator> it) {
  std::vector<SessionEntry> entries;
  for (; it->valid(); it->next())
    entries.push_back(
        {std::string(it->key()), it->session_start(), it->session_end(), std::string(it->value())});
  return entries;
}

}  // namespace

namespace Catch {
template <>
struct StringMaker<WindowEntry> {
  static std::string convert(const WindowEntry& e) {
    return "{" + e.key + " @" + std::to_string(e.start) + " = " + e.value + "}";
  }
};
template <>
struct StringMaker<SessionEntry> {
  static std::string convert(const SessionEntry& e) {
    return "{" + e.key + " [" + std::to_string(e.start) + ", " + std::to_string(e.end) +
           "] = " + e.value + "}";
  }
};
}  // namespace Catch

// ---------------------------------------------------------------------------
// Key-value byte stores

TEST_CASE("key-value stores order keys by unsigned bytes", "[unit][state]") {
  const Impl impl = GENERATE(Impl::kInMemory, Impl::kRocksDb);
  INFO(impl_name(impl));
  TempDir dir;
  auto store = open_store(impl, dir.path());

  for (const std::string& key : std::vector<std::string>{"b", "\xff", "a", "\x80", "ab", "A",
                                                         "\x7f", std::string("\0", 1), ""})
    store->put(key, "v");

  const std::vector<std::string> expected = {
      "", std::string("\0", 1), "A", "a", "ab", "b", "\x7f", "\x80", "\xff"};
  CHECK(keys_of(store->all()) == expected);
  // Bytes 0x80 and above sort after ASCII, which signed char comparison would invert.
  CHECK(keys_of(store->range("b", "\x90")) == std::vector<std::string>{"b", "\x7f", "\x80"});
}

TEST_CASE("key-value range bounds are inclusive", "[unit][state]") {
  const Impl impl = GENERATE(Impl::kInMemory, Impl::kRocksDb);
  INFO(impl_name(impl));
  TempDir dir;
  auto store = open_store(impl, dir.path());
  for (std::string key : {"k1", "k2", "k3", "k4", "k5"}) store->put(key, "value-" + key);

  CHECK(drain(store->range("k2", "k4")) ==
        Entries{{"k2", "value-k2"}, {"k3", "value-k3"}, {"k4", "value-k4"}});
  CHECK(keys_of(store->range("k2", "k2")) == std::vector<std::string>{"k2"});
  // Bounds need not be keys of the store.
  CHECK(keys_of(store->range("k0", "k35")) == std::vector<std::string>{"k1", "k2", "k3"});
  // "k4" < "k4\0" < "k5": the upper bound stops before keys that only extend it.
  store->put(std::string("k4\0", 3), "x");
  CHECK(keys_of(store->range("k4", "k4")) == std::vector<std::string>{"k4"});
  CHECK(keys_of(store->range("k4", "k9")).size() == 3);
  // An inverted range is empty.
  CHECK(keys_of(store->range("k4", "k2")).empty());
}

TEST_CASE("key-value prefix scan", "[unit][state]") {
  const Impl impl = GENERATE(Impl::kInMemory, Impl::kRocksDb);
  INFO(impl_name(impl));
  TempDir dir;
  auto store = open_store(impl, dir.path());
  for (std::string key : {"user-1|a", "user-1|b", "user-10|a", "user-2|a", "user-", "\xff\xff",
                          "\xff\xff\x01", "\xff\xfe"})
    store->put(key, "v");

  CHECK(keys_of(store->prefix_scan("user-1|")) == std::vector<std::string>{"user-1|a", "user-1|b"});
  CHECK(keys_of(store->prefix_scan("user-1")) ==
        std::vector<std::string>{"user-10|a", "user-1|a", "user-1|b"});  // '0' < '|'
  CHECK(keys_of(store->prefix_scan("user-3")).empty());
  // A prefix of 0xff bytes has no successor: the scan runs to the end.
  CHECK(keys_of(store->prefix_scan("\xff\xff")) ==
        std::vector<std::string>{"\xff\xff", "\xff\xff\x01"});
  CHECK(keys_of(store->prefix_scan("")).size() == 8);
}

TEST_CASE("key-value get, put, remove and put_if_absent", "[unit][state]") {
  const Impl impl = GENERATE(Impl::kInMemory, Impl::kRocksDb);
  INFO(impl_name(impl));
  TempDir dir;
  auto store = open_store(impl, dir.path());

  CHECK_FALSE(store->get("k").has_value());
  store->put("k", "1");
  CHECK(store->get("k") == "1");
  store->put("k", "2");
  CHECK(store->get("k") == "2");
  // Empty values are values, not deletions.
  store->put("empty", "");
  CHECK(store->get("empty") == "");

  CHECK(store->put_if_absent("k", "3") == "2");
  CHECK(store->get("k") == "2");
  CHECK_FALSE(store->put_if_absent("new", "4").has_value());
  CHECK(store->get("new") == "4");

  store->remove("k");
  CHECK_FALSE(store->get("k").has_value());
  store->remove("never-there");
  CHECK(keys_of(store->all()) == std::vector<std::string>{"empty", "new"});

  if (impl == Impl::kInMemory)
    CHECK(store->approximate_num_entries() == 2);
  else
    CHECK(store->approximate_num_entries() > 0);
}

TEST_CASE("key-value batches and range removal", "[unit][state]") {
  const Impl impl = GENERATE(Impl::kInMemory, Impl::kRocksDb);
  INFO(impl_name(impl));
  TempDir dir;
  auto store = open_store(impl, dir.path());
  store->put("gone", "x");

  const std::vector<state::BytesWrite> writes = {
      {"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"gone", std::nullopt}, {"b", "22"}};
  store->write_all(writes);
  CHECK(drain(store->all()) == Entries{{"a", "1"}, {"b", "22"}, {"c", "3"}, {"d", "4"}});

  store->remove_range("b", "d");  // "d" is exclusive
  CHECK(keys_of(store->all()) == std::vector<std::string>{"a", "d"});
  store->remove_range("z", "a");  // inverted: nothing
  CHECK(keys_of(store->all()) == std::vector<std::string>{"a", "d"});
}

TEST_CASE("key-value iterators survive removal of the entry they stand on", "[unit][state]") {
  const Impl impl = GENERATE(Impl::kInMemory, Impl::kRocksDb);
  INFO(impl_name(impl));
  TempDir dir;
  auto store = open_store(impl, dir.path());
  for (std::string key : {"a", "b", "c", "d"}) store->put(key, "v-" + key);

  std::vector<std::string> seen;
  for (auto it = store->all(); it->valid(); it->next()) {
    seen.emplace_back(it->key());
    store->remove(it->key());
    CHECK(it->value() == "v-" + seen.back());
  }
  CHECK(seen == std::vector<std::string>{"a", "b", "c", "d"});
  CHECK(keys_of(store->all()).empty());
}

TEST_CASE("closing a store ends its iterators and refuses further use", "[unit][state]") {
  const Impl impl = GENERATE(Impl::kInMemory, Impl::kRocksDb);
  INFO(impl_name(impl));
  TempDir dir;
  auto store = open_store(impl, dir.path());
  store->put("a", "1");
  store->put("b", "2");

  auto it = store->all();
  REQUIRE(it->valid());
  store->close();
  CHECK_FALSE(store->is_open());
  it->next();
  CHECK_FALSE(it->valid());
  CHECK_THROWS_AS(store->get("a"), StateStoreError);
  CHECK_THROWS_AS(store->put("a", "1"), StateStoreError);
  store->close();  // idempotent
  // The iterator may outlive its store.
  store.reset();
  CHECK_FALSE(it->valid());
}

TEST_CASE("a RocksDB store reopened from its directory finds its data", "[unit][state]") {
  TempDir dir;
  const fs::path path = dir.path() / "rocksdb" / "counts";
  {
    state::RocksDbKeyValueStore store("counts", path, RocksDbOptions{}, nullptr);
    store.put("a", "1");
    store.put("\x80high", "2");
    store.put("removed", "3");
    store.remove("removed");
    store.close();
  }
  {
    // Destroyed without close(): the destructor flushes.
    state::RocksDbKeyValueStore store("counts", path, RocksDbOptions{}, nullptr);
    CHECK(drain(store.all()) == Entries{{"a", "1"}, {"\x80high", "2"}});
    store.put("b", "4");
  }
  state::RocksDbKeyValueStore store("counts", path, RocksDbOptions{}, nullptr);
  CHECK(keys_of(store.all()) == std::vector<std::string>{"a", "b", "\x80high"});

  // RocksDB's lock keeps a second instance out while the first is open.
  CHECK_THROWS_AS(state::RocksDbKeyValueStore("counts", path, RocksDbOptions{}, nullptr),
                  StateStoreError);
}

TEST_CASE("RocksDB stores share one memory bound through RocksDbResources", "[unit][state]") {
  TempDir dir;
  RocksDbMemoryOptions memory;
  memory.block_cache_bytes = 64 << 20;
  memory.memtable_bytes = 16 << 20;
  state::RocksDbResources resources(memory);
  CHECK(resources.capacity() == memory.block_cache_bytes);

  state::RocksDbKeyValueStore first("first", dir.path() / "first", RocksDbOptions{}, &resources);
  state::RocksDbKeyValueStore second("second", dir.path() / "second", RocksDbOptions{}, &resources);
  state::RocksDbKeyValueStore alone("alone", dir.path() / "alone", RocksDbOptions{}, nullptr);

  auto cache_of = [](const state::RocksDbKeyValueStore& store) {
    auto options = store.db().GetOptions();
    return options.table_factory->GetOptions<rocksdb::BlockBasedTableOptions>()->block_cache;
  };
  CHECK(cache_of(first) == resources.block_cache());
  CHECK(cache_of(second) == resources.block_cache());
  CHECK(cache_of(alone) != resources.block_cache());
  CHECK(first.db().GetOptions().write_buffer_manager == resources.write_buffer_manager());
  CHECK(second.db().GetOptions().write_buffer_manager == resources.write_buffer_manager());
  CHECK(alone.db().GetOptions().write_buffer_manager != resources.write_buffer_manager());

  const std::string value(1024, 'x');
  for (int i = 0; i < 100; ++i) {
    first.put("k" + std::to_string(i), value);
    second.put("k" + std::to_string(i), value);
  }
  // Memtables of both stores are charged to the one cache.
  CHECK(resources.memtable_usage() > 0);
  CHECK(resources.usage() >= resources.memtable_usage());
  CHECK(resources.usage() <= resources.capacity());

  RocksDbMemoryOptions too_much;
  too_much.block_cache_bytes = 1 << 20;
  too_much.memtable_bytes = 2 << 20;
  CHECK_THROWS_AS(state::RocksDbResources(too_much), std::invalid_argument);
}

TEST_CASE("a bulk restore through the vector memtable leaves a store that serves as any other",
          "[unit][state]") {
  TempDir dir;
  state::RocksDbResources resources;
  auto store = std::make_unique<state::RocksDbKeyValueStore>("counts", dir.path() / "counts",
                                                             RocksDbOptions{}, &resources);
  store->begin_bulk_restore();
  REQUIRE(store->bulk_restoring());
  CHECK(store->db().GetOptions().memtable_factory->Name() ==
        std::string("RillSortedRunsRepFactory"));
  CHECK(store->db().GetOptions().memtable_prefix_bloom_size_ratio == 0);
  // Batches of a changelog: each key written three times, out of order, and
  // every tenth key deleted at the end, over several memtables of 1 MiB.
  const std::string value(200, 'v');
  const int keys = 20'000;
  for (int round = 0; round < 3; ++round) {
    std::vector<std::string> names;
    std::vector<std::string> values;
    for (int i = 0; i < keys; ++i) {
      names.push_back("key-" + std::to_string((i * 7919) % keys));
      values.push_back(value + std::to_string(round));
    }
    // In batches of 1,000, as a restore's polls bring them.
    for (int from = 0; from < keys; from += 1000) {
      std::vector<state::BytesWrite> writes;
      for (int i = from; i < from + 1000; ++i) writes.push_back({names[i], values[i]});
      store->write_all(writes);
    }
  }
  std::vector<std::string> deleted;
  for (int i = 0; i < keys; i += 10) deleted.push_back("key-" + std::to_string(i));
  std::vector<state::BytesWrite> deletes;
  for (const std::string& key : deleted) deletes.push_back({key, std::nullopt});
  store->write_all(deletes);

  // Compactions stay off until the store's first flush after the restore.
  store->end_restore();
  CHECK_FALSE(store->bulk_restoring());
  CHECK(store->db().GetOptions().memtable_factory->Name() == std::string("SkipListFactory"));
  CHECK(store->db().GetOptions().disable_auto_compactions);
  CHECK(store->db().GetOptions().memtable_prefix_bloom_size_ratio > 0);
  CHECK(store->get("key-1") == value + "2");
  CHECK_FALSE(store->get("key-10").has_value());
  CHECK(drain(store->all()).size() == static_cast<std::size_t>(keys - keys / 10));
  store->put("key-1", "after");
  CHECK(store->get("key-1") == "after");
  store->flush();
  CHECK_FALSE(store->db().GetOptions().disable_auto_compactions);

  // Reopened from its directory, it holds the same.
  store.reset();
  state::RocksDbKeyValueStore reopened("counts", dir.path() / "counts", RocksDbOptions{},
                                       &resources);
  CHECK(reopened.get("key-1") == "after");
  CHECK(reopened.get("key-2") == value + "2");
  CHECK(drain(reopened.all()).size() == static_cast<std::size_t>(keys - keys / 10));
}

TEST_CASE("a bulk restore's memtable merges batches written in key order, and is read in order",
          "[unit][state]") {
  TempDir dir;
  state::RocksDbResources resources;
  state::RocksDbKeyValueStore store("counts", dir.path() / "counts", RocksDbOptions{}, &resources);
  store.begin_bulk_restore();
  const auto key = [](int i) {
    std::string digits = std::to_string(i);
    return "key-" + std::string(5 - digits.size(), '0') + digits;
  };
  const int keys = 10'000;
  std::vector<std::string> names;
  for (int i = 0; i < keys; ++i) names.push_back(key(i));
  const std::string value(300, 'v');
  const std::vector<std::string> values{value + "0", value + "1"};
  // Each batch in key order, as the changelog reader writes them, and the
  // batches' keys interleaved: a 1 MiB memtable holds a few ascending runs.
  for (const std::string& round_value : values)
    for (int batch = 0; batch < 10; ++batch) {
      std::vector<state::BytesWrite> writes;
      for (int i = batch; i < keys; i += 10)
        writes.push_back({names[static_cast<std::size_t>(i)], round_value});
      store.write_all(writes);
    }
  // A key twice in one batch: the second write is its value.
  store.write_all(std::vector<state::BytesWrite>{{"dup", "first"}, {"dup", "second"}});
  // A batch in no order at all: runs too short to merge.
  std::vector<state::BytesWrite> shuffled;
  for (int i = 0; i < 2000; ++i)
    shuffled.push_back({names[static_cast<std::size_t>((i * 7919) % keys)], "shuffled"});
  store.write_all(shuffled);

  // Read while the restore goes on: the memtable still written is read
  // through an ordered copy, the flushed ones from their files.
  const auto expected = [&](int i) {
    for (int j = 0; j < 2000; ++j)
      if ((j * 7919) % keys == i) return std::string("shuffled");
    return value + "1";
  };
  CHECK(store.get("dup") == "second");
  CHECK(store.get(key(5)) == expected(5));
  const Entries some = drain(store.range(key(100), key(199)));
  REQUIRE(some.size() == 100);
  for (int i = 0; i < 100; ++i) {
    CHECK(some[static_cast<std::size_t>(i)].first == key(100 + i));
    CHECK(some[static_cast<std::size_t>(i)].second == expected(100 + i));
  }

  store.end_restore();
  const Entries all = drain(store.all());
  REQUIRE(all.size() == static_cast<std::size_t>(keys) + 1);
  CHECK(all.front() == std::pair<std::string, std::string>{"dup", "second"});
  int wrong = 0;
  for (int i = 0; i < keys; ++i)
    if (all[static_cast<std::size_t>(i) + 1] != std::pair{key(i), expected(i)}) ++wrong;
  CHECK(wrong == 0);
}

// ---------------------------------------------------------------------------
// Window stores

TEST_CASE("window store fetches one key's windows in time order", "[unit][state]") {
  const Impl impl = GENERATE(Impl::kInMemory, Impl::kRocksDb, Impl::kRocksDbHashedByKey);
  INFO(impl_name(impl));
  TempDir dir;
  // Segments of 100 ms, so that fetches cross segments.
  state::SegmentedWindowStore store("windows", open_store(impl, dir.path()), 50, 10'000, 100);

  CHECK(store.put("a", 300, "a300"));
  CHECK(store.put("a", 100, "a100"));
  CHECK(store.put("a", 250, "a250"));
  CHECK(store.put("a", 0, "a0"));
  // "ab" extends "a": its windows sit among a's in the byte order and must not leak.
  CHECK(store.put("ab", 150, "ab150"));
  CHECK(store.put("b", 100, "b100"));
  CHECK(store.put(std::string("a\0", 2), 200, "a0-200"));

  CHECK(drain(store.fetch("a", 0, 1000)) ==
        std::vector<WindowEntry>{
            {"a", 0, "a0"}, {"a", 100, "a100"}, {"a", 250, "a250"}, {"a", 300, "a300"}});
  // Time bounds are inclusive.
  CHECK(drain(store.fetch("a", 100, 250)) ==
        std::vector<WindowEntry>{{"a", 100, "a100"}, {"a", 250, "a250"}});
  CHECK(drain(store.fetch("a", 101, 249)).empty());
  CHECK(drain(store.fetch("a", 300, 100)).empty());
  CHECK(drain(store.fetch("ab", 0, 1000)) == std::vector<WindowEntry>{{"ab", 150, "ab150"}});

  CHECK(store.fetch("a", 250) == "a250");
  CHECK_FALSE(store.fetch("a", 251).has_value());

  // fetch_all: by segment, then key, then time.
  CHECK(drain(store.fetch_all(100, 200)) ==
        std::vector<WindowEntry>{{"a", 100, "a100"},
                                 {"ab", 150, "ab150"},
                                 {"b", 100, "b100"},
                                 {std::string("a\0", 2), 200, "a0-200"}});
  CHECK(drain(store.all()).size() == 7);

  store.remove("a", 250);
  CHECK_FALSE(store.fetch("a", 250).has_value());
  CHECK(drain(store.fetch("a", 0, 1000)).size() == 3);
  CHECK_THROWS_AS(store.put("a", -1, "x"), std::invalid_argument);
}

TEST_CASE("window store drops windows older than its retention", "[unit][state]") {
  const Impl impl = GENERATE(Impl::kInMemory, Impl::kRocksDb, Impl::kRocksDbHashedByKey);
  INFO(impl_name(impl));
  TempDir dir;
  auto owned = open_store(impl, dir.path());
  // Retention 1000 ms of stream time, segments of 500 ms.
  state::SegmentedWindowStore store("windows", std::move(owned), 100, 1000, 500);
  auto count_stored = [&] { return drain(store.segments_store().all()).size(); };

  CHECK(store.put("a", 0, "0"));
  CHECK(store.put("a", 600, "600"));
  CHECK(store.put("b", 1200, "1200"));
  CHECK(store.observed_stream_time() == 1200);
  // Stream time 1200: windows starting at or before 200 have expired. The one at
  // 0 is hidden, though its segment (0..499) still holds it.
  CHECK(drain(store.fetch("a", 0, 5000)) == std::vector<WindowEntry>{{"a", 600, "600"}});
  CHECK_FALSE(store.fetch("a", 0).has_value());
  CHECK(count_stored() == 3);

  // Stream time 2100: segments 0..499 and 500..999 expire and are removed.
  CHECK(store.put("a", 2100, "2100"));
  CHECK(drain(store.all()) == std::vector<WindowEntry>{{"b", 1200, "1200"}, {"a", 2100, "2100"}});
  CHECK(count_stored() == 2);

  // A write into an expired segment is dropped.
  CHECK_FALSE(store.put("a", 100, "late"));
  CHECK(count_stored() == 2);
  CHECK(drain(store.fetch("a", 0, 5000)) == std::vector<WindowEntry>{{"a", 2100, "2100"}});
}

TEST_CASE("a window store's batch leaves it as one write after another would", "[unit][state]") {
  const Impl impl = GENERATE(Impl::kInMemory, Impl::kRocksDb, Impl::kRocksDbHashedByKey);
  INFO(impl_name(impl));
  TempDir one_dir;
  TempDir batch_dir;
  // Retention 1000 ms of stream time, segments of 500 ms.
  state::SegmentedWindowStore one_by_one("windows", open_store(impl, one_dir.path()), 100, 1000,
                                         500);
  state::SegmentedWindowStore batched("windows", open_store(impl, batch_dir.path()), 100, 1000,
                                      500);
  // Windows of five keys at times that mostly move on and sometimes jump
  // past a segment's expiry, with deletes and windows written twice.
  uint64_t random = 42;
  auto next = [&random](uint64_t bound) {
    random = random * 6364136223846793005ULL + 1442695040888963407ULL;
    return (random >> 33) % bound;
  };
  int64_t time = 0;
  std::vector<std::string> keys;
  std::vector<std::string> values;
  for (int round = 0; round < 40; ++round) {
    std::vector<state::WindowWrite> writes;
    keys.assign(12, {});
    values.assign(12, {});
    for (std::size_t i = 0; i < keys.size(); ++i) {
      time += next(10) == 0 ? 1200 : static_cast<int64_t>(next(80));
      const int64_t start = std::max<int64_t>(0, time - static_cast<int64_t>(next(1500)));
      keys[i] = std::string(1, static_cast<char>('a' + next(5)));
      values[i] = std::to_string(round) + "/" + std::to_string(i);
      const bool remove = next(8) == 0;
      writes.push_back({keys[i], start - start % 100,
                        remove ? std::nullopt : std::optional<std::string_view>(values[i])});
    }
    std::vector<bool> stored_one_by_one;
    for (const state::WindowWrite& write : writes) {
      if (write.value) {
        stored_one_by_one.push_back(one_by_one.put(write.key, write.window_start, *write.value));
      } else {
        one_by_one.remove(write.key, write.window_start);
        stored_one_by_one.push_back(true);
      }
    }
    batched.put_all(writes);
    INFO("round " << round);
    CHECK(batched.observed_stream_time() == one_by_one.observed_stream_time());
    CHECK(drain(batched.segments_store().all()) == drain(one_by_one.segments_store().all()));
    // A put counts as stored when it was stored one by one and a later put
    // did not expire its segment; a delete always does.
    const int64_t earliest_segment =
        std::max<int64_t>(0, batched.observed_stream_time() - 1000) / 500;
    for (std::size_t i = 0; i < writes.size(); ++i) {
      const bool live = writes[i].window_start / 500 >= earliest_segment;
      CHECK(writes[i].stored == (!writes[i].value || (stored_one_by_one[i] && live)));
    }
  }
}

TEST_CASE("a window store on the memtable hashed by key reads as the in-memory one",
          "[unit][state]") {
  // Small memtables, so that writes fill several, some flushed to files and
  // some still being written while they are read; flushes now and then too.
  RocksDbOptions options;
  options.write_buffer_bytes = 64 << 10;
  TempDir dir;
  state::SegmentedWindowStore expected("windows", open_store(Impl::kInMemory, dir.path()), 100,
                                       5'000, 1'000);
  state::SegmentedWindowStore hashed(
      "windows", open_store(Impl::kRocksDbHashedByKey, dir.path(), nullptr, "store", options), 100,
      5'000, 1'000);
  // Keys that extend others, with bytes below and above a timestamp's first
  // byte, so that their windows interleave in the byte order.
  const std::vector<std::string> keys{"a",
                                      "ab",
                                      std::string("a\0", 2),
                                      std::string("a\0\0", 3),
                                      "b",
                                      std::string("\xff\xff", 2),
                                      "order-17",
                                      "order-170"};
  uint64_t random = 7;
  auto next = [&random](uint64_t bound) {
    random = random * 6364136223846793005ULL + 1442695040888963407ULL;
    return (random >> 33) % bound;
  };
  int64_t time = 0;
  for (int step = 0; step < 20'000; ++step) {
    INFO("step " << step);
    const std::string& key = keys[next(keys.size())];
    const int64_t start = std::max<int64_t>(0, time - static_cast<int64_t>(next(3'000)));
    switch (next(10)) {
      case 0:
        expected.remove(key, start);
        hashed.remove(key, start);
        break;
      case 1: {
        const int64_t to = start + static_cast<int64_t>(next(2'000));
        REQUIRE(drain(hashed.fetch(key, start, to)) == drain(expected.fetch(key, start, to)));
        break;
      }
      case 2:
        REQUIRE(hashed.fetch(key, start) == expected.fetch(key, start));
        break;
      default: {
        const std::string value(static_cast<std::size_t>(next(200)),
                                static_cast<char>('a' + step % 26));
        REQUIRE(hashed.put(key, start, value) == expected.put(key, start, value));
        time += static_cast<int64_t>(next(5));
      }
    }
    if (step % 5'000 == 4'999) {
      REQUIRE(drain(hashed.fetch_all(time - 4'000, time)) ==
              drain(expected.fetch_all(time - 4'000, time)));
      hashed.flush();
    }
  }
  CHECK(drain(hashed.all()) == drain(expected.all()));
  CHECK(drain(hashed.all()).size() > 1'000);
}

TEST_CASE("a read on the memtable hashed by key sees what was there when it began",
          "[unit][state]") {
  TempDir dir;
  state::SegmentedWindowStore store("windows", open_store(Impl::kRocksDbHashedByKey, dir.path()),
                                    100, 1'000'000, 100'000);
  for (int64_t start = 0; start < 10; ++start) store.put("a", start, "first");
  auto reading = store.fetch("a", 0, 100);
  auto scanning = store.all();
  // Thousands of writes while they read: the memtable's index grows under them.
  for (int64_t start = 0; start < 5'000; ++start)
    store.put("k" + std::to_string(start), start, "x");
  for (int64_t start = 10; start < 20; ++start) store.put("a", start, "later");
  std::vector<WindowEntry> read;
  for (; reading->valid(); reading->next())
    read.push_back(
        {std::string(reading->key()), reading->window_start(), std::string(reading->value())});
  CHECK(read.size() == 10);
  for (const WindowEntry& entry : read) CHECK(entry.value == "first");
  CHECK(drain(std::move(scanning)).size() == 10);
  CHECK(drain(store.fetch("a", 0, 100)).size() == 20);
  CHECK(drain(store.all()).size() == 5'020);
}

TEST_CASE(
    "a store read within one prefix lets the memtables its reads saw go once it is written "
    "without reads",
    "[unit][state]") {
  RocksDbOptions options;
  options.memtable = RocksDbMemtable::kHashedByKey;
  options.write_buffer_bytes = 64 << 10;
  TempDir dir;
  state::RocksDbKeyValueStore store("joined", dir.path(), options, nullptr, false,
                                    state::kTimestampSize);
  auto key = [](int n) { return "key" + std::to_string(n % 100) + state::be64(n); };
  const std::string value(200, 'v');
  int written = 0;
  auto write = [&](int count) {
    for (int i = 0; i < count; ++i, ++written) store.put(key(written), value);
    // Waits for every flush: what the memtables hold is settled.
    REQUIRE(store.db().Flush(rocksdb::FlushOptions()).ok());
  };
  // Memtables flushed but still read by an iterator count in the first, not the second.
  auto pinned_bytes = [&store] {
    uint64_t all = 0;
    uint64_t current = 0;
    REQUIRE(store.db().GetIntProperty("rocksdb.size-all-mem-tables", &all));
    REQUIRE(store.db().GetIntProperty("rocksdb.cur-size-all-mem-tables", &current));
    return all - current;
  };
  write(100);
  {
    auto reading = store.range(key(5), "key5" + state::be64(1'000'000));
    CHECK(reading->valid());
  }
  write(static_cast<int>(state::RocksDbKeyValueStore::kWritesBeforeRelease) - 200);
  // The iterator the read borrowed keeps the memtable it read alive.
  CHECK(pinned_bytes() > 0);
  write(200);
  CHECK(pinned_bytes() == 0);
  // A read after that borrows a new iterator, which sees every write.
  auto reading = store.range("key7" + state::be64(0), "key7" + state::be64(1'000'000));
  int found = 0;
  for (; reading->valid(); reading->next()) ++found;
  CHECK(found == written / 100);
}

TEST_CASE("point reads on the memtable hashed by key keep no memory", "[unit][state]") {
  TempDir dir;
  state::SegmentedWindowStore store("windows", open_store(Impl::kRocksDbHashedByKey, dir.path()),
                                    100, 1'000'000, 100'000);
  for (int64_t key = 0; key < 1'000; ++key) store.put("k" + std::to_string(key), key, "v");
  const runtime::HeapMemory before = runtime::heap_memory();
  int found = 0;
  for (int64_t read = 0; read < 200'000; ++read) {
    const int64_t key = read % 1'000;
    found += store.fetch("k" + std::to_string(key), key) == "v" ? 1 : 0;
  }
  CHECK(found == 200'000);
  // Under an allocator that reports no figures (a sanitizer's), its leak
  // checker stands in for this check.
  const runtime::HeapMemory after = runtime::heap_memory();
  if (before.known && after.known) {
    // Each read that kept its iterator would keep about 100 bytes: 20 MB.
    CHECK(after.allocated_bytes < before.allocated_bytes + (uint64_t{4} << 20));
  }
}

namespace {

// Windows of 100 ms kept for 1 s in segments of 500 ms, in RocksDB in `directory`.
state::SegmentedWindowStore rocksdb_windows(const fs::path& directory) {
  return state::SegmentedWindowStore("windows",
                                     std::make_unique<state::RocksDbKeyValueStore>(
                                         "windows", directory, RocksDbOptions{}, nullptr),
                                     100, 1000, 500);
}

}  // namespace

TEST_CASE("a RocksDB window store reopened from its directory finds its windows", "[unit][state]") {
  TempDir dir;
  auto open = [&] { return rocksdb_windows(dir.path()); };
  {
    auto store = open();
    store.put("a", 100, "1");
    store.put("a", 700, "2");
    store.put("b", 1100, "3");
  }
  auto store = open();
  CHECK(store.observed_stream_time() == -1);
  CHECK(drain(store.fetch("a", 0, 2000)) ==
        std::vector<WindowEntry>{{"a", 100, "1"}, {"a", 700, "2"}});
  // Segments found on open expire as stream time moves on.
  store.put("b", 1600, "4");
  CHECK(drain(store.all()) ==
        std::vector<WindowEntry>{{"a", 700, "2"}, {"b", 1100, "3"}, {"b", 1600, "4"}});
  CHECK(drain(store.segments_store().all()).size() == 3);
}

namespace {

// Counts the reads that reach the store below the segments.
class ReadCountingStore final : public state::ForwardingKeyValueStore {
 public:
  explicit ReadCountingStore(std::unique_ptr<state::KeyValueBytesStore> inner, int& reads)
      : state::ForwardingKeyValueStore(std::move(inner)), reads_(reads) {}
  std::optional<std::string> get(std::string_view key) const override {
    ++reads_;
    return inner_->get(key);
  }
  std::unique_ptr<state::KeyValueBytesIterator> range(std::string_view from,
                                                      std::string_view to) const override {
    ++reads_;
    return inner_->range(from, to);
  }

 private:
  int& reads_;
};

}  // namespace

TEST_CASE("a key filter never misses a key it was given and rarely claims others",
          "[unit][state]") {
  // Ten times the first layer's size: the filter grows by layers.
  state::KeyFilter filter(state::KeyFilter::kMinKeys);
  const int added = 10 * static_cast<int>(state::KeyFilter::kMinKeys);
  // A key the filter may hold already (a false positive) is not counted again.
  int fresh = 0;
  for (int i = 0; i < added; ++i)
    fresh += filter.add(state::KeyFilter::hash("key-" + std::to_string(i))) ? 1 : 0;
  CHECK(fresh > added * 95 / 100);
  CHECK(filter.keys() == static_cast<std::size_t>(fresh));
  CHECK_FALSE(filter.add(state::KeyFilter::hash("key-7")));
  CHECK(filter.keys() == static_cast<std::size_t>(fresh));
  int missed = 0;
  for (int i = 0; i < added; ++i)
    missed += filter.may_contain(state::KeyFilter::hash("key-" + std::to_string(i))) ? 0 : 1;
  CHECK(missed == 0);
  int claimed = 0;
  const int others = 100'000;
  for (int i = 0; i < others; ++i)
    claimed += filter.may_contain(state::KeyFilter::hash("other-" + std::to_string(i))) ? 1 : 0;
  // About 1% per layer; the filter has four (1024, 2048, 4096 and 8192 keys).
  CHECK(claimed < others / 20);
}

TEST_CASE("window and session stores read no segment that never held the key", "[unit][state]") {
  int reads = 0;
  auto counted = [&reads] {
    return std::make_unique<ReadCountingStore>(
        std::make_unique<state::InMemoryKeyValueStore>("store"), reads);
  };
  SECTION("window store") {
    state::SegmentedWindowStore store("windows", counted(), 100, 1000, 500);
    store.put("a", 100, "1");
    store.put("b", 600, "2");
    reads = 0;
    CHECK_FALSE(store.fetch("c", 100).has_value());
    CHECK(drain(store.fetch("c", 0, 1000)).empty());
    CHECK(reads == 0);
    // "a" is in the first segment only, "b" in the second only.
    CHECK(drain(store.fetch("a", 0, 1000)) == std::vector<WindowEntry>{{"a", 100, "1"}});
    CHECK(reads == 1);
    CHECK(store.fetch("b", 600) == "2");
    CHECK(reads == 2);
  }
  SECTION("session store") {
    state::SegmentedSessionStore store("sessions", counted(), 1000, 500);
    store.put("a", 100, 200, "1");
    reads = 0;
    CHECK(drain(store.find_sessions("b", 0, 1000)).empty());
    CHECK_FALSE(store.fetch_session("b", 100, 200).has_value());
    CHECK(reads == 0);
    CHECK(store.fetch_session("a", 100, 200) == "1");
    CHECK(reads == 1);
  }
}

TEST_CASE("a window store reopened on its files reads every segment it found there",
          "[unit][state]") {
  TempDir dir;
  auto open = [&] { return rocksdb_windows(dir.path()); };
  {
    auto store = open();
    store.put("a", 100, "1");
  }
  auto store = open();
  // Segment 0 was there at open: its keys are unknown, so it is read. Segment
  // 1 is new: only what was written since counts.
  store.put("b", 200, "2");
  store.put("c", 600, "3");
  CHECK(store.fetch("a", 100) == "1");
  CHECK(drain(store.fetch("a", 0, 1000)) == std::vector<WindowEntry>{{"a", 100, "1"}});
  CHECK(drain(store.fetch("b", 0, 1000)) == std::vector<WindowEntry>{{"b", 200, "2"}});
  CHECK(drain(store.fetch("c", 0, 1000)) == std::vector<WindowEntry>{{"c", 600, "3"}});
}

// ---------------------------------------------------------------------------
// Session stores

TEST_CASE("session store finds the sessions a record would merge with", "[unit][state]") {
  const Impl impl = GENERATE(Impl::kInMemory, Impl::kRocksDb);
  INFO(impl_name(impl));
  TempDir dir;
  state::SegmentedSessionStore store("sessions", open_store(impl, dir.path()), 100'000, 60);

  CHECK(store.put("k", 0, 10, "s1"));
  CHECK(store.put("k", 20, 30, "s2"));
  CHECK(store.put("k", 50, 50, "s3"));
  CHECK(store.put("k", 100, 150, "s4"));
  // Keys that extend "k" or follow it must not show among k's sessions.
  CHECK(store.put("kk", 20, 40, "other"));
  CHECK(store.put(std::string("k\0", 2), 25, 35, "other"));
  CHECK(store.put("l", 20, 40, "other"));

  // Sessions that end at or after 25 and start at or before 55, by end time.
  CHECK(drain(store.find_sessions("k", 25, 55)) ==
        std::vector<SessionEntry>{{"k", 20, 30, "s2"}, {"k", 50, 50, "s3"}});
  // Both bounds are inclusive.
  CHECK(drain(store.find_sessions("k", 30, 20)) == std::vector<SessionEntry>{{"k", 20, 30, "s2"}});
  CHECK(drain(store.find_sessions("k", 10, 0)) == std::vector<SessionEntry>{{"k", 0, 10, "s1"}});
  CHECK(drain(store.find_sessions("k", 31, 49)).empty());
  CHECK(drain(store.find_sessions("k", 0, 1000)).size() == 4);

  // A record at 40 with an inactivity gap of 10 bridges s2 and s3: the
  // aggregation replaces both with one merged session.
  const int64_t time = 40, gap = 10;
  auto merged = drain(store.find_sessions("k", time - gap, time + gap));
  REQUIRE(merged.size() == 2);
  for (const auto& session : merged) store.remove(session.key, session.start, session.end);
  CHECK(store.put("k", merged.front().start, merged.back().end, "s2+s3"));

  CHECK(drain(store.fetch("k")) == std::vector<SessionEntry>{{"k", 0, 10, "s1"},
                                                             {"k", 20, 50, "s2+s3"},
                                                             {"k", 100, 150, "s4"}});
  CHECK(store.fetch_session("k", 20, 50) == "s2+s3");
  CHECK_FALSE(store.fetch_session("k", 20, 30).has_value());
  CHECK(drain(store.all()).size() == 6);
  CHECK_THROWS_AS(store.put("k", 10, 5, "x"), std::invalid_argument);
}

TEST_CASE("session store drops sessions that ended before its retention", "[unit][state]") {
  const Impl impl = GENERATE(Impl::kInMemory, Impl::kRocksDb);
  INFO(impl_name(impl));
  TempDir dir;
  state::SegmentedSessionStore store("sessions", open_store(impl, dir.path()), 100, 60);

  CHECK(store.put("k", 0, 10, "old"));
  CHECK(store.put("k", 90, 130, "mid"));
  CHECK(store.put("k", 200, 300, "new"));
  // Stream time (largest session end) 300: sessions ending at or before 200 expired.
  CHECK(store.observed_stream_time() == 300);
  CHECK(drain(store.fetch("k")) == std::vector<SessionEntry>{{"k", 200, 300, "new"}});
  CHECK_FALSE(store.fetch_session("k", 90, 130).has_value());
  // Their segments (ends 0..59 and 120..179) are removed.
  CHECK(drain(store.segments_store().all()).size() == 1);
  CHECK_FALSE(store.put("k", 0, 20, "late"));
}

// ---------------------------------------------------------------------------
// Typed stores and builders

TEST_CASE("typed key-value store over both implementations", "[unit][state]") {
  const bool in_memory = GENERATE(true, false);
  INFO((in_memory ? "in-memory" : "rocksdb"));
  TempDir dir;
  auto builder = Stores::key_value("counts", serdes::string(), serdes::int64());
  if (in_memory) builder.in_memory();
  auto owned = builder.build(builder.spec().directory_in(dir.path()), nullptr);
  auto& store = dynamic_cast<KeyValueStore<std::string, int64_t>&>(*owned);

  CHECK(store.name() == "counts");
  CHECK(store.persistent() == !in_memory);
  store.put("apple", 3);
  store.put("banana", 5);
  store.put("cherry", 7);
  CHECK(store.get("banana") == 5);
  CHECK_FALSE(store.get("durian").has_value());
  CHECK(store.put_if_absent("apple", 100) == 3);
  CHECK_FALSE(store.put_if_absent("date", 9).has_value());
  CHECK(store.remove("date") == 9);
  CHECK_FALSE(store.remove("date").has_value());

  using KV = KeyValue<std::string, int64_t>;
  CHECK(store.range("apple", "banana").to_vector() == std::vector<KV>{{"apple", 3}, {"banana", 5}});
  CHECK(store.prefix_scan(std::string("ch"), serdes::string()).to_vector() ==
        std::vector<KV>{{"cherry", 7}});

  std::vector<KV> seen;
  for (const auto& [word, count] : store.all()) seen.push_back({word, count});
  CHECK(seen == std::vector<KV>{{"apple", 3}, {"banana", 5}, {"cherry", 7}});

  if (!in_memory) CHECK(fs::exists(dir.path() / "rocksdb" / "counts"));
  store.close();
  CHECK_FALSE(store.is_open());
}

TEST_CASE("typed stores order by serialized bytes and turn null values into removals",
          "[unit][state]") {
  auto owned = Stores::key_value<int64_t, std::optional<std::string>>(
                   "numbers", serdes::int64(), serdes::nullable(serdes::string()))
                   .in_memory()
                   .build({}, nullptr);
  auto& store = dynamic_cast<KeyValueStore<int64_t, std::optional<std::string>>&>(*owned);
  store.put(2, "two");
  store.put(-1, "minus one");
  store.put(1, "one");
  // Big-endian two's complement: negative numbers sort after positive ones.
  std::vector<int64_t> keys;
  for (auto it = store.all(); it.valid(); it.next()) keys.push_back(it.key());
  CHECK(keys == std::vector<int64_t>{1, 2, -1});

  store.put(2, std::nullopt);
  CHECK_FALSE(store.get(2).has_value());
  CHECK(store.approximate_num_entries() == 2);
}

TEST_CASE("typed window store", "[unit][state]") {
  const bool in_memory = GENERATE(true, false);
  INFO((in_memory ? "in-memory" : "rocksdb"));
  TempDir dir;
  auto builder = Stores::window("clicks-per-minute", 60s, 10min, serdes::string(), serdes::int64());
  if (in_memory) builder.in_memory();
  auto owned = builder.build(dir.path(), nullptr);
  auto& store = dynamic_cast<WindowStore<std::string, int64_t>&>(*owned);

  CHECK(store.window_size() == 60'000);
  CHECK(store.retention_period() == 600'000);
  CHECK(store.put("alice", 2, 120'000));
  CHECK(store.put("alice", 1, 60'000));
  CHECK(store.put("bob", 4, 60'000));
  CHECK(store.fetch("alice", 60'000) == 1);

  using TimeKV = KeyValue<int64_t, int64_t>;
  CHECK(store.fetch("alice", 0, 200'000).to_vector() ==
        std::vector<TimeKV>{{60'000, 1}, {120'000, 2}});

  using WKV = KeyValue<Windowed<std::string>, int64_t>;
  CHECK(store.fetch_all(60'000, 60'000).to_vector() ==
        std::vector<WKV>{{{"alice", {60'000, 120'000}}, 1}, {{"bob", {60'000, 120'000}}, 4}});
  CHECK(store.all().to_vector().size() == 3);
  store.remove("alice", 60'000);
  CHECK_FALSE(store.fetch("alice", 60'000).has_value());
}

TEST_CASE("typed session store", "[unit][state]") {
  const bool in_memory = GENERATE(true, false);
  INFO((in_memory ? "in-memory" : "rocksdb"));
  TempDir dir;
  auto builder = Stores::session("visits", 1h, serdes::string(), serdes::int64());
  if (in_memory) builder.in_memory();
  auto owned = builder.build(dir.path(), nullptr);
  auto& store = dynamic_cast<SessionStore<std::string, int64_t>&>(*owned);

  CHECK(store.put({"alice", {1000, 5000}}, 3));
  CHECK(store.put({"alice", {9000, 9000}}, 1));
  CHECK(store.put({"bob", {2000, 2500}}, 2));

  using SKV = KeyValue<Windowed<std::string>, int64_t>;
  CHECK(store.find_sessions("alice", 4000, 8000).to_vector() ==
        std::vector<SKV>{{{"alice", {1000, 5000}}, 3}});
  CHECK(store.fetch("alice").to_vector() ==
        std::vector<SKV>{{{"alice", {1000, 5000}}, 3}, {{"alice", {9000, 9000}}, 1}});
  CHECK(store.fetch_session("bob", 2000, 2500) == 2);
  store.remove({"bob", {2000, 2500}});
  CHECK(store.all().to_vector().size() == 2);
}

TEST_CASE("store builders describe stores for a topology", "[unit][state]") {
  auto counts = Stores::key_value("counts", serdes::string(), serdes::int64());
  const StoreSpec& spec = counts.spec();
  CHECK(spec.name == "counts");
  CHECK(spec.kind == StoreKind::kKeyValue);
  CHECK(spec.persistent);
  CHECK(spec.logging_enabled);
  CHECK(spec.key_serde_name == "string");
  CHECK(spec.value_serde_name == "int64");
  CHECK(spec.changelog_topic("app") == "app-counts-changelog");
  CHECK(spec.changelog_topic_config() ==
        std::map<std::string, std::string>{{"cleanup.policy", "compact"}});
  CHECK(spec.directory_in("/state/app/0_1") == fs::path("/state/app/0_1/rocksdb/counts"));

  counts.in_memory().with_logging_enabled({{"min.insync.replicas", "2"}});
  CHECK_FALSE(counts.spec().persistent);
  CHECK(counts.spec().changelog_topic_config().at("min.insync.replicas") == "2");
  counts.with_logging_disabled();
  CHECK_FALSE(counts.spec().logging_enabled);

  auto windows = Stores::window("w", 5min, 1h, serdes::string(), serdes::int64());
  CHECK(windows.spec().changelog_topic_config() ==
        std::map<std::string, std::string>{{"cleanup.policy", "compact,delete"},
                                           {"retention.ms", std::to_string(3600000 + 86400000)}});
  CHECK(windows.spec().segment_interval_ms() == 1'800'000);
  windows.with_retention(10min);
  CHECK(windows.spec().retention == 10min);
  CHECK(windows.spec().segment_interval_ms() == 300'000);
  CHECK(Stores::window("small", 1s, 2s, serdes::string(), serdes::int64())
            .spec()
            .segment_interval_ms() == 60'000);

  CHECK_THROWS_AS(windows.with_retention(1min), std::invalid_argument);
  CHECK_THROWS_AS(counts.with_retention(1min), std::invalid_argument);
  CHECK_THROWS_AS(Stores::window("w", 0ms, 1h, serdes::string(), serdes::int64()),
                  std::invalid_argument);
  CHECK_THROWS_AS(Stores::session("s", 0ms, serdes::string(), serdes::int64()),
                  std::invalid_argument);
  CHECK_THROWS_AS(Stores::key_value("bad name", serdes::string(), serdes::int64()),
                  std::invalid_argument);
  CHECK_THROWS_AS(Stores::key_value("", serdes::string(), serdes::int64()), std::invalid_argument);
  struct Custom {};
  CHECK_THROWS_WITH((Stores::key_value<std::string, Custom>("custom")),
                    Catch::Contains("no value serde"));
}

TEST_CASE("a store wrapper rejects a byte store of another kind", "[unit][state]") {
  auto windows = Stores::window("w", 1min, 1h, serdes::string(), serdes::int64());
  CHECK_THROWS_AS(windows.wrap(std::make_unique<state::InMemoryKeyValueStore>("w")),
                  std::logic_error);
}

TEST_CASE("a RocksDB store opened for a restore onto its files compacts again once asked to",
          "[unit][state]") {
  TempDir dir;
  auto compacting = [](const state::RocksDbKeyValueStore& store) {
    return !store.db().GetOptions().disable_auto_compactions;
  };
  {
    state::RocksDbKeyValueStore store("counts", dir.path() / "a", RocksDbOptions{}, nullptr, true);
    CHECK_FALSE(compacting(store));
    store.resume_compactions();
    CHECK(compacting(store));
  }
  {
    // A commit's flush resumes them too, whoever forgot to.
    state::RocksDbKeyValueStore store("counts", dir.path() / "b", RocksDbOptions{}, nullptr, true);
    store.put("a", "1");
    store.flush();
    CHECK(compacting(store));
  }
  {
    // So does a level 0 grown to RocksDB's slowdown trigger, which RocksDB
    // itself does not enforce while compactions are off.
    state::RocksDbKeyValueStore store("counts", dir.path() / "c", RocksDbOptions{}, nullptr, true);
    const int trigger = store.db().GetOptions().level0_slowdown_writes_trigger;
    for (int file = 0; file < trigger; ++file) {
      CHECK_FALSE(compacting(store));
      const std::string key = "k" + std::to_string(file);
      const state::BytesWrite write{key, std::string_view("v")};
      store.write_all({&write, 1});
      REQUIRE(store.db().Flush(rocksdb::FlushOptions()).ok());
    }
    const state::BytesWrite write{"last", std::string_view("v")};
    store.write_all({&write, 1});
    CHECK(compacting(store));
  }
}
