// A ProcessorContext for running one processor by hand in unit tests.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rill/processor.h"

namespace rill::testing {

// A ProcessorContext for running one processor by hand: it hands out the
// stores given to it and keeps what the processor forwards.
template <class K, class V>
class CapturingContext final : public ProcessorContext<K, V> {
 public:
  std::string_view application_id() const override { return "app"; }
  TaskId task_id() const override { return task; }
  std::optional<RecordMetadata> record_metadata() const override { return std::nullopt; }
  int64_t current_stream_time() const override { return -1; }
  int64_t current_system_time() const override { return 0; }
  Cancellable schedule(std::chrono::milliseconds, PunctuationType,
                       std::function<void(int64_t)>) override {
    return {};
  }
  void commit() override {}
  StateStore* get_state_store(std::string_view name) override {
    auto it = stores.find(name);
    return it == stores.end() ? nullptr : it->second;
  }
  void record_dropped(std::string_view) override { ++dropped; }
  void forward(const Record<K, V>& record) override { forwarded.push_back(record); }
  void forward(const Record<K, V>& record, std::string_view) override {
    forwarded.push_back(record);
  }

  TaskId task;
  std::map<std::string, StateStore*, std::less<>> stores;
  std::vector<Record<K, V>> forwarded;
  int dropped = 0;
};

}  // namespace rill::testing
