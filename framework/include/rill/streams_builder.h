// The DSL: StreamsBuilder and KStream build a Topology from chained operations,
// with record types inferred from the functions given to them.
//
//   rill::StreamsBuilder builder;
//   builder.stream("lines", rill::serdes::string(), rill::serdes::string())
//       .flat_map_values([](const std::string& line) { return split_words(line); })
//       .select_key([](const std::string&, const std::string& word) { return word; })
//       .to("words");
//   rill::Topology topology = builder.build();
#pragma once

#include <chrono>
#include <concepts>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "rill/operators/stream_stream_join.h"
#include "rill/operators/stream_table_join.h"
#include "rill/processor.h"
#include "rill/record.h"
#include "rill/serde.h"
#include "rill/state.h"
#include "rill/topology.h"
#include "rill/value_and_timestamp.h"

namespace rill {

template <class K, class V>
class KStream;
template <class K, class V>
class KTable;
template <class K, class V>
class KGroupedStream;
template <class K, class V>
class GlobalKTable;

// How a stream is read: serdes, an optional timestamp extractor and a name for
// the source node.
template <class K, class V>
struct Consumed {
  SerdePtr<K> key_serde = default_serde<K>();
  SerdePtr<V> value_serde = default_serde<V>();
  TimestampExtractor<K, V> timestamp_extractor = {};
  std::string name = {};
};

// How a stream is written: serdes, an optional partitioner and a name for the sink.
template <class K, class V>
struct Produced {
  SerdePtr<K> key_serde = nullptr;    // Default: the stream's key serde.
  SerdePtr<V> value_serde = nullptr;  // Default: the stream's value serde.
  Partitioner<K, V> partitioner = {};
  std::string name = {};
};

// How a stream is repartitioned: the topic is "<application.id>-<name>-repartition".
template <class K, class V>
struct Repartitioned {
  std::string name = {};
  // Default: the partition count of the sub-topology that writes the topic.
  std::optional<int32_t> partitions = std::nullopt;
  SerdePtr<K> key_serde = nullptr;    // Default: the stream's key serde.
  SerdePtr<V> value_serde = nullptr;  // Default: the stream's value serde.
};

// How a stream is grouped for an aggregation. When the key changed upstream,
// the records go through the topic "<application.id>-<name>-repartition".
template <class K, class V>
struct Grouped {
  // Default: the name of the aggregation's store, as Kafka Streams does.
  std::string name = {};
  SerdePtr<K> key_serde = nullptr;    // Default: the stream's key serde.
  SerdePtr<V> value_serde = nullptr;  // Default: the stream's value serde.
};

// How a stream is joined with a table, as Kafka Streams' Joined: names the
// join node, and the topic "<application.id>-<name>-repartition" the stream
// goes through first when its key changed upstream (without a name, the
// topic takes the name of the stream's last node).
template <class K, class V>
struct Joined {
  std::string name = {};
  SerdePtr<K> key_serde = nullptr;    // Default: the stream's key serde.
  SerdePtr<V> value_serde = nullptr;  // Default: the stream's value serde.
};

// How two streams are joined, as Kafka Streams' StreamJoined. `name` names the
// join's nodes ("<name>-this-join", "<name>-other-join", "<name>-merge", ...)
// and the topics "<application.id>-<name>-left-repartition" and
// "-right-repartition" a side goes through first when its key changed
// upstream (without a name, the topic takes the name of the side's last
// node). `store_name` names the window stores "<store_name>-this-join-store"
// and "<store_name>-other-join-store" and the store of unjoined records
// "<store_name>-left-shared-join-store" (or outer-); without it they are named
// after the join nodes, as Kafka Streams does.
template <class K, class V, class VO>
struct StreamJoined {
  std::string name = {};
  std::string store_name = {};
  SerdePtr<K> key_serde = nullptr;           // Default: the stream's key serde.
  SerdePtr<V> value_serde = nullptr;         // Default: this stream's value serde.
  SerdePtr<VO> other_value_serde = nullptr;  // Default: the other stream's value serde.
  // Keep the stores in memory rather than in RocksDB. Default: false.
  bool in_memory = false;
  // Write every change to the stores' changelog topics. Default: true.
  bool logging_enabled = true;
  // Changelog topic configs, over the defaults. Default: none.
  std::map<std::string, std::string> log_config = {};
};

// The state store an aggregation or a table keeps its results in, as Kafka
// Streams' Materialized. Its changelog topic is
// "<application.id>-<store_name>-changelog".
template <class K, class V>
struct Materialized {
  // Default: generated as Kafka Streams does, e.g.
  // "KSTREAM-AGGREGATE-STATE-STORE-0000000003", or for a table
  // "<topic>-STATE-STORE-0000000000".
  std::string store_name = {};
  // Default: the grouped stream's key serde.
  SerdePtr<K> key_serde = nullptr;
  // Default: int64 for count, the stream's value serde for reduce,
  // default_serde<V>() for aggregate and table.
  SerdePtr<V> value_serde = nullptr;
  // Keep the store in memory rather than in RocksDB; it is restored from its
  // changelog after a restart. Default: false.
  bool in_memory = false;
  // Write every change to the changelog topic. Default: true.
  bool logging_enabled = true;
  // Changelog topic configs, over the defaults. Default: none.
  std::map<std::string, std::string> log_config = {};
  // Key-value and window stores: let the record cache
  // (statestore.cache.max.bytes) fold the updates of a key (or window) until
  // the next commit. Session stores have no cache. Default: true.
  bool caching_enabled = true;
  // Window and session stores: how long windows are kept. Default and
  // minimum: window size + grace (sliding windows: 2 x time difference +
  // grace; sessions: inactivity gap + grace).
  std::optional<std::chrono::milliseconds> retention = std::nullopt;
  // A table read from a topic: keep every version of each row for this long
  // in a VersionedKeyValueStore (no record cache), so that a stream-table
  // join reads the row as of each record's timestamp. Default: none (the
  // latest row only).
  std::optional<std::chrono::milliseconds> history_retention = std::nullopt;
  // How the query endpoint shows a stored value that is JSON, from its JSON
  // text. Default: as stored. (A YAML aggregation stores the states of its
  // aggregations and shows their result.)
  std::function<std::string(std::string_view json)> query_json = nullptr;

  static Materialized as(std::string name) {
    Materialized materialized;
    materialized.store_name = std::move(name);
    return materialized;
  }
  // A versioned table's store (see history_retention).
  static Materialized as_versioned(std::string name, std::chrono::milliseconds history_retention) {
    Materialized materialized = as(std::move(name));
    materialized.history_retention = history_retention;
    return materialized;
  }
};

namespace internal {

// Whether a table's processor sends old values with its updates (Kafka
// Streams' sendOldValues), which KTable::group_by needs. group_by turns it on
// after the processor was added; the processor factories share it and read it
// when tasks create their processors. A table computed from another without
// a store of its own (map_values, filter) turns on its parent's too.
struct SendOldValues {
  bool enabled = false;
  std::shared_ptr<SendOldValues> parent = nullptr;
  // A join's second parent.
  std::shared_ptr<SendOldValues> other_parent = nullptr;

  void enable() {
    enabled = true;
    if (parent) parent->enable();
    if (other_parent) other_parent->enable();
  }
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

// Applies a store's Materialized options to its builder.
template <class K, class V>
StoreBuilder materialize(StoreBuilder store, const Materialized<K, V>& materialized) {
  if (materialized.history_retention && !store.spec().versioned)
    throw TopologyError("store '" + store.name() +
                        "': only a table read from a topic can be versioned (history_retention)");
  if (materialized.in_memory) store.in_memory();
  if (materialized.query_json) store.with_query_json(materialized.query_json);
  if (materialized.logging_enabled)
    store.with_logging_enabled(materialized.log_config);
  else
    store.with_logging_disabled();
  return store;
}

}  // namespace internal

class StreamsBuilder {
 public:
  // A stream of the records of `topic`, typed by its serdes.
  template <class K, class V>
  KStream<K, V> stream(std::string topic, SerdePtr<K> key_serde, SerdePtr<V> value_serde) {
    return stream<K, V>(std::vector<std::string>{std::move(topic)},
                        Consumed<K, V>{std::move(key_serde), std::move(value_serde)});
  }
  template <class K, class V>
  KStream<K, V> stream(std::string topic, Consumed<K, V> consumed = {}) {
    return stream<K, V>(std::vector<std::string>{std::move(topic)}, std::move(consumed));
  }
  template <class K, class V>
  KStream<K, V> stream(std::vector<std::string> topics, Consumed<K, V> consumed = {});

  // The table whose rows are the latest value per key of `topic` (a null value
  // deletes the key), materialized in a key-value store.
  template <class K, class V>
  KTable<K, V> table(std::string topic, SerdePtr<K> key_serde, SerdePtr<V> value_serde,
                     Materialized<K, V> materialized = {});
  template <class K, class V>
  KTable<K, V> table(std::string topic, Consumed<K, V> consumed = {},
                     Materialized<K, V> materialized = {});

  // The table of `topic` held whole by every instance (see rill/global_ktable.h):
  // a global store named by `materialized` (in memory when it says so;
  // never cached, never changelogged), which every processor can read.
  template <class K, class V>
  GlobalKTable<K, V> global_table(std::string topic, SerdePtr<K> key_serde, SerdePtr<V> value_serde,
                                  Materialized<K, V> materialized = {});
  template <class K, class V>
  GlobalKTable<K, V> global_table(std::string topic, Consumed<K, V> consumed = {},
                                  Materialized<K, V> materialized = {});

  // The topology built so far, validated (throws TopologyError).
  Topology build() const {
    Topology copy = topology_;
    copy.build();
    return copy;
  }

  // Internal: "<PREFIX>-0000000007", numbered like Kafka Streams' generated names.
  std::string new_name(std::string_view prefix) {
    char index[16];
    std::snprintf(index, sizeof index, "%010d", next_index_++);
    return std::string(prefix) + "-" + index;
  }
  std::string name_or_new(std::string name, std::string_view prefix) {
    return name.empty() ? new_name(prefix) : std::move(name);
  }
  Topology& topology() { return topology_; }

 private:
  Topology topology_;
  int next_index_ = 0;
};

namespace internal {

// The names and serdes of a table read from a topic (StreamsBuilder::table and
// global_table), named as Kafka Streams names them: the store first, then the
// source, then the table's node. `what` names the table in errors.
template <class K, class V>
struct TableSource {
  std::string store, source, node;
  // The store's serdes: Materialized's, or Consumed's.
  SerdePtr<K> key_serde;
  SerdePtr<V> value_serde;
  // The source's: Consumed's, or the store's; null values read as std::nullopt.
  SerdePtr<K> source_key_serde;
  SerdePtr<std::optional<V>> source_value_serde;
};
template <class K, class V>
TableSource<K, V> table_source(StreamsBuilder& builder, std::string_view what,
                               const std::string& topic, Consumed<K, V>& consumed,
                               Materialized<K, V>& materialized) {
  TableSource<K, V> table;
  table.store = builder.name_or_new(std::move(materialized.store_name), topic + "-STATE-STORE");
  table.source = builder.name_or_new(std::move(consumed.name), "KSTREAM-SOURCE");
  table.node = builder.new_name("KTABLE-SOURCE");
  table.key_serde = materialized.key_serde ? materialized.key_serde : consumed.key_serde;
  table.value_serde = materialized.value_serde ? materialized.value_serde : consumed.value_serde;
  if (!table.key_serde || !table.value_serde)
    throw TopologyError(std::string(what) + " '" + topic + "': no " +
                        (table.key_serde ? "value" : "key") + " serde for type " +
                        demangle(table.key_serde ? typeid(V) : typeid(K)));
  table.source_key_serde = consumed.key_serde ? consumed.key_serde : table.key_serde;
  table.source_value_serde =
      serdes::nullable<V>(consumed.value_serde ? consumed.value_serde : table.value_serde);
  return table;
}

// Adds a table's processor `node` after `parent`, made by make(store, caching,
// send_old_values), and the key-value store holding the table; returns the
// table. Sources, to_table and the aggregations of grouped streams and tables
// are such processors.
template <class K, class V, class Make>
KTable<K, V> add_materialized_table(StreamsBuilder& builder, const std::string& node,
                                    const std::string& parent, const std::string& store,
                                    SerdePtr<K> key_serde, SerdePtr<V> value_serde,
                                    const Materialized<K, V>& materialized, Make make) {
  auto old_values = std::make_shared<SendOldValues>();
  builder.topology().add_processor(
      node,
      [make, store, caching = materialized.caching_enabled, old_values] {
        return make(store, caching, old_values->enabled);
      },
      {parent});
  builder.topology().add_state_store(
      materialize(Stores::key_value<K, ValueAndTimestamp<V>>(
                      store, key_serde, serdes::value_and_timestamp<V>(value_serde)),
                  materialized),
      {node});
  return KTable<K, V>(&builder, node, std::move(key_serde), std::move(value_serde), store,
                      std::nullopt, std::move(old_values));
}

// A processor made of one function of (record, context): every stateless DSL
// operation is one of these.
template <class KIn, class VIn, class KOut, class VOut, class F>
class FunctionProcessor final : public Processor<KIn, VIn, KOut, VOut> {
 public:
  explicit FunctionProcessor(F fn) : fn_(std::move(fn)) {}
  void init(ProcessorContext<KOut, VOut>& context) override { context_ = &context; }
  void process(const Record<KIn, VIn>& record) override { fn_(record, *context_); }

 private:
  F fn_;
  ProcessorContext<KOut, VOut>* context_ = nullptr;
};

// Calls f(value) or f(key, value), whichever f accepts.
template <class F, class K, class V>
decltype(auto) call_with_value(F& f, const K& key, const V& value) {
  if constexpr (std::is_invocable_v<F&, const K&, const V&>) {
    return f(key, value);
  } else {
    return f(value);
  }
}
template <class F, class K, class V>
using ValueResult = std::decay_t<decltype(call_with_value(
    std::declval<F&>(), std::declval<const K&>(), std::declval<const V&>()))>;

// Calls f(key, value, other, record), f(key, value, other) or f(value, other),
// whichever f accepts.
template <class F, class K, class V, class O>
decltype(auto) call_joiner(F& f, const K& key, const V& value, const O& other,
                           const RecordContext& record) {
  if constexpr (std::is_invocable_v<F&, const K&, const V&, const O&, const RecordContext&>) {
    return f(key, value, other, record);
  } else if constexpr (std::is_invocable_v<F&, const K&, const V&, const O&>) {
    return f(key, value, other);
  } else {
    return f(value, other);
  }
}
template <class F, class K, class V, class O>
using JoinResult = std::decay_t<decltype(call_joiner(
    std::declval<F&>(), std::declval<const K&>(), std::declval<const V&>(),
    std::declval<const O&>(), std::declval<const RecordContext&>()))>;

// A foreign-key extractor: f(value) or f(key, value) giving KO, or a
// std::optional<KO> that may give none.
template <class FK, class K, class V, class KO>
concept ForeignKeyExtractor =
    (std::is_invocable_v<FK&, const K&, const V&> &&
     std::is_convertible_v<std::invoke_result_t<FK&, const K&, const V&>, std::optional<KO>>) ||
    (std::is_invocable_v<FK&, const V&> &&
     std::is_convertible_v<std::invoke_result_t<FK&, const V&>, std::optional<KO>>);

// A table join's joiner: f(key, value, other_value) or f(value, other_value).
template <class F, class K, class V, class O>
requires std::is_invocable_v<F&, const K&, const V&, const O&>
auto call_table_joiner(F& f, const K& key, const V& value, const O& other) {
  return f(key, value, other);
}
template <class F, class K, class V, class O>
requires(!std::is_invocable_v<F&, const K&, const V&, const O&> &&
         std::is_invocable_v<F&, const V&, const O&>) auto call_table_joiner(F& f, const K&,
                                                                             const V& value,
                                                                             const O& other) {
  return f(value, other);
}
template <class F, class K, class V, class O>
using TableJoinResult =
    std::decay_t<decltype(call_table_joiner(std::declval<F&>(), std::declval<const K&>(),
                                            std::declval<const V&>(), std::declval<const O&>()))>;

template <class K, class V, class KO, class FK>
std::function<std::optional<KO>(const K&, const V&)> foreign_key_function(FK f) {
  return [f](const K& key, const V& value) mutable -> std::optional<KO> {
    return call_with_value(f, key, value);
  };
}

template <class T>
struct KeyValueTypes;
template <class K, class V>
struct KeyValueTypes<KeyValue<K, V>> {
  using Key = K;
  using Value = V;
};
template <class K, class V>
struct KeyValueTypes<std::pair<K, V>> {
  using Key = K;
  using Value = V;
};
template <class T>
auto kv_key(T&& kv) {
  if constexpr (requires { kv.key; })
    return std::forward<T>(kv).key;
  else
    return std::forward<T>(kv).first;
}
template <class T>
auto kv_value(T&& kv) {
  if constexpr (requires { kv.value; })
    return std::forward<T>(kv).value;
  else
    return std::forward<T>(kv).second;
}

}  // namespace internal

// Routes each record to the first branch whose predicate accepts it.
template <class K, class V>
class BranchedKStream {
 public:
  using Predicate = std::function<bool(const K&, const V&)>;

  // Adds a branch named "<split name>-<name>".
  template <class F>
  BranchedKStream& branch(std::string name, F predicate);
  // Records no branch accepted go to this branch; without one they are dropped.
  BranchedKStream& default_branch(std::string name = "default");
  // The branches by their full names.
  const std::map<std::string, KStream<K, V>>& branches() const { return branches_; }
  const KStream<K, V>& operator[](const std::string& name) const;

 private:
  friend class KStream<K, V>;
  struct Route {
    std::string child;
    Predicate predicate;  // Empty for the default branch.
  };
  BranchedKStream(const KStream<K, V>& parent, std::string split_name);
  KStream<K, V> add_branch(const std::string& name);

  const KStream<K, V>* parent_ = nullptr;
  KStream<K, V> parent_copy_;
  std::string split_name_;
  std::shared_ptr<std::vector<Route>> routes_;
  std::map<std::string, KStream<K, V>> branches_;
};

template <class K, class V>
class KStream {
 public:
  KStream() = default;
  KStream(StreamsBuilder* builder, std::string node, SerdePtr<K> key_serde, SerdePtr<V> value_serde,
          bool repartition_required)
      : builder_(builder),
        node_(std::move(node)),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)),
        repartition_required_(repartition_required) {}

  // f(key, value) -> KeyValue{new_key, new_value} (or std::pair). Changes the key,
  // so a keyed operation after it repartitions.
  template <class F>
  auto map(F f, std::string name = {}) const {
    using Result = std::decay_t<std::invoke_result_t<F&, const K&, const V&>>;
    using K2 = typename internal::KeyValueTypes<Result>::Key;
    using V2 = typename internal::KeyValueTypes<Result>::Value;
    return add<K2, V2>(
        "KSTREAM-MAP", std::move(name), true,
        [f](const Record<K, V>& r, ProcessorContext<K2, V2>& ctx) mutable {
          auto kv = f(r.key, r.value);
          ctx.forward(Record<K2, V2>{internal::kv_key(std::move(kv)),
                                     internal::kv_value(std::move(kv)), r.timestamp, r.headers});
        });
  }

  // f(value) or f(key, value) -> new value. Keeps the key.
  template <class F>
  auto map_values(F f, std::string name = {}) const {
    using V2 = internal::ValueResult<F, K, V>;
    return add<K, V2>(
        "KSTREAM-MAPVALUES", std::move(name), repartition_required_,
        [f](const Record<K, V>& r, ProcessorContext<K, V2>& ctx) mutable {
          ctx.forward(Record<K, V2>{r.key, internal::call_with_value(f, r.key, r.value),
                                    r.timestamp, r.headers});
        });
  }

  // Keeps the records for which f(key, value) (or f(value)) is true.
  template <class F>
  KStream filter(F predicate, std::string name = {}) const {
    return add<K, V>("KSTREAM-FILTER", std::move(name), repartition_required_,
                     [predicate](const Record<K, V>& r, ProcessorContext<K, V>& ctx) mutable {
                       if (internal::call_with_value(predicate, r.key, r.value)) ctx.forward(r);
                     });
  }

  // Keeps the records for which the predicate is false.
  template <class F>
  KStream filter_not(F predicate, std::string name = {}) const {
    return add<K, V>("KSTREAM-FILTER", std::move(name), repartition_required_,
                     [predicate](const Record<K, V>& r, ProcessorContext<K, V>& ctx) mutable {
                       if (!internal::call_with_value(predicate, r.key, r.value)) ctx.forward(r);
                     });
  }

  // f(key, value) -> a range of KeyValue (or std::pair): zero or more records each.
  template <class F>
  auto flat_map(F f, std::string name = {}) const {
    using Range = std::decay_t<std::invoke_result_t<F&, const K&, const V&>>;
    using Result = std::decay_t<decltype(*std::begin(std::declval<Range&>()))>;
    using K2 = typename internal::KeyValueTypes<Result>::Key;
    using V2 = typename internal::KeyValueTypes<Result>::Value;
    return add<K2, V2>(
        "KSTREAM-FLATMAP", std::move(name), true,
        [f](const Record<K, V>& r, ProcessorContext<K2, V2>& ctx) mutable {
          for (auto&& kv : f(r.key, r.value))
            ctx.forward(Record<K2, V2>{internal::kv_key(std::move(kv)),
                                       internal::kv_value(std::move(kv)), r.timestamp, r.headers});
        });
  }

  // f(value) or f(key, value) -> a range of values: zero or more records each,
  // with the same key.
  template <class F>
  auto flat_map_values(F f, std::string name = {}) const {
    using Range = internal::ValueResult<F, K, V>;
    using V2 = std::decay_t<decltype(*std::begin(std::declval<Range&>()))>;
    return add<K, V2>(
        "KSTREAM-FLATMAPVALUES", std::move(name), repartition_required_,
        [f](const Record<K, V>& r, ProcessorContext<K, V2>& ctx) mutable {
          for (auto&& value : internal::call_with_value(f, r.key, r.value))
            ctx.forward(Record<K, V2>{r.key, std::move(value), r.timestamp, r.headers});
        });
  }

  // f(key, value) -> new key. A keyed operation after it repartitions.
  template <class F>
  auto select_key(F f, std::string name = {}) const {
    using K2 = std::decay_t<std::invoke_result_t<F&, const K&, const V&>>;
    return add<K2, V>(
        "KSTREAM-KEY-SELECT", std::move(name), true,
        [f](const Record<K, V>& r, ProcessorContext<K2, V>& ctx) mutable {
          ctx.forward(Record<K2, V>{f(r.key, r.value), r.value, r.timestamp, r.headers});
        });
  }

  // Calls f(key, value) for each record and passes the record on.
  template <class F>
  KStream peek(F f, std::string name = {}) const {
    return add<K, V>("KSTREAM-PEEK", std::move(name), repartition_required_,
                     [f](const Record<K, V>& r, ProcessorContext<K, V>& ctx) mutable {
                       f(r.key, r.value);
                       ctx.forward(r);
                     });
  }

  // Calls f(key, value) for each record; ends the stream.
  template <class F>
  void foreach (F f, std::string name = {}) const {
    add<K, V>("KSTREAM-FOREACH", std::move(name), false,
              [f](const Record<K, V>& r, ProcessorContext<K, V>&) mutable { f(r.key, r.value); });
  }

  // Splits the stream into branches by predicates.
  BranchedKStream<K, V> split(std::string name = {}) const {
    return BranchedKStream<K, V>(*this, builder_->name_or_new(std::move(name), "KSTREAM-BRANCH"));
  }

  // The records of both streams, interleaved as they arrive.
  KStream merge(const KStream& other, std::string name = {}) const {
    std::string node = builder_->name_or_new(std::move(name), "KSTREAM-MERGE");
    builder_->topology().add_processor(
        node,
        [] {
          return std::make_unique<internal::FunctionProcessor<K, V, K, V, Forward>>(Forward{});
        },
        {node_, other.node_});
    return KStream(builder_, node, key_serde_, value_serde_,
                   repartition_required_ || other.repartition_required_);
  }

  // Runs a Processor API processor in the stream. `factory` returns
  // std::unique_ptr<P>; the stream's new types are P's output types.
  template <class Factory>
  auto process(Factory factory, std::string name = {}) const {
    using P = typename std::invoke_result_t<Factory>::element_type;
    using K2 = typename P::KeyOut;
    using V2 = typename P::ValueOut;
    std::string node = builder_->name_or_new(std::move(name), "KSTREAM-PROCESSOR");
    builder_->topology().add_processor(node, std::move(factory), {node_});
    return KStream<K2, V2>(builder_, node, default_serde_if_same<K2, K>(key_serde_),
                           default_serde_if_same<V2, V>(value_serde_), true);
  }

  // Writes the stream to an internal topic and reads it back, so that records
  // with the same key land in the same partition (and task).
  KStream repartition(Repartitioned<K, V> options = {}) const;

  // The table of each key's latest value, as Kafka Streams' toTable: a null
  // value (std::nullopt, JSON null) deletes the key. Materialized in a
  // key-value store ("KSTREAM-TOTABLE-STATE-STORE-<n>" unless named);
  // repartitioned first through "<name>-repartition" when the key changed
  // upstream. A stream of std::optional<T> makes a KTable<K, T>.
  template <class VT = typename internal::UnwrapOptional<V>::Type>
  KTable<K, VT> to_table(std::string name = {}, Materialized<K, VT> materialized = {}) const;

  // Groups the records by their key for an aggregation; they are repartitioned
  // first only when the key changed upstream.
  KGroupedStream<K, V> group_by_key(Grouped<K, V> grouped = {}) const;

  // Joins each record with the table's row for its key, as Kafka Streams'
  // KStream#join(KTable): joiner(value, row), joiner(key, value, row) or
  // joiner(key, value, row, RecordContext) gives the value; the key and
  // timestamp stay the record's. A record without a
  // row, or with a null key or value, goes no further; the table's updates
  // emit nothing. The stream and the table must be co-partitioned: when the
  // stream's key changed upstream it is repartitioned first (see Joined).
  template <class VT, class F, class VR = internal::JoinResult<F, K, V, VT>>
  KStream<K, VR> join(const KTable<K, VT>& table, F joiner, Joined<K, V> joined = {}) const;
  // As join, but a record without a row, or with a null key, goes on too: the
  // joiner's row is a std::optional<VT>, empty then.
  template <class VT, class F, class VR = internal::JoinResult<F, K, V, std::optional<VT>>>
  KStream<K, VR> left_join(const KTable<K, VT>& table, F joiner, Joined<K, V> joined = {}) const;
  // Joins each record with the global table's row for key_selector(key,
  // value), as Kafka Streams' KStream#join(GlobalKTable). Every instance holds
  // the whole table: no co-partitioning, no repartition. A selector giving
  // null (an empty std::optional, a JSON null) drops the record.
  template <class KG, class VG, class S, class F, class VR = internal::JoinResult<F, K, V, VG>>
  KStream<K, VR> join(const GlobalKTable<KG, VG>& table, S key_selector, F joiner,
                      std::string name = {}) const;
  // As join, but a record without a row, or whose selector gives null, goes on
  // too, with an empty std::optional<VG> as the row.
  template <class KG, class VG, class S, class F,
            class VR = internal::JoinResult<F, K, V, std::optional<VG>>>
  KStream<K, VR> left_join(const GlobalKTable<KG, VG>& table, S key_selector, F joiner,
                           std::string name = {}) const;
  // Joins the records of two streams with the same key whose timestamps are
  // within `windows` of each other, as Kafka Streams' KStream#join(KStream,
  // JoinWindows): each pair goes on with joiner(value, other_value),
  // joiner(key, value, other_value) or joiner(key, value, other_value,
  // RecordContext), at the later of the two timestamps. Records with a null key
  // or value join nothing. Both sides are kept in changelogged window stores for
  // before + after + grace. The streams must be co-partitioned: a side whose key
  // changed upstream is repartitioned first (see StreamJoined).
  template <class VO, class F, class VR = internal::JoinResult<F, K, V, VO>>
  KStream<K, VR> join(const KStream<K, VO>& other, F joiner, JoinWindows windows,
                      StreamJoined<K, V, VO> joined = {}) const {
    return join_streams<VO, VR>(
        other, false, false,
        [joiner](const K& key, const V* value, const VO* other_value,
                 const RecordContext& record) mutable {
          return internal::call_joiner(joiner, key, *value, *other_value, record);
        },
        windows, std::move(joined));
  }
  // As join, and a record of this stream that joined nothing goes on once its
  // window has closed (stream time past its time + after + grace), with an
  // empty std::optional<VO> as the other value. A record with a null key goes
  // on at once.
  template <class VO, class F, class VR = internal::JoinResult<F, K, V, std::optional<VO>>>
  KStream<K, VR> left_join(const KStream<K, VO>& other, F joiner, JoinWindows windows,
                           StreamJoined<K, V, VO> joined = {}) const {
    return join_streams<VO, VR>(
        other, true, false,
        [joiner](const K& key, const V* value, const VO* other_value,
                 const RecordContext& record) mutable {
          return internal::call_joiner(joiner, key, *value,
                                       other_value ? std::optional<VO>(*other_value) : std::nullopt,
                                       record);
        },
        windows, std::move(joined));
  }
  // As left_join, for the records of both streams: the joiner takes a
  // std::optional of each value, one of them empty for a record that joined
  // nothing.
  template <class VO, class F,
            class VR = internal::JoinResult<F, K, std::optional<V>, std::optional<VO>>>
  KStream<K, VR> outer_join(const KStream<K, VO>& other, F joiner, JoinWindows windows,
                            StreamJoined<K, V, VO> joined = {}) const {
    return join_streams<VO, VR>(
        other, true, true,
        [joiner](const K& key, const V* value, const VO* other_value,
                 const RecordContext& record) mutable {
          return internal::call_joiner(joiner, key, value ? std::optional<V>(*value) : std::nullopt,
                                       other_value ? std::optional<VO>(*other_value) : std::nullopt,
                                       record);
        },
        windows, std::move(joined));
  }
  // Groups the records by selector(key, value); always repartitions. The key
  // selection node takes the grouped name when there is one.
  template <class F, class K2 = std::decay_t<std::invoke_result_t<F&, const K&, const V&>>>
  KGroupedStream<K2, V> group_by(F selector, Grouped<K2, V> grouped = {}) const;

  // Writes the stream to `topic`.
  void to(std::string topic, Produced<K, V> produced = {}) const {
    add_sink(produced.name.empty() ? builder_->new_name("KSTREAM-SINK") : produced.name,
             TopicRef(std::move(topic)), produced.key_serde ? produced.key_serde : key_serde_,
             produced.value_serde ? produced.value_serde : value_serde_, produced.partitioner,
             std::nullopt);
  }
  void to(std::string topic, SerdePtr<K> key_serde, SerdePtr<V> value_serde) const {
    to(std::move(topic), Produced<K, V>{std::move(key_serde), std::move(value_serde)});
  }
  // For streams of table updates (KTable::to_stream): the serde of the value
  // type, with std::nullopt (a deletion) written as null.
  template <class Inner>
  requires std::same_as<V, std::optional<Inner>>
  void to(std::string topic, SerdePtr<K> key_serde, SerdePtr<Inner> value_serde) const {
    to(std::move(topic), std::move(key_serde), serdes::nullable<Inner>(std::move(value_serde)));
  }

  // Keeps a PostgreSQL table equal to this stream by key (rill/postgres.h):
  // each record upserts its key's row. `key_columns(key)` and
  // `value_columns(key, value)` give the texts of the key columns and of the
  // value columns, in the order the table declares them; by default the key
  // and the value themselves, for one column each of a string, number or
  // bool type. `name` names the sink: its topic
  // "<application.id>-<name>-sink", its consumer group and its offsets.
  void to_postgres(std::string name, PostgresTable table,
                   std::function<PostgresValues(const K&)> key_columns = {},
                   std::function<PostgresValues(const K&, const V&)> value_columns = {}) const;

  // For keyed operations: this stream if its key is unchanged since it was read,
  // otherwise a repartitioned copy named "<name>-repartition".
  KStream repartition_if_required(std::string name) const {
    if (!repartition_required_) return *this;
    return repartition(Repartitioned<K, V>{std::move(name)});
  }

  const std::string& node_name() const { return node_; }
  const SerdePtr<K>& key_serde() const { return key_serde_; }
  const SerdePtr<V>& value_serde() const { return value_serde_; }
  bool repartition_required() const { return repartition_required_; }
  StreamsBuilder* builder() const { return builder_; }

 private:
  friend class BranchedKStream<K, V>;
  template <class, class>
  friend class KStream;

  struct Forward {
    void operator()(const Record<K, V>& r, ProcessorContext<K, V>& ctx) const { ctx.forward(r); }
  };

  template <class T, class Old>
  static SerdePtr<T> default_serde_if_same(const SerdePtr<Old>& old) {
    if constexpr (std::is_same_v<T, Old>) {
      return old;
    } else {
      return default_serde<T>();
    }
  }

  template <class K2, class V2, class F>
  KStream<K2, V2> add(std::string_view prefix, std::string name, bool repartition_required,
                      F fn) const {
    std::string node = builder_->name_or_new(std::move(name), prefix);
    builder_->topology().add_processor(
        node, [fn] { return std::make_unique<internal::FunctionProcessor<K, V, K2, V2, F>>(fn); },
        {node_});
    return KStream<K2, V2>(builder_, node, default_serde_if_same<K2, K>(key_serde_),
                           default_serde_if_same<V2, V>(value_serde_), repartition_required);
  }

  template <class VT, class VR, class J>
  KStream<K, VR> join_table(const KTable<K, VT>& table, bool left, J joiner,
                            Joined<K, V> joined) const;
  template <class KG, class VG, class VR, class S, class J>
  KStream<K, VR> join_global(const GlobalKTable<KG, VG>& table, bool left, S key_selector, J joiner,
                             std::string name) const;
  template <class VO, class VR>
  KStream<K, VR> join_streams(const KStream<K, VO>& other, bool left_outer, bool right_outer,
                              typename operators::StreamJoinSpec<K, V, VO, VR>::Joiner joiner,
                              JoinWindows windows, StreamJoined<K, V, VO> joined) const;
  // Adds the join node `node` (inner or left) reading rows through `rows`,
  // connected to `stores`.
  template <class KT, class VT, class VR>
  KStream<K, VR> add_join(
      std::string node, bool left,
      typename operators::StreamTableJoinProcessor<K, V, KT, VT, VR>::JoinKey join_key,
      typename operators::StreamTableJoinProcessor<K, V, KT, VT, VR>::Joiner joiner,
      operators::RowReaderFactory<KT, VT> rows, std::vector<std::string> stores) const {
    builder_->topology().add_processor(
        node,
        [left, join_key, joiner, rows] {
          return std::make_unique<operators::StreamTableJoinProcessor<K, V, KT, VT, VR>>(
              rows, join_key, joiner, left);
        },
        {node_});
    if (!stores.empty()) builder_->topology().connect_processor_and_stores(node, std::move(stores));
    return KStream<K, VR>(builder_, node, key_serde_, default_serde_if_same<VR, V>(value_serde_),
                          repartition_required_);
  }

  void add_sink(std::string name, TopicRef topic, SerdePtr<K> key_serde, SerdePtr<V> value_serde,
                Partitioner<K, V> partitioner, std::optional<int32_t> partitions) const {
    builder_->topology().add_sink<K, V>(name, std::move(topic), {node_}, std::move(key_serde),
                                        std::move(value_serde), std::move(partitioner));
    if (partitions) builder_->topology().mutable_node(name).partitions = partitions;
  }

  StreamsBuilder* builder_ = nullptr;
  std::string node_;
  SerdePtr<K> key_serde_;
  SerdePtr<V> value_serde_;
  bool repartition_required_ = false;
};

// ---------------------------------------------------------------------------
// Implementation of the templates above.

template <class K, class V>
KStream<K, V> StreamsBuilder::stream(std::vector<std::string> topics, Consumed<K, V> consumed) {
  std::string node = name_or_new(std::move(consumed.name), "KSTREAM-SOURCE");
  topology_.add_source<K, V>(node, std::move(topics), consumed.key_serde, consumed.value_serde,
                             std::move(consumed.timestamp_extractor));
  return KStream<K, V>(this, node, consumed.key_serde, consumed.value_serde, false);
}

template <class K, class V>
KStream<K, V> KStream<K, V>::repartition(Repartitioned<K, V> options) const {
  std::string base = builder_->name_or_new(std::move(options.name), "KSTREAM-REPARTITION");
  SerdePtr<K> key_serde = options.key_serde ? options.key_serde : key_serde_;
  SerdePtr<V> value_serde = options.value_serde ? options.value_serde : value_serde_;
  TopicRef topic(base + "-repartition", true);
  add_sink(base + "-repartition-sink", topic, key_serde, value_serde, {}, options.partitions);
  std::string source = base + "-repartition-source";
  builder_->topology().template add_source<K, V>(source, {}, key_serde, value_serde);
  builder_->topology().mutable_node(source).topics.push_back(topic);
  return KStream<K, V>(builder_, source, key_serde, value_serde, false);
}

namespace internal {

// The columns of a key or value type that has a text of its own: that text.
template <class T>
std::function<PostgresValues(const T&)> own_text_columns() {
  if constexpr (kHasPostgresText<T>)
    return [](const T& value) { return PostgresValues{postgres_text(value)}; };
  else
    return {};
}

// `given`, or the value's own text for the one value column.
template <class K, class V>
std::function<PostgresValues(const K&, const V&)> value_columns_or_own(
    const std::string& sink, std::function<PostgresValues(const K&, const V&)> given) {
  if (given) return given;
  if (auto own = own_text_columns<V>())
    return [own](const K&, const V& value) { return own(value); };
  throw TopologyError("to_postgres '" + sink +
                      "': the value type has no text of its own; give value_columns");
}

// Declares a PostgreSQL sink, which throws TopologyError when its table is not
// declared whole, and returns the topic its rows go to through a sink node
// named "<name>-sink". On that topic a row's key is a JSON object of the key
// columns, its value one of the value columns, or null to delete the key's row.
inline TopicRef declare_postgres_sink(Topology& topology, std::string name, PostgresTable table) {
  TopicRef topic(name + "-sink", true);
  topology.add_postgres_sink({std::move(name), topic, std::move(table)});
  return topic;
}

// The rows of `stream` on the sink's topic, with a null value where
// `value_columns` gives nothing (a deletion).
template <class K, class VS, class ValueColumns>
void write_postgres_rows(const KStream<K, VS>& stream, std::string name, PostgresTable table,
                         std::function<PostgresValues(const K&)> key_columns,
                         ValueColumns value_columns) {
  if (!key_columns) key_columns = own_text_columns<K>();
  if (!key_columns)
    throw TopologyError("to_postgres '" + name +
                        "': the key type has no text of its own; give key_columns");
  Topology& topology = stream.builder()->topology();
  const std::vector<PostgresColumn> keys = table.key_columns, values = table.value_columns;
  const TopicRef topic = declare_postgres_sink(topology, name, std::move(table));
  using Row = std::optional<std::string>;
  auto rows = stream.map(
      [name, keys, values, key_columns, value_columns](const K& key, const VS& value) {
        std::optional<PostgresValues> columns = value_columns(key, value);
        return KeyValue<std::string, Row>{
            postgres_row_json(name, "key", keys, key_columns(key)),
            columns ? Row(postgres_row_json(name, "value", values, *columns)) : std::nullopt};
      },
      name + "-rows");
  topology.add_sink<std::string, Row>(name + "-sink", topic, {rows.node_name()}, serdes::string(),
                                      serdes::nullable<std::string>(serdes::string()));
}

}  // namespace internal

template <class K, class V>
void KStream<K, V>::to_postgres(
    std::string name, PostgresTable table, std::function<PostgresValues(const K&)> key_columns,
    std::function<PostgresValues(const K&, const V&)> value_columns) const {
  value_columns = internal::value_columns_or_own<K, V>(name, std::move(value_columns));
  internal::write_postgres_rows(
      *this, std::move(name), std::move(table), std::move(key_columns),
      [value_columns](const K& key, const V& value) -> std::optional<PostgresValues> {
        return value_columns(key, value);
      });
}

template <class K, class V>
template <class VO, class VR>
KStream<K, VR> KStream<K, V>::join_streams(
    const KStream<K, VO>& other, bool left_outer, bool right_outer,
    typename operators::StreamJoinSpec<K, V, VO, VR>::Joiner joiner, JoinWindows windows,
    StreamJoined<K, V, VO> joined) const {
  // Kafka Streams' names: the counters advance even when the nodes are named.
  const std::string this_windowed = builder_->new_name("KSTREAM-WINDOWED");
  const std::string other_windowed = builder_->new_name("KSTREAM-WINDOWED");
  const std::string this_join =
      builder_->new_name(right_outer ? "KSTREAM-OUTERTHIS" : "KSTREAM-JOINTHIS");
  const std::string other_join =
      builder_->new_name(left_outer ? "KSTREAM-OUTEROTHER" : "KSTREAM-JOINOTHER");
  const std::string merge = builder_->new_name("KSTREAM-MERGE");
  const std::string& name = joined.name;
  const std::string this_windowed_node = name.empty() ? this_windowed : name + "-this-windowed";
  const std::string other_windowed_node = name.empty() ? other_windowed : name + "-other-windowed";
  const std::string this_join_node =
      name.empty() ? this_join : name + (right_outer ? "-outer-this-join" : "-this-join");
  const std::string other_join_node =
      name.empty() ? other_join : name + (left_outer ? "-outer-other-join" : "-other-join");
  const std::string merge_node = name.empty() ? merge : name + "-merge";

  const std::string& stores = joined.store_name;
  operators::StreamJoinSpec<K, V, VO, VR> spec;
  spec.left_store = stores.empty()
                        ? this_join + "-store"
                        : stores + (right_outer ? "-outer-this-join-store" : "-this-join-store");
  spec.right_store = stores.empty()
                         ? other_join + "-store"
                         : stores + (left_outer ? "-outer-other-join-store" : "-other-join-store");
  if (left_outer)
    spec.unjoined_store =
        stores.empty()
            ? "KSTREAM-OUTERSHARED-" + this_join.substr(this_join.rfind('-') + 1) + "-store"
            : stores + (right_outer ? "-outer-shared-join-store" : "-left-shared-join-store");
  spec.before = windows.before_ms();
  spec.after = windows.after_ms();
  spec.grace = windows.grace_ms();
  spec.left_outer = left_outer;
  spec.right_outer = right_outer;
  spec.joiner = std::move(joiner);
  spec.times = std::make_shared<operators::JoinTimes>();

  const std::string what =
      "join '" + merge_node + "' of streams '" + node_ + "' and '" + other.node_ + "'";
  const SerdePtr<K> key_serde = joined.key_serde ? joined.key_serde : key_serde_;
  const SerdePtr<V> value_serde = joined.value_serde ? joined.value_serde : value_serde_;
  const SerdePtr<VO> other_value_serde =
      joined.other_value_serde ? joined.other_value_serde : other.value_serde_;
  if (!key_serde || !value_serde || !other_value_serde)
    throw TopologyError(what + ": no serde for its " +
                        (!key_serde     ? "key"
                         : !value_serde ? "value"
                                        : "other value") +
                        "; give StreamJoined one");

  // Both sides' records of a key must reach the same task.
  const KStream input = repartition_required_
                            ? repartition(Repartitioned<K, V>{name.empty() ? node_ : name + "-left",
                                                              std::nullopt, key_serde, value_serde})
                            : *this;
  KStream<K, VO> other_input = other;
  if (other.repartition_required_) {
    if constexpr (std::is_same_v<V, VO>) {
      // A self-join reads its one repartitioned copy on both sides.
      if (other.node_ == node_ && name.empty()) other_input = input;
    }
    if (other_input.node_ == other.node_)
      other_input =
          other.repartition(Repartitioned<K, VO>{name.empty() ? other.node_ : name + "-right",
                                                 std::nullopt, key_serde, other_value_serde});
  }

  // Window size: the span a record's partners are looked up in; at least 1 ms
  // for a store (a window of before = after = 0 joins equal timestamps).
  const auto window_size = std::chrono::milliseconds(std::max<int64_t>(1, windows.size_ms()));
  const auto retention =
      std::max(window_size, std::chrono::milliseconds(windows.size_ms() + windows.grace_ms()));
  auto configured = [&joined](StoreBuilder store) {
    if (joined.in_memory) store.in_memory();
    // The window stores are read one key at a time (the unjoined records' store
    // keeps the skip list).
    RocksDbOptions rocksdb = store.spec().rocksdb;
    rocksdb.memtable = RocksDbMemtable::kHashedByKey;
    store.with_rocksdb_options(rocksdb);
    if (joined.logging_enabled) {
      store.with_logging_enabled(joined.log_config);
    } else {
      store.with_logging_disabled();
    }
    return store;
  };
  Topology& topology = builder_->topology();
  topology.add_processor(this_windowed_node,
                         [store = spec.left_store] {
                           return std::make_unique<operators::JoinWindowProcessor<K, V>>(store);
                         },
                         {input.node_});
  topology.add_processor(other_windowed_node,
                         [store = spec.right_store] {
                           return std::make_unique<operators::JoinWindowProcessor<K, VO>>(store);
                         },
                         {other_input.node_});
  topology.add_processor(
      this_join_node,
      [spec] {
        return std::make_unique<
            operators::StreamStreamJoinProcessor<operators::JoinSide::kLeft, K, V, VO, VR>>(spec);
      },
      {this_windowed_node});
  topology.add_processor(
      other_join_node,
      [spec] {
        return std::make_unique<
            operators::StreamStreamJoinProcessor<operators::JoinSide::kRight, K, V, VO, VR>>(spec);
      },
      {other_windowed_node});
  topology.add_processor(
      merge_node,
      [] {
        using Merged = typename KStream<K, VR>::Forward;
        return std::make_unique<internal::FunctionProcessor<K, VR, K, VR, Merged>>(Merged{});
      },
      {this_join_node, other_join_node});
  topology.add_state_store(configured(Stores::window<K, std::vector<V>>(
                               spec.left_store, window_size, retention, key_serde,
                               operators::record_list_serde(value_serde))),
                           {this_windowed_node, other_join_node});
  topology.add_state_store(configured(Stores::window<K, std::vector<VO>>(
                               spec.right_store, window_size, retention, key_serde,
                               operators::record_list_serde(other_value_serde))),
                           {other_windowed_node, this_join_node});
  if (left_outer)
    topology.add_state_store(
        configured(Stores::key_value<operators::UnjoinedKey<K>, operators::UnjoinedRecords<V, VO>>(
            spec.unjoined_store, operators::unjoined_key_serde(key_serde),
            operators::unjoined_records_serde(value_serde, other_value_serde))),
        {this_join_node, other_join_node});
  return KStream<K, VR>(builder_, merge_node, key_serde_,
                        default_serde_if_same<VR, V>(value_serde_), false);
}

template <class K, class V>
BranchedKStream<K, V>::BranchedKStream(const KStream<K, V>& parent, std::string split_name)
    : parent_copy_(parent),
      split_name_(std::move(split_name)),
      routes_(std::make_shared<std::vector<Route>>()) {
  auto routes = routes_;
  parent_copy_.builder_->topology().add_processor(
      split_name_,
      [routes] {
        auto route = [routes](const Record<K, V>& r, ProcessorContext<K, V>& ctx) {
          for (const Route& candidate : *routes) {
            if (!candidate.predicate || candidate.predicate(r.key, r.value)) {
              ctx.forward(r, candidate.child);
              return;
            }
          }
        };
        return std::make_unique<internal::FunctionProcessor<K, V, K, V, decltype(route)>>(route);
      },
      {parent_copy_.node_});
}

template <class K, class V>
KStream<K, V> BranchedKStream<K, V>::add_branch(const std::string& name) {
  std::string child = split_name_ + "-" + name;
  if (branches_.contains(child))
    throw TopologyError("split '" + split_name_ + "' already has a branch named '" + name + "'");
  KStream<K, V> split_stream(parent_copy_.builder_, split_name_, parent_copy_.key_serde_,
                             parent_copy_.value_serde_, parent_copy_.repartition_required_);
  KStream<K, V> branch = split_stream.template add<K, V>(
      "", child, parent_copy_.repartition_required_, typename KStream<K, V>::Forward{});
  branches_.emplace(child, branch);
  return branch;
}

template <class K, class V>
template <class F>
BranchedKStream<K, V>& BranchedKStream<K, V>::branch(std::string name, F predicate) {
  add_branch(name);
  routes_->push_back({split_name_ + "-" + name, [predicate](const K& key, const V& value) mutable {
                        return static_cast<bool>(internal::call_with_value(predicate, key, value));
                      }});
  return *this;
}

template <class K, class V>
BranchedKStream<K, V>& BranchedKStream<K, V>::default_branch(std::string name) {
  add_branch(name);
  routes_->push_back({split_name_ + "-" + name, {}});
  return *this;
}

template <class K, class V>
const KStream<K, V>& BranchedKStream<K, V>::operator[](const std::string& name) const {
  auto it = branches_.find(name);
  if (it == branches_.end()) it = branches_.find(split_name_ + "-" + name);
  if (it == branches_.end())
    throw TopologyError("split '" + split_name_ + "' has no branch named '" + name + "'");
  return it->second;
}

}  // namespace rill

// Tables and grouped streams build on KStream; their definitions need it complete.
#include "rill/global_ktable.h"    // IWYU pragma: export
#include "rill/kgrouped_stream.h"  // IWYU pragma: export
#include "rill/ktable.h"           // IWYU pragma: export
