// Snapshots of stores in an object store (here the local-directory one): a
// RocksDB checkpoint uploaded and downloaded again holds what the store held;
// a corrupt, truncated or incomplete snapshot is never used; old snapshots
// and dead partial uploads are pruned.
#include "state/snapshots.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>

#include <catch2/catch.hpp>

#include "state/rocksdb_key_value_store.h"
#include "state/state_manager.h"
#include "support/count_topology.h"
#include "support/store_snapshots.h"
#include "support/temp_dir.h"

using namespace rill;
using rill::objects::DirectoryObjectStore;
using namespace rill::testing;
namespace fs = std::filesystem;

TEST_CASE("a store's snapshot, uploaded and downloaded, holds what the store held", "[snapshots]") {
  TempDir dir;
  const auto expected =
      filled_checkpoint(dir.path() / "store", dir.path() / "checkpoint", 5000, "v1");
  DirectoryObjectStore objects(dir.path() / "objects");
  const std::string id = state::new_snapshot_id(1'764'900'000'000);
  const auto uploaded =
      state::upload_snapshot(objects, "app/0_1/", dir.path() / "checkpoint", id, 1'764'900'000'000,
                             {{{"app-counts-changelog", 1}, 5000}});
  CHECK_FALSE(uploaded.files.empty());
  CHECK(state::snapshot_ids(objects, "app/0_1/") == std::vector<std::string>{id});
  CHECK(state::snapshot_ids(objects, "app/0_2/").empty());

  // The bytes left, after the manifest and after each file, down to none.
  std::vector<uint64_t> left;
  const auto download = state::download_newest_snapshot(
      objects, "app/0_1/", dir.path() / "restored", [&](uint64_t bytes) { left.push_back(bytes); });
  REQUIRE(download.manifest.has_value());
  CHECK(download.skipped.empty());
  uint64_t total = 0;
  for (const auto& file : uploaded.files) total += file.size;
  REQUIRE(left.size() == uploaded.files.size() + 1);
  CHECK(left.front() == total);
  CHECK(left.back() == 0);
  CHECK(std::is_sorted(left.rbegin(), left.rend()));
  CHECK(download.manifest->id == id);
  CHECK(download.manifest->changelog_offsets ==
        state::CheckpointOffsets{{{"app-counts-changelog", 1}, 5000}});
  CHECK(restored_contents(dir.path() / "restored") == expected);
}

TEST_CASE("a corrupt, truncated or incomplete snapshot is never used", "[snapshots]") {
  TempDir dir;
  const auto older = filled_checkpoint(dir.path() / "store", dir.path() / "first", 2000, "v1");
  const auto newer = filled_checkpoint(dir.path() / "store", dir.path() / "second", 3000, "v2");
  REQUIRE(older != newer);
  DirectoryObjectStore objects(dir.path() / "objects");
  const std::string prefix = "app/1_0/";
  const std::string first = state::new_snapshot_id(1000), second = state::new_snapshot_id(2000);
  state::upload_snapshot(objects, prefix, dir.path() / "first", first, 1000, {{{"c", 0}, 2000}});
  const auto manifest = state::upload_snapshot(objects, prefix, dir.path() / "second", second, 2000,
                                               {{{"c", 0}, 5000}});
  // A writer killed during its upload: files, no manifest. It is not a snapshot.
  const std::string killed = state::new_snapshot_id(3000);
  objects.put_file(prefix + killed + "/files/counts/CURRENT", dir.path() / "second/counts/CURRENT");
  CHECK(state::snapshot_ids(objects, prefix) == std::vector<std::string>{first, second});

  auto newest = [&] {
    return state::download_newest_snapshot(objects, prefix, dir.path() / "restored");
  };
  {
    const auto download = newest();
    REQUIRE(download.manifest.has_value());
    CHECK(download.manifest->id == second);
    CHECK(download.skipped.empty());
  }

  // The newest snapshot's largest file corrupted: the one before is used.
  const auto largest =
      std::max_element(manifest.files.begin(), manifest.files.end(),
                       [](const auto& a, const auto& b) { return a.size < b.size; });
  const fs::path stored = dir.path() / "objects" / (prefix + second + "/files/" + largest->path);
  flip_first_byte(stored);
  {
    const auto download = newest();
    REQUIRE(download.manifest.has_value());
    CHECK(download.manifest->id == first);
    CHECK(download.manifest->changelog_offsets.at({"c", 0}) == 2000);
    REQUIRE(download.skipped.size() == 1);
    CHECK_THAT(download.skipped[0], Catch::Contains(second) &&
                                        Catch::Contains("does not match its XXH3-128 checksum") &&
                                        Catch::Contains(largest->path));
    CHECK(restored_contents(dir.path() / "restored") == older);
  }

  // Truncated, and its manifest unreadable: both fall back, and say why.
  fs::resize_file(stored, largest->size / 2);
  CHECK_THAT(newest().skipped.at(0),
             Catch::Contains("the manifest says " + std::to_string(largest->size)));
  objects.put_text(prefix + second + "/manifest.json", "{\"id\": ");
  CHECK_THAT(newest().skipped.at(0), Catch::Contains("is not a snapshot manifest"));

  // With every snapshot unusable, nothing is left in the target directory.
  flip_first_byte(dir.path() / "objects" / (prefix + first + "/manifest.json"));
  const auto none = newest();
  CHECK_FALSE(none.manifest.has_value());
  CHECK(none.skipped.size() == 2);
  CHECK_FALSE(fs::exists(dir.path() / "restored"));
}

TEST_CASE("a snapshot checksummed with SHA-256, as older versions wrote them, is restored",
          "[snapshots]") {
  TempDir dir;
  const auto expected =
      filled_checkpoint(dir.path() / "store", dir.path() / "checkpoint", 1000, "v1");
  DirectoryObjectStore objects(dir.path() / "objects");
  const std::string prefix = "app/0_0/", id = state::new_snapshot_id(1000);
  auto manifest =
      state::upload_snapshot(objects, prefix, dir.path() / "checkpoint", id, 1000, {{{"c", 0}, 9}});
  // The manifest an older version wrote: SHA-256, no XXH3.
  for (auto& file : manifest.files) {
    file.sha256 = objects::file_sha256(dir.path() / "checkpoint" / file.path);
    file.xxh3_128.clear();
  }
  const std::string older_manifest = manifest.to_json();
  REQUIRE(older_manifest.find("xxh3_128") == std::string::npos);
  objects.put_text(prefix + id + "/manifest.json", older_manifest);
  const auto download = state::download_newest_snapshot(objects, prefix, dir.path() / "restored");
  REQUIRE(download.manifest.has_value());
  CHECK(download.skipped.empty());
  CHECK(restored_contents(dir.path() / "restored") == expected);

  const auto largest =
      std::max_element(manifest.files.begin(), manifest.files.end(),
                       [](const auto& a, const auto& b) { return a.size < b.size; });
  flip_first_byte(dir.path() / "objects" / (prefix + id + "/files/" + largest->path));
  const auto corrupt = state::download_newest_snapshot(objects, prefix, dir.path() / "restored");
  CHECK_FALSE(corrupt.manifest.has_value());
  REQUIRE(corrupt.skipped.size() == 1);
  CHECK_THAT(corrupt.skipped[0], Catch::Contains("does not match its SHA-256 checksum"));
}

TEST_CASE("pruning keeps the newest snapshots and drops dead partial uploads", "[snapshots]") {
  TempDir dir;
  filled_checkpoint(dir.path() / "store", dir.path() / "checkpoint", 100, "v");
  DirectoryObjectStore objects(dir.path() / "objects");
  const std::string prefix = "app/0_0/";
  std::vector<std::string> ids;
  for (int64_t at : {1000, 2000, 3000, 4000}) {
    ids.push_back(state::new_snapshot_id(at));
    state::upload_snapshot(objects, prefix, dir.path() / "checkpoint", ids.back(), at, {});
  }
  // Partial uploads: one older than the snapshots kept, one newer (perhaps
  // another instance's, under way).
  const std::string dead = state::new_snapshot_id(1500), live = state::new_snapshot_id(5000);
  for (const std::string& partial : {dead, live})
    objects.put_text(prefix + partial + "/files/counts/CURRENT", "x");

  CHECK(state::prune_snapshots(objects, prefix, 2) == 2);
  CHECK(state::snapshot_ids(objects, prefix) == std::vector<std::string>{ids[2], ids[3]});
  for (const std::string& key : objects.list(prefix)) {
    INFO(key);
    CHECK((key.starts_with(prefix + ids[2]) || key.starts_with(prefix + ids[3]) ||
           key.starts_with(prefix + live)));
  }
  CHECK_FALSE(objects.list(prefix + live).empty());
  CHECK_FALSE(fs::exists(dir.path() / "objects" / (prefix + ids[0])));
  CHECK(state::prune_snapshots(objects, prefix, 2) == 0);
}

TEST_CASE("snapshot objects cannot leave their directory", "[snapshots]") {
  TempDir dir;
  DirectoryObjectStore objects(dir.path() / "objects");
  CHECK_THROWS_WITH(objects.put_text("../outside", "x"),
                    Catch::Contains("object key '../outside' leaves the snapshot directory"));
  CHECK_THROWS_WITH(
      objects.get_text("app/none"),
      Catch::Contains("no object file://" + (dir.path() / "objects/app/none").string()));
  // A manifest naming a file outside the snapshot is refused, not followed.
  const std::string id = state::new_snapshot_id(1000);
  objects.put_text("app/0_0/" + id + "/manifest.json",
                   R"({"id": ")" + id +
                       R"(", "created_ms": 1000, "changelog_offsets": [],
                       "files": [{"path": "../../../escape", "size": 1, "sha256": "00"}]})");
  const auto download =
      state::download_newest_snapshot(objects, "app/0_0/", dir.path() / "restored");
  CHECK_FALSE(download.manifest.has_value());
  REQUIRE(download.skipped.size() == 1);
  CHECK_THAT(download.skipped[0],
             Catch::Contains("file path '../../../escape' leaves the snapshot"));
  CHECK_FALSE(fs::exists(dir.path() / "escape"));
}

TEST_CASE("a task's snapshot, installed in an empty task directory, opens as the task was",
          "[snapshots]") {
  Topology topology = processor_count_topology("in", "out");
  topology.build();
  const auto& sub = topology.subtopologies().at(0);
  TempDir dir;
  auto bytes_of = [](const state::StateManager& state) {
    std::map<std::string, std::string> all;
    auto* store = dynamic_cast<state::KeyValueBytesStore*>(state.get("counts")->bytes());
    REQUIRE(store != nullptr);
    for (auto it = store->all(); it->valid(); it->next())
      all.emplace(std::string(it->key()), std::string(it->value()));
    return all;
  };
  DirectoryObjectStore objects(dir.path() / "objects");
  std::map<std::string, std::string> before;
  {
    // A standby's stores: filled from 1,000 changelog records.
    state::StateManager state(topology, sub, TaskId{0, 0}, "app", dir.path() / "app/0_0", nullptr);
    state.open(
        nullptr, [] { return int64_t{0}; }, nullptr);
    std::vector<std::string> keys, values;
    for (int i = 0; i < 1000; ++i) {
      keys.push_back("k" + std::to_string(i));
      values.push_back(std::string(7, '\0') + static_cast<char>(i % 100));
    }
    std::vector<state::BytesWrite> writes;
    for (std::size_t i = 0; i < keys.size(); ++i) writes.push_back({keys[i], values[i]});
    state.restore("counts", writes);
    state.restored("counts", 1000);
    before = bytes_of(state);
    REQUIRE(before.size() == 1000);
    const auto offsets = state.snapshot_to(dir.path() / "snapshot");
    CHECK(offsets == state::CheckpointOffsets{{{"app-counts-changelog", 0}, 1000}});
    CHECK(fs::exists(dir.path() / "snapshot/rocksdb/counts/CURRENT"));
    state::upload_snapshot(objects, "app/0_0/", dir.path() / "snapshot",
                           state::new_snapshot_id(1000), 1000, offsets);
    state.close(true);
  }

  // Another machine: no state, the snapshot installed, then opened.
  const auto download =
      state::download_newest_snapshot(objects, "app/0_0/", dir.path() / "download");
  REQUIRE(download.manifest.has_value());
  const fs::path task = dir.path() / "elsewhere/app/0_0";
  state::install_snapshot(dir.path() / "download", *download.manifest, task);
  CHECK_FALSE(fs::exists(dir.path() / "download"));
  state::StateManager restored(topology, sub, TaskId{0, 0}, "app", task, nullptr);
  restored.open(
      nullptr, [] { return int64_t{0}; }, nullptr);
  REQUIRE(restored.changelogs().size() == 1);
  CHECK(restored.changelogs()[0].restore_from == 1000);  // only the tail is left to restore
  CHECK(bytes_of(restored) == before);
  restored.close(false);
}
