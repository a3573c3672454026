// The `rill` command on the real broker: it runs a YAML pipeline with keyed
// and windowed aggregations until SIGTERM, and what it wrote is read back by
// an independent consumer; a topic the broker lacks is a pipeline mistake.
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "support/command.h"
#include "support/counts.h"
#include "support/eventually.h"
#include "support/kafka_cluster.h"
#include "support/ports.h"
#include "support/process.h"
#include "support/temp_dir.h"

using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

std::string rill_binary() {
  return test_binary("../rill");
}

std::vector<std::pair<std::string, std::string>> key_values(
    const std::vector<TestRecord>& records) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : records)
    out.emplace_back(r.key.value_or("<null>"), r.value.value_or("<null>"));
  return out;
}

}  // namespace

TEST_CASE("rill run aggregates per key and per window on the broker", "[kafka][rill-command]") {
  const std::string app = unique_name("rill-orders"), input = unique_name("orders"),
                    totals = unique_name("totals"), windowed = unique_name("per-minute");
  create_topic(input, 1);
  create_topic(totals, 1);
  create_topic(windowed, 1);
  const std::string state_dir =
      (std::filesystem::temp_directory_path() / unique_name("rill-state")).string();
  const std::string file = write_temp_file(app + ".yaml", R"(
application:
  application.id: )" + app + R"(
  bootstrap.servers: ${RILL_KAFKA_BOOTSTRAP}
  commit.interval.ms: 500
  statestore.cache.max.bytes: 0
  state.dir: )" + state_dir + R"(
sources:
  orders:
    topic: )" + input + R"(
    timestamp: value.at
    fields: [product, qty, at]
flows:
  - from: orders
    steps:
      - group_by: value.product
      - aggregate:
          name: totals
          fields:
            orders: count()
            quantity: sum(value.qty)
      - to: )" + totals + R"(
  - from: orders
    steps:
      - group_by: value.product
      - aggregate:
          name: per-minute
          window: {type: tumbling, size: 1m, emit: final}
          value: count()
      - to: )" + windowed + "\n");

  // Event times in whole minutes a few minutes ago, so windows are aligned.
  const int64_t base = (now_ms() / 60000 - 5) * 60000;
  auto order = [&](const std::string& product, int qty, int64_t at) {
    return TestRecord{
        std::nullopt, nlohmann::json{{"product", product}, {"qty", qty}, {"at", at}}.dump(),
        -1,           -1,
        now_ms(),     {}};
  };
  produce(input,
          {order("p1", 2, base + 1000), order("p2", 5, base + 2000), order("p1", 3, base + 30000),
           order("p1", 1, base + 61000), order("p2", 1, base + 125000)});

  ChildProcess rill({rill_binary(), "run", file}, write_temp_file(app + ".log", ""));
  const auto total_records = consume(totals, 5, 90s);
  const auto window_records = consume(windowed, 3, 60s);
  INFO(rill.log_tail());
  CHECK(key_values(total_records) ==
        std::vector<std::pair<std::string, std::string>>{{"p1", R"({"orders":1,"quantity":2})"},
                                                         {"p2", R"({"orders":1,"quantity":5})"},
                                                         {"p1", R"({"orders":2,"quantity":5})"},
                                                         {"p1", R"({"orders":3,"quantity":6})"},
                                                         {"p2", R"({"orders":2,"quantity":6})"}});
  auto window_key = [&](const std::string& product, int64_t start) {
    return nlohmann::json{{"key", product}, {"start", start}, {"end", start + 60000}}.dump();
  };
  CHECK(key_values(window_records) ==
        std::vector<std::pair<std::string, std::string>>{{window_key("p1", base), "2"},
                                                         {window_key("p2", base), "1"},
                                                         {window_key("p1", base + 60000), "1"}});
  rill.signal(SIGTERM);
  CHECK(rill.wait(60s) == 0);
  CHECK_THAT(rill.log(), Catch::Contains("NOT_RUNNING"));
  std::filesystem::remove_all(state_dir);
}

TEST_CASE("rill run serves its aggregations, and rill query asks for them",
          "[kafka][rill-command][queries]") {
  const std::string app = unique_name("rill-query"), input = unique_name("orders"),
                    totals = unique_name("totals"), per_minute = unique_name("per-minute");
  create_topic(input, 2);
  create_topic(totals, 2);
  create_topic(per_minute, 2);
  const int port = free_port();
  const std::string state_dir =
      (std::filesystem::temp_directory_path() / unique_name("rill-state")).string();
  const std::string file = write_temp_file(app + ".yaml", R"(
application:
  application.id: )" + app + R"(
  bootstrap.servers: ${RILL_KAFKA_BOOTSTRAP}
  application.server: 127.0.0.1:)" + std::to_string(port) + R"(
  commit.interval.ms: 200
  state.dir: )" + state_dir + R"(
sources:
  orders:
    topic: )" + input + R"(
    timestamp: value.at
    fields: [product, qty, at]
flows:
  - from: orders
    steps:
      - group_by: value.product
      - aggregate:
          name: totals
          fields:
            orders: count()
            quantity: sum(value.qty)
      - to: )" + totals + R"(
  - from: orders
    steps:
      - group_by: value.product
      - aggregate:
          name: per-minute
          window: {type: tumbling, size: 1m, grace: 1h}
          value: count()
      - to: )" + per_minute + "\n");
  const int64_t base = (now_ms() / 60000 - 5) * 60000;
  auto order = [&](const std::string& product, int qty, int64_t at) {
    return TestRecord{
        std::nullopt, nlohmann::json{{"product", product}, {"qty", qty}, {"at", at}}.dump(),
        -1,           -1,
        now_ms(),     {}};
  };
  produce(input,
          {order("p1", 2, base + 1000), order("p2", 5, base + 2000), order("p1", 3, base + 61000)});

  ChildProcess rill({rill_binary(), "run", file}, write_temp_file(app + ".log", ""));
  const auto query = [&](const std::string& arguments) {
    return run_command(rill_binary() + " query " + file + " " + arguments);
  };
  // Until the instance runs and has counted everything.
  nlohmann::json answer;
  REQUIRE(eventually(
      [&] {
        const CommandResult result = query("--store totals --key p1");
        if (result.exit_code != 0) return false;
        answer = nlohmann::json::parse(result.output, nullptr, false);
        return answer.is_object() && answer["value"]["orders"] == 2;
      },
      90s, 200ms));
  INFO(rill.log_tail());
  CHECK(answer["value"] == nlohmann::json{{"orders", 2}, {"quantity", 5}});
  CHECK(answer["host"] == "127.0.0.1:" + std::to_string(port));
  const CommandResult range = query("--store totals --from p1 --to p9");
  REQUIRE(range.exit_code == 0);
  const auto entries = nlohmann::json::parse(range.output)["entries"];
  REQUIRE(entries.size() == 2);
  CHECK(entries[0]["key"] == "p1");
  CHECK(entries[1] == nlohmann::json{{"key", "p2"}, {"value", {{"orders", 1}, {"quantity", 5}}}});
  const CommandResult windows = query("--store per-minute --key p1 --from " + std::to_string(base));
  REQUIRE(windows.exit_code == 0);
  const auto of_p1 = nlohmann::json::parse(windows.output)["windows"];
  REQUIRE(of_p1.size() == 2);
  CHECK(of_p1[0] == nlohmann::json{{"start", base}, {"end", base + 60000}, {"value", 1}});
  CHECK(of_p1[1]["start"] == base + 60000);
  // What it cannot answer, it says.
  const CommandResult absent = query("--store totals --key p7");
  CHECK(absent.exit_code == 1);
  CHECK_THAT(absent.output, Catch::Contains("404: no value for key 'p7'"));
  const CommandResult unknown = query("--store total --key p1");
  CHECK(unknown.exit_code == 2);
  CHECK_THAT(unknown.output, Catch::Contains("no store 'total' to query; the pipeline's stores: "
                                             "totals, per-minute"));
  rill.signal(SIGTERM);
  CHECK(rill.wait(60s) == 0);
  const CommandResult stopped = query("--store totals --key p1");
  CHECK(stopped.exit_code == 1);
  CHECK_THAT(stopped.output, Catch::Contains("did not answer"));
  std::filesystem::remove_all(state_dir);
}

TEST_CASE("rill run stops with exit code 2 naming a topic the broker lacks",
          "[kafka][rill-command]") {
  const std::string app = unique_name("rill-missing"), input = unique_name("missing-in");
  const std::string file = write_temp_file(app + ".yaml", R"(application:
  application.id: )" + app + R"(
  bootstrap.servers: ${RILL_KAFKA_BOOTSTRAP}
sources:
  events: {topic: )" + input + R"(}
flows:
  - from: events
    steps:
      - stdout
)");
  ChildProcess rill({rill_binary(), "run", file}, write_temp_file(app + ".log", ""));
  CHECK(rill.wait(60s) == 2);
  CHECK_THAT(rill.log(), Catch::Contains(file + ":5:19: topic '" + input + "' does not exist"));
}

TEST_CASE("rill validate checks topics and co-partitioning against a reachable broker",
          "[kafka][rill-command]") {
  const std::string app = unique_name("rill-validate");
  const std::string web = unique_name("validate-web"), shop = unique_name("validate-shop");
  create_topic(web, 4);
  create_topic(shop, 2);
  auto pipeline = [&](const std::string& second) {
    return write_temp_file(app + "-" + second + ".yaml", R"(application:
  application.id: )" + app + R"(
  bootstrap.servers: ${RILL_KAFKA_BOOTSTRAP}
sources:
  web: {topic: )" + web + R"(}
  other: {topic: )" + second + R"(}
flows:
  - from: [web, other]
    steps:
      - group_by: key
      - aggregate: {value: count(), name: counts}
      - stdout
)");
  };
  auto validate = [&](const std::string& file) {
    ChildProcess rill({rill_binary(), "validate", file}, write_temp_file(app + ".log", ""));
    const auto exit_code = rill.wait(60s);
    return std::make_pair(exit_code, rill.log());
  };

  const auto [mismatch_code, mismatch] = validate(pipeline(shop));
  CHECK(mismatch_code == 2);
  CHECK_THAT(mismatch,
             Catch::Contains("Invalid topology: the following topics do not have the same number "
                             "of partitions: " +
                             shop + " (2), " + web + " (4)"));

  const std::string other_web = unique_name("validate-web2");
  create_topic(other_web, 4);
  const auto [agree_code, agree] = validate(pipeline(other_web));
  CHECK(agree_code == 0);
  CHECK_THAT(agree, Catch::Contains("topics and partition counts agree with the cluster at"));

  const auto [missing_code, missing] = validate(pipeline(unique_name("validate-none")));
  CHECK(missing_code == 2);
  CHECK_THAT(missing, Catch::Contains("does not exist on"));
}

// A bounded input, as a CI job or a replay has: `--until-idle` closes the
// instance once it is drained, and the summary tells what the window dropped
// as late. The file has no bootstrap.servers; `--set` points it at the broker.
TEST_CASE("rill run --until-idle exits 0 once a bounded input is processed and sums up drops",
          "[kafka][rill-command]") {
  const std::string app = unique_name("rill-idle"), input = unique_name("idle-in"),
                    output = unique_name("idle-out");
  create_topic(input, 1);
  create_topic(output, 1);
  const std::string state_dir = temp_state_dir(app);
  const std::string file = write_temp_file(app + ".yaml", R"(
application:
  application.id: )" + app + R"(
  statestore.cache.max.bytes: 0
  state.dir: )" + state_dir + R"(
sources:
  events:
    topic: )" + input + R"(
    timestamp: value.at
    fields: [k, at]
flows:
  - from: events
    steps:
      - group_by: value.k
      - aggregate:
          name: per-minute
          window: {type: tumbling, size: 1m, grace: 0s}
          value: count()
      - to: )" + output + "\n");

  // 100 records in one minute over 5 keys, then 7 for a window that closed
  // long before: those are dropped as late.
  const int64_t base = (now_ms() / 60000 - 30) * 60000;
  std::vector<TestRecord> records;
  for (int i = 0; i < 100; ++i)
    records.push_back(
        {std::nullopt,
         nlohmann::json{{"k", "k" + std::to_string(i % 5)}, {"at", base + 600000}}.dump(),
         -1,
         -1,
         now_ms(),
         {}});
  for (int i = 0; i < 7; ++i)
    records.push_back(
        {std::nullopt, nlohmann::json{{"k", "k0"}, {"at", base}}.dump(), -1, -1, now_ms(), {}});
  produce(input, records);

  ChildProcess rill({rill_binary(), "run", file, "--set",
                     "bootstrap.servers=" + bootstrap_servers(), "--until-idle", "3s"},
                    write_temp_file(app + ".log", ""));
  INFO(rill.log_tail());
  REQUIRE(rill.wait(120s) == 0);
  CHECK_THAT(rill.log(), Catch::Contains("input drained and idle for 3000 ms"));
  // Each record is processed twice: before and after the repartitioning.
  CHECK_THAT(rill.log(), Catch::Contains("rill: processed 214 records; dropped 7 "));

  std::map<std::string, int64_t> last_count;
  REQUIRE(read_to_end(
      output,
      [&](const TestRecord& record) {
        last_count[nlohmann::json::parse(*record.key)["key"].get<std::string>()] =
            std::stoll(*record.value);
      },
      60s));
  CHECK(last_count ==
        std::map<std::string, int64_t>{{"k0", 20}, {"k1", 20}, {"k2", 20}, {"k3", 20}, {"k4", 20}});
  std::filesystem::remove_all(state_dir);
}

// Keys other Kafka clients agree with: a YAML group_by writes a string key as
// Kafka's StringSerializer does, so it lands on the partition Java's producer
// picks for the same key, and other consumers read the plain string.
TEST_CASE("a key repartitioned by a YAML group_by lands where Java's producer puts it",
          "[kafka][rill-command][partitioning]") {
  constexpr int kPartitions = 6;
  constexpr int kKeys = 40;
  const std::string app = unique_name("rill-keys"), java_topic = unique_name("java-keyed"),
                    input = unique_name("keys-in"), output = unique_name("keys-out");
  create_topic(java_topic, kPartitions);
  create_topic(input, kPartitions);
  create_topic(output, kPartitions);

  // The Java producer's choice for each key: Kafka's console producer.
  std::string lines;
  for (int i = 0; i < kKeys; ++i) lines += "key-" + std::to_string(i) + ":v\n";
  const CommandResult java =
      run_command("printf '" + lines + "' | " + std::string(RILL_SOURCE_DIR) +
                  "/scripts/kafka tool org.apache.kafka.tools.ConsoleProducer --bootstrap-server " +
                  bootstrap_servers() + " --topic " + java_topic +
                  " --property parse.key=true --property key.separator=:");
  INFO(java.output);
  REQUIRE(java.exit_code == 0);
  std::map<std::string, int32_t> java_partition;
  REQUIRE(read_to_end(
      java_topic, [&](const TestRecord& r) { java_partition[*r.key] = r.partition; }, 60s));
  REQUIRE(java_partition.size() == kKeys);

  // The same keys as a field of unkeyed JSON records, grouped by the field.
  std::vector<TestRecord> records;
  for (int i = 0; i < kKeys; ++i)
    records.push_back({std::nullopt,
                       nlohmann::json{{"k", "key-" + std::to_string(i)}}.dump(),
                       i % kPartitions,
                       -1,
                       now_ms(),
                       {}});
  produce(input, records);
  const std::string state_dir = temp_state_dir(app);
  const std::string file = write_temp_file(app + ".yaml", R"(
application:
  application.id: )" + app + R"(
  bootstrap.servers: ${RILL_KAFKA_BOOTSTRAP}
  state.dir: )" + state_dir + R"(
sources:
  events: {topic: )" + input + R"(}
flows:
  - from: events
    steps:
      - group_by: {key: value.k, name: by-k}
      - aggregate: {value: count(), name: counts}
      - to: )" + output + "\n");
  ChildProcess rill({rill_binary(), "run", file, "--until-idle", "3s"},
                    write_temp_file(app + ".log", ""));
  INFO(rill.log_tail());
  REQUIRE(rill.wait(120s) == 0);

  std::map<std::string, int32_t> repartitioned;
  REQUIRE(read_to_end(
      app + "-by-k-repartition", [&](const TestRecord& r) { repartitioned[*r.key] = r.partition; },
      60s));
  CHECK(repartitioned == java_partition);
  std::map<std::string, std::string> counts;
  REQUIRE(read_to_end(
      output, [&](const TestRecord& r) { counts[*r.key] = *r.value; }, 60s));
  CHECK(counts.size() == kKeys);
  CHECK(counts.at("key-7") == "1");
  std::filesystem::remove_all(state_dir);
}

// A source's time comes from the record before any step runs, so no filter
// can screen out a bad one: the source says where such records go.
TEST_CASE("records whose timestamp expression fails go to the dead-letter topic, and only they",
          "[kafka][rill-command]") {
  const std::string app = unique_name("rill-bad-time"), input = unique_name("bad-time-in"),
                    output = unique_name("bad-time-out"),
                    dead_letters = unique_name("bad-time-dlq");
  create_topic(input, 1);
  create_topic(output, 1);
  create_topic(dead_letters, 1);
  const std::string state_dir = temp_state_dir(app);
  const std::string file = write_temp_file(app + ".yaml", R"(
application:
  application.id: )" + app + R"(
  state.dir: )" + state_dir + R"(
  errors.dead.letter.queue.topic.name: )" + dead_letters +
                                                              R"(
sources:
  events:
    topic: )" + input + R"(
    timestamp: {expression: value.at, on_error: dead_letter}
flows:
  - from: events
    steps:
      - to: )" + output + "\n");

  // Every fourth record's time is text, and every fourth is an array, whose
  // fields cannot be read; the others are good.
  const int64_t base = now_ms();
  std::vector<TestRecord> records;
  std::set<std::string> bad;
  for (int i = 0; i < 40; ++i) {
    nlohmann::json value = {{"n", i}, {"at", base + i}};
    if (i % 4 == 1) value["at"] = "yesterday";
    std::string text = value.dump();
    if (i % 4 == 3) text = nlohmann::json::array({value}).dump();
    if (i % 4 == 1 || i % 4 == 3) bad.insert(text);
    records.push_back({"k" + std::to_string(i), text, -1, -1, base, {}});
  }
  produce(input, records);

  ChildProcess rill({rill_binary(), "run", file, "--set",
                     "bootstrap.servers=" + bootstrap_servers(), "--until-idle", "3s"},
                    write_temp_file(app + ".log", ""));
  INFO(rill.log_tail());
  REQUIRE(rill.wait(120s) == 0);

  std::set<std::string> dead_lettered;
  REQUIRE(read_to_end(
      dead_letters,
      [&](const TestRecord& record) {
        dead_lettered.insert(*record.value);
        bool names_error = false;
        for (const auto& [name, value] : record.headers)
          names_error = names_error || (name == "__streams.errors.message" &&
                                        value.find("timestamp 'value.at'") != std::string::npos);
        CHECK(names_error);
      },
      60s));
  CHECK(dead_lettered == bad);
  std::map<int64_t, int64_t> time_of_n;
  REQUIRE(read_to_end(
      output,
      [&](const TestRecord& record) {
        time_of_n[nlohmann::json::parse(*record.value)["n"].get<int64_t>()] = record.timestamp;
      },
      60s));
  CHECK(time_of_n.size() == 20);
  for (const auto& [n, timestamp] : time_of_n) {
    CHECK(n % 2 == 0);
    CHECK(timestamp == base + n);
  }
  std::filesystem::remove_all(state_dir);
}
