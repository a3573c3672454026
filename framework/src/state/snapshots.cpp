#include "state/snapshots.h"

#include <algorithm>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <system_error>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

namespace rill::state {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr std::string_view kManifest = "/manifest.json";
constexpr std::string_view kFiles = "/files/";
constexpr std::string_view kPartial = ".partial-";

// A relative path that stays inside its root: no "..", no root, not empty.
bool contained(std::string_view path) {
  if (path.empty()) return false;
  const fs::path relative(path);
  if (relative.is_absolute() || relative.has_root_name()) return false;
  return std::none_of(relative.begin(), relative.end(),
                      [](const fs::path& part) { return part == ".." || part == "."; });
}

std::string random_hex() {
  std::random_device device;
  const uint64_t value = (uint64_t{device()} << 32) ^ device();
  return fmt::format("{:016x}", value);
}

// Writes `write(out)` to `target` aside first, then renames it into place.
template <class Write>
void write_whole(const fs::path& target, const std::string& address, Write write) {
  std::error_code error;
  fs::create_directories(target.parent_path(), error);
  if (error)
    throw SnapshotStoreError("cannot write " + address + ": " + target.parent_path().string() +
                             ": " + error.message());
  const fs::path aside = target.string() + std::string(kPartial) + random_hex();
  if (!write(aside)) {
    fs::remove(aside, error);
    throw SnapshotStoreError("cannot write " + address);
  }
  fs::rename(aside, target, error);
  if (error) {
    fs::remove(aside, error);
    throw SnapshotStoreError("cannot write " + address + ": " + error.message());
  }
}

}  // namespace

// ---- the local directory ---------------------------------------------------

DirectorySnapshotStore::DirectorySnapshotStore(fs::path root) : root_(std::move(root)) {}

fs::path DirectorySnapshotStore::path_of(const std::string& key) const {
  if (!contained(key))
    throw SnapshotStoreError("object key '" + key + "' leaves the snapshot directory " +
                             root_.string());
  return root_ / key;
}

std::string DirectorySnapshotStore::address(const std::string& key) const {
  return "file://" + (root_ / key).string();
}

void DirectorySnapshotStore::put_file(const std::string& key, const fs::path& file) {
  write_whole(path_of(key), address(key), [&](const fs::path& aside) {
    std::error_code error;
    return fs::copy_file(file, aside, fs::copy_options::overwrite_existing, error) && !error;
  });
}

void DirectorySnapshotStore::put_text(const std::string& key, std::string_view text) {
  write_whole(path_of(key), address(key), [&](const fs::path& aside) {
    std::ofstream out(aside, std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    return static_cast<bool>(out);
  });
}

void DirectorySnapshotStore::get_file(const std::string& key, const fs::path& file) {
  const fs::path source = path_of(key);
  std::error_code error;
  if (!fs::is_regular_file(source, error)) throw SnapshotStoreError("no object " + address(key));
  fs::copy_file(source, file, fs::copy_options::overwrite_existing, error);
  if (error)
    throw SnapshotStoreError("cannot read " + address(key) + " into " + file.string() + ": " +
                             error.message());
}

std::string DirectorySnapshotStore::get_text(const std::string& key) {
  const fs::path path = path_of(key);
  std::error_code error;
  const auto size = fs::file_size(path, error);
  std::ifstream in(path, std::ios::binary);
  if (error || !in) throw SnapshotStoreError("no object " + address(key));
  std::string text(size, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size)))
    throw SnapshotStoreError("cannot read " + address(key));
  return text;
}

std::vector<std::string> DirectorySnapshotStore::list(const std::string& prefix) {
  // Walk the deepest directory the prefix names whole.
  const std::size_t slash = prefix.rfind('/');
  const std::string directory = slash == std::string::npos ? "" : prefix.substr(0, slash);
  const fs::path start = directory.empty() ? root_ : path_of(directory);
  std::vector<std::string> keys;
  std::error_code error;
  if (!fs::is_directory(start, error)) return keys;
  for (auto it = fs::recursive_directory_iterator(start, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (!it->is_regular_file()) continue;
    std::string key = it->path().lexically_relative(root_).generic_string();
    if (key.find(kPartial) != std::string::npos) continue;  // a write under way
    if (key.starts_with(prefix)) keys.push_back(std::move(key));
  }
  if (error) throw SnapshotStoreError("cannot list " + address(prefix) + ": " + error.message());
  std::sort(keys.begin(), keys.end());
  return keys;
}

void DirectorySnapshotStore::remove(const std::string& key) {
  fs::path path = path_of(key);
  std::error_code error;
  fs::remove(path, error);
  if (error) throw SnapshotStoreError("cannot remove " + address(key) + ": " + error.message());
  // Empty folders go with their last object.
  for (path = path.parent_path(); path != root_ && path.has_relative_path();
       path = path.parent_path())
    if (!fs::remove(path, error) || error) break;
}

// ---- manifests ---------------------------------------------------------------

std::string SnapshotManifest::to_json() const {
  Json files_json = Json::array();
  for (const SnapshotFile& file : files)
    files_json.push_back({{"path", file.path}, {"size", file.size}, {"sha256", file.sha256}});
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
                         file.at("sha256").get<std::string>()};
      if (!contained(entry.path))
        throw SnapshotStoreError("file path '" + entry.path + "' leaves the snapshot");
      manifest.files.push_back(std::move(entry));
    }
    return manifest;
  } catch (const std::exception& e) {
    throw SnapshotStoreError("manifest " + object + " is not a snapshot manifest: " + e.what());
  }
}

std::string new_snapshot_id(int64_t now_ms) {
  return fmt::format("{:013d}-{}", now_ms, random_hex());
}

std::string file_sha256(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw SnapshotStoreError("cannot read " + file.string());
  const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                        &EVP_MD_CTX_free);
  if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1)
    throw SnapshotStoreError("cannot start a SHA-256 digest");
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() > 0)
      EVP_DigestUpdate(context.get(), buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) throw SnapshotStoreError("cannot read " + file.string());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(context.get(), digest, &length);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

// ---- snapshots -----------------------------------------------------------------

SnapshotManifest upload_snapshot(SnapshotStore& store, const std::string& prefix,
                                 const fs::path& directory, std::string id, int64_t created_ms,
                                 CheckpointOffsets changelog_offsets) {
  SnapshotManifest manifest{std::move(id), created_ms, std::move(changelog_offsets), {}};
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(directory))
    if (entry.is_regular_file()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& file : files) {
    SnapshotFile entry{file.lexically_relative(directory).generic_string(), fs::file_size(file),
                       file_sha256(file)};
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

std::vector<std::string> snapshot_ids(SnapshotStore& store, const std::string& prefix) {
  std::vector<std::string> ids;
  for (const std::string& key : store.list(prefix)) {
    if (!key.ends_with(kManifest)) continue;
    std::string id = key.substr(prefix.size(), key.size() - prefix.size() - kManifest.size());
    if (!id.empty() && id.find('/') == std::string::npos) ids.push_back(std::move(id));
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

SnapshotDownload download_newest_snapshot(SnapshotStore& store, const std::string& prefix,
                                          const fs::path& directory) {
  SnapshotDownload download;
  std::vector<std::string> ids;
  try {
    ids = snapshot_ids(store, prefix);
  } catch (const SnapshotStoreError& e) {
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
        throw SnapshotStoreError("manifest " + store.address(manifest_key) + " names snapshot '" +
                                 manifest.id + "'");
      fs::create_directories(directory);
      for (const SnapshotFile& file : manifest.files) {
        const std::string key = prefix + *id + std::string(kFiles) + file.path;
        const fs::path target = directory / file.path;
        fs::create_directories(target.parent_path());
        store.get_file(key, target);
        const uint64_t size = fs::file_size(target);
        if (size != file.size)
          throw SnapshotStoreError(store.address(key) + " has " + std::to_string(size) +
                                   " bytes, the manifest says " + std::to_string(file.size));
        if (file_sha256(target) != file.sha256)
          throw SnapshotStoreError(store.address(key) + " does not match its SHA-256 checksum");
      }
      download.manifest = std::move(manifest);
      return download;
    } catch (const std::exception& e) {
      download.skipped.push_back("snapshot " + *id + ": " + e.what());
    }
  }
  std::error_code ignored;
  fs::remove_all(directory, ignored);
  return download;
}

std::size_t prune_snapshots(SnapshotStore& store, const std::string& prefix, std::size_t keep) {
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
