// A Processor API count over a changelogged store in the test driver: the
// store, its changelog and the record cache.
#include <catch2/catch.hpp>

#include "rill/test_driver.h"

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
  auto store = Stores::key_value("folded", serdes::string(), serdes::int64()).in_memory();
  auto typed = store.build({}, nullptr);
  auto& kv = dynamic_cast<KeyValueStore<std::string, int64_t>&>(*typed);
  std::vector<std::pair<std::string, int64_t>> handed_on;
  kv.set_flush_listener([&](const std::string& key, const std::optional<int64_t>& value, int64_t) {
    handed_on.emplace_back(key, value.value_or(-1));
  });
  kv.set_cache_budget(1 << 20);
  for (int i = 1; i <= 5; ++i) kv.put("a", std::optional<int64_t>(i), i);
  kv.put("b", std::optional<int64_t>(7), 6);
  CHECK(handed_on.empty());
  CHECK(kv.get("a") == 5);  // reads see the cache
  CHECK(kv.bytes_store().get("a") == std::nullopt);
  kv.flush();
  CHECK(handed_on == std::vector<std::pair<std::string, int64_t>>{{"a", 5}, {"b", 7}});
  CHECK(kv.get("a") == 5);
  CHECK(kv.bytes_store().get("a").has_value());
  // The metrics' hit ratio: the first read came from the cache, the one after
  // the flush from the store.
  CHECK(kv.cache_counts().hits == 1);
  CHECK(kv.cache_counts().misses == 1);

  // A small budget evicts the least recently updated keys first.
  handed_on.clear();
  kv.set_cache_budget(200);
  kv.put("x", std::optional<int64_t>(1), 1);
  kv.put("y", std::optional<int64_t>(1), 1);
  kv.put("z", std::optional<int64_t>(1), 1);
  REQUIRE(!handed_on.empty());
  CHECK(handed_on.front().first == "x");
  CHECK(kv.cached_entries() < 3);
}
