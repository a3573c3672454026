// Interactive queries on the real broker: two instances share the partitions
// of a count and a windowed count, and their views together answer every
// key, range and window exactly once and in order; standby copies answer
// stale reads, also while the instance holding a key is gone; a store being
// restored answers "not available" and never with part of its data.
#include <atomic>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "rill/kafka_streams.h"
#include "rill/rill.h"

#include "support/command.h"
#include "support/counts.h"
#include "support/eventually.h"
#include "support/kafka_cluster.h"
#include "support/ports.h"
#include "support/process.h"
#include "support/temp_dir.h"

using namespace rill;
using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

constexpr int64_t kMinute = 60'000;

// Counts per key into "counts", and per key and minute into "minute-counts".
Topology counting(const std::string& input) {
  StreamsBuilder builder;
  auto grouped = builder.stream(input, serdes::string(), serdes::string()).group_by_key();
  grouped.count(Materialized<std::string, int64_t>::as("counts"));
  grouped
      .windowed_by(TimeWindows::of_size_and_grace(std::chrono::minutes(1), std::chrono::hours(1)))
      .count(Materialized<std::string, int64_t>::as("minute-counts"));
  return builder.build();
}

StreamsConfig config_of(const std::string& app, const std::string& instance,
                        const std::string& server = "") {
  StreamsConfig config{{"application.id", app},
                       {"bootstrap.servers", bootstrap_servers()},
                       {"commit.interval.ms", "200"},
                       {"state.dir", temp_state_dir(app + "-" + instance)}};
  if (!server.empty()) config.set("application.server", server);
  return config;
}

using Counts = std::map<std::string, int64_t>;

// Keys k100 .. k<100 + keys - 1>, key i with i % 5 + 1 records, into
// `input`; returns the counts.
Counts produce_counted(const std::string& input, int keys) {
  std::vector<TestRecord> records;
  Counts expected;
  const int64_t now = now_ms();
  for (int i = 0; i < keys; ++i) {
    const std::string key = "k" + std::to_string(100 + i);
    for (int n = 0; n <= i % 5; ++n) records.push_back({key, "e", -1, -1, now, {}});
    expected[key] = i % 5 + 1;
  }
  produce(input, records);
  return expected;
}

struct CurlAnswer {
  int status = 0;  // 0: no answer
  nlohmann::json body;
};

// GET through curl, an HTTP client that is not rill's.
CurlAnswer curl(int port, const std::string& target) {
  const CommandResult result = run_command(
      "curl -s --max-time 20 -w '\\n%{http_code}' "
      "'http://127.0.0.1:" +
      std::to_string(port) + target + "'");
  const std::size_t last = result.output.rfind('\n');
  CurlAnswer answer;
  if (last == std::string::npos) return answer;
  answer.status = std::atoi(result.output.c_str() + last + 1);
  answer.body = nlohmann::json::parse(result.output.substr(0, last), nullptr, false);
  return answer;
}

}  // namespace

TEST_CASE("two instances answer every key, range and window of their partitions, in order",
          "[kafka][queries]") {
  const std::string input = unique_name("events"), app = unique_name("app-queries");
  create_topic(input, 4);
  // Key k<i> (i < 20) has i + 1 records in the first minute and 2 in the next.
  const int64_t base = (now_ms() / kMinute - 10) * kMinute;
  std::vector<TestRecord> records;
  Counts expected;
  for (int i = 0; i < 20; ++i) {
    const std::string key = "k" + std::to_string(100 + i);
    for (int n = 0; n <= i; ++n) records.push_back({key, "e", -1, -1, base + n, {}});
    records.push_back({key, "e", -1, -1, base + kMinute + 1, {}});
    records.push_back({key, "e", -1, -1, base + kMinute + 2, {}});
    expected[key] = i + 3;
  }
  produce(input, records);

  const int first_port = free_port(), second_port = free_port();
  KafkaStreams first(counting(input),
                     config_of(app, "first", "127.0.0.1:" + std::to_string(first_port)));
  KafkaStreams second(counting(input),
                      config_of(app, "second", "localhost:" + std::to_string(second_port)));
  first.start();
  second.start();
  // Both answer for their own partitions only; together, for every key once.
  std::optional<Counts> of_first, of_second;
  REQUIRE(eventually(
      [&] {
        of_first = queried_counts(first);
        of_second = queried_counts(second);
        if (!of_first || !of_second || of_first->empty() || of_second->empty()) return false;
        Counts both = *of_first;
        both.insert(of_second->begin(), of_second->end());
        return both == expected && of_first->size() + of_second->size() == expected.size();
      },
      120s));

  // Both see both instances, their tasks and stores, once the group settled.
  const HostInfo first_host{"127.0.0.1", first_port}, second_host{"localhost", second_port};
  auto settled = [&](const KafkaStreams& streams) {
    const auto all = streams.all_metadata();
    if (all.size() != 2 || all[0].host != first_host || all[1].host != second_host) return false;
    std::set<TaskId> tasks = all[0].active_tasks;
    tasks.insert(all[1].active_tasks.begin(), all[1].active_tasks.end());
    return tasks.size() == 4 && all[0].active_tasks.size() == 2 &&
           all[0].state_stores == std::set<std::string>{"counts", "minute-counts"};
  };
  REQUIRE(eventually([&] { return settled(first) && settled(second); }, 60s));
  CHECK(first.all_metadata_for_store("counts").size() == 2);
  CHECK(first.all_metadata_for_store("other").empty());
  // Each key's metadata, the same from both, names the instance that holds it.
  for (const auto& [key, count] : expected) {
    INFO(key);
    const auto metadata = first.metadata_for_key("counts", key, serdes::string());
    REQUIRE(metadata.has_value());
    const auto from_second = second.metadata_for_key("counts", key, serdes::string());
    REQUIRE(from_second.has_value());
    CHECK(from_second->active_host == metadata->active_host);
    CHECK(from_second->partition == metadata->partition);
    CHECK(metadata->standby_hosts.empty());
    const Counts& holder = metadata->active_host == first_host ? *of_first : *of_second;
    CHECK(holder.contains(key));
  }
  CHECK_THROWS_WITH(first.metadata_for_key("nope", std::string("k1"), serdes::string()),
                    Catch::Contains("no state store 'nope'"));

  for (KafkaStreams* streams : {&first, &second}) {
    const bool is_first = streams == &first;
    const Counts& local = is_first ? *of_first : *of_second;
    INFO((is_first ? "first" : "second"));
    auto counts = streams->store("counts", QueryableStoreTypes::key_value<std::string, int64_t>());
    for (const auto& [key, count] : expected) {
      const std::optional<int64_t> answer = counts.get(key);
      CHECK(answer == (local.contains(key) ? std::optional<int64_t>(count) : std::nullopt));
    }
    // A range comes back in key order, cut at the limit.
    std::vector<std::string> in_range;
    for (const auto& [key, count] : local)
      if (key >= "k105" && key <= "k114") in_range.push_back(key);
    std::vector<std::string> answered;
    for (const auto& entry : counts.range("k105", "k114")) answered.push_back(entry.key);
    CHECK(answered == in_range);
    const auto limited = counts.range("k105", "k114", 2);
    REQUIRE(limited.size() == std::min<std::size_t>(2, in_range.size()));
    for (std::size_t i = 0; i < limited.size(); ++i) CHECK(limited[i].key == in_range[i]);
    const auto reversed = counts.reverse_range("k105", "k114");
    REQUIRE(reversed.size() == in_range.size());
    for (std::size_t i = 0; i < reversed.size(); ++i)
      CHECK(reversed[i].key == in_range[in_range.size() - 1 - i]);
    // RocksDB's estimate, which counts what commits wrote past the record cache.
    CHECK(eventually([&] { return counts.approximate_num_entries() > 0; }, 30s));

    // The windows of a key by start; every key's windows by start, then key.
    auto windows =
        streams->store("minute-counts", QueryableStoreTypes::window<std::string, int64_t>());
    for (const auto& [key, count] : local) {
      const auto of_key = windows.fetch(key, base - kMinute, base + 2 * kMinute);
      REQUIRE(of_key.size() == 2);
      CHECK(of_key[0].key == base);
      CHECK(of_key[0].value == count - 2);
      CHECK(of_key[1].key == base + kMinute);
      CHECK(of_key[1].value == 2);
      CHECK(windows.fetch(key, base + kMinute) == std::optional<int64_t>(2));
    }
    const auto every = windows.fetch_all(base, base + kMinute);
    REQUIRE(every.size() == 2 * local.size());
    for (std::size_t i = 0; i < every.size(); ++i) {
      const auto& [window, count] = every[i];
      const bool first_minute = i < local.size();
      CHECK(window.window.start == (first_minute ? base : base + kMinute));
      CHECK(window.window.end == window.window.start + kMinute);
      CHECK(window.key == std::next(local.begin(), static_cast<long>(i % local.size()))->first);
      CHECK(count == (first_minute ? local.at(window.key) - 2 : 2));
    }
  }

  // The wrong kind of store, or no such store, is refused by name.
  CHECK_THROWS_WITH(
      first.store("minute-counts", QueryableStoreTypes::key_value<std::string, int64_t>()),
      Catch::Contains("'minute-counts' is a window store, not a key-value store"));
  CHECK_THROWS_WITH(first.store("count", QueryableStoreTypes::key_value<std::string, int64_t>()),
                    Catch::Contains("no state store 'count' to query") &&
                        Catch::Contains("counts, minute-counts"));
  CHECK_THROWS_WITH(
      first.store("counts", QueryableStoreTypes::key_value<std::string, std::string>()).all(),
      Catch::Contains("holds other key or value types"));
  REQUIRE(first.close(30s));
  REQUIRE(second.close(30s));
  // A closed instance answers nothing.
  CHECK_THROWS_AS(
      first.store("counts", QueryableStoreTypes::key_value<std::string, int64_t>()).get("k100"),
      StoreUnavailableError);
}

TEST_CASE("with stale stores, an instance's standby copies answer for the other's partitions",
          "[kafka][queries][standby]") {
  const std::string input = unique_name("events"), app = unique_name("app-queries-stale");
  create_topic(input, 4);
  const int64_t base = (now_ms() / kMinute - 10) * kMinute;
  std::vector<TestRecord> records;
  Counts expected;
  for (int i = 0; i < 20; ++i) {
    const std::string key = "k" + std::to_string(100 + i);
    for (int n = 0; n <= i; ++n) records.push_back({key, "e", -1, -1, base + n, {}});
    expected[key] = i + 1;
  }
  produce(input, records);

  const HostInfo first_host{"127.0.0.1", free_port()}, second_host{"127.0.0.1", free_port()};
  auto with_standbys = [&](const std::string& instance, const HostInfo& host) {
    StreamsConfig config = config_of(app, instance, host.to_string());
    config.set("num.standby.replicas", "1");
    return config;
  };
  KafkaStreams first(counting(input), with_standbys("first", first_host));
  KafkaStreams second(counting(input), with_standbys("second", second_host));
  first.start();
  second.start();
  const StoreQueryOptions stale{.stale_stores = true};
  auto stale_counts = [&](const KafkaStreams& streams) {
    return queried_counts(streams, "counts", stale);
  };
  // Each instance runs two tasks and keeps a standby copy of the other two:
  // with stale stores, each answers for every key once its copies caught up.
  REQUIRE(eventually(
      [&] {
        const auto all = first.all_metadata();
        return all.size() == 2 && all[0].active_tasks.size() == 2 &&
               all[0].standby_tasks.size() == 2 && all[1].standby_tasks.size() == 2 &&
               stale_counts(first) == expected && stale_counts(second) == expected;
      },
      120s));

  for (KafkaStreams* streams : {&first, &second}) {
    const HostInfo& self = streams == &first ? first_host : second_host;
    INFO("asking " << self.to_string());
    auto current = streams->store("counts", QueryableStoreTypes::key_value<std::string, int64_t>());
    auto copies =
        streams->store("counts", QueryableStoreTypes::key_value<std::string, int64_t>(), stale);
    auto windows =
        streams->store("minute-counts", QueryableStoreTypes::window<std::string, int64_t>(), stale);
    int elsewhere = 0;
    for (const auto& [key, count] : expected) {
      INFO(key);
      const auto metadata = streams->metadata_for_key("counts", key, serdes::string());
      REQUIRE(metadata.has_value());
      const bool mine = metadata->active_host == self;
      CHECK(metadata->standby_hosts ==
            std::vector<HostInfo>{mine ? (self == first_host ? second_host : first_host) : self});
      CHECK(copies.get(key) == std::optional<int64_t>(count));
      CHECK(windows.fetch(key, base) == std::optional<int64_t>(count));
      // Without stale stores a key of the other instance reads as absent, and
      // its partition alone is unavailable here.
      CHECK(current.get(key) == (mine ? std::optional<int64_t>(count) : std::nullopt));
      auto partition_only =
          streams->store("counts", QueryableStoreTypes::key_value<std::string, int64_t>(),
                         {.stale_stores = false, .partition = metadata->partition});
      if (mine) {
        CHECK(partition_only.get(key) == std::optional<int64_t>(count));
      } else {
        ++elsewhere;
        CHECK_THROWS_AS(partition_only.get(key), StoreUnavailableError);
        auto standby_only =
            streams->store("counts", QueryableStoreTypes::key_value<std::string, int64_t>(),
                           {.stale_stores = true, .partition = metadata->partition});
        CHECK(standby_only.get(key) == std::optional<int64_t>(count));
      }
    }
    CHECK(elsewhere > 0);
  }

  // New records reach the standby copies through the changelog.
  produce(input, {{"k100", "e", -1, -1, base + 5, {}}, {"k119", "e", -1, -1, base + 5, {}}});
  expected["k100"] += 1;
  expected["k119"] += 1;
  CHECK(eventually(
      [&] { return stale_counts(first) == expected && stale_counts(second) == expected; }, 60s));
  REQUIRE(first.close(30s));
  REQUIRE(second.close(30s));
}

TEST_CASE("while the instance holding a key is gone, stale=true answers from a standby copy",
          "[kafka][queries][standby][http]") {
  const std::string input = unique_name("events"), app = unique_name("app-queries-failover");
  create_topic(input, 4);
  const Counts expected = produce_counted(input, 24);
  // A long session timeout: the group keeps the killed instance's partitions
  // with it for the whole test, as after a crash.
  const std::string file = write_temp_file(app + ".yaml", R"(application:
  application.id: )" + app + R"(
  bootstrap.servers: ${RILL_KAFKA_BOOTSTRAP}
  commit.interval.ms: 200
  num.standby.replicas: 1
  session.timeout.ms: 60000
sources:
  events: {topic: )" + input + R"(, value_format: string}
flows:
  - from: events
    steps:
      - group_by: key
      - aggregate: {value: count(), name: counts}
)");
  const std::vector<int> ports{free_port(), free_port()};
  std::vector<std::unique_ptr<ChildProcess>> instances;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    const std::string name = app + "-" + std::to_string(i);
    instances.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{test_binary("../rill"), "run", file, "--set",
                                 "application.server=127.0.0.1:" + std::to_string(ports[i]),
                                 "--set", "state.dir=" + temp_state_dir(name)},
        write_temp_file(name + ".log", "")));
  }
  const std::string killed = "127.0.0.1:" + std::to_string(ports[0]);
  // Every key through both instances; and each instance's own copies, active
  // or standby, hold every key (stale only where the key is the other's).
  std::map<std::string, std::string> owner;
  REQUIRE(eventually(
      [&] {
        for (const int port : ports) {
          const std::string self = "127.0.0.1:" + std::to_string(port);
          for (const auto& [key, count] : expected) {
            const CurlAnswer answer = curl(port, "/v1/stores/counts/keys/" + key);
            if (answer.status != 200 || answer.body.value("value", -1) != count) return false;
            owner[key] = answer.body.value("host", "");
            const CurlAnswer copy =
                curl(port, "/v1/stores/counts/keys/" + key + "?local&stale=true");
            if (copy.status != 200 || copy.body.value("value", -1) != count) return false;
            CHECK(copy.body["stale"] == (owner[key] != self));
          }
        }
        return true;
      },
      120s, 200ms));
  INFO(instances[0]->log_tail());
  int of_killed = 0;
  for (const auto& [key, host] : owner) of_killed += host == killed ? 1 : 0;
  REQUIRE(of_killed > 0);

  instances[0]->signal(SIGKILL);
  REQUIRE(instances[0]->wait(30s).has_value());
  // The group still gives the dead instance its partitions: their keys are
  // unavailable, unless a standby copy may answer.
  for (const auto& [key, count] : expected) {
    if (owner.at(key) != killed) continue;
    INFO(key);
    const CurlAnswer current = curl(ports[1], "/v1/stores/counts/keys/" + key);
    CHECK(current.status == 503);
    CHECK_THAT(current.body.value("error", ""), Catch::Contains(killed + ") did not answer"));
    const CurlAnswer copy = curl(ports[1], "/v1/stores/counts/keys/" + key + "?stale=true");
    REQUIRE(copy.status == 200);
    CHECK(copy.body["value"] == count);
    CHECK(copy.body["stale"] == true);
    CHECK(copy.body["host"] == "127.0.0.1:" + std::to_string(ports[1]));
  }
  const std::string some_key = std::find_if(owner.begin(), owner.end(), [&](const auto& entry) {
                                 return entry.second == killed;
                               })->first;
  const CommandResult cli =
      run_command(test_binary("../rill") + " query " + file + " --store counts --key " + some_key +
                  " --stale" + " --server 127.0.0.1:" + std::to_string(ports[1]));
  REQUIRE(cli.exit_code == 0);
  const auto printed = nlohmann::json::parse(cli.output, nullptr, false);
  CHECK(printed["stale"] == true);
  CHECK(printed["value"] == expected.at(some_key));
  CHECK(curl(ports[1], "/v1/stores/counts/range?stale=true").status == 400);

  instances[1]->signal(SIGTERM);
  CHECK(instances[1]->wait(60s) == 0);
}

TEST_CASE("a global store answers on every instance, in process and over HTTP",
          "[kafka][queries][global]") {
  const std::string input = unique_name("events"), customers = unique_name("customers"),
                    app = unique_name("app-queries-global");
  create_topic(input, 2);
  create_topic(customers, 1);
  std::map<std::string, std::string> tiers;
  std::vector<TestRecord> rows;
  for (int i = 0; i < 10; ++i) {
    const std::string key = "c" + std::to_string(i), tier = "tier-" + std::to_string(i % 3);
    rows.push_back({key, tier, -1, -1, now_ms(), {}});
    tiers[key] = tier;
  }
  produce(customers, rows);
  auto topology = [&] {
    StreamsBuilder builder;
    builder.global_table(customers, serdes::string(), serdes::string(),
                         Materialized<std::string, std::string>::as("customers"));
    builder.stream(input, serdes::string(), serdes::string())
        .group_by_key()
        .count(Materialized<std::string, int64_t>::as("counts"));
    return builder.build();
  };
  const std::vector<int> ports{free_port(), free_port()};
  KafkaStreams first(topology(), config_of(app, "first", "127.0.0.1:" + std::to_string(ports[0])));
  KafkaStreams second(topology(),
                      config_of(app, "second", "127.0.0.1:" + std::to_string(ports[1])));
  first.start();
  second.start();
  for (KafkaStreams* streams : {&first, &second}) {
    auto view =
        streams->store("customers", QueryableStoreTypes::key_value<std::string, std::string>());
    std::map<std::string, std::string> all;
    REQUIRE(eventually([&] {
      try {
        all.clear();
        for (const auto& [key, tier] : view.all()) all[key] = tier;
        return all == tiers;
      } catch (const StoreUnavailableError&) {
        return false;
      }
    }));
    CHECK(view.get("c4") == std::optional<std::string>("tier-1"));
    CHECK(view.get("nobody") == std::nullopt);
    const auto some = view.range("c2", "c5");
    REQUIRE(some.size() == 4);
    CHECK(some.front().key == "c2");
    CHECK(some.back().key == "c5");
  }
  // Each instance answers from its own copy: none forwards.
  for (const int port : ports) {
    const std::string self = "127.0.0.1:" + std::to_string(port);
    const CurlAnswer answer = curl(port, "/v1/stores/customers/keys/c5");
    REQUIRE(answer.status == 200);
    CHECK(answer.body["value"] == "tier-2");
    CHECK(answer.body["host"] == self);
    const CurlAnswer range = curl(port, "/v1/stores/customers/range?from=c7");
    REQUIRE(range.status == 200);
    REQUIRE(range.body["entries"].size() == 3);
    CHECK(range.body["entries"][0]["key"] == "c7");
    CHECK(range.body["entries"][2]["value"] == "tier-0");
    const CurlAnswer stores = curl(port, "/v1/stores");
    REQUIRE(stores.status == 200);
    CHECK(stores.body["stores"].size() == 2);
  }
  REQUIRE(first.close(30s));
  REQUIRE(second.close(30s));
}

TEST_CASE("a store being restored is not available, and never answers with part of its data",
          "[kafka][queries]") {
  const std::string input = unique_name("events"), app = unique_name("app-queries-restore");
  create_topic(input, 2);
  std::vector<TestRecord> records;
  Counts expected;
  const int64_t now = now_ms();
  for (int i = 0; i < 40'000; ++i) {
    const std::string key = "k" + std::to_string(i % 2'000);
    records.push_back({key, "e", -1, -1, now, {}});
    ++expected[key];
  }
  produce(input, records);
  {
    KafkaStreams counter(counting(input), config_of(app, "counter"));
    CHECK_THROWS_AS(queried_counts(counter).value(), std::bad_optional_access);  // not started
    counter.start();
    REQUIRE(eventually([&] { return queried_counts(counter) == expected; }, 120s));
    REQUIRE(counter.close(30s));
    counter.cleanup();  // the next instance restores the stores in full
  }
  KafkaStreams restored(counting(input), config_of(app, "counter"));
  restored.start();
  int unavailable = 0, answered = 0;
  REQUIRE(eventually(
      [&] {
        const std::optional<Counts> counts = queried_counts(restored);
        if (!counts) {
          ++unavailable;
          return false;
        }
        ++answered;
        // Whatever it answers is the whole state, never a part of it.
        CHECK(*counts == expected);
        return true;
      },
      120s, 1ms));
  INFO(unavailable << " answers said unavailable before the store was restored");
  CHECK(unavailable > 0);
  CHECK(restored.stats().restored_records > 0);
  REQUIRE(restored.close(30s));
}

TEST_CASE("every key, range and window answers through every instance over HTTP",
          "[kafka][queries][http]") {
  const std::string input = unique_name("events"), app = unique_name("app-queries-http");
  create_topic(input, 4);
  const int64_t base = (now_ms() / kMinute - 10) * kMinute;
  std::vector<TestRecord> records;
  Counts expected;
  for (int i = 0; i < 40; ++i) {
    const std::string key = "k" + std::to_string(100 + i);
    for (int n = 0; n <= i % 7; ++n) records.push_back({key, "e", -1, -1, base + n, {}});
    records.push_back({key, "e", -1, -1, base + kMinute + 1, {}});
    expected[key] = i % 7 + 2;
  }
  produce(input, records);

  std::vector<int> ports;
  std::vector<std::unique_ptr<KafkaStreams>> instances;
  for (int i = 0; i < 3; ++i) {
    ports.push_back(free_port());
    instances.push_back(std::make_unique<KafkaStreams>(
        counting(input),
        config_of(app, "i" + std::to_string(i), "127.0.0.1:" + std::to_string(ports.back()))));
    instances.back()->start();
  }
  // Every key through every instance, forwarded to its owner when needed.
  std::map<std::string, std::string> answered_by;
  REQUIRE(eventually(
      [&] {
        for (const int port : ports) {
          for (const auto& [key, count] : expected) {
            const CurlAnswer answer = curl(port, "/v1/stores/counts/keys/" + key);
            if (answer.status != 200 || answer.body.value("value", -1) != count) return false;
            answered_by[key] = answer.body.value("host", "");
            CHECK(answer.body["key"] == key);
            CHECK(answer.body["stale"] == false);
          }
        }
        return true;
      },
      120s, 200ms));
  // The answer comes from the instance the group gives the key to.
  for (const auto& [key, host] : answered_by) {
    const auto owner = instances[0]->metadata_for_key("counts", key, serdes::string());
    REQUIRE(owner.has_value());
    CHECK(host == owner->active_host.to_string());
  }

  // A range through any instance holds every instance's keys, in order.
  for (const int port : ports) {
    const CurlAnswer range = curl(port, "/v1/stores/counts/range?from=k105&to=k124");
    REQUIRE(range.status == 200);
    std::vector<std::string> keys;
    for (const auto& entry : range.body["entries"]) {
      keys.push_back(entry["key"]);
      CHECK(entry["value"] == expected.at(entry["key"]));
      CHECK_FALSE(entry.contains("order"));
    }
    std::vector<std::string> wanted;
    for (const auto& [key, count] : expected)
      if (key >= "k105" && key <= "k124") wanted.push_back(key);
    CHECK(keys == wanted);
    const CurlAnswer first_three = curl(port, "/v1/stores/counts/range?from=k105&limit=3");
    REQUIRE(first_three.status == 200);
    REQUIRE(first_three.body["entries"].size() == 3);
    CHECK(first_three.body["entries"][2]["key"] == "k107");
  }
  // A key's windows, by start.
  const CurlAnswer windows = curl(
      ports[1], "/v1/stores/minute-counts/windows?key=k103&from=" + std::to_string(base - kMinute));
  REQUIRE(windows.status == 200);
  REQUIRE(windows.body["windows"].size() == 2);
  CHECK(windows.body["windows"][0]["start"] == base);
  CHECK(windows.body["windows"][0]["end"] == base + kMinute);
  CHECK(windows.body["windows"][0]["value"] == expected.at("k103") - 1);
  CHECK(windows.body["windows"][1]["start"] == base + kMinute);
  CHECK(windows.body["windows"][1]["value"] == 1);

  // What cannot be answered says why.
  const CurlAnswer stores = curl(ports[2], "/v1/stores");
  REQUIRE(stores.status == 200);
  CHECK(stores.body["stores"].size() == 2);
  const CurlAnswer unknown = curl(ports[0], "/v1/stores/nope/keys/k100");
  CHECK(unknown.status == 404);
  CHECK_THAT(unknown.body.value("error", ""), Catch::Contains("the stores: counts, minute-counts"));
  const CurlAnswer absent = curl(ports[0], "/v1/stores/counts/keys/zzz");
  CHECK(absent.status == 404);
  CHECK_THAT(absent.body.value("error", ""), Catch::Contains("no value for key 'zzz'"));
  CHECK(curl(ports[0], "/v1/stores/counts/range?limit=0").status == 400);
  CHECK(curl(ports[0], "/v1/stores/counts/windows?key=k100").status == 400);
  CHECK(curl(ports[0], "/v1/stores/minute-counts/windows").status == 400);
  CHECK(curl(ports[0], "/v1/stores/counts/keys/%zz").status == 400);

  for (auto& instance : instances) REQUIRE(instance->close(30s));
}

TEST_CASE("during a rolling restart of three instances, queries answer right or 503",
          "[kafka][queries][http]") {
  const std::string input = unique_name("events"), app = unique_name("app-queries-rolling");
  create_topic(input, 4);
  const Counts expected = produce_counted(input, 30);

  std::vector<int> ports;
  std::vector<StreamsConfig> configs;
  std::vector<std::unique_ptr<KafkaStreams>> instances;
  for (int i = 0; i < 3; ++i) {
    ports.push_back(free_port());
    configs.push_back(
        config_of(app, "i" + std::to_string(i), "127.0.0.1:" + std::to_string(ports.back())));
    instances.push_back(std::make_unique<KafkaStreams>(counting(input), configs.back()));
    instances.back()->start();
  }
  auto all_answer = [&] {
    for (const int port : ports)
      for (const auto& [key, count] : expected) {
        const CurlAnswer answer = curl(port, "/v1/stores/counts/keys/" + key);
        if (answer.status != 200 || answer.body.value("value", -1) != count) return false;
      }
    return true;
  };
  REQUIRE(eventually(all_answer, 120s, 200ms));

  // A client asks every instance in turn for every key while each instance
  // is closed and started again (its stores restored from its checkpoint).
  std::atomic<bool> restarted{false};
  std::atomic<int> right{0}, unavailable{0}, refused{0};
  std::vector<std::string> wrong;
  struct Joined {
    std::atomic<bool>& restarted;
    std::thread& client;
    ~Joined() {
      restarted.store(true);
      if (client.joinable()) client.join();
    }
  };
  std::thread client;
  const Joined joined{restarted, client};
  client = std::thread([&] {
    for (int request = 0; request < 1000 || !restarted.load(); ++request) {
      const std::string key = "k" + std::to_string(100 + request % 30);
      const CurlAnswer answer =
          curl(ports[static_cast<std::size_t>(request % 3)], "/v1/stores/counts/keys/" + key);
      if (answer.status == 200 && answer.body.value("value", -1) == expected.at(key))
        ++right;
      else if (answer.status == 503)
        ++unavailable;
      else if (answer.status == 0)
        ++refused;  // the instance asked was down
      else
        wrong.push_back(key + " -> " + std::to_string(answer.status) + " " + answer.body.dump());
    }
  });
  for (std::size_t i = 0; i < instances.size(); ++i) {
    REQUIRE(instances[i]->close(30s));
    instances[i] = std::make_unique<KafkaStreams>(counting(input), configs[i]);
    instances[i]->start();
    REQUIRE(eventually(
        [&] {
          const auto all = instances[i]->all_metadata();
          std::set<TaskId> tasks;
          for (const auto& instance : all)
            tasks.insert(instance.active_tasks.begin(), instance.active_tasks.end());
          return all.size() == 3 && tasks.size() == 4 &&
                 instances[i]->state() == KafkaStreams::State::kRunning;
        },
        120s));
  }
  restarted.store(true);
  client.join();
  INFO(right << " right, " << unavailable << " unavailable, " << refused << " refused");
  for (const std::string& answer : wrong) FAIL_CHECK("a wrong answer: " << answer);
  CHECK(right + unavailable + refused >= 1000);
  CHECK(right > 0);
  REQUIRE(eventually(all_answer, 120s, 200ms));
  for (auto& instance : instances) REQUIRE(instance->close(30s));
}
