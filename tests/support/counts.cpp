#include "support/counts.h"

#include <cstdlib>
#include <filesystem>

#include <catch2/catch.hpp>

#include "rill/serde.h"

namespace rill::testing {

std::string temp_state_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("rill-state-" + name);
  std::filesystem::remove_all(dir);
  return dir.string();
}

std::vector<TestRecord> keyed(int keys, int per_key) {
  const int64_t timestamp = now_ms();
  std::vector<TestRecord> records;
  for (int round = 0; round < per_key; ++round)
    for (int k = 0; k < keys; ++k)
      records.push_back({"key-" + std::to_string(k), "x", -1, -1, timestamp, {}});
  return records;
}

std::map<std::string, int64_t> final_counts(const std::string& topic, std::size_t at_least,
                                            std::chrono::milliseconds timeout) {
  std::map<std::string, int64_t> table;
  for (const auto& record : consume(topic, at_least, timeout))
    table[*record.key] = serdes::int64()->deserialize(std::string_view(*record.value));
  return table;
}

std::map<std::string, int64_t> last_counts(const std::string& topic) {
  std::map<std::string, int64_t> counts;
  REQUIRE(read_to_end(
      topic,
      [&](const TestRecord& record) {
        counts[record.key.value_or("<null>")] =
            serdes::int64()->deserialize(std::string_view(record.value.value_or("")));
      },
      std::chrono::seconds(60)));
  return counts;
}

std::optional<std::map<std::string, int64_t>> queried_counts(const KafkaStreams& streams,
                                                             const std::string& store,
                                                             const StoreQueryOptions& options) {
  try {
    std::map<std::string, int64_t> counts;
    for (const auto& [key, count] :
         streams.store(store, QueryableStoreTypes::key_value<std::string, int64_t>(), options)
             .all())
      counts[key] = count;
    return counts;
  } catch (const StoreUnavailableError&) {
    return std::nullopt;
  }
}

int tasks_held(const ChildProcess& instance) {
  const std::string log = instance.log_tail(1 << 16);
  const auto at = log.rfind("partitions; ");
  return at == std::string::npos ? 0 : std::atoi(log.c_str() + at + 12);
}

TaskSets task_sets(const std::string& log) {
  TaskSets sets;
  auto task_after = [&](std::size_t at) {
    return log.substr(at, log.find_first_of(": \n", at) - at);
  };
  for (std::size_t at = 0; (at = log.find(" task ", at)) != std::string::npos; ++at) {
    const std::size_t line = log.rfind('\n', at) + 1;
    const std::string before = log.substr(line, at - line);
    const std::string id = task_after(at + 6);
    const std::string after = log.substr(at + 6 + id.size(), 26);
    if (before.ends_with(": created")) {
      sets.active[id] = false;
    } else if (before.ends_with(": closed")) {
      sets.active.erase(id);
    } else if (before.ends_with(": closed standby")) {
      sets.standby.erase(id);
    } else if (before.ends_with("] standby") && after == ": following its changelogs") {
      sets.standby.insert(id);
    } else if (before.ends_with("]") && after.starts_with(": restore complete")) {
      sets.active[id] = true;
    }
  }
  return sets;
}

}  // namespace rill::testing
