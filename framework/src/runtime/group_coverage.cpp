#include "runtime/group_coverage.h"

namespace rill::runtime {

std::vector<TopicPartitionId> unowned_partitions(const std::vector<GroupMember>& members,
                                                 const std::map<std::string, int32_t>& subscribed) {
  std::vector<TopicPartitionId> unowned;
  for (const auto& [topic, count] : subscribed)
    for (int32_t partition = 0; partition < count; ++partition) {
      const TopicPartitionId id{topic, partition};
      bool owned = false;
      for (const GroupMember& member : members) owned = owned || member.owned.contains(id);
      if (!owned) unowned.push_back(id);
    }
  return unowned;
}

std::set<std::string> CoverageWatch::check(const std::vector<TopicPartitionId>& unowned) {
  if (unowned.empty() || unowned != seen_) {
    seen_ = unowned;
    times_ = unowned.empty() ? 0 : 1;
  } else {
    ++times_;
  }
  std::set<std::string> topics;
  if (times_ < checks_) return topics;
  for (const auto& [topic, partition] : unowned) topics.insert(topic);
  rebalanced();
  return topics;
}

}  // namespace rill::runtime
