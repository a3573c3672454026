// Where tasks resume after a rewind (runtime/resume.h), against a consumer
// whose answers the test sets: a failed lookup of the committed offsets must
// never turn into a replay from the beginning of the partition.
#include "runtime/resume.h"

#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using namespace rill;
using kafka::TopicPartition;
using namespace std::chrono_literals;

namespace {

class ScriptedConsumer final : public kafka::Consumer {
 public:
  // What committed() answers: an error for the whole request, or offsets.
  std::optional<rd_kafka_resp_err_t> lookup_error;
  std::vector<TopicPartition> committed_offsets;
  std::optional<rd_kafka_resp_err_t> seek_error;
  // Every seek asked for.
  std::vector<TopicPartition> sought;

  std::vector<TopicPartition> committed(std::vector<TopicPartition> partitions,
                                        std::chrono::milliseconds) override {
    if (lookup_error) throw kafka::Error(*lookup_error, "cannot read the committed offsets");
    REQUIRE(partitions.size() == committed_offsets.size());
    return committed_offsets;
  }
  std::vector<TopicPartition> seek(std::vector<TopicPartition> positions,
                                   std::chrono::milliseconds) override {
    sought.insert(sought.end(), positions.begin(), positions.end());
    if (seek_error)
      for (TopicPartition& tp : positions) tp.error = *seek_error;
    return positions;
  }
};

std::vector<TopicPartition> two_partitions() {
  return {{"orders", 0}, {"orders", 1}};
}

}  // namespace

TEST_CASE("a rewound task resumes at the committed offset, or the beginning when none is",
          "[unit][resume]") {
  ScriptedConsumer consumer;
  consumer.committed_offsets = {{"orders", 0, 42}, {"orders", 1, RD_KAFKA_OFFSET_INVALID}};
  const auto positions = runtime::seek_to_committed(consumer, two_partitions(), 1s);
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
  CHECK_THROWS_WITH(runtime::seek_to_committed(consumer, two_partitions(), 1s),
                    Catch::Contains("cannot read the committed offsets"));
  CHECK(consumer.sought.empty());
}

TEST_CASE("a partition whose committed offset has an error is not sought at all",
          "[unit][resume]") {
  ScriptedConsumer consumer;
  consumer.committed_offsets = {
      {"orders", 0, 42},
      {"orders", 1, RD_KAFKA_OFFSET_INVALID, RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS}};
  CHECK_THROWS_WITH(runtime::seek_to_committed(consumer, two_partitions(), 1s),
                    Catch::Contains("cannot read the committed offset of orders[1]"));
  CHECK(consumer.sought.empty());
}

TEST_CASE("a failed seek is an error, not a silent start elsewhere", "[unit][resume]") {
  ScriptedConsumer consumer;
  consumer.committed_offsets = {{"orders", 0, 42}, {"orders", 1, 7}};
  consumer.seek_error = RD_KAFKA_RESP_ERR__STATE;
  CHECK_THROWS_WITH(runtime::seek_to_committed(consumer, two_partitions(), 1s),
                    Catch::Contains("cannot seek orders[0]"));
}
