// KTable: a table that changes over time, as Kafka Streams' KTable. It comes
// from StreamsBuilder::table or from an aggregation, and flows downstream as
// its updates: Record<K, std::optional<V>>, where std::nullopt deletes the key
// (a tombstone).
//
//   builder.stream("clicks", rill::serdes::string(), rill::serdes::string())
//       .group_by_key()
//       .count()
//       .to_stream()
//       .to("click-counts", rill::serdes::string(), rill::serdes::int64());
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "rill/operators/ktable_ops.h"
#include "rill/operators/suppress.h"
#include "rill/serde.h"
#include "rill/state.h"
#include "rill/streams_builder.h"
#include "rill/topology.h"
#include "rill/value_and_timestamp.h"

namespace rill {

// How a windowed table's results are held back. Only until_window_closes (one
// final result per window, when the window closes) exists so far.
struct Suppressed {
  // Emits each window's final result once stream time has passed the window's
  // end by the grace period (for sessions: by the inactivity gap plus the grace
  // period), and nothing before. The buffer is unbounded.
  static Suppressed until_window_closes() { return {}; }
  // Names the node, and the buffer's store "<name>-store". Default: generated.
  Suppressed with_name(std::string node_name) const {
    Suppressed named = *this;
    named.name = std::move(node_name);
    return named;
  }

  std::string name = {};
};

namespace internal {

template <class T>
struct IsWindowed : std::false_type {};
template <class K>
struct IsWindowed<Windowed<K>> : std::true_type {
  using Key = K;
};

template <class T>
struct UnwrapOptional {
  using Type = T;
};
template <class T>
struct UnwrapOptional<std::optional<T>> {
  using Type = T;
};

template <class T, class Old>
SerdePtr<T> serde_if_same(const SerdePtr<Old>& old) {
  if constexpr (std::is_same_v<T, Old>) {
    return old;
  } else {
    return default_serde<T>();
  }
}

}  // namespace internal

template <class K, class V>
class KTable {
 public:
  KTable() = default;
  // Used by the DSL. `store` is the store holding the table, empty when it is
  // not materialized; `close_delay_ms`, for windowed tables from a windowed
  // aggregation, is how long after a window's end it closes.
  KTable(StreamsBuilder* builder, std::string node, SerdePtr<K> key_serde, SerdePtr<V> value_serde,
         std::string store = {}, std::optional<int64_t> close_delay_ms = std::nullopt)
      : builder_(builder),
        node_(std::move(node)),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)),
        store_(std::move(store)),
        close_delay_ms_(close_delay_ms) {}

  // The table's updates as a stream; a deletion is a record whose value is
  // std::nullopt, written as null by a sink.
  KStream<K, std::optional<V>> to_stream(std::string name = {}) const {
    std::string node = builder_->name_or_new(std::move(name), "KTABLE-TOSTREAM");
    builder_->topology().add_processor(
        node, [] { return std::make_unique<operators::TableToStreamProcessor<K, V>>(); }, {node_});
    return KStream<K, std::optional<V>>(builder_, node, key_serde_,
                                        value_serde_ ? serdes::nullable<V>(value_serde_) : nullptr,
                                        false);
  }

  // f(value) or f(key, value) -> the new value. A mapper that returns
  // std::optional<V2> makes a KTable<K, V2> in which std::nullopt deletes the key.
  template <class F>
  auto map_values(F f, std::string name = {}) const {
    using Mapped = internal::ValueResult<F, K, V>;
    using V2 = typename internal::UnwrapOptional<Mapped>::Type;
    std::string node = builder_->name_or_new(std::move(name), "KTABLE-MAPVALUES");
    builder_->topology().add_processor(
        node,
        [f] {
          return std::make_unique<operators::TableMapValuesProcessor<K, V, V2>>(
              [f](const K& key, const V& value) mutable -> std::optional<V2> {
                return internal::call_with_value(f, key, value);
              });
        },
        {node_});
    return KTable<K, V2>(builder_, node, key_serde_, internal::serde_if_same<V2, V>(value_serde_),
                         {}, close_delay_ms_);
  }

  // Keeps the rows for which predicate(value) (or predicate(key, value)) is
  // true; an update failing it becomes a deletion of its key.
  template <class F>
  KTable filter(F predicate, std::string name = {}) const {
    return add_filter(std::move(predicate), true, std::move(name));
  }
  // Keeps the rows for which the predicate is false.
  template <class F>
  KTable filter_not(F predicate, std::string name = {}) const {
    return add_filter(std::move(predicate), false, std::move(name));
  }

  // Windowed tables from a windowed aggregation only: holds each window's
  // result back until the window closes, then emits it once. Deletions are
  // never emitted.
  KTable suppress(const Suppressed& suppressed) const requires internal::IsWindowed<K>::value {
    using Inner = typename internal::IsWindowed<K>::Key;
    if (!close_delay_ms_)
      throw TopologyError("suppress(until_window_closes) after '" + node_ +
                          "': the table does not come from a windowed aggregation");
    if (!value_serde_)
      throw TopologyError("suppress(until_window_closes) after '" + node_ +
                          "': no value serde for type " + internal::demangle(typeid(V)) +
                          " to buffer the results with");
    // Kafka Streams names the node before the store.
    std::string node =
        suppressed.name.empty() ? builder_->new_name("KTABLE-SUPPRESS") : suppressed.name;
    std::string store = suppressed.name.empty() ? builder_->new_name("KTABLE-SUPPRESS-STATE-STORE")
                                                : suppressed.name + "-store";
    const int64_t delay = *close_delay_ms_;
    SerdePtr<K> key_serde = key_serde_;
    builder_->topology().add_processor(
        node,
        [store, delay, key_serde] {
          return std::make_unique<operators::WindowCloseSuppressProcessor<Inner, V>>(store, delay,
                                                                                     key_serde);
        },
        {node_});
    builder_->topology().add_state_store(
        Stores::key_value<K, ValueAndTimestamp<V>>(store, key_serde_,
                                                   serdes::value_and_timestamp<V>(value_serde_))
            .in_memory(),
        {node});
    return KTable(builder_, node, key_serde_, value_serde_, {}, close_delay_ms_);
  }

  const std::string& node_name() const { return node_; }
  // The store holding the table, for get_timestamped_key_value_store and
  // similar; empty when the table is not materialized.
  const std::string& queryable_store_name() const { return store_; }
  const SerdePtr<K>& key_serde() const { return key_serde_; }
  const SerdePtr<V>& value_serde() const { return value_serde_; }
  StreamsBuilder* builder() const { return builder_; }

 private:
  template <class F>
  KTable add_filter(F predicate, bool keep_when, std::string name) const {
    std::string node = builder_->name_or_new(std::move(name), "KTABLE-FILTER");
    builder_->topology().add_processor(
        node,
        [predicate, keep_when] {
          return std::make_unique<operators::TableFilterProcessor<K, V>>(
              [predicate](const K& key, const V& value) mutable {
                return static_cast<bool>(internal::call_with_value(predicate, key, value));
              },
              keep_when);
        },
        {node_});
    return KTable(builder_, node, key_serde_, value_serde_, {}, close_delay_ms_);
  }

  StreamsBuilder* builder_ = nullptr;
  std::string node_;
  SerdePtr<K> key_serde_;
  SerdePtr<V> value_serde_;
  std::string store_;
  std::optional<int64_t> close_delay_ms_;
};

// ---------------------------------------------------------------------------
// Implementation of the templates above.

template <class K, class V>
KTable<K, V> StreamsBuilder::table(std::string topic, SerdePtr<K> key_serde,
                                   SerdePtr<V> value_serde, Materialized<K, V> materialized) {
  return table<K, V>(std::move(topic), Consumed<K, V>{std::move(key_serde), std::move(value_serde)},
                     std::move(materialized));
}

template <class K, class V>
KTable<K, V> StreamsBuilder::table(std::string topic, Consumed<K, V> consumed,
                                   Materialized<K, V> materialized) {
  // Kafka Streams names the store first, then the source, then the table node.
  std::string store = name_or_new(std::move(materialized.store_name), topic + "-STATE-STORE");
  std::string source = name_or_new(std::move(consumed.name), "KSTREAM-SOURCE");
  std::string node = new_name("KTABLE-SOURCE");
  SerdePtr<K> key_serde = materialized.key_serde ? materialized.key_serde : consumed.key_serde;
  SerdePtr<V> value_serde =
      materialized.value_serde ? materialized.value_serde : consumed.value_serde;
  if (!key_serde || !value_serde)
    throw TopologyError("table '" + topic + "': no " + (key_serde ? "value" : "key") +
                        " serde for type " + internal::demangle(key_serde ? typeid(V) : typeid(K)));

  TimestampExtractor<K, std::optional<V>> extractor;
  if (consumed.timestamp_extractor) {
    extractor = [inner = consumed.timestamp_extractor](const Record<K, std::optional<V>>& r) {
      if (!r.value) return r.timestamp;
      return inner(Record<K, V>{r.key, *r.value, r.timestamp, r.headers});
    };
  }
  topology_.add_source<K, std::optional<V>>(
      source, {std::move(topic)}, consumed.key_serde ? consumed.key_serde : key_serde,
      serdes::nullable<V>(consumed.value_serde ? consumed.value_serde : value_serde), extractor);
  const bool caching = materialized.caching_enabled;
  topology_.add_processor(node,
                          [store, caching] {
                            return std::make_unique<operators::TableSourceProcessor<K, V>>(store,
                                                                                           caching);
                          },
                          {source});
  topology_.add_state_store(
      internal::materialize(Stores::key_value<K, ValueAndTimestamp<V>>(
                                store, key_serde, serdes::value_and_timestamp<V>(value_serde)),
                            materialized),
      {node});
  return KTable<K, V>(this, node, key_serde, value_serde, store);
}

}  // namespace rill
