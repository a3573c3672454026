// Keyed aggregations of a stream into a table (Kafka Streams' KStreamAggregate
// and KStreamReduce), and the Aggregation every aggregating processor is made
// of. The processors are templates on the key, value and aggregate types, so
// the C++ DSL and pipelines built from configuration (nlohmann::json values)
// share them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "rill/change.h"
#include "rill/processor.h"
#include "rill/record.h"
#include "rill/state.h"
#include "rill/value_and_timestamp.h"

namespace rill::operators {

// Reasons given to ProcessingContext::record_dropped.
inline constexpr std::string_view kNullKey = "null key";
inline constexpr std::string_view kNullKeyOrValue = "null key or value";
inline constexpr std::string_view kExpiredWindow = "expired window";
inline constexpr std::string_view kExpiredVersion = "older than the history retention";
inline constexpr std::string_view kNegativeTimestamp = "negative timestamp";
inline constexpr std::string_view kNullJoinKeyOrValue = "null join key or value";

template <class T>
inline constexpr bool kIsOptional = false;
template <class T>
inline constexpr bool kIsOptional<std::optional<T>> = true;

// Whether a key or value is null: an empty std::optional, or a value that
// says it is (a JSON null: nlohmann::json::is_null). Other types are never null.
template <class T>
bool is_null(const T& value) {
  if constexpr (kIsOptional<T>) {
    return !value.has_value();
  } else if constexpr (requires { value.is_null(); }) {
    return value.is_null();
  } else {
    (void)value;
    return false;
  }
}

// What an aggregation does with the records of one key.
//
// `initializer` gives the aggregate before the first record, or std::nullopt
// for a reduction, whose first value becomes the aggregate. `aggregator` folds
// a value into the aggregate; it sees std::nullopt only when the initializer
// gives it, and the record's time and headers besides. `merger` combines a session's aggregate into
// the aggregate of the sessions merged so far (session windows only).
template <class K, class V, class VA>
struct Aggregation {
  std::function<std::optional<VA>()> initializer;
  std::function<VA(const K& key, const V& value, const std::optional<VA>& aggregate,
                   const RecordContext& record)>
      aggregator;
  std::function<VA(const K& key, const std::optional<VA>& aggregate, const VA& session)> merger;
};

// Counts records: 0, then +1 per record; merged sessions add up.
template <class K, class V>
Aggregation<K, V, int64_t> counting() {
  return {[] { return std::optional<int64_t>(0); },
          [](const K&, const V&, const std::optional<int64_t>& count, const RecordContext&) {
            return *count + 1;
          },
          [](const K&, const std::optional<int64_t>& count, const int64_t& session) {
            return *count + session;
          }};
}

// Combines values with reducer(aggregate, value); the first value of a key is
// its aggregate. Merged sessions are combined with the reducer too.
template <class K, class V>
Aggregation<K, V, V> reducing(std::function<V(const V& aggregate, const V& value)> reducer) {
  return {
      [] { return std::optional<V>(); },
      [reducer](const K&, const V& value, const std::optional<V>& aggregate, const RecordContext&) {
        return aggregate ? reducer(*aggregate, value) : value;
      },
      [reducer](const K&, const std::optional<V>& aggregate, const V& session) {
        return aggregate ? reducer(*aggregate, session) : session;
      }};
}

// initializer() -> VA; aggregator(key, value, aggregate, record) -> VA; for
// sessions, merger(key, aggregate, other_aggregate) -> VA.
template <class K, class V, class VA>
Aggregation<K, V, VA> aggregating(
    std::function<VA()> initializer,
    std::function<VA(const K& key, const V& value, const VA& aggregate,
                     const RecordContext& record)>
        aggregator,
    std::function<VA(const K& key, const VA& aggregate, const VA& other)> merger = {}) {
  Aggregation<K, V, VA> aggregation;
  aggregation.initializer = [initializer] { return std::optional<VA>(initializer()); };
  aggregation.aggregator = [aggregator](const K& key, const V& value,
                                        const std::optional<VA>& aggregate,
                                        const RecordContext& record) {
    return aggregator(key, value, *aggregate, record);
  };
  if (merger)
    aggregation.merger = [merger](const K& key, const std::optional<VA>& aggregate,
                                  const VA& session) { return merger(key, *aggregate, session); };
  return aggregation;
}

// The store of a table's processor (a source, an aggregation), whose record
// cache hands on the updates it forwards: Change<V> with, when
// `send_old_values`, the value each replaces. Without caching every put is
// forwarded at once.
template <class K, class V>
KeyValueStore<K, ValueAndTimestamp<V>>& table_store(ProcessorContext<K, Change<V>>& context,
                                                    const std::string& name, bool caching,
                                                    bool send_old_values) {
  auto& store = context.template state_store<KeyValueStore<K, ValueAndTimestamp<V>>>(name);
  if (!caching) store.disable_cache();
  auto value_of = [](const std::optional<ValueAndTimestamp<V>>& v) {
    return v ? std::optional<V>(v->value) : std::nullopt;
  };
  if (send_old_values) {
    store.set_change_listener([&context, value_of](const K& key, const auto& value, const auto& old,
                                                   int64_t timestamp) {
      context.forward(Record<K, Change<V>>{key, {value_of(value), value_of(old)}, timestamp, {}});
    });
  } else {
    store.set_flush_listener([&context, value_of](const K& key, const auto& value,
                                                  int64_t timestamp) {
      context.forward(Record<K, Change<V>>{key, {value_of(value), std::nullopt}, timestamp, {}});
    });
  }
  return store;
}

// Aggregates a stream by key into a KeyValueStore<K, ValueAndTimestamp<VA>>
// and forwards each key's new aggregate, as a table update (a deletion never
// occurs here). Records with a null key or value are dropped and counted.
//
// Results go through the store's record cache: with statestore.cache.max.bytes
// above 0 (and caching enabled), updates of a key are folded and forwarded at
// commit or eviction; otherwise each record forwards its result at once. A
// result's timestamp is the largest timestamp of the records aggregated.
template <class K, class V, class VA>
class StreamAggregateProcessor final : public Processor<K, V, K, Change<VA>> {
 public:
  using Store = KeyValueStore<K, ValueAndTimestamp<VA>>;

  StreamAggregateProcessor(std::string store, Aggregation<K, V, VA> aggregation,
                           bool caching = true, bool send_old_values = false)
      : store_name_(std::move(store)),
        aggregation_(std::move(aggregation)),
        caching_(caching),
        send_old_values_(send_old_values) {}

  void init(ProcessorContext<K, Change<VA>>& context) override {
    context_ = &context;
    store_ = &table_store(context, store_name_, caching_, send_old_values_);
  }

  void process(const Record<K, V>& record) override {
    if (is_null(record.key) || is_null(record.value)) {
      context_->record_dropped(kNullKeyOrValue);
      return;
    }
    std::optional<ValueAndTimestamp<VA>> old = store_->get(record.key);
    int64_t timestamp = record.timestamp;
    std::optional<VA> aggregate;
    if (old) {
      timestamp = std::max(timestamp, old->timestamp);
      aggregate = std::move(old->value);
    } else {
      aggregate = aggregation_.initializer();
    }
    store_->put(record.key,
                ValueAndTimestamp<VA>{
                    aggregation_.aggregator(record.key, record.value, aggregate,
                                            RecordContext{record.timestamp, &record.headers}),
                    timestamp},
                timestamp);
  }

 private:
  std::string store_name_;
  Aggregation<K, V, VA> aggregation_;
  bool caching_;
  bool send_old_values_;
  ProcessorContext<K, Change<VA>>* context_ = nullptr;
  Store* store_ = nullptr;
};

}  // namespace rill::operators
