// Grouped streams and their aggregations, as Kafka Streams' KGroupedStream,
// TimeWindowedKStream and SessionWindowedKStream: count, reduce and aggregate
// per key, over all time or per window, into a KTable.
//
//   auto counts = builder.stream("clicks", rill::serdes::string(), rill::serdes::string())
//                     .group_by_key()
//                     .windowed_by(rill::TimeWindows::of_size_with_no_grace(1min))
//                     .count();
//   counts.to_stream().to("clicks-per-minute");  // keys: time_windowed<string>
//
// Each aggregation keeps its results in a store named by Materialized (or
// "KSTREAM-AGGREGATE-STATE-STORE-<n>"), changelogged to
// "<application.id>-<store>-changelog". When the key changed upstream, the
// records first go through "<application.id>-<name>-repartition", where the
// name is Grouped's, else the store's.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>

#include "rill/change.h"
#include "rill/operators/aggregate.h"
#include "rill/operators/ktable_ops.h"
#include "rill/operators/session_aggregate.h"
#include "rill/operators/windowed_aggregate.h"
#include "rill/serde.h"
#include "rill/state.h"
#include "rill/streams_builder.h"
#include "rill/topology.h"
#include "rill/value_and_timestamp.h"
#include "rill/windows.h"

namespace rill {

template <class K, class V>
class TimeWindowedKStream;
template <class K, class V>
class SessionWindowedKStream;

namespace internal {

// A grouped stream before its aggregation: the records, and the name and
// serdes of the repartition topic they go through when the key changed.
template <class K, class V>
struct GroupedSource {
  KStream<K, V> stream;
  std::string name;
  SerdePtr<K> key_serde;
  SerdePtr<V> value_serde;

  StreamsBuilder& builder() const { return *stream.builder(); }
  // The stream the aggregation reads: this one, or its copy repartitioned
  // through "<name>-repartition" (the store's name when the grouping has none).
  KStream<K, V> input(const std::string& store) const {
    if (!stream.repartition_required()) return stream;
    return stream.repartition(
        Repartitioned<K, V>{name.empty() ? store : name, std::nullopt, key_serde, value_serde});
  }
};

// What every aggregation settles before adding its processor and store: the
// store's and the processor's names (Kafka Streams names the store first),
// the serdes (Materialized's, else the grouping's and the default), and the
// stream it reads.
template <class K, class V, class VA>
struct AggregateSetup {
  std::string store;
  std::string node;
  SerdePtr<K> key_serde;
  SerdePtr<VA> value_serde;
  KStream<K, V> input;
};
template <class K, class V, class VA>
AggregateSetup<K, V, VA> set_up_aggregate(const GroupedSource<K, V>& source,
                                          Materialized<K, VA>& materialized,
                                          std::string_view prefix,
                                          SerdePtr<VA> default_value_serde) {
  StreamsBuilder& builder = source.builder();
  std::string store =
      builder.name_or_new(std::move(materialized.store_name), std::string(prefix) + "-STATE-STORE");
  std::string node = builder.new_name(prefix);
  SerdePtr<K> key_serde = materialized.key_serde ? materialized.key_serde : source.key_serde;
  SerdePtr<VA> value_serde =
      materialized.value_serde ? materialized.value_serde : std::move(default_value_serde);
  if (!key_serde)
    throw TopologyError("aggregation '" + node + "': no key serde for type " + demangle(typeid(K)) +
                        "; give Grouped or Materialized a key_serde");
  if (!value_serde)
    throw TopologyError("aggregation '" + node + "': no value serde for type " +
                        demangle(typeid(VA)) + "; give Materialized a value_serde");
  KStream<K, V> input = source.input(store);
  return {std::move(store), std::move(node), std::move(key_serde), std::move(value_serde),
          std::move(input)};
}

// The retention of a window or session store: Materialized's, which must
// cover the windows still open, or that minimum.
inline int64_t store_retention(const std::optional<std::chrono::milliseconds>& retention,
                               int64_t minimum, const std::string& store, const char* what) {
  if (!retention) return minimum;
  if (retention->count() < minimum)
    throw TopologyError("state store '" + store + "': retention must be at least " + what + " (" +
                        std::to_string(minimum) + " ms), got " +
                        std::to_string(retention->count()) + " ms");
  return retention->count();
}

// Calls f(key, value, aggregate, record), f(key, value, aggregate) or
// f(value, aggregate).
template <class F, class K, class V, class VA>
VA call_aggregator(F& f, const K& key, const V& value, const VA& aggregate,
                   const RecordContext& record) {
  if constexpr (std::is_invocable_v<F&, const K&, const V&, const VA&, const RecordContext&>) {
    return f(key, value, aggregate, record);
  } else if constexpr (std::is_invocable_v<F&, const K&, const V&, const VA&>) {
    return f(key, value, aggregate);
  } else {
    return f(value, aggregate);
  }
}
// Calls f(key, aggregate, other) or f(aggregate, other).
template <class F, class K, class VA>
VA call_merger(F& f, const K& key, const VA& aggregate, const VA& other) {
  if constexpr (std::is_invocable_v<F&, const K&, const VA&, const VA&>) {
    return f(key, aggregate, other);
  } else {
    return f(aggregate, other);
  }
}

template <class K, class V, class VA, class Init, class Agg>
operators::Aggregation<K, V, VA> user_aggregation(Init initializer, Agg aggregator) {
  static_assert(std::is_convertible_v<std::invoke_result_t<Init&>, VA>,
                "the initializer must return the aggregate type");
  return operators::aggregating<K, V, VA>(
      [initializer]() mutable -> VA { return initializer(); },
      [aggregator](const K& key, const V& value, const VA& aggregate,
                   const RecordContext& record) mutable -> VA {
        return call_aggregator(aggregator, key, value, aggregate, record);
      });
}

template <class K, class V, class F>
operators::Aggregation<K, V, V> user_reduction(F reducer) {
  return operators::reducing<K, V>([reducer](const V& aggregate, const V& value) mutable -> V {
    return reducer(aggregate, value);
  });
}

}  // namespace internal

// A stream grouped by key, waiting for an aggregation.
template <class K, class V>
class KGroupedStream {
 public:
  explicit KGroupedStream(internal::GroupedSource<K, V> source) : source_(std::move(source)) {}

  // The number of records per key.
  KTable<K, int64_t> count(Materialized<K, int64_t> materialized = {}) const {
    return aggregate_with<int64_t>("KSTREAM-AGGREGATE", operators::counting<K, V>(),
                                   std::move(materialized), serdes::int64());
  }
  // reducer(aggregate, value) -> V combines the values per key; a key's first
  // value is its first result.
  template <class F>
  KTable<K, V> reduce(F reducer, Materialized<K, V> materialized = {}) const {
    return aggregate_with<V>("KSTREAM-REDUCE", internal::user_reduction<K, V>(std::move(reducer)),
                             std::move(materialized), source_.value_serde);
  }
  // initializer() -> VA starts each key's aggregate; aggregator(key, value,
  // aggregate) -> VA (or aggregator(value, aggregate)) folds in each record;
  // aggregator(key, value, aggregate, RecordContext) also sees its time and
  // headers.
  template <class Init, class Agg, class VA = std::decay_t<std::invoke_result_t<Init&>>>
  KTable<K, VA> aggregate(Init initializer, Agg aggregator,
                          Materialized<K, VA> materialized = {}) const {
    return aggregate_with<VA>(
        "KSTREAM-AGGREGATE",
        internal::user_aggregation<K, V, VA>(std::move(initializer), std::move(aggregator)),
        std::move(materialized), default_serde<VA>());
  }

  // Aggregations per time window (tumbling or hopping) or sliding window.
  TimeWindowedKStream<K, V> windowed_by(const TimeWindows& windows) const {
    return TimeWindowedKStream<K, V>(source_, windows);
  }
  TimeWindowedKStream<K, V> windowed_by(const SlidingWindows& windows) const {
    return TimeWindowedKStream<K, V>(source_, windows);
  }
  // Aggregations per session of activity.
  SessionWindowedKStream<K, V> windowed_by(const SessionWindows& windows) const {
    return SessionWindowedKStream<K, V>(source_, windows);
  }

 private:
  template <class VA>
  KTable<K, VA> aggregate_with(std::string_view prefix,
                               operators::Aggregation<K, V, VA> aggregation,
                               Materialized<K, VA> materialized,
                               SerdePtr<VA> default_value_serde) const {
    auto setup =
        internal::set_up_aggregate(source_, materialized, prefix, std::move(default_value_serde));
    return internal::add_materialized_table(
        source_.builder(), setup.node, setup.input.node_name(), setup.store, setup.key_serde,
        setup.value_serde, materialized,
        [aggregation](const std::string& store, bool caching, bool send_old_values) {
          return std::make_unique<operators::StreamAggregateProcessor<K, V, VA>>(
              store, aggregation, caching, send_old_values);
        });
  }

  internal::GroupedSource<K, V> source_;
};

// A grouped stream over time windows or sliding windows. Results are a
// KTable<Windowed<K>, VA> whose key serde is time_windowed (the window start
// after the key), so its stream can be written without serdes.
template <class K, class V>
class TimeWindowedKStream {
 public:
  using Windows = std::variant<TimeWindows, SlidingWindows>;

  TimeWindowedKStream(internal::GroupedSource<K, V> source, Windows windows)
      : source_(std::move(source)), windows_(std::move(windows)) {}

  KTable<Windowed<K>, int64_t> count(Materialized<K, int64_t> materialized = {}) const {
    return aggregate_with<int64_t>("KSTREAM-AGGREGATE", operators::counting<K, V>(),
                                   std::move(materialized), serdes::int64());
  }
  template <class F>
  KTable<Windowed<K>, V> reduce(F reducer, Materialized<K, V> materialized = {}) const {
    return aggregate_with<V>("KSTREAM-REDUCE", internal::user_reduction<K, V>(std::move(reducer)),
                             std::move(materialized), source_.value_serde);
  }
  template <class Init, class Agg, class VA = std::decay_t<std::invoke_result_t<Init&>>>
  KTable<Windowed<K>, VA> aggregate(Init initializer, Agg aggregator,
                                    Materialized<K, VA> materialized = {}) const {
    return aggregate_with<VA>(
        "KSTREAM-AGGREGATE",
        internal::user_aggregation<K, V, VA>(std::move(initializer), std::move(aggregator)),
        std::move(materialized), default_serde<VA>());
  }

 private:
  template <class VA>
  KTable<Windowed<K>, VA> aggregate_with(std::string_view prefix,
                                         operators::Aggregation<K, V, VA> aggregation,
                                         Materialized<K, VA> materialized,
                                         SerdePtr<VA> default_value_serde) const {
    StreamsBuilder& builder = source_.builder();
    const auto [store, node, key_serde, value_serde, input] =
        internal::set_up_aggregate(source_, materialized, prefix, std::move(default_value_serde));

    int64_t window_size = 0;
    int64_t grace = 0;
    int64_t retention = 0;
    if (const auto* time = std::get_if<TimeWindows>(&windows_)) {
      window_size = time->size_ms();
      grace = time->grace_ms();
      retention = internal::store_retention(materialized.retention, window_size + grace, store,
                                            "the window size plus the grace period");
      builder.topology().add_processor(
          node,
          [store = store, windows = *time, aggregation, caching = materialized.caching_enabled] {
            return std::make_unique<operators::TimeWindowAggregateProcessor<K, V, VA>>(
                store, windows, aggregation, caching);
          },
          {input.node_name()});
    } else {
      const auto& sliding = std::get<SlidingWindows>(windows_);
      window_size = sliding.time_difference_ms();
      grace = sliding.grace_ms();
      retention = internal::store_retention(materialized.retention, 2 * window_size + grace, store,
                                            "twice the time difference plus the grace period");
      builder.topology().add_processor(
          node,
          [store = store, windows = sliding, aggregation, caching = materialized.caching_enabled] {
            return std::make_unique<operators::SlidingWindowAggregateProcessor<K, V, VA>>(
                store, windows, aggregation, caching);
          },
          {input.node_name()});
    }
    builder.topology().add_state_store(
        internal::materialize(
            Stores::window<K, ValueAndTimestamp<VA>>(
                store, std::chrono::milliseconds(window_size), std::chrono::milliseconds(retention),
                key_serde, serdes::value_and_timestamp<VA>(value_serde)),
            materialized),
        {node});
    return KTable<Windowed<K>, VA>(
        &builder, node, serdes::time_windowed<K>(key_serde, std::chrono::milliseconds(window_size)),
        value_serde, store, grace);
  }

  internal::GroupedSource<K, V> source_;
  Windows windows_;
};

// A grouped stream over session windows. Results are a KTable<Windowed<K>,
// VA> whose key serde is session_windowed (end and start after the key).
template <class K, class V>
class SessionWindowedKStream {
 public:
  SessionWindowedKStream(internal::GroupedSource<K, V> source, SessionWindows windows)
      : source_(std::move(source)), windows_(windows) {}

  // Merged sessions add their counts.
  KTable<Windowed<K>, int64_t> count(Materialized<K, int64_t> materialized = {}) const {
    return aggregate_with<int64_t>("KSTREAM-AGGREGATE", operators::counting<K, V>(),
                                   std::move(materialized), serdes::int64());
  }
  // Merged sessions are combined with the reducer too.
  template <class F>
  KTable<Windowed<K>, V> reduce(F reducer, Materialized<K, V> materialized = {}) const {
    return aggregate_with<V>("KSTREAM-REDUCE", internal::user_reduction<K, V>(std::move(reducer)),
                             std::move(materialized), source_.value_serde);
  }
  // merger(key, aggregate, other) -> VA (or merger(aggregate, other)) combines
  // the aggregates of sessions a record joins.
  template <class Init, class Agg, class Merge,
            class VA = std::decay_t<std::invoke_result_t<Init&>>>
  KTable<Windowed<K>, VA> aggregate(Init initializer, Agg aggregator, Merge merger,
                                    Materialized<K, VA> materialized = {}) const {
    operators::Aggregation<K, V, VA> aggregation =
        internal::user_aggregation<K, V, VA>(std::move(initializer), std::move(aggregator));
    aggregation.merger = [merger](const K& key, const std::optional<VA>& aggregate,
                                  const VA& other) mutable -> VA {
      return internal::call_merger(merger, key, *aggregate, other);
    };
    return aggregate_with<VA>("KSTREAM-AGGREGATE", std::move(aggregation), std::move(materialized),
                              default_serde<VA>());
  }

 private:
  template <class VA>
  KTable<Windowed<K>, VA> aggregate_with(std::string_view prefix,
                                         operators::Aggregation<K, V, VA> aggregation,
                                         Materialized<K, VA> materialized,
                                         SerdePtr<VA> default_value_serde) const {
    StreamsBuilder& builder = source_.builder();
    const auto [store, node, key_serde, value_serde, input] =
        internal::set_up_aggregate(source_, materialized, prefix, std::move(default_value_serde));
    const int64_t close_delay = windows_.inactivity_gap_ms() + windows_.grace_ms();
    const int64_t retention = internal::store_retention(materialized.retention, close_delay, store,
                                                        "the inactivity gap plus the grace period");
    builder.topology().add_processor(
        node,
        [store = store, windows = windows_, aggregation] {
          return std::make_unique<operators::SessionWindowAggregateProcessor<K, V, VA>>(
              store, windows, aggregation);
        },
        {input.node_name()});
    builder.topology().add_state_store(
        internal::materialize(Stores::session<K, VA>(store, std::chrono::milliseconds(retention),
                                                     key_serde, value_serde),
                              materialized),
        {node});
    return KTable<Windowed<K>, VA>(&builder, node, serdes::session_windowed<K>(key_serde),
                                   value_serde, store, close_delay);
  }

  internal::GroupedSource<K, V> source_;
  SessionWindows windows_;
};

// A table regrouped by KTable::group_by, waiting for an aggregation that
// subtracts rows leaving a group (Kafka Streams' KGroupedTable). A group whose
// rows all left keeps its last result (a count of 0), as in Kafka Streams.
template <class K, class V>
class KGroupedTable {
 public:
  // Used by KTable::group_by: the changes with their new keys, before the
  // repartition topic, Grouped's name, and the serdes.
  KGroupedTable(KStream<K, Change<V>> changes, std::string name, SerdePtr<K> key_serde,
                SerdePtr<V> value_serde)
      : source_{changes, std::move(name), std::move(key_serde), changes.value_serde()},
        value_serde_(std::move(value_serde)) {}

  // The number of rows per group.
  KTable<K, int64_t> count(Materialized<K, int64_t> materialized = {}) const {
    return aggregate_with<int64_t>(
        "KTABLE-AGGREGATE", operators::counting<K, V>(),
        [](const K&, const V&, const int64_t& count, const RecordContext&) { return count - 1; },
        std::move(materialized), serdes::int64());
  }
  // adder(aggregate, value) -> V combines a row into its group (a group's
  // first row is its first result); subtractor(aggregate, value) -> V takes
  // one out.
  template <class Add, class Subtract>
  KTable<K, V> reduce(Add adder, Subtract subtractor, Materialized<K, V> materialized = {}) const {
    return aggregate_with<V>(
        "KTABLE-REDUCE", internal::user_reduction<K, V>(std::move(adder)),
        [subtractor](const K&, const V& value, const V& aggregate,
                     const RecordContext&) mutable -> V { return subtractor(aggregate, value); },
        std::move(materialized), value_serde_);
  }
  // initializer() -> VA starts each group's aggregate; adder(key, value,
  // aggregate) -> VA (or adder(value, aggregate)) adds a row,
  // subtractor(key, value, aggregate) -> VA (or subtractor(value, aggregate))
  // takes one out.
  template <class Init, class Add, class Subtract,
            class VA = std::decay_t<std::invoke_result_t<Init&>>>
  KTable<K, VA> aggregate(Init initializer, Add adder, Subtract subtractor,
                          Materialized<K, VA> materialized = {}) const {
    return aggregate_with<VA>(
        "KTABLE-AGGREGATE",
        internal::user_aggregation<K, V, VA>(std::move(initializer), std::move(adder)),
        [subtractor](const K& key, const V& value, const VA& aggregate,
                     const RecordContext& record) mutable -> VA {
          return internal::call_aggregator(subtractor, key, value, aggregate, record);
        },
        std::move(materialized), default_serde<VA>());
  }

 private:
  template <class VA>
  KTable<K, VA> aggregate_with(
      std::string_view prefix, operators::Aggregation<K, V, VA> adding,
      typename operators::TableAggregateProcessor<K, V, VA>::Subtractor subtractor,
      Materialized<K, VA> materialized, SerdePtr<VA> default_value_serde) const {
    auto setup =
        internal::set_up_aggregate(source_, materialized, prefix, std::move(default_value_serde));
    return internal::add_materialized_table(
        source_.builder(), setup.node, setup.input.node_name(), setup.store, setup.key_serde,
        setup.value_serde, materialized,
        [adding, subtractor](const std::string& store, bool caching, bool send_old_values) {
          return std::make_unique<operators::TableAggregateProcessor<K, V, VA>>(
              store, adding, subtractor, caching, send_old_values);
        });
  }

  internal::GroupedSource<K, Change<V>> source_;
  SerdePtr<V> value_serde_;
};

// ---------------------------------------------------------------------------
// KStream's grouping operations.

template <class K, class V>
KGroupedStream<K, V> KStream<K, V>::group_by_key(Grouped<K, V> grouped) const {
  return KGroupedStream<K, V>(internal::GroupedSource<K, V>{
      *this, std::move(grouped.name), grouped.key_serde ? grouped.key_serde : key_serde_,
      grouped.value_serde ? grouped.value_serde : value_serde_});
}

template <class K, class V>
template <class F, class K2>
KGroupedStream<K2, V> KStream<K, V>::group_by(F selector, Grouped<K2, V> grouped) const {
  KStream<K2, V> selected = select_key(std::move(selector), grouped.name);
  return KGroupedStream<K2, V>(
      internal::GroupedSource<K2, V>{selected, std::move(grouped.name),
                                     grouped.key_serde ? grouped.key_serde : selected.key_serde(),
                                     grouped.value_serde ? grouped.value_serde : value_serde_});
}

}  // namespace rill
