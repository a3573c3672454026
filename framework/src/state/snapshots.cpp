#include "state/snapshots.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <set>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace rill::state {
namespace {

using objects::contained;
using objects::file_sha256;
using objects::file_xxh3_128;
using objects::random_hex;

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr std::string_view kManifest = "/manifest.json";
constexpr std::string_view kFiles = "/files/";

}  // namespace

// ---- manifests ---------------------------------------------------------------

std::string SnapshotManifest::to_json() const {
  Json files_json = Json::array();
  for (const SnapshotFile& file : files) {
    Json entry{{"path", file.path}, {"size", file.size}};
    if (file.xxh3_128.empty())
      entry["sha256"] = file.sha256;
    else
      entry["xxh3_128"] = file.xxh3_128;
    files_json.push_back(std::move(entry));
  }
  Json offsets_json = Json::array();
  for (const auto& [partition, offset] : changelog_offsets)
    offsets_json.push_back(
        {{"topic", partition.first}, {"partition", partition.second}, {"offset", offset}});
  return Json{{"id", id},
              {"created_ms", created_ms},
              {"changelog_offsets", std::move(offsets_json)},
              {"files", std::move(files_json)}}
             .dump(2) +
         "\n";
}

SnapshotManifest SnapshotManifest::from_json(std::string_view text, const std::string& object) {
  try {
    const Json json = Json::parse(text);
    SnapshotManifest manifest;
    manifest.id = json.at("id").get<std::string>();
    manifest.created_ms = json.at("created_ms").get<int64_t>();
    for (const Json& entry : json.at("changelog_offsets"))
      manifest.changelog_offsets[{entry.at("topic").get<std::string>(),
                                  entry.at("partition").get<int32_t>()}] =
          entry.at("offset").get<int64_t>();
    for (const Json& file : json.at("files")) {
      SnapshotFile entry{file.at("path").get<std::string>(), file.at("size").get<uint64_t>(),
                         file.value("xxh3_128", std::string()),
                         file.value("sha256", std::string())};
      if (entry.xxh3_128.empty() && entry.sha256.empty())
        throw ObjectStoreError("file '" + entry.path + "' has no checksum");
      if (!contained(entry.path))
        throw ObjectStoreError("file path '" + entry.path + "' leaves the snapshot");
      manifest.files.push_back(std::move(entry));
    }
    return manifest;
  } catch (const std::exception& e) {
    throw ObjectStoreError("manifest " + object + " is not a snapshot manifest: " + e.what());
  }
}

std::string new_snapshot_id(int64_t now_ms) {
  return fmt::format("{:013d}-{}", now_ms, random_hex());
}

// ---- snapshots -----------------------------------------------------------------

SnapshotManifest upload_snapshot(ObjectStore& store, const std::string& prefix,
                                 const fs::path& directory, std::string id, int64_t created_ms,
                                 CheckpointOffsets changelog_offsets) {
  SnapshotManifest manifest{std::move(id), created_ms, std::move(changelog_offsets), {}};
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(directory))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    SnapshotFile entry{file.lexically_relative(directory).generic_string(),
                       fs::file_size(file),
                       file_xxh3_128(file),
                       {}};
    store.put_file(prefix + manifest.id + std::string(kFiles) + entry.path, file);
    manifest.files.push_back(std::move(entry));
  }
  store.put_text(prefix + manifest.id + std::string(kManifest), manifest.to_json());
  return manifest;
}

void install_snapshot(const fs::path& snapshot_directory, const SnapshotManifest& manifest,
                      const fs::path& task_directory) {
  fs::create_directories(task_directory);
  // Folders first, the checkpoint last: a crash between leaves stores
  // without a checkpoint, which the next open wipes for a full restore.
  for (const auto& entry : fs::directory_iterator(snapshot_directory)) {
    const fs::path target = task_directory / entry.path().filename();
    fs::remove_all(target);
    fs::rename(entry.path(), target);
  }
  write_checkpoint(task_directory, manifest.changelog_offsets);
  fs::remove_all(snapshot_directory);
}

std::vector<std::string> snapshot_ids(ObjectStore& store, const std::string& prefix) {
  std::vector<std::string> ids;
  for (const std::string& key : store.list(prefix)) {
    if (!key.ends_with(kManifest)) continue;
    std::string id = key.substr(prefix.size(), key.size() - prefix.size() - kManifest.size());
    if (!id.empty() && id.find('/') == std::string::npos) ids.push_back(std::move(id));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

SnapshotDownload download_newest_snapshot(ObjectStore& store, const std::string& prefix,
                                          const fs::path& directory,
                                          const std::function<void(uint64_t)>& progress) {
  SnapshotDownload download;
  std::vector<std::string> ids;
  try {
    ids = snapshot_ids(store, prefix);
  } catch (const ObjectStoreError& e) {
    download.skipped.push_back(e.what());
    return download;
  }
  for (auto id = ids.rbegin(); id != ids.rend(); ++id) {
    std::error_code ignored;
    fs::remove_all(directory, ignored);
    try {
      const std::string manifest_key = prefix + *id + std::string(kManifest);
      SnapshotManifest manifest =
          SnapshotManifest::from_json(store.get_text(manifest_key), store.address(manifest_key));
      if (manifest.id != *id)
        throw ObjectStoreError("manifest " + store.address(manifest_key) + " names snapshot '" +
                               manifest.id + "'");
      fs::create_directories(directory);
      uint64_t left = 0;
      for (const SnapshotFile& file : manifest.files) left += file.size;
      if (progress) progress(left);
      for (const SnapshotFile& file : manifest.files) {
        const std::string key = prefix + *id + std::string(kFiles) + file.path;
        const fs::path target = directory / file.path;
        fs::create_directories(target.parent_path());
        // RocksDB never changes an SST once written: the task's store and the
        // snapshot may share one.
        if (target.extension() == ".sst")
          store.get_unchanging_file(key, target);
        else
          store.get_file(key, target);
        const uint64_t size = fs::file_size(target);
        if (size != file.size)
          throw ObjectStoreError(store.address(key) + " has " + std::to_string(size) +
                                 " bytes, the manifest says " + std::to_string(file.size));
        const bool matches = file.xxh3_128.empty() ? file_sha256(target) == file.sha256
                                                   : file_xxh3_128(target) == file.xxh3_128;
        if (!matches)
          throw ObjectStoreError(store.address(key) + " does not match its " +
                                 (file.xxh3_128.empty() ? "SHA-256" : "XXH3-128") + " checksum");
        left -= file.size;
        if (progress) progress(left);
      }
      download.manifest = std::move(manifest);
      return download;
    } catch (const std::exception& e) {
      download.skipped.push_back("snapshot " + *id + ": " + e.what());
    }
  }
  if (progress) progress(0);
  std::error_code ignored;
  fs::remove_all(directory, ignored);
  return download;
}

std::size_t prune_snapshots(ObjectStore& store, const std::string& prefix, std::size_t keep) {
  const std::vector<std::string> ids = snapshot_ids(store, prefix);
  if (ids.size() <= keep) return 0;
  const std::set<std::string> gone(ids.begin(), ids.end() - static_cast<long>(keep));
  const std::string oldest_kept = keep > 0 ? ids[ids.size() - keep] : std::string();
  // Manifests first: a snapshot being removed stops being one at once.
  for (const std::string& id : gone) store.remove(prefix + id + std::string(kManifest));
  for (const std::string& key : store.list(prefix)) {
    const std::string id = key.substr(prefix.size(), key.find('/', prefix.size()) - prefix.size());
    const bool dead_partial = !oldest_kept.empty() && id < oldest_kept;
    if (gone.contains(id) || dead_partial) store.remove(key);
  }
  return gone.size();
}

}  // namespace rill::state
