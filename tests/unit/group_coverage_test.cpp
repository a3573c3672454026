// runtime/group_coverage.h: partitions no member of the group owns, and when
// such a gap lasts long enough to make the group assign again.
#include "runtime/group_coverage.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using namespace rill;
using runtime::CoverageWatch;
using runtime::GroupMember;
using runtime::TopicPartitionId;

TEST_CASE("partitions of a subscribed topic that no member owns are found",
          "[unit][group-coverage]") {
  // The group's first assignment, made from a broker that did not know the
  // repartition topic yet: both members hold input partitions only.
  const std::vector<GroupMember> members{
      {"a", {{"in", 0}, {"in", 2}}}, {"b", {{"in", 1}, {"in", 3}, {"app-counts-repartition", 1}}}};
  const std::map<std::string, int32_t> subscribed{{"in", 4}, {"app-counts-repartition", 3}};
  CHECK(
      runtime::unowned_partitions(members, subscribed) ==
      std::vector<TopicPartitionId>{{"app-counts-repartition", 0}, {"app-counts-repartition", 2}});
  CHECK(runtime::unowned_partitions(members, {{"in", 4}}).empty());
}

TEST_CASE("a gap counts once it lasts the given checks with no rebalance between them",
          "[unit][group-coverage]") {
  CoverageWatch watch(3);
  const std::vector<TopicPartitionId> gap{{"app-counts-repartition", 0}};
  CHECK(watch.check(gap).empty());
  CHECK(watch.check(gap).empty());
  CHECK(watch.check(gap) == std::set<std::string>{"app-counts-repartition"});
  // It starts over: the group is assigning again.
  CHECK(watch.check(gap).empty());

  // A rebalance of this instance between the checks, or another gap, starts over.
  CoverageWatch interrupted(3);
  CHECK(interrupted.check(gap).empty());
  CHECK(interrupted.check(gap).empty());
  interrupted.rebalanced();
  CHECK(interrupted.check(gap).empty());
  CHECK(interrupted.check({{"in", 1}}).empty());
  CHECK(interrupted.check({}).empty());
  CHECK(interrupted.check(gap).empty());
  CHECK(interrupted.check(gap).empty());
  CHECK(interrupted.check(gap) == std::set<std::string>{"app-counts-repartition"});
}
