// `rill reset`: Kafka Streams' application reset tool for rill applications.
// It moves the group's committed input offsets back (to the earliest offset,
// to a time, or to an offset), deletes the application's internal topics
// (changelogs, repartition topics) and, when asked, its local state, so that
// the next run recomputes everything from the input. It refuses while an
// instance is a member of the group.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

namespace rill::cli {

struct ResetPlan {
  std::string application_id;
  std::string bootstrap_servers;
  // librdkafka settings of the clients (security, timeouts).
  std::map<std::string, std::string> client_properties;
  std::vector<std::string> input_topics;
  // Internal topics the application declares; topics named as Kafka Streams
  // names internal ones (<application.id>-...-changelog or -repartition) are
  // found on the cluster too.
  std::set<std::string> internal_topics;

  enum class Target { kEarliest, kTime, kOffset };
  Target target = Target::kEarliest;
  int64_t timestamp_ms = 0;  // kTime
  int64_t offset = 0;        // kOffset

  // The application's local state directory (state.dir/application.id),
  // whose state to delete as KafkaStreams::cleanup() does; nullopt keeps it.
  std::optional<std::filesystem::path> local_state;
  // Prints what would be done, and does nothing.
  bool dry_run = false;
};

// Prints the plan to `out` and carries it out. Returns the exit code: 0 when
// done; 1 with the reason on `err` when the application still runs, does not
// exist, or the cluster refuses.
int reset_application(const ResetPlan& plan, std::ostream& out, std::ostream& err);

}  // namespace rill::cli
