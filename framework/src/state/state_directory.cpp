#include "state/state_directory.h"

#include <fstream>
#include <iomanip>
#include <random>
#include <sstream>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "rill/internal/bytes_store.h"

#include "log/log.h"

namespace rill::state {

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

void delete_local_state(const std::filesystem::path& directory) {
  std::error_code error;
  std::vector<std::filesystem::path> entries;
  for (std::filesystem::directory_iterator it(directory, error), end; !error && it != end;
       it.increment(error))
    if (it->path().filename() != "rill-process-id") entries.push_back(it->path());
  if (error && error != std::errc::no_such_file_or_directory)
    throw StateStoreError("cannot read " + directory.string() + ": " + error.message());
  for (const auto& entry : entries) {
    // A task directory another instance on the machine holds is in use.
    if (std::filesystem::is_directory(entry)) ::close(lock_state_directory(entry));
    std::filesystem::remove_all(entry, error);
    if (error) throw StateStoreError("cannot delete " + entry.string() + ": " + error.message());
  }
}

ProcessId claim_process_id(const std::filesystem::path& directory) {
  ProcessId claimed;
  std::random_device random;
  std::ostringstream fresh;
  for (int i = 0; i < 4; ++i) fresh << std::hex << std::setw(8) << std::setfill('0') << random();
  claimed.id = fresh.str();
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  const auto path = directory / "rill-process-id";
  const int fd = ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (fd >= 0) ::close(fd);
    log::get().info("{} is in use by another instance; this one is {}", path.string(), claimed.id);
    return claimed;
  }
  claimed.lock_fd = fd;
  char stored[64] = {};
  const ssize_t length = ::pread(fd, stored, sizeof stored - 1, 0);
  if (length == 32) {
    claimed.id.assign(stored, 32);
  } else if (::pwrite(fd, claimed.id.data(), claimed.id.size(), 0) !=
             static_cast<ssize_t>(claimed.id.size())) {
    log::get().warn("cannot write {}", path.string());
  }
  return claimed;
}

}  // namespace rill::state
