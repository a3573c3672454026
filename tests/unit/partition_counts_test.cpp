// Topology::partition_counts: how the topics of an application are sized, and
// the co-partitioning it requires of sources that meet in one stateful
// sub-topology.
#include <cstdint>
#include <map>
#include <string>

#include <catch2/catch.hpp>

#include "rill/streams_builder.h"

using namespace rill;

namespace {

using Counts = std::map<std::string, int32_t>;

KStream<std::string, std::string> strings(StreamsBuilder& builder, const std::string& topic) {
  return builder.stream(topic, serdes::string(), serdes::string());
}

// "a" merged with "b" into a count (sub-topology 0).
Topology merged_count() {
  StreamsBuilder builder;
  strings(builder, "a")
      .merge(strings(builder, "b"))
      .group_by_key()
      .count(Materialized<std::string, int64_t>::as("counts"))
      .to_stream()
      .to("out", serdes::string(), serdes::int64());
  return builder.build();
}

}  // namespace

TEST_CASE("co-partitioned sources give their count to the tasks' changelog",
          "[unit][partition-counts]") {
  const Counts counts = merged_count().partition_counts("app", {{"a", 4}, {"b", 4}, {"out", 1}});
  CHECK(counts == Counts{{"a", 4}, {"b", 4}, {"app-counts-changelog", 4}});
}

TEST_CASE("sources of a stateful sub-topology with different counts are refused",
          "[unit][partition-counts]") {
  const Topology topology = merged_count();
  CHECK_THROWS_MATCHES(
      topology.partition_counts("app", {{"a", 4}, {"b", 2}}), TopologyError,
      Catch::Matchers::Message(
          "Invalid topology: the following topics do not have the same number of partitions: a "
          "(4), b (2); they meet in sub-topology 0, whose state needs partition p of each in one "
          "task (co-partitioning)"));
}

TEST_CASE("a stateless merge needs no co-partitioning", "[unit][partition-counts]") {
  StreamsBuilder builder;
  strings(builder, "a").merge(strings(builder, "b")).to("out");
  const Topology topology = builder.build();
  const Counts counts = topology.partition_counts("app", {{"a", 4}, {"b", 2}});
  CHECK(counts == Counts{{"a", 4}, {"b", 2}});
  CHECK(Topology::task_count(topology.subtopologies().at(0), "app", counts) == 4);
}

TEST_CASE("a missing source topic is an error naming it", "[unit][partition-counts]") {
  CHECK_THROWS_MATCHES(merged_count().partition_counts("app", {{"a", 4}}), TopologyError,
                       Catch::Matchers::Message("source topic 'b' does not exist"));
}

TEST_CASE("a repartition topic takes the count of the sub-topology that writes it",
          "[unit][partition-counts]") {
  StreamsBuilder builder;
  strings(builder, "events")
      .select_key([](const std::string&, const std::string& value) { return value; })
      .group_by_key(Grouped<std::string, std::string>{"by-value"})
      .count(Materialized<std::string, int64_t>::as("counts"))
      .to_stream()
      .to("out", serdes::string(), serdes::int64());
  const Counts counts = builder.build().partition_counts("app", {{"events", 6}});
  CHECK(counts ==
        Counts{{"events", 6}, {"app-by-value-repartition", 6}, {"app-counts-changelog", 6}});
}

TEST_CASE("a repartition topic that meets a source takes the source's count",
          "[unit][partition-counts]") {
  StreamsBuilder builder;
  strings(builder, "clicks")
      .select_key([](const std::string&, const std::string& value) { return value; })
      .repartition(Repartitioned<std::string, std::string>{"by-user"})
      .merge(strings(builder, "users"))
      .group_by_key()
      .count(Materialized<std::string, int64_t>::as("counts"));
  const Counts counts = builder.build().partition_counts("app", {{"clicks", 8}, {"users", 3}});
  CHECK(counts.at("app-by-user-repartition") == 3);
  CHECK(counts.at("app-counts-changelog") == 3);
}

TEST_CASE("a repartition topic whose count is given must agree with the sources it meets",
          "[unit][partition-counts]") {
  StreamsBuilder builder;
  strings(builder, "clicks")
      .repartition(Repartitioned<std::string, std::string>{"by-user", 5})
      .merge(strings(builder, "users"))
      .group_by_key()
      .count(Materialized<std::string, int64_t>::as("counts"));
  const Topology topology = builder.build();
  CHECK_THROWS_WITH(topology.partition_counts("app", {{"clicks", 8}, {"users", 3}}),
                    Catch::Matchers::Contains("app-by-user-repartition (5), users (3)"));
  // An existing repartition topic is as fixed as a given count.
  CHECK_THROWS_WITH(topology.partition_counts(
                        "app", {{"clicks", 8}, {"users", 3}, {"app-by-user-repartition", 4}}),
                    Catch::Matchers::Contains("app-by-user-repartition (4), users (3)"));
}

TEST_CASE("a regrouped table's repartition topic follows the table's partitions",
          "[unit][partition-counts]") {
  StreamsBuilder builder;
  builder.table("accounts", serdes::string(), serdes::string())
      .group_by([](const std::string&, const std::string& row) {
        return KeyValue<std::string, std::string>{row, row};
      })
      .count(Materialized<std::string, int64_t>::as("per-region"));
  const Counts counts = builder.build().partition_counts("app", {{"accounts", 5}});
  CHECK(counts.at("app-per-region-repartition") == 5);
  CHECK(counts.at("app-per-region-changelog") == 5);
}
