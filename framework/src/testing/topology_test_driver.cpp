// The in-process runner behind TopologyTestDriver: one StreamTask per
// sub-topology (partition 0) and a collector that keeps what sinks write.
#include <deque>
#include <filesystem>

#include <stdlib.h>

#include "rill/test_driver.h"

#include "runtime/global_state_manager.h"
#include "runtime/stream_task.h"
#include "state/caching_stores.h"

namespace rill {
namespace {

StreamsConfig with_test_defaults(StreamsConfig config) {
  if (!config.contains(config::kApplicationId))
    config.set(std::string(config::kApplicationId), "test-driver");
  if (!config.contains(config::kBootstrapServers))
    config.set(std::string(config::kBootstrapServers), "test-driver:9092");
  config.validate();
  return config;
}

}  // namespace

struct TopologyTestDriver::Impl final : internal::RecordCollector {
  Impl(Topology topology_in, StreamsConfig config_in, int64_t clock)
      : topology(std::move(topology_in)),
        config(with_test_defaults(std::move(config_in))),
        application_id(config.get_string(config::kApplicationId)),
        errors(config),
        wall_clock(clock) {
    topology.build();
    globals = std::make_unique<runtime::GlobalStateManager>(
        topology, application_id, state_directory.path / "global", nullptr, errors, this,
        [this] { return wall_clock; });
    globals->open();
    for (const auto& sub : topology.subtopologies()) {
      TaskId id{sub.id, 0};
      states.push_back(std::make_unique<state::StateManager>(
          topology, sub, id, application_id, state_directory.path / id.to_string(), nullptr));
      tasks.push_back(std::make_unique<runtime::StreamTask>(
          topology, id, application_id, *this, errors, [this] { return wall_clock; },
          states.back().get()));
      runtime::StreamTask* task = tasks.back().get();
      task->use_global_stores(globals.get());
      states.back()->open(
          this, [task] { return task->stream_time(); }, &cache_budget);
    }
    for (auto& task : tasks) task->init();
  }

  ~Impl() override {
    // Processors close before their stores, stores before their directory goes.
    for (auto& task : tasks) task->close();
    for (auto& state : states) state->close(false);
    global_views.clear();
    globals->close(false);
  }

  int register_topic(const std::string& topic) override {
    for (std::size_t i = 0; i < topic_names.size(); ++i)
      if (topic_names[i] == topic) return static_cast<int>(i);
    topic_names.push_back(topic);
    return static_cast<int>(topic_names.size() - 1);
  }
  int32_t partition_count(int) override { return 1; }
  void send(int topic, int32_t partition, NullableBytes key, NullableBytes value, int64_t timestamp,
            const Headers& headers) override {
    CapturedRecord record{key ? std::optional<std::string>(*key) : std::nullopt,
                          value ? std::optional<std::string>(*value) : std::nullopt, timestamp,
                          headers, partition};
    const std::string& name = topic_names[static_cast<std::size_t>(topic)];
    if (consumed(name)) pending.emplace_back(name, record);
    outputs[name].push_back(std::move(record));
  }

  void send_changelog(int topic, int32_t partition, NullableBytes key, NullableBytes value,
                      int64_t timestamp, std::atomic<int64_t>* delivered_offset) override {
    const std::string& name = topic_names[static_cast<std::size_t>(topic)];
    delivered_offset->store(static_cast<int64_t>(outputs[name].size()));
    send(topic, partition, key, value, timestamp, {});
  }

  std::atomic<int64_t>& acknowledged_offset(int topic, int32_t partition) override {
    return acknowledged.try_emplace({topic, partition}, -1).first->second;
  }
  std::map<std::pair<int, int32_t>, std::atomic<int64_t>> acknowledged;

  StateStore* find_store(const std::string& name) {
    if (topology.is_global_store(name)) {
      auto it = global_views.find(name);
      if (it == global_views.end()) it = global_views.emplace(name, globals->task_view(name)).first;
      return it->second.get();
    }
    for (const auto& state : states)
      if (StateStore* store = state->get(name)) return store;
    return nullptr;
  }

  bool consumed(const std::string& topic) const {
    if (globals->reads(topic)) return true;
    for (const auto& task : tasks)
      if (task->source_for(topic) != nullptr) return true;
    return false;
  }

  void process(const std::string& topic, const CapturedRecord& record) {
    internal::RawRecord raw;
    if (record.key) raw.key = *record.key;
    if (record.value) raw.value = *record.value;
    raw.timestamp = record.timestamp;
    raw.headers = &record.headers;
    // A global store's topic updates the store at once, as the global thread
    // would before the tasks read it.
    if (globals->reads(topic)) {
      raw.metadata = {topic, 0, offsets[topic]++};
      globals->process(raw);
      return;
    }
    for (auto& task : tasks) {
      internal::SourceNodeBase* source = task->source_for(topic);
      if (source == nullptr) continue;
      raw.metadata = {topic, 0, offsets[topic]++};
      task->process(*source, raw);
      return;
    }
    throw std::invalid_argument("the topology does not read topic '" + topic + "'");
  }

  // Like Kafka Streams' test driver, a commit after every input record: record
  // caches hand on their entries, so each input's results can be read at once.
  // What the flush sends through internal topics is processed, and flushed in
  // turn (a foreign-key join's subscriptions and answers).
  void commit() {
    while (true) {
      for (auto& state : states) state->flush();
      if (pending.empty()) return;
      drain_pending();
    }
  }

  // Records written to topics the topology reads are processed in the order
  // they were written, as a broker would deliver them.
  void drain_pending() {
    while (!pending.empty()) {
      auto [topic, record] = std::move(pending.front());
      pending.pop_front();
      process(topic, record);
    }
  }

  // A fresh directory per driver for persistent stores, removed at the end.
  struct TemporaryDirectory {
    TemporaryDirectory() {
      std::string pattern =
          (std::filesystem::temp_directory_path() / "rill-test-driver-XXXXXX").string();
      if (::mkdtemp(pattern.data()) == nullptr)
        throw std::runtime_error("cannot create a state directory for the test driver");
      path = pattern;
    }
    ~TemporaryDirectory() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
    std::filesystem::path path;
  };

  TemporaryDirectory state_directory;
  Topology topology;
  StreamsConfig config;
  std::string application_id;
  runtime::ErrorHandling errors;
  int64_t wall_clock;
  std::vector<std::string> topic_names;
  std::map<std::string, std::deque<CapturedRecord>> outputs;
  std::deque<std::pair<std::string, CapturedRecord>> pending;
  std::map<std::string, int64_t> offsets;
  // Shared by every task's record caches, as in a running instance.
  state::CacheBudget cache_budget{static_cast<std::size_t>(config.get_int(config::kCacheMaxBytes))};
  // Before the tasks, which read the global stores through views.
  std::unique_ptr<runtime::GlobalStateManager> globals;
  std::map<std::string, std::unique_ptr<StateStore>> global_views;
  std::vector<std::unique_ptr<state::StateManager>> states;
  // Last, so tasks are destroyed first: closing a processor may still send
  // records to this collector.
  std::vector<std::unique_ptr<runtime::StreamTask>> tasks;
};

TopologyTestDriver::TopologyTestDriver(Topology topology, StreamsConfig config,
                                       int64_t wall_clock_start_ms)
    : impl_(std::make_unique<Impl>(std::move(topology), std::move(config), wall_clock_start_ms)) {}

TopologyTestDriver::~TopologyTestDriver() = default;

void TopologyTestDriver::pipe_raw(const std::string& topic, const CapturedRecord& record) {
  impl_->process(topic, record);
  impl_->drain_pending();
  impl_->commit();
}

void TopologyTestDriver::advance_wall_clock_time(std::chrono::milliseconds advance) {
  impl_->wall_clock += advance.count();
  for (auto& task : impl_->tasks) task->punctuate_wall_clock(impl_->wall_clock);
  impl_->drain_pending();
  impl_->commit();
}

int64_t TopologyTestDriver::wall_clock_time() const {
  return impl_->wall_clock;
}

std::optional<CapturedRecord> TopologyTestDriver::read_raw(const std::string& topic) {
  auto it = impl_->outputs.find(topic);
  if (it == impl_->outputs.end() || it->second.empty()) return std::nullopt;
  CapturedRecord record = std::move(it->second.front());
  it->second.pop_front();
  return record;
}

std::size_t TopologyTestDriver::queue_size(const std::string& topic) const {
  auto it = impl_->outputs.find(topic);
  return it == impl_->outputs.end() ? 0 : it->second.size();
}

StateStore* TopologyTestDriver::get_state_store(const std::string& name) const {
  return impl_->find_store(name);
}

std::vector<std::string> TopologyTestDriver::written_topics() const {
  std::vector<std::string> topics;
  for (const auto& [topic, records] : impl_->outputs) topics.push_back(topic);
  return topics;
}

uint64_t TopologyTestDriver::skipped_records() const {
  return impl_->errors.counts().skipped;
}
uint64_t TopologyTestDriver::dead_lettered_records() const {
  return impl_->errors.counts().dead_lettered;
}
uint64_t TopologyTestDriver::dropped_records() const {
  uint64_t dropped = 0;
  for (const auto& task : impl_->tasks) dropped += task->dropped();
  return dropped;
}

}  // namespace rill
