// Exactly-once under crashes: a keyed count runs on three instances while a
// driver kills one at random moments (SIGKILL) and restarts it; the committed
// output must then hold the exact count of every key. The same run under
// at-least-once shows the duplicates that guarantee allows, so the test can
// tell the two apart.
#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <signal.h>

#include "support/counts.h"
#include "support/kafka_cluster.h"
#include "support/process.h"

using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

struct CrashOutcome {
  std::map<std::string, int64_t> table;
  int64_t lost = 0;        // counts missing, summed over keys
  int64_t duplicated = 0;  // counts beyond the input, summed over keys
  int kills = 0;
  std::string logs;  // the instances' last lines, for failure messages
};

// Counts `rounds` records per key over `keys` keys on 8 partitions with 3
// instances, killing one instance `kills` times while input arrives.
CrashOutcome count_under_crashes(const std::string& guarantee, int keys, int rounds, int kills) {
  const std::string app = unique_name("app-crash-" + guarantee);
  const std::string input = unique_name("crash-in"), output = unique_name("crash-out");
  create_topic(input, 8);
  create_topic(output, 8);

  // Every update is written at once (no record cache), so a crash finds
  // outputs and changelog writes of records whose offsets are not committed.
  auto start = [&](int index) {
    return ChildProcess(
        {test_binary("rill_test_app"), "count", "input=" + input, "output=" + output,
         "application.id=" + app, "bootstrap.servers=" + bootstrap_servers(),
         "processing.guarantee=" + guarantee, "statestore.cache.max.bytes=0",
         "session.timeout.ms=6000", "num.stream.threads=2",
         // Kept across restarts: the instance's id lives there.
         "state.dir=/tmp/rill-state-" + app + "-" + std::to_string(index)},
        "/tmp/" + app + "-" + std::to_string(index) + ".log");
  };
  std::vector<std::optional<ChildProcess>> instances(3);
  for (int i = 0; i < 3; ++i) instances[static_cast<std::size_t>(i)].emplace(start(i));

  std::random_device seed_source;
  const unsigned seed = seed_source();
  std::mt19937 random(seed);
  INFO("guarantee " << guarantee << ", seed " << seed);
  CrashOutcome outcome;
  const int rounds_per_kill = std::max(1, rounds / (kills + 1));
  int produced_rounds = 0;
  while (produced_rounds < rounds) {
    const int now = std::min(rounds_per_kill, rounds - produced_rounds);
    produce(input, keyed(keys, now));
    produced_rounds += now;
    if (outcome.kills == kills) continue;
    // A kill tests something only where work is under way: the victim is one
    // of the instances holding tasks (while the group is still forming after
    // the last restart, none may), and the moment of the kill is random.
    std::vector<std::size_t> working;
    const auto formed_by = std::chrono::steady_clock::now() + 60s;
    while (working.empty() && std::chrono::steady_clock::now() < formed_by) {
      for (std::size_t i = 0; i < instances.size(); ++i)
        if (tasks_held(*instances[i]) > 0) working.push_back(i);
      if (working.empty()) std::this_thread::sleep_for(50ms);
    }
    REQUIRE_FALSE(working.empty());
    std::this_thread::sleep_for(std::chrono::milliseconds(200 + random() % 1500));
    auto& victim = instances[working[random() % working.size()]];
    victim->signal(SIGKILL);
    REQUIRE(victim->wait(30s).has_value());
    victim.reset();
    ++outcome.kills;
    for (int i = 0; i < 3; ++i)
      if (!instances[static_cast<std::size_t>(i)])
        instances[static_cast<std::size_t>(i)].emplace(start(i));
  }

  // Wait until every key has reached its count (beyond it under
  // at-least-once) and the output stops changing.
  auto reached = [&](const std::map<std::string, int64_t>& table) {
    return static_cast<int>(table.size()) == keys &&
           std::all_of(table.begin(), table.end(),
                       [&](const auto& kv) { return kv.second >= rounds; });
  };
  const auto deadline = std::chrono::steady_clock::now() + 180s;
  std::map<std::string, int64_t> previous;
  while (std::chrono::steady_clock::now() < deadline) {
    outcome.table = final_counts(output, 1u << 30, 3s);
    if (reached(outcome.table) && outcome.table == previous) break;
    previous = outcome.table;
  }
  for (auto& instance : instances) {
    instance->signal(SIGTERM);
    const auto exit_code = instance->wait(60s);
    outcome.logs += instance->log_tail(1500);
    CHECK(exit_code == 0);
  }
  for (int k = 0; k < keys; ++k) {
    auto it = outcome.table.find("key-" + std::to_string(k));
    const int64_t count = it == outcome.table.end() ? 0 : it->second;
    if (count < rounds) outcome.lost += rounds - count;
    if (count > rounds) outcome.duplicated += count - rounds;
  }
  return outcome;
}

// Kills per run: each lands at a random moment of a commit cycle, so more
// kills reach more of its windows (before, during and after a commit).
constexpr int kKills = 20;

}  // namespace

TEST_CASE("under exactly_once_v2 a keyed count on 3 instances stays exact through 20 SIGKILLs",
          "[kafka][exactly-once][crash]") {
  const int keys = 2000, rounds = 100;  // 200,000 records
  CrashOutcome outcome = count_under_crashes("exactly_once_v2", keys, rounds, kKills);
  INFO(outcome.logs);
  CHECK(outcome.kills == kKills);
  REQUIRE(outcome.table.size() == static_cast<std::size_t>(keys));
  CHECK(outcome.lost == 0);
  CHECK(outcome.duplicated == 0);
}

TEST_CASE("under at_least_once the same crashes show duplicates and lose nothing",
          "[kafka][exactly-once][crash]") {
  const int keys = 2000, rounds = 100;
  CrashOutcome outcome = count_under_crashes("at_least_once", keys, rounds, kKills);
  INFO(outcome.logs);
  WARN("at_least_once through " << outcome.kills << " kills: " << outcome.duplicated
                                << " duplicated counts, " << outcome.lost << " lost");
  REQUIRE(outcome.table.size() == static_cast<std::size_t>(keys));
  CHECK(outcome.lost == 0);
  // What tells the guarantees apart: records processed again after a crash.
  CHECK(outcome.duplicated > 0);
}

TEST_CASE("under exactly_once_v2 a zombie instance is fenced, aborts, and rejoins cleanly",
          "[kafka][exactly-once][zombie]") {
  const std::string app = unique_name("app-zombie");
  const std::string input = unique_name("zombie-in"), output = unique_name("zombie-out");
  create_topic(input, 4);
  create_topic(output, 4);
  const int keys = 500;
  auto start = [&](const std::string& name) {
    return ChildProcess(
        {test_binary("rill_test_app"), "count", "input=" + input, "output=" + output,
         "application.id=" + app, "bootstrap.servers=" + bootstrap_servers(),
         "processing.guarantee=exactly_once_v2", "statestore.cache.max.bytes=0",
         "session.timeout.ms=6000", "state.dir=" + temp_state_dir(app + name)},
        "/tmp/" + app + "-" + name + ".log");
  };
  ChildProcess a = start("a");
  ChildProcess b = start("b");
  // Both instances run tasks, so a holds partitions when it freezes.
  const auto group_deadline = std::chrono::steady_clock::now() + 60s;
  auto both_run_tasks = [&] {
    return a.log().find("created task") != std::string::npos &&
           b.log().find("created task") != std::string::npos;
  };
  while (!both_run_tasks() && std::chrono::steady_clock::now() < group_deadline)
    std::this_thread::sleep_for(200ms);
  REQUIRE(both_run_tasks());
  produce(input, keyed(keys, 2));
  auto wait_for_counts = [&](int64_t expected, std::chrono::seconds limit) {
    std::map<std::string, int64_t> table;
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      table = final_counts(output, 1u << 30, 2s);
      if (static_cast<int>(table.size()) == keys &&
          std::all_of(table.begin(), table.end(),
                      [&](const auto& kv) { return kv.second >= expected; }))
        break;
    }
    return table;
  };
  auto table = wait_for_counts(2, 60s);
  REQUIRE(static_cast<int>(table.size()) == keys);

  // Frozen past its session timeout, a is dropped from the group while it
  // holds an open transaction; b takes its partitions over.
  const std::size_t b_log_at_stop = b.log().size();
  a.signal(SIGSTOP);
  produce(input, keyed(keys, 3));
  auto b_runs_all = [&] {
    return b.log().find("partitions; 4 tasks", b_log_at_stop) != std::string::npos;
  };
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline && !b_runs_all())
    std::this_thread::sleep_for(200ms);
  INFO("instance b: " << b.log_tail());
  REQUIRE(b_runs_all());
  a.signal(SIGCONT);
  produce(input, keyed(keys, 1));

  table = wait_for_counts(6, 90s);
  // a found out it was a zombie: its transaction aborted, then it rejoined
  // and received partitions again.
  const auto rejoined = [&] {
    const std::string log = a.log();
    const auto aborted = log.find("transaction aborted");
    return aborted != std::string::npos && log.find("assigned ", aborted) != std::string::npos &&
           log.find("created task", aborted) != std::string::npos;
  };
  const auto rejoin_deadline = std::chrono::steady_clock::now() + 60s;
  while (!rejoined() && std::chrono::steady_clock::now() < rejoin_deadline)
    std::this_thread::sleep_for(200ms);
  a.signal(SIGTERM);
  b.signal(SIGTERM);
  const auto a_exit = a.wait(60s), b_exit = b.wait(60s);
  INFO("instance a (exit " << a_exit.value_or(-1) << "): " << a.log_tail());
  CHECK(rejoined());
  CHECK(a_exit == 0);
  CHECK(b_exit == 0);
  REQUIRE(static_cast<int>(table.size()) == keys);
  for (const auto& [key, count] : table) {
    INFO(key);
    REQUIRE(count == 6);
  }
}
