// Snapshots in a real S3-compatible server (moto, started by scripts/test):
// a RocksDB checkpoint goes up signed with SigV4 through libcurl and comes
// back whole; an object changed behind rill's back is detected and the
// snapshot before it used; a missing bucket, an unreachable endpoint and a
// missing object each say which.
#include <string>

#include <catch2/catch.hpp>

#include "state/s3_snapshot_store.h"
#include "support/kafka_cluster.h"
#include "support/ports.h"
#include "support/s3_server.h"
#include "support/store_snapshots.h"
#include "support/temp_dir.h"

using namespace rill;
using namespace rill::testing;

namespace {

state::S3SnapshotStore s3_store(const std::string& bucket,
                                const std::string& endpoint = s3_endpoint()) {
  return state::S3SnapshotStore({endpoint, bucket, "us-east-1", kS3AccessKey, kS3SecretKey});
}

}  // namespace

TEST_CASE("snapshots go to an S3 server and come back whole; a changed object is refused",
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
  const auto manifest =
      state::upload_snapshot(objects, prefix, dir.path() / "second", second, 2000, {{{"c", 3}, 7000}});

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
