// The record cache layer (state/caching_stores.h): one budget for the caches of
// every task of an instance, eviction from the store being written only, and
// iterators that see what the cache holds; for key-value and window stores.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/rill.h"

#include "state/caching_stores.h"
#include "state/forwarding_stores.h"
#include "state/in_memory_key_value_store.h"
#include "state/rocksdb_key_value_store.h"
#include "state/state_manager.h"
#include "state/window_store.h"
#include "support/cached_store.h"
#include "support/count_topology.h"
#include "support/temp_dir.h"

using namespace rill;
namespace fs = std::filesystem;
using testing::TempDir;

namespace {

using Strings = KeyValueStore<std::string, std::string>;
using Entries = std::vector<KeyValue<std::string, std::string>>;

using CachedStrings = testing::CachedStore<std::string>;

// A RocksDB store in `directory`, or an in-memory one.
std::unique_ptr<state::BytesStore> strings_store(bool rocksdb, const fs::path& directory) {
  if (!rocksdb) return std::make_unique<state::InMemoryKeyValueStore>("cached");
  return std::make_unique<state::RocksDbKeyValueStore>("cached", directory, RocksDbOptions{},
                                                       nullptr);
}

}  // namespace

TEST_CASE("the record caches of 32 tasks stay within the instance's budget",
          "[unit][state][cache]") {
  constexpr std::size_t kBudget = 64 * 1024;
  constexpr int kTasks = 32;
  Topology topology = testing::processor_count_topology("in", "out", "counts", true);
  topology.build();
  const auto& sub = topology.subtopologies().at(0);
  TempDir directory;
  state::CacheBudget budget(kBudget);
  std::vector<std::unique_ptr<state::StateManager>> tasks;
  std::vector<std::size_t> handed_on(kTasks, 0);
  for (int partition = 0; partition < kTasks; ++partition) {
    const TaskId id{0, partition};
    tasks.push_back(std::make_unique<state::StateManager>(
        topology, sub, id, "app", directory.path() / id.to_string(), nullptr));
    // As the runtime opens an instance's tasks, one after the other.
    tasks.back()->open(
        nullptr, [] { return int64_t{0}; }, &budget);
    auto& counts = dynamic_cast<KeyValueStore<std::string, int64_t>&>(*tasks.back()->get("counts"));
    counts.set_flush_listener(
        [&handed_on, partition](const std::string&, const std::optional<int64_t>&, int64_t) {
          ++handed_on[static_cast<std::size_t>(partition)];
        });
  }

  // Each task writes 500 keys; the tasks take turns, as workers run them.
  constexpr int kKeys = 500;
  std::size_t most = 0;
  for (int key = 0; key < kKeys; ++key) {
    for (int partition = 0; partition < kTasks; ++partition) {
      auto& counts =
          dynamic_cast<KeyValueStore<std::string, int64_t>&>(*tasks[partition]->get("counts"));
      counts.put("key-" + std::to_string(key), std::optional<int64_t>(key), key);
      most = std::max(most, budget.bytes());
    }
  }
  CHECK(most <= kBudget);
  std::size_t cached = 0;
  for (int partition = 0; partition < kTasks; ++partition) {
    const auto& counts =
        dynamic_cast<KeyValueStore<std::string, int64_t>&>(*tasks[partition]->get("counts"));
    cached += counts.cached_entries();
    // Every key is either still cached or was handed on, once.
    CHECK(counts.cached_entries() + handed_on[static_cast<std::size_t>(partition)] == kKeys);
  }
  // The budget was used, not just respected.
  CHECK(cached > 0);
  CHECK(budget.bytes() > kBudget / 2);

  // A commit hands on the rest and keeps it for reads, as it fits in the
  // budget; closing gives it all back.
  const std::size_t before_commit = budget.bytes();
  for (auto& task : tasks) task->flush();
  CHECK(budget.bytes() == before_commit);
  for (std::size_t handed : handed_on) CHECK(handed == kKeys);
  auto& first = dynamic_cast<KeyValueStore<std::string, int64_t>&>(*tasks[0]->get("counts"));
  first.put("unflushed", std::optional<int64_t>(1), 1);
  CHECK(budget.bytes() > 0);
  for (auto& task : tasks) task->close(false);
  CHECK(budget.bytes() == 0);
}

TEST_CASE("handing on the caches leaves RocksDB's memtables unflushed, and a flush persists them",
          "[unit][state][cache]") {
  Topology topology = testing::processor_count_topology("in", "out", "counts");
  topology.build();
  TempDir directory;
  state::CacheBudget budget(1 << 20);
  const TaskId id{0, 0};
  state::StateManager task(topology, topology.subtopologies().at(0), id, "app",
                           directory.path() / id.to_string(), nullptr);
  task.open(
      nullptr, [] { return int64_t{0}; }, &budget);
  auto& counts = dynamic_cast<KeyValueStore<std::string, int64_t>&>(*task.get("counts"));
  int handed_on = 0;
  counts.set_flush_listener(
      [&](const std::string&, const std::optional<int64_t>&, int64_t) { ++handed_on; });
  for (int key = 0; key < 100; ++key)
    counts.put("key-" + std::to_string(key), std::optional<int64_t>(key), key);
  auto sst_files = [&] {
    int files = 0;
    for (const auto& entry : fs::recursive_directory_iterator(directory.path()))
      if (entry.path().extension() == ".sst") ++files;
    return files;
  };

  // An exactly-once commit: every entry reaches the store and the listener,
  // and the store writes no file.
  task.hand_on_cached();
  CHECK(handed_on == 100);
  CHECK(counts.cached_entries() == 0);
  CHECK(counts.get("key-42") == 42);
  CHECK(sst_files() == 0);

  // An at-least-once commit persists the store before its checkpoint.
  task.flush();
  CHECK(sst_files() > 0);
  task.close(true);
}

TEST_CASE("a store evicts only its own entries, however full the budget", "[unit][state][cache]") {
  state::CacheBudget budget(4096);
  CachedStrings full(budget);
  CachedStrings other(budget);
  // Dirty entries of the full store up to nearly the whole budget.
  full.store().put("key-0", std::optional<std::string>("value"), 0);
  const std::size_t entry_bytes = budget.bytes();
  for (int i = 1; budget.bytes() + 2 * entry_bytes < budget.max_bytes(); ++i)
    full.store().put("key-" + std::to_string(i), std::optional<std::string>("value"), i);
  REQUIRE(full.handed_on.empty());
  const std::size_t held = full.store().cached_entries();
  REQUIRE(held > 1);

  // The other store is empty, so its write, larger than what the budget has
  // left, cannot bring the total within it: the store hands on its own entry,
  // never one of the full store's (whose processors may run on another thread).
  const std::string large(200, 'x');
  other.store().put("mine", std::optional<std::string>(large), 1);
  CHECK(full.handed_on.empty());
  CHECK(full.store().cached_entries() == held);
  CHECK(other.handed_on == CachedStrings::HandedOn{{"mine", large}});
  CHECK(other.store().get("mine") == large);
  CHECK(budget.bytes() <= budget.max_bytes());
}

TEST_CASE("range, prefix_scan and all see what the record cache holds", "[unit][state][cache]") {
  const bool rocksdb = GENERATE(false, true);
  CAPTURE(rocksdb);
  TempDir directory;
  state::CacheBudget budget(1 << 20);
  CachedStrings cached(budget, strings_store(rocksdb, directory.path()));
  Strings& store = cached.store();
  // In the store: written without a timestamp, straight through.
  for (const char* key : {"a", "b", "c", "d", "f"}) store.put(key, std::string("store-") + key);
  // In the cache only: a new key, a changed one, deletes of stored keys, a
  // delete of a key the store never had, and a key past every stored one.
  store.put("ab", std::optional<std::string>("cache-ab"), 1);
  store.put("b", std::optional<std::string>("cache-b"), 1);
  store.put("c", std::optional<std::string>(), 1);
  store.put("f", std::optional<std::string>(), 1);
  store.put("e", std::optional<std::string>(), 1);
  store.put("g", std::optional<std::string>("cache-g"), 1);
  REQUIRE(cached.handed_on.empty());

  const Entries everything{
      {"a", "store-a"}, {"ab", "cache-ab"}, {"b", "cache-b"}, {"d", "store-d"}, {"g", "cache-g"}};
  CHECK(store.all().to_vector() == everything);
  CHECK(store.range("a", "c").to_vector() ==
        Entries{{"a", "store-a"}, {"ab", "cache-ab"}, {"b", "cache-b"}});
  CHECK(store.range("ab", "ab").to_vector() == Entries{{"ab", "cache-ab"}});
  CHECK(store.range("c", "c").to_vector().empty());
  CHECK(store.range("c", "f").to_vector() == Entries{{"d", "store-d"}});
  CHECK(store.range("d", "a").to_vector().empty());
  CHECK(store.prefix_scan(std::string("a"), serdes::string()).to_vector() ==
        Entries{{"a", "store-a"}, {"ab", "cache-ab"}});
  CHECK(store.prefix_scan(std::string("g"), serdes::string()).to_vector() ==
        Entries{{"g", "cache-g"}});
  CHECK(store.get("c") == std::nullopt);
  CHECK(store.get("b") == "cache-b");

  // An iterator reads the cache as it was when it was made.
  auto iterator = store.all();
  store.put("aa", std::optional<std::string>("later"), 2);
  CHECK(iterator.to_vector() == everything);

  // After a commit the store below holds the same.
  store.flush();
  CHECK(store.cached_entries() == 0);
  Entries after = everything;
  after.insert(after.begin() + 1, {"aa", "later"});
  CHECK(store.all().to_vector() == after);
  CHECK(store.range("a", "c").to_vector() ==
        Entries{{"a", "store-a"}, {"aa", "later"}, {"ab", "cache-ab"}, {"b", "cache-b"}});
}

TEST_CASE("a commit keeps what it handed on for reads, within the budget", "[unit][state][cache]") {
  std::size_t entry_size = 0;
  {
    state::CacheBudget probe(1 << 20);
    CachedStrings one(probe);
    one.store().put("k-0", std::optional<std::string>("v"), 0);
    entry_size = probe.bytes();
  }
  // Room for ten entries; a commit keeps the eight it handed on.
  state::CacheBudget budget(10 * entry_size);
  CachedStrings cached(budget);
  Strings& store = cached.store();
  for (int i = 0; i < 8; ++i)
    store.put("k-" + std::to_string(i), std::optional<std::string>("v"), i);
  store.flush();
  CHECK(cached.handed_on.size() == 8);
  CHECK(store.cached_entries() == 0);
  CHECK(budget.bytes() == 8 * entry_size);

  // Every one is read from the cache, none from the store below; nothing is
  // handed on again.
  for (int i = 0; i < 8; ++i) CHECK(store.get("k-" + std::to_string(i)) == "v");
  CHECK(store.cache_counts().hits == 8);
  CHECK(store.cache_counts().misses == 0);
  store.flush();
  CHECK(cached.handed_on.size() == 8);

  // Updates take the room of kept entries before they hand on anything.
  for (int i = 10; i < 19; ++i)
    store.put("k-" + std::to_string(i), std::optional<std::string>("w"), i);
  CHECK(cached.handed_on.size() == 8);
  CHECK(store.cached_entries() == 9);

  // A write without a timestamp supersedes a kept entry, as it does an update.
  store.flush();
  store.put("k-18", "plain");
  CHECK(store.get("k-18") == "plain");
  CHECK(store.all().to_vector().size() == 17);
}

TEST_CASE("a kept entry is not kept when its listener wrote to the store", "[unit][state][cache]") {
  state::CacheBudget budget(1 << 20);
  auto typed = Stores::key_value<std::string, std::string>("cached").in_memory();
  auto wrapped = typed.wrap(
      state::with_record_cache(typed.build_bytes_store({}, nullptr), StoreKind::kKeyValue, budget));
  auto& store = dynamic_cast<Strings&>(*wrapped);
  // A processor downstream that writes the key again, straight through.
  store.set_flush_listener([&store](const std::string& key, const std::optional<std::string>&,
                                    int64_t) { store.put(key, std::string("rewritten")); });
  store.put("a", std::optional<std::string>("cached"), 1);
  store.flush();
  CHECK(store.get("a") == "rewritten");
}

TEST_CASE("a cached value keeps its bytes as it outgrows its entry and shrinks back",
          "[unit][state][cache]") {
  state::CacheBudget budget(1 << 20);
  CachedStrings cached(budget);
  Strings& store = cached.store();
  // The entry has room for the first value; each longer one needs a buffer,
  // then a larger one; the last fits the entry again.
  const std::vector<std::optional<std::string>> values{
      "abcd", std::string(40, 'x'), std::string(100, 'y'), std::string(90, 'z'), std::nullopt,
      "ef",   std::string(300, 'w')};
  for (std::size_t i = 0; i < values.size(); ++i) {
    store.put("k", values[i], static_cast<int64_t>(i));
    CHECK(store.get("k") == values[i]);
  }
  store.put("k", std::optional<std::string>("gh"), 10);
  CHECK(store.get("k") == "gh");
  store.flush();
  CHECK(cached.handed_on == CachedStrings::HandedOn{{"k", "gh"}});
  CHECK(store.get("k") == "gh");
}

TEST_CASE("writes without a timestamp keep the record cache coherent", "[unit][state][cache]") {
  state::CacheBudget budget(1 << 20);
  CachedStrings cached(budget);
  Strings& store = cached.store();
  store.put("a", "stored");

  // A plain write supersedes the key's cached update, which is never handed on.
  store.put("a", std::optional<std::string>("cached"), 1);
  store.put("a", "plain");
  CHECK(store.cached_entries() == 0);
  CHECK(store.get("a") == "plain");

  // put_if_absent sees a cached value, and a cached delete as no value.
  store.put("b", std::optional<std::string>("cached"), 1);
  CHECK(store.put_if_absent("b", "other") == "cached");
  store.put("a", std::optional<std::string>(), 1);
  CHECK(store.put_if_absent("a", "again") == std::nullopt);
  CHECK(store.get("a") == "again");

  // remove returns the cached value.
  CHECK(store.remove("b") == "cached");
  CHECK(store.get("b") == std::nullopt);
  store.flush();
  CHECK(cached.handed_on.empty());
  CHECK(budget.bytes() == 0);
}

TEST_CASE("a change listener gets the value last handed on as the old value",
          "[unit][state][cache]") {
  using Change = std::tuple<std::string, std::optional<std::string>, std::optional<std::string>>;
  auto budget_bytes = GENERATE(std::size_t{0}, std::size_t{1} << 20);
  state::CacheBudget budget(budget_bytes);
  CachedStrings cached(budget);
  Strings& store = cached.store();
  std::vector<Change> changes;
  store.set_change_listener([&changes](const std::string& key,
                                       const std::optional<std::string>& value,
                                       const std::optional<std::string>& old_value,
                                       int64_t) { changes.emplace_back(key, value, old_value); });

  store.put("a", std::optional<std::string>("1"), 1);
  store.flush();
  store.put("a", std::optional<std::string>("2"), 2);
  store.put("a", std::optional<std::string>("3"), 3);
  store.flush();
  store.put("a", std::nullopt, 4);
  store.flush();

  if (budget_bytes == 0) {
    CHECK(changes == std::vector<Change>{{"a", "1", std::nullopt},
                                         {"a", "2", "1"},
                                         {"a", "3", "2"},
                                         {"a", std::nullopt, "3"}});
  } else {
    // The cache folds 2 into 3: the old value is the one the store held.
    CHECK(changes ==
          std::vector<Change>{{"a", "1", std::nullopt}, {"a", "3", "1"}, {"a", std::nullopt, "3"}});
  }
}

namespace {

using Batches = std::vector<std::vector<std::string>>;

// An in-memory store that notes how it is written: each batch's keys, and
// each single write's key, as a changelog layer sees them: in `writes` what
// the store takes (logged or not), in `logged` what is logged alone.
class WriteLog final : public state::ForwardingKeyValueStore {
 public:
  explicit WriteLog(Batches& writes, Batches* logged = nullptr)
      : state::ForwardingKeyValueStore(std::make_unique<state::InMemoryKeyValueStore>("cached")),
        writes_(writes),
        logged_(logged) {}
  void put(std::string_view key, std::string_view value) override {
    writes_.push_back({std::string(key)});
    state::ForwardingKeyValueStore::put(key, value);
  }
  void write_all(std::span<const state::BytesWrite> writes) override {
    note(writes_, writes);
    state::ForwardingKeyValueStore::write_all(writes);
  }
  void store_only(std::span<const state::BytesWrite> writes) override {
    note(writes_, writes);
    state::ForwardingKeyValueStore::store_only(writes);
  }
  void log_only(std::span<const state::BytesWrite> writes) override {
    if (logged_ != nullptr) note(*logged_, writes);
  }

 private:
  static void note(Batches& batches, std::span<const state::BytesWrite> writes) {
    auto& batch = batches.emplace_back();
    for (const state::BytesWrite& write : writes) batch.emplace_back(write.key);
  }

  Batches& writes_;
  Batches* logged_;
};

// A cached store over a WriteLog, with what its store takes and its
// changelog alone takes.
struct LoggedCache {
  explicit LoggedCache(std::size_t budget_bytes = 1 << 20) : budget(budget_bytes) {}
  state::CacheBudget budget;
  Batches writes;
  Batches logged;
  CachedStrings cached{budget, std::make_unique<WriteLog>(writes, &logged)};
  Strings& store = cached.store();
};

}  // namespace

TEST_CASE("a commit writes the store below in one batch in key order, and hands on in update order",
          "[unit][state][cache]") {
  state::CacheBudget budget(1 << 20);
  std::vector<std::vector<std::string>> writes;
  CachedStrings cached(budget, std::make_unique<WriteLog>(writes));
  Strings& store = cached.store();
  for (const char* key : {"c", "a", "d", "b"})
    store.put(key, std::optional<std::string>(std::string("v-") + key), 1);
  store.put("c", std::optional<std::string>("v-c2"), 2);
  store.flush();
  CHECK(writes == std::vector<std::vector<std::string>>{{"a", "b", "c", "d"}});
  CHECK(cached.handed_on ==
        CachedStrings::HandedOn{{"a", "v-a"}, {"d", "v-d"}, {"b", "v-b"}, {"c", "v-c2"}});
  CHECK(store.get("c") == "v-c2");
}

TEST_CASE("thousands of updates of a few keys hand on in the order of their last updates",
          "[unit][state][cache]") {
  // Each update moves its key to the newest end, and each commit moves every
  // entry to the clean ones and back: both orders leave many more holes than
  // they hold entries, and close them up again.
  state::CacheBudget budget(1 << 20);
  CachedStrings cached(budget);
  Strings& store = cached.store();
  uint32_t random = 12345;
  for (int round = 0; round < 3; ++round) {
    std::vector<std::string> by_last_update;
    std::map<std::string, std::optional<std::string>> newest;
    for (int update = 0; update < 5000; ++update) {
      random = random * 1103515245 + 12345;
      const std::string key = "k" + std::to_string((random >> 16) % 50);
      // Every seventh update deletes its key.
      std::optional<std::string> value;
      if (update % 7 != 0) value = std::to_string(round) + "-" + std::to_string(update);
      store.put(key, value, update);
      std::erase(by_last_update, key);
      by_last_update.push_back(key);
      newest[key] = value;
    }
    cached.handed_on.clear();
    cached.cache->hand_on();
    std::vector<std::string> handed_keys;
    for (const auto& [key, value] : cached.handed_on) {
      handed_keys.push_back(key);
      CHECK(value == newest[key]);
    }
    CHECK(handed_keys == by_last_update);
    for (const auto& [key, value] : newest) CHECK(store.get(key) == value);
  }
}

TEST_CASE("a commit without a flush logs what it hands on, and the store takes it when let go",
          "[unit][state][cache]") {
  LoggedCache logging;
  auto& [budget, writes, logged, cached, store] = logging;
  store.put("b", std::optional<std::string>("1"), 1);
  store.put("a", std::optional<std::string>("1"), 1);
  cached.cache->hand_on();
  // Logged as updated: the changelog needs no key order.
  CHECK(logged == Batches{{"b", "a"}});
  CHECK(writes.empty());
  CHECK(cached.handed_on == CachedStrings::HandedOn{{"b", "1"}, {"a", "1"}});
  // Reads and iterators see what the store below lacks.
  CHECK(store.get("a") == "1");
  CHECK(store.all().to_vector() == Entries{{"a", "1"}, {"b", "1"}});
  CHECK(store.range("b", "z").to_vector() == Entries{{"b", "1"}});

  // The next commit logs only what changed; the store still waits.
  store.put("a", std::optional<std::string>("2"), 2);
  cached.cache->hand_on();
  CHECK(logged == Batches{{"b", "a"}, {"a"}});
  CHECK(writes.empty());
  CHECK(store.all().to_vector() == Entries{{"a", "2"}, {"b", "1"}});

  // A flush writes the store, once, with the newest values.
  store.flush();
  CHECK(writes == Batches{{"a", "b"}});
  CHECK(logged.size() == 2);

  // A single entry too.
  store.put("c", std::optional<std::string>("1"), 3);
  cached.cache->hand_on();
  CHECK(logged.back() == std::vector<std::string>{"c"});
  CHECK(writes.size() == 1);

  // An entry handed on and then let go for room is written as it goes: the
  // budget holds two entries of a one-byte key and value.
  LoggedCache tight(100);
  tight.store.put("x", std::optional<std::string>("1"), 1);
  tight.store.put("y", std::optional<std::string>("1"), 1);
  tight.cached.cache->hand_on();
  CHECK(tight.logged == Batches{{"x", "y"}});
  CHECK(tight.writes.empty());
  tight.store.put("z", std::optional<std::string>("1"), 2);
  CHECK(tight.writes == Batches{{"x"}});
  CHECK(tight.store.get("x") == "1");
  CHECK(tight.store.all().to_vector() == Entries{{"x", "1"}, {"y", "1"}, {"z", "1"}});
}

TEST_CASE("a cache out of room hands on its least recently updated sixteenth in one batch",
          "[unit][state][cache]") {
  std::size_t entry_bytes = 0;
  {
    LoggedCache probe;
    probe.store.put("k00", std::optional<std::string>("v"), 0);
    entry_bytes = probe.budget.bytes();
  }
  // Room for 32 entries; written from k31 down to k00, so that the order of
  // updates is not the order of keys.
  LoggedCache full(32 * entry_bytes);
  char key[8];
  for (int i = 31; i >= 0; --i) {
    std::snprintf(key, sizeof key, "k%02d", i);
    full.store.put(key, std::optional<std::string>("v"), 31 - i);
  }
  REQUIRE(full.cached.handed_on.empty());
  REQUIRE(full.writes.empty());
  // The 33rd entry makes room: a sixteenth of the budget, the two least
  // recently updated entries, goes to the store in one batch in key order,
  // and downstream in update order.
  full.store.put("k32", std::optional<std::string>("v"), 32);
  CHECK(full.writes == Batches{{"k30", "k31"}});
  CHECK(full.cached.handed_on == CachedStrings::HandedOn{{"k31", "v"}, {"k30", "v"}});
  CHECK(full.cached.cache->cached_entries() == 31);
  CHECK(full.budget.bytes() <= full.budget.max_bytes());
  CHECK(full.store.get("k31") == "v");
}

TEST_CASE("a range removed takes the entries the store has not taken to the store first",
          "[unit][state][cache]") {
  state::CacheBudget budget(1 << 20);
  Batches writes;
  Batches logged;
  auto layer = state::with_record_cache(std::make_unique<WriteLog>(writes, &logged),
                                        StoreKind::kKeyValue, budget);
  auto& store = dynamic_cast<state::CachingKeyValueBytesStore&>(*layer);
  store.put_cached("a", "1", 1);
  store.put_cached("b", "1", 1);
  store.put_cached("d", "1", 1);
  store.hand_on();
  REQUIRE(writes.empty());
  // The changelog layer tombstones the keys of the range its store holds.
  store.remove_range("a", "c");
  CHECK(writes == Batches{{"a"}, {"b"}});
  CHECK(!store.get("a"));
  CHECK(!store.get("b"));
  CHECK(store.get("d") == "1");
}

TEST_CASE("a listener's range reads see the entries of a commit that the store has not taken",
          "[unit][state][cache]") {
  LoggedCache logging;
  auto& [budget, writes, logged, cached, store] = logging;
  std::vector<Entries> seen;
  store.set_flush_listener([&](const std::string&, const std::optional<std::string>&, int64_t) {
    seen.push_back(store.all().to_vector());
  });
  store.put("b", std::optional<std::string>("1"), 1);
  store.put("a", std::optional<std::string>("1"), 1);
  store.put("c", std::optional<std::string>("1"), 1);
  cached.cache->hand_on();
  REQUIRE(writes.empty());
  // Each listener saw every entry: handed on, being handed on, or waiting.
  const Entries all{{"a", "1"}, {"b", "1"}, {"c", "1"}};
  CHECK(seen == std::vector<Entries>{all, all, all});
}

TEST_CASE("a listener that writes to its store during a commit's batch leaves the newest values",
          "[unit][state][cache]") {
  using Change = std::tuple<std::string, std::optional<std::string>, std::optional<std::string>>;
  state::CacheBudget budget(1 << 20);
  CachedStrings cached(budget);
  Strings& store = cached.store();
  store.put("b", "before");
  std::vector<Change> changes;
  // Handing on "a" updates "b", which is dirty and not yet handed on.
  store.set_change_listener([&](const std::string& key, const std::optional<std::string>& value,
                                const std::optional<std::string>& old_value, int64_t) {
    changes.emplace_back(key, value, old_value);
    if (key == "a") store.put("b", std::optional<std::string>("from-a"), 3);
  });
  store.put("a", std::optional<std::string>("1"), 1);
  store.put("b", std::optional<std::string>("2"), 2);
  store.put("c", std::optional<std::string>("3"), 2);
  store.flush();
  // "b" goes on once, with its newest value and the value the store held
  // before the commit, as when entries are handed on one at a time.
  CHECK(changes == std::vector<Change>{{"a", "1", std::nullopt},
                                       {"c", "3", std::nullopt},
                                       {"b", "from-a", "before"}});
  CHECK(store.get("b") == "from-a");
  CHECK(store.cached_entries() == 0);
  store.put("b", std::optional<std::string>("4"), 4);
  store.flush();
  CHECK(changes.back() == Change{"b", "4", "from-a"});
}

TEST_CASE("a listener that updates or deletes the key it is handed keeps what it was handed",
          "[unit][state][cache]") {
  state::CacheBudget budget(1 << 20);
  auto layer = state::with_record_cache(std::make_unique<state::InMemoryKeyValueStore>("cached"),
                                        StoreKind::kKeyValue, budget);
  auto& cache = dynamic_cast<state::CachingKeyValueBytesStore&>(*layer);
  const std::string longer = "second, longer than the first so that a reused buffer would move";
  std::vector<std::string> seen;
  cache.set_flush_listener(
      [&](std::string_view key, std::optional<std::string_view> value,
          std::optional<std::string_view>, int64_t) {
        REQUIRE(value);
        const std::string before(*value);
        if (before == "first") cache.put_cached(key, longer, 2);
        if (before == "third") cache.remove(key);
        // Read after the write: still what the listener was handed.
        seen.emplace_back(*value);
        CHECK(key == "k");
      },
      false);
  cache.put_cached("k", "first", 1);
  cache.flush();
  CHECK(seen == std::vector<std::string>{"first", longer});
  CHECK(cache.get("k") == longer);
  CHECK(cache.cached_entries() == 0);

  cache.put_cached("k", "third", 3);
  cache.flush();
  CHECK(seen.back() == "third");
  CHECK(cache.get("k") == std::nullopt);
  CHECK(budget.bytes() == 0);
}

// ---------------------------------------------------------------------------
// The record cache of window stores

namespace {

struct HandedOn {
  std::string key;
  int64_t window_start;
  std::optional<std::string> value;
  std::optional<std::string> old_value;
  bool operator==(const HandedOn&) const = default;
};

struct WindowCache {
  // Windows of 100 ms kept for 1 s, in segments of 500 ms.
  explicit WindowCache(std::size_t budget_bytes = 1 << 20) : budget(budget_bytes) {
    auto windows = std::make_unique<state::SegmentedWindowStore>(
        "windows", std::make_unique<state::InMemoryKeyValueStore>("windows"), 100, 1000, 500);
    below = windows.get();
    auto layer = state::with_record_cache(std::move(windows), StoreKind::kWindow, budget);
    cache.reset(dynamic_cast<state::CachingWindowBytesStore*>(layer.release()));
    REQUIRE(cache != nullptr);
    cache->set_flush_listener(
        [this](std::string_view key, int64_t start, std::optional<std::string_view> value,
               std::optional<std::string_view> old_value, int64_t) {
          handed_on.push_back({std::string(key), start,
                               value ? std::optional<std::string>(*value) : std::nullopt,
                               old_value ? std::optional<std::string>(*old_value) : std::nullopt});
        },
        true);
  }

  state::CacheBudget budget;
  state::SegmentedWindowStore* below = nullptr;
  std::unique_ptr<state::CachingWindowBytesStore> cache;
  std::vector<HandedOn> handed_on;
};

using Windows = std::vector<std::tuple<std::string, int64_t, std::string>>;

Windows drain(std::unique_ptr<state::WindowBytesIterator> it) {
  Windows windows;
  for (; it->valid(); it->next())
    windows.emplace_back(std::string(it->key()), it->window_start(), std::string(it->value()));
  return windows;
}

}  // namespace

TEST_CASE("a window's updates fold in the record cache until it hands them on",
          "[unit][state][cache]") {
  WindowCache windows;
  CHECK(windows.cache->put("a", 0, "stored"));
  CHECK(windows.cache->put_cached("a", 0, "1", 10));
  CHECK(windows.cache->put_cached("a", 0, "2", 20));
  CHECK(windows.cache->put_cached("a", 100, "3", 120));
  CHECK(windows.handed_on.empty());
  CHECK(windows.cache->cached_entries() == 2);
  // Reads see the cache; the store below still holds what it had.
  CHECK(windows.cache->fetch("a", 0) == "2");
  CHECK(windows.below->fetch("a", 0) == "stored");
  CHECK_FALSE(windows.below->fetch("a", 100).has_value());
  CHECK(drain(windows.cache->fetch("a", 0, 1000)) == Windows{{"a", 0, "2"}, {"a", 100, "3"}});

  windows.cache->hand_on();
  CHECK(windows.handed_on ==
        std::vector<HandedOn>{{"a", 0, "2", "stored"}, {"a", 100, "3", std::nullopt}});
  CHECK(windows.below->fetch("a", 0) == "2");
  CHECK(windows.below->fetch("a", 100) == "3");
  CHECK(windows.cache->cached_entries() == 0);
}

TEST_CASE("window iterators merge the record cache in the store's order", "[unit][state][cache]") {
  WindowCache windows;
  // Segment 0 holds starts below 500, segment 1 the others.
  windows.cache->put("b", 100, "b100");
  windows.cache->put("a", 600, "a600");
  windows.cache->put("b", 600, "b600");
  windows.cache->put_cached("ab", 0, "ab0", 0);
  windows.cache->put_cached("b", 600, "b600'", 600);
  windows.cache->put_cached("a", 500, "a500", 500);
  // By segment, then key bytes, then start; a cached window replaces the store's.
  CHECK(drain(windows.cache->all()) == Windows{{"ab", 0, "ab0"},
                                               {"b", 100, "b100"},
                                               {"a", 500, "a500"},
                                               {"a", 600, "a600"},
                                               {"b", 600, "b600'"}});
  CHECK(drain(windows.cache->fetch_all(500, 550)) == Windows{{"a", 500, "a500"}});
  // A key's windows leave out longer keys that start with it.
  CHECK(drain(windows.cache->fetch("a", 0, 1000)) ==
        Windows{{"a", 500, "a500"}, {"a", 600, "a600"}});
}

TEST_CASE("a window cache over its budget hands on its oldest windows", "[unit][state][cache]") {
  WindowCache windows(300);
  for (int start = 0; start < 1000; start += 100)
    CHECK(windows.cache->put_cached("key", start, std::string(40, 'v'), start));
  REQUIRE_FALSE(windows.handed_on.empty());
  CHECK(windows.handed_on.front().window_start == 0);
  CHECK(windows.budget.bytes() <= 300);
  // Whatever was handed on is in the store; the rest still in the cache.
  for (const HandedOn& window : windows.handed_on)
    CHECK(windows.below->fetch("key", window.window_start) == window.value);
  CHECK(windows.cache->cached_entries() + windows.handed_on.size() == 10);
}

TEST_CASE("a window cache's batch leaves out a window that a later window of it expires",
          "[unit][state][cache]") {
  WindowCache windows;
  CHECK(windows.cache->put_cached("a", 0, "a0", 0));
  CHECK(windows.cache->put_cached("b", 400, "b400", 400));
  // Stream time 2100: the segments before 1000 expire, the windows at 0 and
  // 400 with them.
  CHECK(windows.cache->put_cached("c", 2100, "c2100", 2100));
  windows.cache->flush();
  // Each is handed on as one write after another would hand it on...
  CHECK(windows.handed_on == std::vector<HandedOn>{{"a", 0, "a0", std::nullopt},
                                                   {"b", 400, "b400", std::nullopt},
                                                   {"c", 2100, "c2100", std::nullopt}});
  // ...and the store holds what one write after another would leave: no
  // expired window in a segment that has gone.
  CHECK(windows.below->observed_stream_time() == 2100);
  CHECK(drain(windows.below->all()) == Windows{{"c", 2100, "c2100"}});
  CHECK(windows.below->segments_store().approximate_num_entries() == 1);
}

TEST_CASE("a window cache writes deletes, expired windows and writes once disabled at once",
          "[unit][state][cache]") {
  WindowCache windows;
  windows.cache->put("a", 0, "0");
  windows.cache->put_cached("a", 0, "1", 0);
  CHECK(windows.cache->put_cached("a", 0, std::nullopt, 0));
  CHECK(windows.handed_on == std::vector<HandedOn>{{"a", 0, std::nullopt, "1"}});
  CHECK_FALSE(windows.cache->fetch("a", 0).has_value());
  CHECK_FALSE(windows.below->fetch("a", 0).has_value());

  // At stream time 2000 the segments before 1000 have expired, the window at 0 with them.
  CHECK(windows.cache->put_cached("a", 2000, "late", 2000));
  CHECK_FALSE(windows.cache->put_cached("a", 0, "expired", 2000));

  windows.handed_on.clear();
  windows.cache->disable();
  CHECK(windows.handed_on == std::vector<HandedOn>{{"a", 2000, "late", std::nullopt}});
  CHECK(windows.cache->put_cached("b", 2000, "now", 2000));
  CHECK(windows.handed_on.back() == HandedOn{"b", 2000, "now", std::nullopt});
  CHECK(windows.below->fetch("b", 2000) == "now");
}

TEST_CASE("a task's window store folds each window's updates until the task commits",
          "[unit][state][cache]") {
  StreamsBuilder builder;
  builder.stream<std::string, std::string>("in")
      .group_by_key()
      .windowed_by(TimeWindows::of_size_and_grace(std::chrono::milliseconds(100),
                                                  std::chrono::milliseconds(1000)))
      .count(Materialized<std::string, int64_t>::as("counts"))
      .to_stream()
      .to("out");
  Topology topology = builder.build();
  const auto& sub = topology.subtopologies().at(0);
  TempDir directory;
  state::CacheBudget budget(1 << 20);
  state::StateManager task(topology, sub, TaskId{0, 0}, "app", directory.path(), nullptr);
  task.open(
      nullptr, [] { return int64_t{0}; }, &budget);
  auto& counts =
      dynamic_cast<WindowStore<std::string, ValueAndTimestamp<int64_t>>&>(*task.get("counts"));
  CHECK(counts.caching());
  std::vector<std::pair<Windowed<std::string>, int64_t>> handed_on;
  counts.set_flush_listener([&](const Windowed<std::string>& window,
                                const std::optional<ValueAndTimestamp<int64_t>>& value,
                                int64_t) { handed_on.emplace_back(window, value->value); });
  for (int64_t i = 1; i <= 5; ++i) counts.put("k", ValueAndTimestamp<int64_t>{i, i}, 0, i);
  CHECK(handed_on.empty());
  task.flush();
  REQUIRE(handed_on.size() == 1);
  CHECK(handed_on[0].first == Windowed<std::string>{"k", Window{0, 100}});
  CHECK(handed_on[0].second == 5);
}
