// Whether the group's assignment covers every partition it subscribes to.
//
// librdkafka 2.0.2's group leader assigns from a metadata request of its own,
// which the cluster may answer from a broker that has not yet heard of a topic
// just created (an internal topic at an application's first start, right after
// a broker restarted). The assignment then leaves that topic out, and nothing
// looks at it again: the leader's view of the subscription never changed, so
// no metadata refresh makes the group rebalance. The sub-topology that reads
// the topic waits for the next rebalance, however long that takes. Each
// instance describes the group now and then, and one that finds partitions no
// member owns for a while makes the group assign again.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "runtime/standby_placement.h"

namespace rill::runtime {

// The partitions of `subscribed` (topic -> partition count) that no member owns.
std::vector<TopicPartitionId> unowned_partitions(const std::vector<GroupMember>& members,
                                                 const std::map<std::string, int32_t>& subscribed);

// Watches the group's coverage across checks: a gap counts once the same
// partitions have been unowned in `checks` checks in a row with no rebalance
// of this instance between them (a rebalance under way leaves partitions
// unowned for a moment).
class CoverageWatch {
 public:
  explicit CoverageWatch(int checks) : checks_(checks) {}

  // This instance took part in a rebalance: what was seen before is moot.
  void rebalanced() {
    seen_.clear();
    times_ = 0;
  }
  // The topics to leave out of the subscription once, so that the group
  // assigns again: those of the partitions unowned in this check and the
  // checks before it. Empty while there is no lasting gap.
  std::set<std::string> check(const std::vector<TopicPartitionId>& unowned);

 private:
  int checks_;
  std::vector<TopicPartitionId> seen_;
  int times_ = 0;
};

}  // namespace rill::runtime
