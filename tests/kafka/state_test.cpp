// State against the real broker: stores restored from their changelogs after a
// clean restart (only the tail), after the state directory is wiped (all of
// it), and when partitions move between instances.
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <signal.h>

#include "rill/kafka_streams.h"
#include "rill/rill.h"

#include "support/count_topology.h"
#include "support/counts.h"
#include "support/kafka_cluster.h"
#include "support/process.h"

using namespace rill;
using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

struct Run {
  KafkaStreams::Stats stats;
  std::vector<KafkaStreams::RestoreProgress> progress;
};

// Runs the count until the output's last values reach `expected` for every key;
// `clean_up` deletes the instance's local state first (KafkaStreams::cleanup).
Run run_count(const std::string& app, const std::string& state_dir, const std::string& input,
              const std::string& output, int keys, int64_t expected, bool clean_up = false) {
  StreamsConfig config{{"application.id", app},
                       {"bootstrap.servers", bootstrap_servers()},
                       {"state.dir", state_dir},
                       {"commit.interval.ms", "200"},
                       {"num.stream.threads", "2"}};
  KafkaStreams streams(count_topology(input, output), config);
  Run run;
  std::mutex mutex;
  streams.set_restore_listener([&](const KafkaStreams::RestoreProgress& progress) {
    std::lock_guard lock(mutex);
    run.progress.push_back(progress);
  });
  if (clean_up) streams.cleanup();
  streams.start();
  // A running instance's stores are in use.
  if (clean_up) CHECK_THROWS_AS(streams.cleanup(), std::logic_error);
  auto deadline = std::chrono::steady_clock::now() + 90s;
  bool reached = false;
  while (!reached && std::chrono::steady_clock::now() < deadline) {
    auto table = final_counts(output, 1u << 30, 2s);
    reached =
        static_cast<int>(table.size()) == keys &&
        std::all_of(table.begin(), table.end(), [&](auto& kv) { return kv.second == expected; });
  }
  REQUIRE(streams.close(30s));
  REQUIRE(reached);
  run.stats = streams.stats();
  return run;
}

}  // namespace

TEST_CASE(
    "a clean restart restores only the changelog tail, a state directory cleaned up all of it",
    "[kafka][state][restore]") {
  const std::string app = unique_name("app-restore");
  const std::string input = unique_name("restore-in"), output = unique_name("restore-out");
  const std::string changelog = app + "-counts-changelog";
  create_topic(input, 4);
  create_topic(output, 4);
  const int keys = 500;
  const std::string dir_x = temp_state_dir(app + "-x"), dir_y = temp_state_dir(app + "-y");

  // 1. Instance X counts 2 per key; its clean close checkpoints the changelog.
  produce(input, keyed(keys, 2));
  Run first = run_count(app, dir_x, input, output, keys, 2);
  CHECK(first.stats.restored_records == 0);
  const int64_t changelog_after_x = end_offsets(changelog);
  CHECK(changelog_after_x >= keys);

  // 2. Elsewhere (directory Y, empty), the application restores everything
  //    and counts 3 more per key, writing more changelog records.
  produce(input, keyed(keys, 3));
  Run second = run_count(app, dir_y, input, output, keys, 5);
  CHECK(second.stats.restored_records == static_cast<uint64_t>(changelog_after_x));
  const int64_t changelog_after_y = end_offsets(changelog);
  REQUIRE(changelog_after_y > changelog_after_x);

  // 3. Back in directory X: only what Y wrote after X's checkpoint is restored.
  produce(input, keyed(keys, 1));
  Run third = run_count(app, dir_x, input, output, keys, 6);
  CHECK(third.stats.restored_records ==
        static_cast<uint64_t>(changelog_after_y - changelog_after_x));
  bool saw_done = false;
  for (const auto& progress : third.progress) {
    CHECK(progress.topic == changelog);
    CHECK(progress.restored <= progress.total);
    if (progress.done) saw_done = true;
  }
  CHECK(saw_done);

  // 4. With X's local state deleted (KafkaStreams::cleanup), everything is
  //    restored and the counts stay exact.
  const int64_t changelog_after_third = end_offsets(changelog);
  produce(input, keyed(keys, 1));
  Run fourth = run_count(app, dir_x, input, output, keys, 7, /*clean_up=*/true);
  CHECK(fourth.stats.restored_records == static_cast<uint64_t>(changelog_after_third));
}

TEST_CASE("a keyed count stays exact when one of two instances stops cleanly mid-stream",
          "[kafka][state][rebalance]") {
  const std::string app = unique_name("app-count2");
  const std::string input = unique_name("count2-in"), output = unique_name("count2-out");
  create_topic(input, 8);
  create_topic(output, 8);
  const int keys = 10000;
  auto start_instance = [&](const std::string& name) {
    return ChildProcess({test_binary("rill_test_app"), "count", "input=" + input,
                         "output=" + output, "application.id=" + app,
                         "bootstrap.servers=" + bootstrap_servers(), "commit.interval.ms=300",
                         "session.timeout.ms=6000", "state.dir=" + temp_state_dir(app + name)},
                        "/tmp/" + app + "-" + name + ".log");
  };
  ChildProcess a = start_instance("a");
  ChildProcess b = start_instance("b");
  produce(input, keyed(keys, 2));
  // Mid-stream: some counts are out, not all.
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (final_counts(output, 1u << 30, 1s).size() < keys / 2 &&
         std::chrono::steady_clock::now() < deadline) {
  }
  a.signal(SIGTERM);
  produce(input, keyed(keys, 3));
  const auto a_exit = a.wait(60s);
  INFO("instance a: " << a.log_tail());
  REQUIRE(a_exit == 0);

  std::map<std::string, int64_t> table;
  deadline = std::chrono::steady_clock::now() + 120s;
  auto exact = [&] {
    return static_cast<int>(table.size()) == keys &&
           std::all_of(table.begin(), table.end(), [](auto& kv) { return kv.second == 5; });
  };
  while (!exact() && std::chrono::steady_clock::now() < deadline)
    table = final_counts(output, 1u << 30, 3s);
  b.signal(SIGTERM);
  const auto b_exit = b.wait(60s);
  INFO("instance b: " << b.log_tail());
  REQUIRE(b_exit == 0);
  REQUIRE(table.size() == static_cast<std::size_t>(keys));
  for (const auto& [key, count] : table) {
    INFO(key);
    REQUIRE(count == 5);
  }
}

TEST_CASE(
    "with a standby replica, a killed instance's tasks move to the standby, which "
    "restores only the tail",
    "[kafka][state][standby]") {
  const std::string app = unique_name("app-standby");
  const std::string input = unique_name("standby-in"), output = unique_name("standby-out");
  create_topic(input, 4);
  create_topic(output, 4);
  const int keys = 2000;
  auto start_instance = [&](const std::string& name) {
    return ChildProcess(
        {test_binary("rill_test_app"), "count", "input=" + input, "output=" + output,
         "application.id=" + app, "bootstrap.servers=" + bootstrap_servers(),
         "commit.interval.ms=200", "session.timeout.ms=6000", "num.standby.replicas=1",
         "state.dir=" + temp_state_dir(app + name)},
        "/tmp/" + app + "-" + name + ".log");
  };
  ChildProcess a = start_instance("a");
  ChildProcess b = start_instance("b");
  produce(input, keyed(keys, 10));
  std::map<std::string, int64_t> table;
  auto deadline = std::chrono::steady_clock::now() + 90s;
  auto all_at = [&](int64_t count) {
    return static_cast<int>(table.size()) == keys &&
           std::all_of(table.begin(), table.end(), [&](auto& kv) { return kv.second >= count; });
  };
  while (!all_at(10) && std::chrono::steady_clock::now() < deadline)
    table = final_counts(output, 1u << 30, 2s);
  REQUIRE(all_at(10));
  const int64_t changelog_size = end_offsets(app + "-counts-changelog");
  // Kill a only once the group has settled: b runs two tasks and follows
  // a's other two as standbys (read from what b logs). Before that, a
  // cooperative rebalance may still be moving partitions.
  auto settled = [&] {
    const TaskSets sets = task_sets(b.log());
    return sets.active.size() == 2 && sets.standby.size() == 2 &&
           std::all_of(sets.active.begin(), sets.active.end(),
                       [](const auto& task) { return task.second; });
  };
  deadline = std::chrono::steady_clock::now() + 60s;
  while (!settled() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(200ms);
  INFO("instance b: " << b.log_tail());
  REQUIRE(settled());

  const std::size_t log_at_kill = b.log().size();
  a.signal(SIGKILL);
  produce(input, keyed(keys, 1));
  deadline = std::chrono::steady_clock::now() + 90s;
  while (!all_at(11) && std::chrono::steady_clock::now() < deadline)
    table = final_counts(output, 1u << 30, 2s);
  b.signal(SIGTERM);
  const auto b_exit = b.wait(60s);
  INFO("instance b: " << b.log_tail());
  REQUIRE(b_exit == 0);
  CHECK(all_at(11));

  // b followed a's tasks as standbys; when it took them over it restored only
  // what its copies lacked ("restoring ... offsets FROM to END" lines after
  // the kill), never a changelog from its start.
  const std::string log = b.log();
  int64_t restored = 0;
  for (std::size_t at = log.find(" offsets ", log_at_kill); at != std::string::npos;
       at = log.find(" offsets ", at + 1)) {
    const int64_t from = std::stoll(log.substr(at + 9));
    const int64_t to = std::stoll(log.substr(log.find(" to ", at) + 4));
    restored += to - from;
    CHECK(from > 0);
  }
  INFO("changelog records: " << changelog_size << ", restored by b: " << restored);
  CHECK(restored < changelog_size / 4);
  for (const char* task :
       {"created task 0_0", "created task 0_1", "created task 0_2", "created task 0_3"})
    CHECK(log.find(task) != std::string::npos);
}

TEST_CASE(
    "with three instances, a killed owner's tasks move to the instances holding their standbys",
    "[kafka][state][standby]") {
  const std::string app = unique_name("app-standby3");
  const std::string input = unique_name("standby3-in"), output = unique_name("standby3-out");
  constexpr int kTasks = 6;
  create_topic(input, kTasks);
  create_topic(output, kTasks);
  const int keys = 1200;
  auto start_instance = [&](const std::string& name) {
    return ChildProcess(
        {test_binary("rill_test_app"), "count", "input=" + input, "output=" + output,
         "application.id=" + app, "bootstrap.servers=" + bootstrap_servers(),
         "commit.interval.ms=200", "session.timeout.ms=6000", "num.standby.replicas=1",
         "state.dir=" + temp_state_dir(app + name)},
        "/tmp/" + app + "-" + name + ".log");
  };
  std::map<std::string, ChildProcess> instances;
  for (const std::string name : {"a", "b", "c"}) instances.emplace(name, start_instance(name));
  produce(input, keyed(keys, 10));
  std::map<std::string, int64_t> table;
  auto all_at = [&](int64_t count) {
    return static_cast<int>(table.size()) == keys &&
           std::all_of(table.begin(), table.end(), [&](auto& kv) { return kv.second >= count; });
  };
  auto deadline = std::chrono::steady_clock::now() + 90s;
  while (!all_at(10) && std::chrono::steady_clock::now() < deadline)
    table = final_counts(output, 1u << 30, 2s);
  REQUIRE(all_at(10));

  // Settled: every instance runs two restored tasks and follows two others,
  // and each task has one owner and one standby elsewhere.
  std::map<std::string, TaskSets> sets;
  auto settled = [&] {
    std::map<std::string, int> owners, holders;
    for (auto& [name, instance] : instances) {
      sets[name] = task_sets(instance.log());
      for (const auto& [task, restored] : sets[name].active) {
        if (!restored || sets[name].standby.contains(task)) return false;
        ++owners[task];
      }
      for (const auto& task : sets[name].standby) ++holders[task];
    }
    return owners.size() == kTasks && holders.size() == kTasks &&
           std::all_of(owners.begin(), owners.end(), [](auto& t) { return t.second == 1; }) &&
           std::all_of(holders.begin(), holders.end(), [](auto& t) { return t.second == 1; });
  };
  deadline = std::chrono::steady_clock::now() + 60s;
  while (!settled() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(200ms);
  INFO("a: " << instances.at("a").log_tail() << "\nb: " << instances.at("b").log_tail()
             << "\nc: " << instances.at("c").log_tail());
  REQUIRE(settled());

  // a dies; each of its tasks must go where its standby is.
  std::map<std::string, std::string> standby_of;  // a's task -> holder
  for (const auto& [task, restored] : sets["a"].active)
    for (const std::string name : {"b", "c"})
      if (sets[name].standby.contains(task)) standby_of[task] = name;
  REQUIRE(standby_of.size() == sets["a"].active.size());
  std::map<std::string, std::size_t> log_at_kill;
  for (const std::string name : {"b", "c"}) log_at_kill[name] = instances.at(name).log().size();
  instances.at("a").signal(SIGKILL);
  REQUIRE(instances.at("a").wait(30s).has_value());
  produce(input, keyed(keys, 1));
  deadline = std::chrono::steady_clock::now() + 90s;
  while (!all_at(11) && std::chrono::steady_clock::now() < deadline)
    table = final_counts(output, 1u << 30, 2s);
  CHECK(all_at(11));

  // What both did between the kill and now, read before either stops: when b
  // stops first, c takes b's tasks, which is no failover to a standby.
  std::map<std::string, std::string> logs;
  for (const std::string name : {"b", "c"})
    logs[name] = instances.at(name).log().substr(log_at_kill[name]);
  for (const std::string name : {"b", "c"}) {
    instances.at(name).signal(SIGTERM);
    CHECK(instances.at(name).wait(60s) == 0);
  }
  for (const auto& [task, holder] : standby_of) {
    INFO("task " << task << ", standby on " << holder << "; after the kill, b:\n"
                 << logs["b"] << "\nc:\n"
                 << logs["c"]);
    CHECK(logs[holder].find("created task " + task + "\n") != std::string::npos);
    const std::string other = holder == "b" ? "c" : "b";
    CHECK(logs[other].find("created task " + task + "\n") == std::string::npos);
    // Only the tail: a restore of this task starts past the changelog's start.
    const std::string restoring = "task " + task + ": restoring store counts from ";
    for (std::size_t at = logs[holder].find(restoring); at != std::string::npos;
         at = logs[holder].find(restoring, at + 1)) {
      const std::size_t offsets = logs[holder].find(" offsets ", at);
      CHECK(std::stoll(logs[holder].substr(offsets + 9)) > 0);
    }
  }
}
