// The archive of events on the real broker and a real S3-compatible server
// (moto, started by scripts/test): `rill archive` copies a topic in runs,
// --verify compares it with the topic, and once retention (DeleteRecords
// here) has taken the old records, a pipeline whose source reads the archive
// rebuilds exactly the state a run over the whole topic built, while one
// without it cannot; `rill replay --from-archive` rebuilds the state as of a
// time inside what was deleted. A changed segment and an archive with a gap
// are named.
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "rill/serde.h"

#include "support/counts.h"
#include "support/kafka_cluster.h"
#include "support/process.h"
#include "support/s3_server.h"
#include "support/temp_dir.h"

using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

struct RillRun {
  int code = -1;
  std::string log;
};

RillRun run_rill(const std::string& name, std::vector<std::string> arguments) {
  arguments.insert(arguments.begin(), test_binary("../rill"));
  ChildProcess process(arguments, write_temp_file(unique_name(name) + ".log", ""));
  const std::optional<int> code = process.wait(180s);
  INFO(process.log_tail());
  REQUIRE(code);
  return {*code, process.log()};
}

std::vector<std::string> s3_settings() {
  return {"--set", "s3.endpoint=" + s3_endpoint(),
          "--set", std::string("s3.access.key.id=") + kS3AccessKey,
          "--set", std::string("s3.secret.access.key=") + kS3SecretKey};
}

std::vector<std::string> joined(std::vector<std::string> first,
                                const std::vector<std::string>& second) {
  first.insert(first.end(), second.begin(), second.end());
  return first;
}

std::string utc_iso_time(int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[40];
  const std::size_t size = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  return std::string(text, size) + "." + std::to_string(1000 + ms % 1000).substr(1) + "Z";
}

}  // namespace

TEST_CASE("an archived topic replays from its first event after retention took its old records",
          "[kafka][s3][archive][rill-command]") {
  const std::string topic = unique_name("archived"), bucket = unique_name("archive");
  create_topic(topic, 2);
  create_bucket(bucket);
  const std::string location = "s3://" + bucket + "/events";

  // 500 events a second apart, a day ago, over 7 keys and 2 partitions; some
  // with headers, some without a key.
  const int64_t base = (now_ms() - 24 * 3600'000) / 1000 * 1000;
  std::vector<TestRecord> records;
  for (int i = 0; i < 500; ++i) {
    const std::string key = "k" + std::to_string(i % 7);
    TestRecord record{i % 10 == 9 ? std::nullopt : std::optional<std::string>(key),
                      nlohmann::json{{"k", key}, {"n", i}}.dump(),
                      i % 2,
                      -1,
                      base + i * 1000,
                      {}};
    if (i % 3 == 0) record.headers = {{"trace", "t" + std::to_string(i)}, {"source", "test"}};
    records.push_back(std::move(record));
  }
  auto counts_of = [&](int64_t until, int64_t deleted_below) {
    std::map<std::string, int64_t> counts;
    for (int i = 0; i < 500; ++i)
      if (i / 2 >= deleted_below && records[static_cast<std::size_t>(i)].timestamp <= until)
        ++counts["k" + std::to_string(i % 7)];
    return counts;
  };
  produce(topic, std::vector<TestRecord>(records.begin(), records.begin() + 300));

  // Two runs: up to offset 100 of each partition in small segments, then on
  // to the end.
  const std::vector<std::string> archive = joined(
      {"archive", "--bootstrap-server", bootstrap_servers(), "--topic", topic, "--to", location},
      s3_settings());
  const RillRun first =
      run_rill("archive-first", joined(archive, {"--until-offset", "100", "--segment-size", "2K"}));
  REQUIRE(first.code == 0);
  CHECK_THAT(first.log, Catch::Contains(topic + "[0]: offsets [0, 100) archived, 100 records") &&
                            Catch::Contains(topic + "[1]: offsets [0, 100) archived, 100 records"));
  const nlohmann::json index =
      nlohmann::json::parse(get_object(bucket, "events/" + topic + "/0/index.json"));
  CHECK(index.at("segments").size() > 2);
  CHECK(index.at("segments").back().at("end_offset") == 100);
  const RillRun second = run_rill("archive-second", archive);
  REQUIRE(second.code == 0);
  CHECK_THAT(second.log, Catch::Contains(topic + "[1]: offsets [100, 150) archived, 50 records"));

  // Events after the archive's end stay in the topic only.
  produce(topic, std::vector<TestRecord>(records.begin() + 300, records.end()));
  const std::vector<std::string> verify = joined(archive, {"--verify"});
  const RillRun sound = run_rill("archive-verify", verify);
  CHECK(sound.code == 0);
  CHECK_THAT(sound.log, Catch::Contains(topic + "[0]: ") &&
                            Catch::Contains("150 records compared") &&
                            Catch::Contains("0 no longer in it") && Catch::Contains("sound"));

  const std::string state_dir = temp_state_dir(topic);
  auto pipeline = [&](const std::string& app, bool from_archive) {
    return write_temp_file(app + ".yaml", R"(
application:
  application.id: )" + app + R"(
  bootstrap.servers: ${RILL_KAFKA_BOOTSTRAP}
  state.dir: )" + state_dir + R"(
  archive.location: )" + location + R"(
  s3.endpoint: )" + s3_endpoint() + R"(
  s3.access.key.id: )" + kS3AccessKey + R"(
  s3.secret.access.key: )" + kS3SecretKey + R"(
sources:
  events:
    topic: )" + topic + R"(
    archive: )" + (from_archive ? "true" : "false") +
                                              R"(
    fields: [k, n]
flows:
  - from: events
    steps:
      - group_by: value.k
      - aggregate: {value: count(), name: counts}
      - to: {topic: )" + app + R"(-out, value_format: int64}
)");
  };
  auto run_pipeline = [&](const std::string& app, bool from_archive) {
    create_topic(app + "-out", 1);
    const RillRun run = run_rill(
        app, {"run", pipeline(app, from_archive), "--until-idle", "3s", "--log-level", "info"});
    INFO(run.log.substr(run.log.size() > 4000 ? run.log.size() - 4000 : 0));
    REQUIRE(run.code == 0);
    return std::make_pair(last_counts(app + "-out"), run.log);
  };

  // The whole topic, before retention: the state to rebuild.
  const auto [whole, whole_log] = run_pipeline(unique_name("archive-whole"), false);
  CHECK(whole == counts_of(base + 500'000, 0));

  delete_records_below(topic, 0, 120);
  delete_records_below(topic, 1, 120);
  const RillRun after_retention = run_rill("archive-verify-after", verify);
  CHECK(after_retention.code == 0);
  CHECK_THAT(after_retention.log,
             Catch::Contains("30 records compared") && Catch::Contains("120 no longer in it"));

  SECTION("a source reading the archive rebuilds the same state; one without it cannot") {
    const auto [rebuilt, rebuilt_log] = run_pipeline(unique_name("archive-rebuilt"), true);
    CHECK(rebuilt == whole);
    CHECK_THAT(rebuilt_log, Catch::Contains(topic + "[0]: reading offsets [0, 150) from the "
                                                    "archive, then the topic"));
    const auto [partial, partial_log] = run_pipeline(unique_name("archive-without"), false);
    CHECK(partial == counts_of(base + 500'000, 120));
    CHECK(partial != whole);
  }

  SECTION("rill replay --from-archive rebuilds the state as of a time inside what was deleted") {
    const std::string app = unique_name("archive-replay");
    const int64_t until = base + 150'500;  // events 0..150: offsets 0..75 of each partition
    const std::string file = pipeline(app, false);
    create_topic(app + "-out", 1);
    const RillRun replay =
        run_rill(app, {"replay", file, "--until", utc_iso_time(until), "--from-archive", location});
    REQUIRE(replay.code == 0);
    const std::size_t at = replay.log.find(app + "-out-as-of-");
    REQUIRE(at != std::string::npos);
    const std::string as_of = replay.log.substr(at, replay.log.find('\n', at) - at);
    CHECK(last_counts(as_of) == counts_of(until, 0));
  }

  SECTION("a segment changed behind the index fails verification, naming it") {
    const std::string segment = index.at("segments").at(1).at("object").get<std::string>();
    put_object(bucket, segment, "not the archived bytes");
    const RillRun changed = run_rill("archive-verify-changed", verify);
    CHECK(changed.code == 1);
    CHECK_THAT(changed.log, Catch::Contains(segment) && Catch::Contains("NOT sound"));
  }
  std::filesystem::remove_all(state_dir);
}

TEST_CASE("rill archive refuses to leave a gap, and names what is missing",
          "[kafka][s3][archive][rill-command]") {
  const std::string topic = unique_name("archive-gap"), bucket = unique_name("archive-gap");
  create_topic(topic, 1);
  create_bucket(bucket);
  std::vector<TestRecord> records;
  for (int i = 0; i < 20; ++i)
    records.push_back({"k", "v" + std::to_string(i), 0, -1, now_ms(), {}});
  produce(topic, records);
  delete_records_below(topic, 0, 5);
  const std::vector<std::string> archive =
      joined({"archive", "--bootstrap-server", bootstrap_servers(), "--topic", topic, "--to",
              "s3://" + bucket + "/a"},
             s3_settings());
  // Nothing archived yet: the archive starts where the topic starts now.
  const RillRun first = run_rill("archive-gap-first", joined(archive, {"--until-offset", "10"}));
  REQUIRE(first.code == 0);
  CHECK_THAT(first.log, Catch::Contains("offsets [5, 10) archived, 5 records"));
  delete_records_below(topic, 0, 15);
  const RillRun gap = run_rill("archive-gap", archive);
  CHECK(gap.code == 1);
  CHECK_THAT(gap.log, Catch::Contains("records [10, 15) were deleted before they were archived") &&
                          Catch::Contains("s3://" + bucket + "/a/" + topic + "/0/index.json"));
  // A missing bucket is named too.
  const RillRun missing = run_rill(
      "archive-missing-bucket", joined({"archive", "--bootstrap-server", bootstrap_servers(),
                                        "--topic", topic, "--to", "s3://" + bucket + "-missing/a"},
                                       s3_settings()));
  CHECK(missing.code == 1);
  CHECK_THAT(missing.log, Catch::Contains(bucket + "-missing"));
}
