// Where tasks resume after a rewind (runtime/resume.h), against a consumer
// whose answers the test sets: a failed lookup of the committed offsets must
// never turn into a replay from the beginning of the partition.
#include "runtime/resume.h"

#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/scripted_clients.h"

using namespace rill;
using kafka::TopicPartition;
using rill::testing::ScriptedConsumer;
using namespace std::chrono_literals;

namespace {

std::vector<TopicPartition> two_partitions() {
  return {{"orders", 0}, {"orders", 1}};
}

const runtime::OwnCommits kNoOwnCommits;

}  // namespace

TEST_CASE("a rewound task resumes at the committed offset, or the beginning when none is",
          "[unit][resume]") {
  ScriptedConsumer consumer;
  consumer.committed_offsets = {{"orders", 0, 42}, {"orders", 1, RD_KAFKA_OFFSET_INVALID}};
  const auto positions =
      runtime::resume_positions(consumer, two_partitions(), 1s, kNoOwnCommits, "app");
  runtime::seek_to(consumer, positions);
  REQUIRE(positions.size() == 2);
  CHECK(positions[0].offset == 42);
  CHECK(positions[1].offset == RD_KAFKA_OFFSET_BEGINNING);
  REQUIRE(consumer.sought.size() == 2);
  CHECK(consumer.sought[0].offset == 42);
  CHECK(consumer.sought[1].offset == RD_KAFKA_OFFSET_BEGINNING);
}

TEST_CASE("a committed-offset lookup that times out is retried later, never a replay from 0",
          "[unit][resume]") {
  ScriptedConsumer consumer;
  consumer.lookup_error = RD_KAFKA_RESP_ERR__TIMED_OUT;
  CHECK_THROWS_WITH(runtime::resume_positions(consumer, two_partitions(), 1s, kNoOwnCommits, "app"),
                    Catch::Contains("cannot read the committed offsets"));
  CHECK(consumer.sought.empty());
}

TEST_CASE("a partition whose committed offset has an error is not sought at all",
          "[unit][resume]") {
  ScriptedConsumer consumer;
  consumer.committed_offsets = {
      {"orders", 0, 42},
      {"orders", 1, RD_KAFKA_OFFSET_INVALID, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS}};
  CHECK_THROWS_WITH(runtime::resume_positions(consumer, two_partitions(), 1s, kNoOwnCommits, "app"),
                    Catch::Contains("cannot read the committed offset of orders[1]"));
  CHECK(consumer.sought.empty());
}

TEST_CASE("a failed seek is an error, not a silent start elsewhere", "[unit][resume]") {
  ScriptedConsumer consumer;
  consumer.committed_offsets = {{"orders", 0, 42}, {"orders", 1, 7}};
  consumer.seek_error = RD_KAFKA_RESP_ERR__STATE;
  const auto positions =
      runtime::resume_positions(consumer, two_partitions(), 1s, kNoOwnCommits, "app");
  CHECK_THROWS_WITH(runtime::seek_to(consumer, positions),
                    Catch::Contains("cannot seek orders[0]"));
}

TEST_CASE(
    "a committed offset below where this instance's own commit took the partition resumes at the "
    "own commit",
    "[unit][resume]") {
  ScriptedConsumer consumer;
  // The group answers offsets from before this instance's last commits
  // (seen after its coordinator was cut off): resuming there would count
  // records whose outputs and state updates are committed again.
  consumer.committed_offsets = {{"orders", 0, 2087}, {"orders", 1, 300}};
  runtime::OwnCommits own;
  own.record("orders", 0, 2100);
  own.record("orders", 0, 2255);
  own.record("orders", 1, 250);  // another owner took it further since
  const auto positions = runtime::resume_positions(consumer, two_partitions(), 1s, own, "app");
  runtime::seek_to(consumer, positions);
  REQUIRE(positions.size() == 2);
  CHECK(positions[0].offset == 2255);
  CHECK(positions[1].offset == 300);
  REQUIRE(consumer.sought.size() == 2);
  CHECK(consumer.sought[0].offset == 2255);
  CHECK(consumer.sought[1].offset == 300);
}

TEST_CASE(
    "committed offsets read for an assignment or an archive are raised to the own commit, and a "
    "partition that cannot be read keeps its error",
    "[unit][resume]") {
  ScriptedConsumer consumer;
  consumer.committed_offsets = {
      {"orders", 0, 2087},
      {"orders", 1, RD_KAFKA_OFFSET_INVALID, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS},
      {"orders", 2, RD_KAFKA_OFFSET_INVALID}};
  runtime::OwnCommits own;
  own.record("orders", 0, 2255);
  own.record("orders", 1, 900);
  own.record("orders", 2, 40);
  const auto committed = runtime::committed_offsets(
      consumer, {{"orders", 0}, {"orders", 1}, {"orders", 2}}, 1s, own, "app");
  REQUIRE(committed.size() == 3);
  CHECK(committed[0].offset == 2255);
  CHECK(committed[0].error == RD_KAFKA_RESP_ERR_NO_ERROR);
  CHECK(committed[1].error == RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS);
  CHECK(committed[1].offset == RD_KAFKA_OFFSET_INVALID);
  // No commit in the group's answer, while this instance committed one.
  CHECK(committed[2].offset == 40);
  CHECK(consumer.sought.empty());
}
