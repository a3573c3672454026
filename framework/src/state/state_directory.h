// The .checkpoint file of a state directory: for each changelog partition,
// the next offset the local stores have not seen, one "topic partition
// offset" line each. Tasks keep one for their changelogs; the global stores
// one for their topics. And the locks of state directories.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>

namespace rill::state {

using CheckpointOffsets = std::map<std::pair<std::string, int32_t>, int64_t>;

inline constexpr const char* kCheckpointFile = ".checkpoint";

// The offsets in `directory`'s checkpoint; none when it has no checkpoint.
CheckpointOffsets read_checkpoint(const std::filesystem::path& directory);
// Replaces `directory`'s checkpoint, written aside and renamed so that a crash
// never leaves half of one. Throws StateStoreError when it cannot.
void write_checkpoint(const std::filesystem::path& directory, const CheckpointOffsets& offsets);

// Creates `directory` and takes the lock of its .lock file, so that no other
// instance on the machine uses it meanwhile; returns the file descriptor to
// close to release it. Throws StateStoreError when another holds it.
int lock_state_directory(const std::filesystem::path& directory);

// The id of the instance using `directory` (the application's state
// directory): kept in its rill-process-id file so that it survives a
// restart, which lets a restarted instance's transactional producer fence
// and abort what its previous run left open. An instance sharing the
// directory with a running one (which holds the file's lock) gets a fresh
// id. `lock_fd` holds the lock until closed; -1 when another instance has it.
struct ProcessId {
  std::string id;
  int lock_fd = -1;
};
ProcessId claim_process_id(const std::filesystem::path& directory);

// Deletes the local state in `directory` (the application's state
// directory): every task's stores and checkpoint, and the global stores. The
// instance's process id stays, so that its transactional producer still
// fences what a crash left open. Throws StateStoreError when another
// instance on the machine holds one of the directories, or one cannot be
// deleted.
void delete_local_state(const std::filesystem::path& directory);

}  // namespace rill::state
