// Inputs and outputs of the keyed-count tests: keyed records in, the last
// count per key out, and a fresh state directory per instance.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "rill/kafka_streams.h"

#include "support/kafka_cluster.h"
#include "support/process.h"

namespace rill::testing {

// A fresh, empty state directory under the system's temporary directory.
std::string temp_state_dir(const std::string& name);

// `per_key` rounds of one record for each of keys "key-0" .. "key-<keys-1>".
std::vector<TestRecord> keyed(int keys, int per_key);

// The last count (int64) per key in `topic`, as a compacted topic keeps it,
// read with read_committed.
std::map<std::string, int64_t> final_counts(const std::string& topic, std::size_t at_least,
                                            std::chrono::milliseconds timeout);

// The last count (int64) of each key in `topic` ("<null>" for a null key),
// read to its end with read_committed.
std::map<std::string, int64_t> last_counts(const std::string& topic);

// Every key's count in a running instance's key-value store `store`, read
// through interactive queries; nullopt while the store cannot be read.
std::optional<std::map<std::string, int64_t>> queried_counts(const KafkaStreams& streams,
                                                             const std::string& store = "counts",
                                                             const StoreQueryOptions& options = {});

// The tasks a running instance holds, from its last "assigned ..." or
// "revoked ..." log line ("...: assigned 3 partitions; 3 tasks").
int tasks_held(const ChildProcess& instance);

// What an instance's log says it runs, replaying its task lines in order: the
// active tasks (and whether each restored its stores) and the standby tasks
// it follows.
struct TaskSets {
  std::map<std::string, bool> active;  // task -> restored
  std::set<std::string> standby;
};
TaskSets task_sets(const std::string& log);

}  // namespace rill::testing
