// The .checkpoint file of a state directory: for each changelog partition,
// the next offset the local stores have not seen, one "topic partition
// offset" line each. Tasks keep one for their changelogs; the global stores
// one for their topics. And the lock of a state directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>

namespace rill::runtime {

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

}  // namespace rill::runtime
