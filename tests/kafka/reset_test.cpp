// `rill reset` on the real broker: it refuses while an instance runs, a dry
// run changes nothing, and a reset followed by a rerun recomputes the first
// run's output; a reset to a time recomputes from the records of that time
// on.
#include <csignal>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "rill/serde.h"

#include "support/command.h"
#include "support/counts.h"
#include "support/kafka_cluster.h"
#include "support/process.h"
#include "support/temp_dir.h"

using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

// Each key's counts in the order the output has them, from `from` on (the
// end offsets of an earlier run).
std::map<std::string, std::vector<int64_t>> counts_per_key(const std::string& output,
                                                           const std::vector<int64_t>& from) {
  std::map<std::string, std::vector<int64_t>> counts;
  REQUIRE(read_to_end(
      output,
      [&](const TestRecord& record) {
        const auto p = static_cast<std::size_t>(record.partition);
        if (p < from.size() && record.offset < from[p]) return;
        counts[record.key.value_or("<null>")].push_back(
            rill::serdes::int64()->deserialize(std::string_view(record.value.value_or(""))));
      },
      60s));
  return counts;
}

std::map<std::string, int64_t> last_counts(const std::map<std::string, std::vector<int64_t>>& all) {
  std::map<std::string, int64_t> last;
  for (const auto& [key, counts] : all) last[key] = counts.back();
  return last;
}

// What the application's state directory holds besides its process id: the
// tasks' stores and checkpoints.
std::vector<std::string> local_state(const std::filesystem::path& directory) {
  std::vector<std::string> names;
  std::error_code error;
  for (std::filesystem::directory_iterator it(directory, error), end; !error && it != end;
       it.increment(error))
    if (it->path().filename() != "rill-process-id") names.push_back(it->path().filename());
  return names;
}

std::string utc_iso_time(int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

}  // namespace

TEST_CASE("rill reset refuses while an instance runs, and a rerun after it recomputes the output",
          "[kafka][rill-command][reset]") {
  const std::string app = unique_name("rill-reset"), input = unique_name("reset-in"),
                    output = unique_name("reset-out");
  create_topic(input, 2);
  create_topic(output, 2);
  const std::string state_dir = temp_state_dir(app);
  const std::string file = write_temp_file(app + ".yaml", R"(
application:
  application.id: )" + app + R"(
  bootstrap.servers: ${RILL_KAFKA_BOOTSTRAP}
  commit.interval.ms: 200
  statestore.cache.max.bytes: 0
  state.dir: )" + state_dir + R"(
sources:
  events:
    topic: )" + input + R"(
    fields: [k]
flows:
  - from: events
    steps:
      - group_by: value.k
      - aggregate: {value: count(), name: counts}
      - to: {topic: )" + output + R"(, value_format: int64}
)");
  // 40 records two hours ago and 20 one hour ago, over 4 keys.
  const int64_t two_hours_ago = now_ms() - 2 * 3600'000, one_hour_ago = now_ms() - 3600'000;
  std::vector<TestRecord> records;
  std::map<std::string, int64_t> all, since_one_hour;
  for (int i = 0; i < 60; ++i) {
    const std::string key = "k" + std::to_string(i % 4);
    const bool recent = i >= 40;
    records.push_back({key,
                       nlohmann::json{{"k", key}}.dump(),
                       i % 2,
                       -1,
                       recent ? one_hour_ago + i : two_hours_ago + i,
                       {}});
    ++all[key];
    if (recent) ++since_one_hour[key];
  }
  produce(input, records);
  auto rill = [&](std::vector<std::string> arguments, const std::string& log) {
    arguments.insert(arguments.begin(), test_binary("../rill"));
    return ChildProcess(arguments, write_temp_file(app + "." + log + ".log", ""));
  };

  // The first run, still a member of its group while the reset is tried.
  std::optional<ChildProcess> first = rill({"run", file}, "first");
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  while (last_counts(counts_per_key(output, {})) != all &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(200ms);
  INFO(first->log_tail());
  REQUIRE(last_counts(counts_per_key(output, {})) == all);
  {
    ChildProcess refused = rill({"reset", file}, "refused");
    REQUIRE(refused.wait(60s) == 1);
    CHECK_THAT(refused.log(), Catch::Contains("still runs") && Catch::Contains("live member") &&
                                  Catch::Contains("stop every instance first"));
  }
  first->signal(SIGTERM);
  REQUIRE(first->wait(60s) == 0);
  first.reset();
  const auto first_output = counts_per_key(output, {});
  const auto first_end = end_offsets_by_partition(output);
  const std::string changelog = app + "-counts-changelog";
  const std::string repartition = app + "-counts-repartition";
  REQUIRE(end_offsets_by_partition(changelog).size() == 2);
  REQUIRE(committed_offsets_by_partition(app, input) == std::vector<int64_t>{30, 30});

  {
    // A dry run prints the plan and changes nothing.
    ChildProcess dry = rill({"reset", file, "--dry-run", "--delete-local-state"}, "dry");
    REQUIRE(dry.wait(60s) == 0);
    CHECK_THAT(dry.log(), Catch::Contains("dry run") && Catch::Contains(input + "[0]: 30 -> 0") &&
                              Catch::Contains(input + "[1]: 30 -> 0") &&
                              Catch::Contains(changelog) && Catch::Contains(repartition) &&
                              Catch::Contains(state_dir));
    CHECK(committed_offsets_by_partition(app, input) == std::vector<int64_t>{30, 30});
    CHECK(end_offsets_by_partition(changelog).size() == 2);
    CHECK_FALSE(local_state(std::filesystem::path(state_dir) / app).empty());
  }

  // To the earliest offsets: the rerun's output is the first run's.
  {
    ChildProcess reset = rill({"reset", file, "--delete-local-state"}, "reset");
    REQUIRE(reset.wait(60s) == 0);
    INFO(reset.log());
    CHECK(committed_offsets_by_partition(app, input) == std::vector<int64_t>{0, 0});
    CHECK(end_offsets_by_partition(changelog).empty());
    CHECK(end_offsets_by_partition(repartition).empty());
    CHECK(local_state(std::filesystem::path(state_dir) / app).empty());
  }
  {
    ChildProcess rerun = rill({"run", file, "--until-idle", "3s"}, "rerun");
    REQUIRE(rerun.wait(120s) == 0);
  }
  // Each key counted from 1 again, as in the first run, and to the same
  // count: no state survived the reset.
  CHECK(counts_per_key(output, first_end) == first_output);

  // To a time: the next run counts the records of that time on.
  const auto second_end = end_offsets_by_partition(output);
  {
    ChildProcess reset = rill({"reset", file, "--delete-local-state", "--to-datetime",
                               utc_iso_time(one_hour_ago - 60'000)},
                              "reset-to-time");
    REQUIRE(reset.wait(60s) == 0);
    INFO(reset.log());
    CHECK(committed_offsets_by_partition(app, input) == std::vector<int64_t>{20, 20});
  }
  {
    ChildProcess rerun = rill({"run", file, "--until-idle", "3s"}, "rerun-from-time");
    REQUIRE(rerun.wait(120s) == 0);
  }
  CHECK(last_counts(counts_per_key(output, second_end)) == since_one_hour);

  // A time before the log's first record: from the earliest offsets, said so.
  {
    ChildProcess reset =
        rill({"reset", file, "--by-duration", "3h", "--delete-local-state"}, "reset-before-log");
    REQUIRE(reset.wait(60s) == 0);
    CHECK_THAT(reset.log(), Catch::Contains("from the earliest offset"));
    CHECK(committed_offsets_by_partition(app, input) == std::vector<int64_t>{0, 0});
  }
  std::filesystem::remove_all(state_dir);
}

TEST_CASE("rill reset of an application that never ran is a clear error",
          "[kafka][rill-command][reset]") {
  const std::string input = unique_name("reset-none-in");
  create_topic(input, 1);
  const CommandResult result =
      run_command(test_binary("../rill") + " reset --application-id " + unique_name("never-ran") +
                  " --bootstrap-server " + bootstrap_servers() + " --input-topics " + input);
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.output, Catch::Contains("no application") &&
                                Catch::Contains("committed no offsets") &&
                                Catch::Contains("no internal topics"));
}
