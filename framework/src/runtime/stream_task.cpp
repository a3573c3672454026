#include "runtime/stream_task.h"

#include <algorithm>
#include <typeinfo>

#include "log/log.h"
#include "runtime/global_state_manager.h"

namespace rill::runtime {
namespace {

// How often, at most, a task sums up the records its processors dropped.
constexpr int64_t kDropSummaryIntervalMs = 60'000;

}  // namespace

StreamTask::StreamTask(const Topology& topology, TaskId id, std::string application_id,
                       internal::RecordCollector& collector, ErrorHandling& errors, Clock clock,
                       state::StateManager* state)
    : topology_(topology),
      id_(id),
      application_id_(std::move(application_id)),
      collector_(collector),
      errors_(errors),
      clock_(std::move(clock)),
      state_(state) {}

StreamTask::~StreamTask() {
  if (initialized_) {
    try {
      close();
    } catch (...) {
      // A destructor must not throw; close() already reported what failed.
    }
  }
}

void StreamTask::build_nodes() {
  if (!nodes_.empty()) return;
  const auto& sub = topology_.subtopologies().at(static_cast<std::size_t>(id_.subtopology));
  std::map<std::string, internal::ProcessorNode*> by_name;
  for (const std::string& name : sub.nodes) {
    const Topology::Node& spec = topology_.node(name);
    nodes_.push_back(spec.factory());
    internal::ProcessorNode* instance = nodes_.back().get();
    if (metrics_ != nullptr)
      instance->count_records_in(metrics_->processor_records[nodes_.size() - 1].raw());
    by_name[name] = instance;
    for (const std::string& parent : spec.parents) by_name.at(parent)->add_child(instance);
    if (spec.kind == Topology::NodeKind::kSource)
      for (const TopicRef& topic : spec.topics)
        sources_[topic.full_name(application_id_)] =
            static_cast<internal::SourceNodeBase*>(instance);
  }
  if (errors_.has_dead_letter_topic())
    dead_letter_topic_ = collector_.register_topic(errors_.dead_letter_topic());
}

void StreamTask::init() {
  build_nodes();
  // Children are initialized before parents, so no node forwards to a child
  // that is not ready (a processor may forward from init()).
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) (*it)->init(*this);
  initialized_ = true;
}

void StreamTask::close() {
  if (!initialized_) return;
  initialized_ = false;
  log_drop_summary(clock_());
  std::string first_error;
  for (auto& node : nodes_) {
    try {
      node->close();
    } catch (const std::exception& e) {
      if (first_error.empty()) first_error = "closing node '" + node->name() + "': " + e.what();
    }
  }
  if (!first_error.empty()) throw FatalError("task " + id_.to_string() + ": " + first_error);
}

internal::SourceNodeBase* StreamTask::source_for(const std::string& topic) const {
  auto it = sources_.find(topic);
  return it == sources_.end() ? nullptr : it->second;
}

void StreamTask::on_record_timestamp(int64_t timestamp) {
  if (timestamp > stream_time_) stream_time_ = timestamp;
}

void StreamTask::process(internal::SourceNodeBase& source, const internal::RawRecord& record) {
  metadata_ = record.metadata;
  try {
    source.process_raw(record);
  } catch (const internal::DeserializationError& e) {
    errors_.handle(ErrorKind::kDeserialization, record, "DeserializationError", e.what(),
                   collector_, dead_letter_topic_);
  } catch (const FatalError&) {
    throw;
  } catch (const TaskCorruptedError&) {
    throw;  // the producer's trouble, not the record's
  } catch (const RecordError& e) {
    errors_.handle(ErrorKind::kProcessing, record, "RecordError", e.what(), collector_,
                   dead_letter_topic_, e.handling());
  } catch (const std::exception& e) {
    errors_.handle(ErrorKind::kProcessing, record, internal::demangle(typeid(e)), e.what(),
                   collector_, dead_letter_topic_);
  }
  metadata_.reset();
  ++processed_;
  run_due(PunctuationType::kStreamTime, stream_time_);
}

void StreamTask::punctuate_wall_clock(int64_t now) {
  run_due(PunctuationType::kWallClockTime, now);
}

Cancellable StreamTask::schedule(std::chrono::milliseconds interval, PunctuationType type,
                                 std::function<void(int64_t)> punctuate) {
  if (interval.count() < 1)
    throw std::invalid_argument("punctuation interval must be at least 1 ms");
  auto cancelled = std::make_shared<bool>(false);
  // Stream-time punctuations first fire with the first record, as in Kafka
  // Streams; wall-clock ones one interval from now.
  int64_t first = type == PunctuationType::kStreamTime ? 0 : clock_() + interval.count();
  punctuations_.push_back({type, interval.count(), first, std::move(punctuate), cancelled});
  int64_t& next_due = next_due_[static_cast<std::size_t>(type)];
  next_due = std::min(next_due, first);
  return Cancellable(cancelled);
}

void StreamTask::fire_due(PunctuationType type, int64_t now) {
  // Index loop: a punctuation may schedule another one, growing the vector.
  for (std::size_t i = 0; i < punctuations_.size(); ++i) {
    if (punctuations_[i].type != type || *punctuations_[i].cancelled || now < punctuations_[i].next)
      continue;
    // After a jump in time, fire once and stay on the schedule's grid, as
    // Kafka Streams does: the next time is the first multiple past `now`.
    Punctuation& due = punctuations_[i];
    due.next += ((now - due.next) / due.interval + 1) * due.interval;
    auto callback = punctuations_[i].callback;
    callback(now);
  }
  std::erase_if(punctuations_, [](const Punctuation& p) { return *p.cancelled; });
  refresh_next_due();
}

void StreamTask::refresh_next_due() {
  next_due_.fill(kNever);
  for (const Punctuation& punctuation : punctuations_) {
    int64_t& next_due = next_due_[static_cast<std::size_t>(punctuation.type)];
    if (!*punctuation.cancelled) next_due = std::min(next_due, punctuation.next);
  }
}

StateStore* StreamTask::state_store(const internal::ProcessorNode& node, std::string_view name) {
  // Global stores are readable by every processor, as in Kafka Streams.
  if (globals_ != nullptr && topology_.is_global_store(name)) {
    auto it = global_views_.find(name);
    if (it == global_views_.end())
      it = global_views_.emplace(std::string(name), globals_->task_view(name)).first;
    return it->second.get();
  }
  if (state_ == nullptr) return nullptr;
  const auto& connected = topology_.node(node.name()).stores;
  if (std::find(connected.begin(), connected.end(), name) == connected.end()) return nullptr;
  return state_->get(name);
}

void StreamTask::record_dropped(std::string_view reason) {
  ++dropped_;
  if (metrics_ != nullptr) metrics_->dropped.add();
  auto drops = std::find_if(drops_.begin(), drops_.end(),
                            [&](const Drops& known) { return known.reason == reason; });
  if (drops != drops_.end()) {
    ++drops->since_summary;
    // The task id is formatted only when debug lines are written.
    if (metadata_ && log::get().should_log(spdlog::level::debug))
      log::get().debug("task {}: dropped the record at {}-{} offset {}: {}", id_.to_string(),
                       metadata_->topic, metadata_->partition, metadata_->offset, reason);
    if (const int64_t now = clock_(); now - last_drop_summary_ms_ >= kDropSummaryIntervalMs)
      log_drop_summary(now);
    return;
  }
  drops_.push_back({std::string(reason), 0});
  if (drops_.size() == 1) last_drop_summary_ms_ = clock_();
  if (metadata_)
    log::get().info(
        "task {}: dropped the record at {}-{} offset {}: {}; drops are counted "
        "(rill_dropped_records_total) and summed up here at most once a minute",
        id_.to_string(), metadata_->topic, metadata_->partition, metadata_->offset, reason);
  else
    log::get().info(
        "task {}: dropped a record: {}; drops are counted (rill_dropped_records_total) and "
        "summed up here at most once a minute",
        id_.to_string(), reason);
}

void StreamTask::log_drop_summary(int64_t now) {
  uint64_t total = 0;
  std::string by_reason;
  for (Drops& drops : drops_) {
    if (drops.since_summary == 0) continue;
    total += drops.since_summary;
    by_reason +=
        (by_reason.empty() ? "" : ", ") + std::to_string(drops.since_summary) + " " + drops.reason;
    drops.since_summary = 0;
  }
  if (total > 0)
    log::get().info("task {}: dropped {} more records in the last {} s ({})", id_.to_string(),
                    total, (now - last_drop_summary_ms_) / 1000, by_reason);
  last_drop_summary_ms_ = now;
}

bool StreamTask::take_commit_request() {
  return commit_requested_.exchange(false, std::memory_order_relaxed);
}

}  // namespace rill::runtime
