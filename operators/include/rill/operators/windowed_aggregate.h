// Aggregations over time windows (tumbling and hopping) and sliding windows,
// as Kafka Streams' KStreamWindowAggregate and KStreamSlidingWindowAggregate.
// Results are kept in a WindowStore<K, ValueAndTimestamp<VA>> and forwarded as
// Record<Windowed<K>, Change<VA>>: through the store's record cache, which
// folds a window's updates until a commit or an eviction hands on its newest
// value (statestore.cache.max.bytes above 0 and caching enabled, as in Kafka
// Streams); otherwise on every update.
//
// Each processor keeps its own stream time: the largest timestamp it has
// seen. A window closes once that time passes the window's end by the grace
// period; a record for a closed window is dropped and counted, once per window.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "rill/operators/aggregate.h"
#include "rill/processor.h"
#include "rill/record.h"
#include "rill/state.h"
#include "rill/value_and_timestamp.h"
#include "rill/windows.h"

namespace rill::operators {

// The window store of an aggregation, set up to forward what its record cache
// hands on; without `caching` its cache is disabled.
template <class K, class VA>
WindowStore<K, ValueAndTimestamp<VA>>& window_table_store(
    ProcessorContext<Windowed<K>, Change<VA>>& context, const std::string& name, bool caching) {
  auto& store = context.template state_store<WindowStore<K, ValueAndTimestamp<VA>>>(name);
  if (!caching) store.disable_cache();
  if (store.caching())
    store.set_flush_listener([&context](const Windowed<K>& window,
                                        const std::optional<ValueAndTimestamp<VA>>& value,
                                        int64_t timestamp) {
      context.forward(Record<Windowed<K>, Change<VA>>{
          window,
          {value ? std::optional<VA>(value->value) : std::nullopt, std::nullopt},
          timestamp,
          {}});
    });
  return store;
}

// Stores a window's new aggregate and forwards it: when the record cache
// hands it on, or at once, with the record's headers, without a cache. A
// window that has expired already is counted as dropped.
template <class K, class VA>
void store_and_forward(WindowStore<K, ValueAndTimestamp<VA>>& store,
                       ProcessorContext<Windowed<K>, Change<VA>>& context, const K& key,
                       const Window& window, VA result, int64_t timestamp, const Headers& headers) {
  if (store.caching()) {
    if (!store.put(key, ValueAndTimestamp<VA>{std::move(result), timestamp}, window.start,
                   timestamp))
      context.record_dropped(kExpiredWindow);
    return;
  }
  if (!store.put(key, ValueAndTimestamp<VA>{result, timestamp}, window.start))
    context.record_dropped(kExpiredWindow);
  context.forward(Record<Windowed<K>, Change<VA>>{
      Windowed<K>{key, window}, {std::move(result), std::nullopt}, timestamp, headers});
}

// Tumbling and hopping windows. A record updates each window that holds its
// timestamp and whose end is after stream time - grace; the result's
// timestamp is the largest record timestamp in the window. Records with a null
// key are dropped and counted.
template <class K, class V, class VA>
class TimeWindowAggregateProcessor final : public Processor<K, V, Windowed<K>, Change<VA>> {
 public:
  using Store = WindowStore<K, ValueAndTimestamp<VA>>;

  TimeWindowAggregateProcessor(std::string store, TimeWindows windows,
                               Aggregation<K, V, VA> aggregation, bool caching)
      : store_name_(std::move(store)),
        windows_(windows),
        aggregation_(std::move(aggregation)),
        caching_(caching) {}

  void init(ProcessorContext<Windowed<K>, Change<VA>>& context) override {
    context_ = &context;
    store_ = &window_table_store(context, store_name_, caching_);
  }

  void process(const Record<K, V>& record) override {
    if (is_null(record.key)) {
      context_->record_dropped(kNullKey);
      return;
    }
    if (record.timestamp < 0) {
      context_->record_dropped(kNegativeTimestamp);
      return;
    }
    observed_stream_time_ = std::max(observed_stream_time_, record.timestamp);
    const int64_t close_time = observed_stream_time_ - windows_.grace_ms();
    windows_.for_each_window(record.timestamp, [&](const Window& window) {
      if (window.end <= close_time) {
        context_->record_dropped(kExpiredWindow);
        return;
      }
      std::optional<ValueAndTimestamp<VA>> old = store_->fetch(record.key, window.start);
      int64_t timestamp = record.timestamp;
      std::optional<VA> aggregate;
      if (old) {
        timestamp = std::max(timestamp, old->timestamp);
        aggregate = std::move(old->value);
      } else {
        aggregate = aggregation_.initializer();
      }
      store_and_forward(*store_, *context_, record.key, window,
                        aggregation_.aggregator(record.key, record.value, aggregate,
                                                RecordContext{record.timestamp, &record.headers}),
                        timestamp, record.headers);
    });
  }

 private:
  std::string store_name_;
  TimeWindows windows_;
  Aggregation<K, V, VA> aggregation_;
  bool caching_;
  ProcessorContext<Windowed<K>, Change<VA>>* context_ = nullptr;
  Store* store_ = nullptr;
  int64_t observed_stream_time_ = -1;
};

// Sliding windows, by Kafka Streams' algorithm: windows exist only where
// records are, each record creating its left window [t - d, t] and, when later
// records fall within d after it, its right window [t + 1, t + 1 + d]. Both
// window ends are inclusive; the store's window size is d, so a window read
// back ends at start + d. Existing windows are visited latest first, as Kafka
// Streams does with its reverse iterator, so updates are forwarded in the same
// order. Records with a null key or value are dropped and counted; a record
// whose right window would already be closed is dropped. A record so close to
// the largest time that its right window would end beyond it is a
// ProcessingError.
template <class K, class V, class VA>
class SlidingWindowAggregateProcessor final : public Processor<K, V, Windowed<K>, Change<VA>> {
 public:
  using Store = WindowStore<K, ValueAndTimestamp<VA>>;

  SlidingWindowAggregateProcessor(std::string store, SlidingWindows windows,
                                  Aggregation<K, V, VA> aggregation, bool caching)
      : store_name_(std::move(store)),
        difference_(windows.time_difference_ms()),
        grace_(windows.grace_ms()),
        aggregation_(std::move(aggregation)),
        caching_(caching) {}

  void init(ProcessorContext<Windowed<K>, Change<VA>>& context) override {
    context_ = &context;
    store_ = &window_table_store(context, store_name_, caching_);
  }

  void process(const Record<K, V>& record) override {
    if (is_null(record.key) || is_null(record.value)) {
      context_->record_dropped(kNullKeyOrValue);
      return;
    }
    if (record.timestamp < 0) {
      context_->record_dropped(kNegativeTimestamp);
      return;
    }
    if (record.timestamp > std::numeric_limits<int64_t>::max() - 1 - difference_)
      throw ProcessingError("sliding windows: timestamp " + std::to_string(record.timestamp) +
                            " leaves no room for the window of " + std::to_string(difference_) +
                            " ms after it");
    observed_stream_time_ = std::max(observed_stream_time_, record.timestamp);
    const int64_t close_time = observed_stream_time_ - grace_;
    if (record.timestamp + 1 + difference_ <= close_time) {
      context_->record_dropped(kExpiredWindow);
      return;
    }
    if (record.timestamp < difference_)
      process_early(record, close_time);
    else
      process_in_time(record, close_time);
  }

 private:
  using Aggregate = ValueAndTimestamp<VA>;
  using StoredWindow = KeyValue<int64_t, Aggregate>;

  // What the scan of existing windows found for the current record.
  struct Scan {
    std::vector<int64_t> starts;
    std::optional<Aggregate> left_aggregate;
    std::optional<Aggregate> right_aggregate;
    bool left_exists = false;
    bool right_exists = false;
    std::optional<int64_t> previous_timestamp;

    bool has_start(int64_t start) const {
      return std::find(starts.begin(), starts.end(), start) != starts.end();
    }
  };

  std::optional<Aggregate> initial(int64_t timestamp) const {
    std::optional<VA> value = aggregation_.initializer();
    if (!value) return std::nullopt;
    return Aggregate{std::move(*value), timestamp};
  }

  // A record at t >= d: its windows lie in [t - 2d, t + 1].
  void process_in_time(const Record<K, V>& record, int64_t close_time) {
    const int64_t t = record.timestamp;
    std::vector<StoredWindow> found =
        store_->fetch(record.key, std::max<int64_t>(0, t - difference_ - difference_), t + 1)
            .to_vector();
    Scan scan;
    for (auto it = found.rbegin(); it != found.rend(); ++it) {
      const int64_t start = it->key;
      const int64_t end = start + difference_;
      scan.starts.push_back(start);
      if (start == t + 1) {
        scan.right_exists = true;
      } else if (end > t) {
        if (!scan.right_aggregate) scan.right_aggregate = it->value;
        update_and_forward({start, end}, it->value, record, close_time);
      } else if (end == t) {
        scan.left_exists = true;
        update_and_forward({start, end}, it->value, record, close_time);
        // A window ending at t with a later record in it: every window this
        // record needs exists already.
        if (it->value.timestamp >= t) return;
        scan.previous_timestamp = it->value.timestamp;
      } else {
        scan.left_aggregate = it->value;
        scan.previous_timestamp = it->value.timestamp;
        break;
      }
    }
    create_windows(record, close_time, scan);
  }

  // A record at 0 <= t < d has no room for its left window; it goes into the
  // window [0, d], which holds every such early record.
  void process_early(const Record<K, V>& record, int64_t close_time) {
    const int64_t t = record.timestamp;
    std::vector<StoredWindow> found = store_->fetch(record.key, 0, t + 1).to_vector();
    std::optional<Aggregate> combined;
    Scan scan;
    for (const StoredWindow& window : found) {
      const int64_t start = window.key;
      scan.starts.push_back(start);
      if (start == 0) {
        combined = window.value;
        if (window.value.timestamp < t) scan.previous_timestamp = window.value.timestamp;
      } else if (start <= t) {
        scan.right_aggregate = window.value;
        update_and_forward({start, start + difference_}, window.value, record, close_time);
      } else if (start == t + 1) {
        scan.right_exists = true;
      } else {
        throw std::logic_error("sliding window aggregation: unexpected window at " +
                               std::to_string(start) + " for a record at " + std::to_string(t));
      }
    }
    // Without a right window found, the combined window's records after t are
    // exactly those of this record's right window.
    if (!scan.right_aggregate && combined && combined->timestamp > t)
      scan.right_aggregate = combined;
    if (!scan.right_exists && scan.right_aggregate && scan.right_aggregate->timestamp > t)
      create_right_window(t, *scan.right_aggregate, record);
    if (scan.previous_timestamp && !scan.has_start(*scan.previous_timestamp + 1))
      update_and_forward({*scan.previous_timestamp + 1, *scan.previous_timestamp + 1 + difference_},
                         initial(t), record, close_time);
    update_and_forward({0, difference_}, combined ? combined : initial(t), record, close_time);
  }

  void create_windows(const Record<K, V>& record, int64_t close_time, const Scan& scan) {
    const int64_t t = record.timestamp;
    // The previous record's right window, when this record is in it.
    if (scan.previous_timestamp) {
      const int64_t start = *scan.previous_timestamp + 1;
      if (!scan.has_start(start) && start + difference_ >= t)
        update_and_forward({start, start + difference_}, initial(t), record, close_time);
    }
    if (!scan.left_exists) {
      std::optional<Aggregate> left;
      if (scan.previous_timestamp && t - difference_ <= *scan.previous_timestamp)
        left = Aggregate{scan.left_aggregate->value, t};
      else
        left = initial(t);
      update_and_forward({t - difference_, t}, left, record, close_time);
    }
    if (!scan.right_exists && scan.right_aggregate && scan.right_aggregate->timestamp > t)
      create_right_window(t, *scan.right_aggregate, record);
  }

  // The record's right window holds the later records only: it starts with
  // their aggregate, taken from the window that held them.
  void create_right_window(int64_t t, const Aggregate& aggregate, const Record<K, V>& record) {
    store_and_forward(*store_, *context_, record.key, Window{t + 1, t + 1 + difference_},
                      aggregate.value, aggregate.timestamp, record.headers);
  }

  void update_and_forward(const Window& window, const std::optional<Aggregate>& current,
                          const Record<K, V>& record, int64_t close_time) {
    if (window.end < close_time) {
      context_->record_dropped(kExpiredWindow);
      return;
    }
    std::optional<VA> aggregate;
    int64_t timestamp = record.timestamp;
    if (current) {
      aggregate = current->value;
      timestamp = std::max(timestamp, current->timestamp);
    }
    store_and_forward(*store_, *context_, record.key, window,
                      aggregation_.aggregator(record.key, record.value, aggregate,
                                              RecordContext{record.timestamp, &record.headers}),
                      timestamp, record.headers);
  }

  std::string store_name_;
  int64_t difference_;
  int64_t grace_;
  Aggregation<K, V, VA> aggregation_;
  bool caching_;
  ProcessorContext<Windowed<K>, Change<VA>>* context_ = nullptr;
  Store* store_ = nullptr;
  int64_t observed_stream_time_ = -1;
};

}  // namespace rill::operators
