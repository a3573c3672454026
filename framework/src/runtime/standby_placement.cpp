#include "runtime/standby_placement.h"

#include <algorithm>

namespace rill::runtime {

std::map<TopicPartitionId, std::string> predict_heirs(
    const std::vector<GroupMember>& members, const std::string& dead,
    const std::map<std::string, int32_t>& subscribed) {
  std::map<std::string, std::size_t> load;  // survivors, in member-id order
  std::set<TopicPartitionId> owned;
  for (const GroupMember& member : members) {
    if (member.id == dead) continue;
    load[member.id] = member.owned.size();
    owned.insert(member.owned.begin(), member.owned.end());
  }
  std::map<TopicPartitionId, std::string> heirs;
  if (load.empty()) return heirs;
  for (auto topic = subscribed.rbegin(); topic != subscribed.rend(); ++topic)
    for (int32_t partition = topic->second - 1; partition >= 0; --partition) {
      const TopicPartitionId orphan{topic->first, partition};
      if (owned.contains(orphan)) continue;
      // The first of the least loaded: std::min_element keeps the first of
      // equals, and the map is in member-id order.
      auto heir = std::min_element(load.begin(), load.end(), [](const auto& a, const auto& b) {
        return a.second < b.second;
      });
      heirs[orphan] = heir->first;
      ++heir->second;
    }
  return heirs;
}

std::map<std::string, std::set<TaskId>> place_standbys(
    const std::vector<GroupMember>& members, const std::map<std::string, int32_t>& subscribed,
    const std::map<std::string, int32_t>& stateful, std::size_t replicas) {
  std::map<std::string, std::set<TaskId>> standbys;
  std::vector<std::string> ids;
  for (const GroupMember& member : members) {
    standbys[member.id];
    ids.push_back(member.id);
  }
  std::sort(ids.begin(), ids.end());
  replicas = std::min(replicas, ids.empty() ? 0 : ids.size() - 1);
  if (replicas == 0) return standbys;
  for (const GroupMember& owner : members) {
    // Only the partitions this member would leave behind matter to it.
    std::map<TopicPartitionId, std::string> heirs;
    bool predicted = false;
    const auto at =
        static_cast<std::size_t>(std::find(ids.begin(), ids.end(), owner.id) - ids.begin());
    for (const auto& [topic, partition] : owner.owned) {
      auto sub = stateful.find(topic);
      if (sub == stateful.end()) continue;
      if (!predicted) {
        heirs = predict_heirs(members, owner.id, subscribed);
        predicted = true;
      }
      const TaskId task{sub->second, partition};
      std::set<std::string> holders;
      if (auto heir = heirs.find({topic, partition}); heir != heirs.end())
        holders.insert(heir->second);
      for (std::size_t k = 1; holders.size() < replicas && k < ids.size(); ++k)
        holders.insert(ids[(at + k) % ids.size()]);
      for (const std::string& holder : holders) standbys[holder].insert(task);
    }
  }
  return standbys;
}

}  // namespace rill::runtime
