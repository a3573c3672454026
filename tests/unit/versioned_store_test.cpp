// Versioned key-value stores (KIP-889 semantics), in RocksDB and in memory:
// as-of reads across updates, deletions and out-of-order puts, the history
// retention, and a copy of the store's entries (what a restore from the
// changelog applies) answering the same.
#include <filesystem>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "rill/rill.h"

#include "support/temp_dir.h"

using namespace rill;

namespace {

using Versions = VersionedKeyValueStore<std::string, std::string>;
using Version = std::optional<VersionedRecord<std::string>>;

Version version(std::string value, int64_t from, std::optional<int64_t> to = std::nullopt) {
  return VersionedRecord<std::string>{std::move(value), from, to};
}

std::unique_ptr<StateStore> open_store(const std::string& name, bool persistent,
                                       const std::filesystem::path& directory,
                                       std::chrono::milliseconds retention) {
  StoreBuilder builder = Stores::versioned_key_value<std::string, std::string>(name, retention);
  if (!persistent) builder.in_memory();
  return builder.build(directory / name, nullptr);
}

std::size_t entries(Versions& store) {
  std::size_t count = 0;
  for (auto it = store.bytes_store().all(); it->valid(); it->next()) ++count;
  return count;
}

}  // namespace

TEST_CASE("a versioned store answers as of any time across updates, deletions and late puts",
          "[unit][versioned-store]") {
  const bool persistent = GENERATE(true, false);
  INFO((persistent ? "RocksDB" : "in memory"));
  rill::testing::TempDir directory;
  auto opened = open_store("prices", persistent, directory.path(), std::chrono::hours(1));
  auto& store = dynamic_cast<Versions&>(*opened);

  // In order.
  CHECK(store.put("tea", "1", 10));
  CHECK(store.put("tea", "2", 20));
  CHECK(store.put("tea", "3", 30));
  CHECK(store.get("tea") == version("3", 30));
  CHECK(store.get("tea", 5) == std::nullopt);
  CHECK(store.get("tea", 10) == version("1", 10, 20));
  CHECK(store.get("tea", 19) == version("1", 10, 20));
  CHECK(store.get("tea", 20) == version("2", 20, 30));
  CHECK(store.get("tea", 1000) == version("3", 30));

  // A deletion ends the latest version; reads after it find nothing.
  CHECK(store.remove("tea", 40) == version("3", 30));
  CHECK(store.get("tea") == std::nullopt);
  CHECK(store.get("tea", 45) == std::nullopt);
  CHECK(store.get("tea", 39) == version("3", 30, 40));

  // Late puts split the version valid at their time, and end where the next
  // change is: a version, or the deletion.
  CHECK(store.put("tea", "2.5", 25));
  CHECK(store.get("tea", 22) == version("2", 20, 25));
  CHECK(store.get("tea", 27) == version("2.5", 25, 30));
  CHECK(store.put("tea", "3.5", 35));
  CHECK(store.get("tea", 32) == version("3", 30, 35));
  CHECK(store.get("tea", 37) == version("3.5", 35, 40));
  CHECK(store.get("tea", 41) == std::nullopt);
  CHECK(store.put("tea", "0", 5));
  CHECK(store.get("tea", 7) == version("0", 5, 10));
  // The same time replaces that version's value only.
  CHECK(store.put("tea", "2b", 20));
  CHECK(store.get("tea", 22) == version("2b", 20, 25));
  // A late deletion ends the version valid at its time.
  CHECK(store.remove("tea", 12) == version("1", 10, 20));
  CHECK(store.get("tea", 15) == std::nullopt);
  CHECK(store.get("tea", 11) == version("1", 10, 12));
  CHECK(store.get("tea", 20) == version("2b", 20, 25));

  // After the deletion, a new latest version.
  CHECK(store.put("tea", "5", 50));
  CHECK(store.get("tea") == version("5", 50));
  CHECK(store.get("tea", 45) == std::nullopt);
  CHECK(store.get("tea", 36) == version("3.5", 35, 40));

  // Keys whose bytes extend another's keep their own versions.
  CHECK(store.put("te", "other", 15));
  CHECK(store.put("teas", "others", 16));
  CHECK(store.get("te", 36) == version("other", 15));
  CHECK(store.get("tea", 15) == std::nullopt);
  CHECK(store.get("teas", 15) == std::nullopt);
}

TEST_CASE("a versioned store keeps its history for the retention of stream time",
          "[unit][versioned-store]") {
  const bool persistent = GENERATE(true, false);
  INFO((persistent ? "RocksDB" : "in memory"));
  rill::testing::TempDir directory;
  auto opened = open_store("prices", persistent, directory.path(), std::chrono::milliseconds(100));
  auto& store = dynamic_cast<Versions&>(*opened);
  CHECK(store.history_retention_ms() == 100);
  CHECK(store.put("tea", "1", 10));
  CHECK(store.put("tea", "2", 50));
  CHECK(store.put("tea", "3", 120));
  CHECK(store.get("tea", 30) == version("1", 10, 50));  // stream time 120: 20 is the horizon
  CHECK(store.put("jam", "x", 200));
  // Stream time 200: nothing before 100 is answered or taken.
  CHECK(store.get("tea", 99) == std::nullopt);
  CHECK(store.get("tea", 100) == version("2", 50, 120));
  CHECK_FALSE(store.put("tea", "late", 99));
  CHECK(store.get("tea", 100) == version("2", 50, 120));
  CHECK(store.put("tea", "on the horizon", 100));
  CHECK(store.get("tea", 110) == version("on the horizon", 100, 120));
  // Versions that end at or before the horizon are gone from the store (the
  // one from 10, and the one from 50 that the late put ended at 100): tea's
  // latest, its version from 100, and jam's latest are left.
  CHECK(entries(store) == 3);
}

TEST_CASE("a versioned store's entries copied to a new store, as a restore does, answer the same",
          "[unit][versioned-store]") {
  rill::testing::TempDir directory;
  auto first = open_store("prices", true, directory.path() / "a", std::chrono::hours(1));
  auto copy = open_store("prices", true, directory.path() / "b", std::chrono::hours(1));
  auto& original = dynamic_cast<Versions&>(*first);
  auto& restored = dynamic_cast<Versions&>(*copy);
  original.put("tea", "1", 10);
  original.put("tea", "3", 30);
  original.put("tea", "2", 20);
  original.remove("tea", 40);
  original.put("jam", "9", 15);
  std::vector<std::pair<std::string, std::string>> stored;
  for (auto it = original.bytes_store().all(); it->valid(); it->next())
    stored.emplace_back(it->key(), it->value());
  std::vector<state::BytesWrite> writes;
  for (const auto& [key, value] : stored) writes.push_back({key, std::string_view(value)});
  restored.bytes_store().write_all(writes);
  for (int64_t t : {5, 10, 15, 20, 25, 30, 35, 40, 45})
    for (const char* key : {"tea", "jam"}) {
      INFO(key << " as of " << t);
      CHECK(restored.get(key, t) == original.get(key, t));
    }
  CHECK(restored.get("tea") == std::nullopt);
  CHECK(restored.get("jam") == version("9", 15));
}
