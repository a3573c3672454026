// Sizing the topics of a built topology: repartition topics after the
// sub-topologies that write them, co-partitioned sources made equal or refused,
// changelogs after their tasks. Kafka Streams does the same in its
// RepartitionTopics and CopartitionedTopicsEnforcer.
#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "rill/topology.h"

namespace rill {

namespace {

std::string list_counts(const std::map<std::string, int32_t>& counts) {
  std::string text;
  for (const auto& [topic, partitions] : counts)
    text += (text.empty() ? "" : ", ") + topic + " (" + std::to_string(partitions) + ")";
  return text;
}

}  // namespace

int32_t Topology::task_count(const Subtopology& sub, std::string_view application_id,
                             const std::map<std::string, int32_t>& counts) {
  int32_t tasks = 0;
  for (const TopicRef& topic : sub.source_topics)
    if (auto it = counts.find(topic.full_name(application_id)); it != counts.end())
      tasks = std::max(tasks, it->second);
  return tasks;
}

std::map<std::string, int32_t> Topology::partition_counts(
    std::string_view application_id, const std::map<std::string, int32_t>& existing) const {
  if (!built_) throw TopologyError("partition counts are known only after build()");
  std::map<std::string, int32_t> counts;
  for (const Subtopology& sub : subtopologies_)
    for (const TopicRef& topic : sub.source_topics) {
      const std::string name = topic.full_name(application_id);
      if (auto it = existing.find(name); it != existing.end())
        counts[name] = it->second;
      else if (!topic.internal)
        throw TopologyError("source topic '" + name + "' does not exist");
    }

  // What writes each repartition topic that does not exist yet.
  std::map<std::string, std::pair<const Subtopology*, std::optional<int32_t>>> writers;
  for (const Subtopology& sub : subtopologies_)
    for (const std::string& name : sub.nodes) {
      const Node& node = this->node(name);
      if (node.kind != NodeKind::kSink || !node.topics.front().internal) continue;
      const std::string topic = node.topics.front().full_name(application_id);
      if (!counts.contains(topic)) writers[topic] = {&sub, node.partitions};
    }

  // Counts that nothing may change: existing topics, and those the topology
  // fixes (a repartition with a partition count given).
  std::set<std::string> fixed;
  for (const auto& [topic, partitions] : counts) fixed.insert(topic);
  for (const auto& [topic, writer] : writers)
    if (writer.second) {
      counts[topic] = *writer.second;
      fixed.insert(topic);
    }

  // A repartition topic takes the partition count of the sub-topology that
  // writes it, which may itself read a repartition topic: resolve in rounds.
  // Then the sources that meet in a stateful sub-topology must agree: those
  // whose count is fixed must be equal, and the repartition topics among them
  // take that count (or the largest of the group's). A count a group sets is
  // pinned, and the rounds run again for the sub-topologies downstream.
  std::set<std::string> pinned;
  for (std::size_t pass = 0; pass <= subtopologies_.size() + 1; ++pass) {
    for (auto& [topic, writer] : writers)
      if (!fixed.contains(topic) && !pinned.contains(topic)) counts.erase(topic);
    while (true) {
      for (std::size_t round = 0; round <= subtopologies_.size(); ++round)
        for (auto& [topic, writer] : writers) {
          if (counts.contains(topic)) continue;
          bool known = true;
          for (const TopicRef& source : writer.first->source_topics)
            known = known && counts.contains(source.full_name(application_id));
          if (known) counts[topic] = task_count(*writer.first, application_id, counts);
        }
      // Sub-topologies that read each other's topics (a foreign-key join's
      // subscriptions and answers) wait for each other: one of the topics
      // takes the count of the sources its writer knows, and co-partitioning
      // below corrects it.
      bool guessed = false;
      for (auto& [topic, writer] : writers) {
        if (counts.contains(topic)) continue;
        const int32_t known = task_count(*writer.first, application_id, counts);
        if (known == 0) continue;
        counts[topic] = known;
        guessed = true;
        break;
      }
      if (!guessed) break;
    }
    for (const auto& [topic, writer] : writers)
      if (!counts.contains(topic))
        throw TopologyError("cannot size internal topic '" + topic +
                            "': the sub-topologies that write it form a cycle");

    bool changed = false;
    for (const Subtopology& sub : subtopologies_) {
      if (sub.stores.empty() || sub.source_topics.size() < 2) continue;
      std::map<std::string, int32_t> fixed_counts;
      int32_t largest = 0;
      for (const TopicRef& source : sub.source_topics) {
        const std::string name = source.full_name(application_id);
        largest = std::max(largest, counts.at(name));
        if (fixed.contains(name)) fixed_counts[name] = counts.at(name);
      }
      int32_t agreed = largest;
      if (!fixed_counts.empty()) {
        agreed = fixed_counts.begin()->second;
        for (const auto& [topic, partitions] : fixed_counts)
          if (partitions != agreed)
            throw TopologyError(
                "Invalid topology: the following topics do not have the same number of "
                "partitions: " +
                list_counts(fixed_counts) + "; they meet in sub-topology " +
                std::to_string(sub.id) +
                ", whose state needs partition p of each in one task (co-partitioning)");
      }
      for (const TopicRef& source : sub.source_topics) {
        const std::string name = source.full_name(application_id);
        if (fixed.contains(name) || counts.at(name) == agreed) continue;
        counts[name] = agreed;
        pinned.insert(name);
        changed = true;
      }
    }
    if (!changed) break;
  }

  for (const Subtopology& sub : subtopologies_) {
    const int32_t tasks = task_count(sub, application_id, counts);
    for (const std::string& store : sub.stores) {
      const StoreSpec& spec = this->store(store).spec();
      if (spec.logging_enabled) counts[spec.changelog_topic(application_id)] = tasks;
    }
  }
  return counts;
}

}  // namespace rill
