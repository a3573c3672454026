#include "reset.h"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <stdexcept>

#include "kafka/admin.h"
#include "kafka/consumer.h"
#include "kafka/group.h"
#include "kafka/handles.h"
#include "state/state_directory.h"

namespace rill::cli {
namespace {

constexpr std::chrono::seconds kClusterTimeout{10};

std::string utc_time(int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  char millis[8];
  std::snprintf(millis, sizeof millis, ".%03dZ", static_cast<int>(ms % 1000));
  return std::string(text) + millis;
}

bool is_internal_name(const std::string& topic, const std::string& application_id) {
  return topic.starts_with(application_id + "-") &&
         (topic.ends_with("-changelog") || topic.ends_with("-repartition"));
}

struct Move {
  kafka::TopicPartition partition;
  int64_t committed = -1;  // negative: nothing committed
  std::string note;
};

// Where each input partition goes, with a note where the target is not
// what was asked (before the log's start, past its end).
std::vector<Move> plan_moves(rd_kafka_t* client, kafka::Consumer& group, const ResetPlan& plan,
                             const std::map<std::string, int32_t>& topics) {
  std::vector<std::pair<std::string, int32_t>> partitions;
  for (const std::string& topic : plan.input_topics)
    for (int32_t p = 0; p < topics.at(topic); ++p) partitions.emplace_back(topic, p);
  const auto bounds = kafka::watermarks(client, partitions, kClusterTimeout);
  std::vector<kafka::TopicPartition> asked;
  for (const auto& [topic, p] : partitions) asked.push_back({topic, p});
  const auto committed = group.committed(asked, kClusterTimeout);
  std::vector<int64_t> by_time;
  if (plan.target == ResetPlan::Target::kTime)
    by_time = kafka::offsets_for_time(client, partitions, plan.timestamp_ms, kClusterTimeout);

  std::vector<Move> moves;
  for (std::size_t i = 0; i < partitions.size(); ++i) {
    const auto [low, high] = bounds[i];
    Move move{{partitions[i].first, partitions[i].second, low}, committed[i].offset, ""};
    switch (plan.target) {
      case ResetPlan::Target::kEarliest:
        break;
      case ResetPlan::Target::kTime:
        move.partition.offset = std::max(by_time[i], low);
        if (move.partition.offset == low && high > low)
          move.note = "no record before " + utc_time(plan.timestamp_ms) +
                      " is left in the log: from the earliest offset";
        else if (move.partition.offset == high)
          move.note = "no record at or after " + utc_time(plan.timestamp_ms) + ": to the end";
        break;
      case ResetPlan::Target::kOffset:
        move.partition.offset = std::clamp(plan.offset, low, high);
        if (plan.offset < low)
          move.note = "offset " + std::to_string(plan.offset) +
                      " is before the log's start: from the earliest offset";
        else if (plan.offset > high)
          move.note = "offset " + std::to_string(plan.offset) + " is past the end: to the end";
        break;
    }
    moves.push_back(std::move(move));
  }
  return moves;
}

std::string target_name(const ResetPlan& plan) {
  switch (plan.target) {
    case ResetPlan::Target::kEarliest:
      return "the earliest offsets";
    case ResetPlan::Target::kTime:
      return "the first records at or after " + utc_time(plan.timestamp_ms);
    case ResetPlan::Target::kOffset:
      return "offset " + std::to_string(plan.offset);
  }
  return "";
}

}  // namespace

int reset_application(const ResetPlan& plan, std::ostream& out, std::ostream& err) {
  const std::string& id = plan.application_id;
  auto properties = plan.client_properties;
  properties["bootstrap.servers"] = plan.bootstrap_servers;
  properties["log_level"] = "3";
  const kafka::KafkaPtr client =
      kafka::make_client(RD_KAFKA_PRODUCER, kafka::make_conf(properties));
  std::map<std::string, int32_t> topics;
  try {
    topics = kafka::topic_partitions(client.get(), kClusterTimeout);
  } catch (const std::runtime_error& e) {
    err << "rill reset: cannot reach the cluster at " << plan.bootstrap_servers << ": " << e.what()
        << "\n";
    return 1;
  }

  // A live member would go on from the offsets it holds, and write the
  // internal topics again as they are deleted.
  const auto members = kafka::describe_group(client.get(), id, kClusterTimeout);
  if (!members) {
    err << "rill reset: cannot describe the group '" << id << "' on " << plan.bootstrap_servers
        << "\n";
    return 1;
  }
  if (!members->empty()) {
    err << "rill reset: application '" << id << "' still runs: its group has " << members->size()
        << " live member(s):";
    for (const auto& member : *members) err << " " << member.client_id << "@" << member.host;
    err << "; stop every instance first\n";
    return 1;
  }

  for (const std::string& topic : plan.input_topics) {
    if (!topics.contains(topic)) {
      err << "rill reset: input topic '" << topic << "' does not exist on "
          << plan.bootstrap_servers << "\n";
      return 1;
    }
  }
  std::set<std::string> internal;
  for (const auto& [topic, partitions] : topics)
    if (plan.internal_topics.contains(topic) || is_internal_name(topic, id)) internal.insert(topic);

  properties["group.id"] = id;
  properties["enable.auto.commit"] = "false";
  const kafka::KafkaPtr consumer =
      kafka::make_client(RD_KAFKA_CONSUMER, kafka::make_conf(properties));
  const auto group = kafka::consumer_of(consumer.get());
  std::vector<Move> moves;
  try {
    moves = plan_moves(client.get(), *group, plan, topics);
  } catch (const std::exception& e) {
    err << "rill reset: " << e.what() << "\n";
    return 1;
  }
  const bool committed_any =
      std::any_of(moves.begin(), moves.end(), [](const Move& move) { return move.committed >= 0; });
  if (!committed_any && internal.empty() &&
      !(plan.local_state && std::filesystem::exists(*plan.local_state))) {
    err << "rill reset: no application '" << id << "' on " << plan.bootstrap_servers
        << ": its group committed no offsets of the input topics and it has no internal topics\n";
    return 1;
  }

  out << "rill reset: application '" << id << "' on " << plan.bootstrap_servers
      << (plan.dry_run ? " (dry run: nothing is changed)" : "") << "\n";
  out << "  input offsets, to " << target_name(plan) << ":\n";
  for (const Move& move : moves) {
    out << "    " << move.partition.to_string() << ": "
        << (move.committed >= 0 ? std::to_string(move.committed) : "none") << " -> "
        << move.partition.offset << (move.note.empty() ? "" : " (" + move.note + ")") << "\n";
  }
  out << "  internal topics to delete:" << (internal.empty() ? " none" : "") << "\n";
  for (const std::string& topic : internal) out << "    " << topic << "\n";
  if (plan.local_state)
    out << "  local state to delete: " << plan.local_state->string()
        << (std::filesystem::exists(*plan.local_state) ? "" : " (absent)") << "\n";
  if (plan.dry_run) return 0;

  try {
    std::vector<kafka::TopicPartition> offsets;
    for (const Move& move : moves) offsets.push_back(move.partition);
    if (!offsets.empty()) group->commit(offsets);
    kafka::delete_topics(client.get(), {internal.begin(), internal.end()}, kClusterTimeout);
  } catch (const std::exception& e) {
    err << "rill reset: " << e.what() << "\n";
    return 1;
  }
  try {
    if (plan.local_state) state::delete_local_state(*plan.local_state);
  } catch (const std::exception& e) {
    err << "rill reset: " << e.what() << "\n";
    return 1;
  }
  out << "rill reset: done; the next run of '" << id << "' starts from these offsets\n";
  return 0;
}

}  // namespace rill::cli
