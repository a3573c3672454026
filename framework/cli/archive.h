// `rill archive`: copies topics' records into their archive in an object
// store (see framework/src/archive/archive.h), or verifies an archive
// against its topic.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "rill/config.h"

namespace rill::cli {

struct ArchiveCommand {
  std::vector<std::string> topics;
  // s3://bucket[/prefix] or a directory.
  std::string location;
  // The cluster and the s3.* settings; its client settings reach the consumer.
  StreamsConfig config;
  std::optional<int64_t> until_offset;
  std::optional<int64_t> until_ms;
  std::size_t segment_bytes = 16 << 20;
  bool verify = false;
  // Progress on stderr, one line rewritten.
  bool progress = false;
};

// Returns the exit code: 0 done (or the archive is sound), 1 otherwise, with
// what failed on `err`.
int run_archive(const ArchiveCommand& command, std::ostream& out, std::ostream& err);

}  // namespace rill::cli
