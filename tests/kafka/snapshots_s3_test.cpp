// Snapshots in a real S3-compatible server (moto, started by scripts/test):
// a RocksDB checkpoint goes up signed with SigV4 through libcurl and comes
// back whole; a task without local state restores from the newest snapshot
// and the changelog's tail, to what a full restore gives; an object changed behind rill's back is
// detected and the snapshot before it used; a missing bucket, an unreachable endpoint and a missing
// object each say which.
#include <algorithm>
#include <csignal>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include <catch2/catch.hpp>

#include "rill/kafka_streams.h"
#include "rill/rill.h"

#include "archive/archive.h"
#include "objects/s3_object_store.h"
#include "state/snapshots.h"
#include "support/count_topology.h"
#include "support/counts.h"
#include "support/eventually.h"
#include "support/http_client.h"
#include "support/kafka_cluster.h"
#include "support/ports.h"
#include "support/process.h"
#include "support/s3_server.h"
#include "support/store_snapshots.h"
#include "support/temp_dir.h"

using namespace rill;
using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

objects::S3ObjectStore s3_store(const std::string& bucket,
                                const std::string& endpoint = s3_endpoint()) {
  return objects::S3ObjectStore({endpoint, bucket, "us-east-1", kS3AccessKey, kS3SecretKey});
}

}  // namespace

TEST_CASE("snapshots go to an S3 server and come back whole, and a changed object is refused",
          "[s3][snapshots]") {
  TempDir dir;
  const std::string bucket = unique_name("snapshots");
  create_bucket(bucket);
  auto objects = s3_store(bucket);
  const std::string prefix = "app/0_3/";
  const auto older = filled_checkpoint(dir.path() / "store", dir.path() / "first", 3000, "v1");
  const auto newer = filled_checkpoint(dir.path() / "store", dir.path() / "second", 4000, "v2");
  const std::string first = state::new_snapshot_id(1000), second = state::new_snapshot_id(2000);
  state::upload_snapshot(objects, prefix, dir.path() / "first", first, 1000, {{{"c", 3}, 3000}});
  const auto manifest = state::upload_snapshot(objects, prefix, dir.path() / "second", second, 2000,
                                               {{{"c", 3}, 7000}});

  // What another client sees in the bucket: the manifest, as written.
  CHECK(get_object(bucket, prefix + second + "/manifest.json") == manifest.to_json());
  CHECK(state::snapshot_ids(objects, prefix) == std::vector<std::string>{first, second});
  auto newest = [&] {
    return state::download_newest_snapshot(objects, prefix, dir.path() / "restored");
  };
  {
    const auto download = newest();
    REQUIRE(download.manifest.has_value());
    CHECK(download.manifest->id == second);
    CHECK(download.manifest->changelog_offsets.at({"c", 3}) == 7000);
    CHECK(restored_contents(dir.path() / "restored") == newer);
  }

  // An object of the newest snapshot replaced by other bytes: refused, and
  // the snapshot before it restores instead.
  put_object(bucket, prefix + second + "/files/" + manifest.files.front().path, "not a file");
  {
    const auto download = newest();
    REQUIRE(download.manifest.has_value());
    CHECK(download.manifest->id == first);
    REQUIRE(download.skipped.size() == 1);
    CHECK_THAT(download.skipped[0], Catch::Contains("s3://" + bucket + "/" + prefix + second));
    CHECK(restored_contents(dir.path() / "restored") == older);
  }

  CHECK(state::prune_snapshots(objects, prefix, 1) == 1);
  CHECK(state::snapshot_ids(objects, prefix) == std::vector<std::string>{second});
  for (const std::string& key : objects.list(prefix)) CHECK(key.starts_with(prefix + second));
}

TEST_CASE("a missing bucket, an unreachable endpoint and a missing object each say which",
          "[s3][snapshots]") {
  TempDir dir;
  auto no_bucket = s3_store("no-such-bucket");
  CHECK_THROWS_WITH(no_bucket.list("app/"),
                    Catch::Contains("no bucket 'no-such-bucket' at " + s3_endpoint()));
  const std::string unreachable = "http://127.0.0.1:" + std::to_string(free_port());
  auto nowhere = s3_store("b", unreachable);
  CHECK_THROWS_WITH(nowhere.get_text("app/x"),
                    Catch::Contains("GET s3://b/app/x (at " + unreachable + ") failed"));
  const auto download = state::download_newest_snapshot(nowhere, "app/", dir.path() / "restored");
  CHECK_FALSE(download.manifest.has_value());
  REQUIRE(download.skipped.size() == 1);
  CHECK_THAT(download.skipped[0], Catch::Contains(unreachable));

  const std::string bucket = unique_name("snapshots");
  create_bucket(bucket);
  auto objects = s3_store(bucket);
  CHECK_THROWS_WITH(objects.get_file("app/none", dir.path() / "none"),
                    Catch::Contains("no object s3://" + bucket + "/app/none"));
  CHECK(objects.list("app/").empty());
}

TEST_CASE("a task without local state restores the newest snapshot and the changelog's tail",
          "[kafka][s3][snapshots]") {
  const std::string bucket = unique_name("snapshots"), app = unique_name("app-snapshots"),
                    input = unique_name("events");
  create_bucket(bucket);
  create_topic(input, 2);
  std::map<std::string, int64_t> expected;
  auto produce_events = [&](int from, int to) {
    std::vector<TestRecord> records;
    for (int i = from; i < to; ++i) {
      const std::string key = "k" + std::to_string(i % 500);
      records.push_back({key, "e", -1, -1, now_ms(), {}});
      ++expected[key];
    }
    produce(input, records);
  };
  auto topology = [&] {
    StreamsBuilder builder;
    builder.stream(input, serdes::string(), serdes::string())
        .group_by_key()
        .count(Materialized<std::string, int64_t>::as("counts"));
    return builder.build();
  };
  auto config_with = [&](bool snapshots) {
    StreamsConfig config{{"application.id", app},
                         {"bootstrap.servers", bootstrap_servers()},
                         {"commit.interval.ms", "200"},
                         {"state.dir", temp_state_dir(app)},
                         {"metrics.address", "127.0.0.1:0"}};
    if (snapshots) {
      config.set("state.snapshot.interval.ms", "300");
      config.set("state.snapshot.location", "s3://" + bucket + "/snapshots");
      config.set("s3.endpoint", s3_endpoint());
      config.set("s3.access.key.id", kS3AccessKey);
      config.set("s3.secret.access.key", kS3SecretKey);
    }
    return config;
  };
  const std::string changelog = app + "-counts-changelog";
  auto objects = s3_store(bucket);
  auto newest_manifest = [&](int partition) -> std::optional<state::SnapshotManifest> {
    const std::string prefix = "snapshots/" + app + "/0_" + std::to_string(partition) + "/";
    const auto ids = state::snapshot_ids(objects, prefix);
    if (ids.empty()) return std::nullopt;
    return state::SnapshotManifest::from_json(
        objects.get_text(prefix + ids.back() + "/manifest.json"), ids.back());
  };

  produce_events(0, 20'000);
  int64_t covered = 0;
  {
    KafkaStreams first(topology(), config_with(true));
    first.start();
    REQUIRE(eventually([&] { return queried_counts(first) == expected; }, 120s));
    // Until each partition's newest snapshot covers its whole changelog.
    REQUIRE(eventually(
        [&] {
          const std::vector<int64_t> ends = end_offsets_by_partition(changelog);
          covered = 0;
          for (int partition = 0; partition < 2; ++partition) {
            const auto manifest = newest_manifest(partition);
            if (!manifest) return false;
            const int64_t offset = manifest->changelog_offsets.at({changelog, partition});
            if (offset != ends.at(static_cast<std::size_t>(partition))) return false;
            covered += offset;
          }
          return true;
        },
        60s));
    // The uploads' counters follow the manifests.
    std::string metrics;
    CHECK(eventually([&] {
      metrics = http_get(first.metrics_port(), "/metrics").body;
      return metric_sum(metrics, "rill_snapshots_total", {{"outcome", "ok"}}) >= 2;
    }));
    CHECK(metric_sum(metrics, "rill_snapshots_total", {{"outcome", "failed"}}) == 0);
    CHECK(metric_sum(metrics, "rill_snapshot_uploaded_bytes_total") > 0);
    CHECK(metric_sum(metrics, "rill_snapshot_last_upload_timestamp_seconds") >
          static_cast<double>(now_ms()) / 1000.0 - 120);
    REQUIRE(first.close(30s));
    first.cleanup();  // no local state: the next instance starts from the snapshots
  }
  const int64_t changelog_before_tail = end_offsets(changelog);
  REQUIRE(covered > 0);
  produce_events(20'000, 21'000);

  std::map<std::string, int64_t> from_snapshot;
  {
    KafkaStreams second(topology(), config_with(true));
    second.start();
    REQUIRE(eventually(
        [&] {
          auto counts = queried_counts(second);
          if (counts != expected) return false;
          from_snapshot = *counts;
          return true;
        },
        120s));
    // It restored only what the snapshots did not cover, not the changelog.
    CHECK(second.stats().restored_records ==
          static_cast<uint64_t>(changelog_before_tail - covered));
    CHECK(second.stats().restored_records < static_cast<uint64_t>(changelog_before_tail));
    CHECK(second.stats().restoring_records == 0);
    CHECK(second.stats().snapshot_download_bytes == 0);
    const std::string metrics = http_get(second.metrics_port(), "/metrics").body;
    CHECK(metric_sum(metrics, "rill_snapshot_restores_total", {{"from", "snapshot"}}) == 2);
    CHECK(metric_sum(metrics, "rill_snapshot_restores_total", {{"from", "changelog"}}) == 0);
    REQUIRE(second.close(30s));
    second.cleanup();
  }
  // A full restore from the changelog alone gives the same state.
  KafkaStreams third(topology(), config_with(false));
  third.start();
  REQUIRE(eventually([&] { return queried_counts(third) == from_snapshot; }, 120s));
  CHECK(third.stats().restored_records >= static_cast<uint64_t>(changelog_before_tail));
  // Without snapshots configured, no snapshot metrics.
  CHECK(metric_count(http_get(third.metrics_port(), "/metrics").body, "rill_snapshots_total") == 0);
  REQUIRE(third.close(30s));
}

TEST_CASE("snapshot() takes snapshots at once whatever the interval and times them",
          "[kafka][s3][snapshots]") {
  const std::string bucket = unique_name("snapshots"), app = unique_name("app-snap-now"),
                    input = unique_name("events"), output = unique_name("snap-now-out");
  create_bucket(bucket);
  create_topic(input, 2);
  create_topic(output, 2);
  produce(input, keyed(50, 20));
  StreamsConfig config{{"application.id", app},
                       {"bootstrap.servers", bootstrap_servers()},
                       {"commit.interval.ms", "200"},
                       {"state.dir", temp_state_dir(app)},
                       {"metrics.address", "127.0.0.1:0"},
                       // Once an hour: only the first commit's snapshots and the asked ones.
                       {"state.snapshot.interval.ms", "3600000"},
                       {"state.snapshot.location", "s3://" + bucket + "/s"},
                       {"s3.endpoint", s3_endpoint()},
                       {"s3.access.key.id", kS3AccessKey},
                       {"s3.secret.access.key", kS3SecretKey}};
  KafkaStreams streams(count_topology(input, output), config);
  CHECK_FALSE(streams.snapshot());  // not started
  streams.start();
  auto uploaded = [&] {
    return metric_sum(http_get(streams.metrics_port(), "/metrics").body, "rill_snapshots_total",
                      {{"outcome", "ok"}});
  };
  REQUIRE(eventually([&] { return uploaded() == 2; }, 60s));
  auto objects = s3_store(bucket);
  CHECK(state::snapshot_ids(objects, "s/" + app + "/0_0/").size() == 1);
  produce(input, keyed(50, 5));
  std::map<std::string, int64_t> expected;
  for (int key = 0; key < 50; ++key) expected["key-" + std::to_string(key)] = 25;
  REQUIRE(eventually([&] { return queried_counts(streams) == expected; }, 60s));
  CHECK(uploaded() == 2);  // the interval holds back the next ones
  REQUIRE(streams.snapshot());
  REQUIRE(eventually([&] { return uploaded() == 4; }, 60s));
  CHECK(state::snapshot_ids(objects, "s/" + app + "/0_0/").size() == 2);
  const std::string metrics = http_get(streams.metrics_port(), "/metrics").body;
  CHECK(metric_sum(metrics, "rill_snapshot_last_duration_seconds") > 0);
  CHECK(metric_sum(metrics, "rill_snapshot_duration_seconds_total") >=
        metric_sum(metrics, "rill_snapshot_last_duration_seconds"));
  REQUIRE(streams.close(30s));
  streams.cleanup();
}

TEST_CASE("a SIGKILL during a snapshot upload leaves nothing a restore would trust",
          "[kafka][s3][snapshots]") {
  const std::string bucket = unique_name("snapshots"), app = unique_name("app-snap-kill"),
                    input = unique_name("events"), output = unique_name("snap-kill-out");
  create_bucket(bucket);
  create_topic(input, 2);
  create_topic(output, 2);
  // Records keep coming while the instance runs, so that it commits, and
  // snapshots, all the time: uploads follow each other.
  const int keys = 100'000;
  std::map<std::string, int64_t> expected;
  int next_key = 0;
  auto produce_records = [&](int count) {
    std::vector<TestRecord> records;
    for (int i = 0; i < count; ++i) {
      const std::string key = "key-" + std::to_string(next_key++ % keys);
      ++expected[key];
      records.push_back({key, "e", -1, -1, now_ms(), {}});
    }
    produce(input, records);
  };
  produce_records(keys);
  const std::vector<std::string> settings = {"application.id=" + app,
                                             "bootstrap.servers=" + bootstrap_servers(),
                                             "commit.interval.ms=100",
                                             "processing.guarantee=exactly_once_v2",
                                             "state.dir=" + temp_state_dir(app + "-killed"),
                                             "state.snapshot.interval.ms=1",
                                             "state.snapshot.location=s3://" + bucket + "/s",
                                             "s3.endpoint=" + s3_endpoint(),
                                             std::string("s3.access.key.id=") + kS3AccessKey,
                                             std::string("s3.secret.access.key=") + kS3SecretKey};
  auto objects = s3_store(bucket);
  // Snapshot ids under each task with their objects, and whether the
  // manifest is among them.
  auto snapshots_in_bucket = [&] {
    std::map<std::string, bool> complete;  // "<task>/<id>" -> has its manifest
    for (const std::string& key : objects.list("s/" + app + "/")) {
      const std::string rest = key.substr(("s/" + app + "/").size());
      const std::size_t slash = rest.find('/', rest.find('/') + 1);
      const std::string id = rest.substr(0, slash);
      complete[id] = complete[id] || rest.substr(slash) == "/manifest.json";
    }
    return complete;
  };
  std::mt19937 random(std::random_device{}());
  bool killed_mid_upload = false;
  // A kill at a random moment can fall between two uploads (uploads of 30 to
  // 110 ms follow each commit; five kills in a row missed them once): up to
  // 12 tries, each a fresh instance.
  for (int attempt = 0; attempt < 12 && !killed_mid_upload; ++attempt) {
    std::vector<std::string> arguments = {test_binary("rill_test_app"), "count", "input=" + input,
                                          "output=" + output};
    arguments.insert(arguments.end(), settings.begin(), settings.end());
    ChildProcess instance(arguments, "/tmp/" + app + "-" + std::to_string(attempt) + ".log");
    REQUIRE(
        eventually([&] { return instance.log().find("uploaded to") != std::string::npos; }, 120s));
    const auto kill_at =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(100 + random() % 1000);
    while (std::chrono::steady_clock::now() < kill_at) produce_records(1000);
    instance.signal(SIGKILL);
    instance.wait(10s);
    for (const auto& [id, has_manifest] : snapshots_in_bucket())
      if (!has_manifest) killed_mid_upload = true;
  }
  REQUIRE(killed_mid_upload);

  // An instance without local state restores the newest complete snapshots
  // (the partial one does not exist for it) and the changelog's tail.
  StreamsConfig config;
  for (const std::string& setting : settings) {
    const std::size_t equals = setting.find('=');
    config.set(setting.substr(0, equals), setting.substr(equals + 1));
  }
  config.set("state.dir", temp_state_dir(app + "-restored"));
  config.set("state.snapshot.interval.ms", "3600000");
  config.set("metrics.address", "127.0.0.1:0");
  KafkaStreams restored(count_topology(input, output), config);
  restored.start();
  REQUIRE(eventually([&] { return queried_counts(restored) == expected; }, 120s));
  const std::string metrics = http_get(restored.metrics_port(), "/metrics").body;
  CHECK(metric_sum(metrics, "rill_snapshot_restores_total", {{"from", "snapshot"}}) == 2);
  CHECK(metric_sum(metrics, "rill_snapshot_restores_total", {{"from", "changelog"}}) == 0);
  REQUIRE(restored.close(30s));
  restored.cleanup();
}

TEST_CASE("wrong credentials are refused, naming the object, and lose nothing",
          "[s3][snapshots][archive]") {
  AuthenticatingS3Server server;
  auto store_with = [&](const std::string& access_key, const std::string& secret_key) {
    return objects::S3ObjectStore(
        {server.endpoint(), server.bucket(), "us-east-1", access_key, secret_key});
  };
  auto right = store_with(server.access_key(), server.secret_key());
  auto wrong_secret = store_with(server.access_key(), "not-the-secret");
  auto unknown_key = store_with("AKIAUNKNOWNKEY000000", "anything");

  TempDir dir;
  const auto contents = filled_checkpoint(dir.path() / "store", dir.path() / "first", 500, "v1");
  state::upload_snapshot(right, "app/0_1/", dir.path() / "first", state::new_snapshot_id(1000),
                         1000, {{{"c", 1}, 500}});
  const std::string prefix_address = "s3://" + server.bucket() + "/app/0_1/";
  CHECK_THROWS_WITH(wrong_secret.list("app/0_1/"), Catch::Contains(prefix_address) &&
                                                       Catch::Contains("denied") &&
                                                       Catch::Contains("SignatureDoesNotMatch"));
  CHECK_THROWS_WITH(unknown_key.list("app/0_1/"),
                    Catch::Contains(prefix_address) && Catch::Contains("InvalidAccessKeyId"));

  // A task restoring with the wrong key uses no snapshot and says why (it
  // restores from the changelogs); the snapshot stays for the right key.
  const auto refused =
      state::download_newest_snapshot(wrong_secret, "app/0_1/", dir.path() / "refused");
  CHECK_FALSE(refused.manifest.has_value());
  REQUIRE(refused.skipped.size() == 1);
  CHECK_THAT(refused.skipped[0], Catch::Contains(prefix_address) && Catch::Contains("denied"));
  const auto restored = state::download_newest_snapshot(right, "app/0_1/", dir.path() / "restored");
  REQUIRE(restored.manifest.has_value());
  CHECK(restored_contents(dir.path() / "restored") == contents);

  // The archive's reader names the index it could not read.
  objects::ObjectLocation location;
  location.store = std::make_unique<objects::S3ObjectStore>(wrong_secret);
  location.prefix = "events";
  const archive::Archive archived(std::move(location));
  CHECK_THROWS_WITH(archived.read_index("orders", 0),
                    Catch::Contains("s3://" + server.bucket() + "/events/orders/0/index.json") &&
                        Catch::Contains("denied"));
}
