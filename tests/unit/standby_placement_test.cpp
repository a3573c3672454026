// runtime/standby_placement.h: where cooperative-sticky sends a dead member's
// partitions, and standbys placed there.
#include "runtime/standby_placement.h"

#include <map>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using namespace rill;
using runtime::GroupMember;
using runtime::TopicPartitionId;

namespace {

std::set<TopicPartitionId> partitions(const std::string& topic, std::vector<int32_t> numbers) {
  std::set<TopicPartitionId> owned;
  for (int32_t p : numbers) owned.emplace(topic, p);
  return owned;
}

using Heirs = std::map<TopicPartitionId, std::string>;

}  // namespace

TEST_CASE("a dead member's partitions go, highest first, to the least loaded, smallest id on a tie",
          "[unit][standby-placement]") {
  const std::vector<GroupMember> members{{"a", partitions("in", {0, 3, 6, 9})},
                                         {"b", partitions("in", {1, 4, 7})},
                                         {"c", partitions("in", {2, 5, 8})}};
  // 9 to b (3 each, b first), 6 to c (now the least), 3 to b, 0 to c.
  CHECK(runtime::predict_heirs(members, "a", {{"in", 10}}) ==
        Heirs{{{"in", 9}, "b"}, {{"in", 6}, "c"}, {{"in", 3}, "b"}, {{"in", 0}, "c"}});
  // b dies: c and a hold 3 and 4; 7 to c, then 4 to a (4 each, a first), 1 to c.
  CHECK(runtime::predict_heirs(members, "b", {{"in", 10}}) ==
        Heirs{{{"in", 7}, "c"}, {{"in", 4}, "a"}, {{"in", 1}, "c"}});
}

TEST_CASE("orphans of several topics are placed from the last topic in name order",
          "[unit][standby-placement]") {
  std::set<TopicPartitionId> dead_owns = partitions("a-topic", {1});
  dead_owns.emplace("b-topic", 1);
  const std::vector<GroupMember> members{
      {"m1", partitions("a-topic", {0})}, {"m2", partitions("b-topic", {0})}, {"m3", dead_owns}};
  // b-topic[1] first, to m1 (1 each, m1 first); then a-topic[1] to m2.
  CHECK(runtime::predict_heirs(members, "m3", {{"a-topic", 2}, {"b-topic", 2}}) ==
        Heirs{{{"b-topic", 1}, "m1"}, {{"a-topic", 1}, "m2"}});
}

TEST_CASE("each stateful task's standby is on its predicted heir, never on its owner",
          "[unit][standby-placement]") {
  // Six tasks of sub-topology 0 over three members, and a stateless
  // sub-topology's topic whose partitions count towards each member's load.
  std::set<TopicPartitionId> a = partitions("counted", {0, 3}), b = partitions("counted", {1, 4}),
                             c = partitions("counted", {2, 5});
  b.emplace("passed", 0);
  const std::vector<GroupMember> members{{"a", a}, {"b", b}, {"c", c}};
  const std::map<std::string, int32_t> subscribed{{"counted", 6}, {"passed", 1}};
  const auto standbys = runtime::place_standbys(members, subscribed, {{"counted", 0}}, 1);

  std::map<TaskId, std::string> holder;
  for (const auto& [member, tasks] : standbys)
    for (const TaskId& task : tasks) {
      CHECK(holder.emplace(task, member).second);  // one copy each
    }
  REQUIRE(holder.size() == 6);
  for (const GroupMember& owner : members) {
    const Heirs heirs = runtime::predict_heirs(members, owner.id, subscribed);
    for (const auto& [topic, partition] : owner.owned) {
      if (topic != "counted") continue;
      INFO("task 0_" << partition << " of " << owner.id);
      CHECK(holder.at({0, partition}) != owner.id);
      CHECK(holder.at({0, partition}) == heirs.at({topic, partition}));
    }
  }
  // b holds one partition more, so a's and c's partitions never go to it first.
  CHECK(holder.at({0, 3}) == "c");
  CHECK(holder.at({0, 5}) == "a");
}

TEST_CASE("more replicas than the heir follow the owner in member-id order",
          "[unit][standby-placement]") {
  const std::vector<GroupMember> members{
      {"a", partitions("in", {0})}, {"b", partitions("in", {1})}, {"c", partitions("in", {2})}};
  const auto two = runtime::place_standbys(members, {{"in", 3}}, {{"in", 0}}, 2);
  for (const auto& [member, tasks] : two) CHECK(tasks.size() == 2);
  CHECK(two.at("a") == std::set<TaskId>{{0, 1}, {0, 2}});
  // Never more copies than other members.
  const auto many = runtime::place_standbys(members, {{"in", 3}}, {{"in", 0}}, 5);
  CHECK(many == two);
  CHECK(runtime::place_standbys({{"a", partitions("in", {0, 1})}}, {{"in", 2}}, {{"in", 0}}, 1)
            .at("a")
            .empty());
}
