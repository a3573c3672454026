// Snapshots of a task's state in an object store, so that a task that starts
// without local state downloads the newest one and restores only the
// changelogs' tail after it, rather than whole changelogs.
//
// A snapshot is the RocksDB checkpoints of a task's persistent stores (hard
// links to their immutable files, taken after a commit wrote the stores and
// the checkpoint of changelog offsets) and a manifest: the changelog offsets
// the files cover, and each file's size and XXH3-128 hash. Objects live under
//
//   <prefix><snapshot id>/files/<store>/<file>
//   <prefix><snapshot id>/manifest.json
//
// with <prefix> "<application.id>/<task>/". The manifest is written last: a
// snapshot without one (its writer died during the upload) does not exist
// for readers. Snapshot ids begin with the creation time and end with a
// random part, so two instances that snapshot one task during a rebalance
// write apart and never mix files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "objects/object_store.h"
#include "state/state_directory.h"

namespace rill::state {

using objects::ObjectStore;
using objects::ObjectStoreError;

struct SnapshotFile {
  std::string path;  // relative to the snapshot's files: <store>/<file>
  uint64_t size = 0;
  // The file's checksum, in hex: XXH3-128, or SHA-256 in snapshots written
  // before rill hashed with XXH3 (still restored).
  std::string xxh3_128;
  std::string sha256;
};

struct SnapshotManifest {
  std::string id;
  int64_t created_ms = 0;
  // Per changelog partition, the first offset the snapshot does not cover:
  // restoring reads on from there.
  CheckpointOffsets changelog_offsets;
  std::vector<SnapshotFile> files;

  std::string to_json() const;
  // Throws ObjectStoreError naming `object` when the text is not a manifest.
  static SnapshotManifest from_json(std::string_view text, const std::string& object);
};

// A new snapshot id for now: "<ms, 13 digits>-<16 random hex digits>", which
// sorts by creation time.
std::string new_snapshot_id(int64_t now_ms);

// Uploads the files under `directory` (each store's checkpoint in a folder of
// its name) and then the manifest, which lists them with their checksums.
// Returns the manifest as written.
SnapshotManifest upload_snapshot(ObjectStore& store, const std::string& prefix,
                                 const std::filesystem::path& directory, std::string id,
                                 int64_t created_ms, CheckpointOffsets changelog_offsets);

// What download_newest_snapshot found.
struct SnapshotDownload {
  // The snapshot now under the target directory; nullopt when none could be
  // used (there is none, or every one failed).
  std::optional<SnapshotManifest> manifest;
  // The snapshots tried and not used, newest first, each with why.
  std::vector<std::string> skipped;
};

// Downloads the newest complete snapshot under `prefix` into `directory`
// (emptied first), checking every file's size and checksum; a snapshot that
// fails (a missing or corrupt object, a bad manifest, a store that cannot be
// read) is skipped for the one before it. `directory` holds only a snapshot
// that passed, or nothing.
// `progress`, if given, hears the bytes of the snapshot being downloaded
// still to come, after each file (0 once done).
SnapshotDownload download_newest_snapshot(
    ObjectStore& store, const std::string& prefix, const std::filesystem::path& directory,
    const std::function<void(uint64_t bytes_left)>& progress = {});

// Puts a downloaded snapshot in place in a task's directory: its store
// folders replace the task's, and the task's checkpoint becomes the
// snapshot's changelog offsets, so that opening the task restores only the
// changelogs' tail. `snapshot_directory` is emptied.
void install_snapshot(const std::filesystem::path& snapshot_directory,
                      const SnapshotManifest& manifest,
                      const std::filesystem::path& task_directory);

// The ids of the complete snapshots under `prefix`, oldest first.
std::vector<std::string> snapshot_ids(ObjectStore& store, const std::string& prefix);

// Removes all but the newest `keep` complete snapshots, and the objects of
// incomplete ones older than the oldest kept snapshot (left by writers that
// died). Returns how many snapshots went.
std::size_t prune_snapshots(ObjectStore& store, const std::string& prefix, std::size_t keep);

}  // namespace rill::state
