// `rill replay` on the real broker: the state as of a time T equals a model
// computed from the input records with timestamps no later than T, for two
// values of T and under both guarantees; records retention took are named.
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <librdkafka/rdkafka.h>
#include <nlohmann/json.hpp>

#include "rill/serde.h"

#include "kafka/admin.h"
#include "kafka/handles.h"
#include "support/counts.h"
#include "support/kafka_cluster.h"
#include "support/process.h"
#include "support/temp_dir.h"

using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

// A time as --until takes it, and as the names of the replay's topics carry it.
std::string time_text(int64_t ms, const char* pattern) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[40];
  std::size_t size = std::strftime(text, sizeof text, pattern, &tm);
  if (ms % 1000 != 0)
    size += static_cast<std::size_t>(
        std::snprintf(text + size, sizeof text - size, ".%03d", static_cast<int>(ms % 1000)));
  return std::string(text, size) + "Z";
}
std::string utc_iso_time(int64_t ms) {
  return time_text(ms, "%Y-%m-%dT%H:%M:%S");
}
std::string compact_time(int64_t ms) {
  return time_text(ms, "%Y%m%dT%H%M%S");
}

}  // namespace

TEST_CASE("rill replay rebuilds the state as of a time, from the records no later than it",
          "[kafka][rill-command][replay]") {
  const std::string app = unique_name("rill-replay"), input = unique_name("replay-in"),
                    output = unique_name("replay-out");
  create_topic(input, 3);
  create_topic(output, 2);
  const std::string state_dir = temp_state_dir(app);
  const std::string file = write_temp_file(app + ".yaml", R"(
application:
  application.id: )" + app + R"(
  bootstrap.servers: ${RILL_KAFKA_BOOTSTRAP}
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
  // One record a second over 300 seconds a day ago, over 7 keys and 3
  // partitions; each partition's timestamps rise with its offsets.
  const int64_t base = (now_ms() - 24 * 3600'000) / 1000 * 1000;
  struct Event {
    std::string key;
    int32_t partition;
    int64_t timestamp;
  };
  std::vector<Event> events;
  std::vector<TestRecord> records;
  for (int i = 0; i < 300; ++i) {
    const Event event{"k" + std::to_string(i % 7), i % 3, base + i * 1000};
    events.push_back(event);
    records.push_back({event.key,
                       nlohmann::json{{"k", event.key}}.dump(),
                       event.partition,
                       -1,
                       event.timestamp,
                       {}});
  }
  produce(input, records);
  auto model = [&](int64_t until, int64_t partition_0_from) {
    std::map<std::string, int64_t> counts;
    int64_t offset_in_0 = 0;
    for (const Event& event : events) {
      const bool kept = event.partition != 0 || offset_in_0++ >= partition_0_from;
      if (event.timestamp <= until && kept) ++counts[event.key];
    }
    return counts;
  };
  auto replay = [&](const std::string& until, std::vector<std::string> extra) {
    std::vector<std::string> arguments = {test_binary("../rill"), "replay", file, "--until", until};
    arguments.insert(arguments.end(), extra.begin(), extra.end());
    ChildProcess process(arguments, write_temp_file(app + ".replay.log", ""));
    const std::optional<int> code = process.wait(180s);
    INFO(process.log_tail());
    REQUIRE(code == 0);
    CHECK_THAT(process.log(), Catch::Contains("replayed") && Catch::Contains("as application"));
    return process.log();
  };

  SECTION("at-least-once, T between records and T on a record") {
    // 100.5 s after the first: records 0..100 count.
    const std::string log = replay(utc_iso_time(base + 100'500), {});
    const std::string as_of = output + "-as-of-" + compact_time(base + 100'500);
    CHECK_THAT(log, Catch::Contains(as_of));
    CHECK(last_counts(as_of) == model(base + 100'500, 0));
    // On a record's own time: that record counts, the next does not.
    const std::string on_record = output + "-as-of-" + compact_time(base + 250'000);
    replay(utc_iso_time(base + 250'000), {});
    CHECK(last_counts(on_record) == model(base + 250'000, 0));
    // After the last record: every record counts.
    const std::string after_all = output + "-as-of-" + compact_time(base + 400'000);
    replay(utc_iso_time(base + 400'000), {});
    CHECK(last_counts(after_all) == model(base + 400'000, 0));
    // The replays ran as applications of their own: the pipeline's group
    // never read the input.
    CHECK(committed_offsets(app, input) == 0);
  }

  SECTION("exactly-once, with records retention took") {
    delete_records_below(input, 0, 10);
    const std::string log =
        replay(utc_iso_time(base + 200'000), {"--set", "processing.guarantee=exactly_once_v2"});
    CHECK_THAT(log,
               Catch::Contains(input + "[0] starts at offset 10") && Catch::Contains("lacks them"));
    const std::string as_of = output + "-as-of-" + compact_time(base + 200'000);
    CHECK(last_counts(as_of) == model(base + 200'000, 10));
  }
  std::filesystem::remove_all(state_dir);
}

TEST_CASE("rill replay reads global tables up to its time too", "[kafka][rill-command][replay]") {
  const std::string app = unique_name("rill-replay-global"), names = unique_name("replay-names"),
                    events = unique_name("replay-events"), output = unique_name("replay-named");
  create_topic(names, 1);
  create_topic(events, 2);
  create_topic(output, 1);
  const std::string state_dir = temp_state_dir(app);
  const std::string file = write_temp_file(app + ".yaml", R"(
application:
  application.id: )" + app + R"(
  bootstrap.servers: ${RILL_KAFKA_BOOTSTRAP}
  state.dir: )" + state_dir + R"(
sources:
  names: {topic: )" + names + R"(, type: global_table}
  events: {topic: )" + events + R"(}
flows:
  - from: events
    steps:
      - join: {with: names, type: left, value: {event: value.id, name: right.name}}
      - to: )" + output + R"(
)");
  // The name of k changes from "old" to "new" after the replay's time.
  const int64_t base = (now_ms() - 3600'000) / 1000 * 1000;
  produce(names, {{"k", R"({"name":"old"})", 0, -1, base, {}},
                  {"k", R"({"name":"new"})", 0, -1, base + 200'000, {}}});
  produce(events, {{"k", R"({"id":1})", -1, -1, base + 100'000, {}},
                   {"k", R"({"id":2})", -1, -1, base + 300'000, {}}});
  ChildProcess process(
      {test_binary("../rill"), "replay", file, "--until", utc_iso_time(base + 150'000)},
      write_temp_file(app + ".replay.log", ""));
  const std::optional<int> code = process.wait(120s);
  INFO(process.log_tail());
  REQUIRE(code == 0);
  std::vector<std::string> joined;
  REQUIRE(read_to_end(
      output + "-as-of-" + compact_time(base + 150'000),
      [&](const TestRecord& record) { joined.push_back(record.value.value_or("<null>")); }, 30s));
  CHECK(joined == std::vector<std::string>{R"({"event":1,"name":"old"})"});
  std::filesystem::remove_all(state_dir);
}

TEST_CASE("rill replay refuses a time it cannot read and a pipeline without a cluster",
          "[kafka][rill-command][replay]") {
  const std::string file = write_temp_file(unique_name("replay-bad") + ".yaml", R"(
application:
  application.id: replay-bad
sources:
  events:
    topic: events
flows:
  - from: events
    steps:
      - to: out
)");
  ChildProcess bad_time({test_binary("../rill"), "replay", file, "--until", "yesterday"},
                        write_temp_file("replay-bad-time.log", ""));
  CHECK(bad_time.wait(30s) == 2);
  CHECK_THAT(bad_time.log(), Catch::Contains("--until") && Catch::Contains("'yesterday'"));
  ChildProcess embedded({test_binary("../rill"), "replay", file, "--until", "2026-11-01T00:00:00Z"},
                        write_temp_file("replay-embedded.log", ""));
  CHECK(embedded.wait(30s) == 2);
  CHECK_THAT(embedded.log(), Catch::Contains("no bootstrap.servers"));
}
