#include "runtime/checkpoint.h"

#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "rill/internal/bytes_store.h"

namespace rill::runtime {

CheckpointOffsets read_checkpoint(const std::filesystem::path& directory) {
  CheckpointOffsets offsets;
  std::ifstream in(directory / kCheckpointFile);
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  while (in >> topic >> partition >> offset) offsets[{topic, partition}] = offset;
  return offsets;
}

void write_checkpoint(const std::filesystem::path& directory, const CheckpointOffsets& offsets) {
  std::ostringstream text;
  for (const auto& [partition, offset] : offsets)
    text << partition.first << " " << partition.second << " " << offset << "\n";
  const auto temporary = directory / ".checkpoint.tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << text.str();
    out.flush();
    if (!out) throw StateStoreError("cannot write checkpoint in " + directory.string());
  }
  std::filesystem::rename(temporary, directory / kCheckpointFile);
}

int lock_state_directory(const std::filesystem::path& directory) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error)
    throw StateStoreError("cannot create state directory " + directory.string() + ": " +
                          error.message());
  const int fd = ::open((directory / ".lock").c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (fd >= 0) ::close(fd);
    throw StateStoreError("state directory " + directory.string() +
                          " is locked by another instance; give each instance on a machine "
                          "its own state.dir or let the other release it");
  }
  return fd;
}

}  // namespace rill::runtime
