// Task-level assignment against the real broker: a task is one sub-topology
// on one partition number of all its source topics, and an instance holds all
// of a task's partitions or none, through crashes and joins. Sources that are
// not co-partitioned are refused at start.
#include <algorithm>
#include <ctime>
#include <iomanip>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include <catch2/catch.hpp>
#include <signal.h>

#include "rill/kafka_streams.h"
#include "rill/rill.h"

#include "support/count_topology.h"
#include "support/counts.h"
#include "support/eventually.h"
#include "support/kafka_cluster.h"
#include "support/process.h"

using namespace rill;
using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

constexpr int64_t kForever = std::numeric_limits<int64_t>::max();

// A time in a log line ("2026-12-03T04:12:33.123+0000 ..."), in milliseconds
// since the epoch.
int64_t log_time_ms(const std::string& line) {
  std::tm time{};
  std::istringstream in(line.substr(0, 19));
  in >> std::get_time(&time, "%Y-%m-%dT%H:%M:%S");
  return static_cast<int64_t>(timegm(&time)) * 1000 + std::stoll(line.substr(20, 3));
}

// When an instance held a task: from the report that first lists it to the
// report that no longer does (or `end`).
struct Ownership {
  std::string instance;
  int64_t from = 0;
  int64_t to = kForever;
};

// The task sets an instance reported after each rebalance ("<app>: assigned
// 4 partitions; 2 tasks [0_1 0_4]"), as intervals of ownership per task.
void add_ownerships(std::map<std::string, std::vector<Ownership>>& ownerships,
                    const std::string& instance, const std::string& log, int64_t end) {
  std::map<std::string, int64_t> held;  // task -> since
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    const auto open = line.find(" tasks [");
    if (open == std::string::npos || line.back() != ']' || line.size() < 24 || line[4] != '-')
      continue;
    const int64_t at = log_time_ms(line);
    std::set<std::string> now;
    std::istringstream ids(line.substr(open + 8, line.size() - open - 9));
    for (std::string id; ids >> id;) now.insert(id);
    for (auto it = held.begin(); it != held.end();) {
      if (now.contains(it->first)) {
        ++it;
        continue;
      }
      ownerships[it->first].push_back({instance, it->second, at});
      it = held.erase(it);
    }
    for (const auto& id : now) held.emplace(id, at);
  }
  for (const auto& [id, since] : held) ownerships[id].push_back({instance, since, end});
}

std::string tail(const std::string& log) {
  return log.substr(log.size() - std::min<std::size_t>(3000, log.size()));
}

int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

TEST_CASE(
    "a merge of two topics on three instances, two killed and a fourth added: one owner per "
    "task, exact counts",
    "[kafka][assignment]") {
  const std::string app = unique_name("app-merge");
  const std::string left = unique_name("merge-left"), right = unique_name("merge-right");
  const std::string output = unique_name("merge-out");
  constexpr int kPartitions = 6, kKeys = 100, kRoundsPerPhase = 10;
  create_topic(left, kPartitions);
  create_topic(right, kPartitions);
  create_topic(output, kPartitions);

  // Every update is written at once (no record cache): a key's changelog then
  // holds each of its counts in turn, and a second owner writing beside the
  // first would show as a count written twice.
  auto start = [&](const std::string& name) {
    return ChildProcess(
        {test_binary("rill_test_app"), "count", "input=" + left + "," + right, "output=" + output,
         "application.id=" + app, "bootstrap.servers=" + bootstrap_servers(),
         "processing.guarantee=exactly_once_v2", "statestore.cache.max.bytes=0",
         "session.timeout.ms=6000", "num.stream.threads=2",
         // A killed instance's open transaction blocks readers until it times out.
         "producer.transaction.timeout.ms=10000", "state.dir=" + temp_state_dir(app + "-" + name)},
        "/tmp/" + app + "-" + name + ".log");
  };
  auto produce_phase = [&] {
    produce(left, keyed(kKeys, kRoundsPerPhase));
    produce(right, keyed(kKeys, kRoundsPerPhase));
  };
  auto all_counts_reach = [&](int64_t expected) {
    return eventually(
        [&] {
          const auto table = final_counts(output, 1u << 30, 2s);
          return static_cast<int>(table.size()) == kKeys &&
                 std::all_of(table.begin(), table.end(),
                             [&](const auto& kv) { return kv.second == expected; });
        },
        180s);
  };

  std::map<std::string, std::optional<ChildProcess>> instances;
  for (const std::string name : {"a", "b", "c"}) instances[name].emplace(start(name));
  produce_phase();
  REQUIRE(eventually(
      [&] {
        return std::all_of(instances.begin(), instances.end(),
                           [](const auto& entry) { return tasks_held(*entry.second) > 0; });
      },
      90s));
  REQUIRE(all_counts_reach(2 * kRoundsPerPhase));

  // Two of three crash while records arrive; a fourth joins after.
  std::map<std::string, int64_t> ended;
  std::map<std::string, std::string> logs;
  produce_phase();
  for (const std::string name : {"a", "b"}) {
    instances[name]->signal(SIGKILL);
    REQUIRE(instances[name]->wait(30s).has_value());
    ended[name] = wall_clock_ms();
    logs[name] = instances[name]->log();
    instances.erase(name);
  }
  instances["d"].emplace(start("d"));
  produce_phase();
  const int64_t total = 3 * 2 * kRoundsPerPhase;
  const bool reached = all_counts_reach(total);
  for (auto& [name, instance] : instances) {
    instance->signal(SIGTERM);
    CHECK(instance->wait(60s) == 0);
    logs[name] = instance->log();
    ended[name] = kForever;
  }
  INFO("the end of c's log:\n" << tail(logs["c"]) << "\nthe end of d's log:\n" << tail(logs["d"]));
  REQUIRE(reached);

  // The reported task sets: no task was ever held by two instances at once.
  std::map<std::string, std::vector<Ownership>> ownerships;
  for (const auto& [name, log] : logs) add_ownerships(ownerships, name, log, ended[name]);
  CHECK(ownerships.size() == static_cast<std::size_t>(kPartitions));
  for (auto& [task, held] : ownerships) {
    std::sort(held.begin(), held.end(),
              [](const Ownership& x, const Ownership& y) { return x.from < y.from; });
    for (std::size_t i = 1; i < held.size(); ++i) {
      INFO("task " << task << ": " << held[i - 1].instance << " until " << held[i - 1].to << ", "
                   << held[i].instance << " from " << held[i].from);
      CHECK(held[i - 1].to <= held[i].from);
    }
  }

  // The changelog: each key's counts 1, 2, ... in order, each once. Two
  // owners of a task would each count from their own store and write counts
  // again; a lost or repeated record would skip or repeat one.
  std::map<std::string, std::vector<int64_t>> counts_written;
  REQUIRE(read_to_end(
      app + "-counts-changelog",
      [&](const TestRecord& record) {
        // A timestamped store's changelog value: the timestamp, then the count.
        counts_written[*record.key].push_back(
            serdes::int64()->deserialize(std::string_view(*record.value).substr(8)));
      },
      60s));
  REQUIRE(counts_written.size() == static_cast<std::size_t>(kKeys));
  std::vector<int64_t> expected(static_cast<std::size_t>(total));
  for (int64_t i = 0; i < total; ++i) expected[static_cast<std::size_t>(i)] = i + 1;
  for (const auto& [key, written] : counts_written) {
    INFO("key " << key);
    CHECK(written == expected);
  }
}

TEST_CASE("sources of one aggregate with different partition counts are refused at start",
          "[kafka][assignment]") {
  const std::string left = unique_name("copartition-a"), right = unique_name("copartition-b");
  create_topic(left, 4);
  create_topic(right, 2);
  KafkaStreams streams(count_topology(left + "," + right, unique_name("copartition-out")),
                       StreamsConfig{{"application.id", unique_name("app-copartition")},
                                     {"bootstrap.servers", bootstrap_servers()}});
  CHECK_THROWS_MATCHES(
      streams.start(), TopologyError,
      Catch::Matchers::Message(
          "Invalid topology: the following topics do not have the same number of partitions: " +
          left + " (4), " + right +
          " (2); they meet in sub-topology 0, whose state needs partition p of each in one task "
          "(co-partitioning)"));
}
