// A StreamTask runs one sub-topology for one partition: it owns the node
// instances, stream time and punctuations, and turns errors into the
// configured handler's decision. The runtime and the test driver both run
// records through it; it knows nothing of librdkafka.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rill/topology.h"

#include "metrics/task_metrics.h"
#include "runtime/error_handling.h"
#include "state/state_manager.h"

namespace rill::runtime {

class GlobalStateManager;

class StreamTask final : public internal::TaskContext {
 public:
  using Clock = std::function<int64_t()>;

  // `state` holds the task's opened stores (nullptr when it has none).
  StreamTask(const Topology& topology, TaskId id, std::string application_id,
             internal::RecordCollector& collector, ErrorHandling& errors, Clock clock,
             state::StateManager* state = nullptr);
  ~StreamTask() override;

  // Where the nodes count their records and the task its drops; set before
  // build_nodes(). Without it the task records nothing.
  void record_into(metrics::TaskMetrics* metrics) { metrics_ = metrics; }
  // Where processors find the global stores, read-only; set before init().
  void use_global_stores(const GlobalStateManager* globals) { globals_ = globals; }
  // Creates the node instances (so source_for() works), without initializing
  // them; init() does both when needed.
  void build_nodes();
  // Initializes the nodes: processors' init() runs here.
  void init();
  // Closes the nodes; the task cannot process afterwards.
  void close();

  // The source node reading `topic` (full name), or nullptr; resolved once per
  // partition so that processing does no lookup by name.
  internal::SourceNodeBase* source_for(const std::string& topic) const;
  // Processes one record; returns when the record and everything it caused are
  // done, after running stream-time punctuations it made due. Throws FatalError
  // when a handler decides to fail.
  void process(internal::SourceNodeBase& source, const internal::RawRecord& record);
  // Runs the wall-clock punctuations due at `now`.
  void punctuate_wall_clock(int64_t now);

  // True once since the last call when a processor asked for a commit.
  bool take_commit_request();
  uint64_t processed() const { return processed_; }
  // Records processors dropped on purpose (late, null key), since creation.
  uint64_t dropped() const { return dropped_; }

  // internal::TaskContext
  std::string_view application_id() const override { return application_id_; }
  TaskId task_id() const override { return id_; }
  std::optional<RecordMetadata> record_metadata() const override { return metadata_; }
  int64_t stream_time() const override { return stream_time_; }
  int64_t system_time() const override { return clock_(); }
  Cancellable schedule(std::chrono::milliseconds interval, PunctuationType type,
                       std::function<void(int64_t)> punctuate) override;
  void request_commit() override { commit_requested_.store(true, std::memory_order_relaxed); }
  StateStore* state_store(const internal::ProcessorNode& node, std::string_view name) override;
  void record_dropped(std::string_view reason) override;
  internal::RecordCollector& collector() override { return collector_; }
  void on_record_timestamp(int64_t timestamp) override;

 private:
  struct Punctuation {
    PunctuationType type;
    int64_t interval;
    int64_t next;
    std::function<void(int64_t)> callback;
    std::shared_ptr<bool> cancelled;
  };
  // Runs the punctuations of `type` due at `now`. Inline: it follows every
  // record, and most records fall before the next one.
  void run_due(PunctuationType type, int64_t now) {
    if (now >= 0 && now >= next_due_[static_cast<std::size_t>(type)]) fire_due(type, now);
  }
  void fire_due(PunctuationType type, int64_t now);
  // Sets next_due_ from the punctuations not cancelled.
  void refresh_next_due();
  // Logs the drops since the last summary, by reason, if there were any.
  void log_drop_summary(int64_t now);

  const Topology& topology_;
  TaskId id_;
  std::string application_id_;
  internal::RecordCollector& collector_;
  ErrorHandling& errors_;
  Clock clock_;
  state::StateManager* state_;
  const GlobalStateManager* globals_ = nullptr;
  // This task's views of the global stores it asked for: its own typed
  // stores, since their serialization buffers cannot be shared between tasks.
  std::map<std::string, std::unique_ptr<StateStore>, std::less<>> global_views_;
  metrics::TaskMetrics* metrics_ = nullptr;
  int dead_letter_topic_ = -1;

  std::vector<std::unique_ptr<internal::ProcessorNode>> nodes_;
  std::map<std::string, internal::SourceNodeBase*> sources_;
  std::vector<Punctuation> punctuations_;
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
  // The earliest time a punctuation of each type (by PunctuationType) is due,
  // or never.
  std::array<int64_t, 2> next_due_{kNever, kNever};
  std::optional<RecordMetadata> metadata_;
  int64_t stream_time_ = -1;
  // Set by the task's worker, taken by the polling thread while the task may
  // be running.
  std::atomic<bool> commit_requested_{false};
  bool initialized_ = false;
  uint64_t processed_ = 0;
  uint64_t dropped_ = 0;
  // Drops by reason. A drop is right (a late record, one without a key) and
  // so never a warning, but it must not go unseen: the first of each reason
  // is logged at info, then a summary at most once a minute, and at close.
  struct Drops {
    std::string reason;
    uint64_t since_summary = 0;
  };
  std::vector<Drops> drops_;
  int64_t last_drop_summary_ms_ = 0;
};

}  // namespace rill::runtime
