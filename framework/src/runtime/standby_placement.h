// Where standby replicas go: on the instance the group will give a task to
// when its owner dies, so that a failover restores only the changelog's tail.
//
// librdkafka 2.0.2 runs no custom assignor, so rill cannot place tasks and
// standbys together as Kafka Streams' assignor does. It predicts instead:
// with every member subscribed to the same topics and the group balanced
// (every member within one partition of the others), cooperative-sticky gives
// a dead member's partitions, the last topic first and each topic's highest
// partition first, one by one to the survivor holding the fewest partitions,
// the smallest member id on a tie (rdkafka_sticky_assignor.c: balance(),
// assignPartition(), sort_by_map_elem_val_toppar_list_cnt), and moves nothing
// else. Every instance sees the members and their assignments through
// DescribeConsumerGroups, so each derives the same placement.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "rill/processor.h"

namespace rill::runtime {

using TopicPartitionId = std::pair<std::string, int32_t>;

struct GroupMember {
  std::string id;
  std::set<TopicPartitionId> owned;
};

// The member each partition of `dead` goes to when it dies. `subscribed` holds
// the group's topics and their partition counts; the topics are taken in
// name order, the order librdkafka asks the broker for their metadata in.
std::map<TopicPartitionId, std::string> predict_heirs(
    const std::vector<GroupMember>& members, const std::string& dead,
    const std::map<std::string, int32_t>& subscribed);

// The standby tasks of each member: for each partition of a stateful
// sub-topology's driving topic (`stateful`: topic -> sub-topology id),
// `replicas` copies, the first on the member predicted to inherit it, the
// others on the members that follow its owner in member-id order. Never on
// the owner, and at most one copy per member.
std::map<std::string, std::set<TaskId>> place_standbys(
    const std::vector<GroupMember>& members, const std::map<std::string, int32_t>& subscribed,
    const std::map<std::string, int32_t>& stateful, std::size_t replicas);

}  // namespace rill::runtime
