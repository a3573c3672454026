#include "support/counts.h"

#include <cstdlib>
#include <filesystem>

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

int tasks_held(const ChildProcess& instance) {
  const std::string log = instance.log_tail(1 << 16);
  const auto at = log.rfind("partitions; ");
  return at == std::string::npos ? 0 : std::atoi(log.c_str() + at + 12);
}

}  // namespace rill::testing
