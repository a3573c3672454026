// The runtime against the real broker: a pipeline with a repartition, several
// instances sharing partitions while they stop, join and die, and poison records.
#include <map>
#include <numeric>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <signal.h>

#include "rill/kafka_streams.h"
#include "rill/rill.h"

#include "support/eventually.h"
#include "support/kafka_cluster.h"
#include "support/process.h"

using namespace rill;
using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

StreamsConfig test_config(const std::string& application_id) {
  return StreamsConfig{
      {"application.id", application_id}, {"bootstrap.servers", bootstrap_servers()},
      {"commit.interval.ms", "200"},      {"num.stream.threads", "2"},
      {"session.timeout.ms", "6000"},     {"source.topic.wait.ms", "5000"}};
}

std::vector<TestRecord> numbered(int from, int to) {
  std::vector<TestRecord> records;
  for (int i = from; i < to; ++i)
    records.push_back(
        {"key-" + std::to_string(i % 50), std::to_string(i), -1, -1, now_ms() + i, {}});
  return records;
}

}  // namespace

TEST_CASE(
    "map, filter and select_key through a repartition topic yield exactly the expected "
    "output",
    "[kafka][runtime]") {
  const std::string app = unique_name("app-pipeline");
  const std::string input = unique_name("pipeline-in"), output = unique_name("pipeline-out");
  create_topic(input, 4);
  create_topic(output, 3);
  produce(input, numbered(0, 2000));

  StreamsBuilder builder;
  builder.stream(input, serdes::string(), serdes::string())
      .map_values([](const std::string& value) { return std::stoi(value); })
      .filter([](const std::string&, int n) { return n % 2 == 0; })
      .select_key([](const std::string&, int n) { return "bucket-" + std::to_string(n % 10); })
      .map_values([](int n) { return std::to_string(n); })
      .repartition({"rekey"})
      .map_values(
          [](const std::string& key, const std::string& value) { return key + ":" + value; })
      .to(output);

  KafkaStreams streams(builder.build(), test_config(app));
  std::vector<std::pair<KafkaStreams::State, KafkaStreams::State>> transitions;
  std::mutex transitions_mutex;
  streams.set_state_listener([&](KafkaStreams::State now, KafkaStreams::State before) {
    std::lock_guard lock(transitions_mutex);
    transitions.emplace_back(now, before);
  });
  streams.start();

  auto records = consume(output, 1000, 60s);
  REQUIRE(streams.close(30s));
  CHECK(streams.state() == KafkaStreams::State::kNotRunning);

  REQUIRE(records.size() == 1000);
  std::set<std::string> values;
  std::map<std::string, std::set<int32_t>> partitions_of_key;
  for (const auto& record : records) {
    values.insert(*record.value);
    partitions_of_key[*record.key].insert(record.partition);
    REQUIRE(record.value->starts_with(*record.key + ":"));
  }
  std::set<std::string> expected;
  for (int n = 0; n < 2000; n += 2)
    expected.insert("bucket-" + std::to_string(n % 10) + ":" + std::to_string(n));
  CHECK(values == expected);
  CHECK(partitions_of_key.size() == 5);
  for (const auto& [key, partitions] : partitions_of_key) CHECK(partitions.size() == 1);

  // The repartition topic was created with the input's partition count and
  // holds every record once. Its end offsets count them: records below a
  // commit may already be purged.
  const std::vector<int64_t> internal_ends = end_offsets_by_partition(app + "-rekey-repartition");
  CHECK(internal_ends.size() == 4);
  CHECK(std::accumulate(internal_ends.begin(), internal_ends.end(), int64_t{0}) == 1000);

  std::lock_guard lock(transitions_mutex);
  REQUIRE(!transitions.empty());
  CHECK(transitions.front().second == KafkaStreams::State::kCreated);
  CHECK(std::find_if(transitions.begin(), transitions.end(), [](auto& t) {
          return t.first == KafkaStreams::State::kRunning;
        }) != transitions.end());
  CHECK(transitions.back().first == KafkaStreams::State::kNotRunning);
}

TEST_CASE("a missing source topic is a clear error, not a hang", "[kafka][runtime]") {
  StreamsBuilder builder;
  const std::string missing = unique_name("no-such-topic");
  builder.stream(missing, serdes::string(), serdes::string()).to(unique_name("out"));
  auto config = test_config(unique_name("app-missing"));
  config.set("source.topic.wait.ms", "1000");
  KafkaStreams streams(builder.build(), config);
  CHECK_THROWS_WITH(streams.start(),
                    Catch::Contains("source topic '" + missing + "' does not exist"));
}

TEST_CASE("instances share partitions while one stops, one joins and one dies (at-least-once)",
          "[kafka][runtime][rebalance]") {
  const std::string app = unique_name("app-group");
  const std::string input = unique_name("group-in"), output = unique_name("group-out");
  create_topic(input, 8);
  create_topic(output, 8);
  const std::string dir = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
  auto start_instance = [&](const std::string& name) {
    return ChildProcess(
        {test_binary("rill_test_app"), "repartition", "input=" + input, "output=" + output,
         "application.id=" + app, "bootstrap.servers=" + bootstrap_servers(),
         "commit.interval.ms=300", "session.timeout.ms=6000", "num.stream.threads=2"},
        dir + "/" + app + "-" + name + ".log");
  };
  auto output_count = [&] { return consume(output, 1u << 30, 2s).size(); };

  const int total = 40000;
  ChildProcess a = start_instance("a");
  ChildProcess b = start_instance("b");
  produce(input, numbered(0, 10000));
  REQUIRE(eventually([&] { return output_count() >= 5000; }, 90s));

  a.signal(SIGTERM);  // mid-stream, a clean stop
  produce(input, numbered(10000, 20000));
  auto a_exit = a.wait(60s);
  REQUIRE(a_exit.has_value());
  CHECK(*a_exit == 0);

  ChildProcess c = start_instance("c");
  produce(input, numbered(20000, 30000));
  REQUIRE(eventually([&] { return output_count() >= 25000; }, 90s));

  b.signal(SIGKILL);  // a crash: its uncommitted work is redone by c
  produce(input, numbered(30000, total));

  std::vector<TestRecord> records;
  std::map<std::string, int> seen;
  REQUIRE(eventually(
      [&] {
        records = consume(output, 1u << 30, 3s);
        seen.clear();
        for (const auto& record : records) ++seen[*record.value];
        return seen.size() == static_cast<std::size_t>(total);
      },
      120s));
  c.signal(SIGTERM);
  auto c_exit = c.wait(60s);
  REQUIRE(c_exit.has_value());
  CHECK(*c_exit == 0);

  int duplicates = 0;
  for (int i = 0; i < total; ++i) {
    const std::string id = std::to_string(i);
    INFO("input " << id);
    REQUIRE(seen[id + "|" + id] >= 1);
    duplicates += seen[id + "|" + id] - 1;
  }
  WARN("at-least-once: " << total << " inputs, " << records.size() << " outputs, " << duplicates
                         << " duplicates after one SIGTERM, one join and one SIGKILL");
  CHECK(records.size() == static_cast<std::size_t>(total + duplicates));
}

TEST_CASE("poison records go to the dead-letter topic with their headers",
          "[kafka][runtime][errors]") {
  const std::string app = unique_name("app-poison");
  const std::string input = unique_name("poison-in"), output = unique_name("poison-out");
  const std::string dead_letters = unique_name("poison-dlq");
  create_topic(input, 2);
  create_topic(output, 2);
  create_topic(dead_letters, 1);
  std::vector<TestRecord> records;
  for (int i = 0; i < 500; ++i) {
    bool poison = i % 25 == 7;
    records.push_back(
        {"k" + std::to_string(i),
         poison ? "not json " + std::to_string(i) : R"({"id":")" + std::to_string(i) + R"("})",
         i % 2,
         -1,
         now_ms(),
         {{"origin", "test"}}});
  }
  produce(input, records);

  ChildProcess app_process(
      {test_binary("rill_test_app"), "json", "input=" + input, "output=" + output,
       "application.id=" + app, "bootstrap.servers=" + bootstrap_servers(),
       "commit.interval.ms=200", "deserialization.exception.handler=dead-letter",
       "errors.dead.letter.queue.topic.name=" + dead_letters},
      "/tmp/" + app + ".log");
  auto good = consume(output, 480, 60s);
  auto dead = consume(dead_letters, 20, 60s);
  app_process.signal(SIGTERM);
  REQUIRE(app_process.wait(30s) == 0);

  CHECK(good.size() == 480);
  // Headers are read from a fetched record only when asked for; the sink asks.
  for (const auto& record : good) {
    std::map<std::string, std::string> headers(record.headers.begin(), record.headers.end());
    CHECK(headers["origin"] == "test");
  }
  REQUIRE(dead.size() == 20);
  for (const auto& record : dead) {
    std::map<std::string, std::string> headers(record.headers.begin(), record.headers.end());
    REQUIRE(record.value->starts_with("not json "));
    const int i = std::stoi(record.value->substr(9));
    CHECK(*record.key == "k" + std::to_string(i));
    CHECK(headers["origin"] == "test");
    CHECK(headers["__streams.errors.topic"] == input);
    CHECK(headers["__streams.errors.partition"] == std::to_string(i % 2));
    CHECK(std::stoi(headers["__streams.errors.offset"]) == i / 2);
    CHECK(headers["__streams.errors.message"].find("cannot deserialize value") !=
          std::string::npos);
    CHECK(headers["__streams.errors.exception"] == "DeserializationError");
  }
}

TEST_CASE("with log-and-fail a poison record stops the process, naming where it is",
          "[kafka][runtime][errors]") {
  const std::string app = unique_name("app-fail");
  const std::string input = unique_name("fail-in"), output = unique_name("fail-out");
  create_topic(input, 1);
  create_topic(output, 1);
  produce(input, {{"k0", R"({"id":"0"})", 0, -1, 0, {}},
                  {"k1", R"({"id":"1"})", 0, -1, 0, {}},
                  {"k2", "garbage", 0, -1, 0, {}},
                  {"k3", R"({"id":"3"})", 0, -1, 0, {}}});
  ChildProcess app_process(
      {test_binary("rill_test_app"), "json", "input=" + input, "output=" + output,
       "application.id=" + app, "bootstrap.servers=" + bootstrap_servers(),
       "deserialization.exception.handler=log-and-fail"},
      "/tmp/" + app + ".log");
  auto exit_code = app_process.wait(60s);
  REQUIRE(exit_code.has_value());
  CHECK(*exit_code == 1);
  INFO(app_process.log());
  CHECK(app_process.log().find("topic " + input + ", partition 0, offset 2") != std::string::npos);
  // The records before the poison one were processed and committed.
  CHECK(consume(output, 2, 20s).size() == 2);
}
