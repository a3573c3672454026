// `rill replay`: rebuilds a pipeline's state as of a point in event time,
// under an application id of its own, writing its outputs to
// "<topic>-as-of-<time>" topics. The pipeline is loaded with those names and
// the instance told where to stop (KafkaStreams::replay_until); this runs it
// to the end, with progress on a terminal, and says where the state is.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "rill/kafka_streams.h"

namespace rill::cli {

// An ISO 8601 time (2026-11-01T00:00:00, with optional .sss and a Z or
// +hh:mm offset; UTC without one) in milliseconds since the epoch. Throws
// std::invalid_argument naming the text.
int64_t parse_datetime_ms(const std::string& text);
// 2026-11-01T00:00:00Z, with .sss when the milliseconds are not 0.
std::string format_datetime(int64_t ms);
// The time as topic and application names can carry it: 20261101T000000Z
// (20261101T000000.250Z).
std::string compact_datetime(int64_t ms);

struct ReplayReport {
  std::string application_id;
  std::string until;
  // The topics holding the outputs as of the time, and the changelogs
  // holding the state stores.
  std::vector<std::string> output_topics;
  std::vector<std::string> changelog_topics;
};

// Runs a started instance under replay_until to its end (or until SIGINT or
// SIGTERM), showing progress on stderr when `progress`. Returns the exit code:
// 0 when the replay completed, 1 when the instance failed, 130 when
// interrupted (the next run with the same application id continues).
int run_replay(KafkaStreams& streams, const ReplayReport& report, bool progress, std::ostream& out);

}  // namespace rill::cli
