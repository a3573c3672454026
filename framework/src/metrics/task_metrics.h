// The numbers a task records while it processes, kept where the task can
// reach them without a lock or a lookup: plain relaxed atomics written by the
// one thread that owns each of them and read by the scrape.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rill/topology.h"

namespace rill::metrics {

// A counter with one writing thread at a time: the increment is a load and a
// store, not a locked read-modify-write.
class Counter {
 public:
  void add(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }
  std::atomic<uint64_t>& raw() { return value_; }

 private:
  std::atomic<uint64_t> value_{0};
};

// The latency histograms time one input record in this many (and its
// outputs), since a clock read costs about as much as a light processor.
inline constexpr uint32_t kLatencySampleEvery = 8;

// Upper bounds of histogram buckets, in nanoseconds.
inline constexpr std::array<int64_t, 15> kProcessLatencyBounds = {
    1'000,       5'000,       10'000,        50'000,        100'000,
    500'000,     1'000'000,   5'000'000,     10'000'000,    50'000'000,
    100'000'000, 500'000'000, 1'000'000'000, 5'000'000'000, 10'000'000'000};
inline constexpr std::array<int64_t, 14> kEndToEndLatencyBounds = {
    1'000'000,      5'000'000,      10'000'000,     50'000'000,     100'000'000,
    250'000'000,    500'000'000,    1'000'000'000,  2'500'000'000,  5'000'000'000,
    10'000'000'000, 30'000'000'000, 60'000'000'000, 300'000'000'000};

inline constexpr std::array<int64_t, 12> kStoreLatencyBounds = {
    500,    1'000,   2'500,   5'000,     10'000,     25'000,
    50'000, 100'000, 250'000, 1'000'000, 10'000'000, 100'000'000};

// A Prometheus histogram of durations with one writing thread at a time.
class LatencyHistogram {
 public:
  explicit LatencyHistogram(std::span<const int64_t> bounds_ns)
      : bounds_(bounds_ns), buckets_(std::make_unique<Counter[]>(bounds_ns.size() + 1)) {}

  void observe_ns(int64_t ns) {
    if (ns < 0) ns = 0;
    std::size_t i = 0;
    while (i < bounds_.size() && ns > bounds_[i]) ++i;
    buckets_[i].add();
    sum_ns_.add(static_cast<uint64_t>(ns));
  }

  struct Snapshot {
    // Cumulative counts per bound, then the +Inf count.
    std::vector<uint64_t> cumulative;
    double sum_seconds = 0;
  };
  Snapshot snapshot() const;
  std::span<const int64_t> bounds_ns() const { return bounds_; }

 private:
  std::span<const int64_t> bounds_;
  std::unique_ptr<Counter[]> buckets_;
  Counter sum_ns_;
};

// How long one store's reads and writes take (metrics.recording.level=DEBUG).
struct StoreLatency {
  LatencyHistogram get{kStoreLatencyBounds};
  LatencyHistogram put{kStoreLatencyBounds};
};

// Everything one task records. Kept by the registry for the life of the
// application, so a task closed and later assigned again continues its
// counters instead of restarting them.
struct TaskMetrics {
  TaskMetrics(TaskId task_id, std::vector<std::string> processor_names,
              std::vector<std::string> store_names);

  const TaskId id;
  const std::string task_label;
  // In the sub-topology's node order, as StreamTask builds its nodes.
  const std::vector<std::string> processors;
  std::unique_ptr<Counter[]> processor_records;
  // The sub-topology's stores, in its order.
  const std::vector<std::string> stores;
  std::unique_ptr<StoreLatency[]> store_latency;
  // Resolved when a store opens, never per operation; nullptr for an unknown name.
  StoreLatency* latency_of(std::string_view store) {
    for (std::size_t i = 0; i < stores.size(); ++i)
      if (stores[i] == store) return &store_latency[i];
    return nullptr;
  }

  // Written by the polling thread.
  Counter consumed;
  // Written by the worker running the task.
  Counter processed;
  Counter produced;
  Counter dropped;
  LatencyHistogram process_latency{kProcessLatencyBounds};
  LatencyHistogram end_to_end_latency{kEndToEndLatencyBounds};

  // Whether the task is assigned to this instance now.
  std::atomic<bool> assigned{false};
  std::atomic<bool> restoring{false};
};

}  // namespace rill::metrics
