// A Processor API count over a changelogged store in the test driver: the
// store, its changelog and the record cache.
#include <catch2/catch.hpp>

#include "rill/test_driver.h"

#include "support/cached_store.h"
#include "support/count_topology.h"

using namespace rill;

TEST_CASE("a processor counts in a changelogged store", "[unit][state][cache]") {
  auto cache = GENERATE(std::string("0"), std::string("10485760"));
  TopologyTestDriver driver(testing::processor_count_topology("in", "out"),
                            {{"application.id", "app"}, {"statestore.cache.max.bytes", cache}});
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::int64());
  auto changelog =
      driver.create_output_topic("app-counts-changelog", serdes::string(), serdes::int64());
  for (const char* key : {"a", "b", "a", "a"}) in.pipe_input(key, "x", 100);

  CHECK(out.read_key_values_to_list() ==
        std::vector<KeyValue<std::string, int64_t>>{{"a", 1}, {"b", 1}, {"a", 2}, {"a", 3}});
  CHECK(changelog.read_key_values_to_map() == std::map<std::string, int64_t>{{"a", 3}, {"b", 1}});
  auto& store = driver.get_key_value_store<std::string, int64_t>("counts");
  CHECK(store.get("a") == 3);
  CHECK(store.get("b") == 1);
  CHECK(store.get("c") == std::nullopt);
}

TEST_CASE("the record cache folds updates of a key until it is flushed", "[unit][state][cache]") {
  state::CacheBudget budget(1 << 20);
  testing::CachedStore<int64_t> cached(budget);
  auto& kv = cached.store();
  for (int i = 1; i <= 5; ++i) kv.put("a", std::optional<int64_t>(i), i);
  kv.put("b", std::optional<int64_t>(7), 6);
  CHECK(cached.handed_on.empty());
  CHECK(kv.get("a") == 5);  // reads see the cache
  CHECK(kv.cached_entries() == 2);
  kv.flush();
  CHECK(cached.handed_on == testing::CachedStore<int64_t>::HandedOn{{"a", 5}, {"b", 7}});
  CHECK(kv.cached_entries() == 0);
  CHECK(kv.get("a") == 5);
  // The metrics' hit ratio: both reads came from the cache, the one after the
  // flush from the entry the flush kept.
  CHECK(kv.cache_counts().hits == 2);
  CHECK(kv.cache_counts().misses == 0);
}

TEST_CASE("the record cache evicts the least recently updated keys first", "[unit][state][cache]") {
  // Room for two entries of a one-letter key and an 8-byte value.
  std::size_t entry_size = 0;
  {
    state::CacheBudget probe(1 << 20);
    testing::CachedStore<int64_t> one(probe);
    one.store().put("w", std::optional<int64_t>(0), 0);
    entry_size = probe.bytes();
  }
  state::CacheBudget budget(2 * entry_size + entry_size / 2);
  testing::CachedStore<int64_t> cached(budget);
  auto& kv = cached.store();
  kv.put("x", std::optional<int64_t>(1), 1);
  kv.put("y", std::optional<int64_t>(1), 2);
  kv.put("x", std::optional<int64_t>(2), 3);  // x is now the most recently updated
  CHECK(cached.handed_on.empty());
  kv.put("z", std::optional<int64_t>(1), 4);
  CHECK(cached.handed_on == testing::CachedStore<int64_t>::HandedOn{{"y", 1}});
  CHECK(kv.cached_entries() == 2);
  CHECK(budget.bytes() <= budget.max_bytes());
  kv.flush();
  CHECK(cached.handed_on == testing::CachedStore<int64_t>::HandedOn{{"y", 1}, {"x", 2}, {"z", 1}});
  CHECK(kv.get("y") == 1);
}
