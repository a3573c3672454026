// Aggregation over session windows, as Kafka Streams'
// KStreamSessionWindowAggregate. Sessions are kept in a SessionStore<K, VA>;
// every update is forwarded as Record<Windowed<K>, Change<VA>> (session
// stores have no record cache).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rill/operators/aggregate.h"
#include "rill/processor.h"
#include "rill/record.h"
#include "rill/state.h"
#include "rill/windows.h"

namespace rill::operators {

// A record at t joins every session of its key that ends at or after t - gap
// and starts at or before t + gap; those sessions and the record become one
// session, whose aggregate is the sessions' aggregates merged, then the record
// aggregated. Each merged session is retracted first: a tombstone for its
// windowed key, then the new session's result. Results are stamped with the
// session end.
//
// The processor's stream time is the largest timestamp it has seen; a session
// that would end before stream time - gap - grace is closed, and its record is
// dropped and counted. Records with a null key are dropped and counted.
template <class K, class V, class VA>
class SessionWindowAggregateProcessor final : public Processor<K, V, Windowed<K>, Change<VA>> {
 public:
  using Store = SessionStore<K, VA>;

  SessionWindowAggregateProcessor(std::string store, SessionWindows windows,
                                  Aggregation<K, V, VA> aggregation)
      : store_name_(std::move(store)), windows_(windows), aggregation_(std::move(aggregation)) {}

  void init(ProcessorContext<Windowed<K>, Change<VA>>& context) override {
    context_ = &context;
    store_ = &context.template state_store<Store>(store_name_);
  }

  void process(const Record<K, V>& record) override {
    if (is_null(record.key)) {
      context_->record_dropped(kNullKey);
      return;
    }
    const int64_t t = record.timestamp;
    if (t < 0) {
      context_->record_dropped(kNegativeTimestamp);
      return;
    }
    observed_stream_time_ = std::max(observed_stream_time_, t);
    const int64_t close_time =
        observed_stream_time_ - windows_.grace_ms() - windows_.inactivity_gap_ms();
    const int64_t gap = windows_.inactivity_gap_ms();

    const Window own{t, t};
    Window merged_window = own;
    std::optional<VA> aggregate = aggregation_.initializer();
    merged_.clear();
    // Near the largest time, the sessions that may join start up to it.
    int64_t latest_start = 0;
    if (__builtin_add_overflow(t, gap, &latest_start))
      latest_start = std::numeric_limits<int64_t>::max();
    for (auto it = store_->find_sessions(record.key, t - gap, latest_start); it.valid();
         it.next()) {
      merged_.push_back(it.entry());
      const KeyValue<Windowed<K>, VA>& session = merged_.back();
      aggregate = aggregation_.merger(record.key, aggregate, session.value);
      merged_window.start = std::min(merged_window.start, session.key.window.start);
      merged_window.end = std::max(merged_window.end, session.key.window.end);
    }

    if (merged_window.end < close_time) {
      context_->record_dropped(kExpiredWindow);
      return;
    }
    // A lone session at exactly t is simply overwritten.
    if (merged_window != own) {
      for (const auto& session : merged_) {
        store_->remove(session.key);
        context_->forward(Record<Windowed<K>, Change<VA>>{
            session.key, {std::nullopt, std::nullopt}, session.key.window.end, {}});
      }
    }
    VA result = aggregation_.aggregator(record.key, record.value, aggregate,
                                        RecordContext{record.timestamp, &record.headers});
    Windowed<K> session_key{record.key, merged_window};
    if (!store_->put(session_key, result)) context_->record_dropped(kExpiredWindow);
    context_->forward(Record<Windowed<K>, Change<VA>>{
        std::move(session_key), {std::move(result), std::nullopt}, merged_window.end, {}});
  }

 private:
  std::string store_name_;
  SessionWindows windows_;
  Aggregation<K, V, VA> aggregation_;
  ProcessorContext<Windowed<K>, Change<VA>>* context_ = nullptr;
  Store* store_ = nullptr;
  int64_t observed_stream_time_ = -1;
  // Reused for every record.
  std::vector<KeyValue<Windowed<K>, VA>> merged_;
};

}  // namespace rill::operators
