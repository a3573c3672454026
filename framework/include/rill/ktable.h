// KTable: a table that changes over time, as Kafka Streams' KTable. It comes
// from StreamsBuilder::table, KStream::to_table or an aggregation, and flows
// downstream as its updates: Record<K, Change<V>>, whose new value
// std::nullopt deletes the key (a tombstone).
//
//   builder.stream("clicks", rill::serdes::string(), rill::serdes::string())
//       .group_by_key()
//       .count()
//       .to_stream()
//       .to("click-counts", rill::serdes::string(), rill::serdes::int64());
//
// KTable::group_by regroups a table's rows (KGroupedTable): an aggregation
// then subtracts a row's old value from its old group and adds its new value
// to its new group, so sums and counts stay right as rows change and leave.
//
//   builder.table("accounts", rill::serdes::string(), rill::serdes::int64())
//       .group_by([](const std::string& account, int64_t balance) {
//         return rill::KeyValue{branch_of(account), balance};
//       })
//       .reduce(std::plus<>(), std::minus<>());  // balance per branch
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "rill/change.h"
#include "rill/operators/foreign_key_join.h"
#include "rill/operators/ktable_ops.h"
#include "rill/operators/suppress.h"
#include "rill/operators/table_table_join.h"
#include "rill/serde.h"
#include "rill/state.h"
#include "rill/streams_builder.h"
#include "rill/topology.h"
#include "rill/value_and_timestamp.h"

namespace rill {

template <class K, class V>
class KGroupedTable;

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

// How a processor reads a table's current rows, as Kafka Streams'
// KTableValueGetterSupplier: the stores to connect it to, and the reader to
// make in its init(): from the table's store, or through the operations
// between the table and the nearest store.
template <class K, class V>
struct TableRows {
  std::vector<std::string> stores;
  operators::RowReaderFactory<K, V> reader;
};

template <class K, class V>
std::shared_ptr<const TableRows<K, V>> rows_of_store(const std::string& store) {
  return std::make_shared<const TableRows<K, V>>(TableRows<K, V>{
      {store}, [store](ProcessingContext& context) -> operators::RowReader<K, V> {
        if (auto* versions =
                dynamic_cast<VersionedKeyValueStore<K, V>*>(context.get_state_store(store)))
          return [versions](const K& key, int64_t as_of) -> std::optional<ValueAndTimestamp<V>> {
            auto found =
                as_of == operators::kLatestRow ? versions->get(key) : versions->get(key, as_of);
            if (!found) return std::nullopt;
            return ValueAndTimestamp<V>{std::move(found->value), found->timestamp};
          };
        auto* rows = &context.state_store<KeyValueStore<K, ValueAndTimestamp<V>>>(store);
        return [rows](const K& key, int64_t) { return rows->get(key); };
      }});
}

}  // namespace internal

template <class K, class V>
class KTable {
 public:
  KTable() = default;
  // Used by the DSL. `store` is the store holding the table, empty when it is
  // not materialized; `close_delay_ms`, for windowed tables from a windowed
  // aggregation, is how long after a window's end it closes; `old_values`
  // turns on the node's old values, null when it cannot send them.
  KTable(StreamsBuilder* builder, std::string node, SerdePtr<K> key_serde, SerdePtr<V> value_serde,
         std::string store = {}, std::optional<int64_t> close_delay_ms = std::nullopt,
         std::shared_ptr<internal::SendOldValues> old_values = nullptr)
      : builder_(builder),
        node_(std::move(node)),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)),
        store_(std::move(store)),
        close_delay_ms_(close_delay_ms),
        old_values_(std::move(old_values)) {
    if (!store_.empty() && !internal::IsWindowed<K>::value)
      rows_ = internal::rows_of_store<K, V>(store_);
  }

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

  // Keeps a PostgreSQL table equal to this table (rill/postgres.h): an
  // update upserts its key's row, a deletion deletes it. The columns as for
  // KStream::to_postgres.
  void to_postgres(std::string name, PostgresTable table,
                   std::function<PostgresValues(const K&)> key_columns = {},
                   std::function<PostgresValues(const K&, const V&)> value_columns = {}) const {
    value_columns = internal::value_columns_or_own<K, V>(name, std::move(value_columns));
    internal::write_postgres_rows(
        to_stream(name + "-changes"), std::move(name), std::move(table), std::move(key_columns),
        [value_columns](const K& key,
                        const std::optional<V>& value) -> std::optional<PostgresValues> {
          if (!value) return std::nullopt;
          return value_columns(key, *value);
        });
  }

  // f(value) or f(key, value) -> the new value. A mapper that returns
  // std::optional<V2> makes a KTable<K, V2> in which std::nullopt deletes the key.
  template <class F>
  auto map_values(F f, std::string name = {}) const {
    using Mapped = internal::ValueResult<F, K, V>;
    using V2 = typename internal::UnwrapOptional<Mapped>::Type;
    std::string node = builder_->name_or_new(std::move(name), "KTABLE-MAPVALUES");
    auto old_values = child_old_values();
    builder_->topology().add_processor(
        node,
        [f, old_values] {
          return std::make_unique<operators::TableMapValuesProcessor<K, V, V2>>(
              [f](const K& key, const V& value) mutable -> std::optional<V2> {
                return internal::call_with_value(f, key, value);
              },
              old_values && old_values->enabled);
        },
        {node_});
    KTable<K, V2> mapped(builder_, node, key_serde_, internal::serde_if_same<V2, V>(value_serde_),
                         {}, close_delay_ms_, old_values);
    if (rows_)
      mapped.rows_ = std::make_shared<const internal::TableRows<K, V2>>(internal::TableRows<K, V2>{
          rows_->stores, [f, parent = rows_](ProcessingContext& context) {
            return
                [f, read = parent->reader(context)](
                    const K& key, int64_t as_of) mutable -> std::optional<ValueAndTimestamp<V2>> {
                  std::optional<ValueAndTimestamp<V>> row = read(key, as_of);
                  if (!row) return std::nullopt;
                  std::optional<V2> value = internal::call_with_value(f, key, row->value);
                  if (!value) return std::nullopt;
                  return ValueAndTimestamp<V2>{std::move(*value), row->timestamp};
                };
          }});
    return mapped;
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

  // Joins this table with `other` row by row, as Kafka Streams'
  // KTable#join(KTable): the joined table has a row for each key both tables
  // hold, joiner(value, other_value) or joiner(key, value, other_value), at
  // the later of the two rows' times. An update of either
  // table updates the row; a deletion in either deletes it. The tables must be co-partitioned. With
  // a named Materialized the joined rows are kept in that store (changelogged as any); without one,
  // the table is read through both.
  template <class VO, class F, class VJ = internal::TableJoinResult<F, K, V, VO>>
  KTable<K, VJ> join(const KTable<K, VO>& other, F joiner, Materialized<K, VJ> materialized = {},
                     std::string name = {}) const {
    return join_tables<VO, VJ>(
        other, operators::TableJoinKind::kInner,
        [joiner](const K& key, const std::optional<V>& value,
                 const std::optional<VO>& other_value) mutable {
          return internal::call_table_joiner(joiner, key, *value, *other_value);
        },
        std::move(materialized), std::move(name));
  }
  // As join, with a row for each key of this table: other_value is a
  // std::optional<VO>, empty when `other` has no row for the key.
  template <class VO, class F, class VJ = internal::TableJoinResult<F, K, V, std::optional<VO>>>
  KTable<K, VJ> left_join(const KTable<K, VO>& other, F joiner,
                          Materialized<K, VJ> materialized = {}, std::string name = {}) const {
    return join_tables<VO, VJ>(
        other, operators::TableJoinKind::kLeft,
        [joiner](const K& key, const std::optional<V>& value,
                 const std::optional<VO>& other_value) mutable {
          return internal::call_table_joiner(joiner, key, *value, other_value);
        },
        std::move(materialized), std::move(name));
  }
  // As join, with a row for each key of either table: both values are
  // std::optional, one of them possibly empty.
  template <class VO, class F,
            class VJ = internal::TableJoinResult<F, K, std::optional<V>, std::optional<VO>>>
  KTable<K, VJ> outer_join(const KTable<K, VO>& other, F joiner,
                           Materialized<K, VJ> materialized = {}, std::string name = {}) const {
    return join_tables<VO, VJ>(
        other, operators::TableJoinKind::kOuter,
        [joiner](const K& key, const std::optional<V>& value,
                 const std::optional<VO>& other_value) mutable {
          return internal::call_table_joiner(joiner, key, value, other_value);
        },
        std::move(materialized), std::move(name));
  }

  // Joins each row of this table with the row of `other` that its value
  // names, as Kafka Streams' foreign-key join (KIP-213): foreign_key(value),
  // or foreign_key(key, value), gives the key of `other`'s row (a
  // std::optional<KO> may give none). The joined table, keyed as this one,
  // holds joiner(value, other_value), or joiner(key, value, other_value), for
  // each row whose foreign row exists,
  // and follows updates of either table: a changed foreign key, a deleted row
  // on either side. The tables need not be co-partitioned: the join sends
  // subscriptions to `other`'s partitions through
  // "<application.id>-<name>-subscription-registration-topic" and gets its
  // answers back through "<application.id>-<name>-subscription-response-topic"
  // (name: the `name` given, else generated as Kafka Streams generates it).
  // Both tables need serdes and readable rows; this table must be able to send
  // old values (not a windowed or suppressed table).
  template <class KO, class VO, class FK, class F,
            class VJ = internal::TableJoinResult<F, K, V, VO>>
  requires internal::ForeignKeyExtractor<FK, K, V, KO> KTable<K, VJ> join(
      const KTable<KO, VO>& other, FK foreign_key, F joiner, Materialized<K, VJ> materialized = {},
      std::string name = {})
  const {
    return join_foreign_key<KO, VO, VJ>(
        other, internal::foreign_key_function<K, V, KO>(std::move(foreign_key)),
        [joiner](const K& key, const V& value, const std::optional<VO>& other_value) mutable {
          return internal::call_table_joiner(joiner, key, value, *other_value);
        },
        false, std::move(materialized), std::move(name));
  }
  // As the foreign-key join, with a row for each row of this table: the
  // joiner's other_value is a std::optional<VO>, empty when the foreign key
  // is absent or names no row.
  template <class KO, class VO, class FK, class F,
            class VJ = internal::TableJoinResult<F, K, V, std::optional<VO>>>
  requires internal::ForeignKeyExtractor<FK, K, V, KO> KTable<K, VJ> left_join(
      const KTable<KO, VO>& other, FK foreign_key, F joiner, Materialized<K, VJ> materialized = {},
      std::string name = {})
  const {
    return join_foreign_key<KO, VO, VJ>(
        other, internal::foreign_key_function<K, V, KO>(std::move(foreign_key)),
        [joiner](const K& key, const V& value, const std::optional<VO>& other_value) mutable {
          return internal::call_table_joiner(joiner, key, value, other_value);
        },
        true, std::move(materialized), std::move(name));
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

  // Regroups the rows by selector(key, value) -> KeyValue<K2, V2> (or
  // std::pair) for an aggregation that can subtract, as Kafka Streams'
  // KTable#groupBy: each update sends the row's old pair and its new pair
  // through "<application.id>-<name>-repartition" (the name is Grouped's, else
  // the aggregation's store's), with both values in one record when the group
  // stays. Pairs with a null key or value are left out. Turns on old values
  // upstream (the table's store has them); tables from windowed aggregations
  // and suppress cannot send them.
  template <class F, class KV = std::decay_t<std::invoke_result_t<F&, const K&, const V&>>,
            class K2 = typename internal::KeyValueTypes<KV>::Key,
            class V2 = typename internal::KeyValueTypes<KV>::Value>
  KGroupedTable<K2, V2> group_by(F selector, Grouped<K2, V2> grouped = {}) const;

  const std::string& node_name() const { return node_; }
  // The store holding the table, for get_timestamped_key_value_store and
  // similar; empty when the table is not materialized.
  const std::string& queryable_store_name() const { return store_; }
  const SerdePtr<K>& key_serde() const { return key_serde_; }
  const SerdePtr<V>& value_serde() const { return value_serde_; }
  StreamsBuilder* builder() const { return builder_; }
  // How joins read the table's rows; null for windowed tables and suppress.
  const std::shared_ptr<const internal::TableRows<K, V>>& rows() const { return rows_; }

 private:
  template <class K2, class V2>
  friend class KTable;

  template <class VO, class VJ, class J>
  KTable<K, VJ> join_tables(const KTable<K, VO>& other, operators::TableJoinKind kind, J joiner,
                            Materialized<K, VJ> materialized, std::string name) const;

  template <class KO, class VO, class VJ>
  KTable<K, VJ> join_foreign_key(
      const KTable<KO, VO>& other, std::function<std::optional<KO>(const K&, const V&)> foreign_key,
      std::function<VJ(const K&, const V&, const std::optional<VO>&)> joiner, bool left,
      Materialized<K, VJ> materialized, std::string name) const;

  template <class F>
  KTable add_filter(F predicate, bool keep_when, std::string name) const {
    std::string node = builder_->name_or_new(std::move(name), "KTABLE-FILTER");
    auto old_values = child_old_values();
    builder_->topology().add_processor(
        node,
        [predicate, keep_when, old_values] {
          return std::make_unique<operators::TableFilterProcessor<K, V>>(
              [predicate](const K& key, const V& value) mutable {
                return static_cast<bool>(internal::call_with_value(predicate, key, value));
              },
              keep_when, old_values && old_values->enabled);
        },
        {node_});
    KTable filtered(builder_, node, key_serde_, value_serde_, {}, close_delay_ms_, old_values);
    if (rows_)
      filtered.rows_ = std::make_shared<const internal::TableRows<K, V>>(internal::TableRows<K, V>{
          rows_->stores, [predicate, keep_when, parent = rows_](ProcessingContext& context) {
            return [predicate, keep_when, read = parent->reader(context)](
                       const K& key, int64_t as_of) mutable -> std::optional<ValueAndTimestamp<V>> {
              std::optional<ValueAndTimestamp<V>> row = read(key, as_of);
              if (row && static_cast<bool>(internal::call_with_value(predicate, key, row->value)) !=
                             keep_when)
                return std::nullopt;
              return row;
            };
          }});
    return filtered;
  }

  // A node computed from this table's updates, without a store of its own,
  // gets old values from this table when it must send them.
  std::shared_ptr<internal::SendOldValues> child_old_values() const {
    if (!old_values_) return nullptr;
    return std::make_shared<internal::SendOldValues>(internal::SendOldValues{false, old_values_});
  }

  StreamsBuilder* builder_ = nullptr;
  std::string node_;
  SerdePtr<K> key_serde_;
  SerdePtr<V> value_serde_;
  std::string store_;
  std::optional<int64_t> close_delay_ms_;
  std::shared_ptr<internal::SendOldValues> old_values_;
  std::shared_ptr<const internal::TableRows<K, V>> rows_;
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
  auto names = internal::table_source(*this, "table", topic, consumed, materialized);
  TimestampExtractor<K, std::optional<V>> extractor;
  if (consumed.timestamp_extractor) {
    extractor = [inner = consumed.timestamp_extractor](const Record<K, std::optional<V>>& r) {
      if (!r.value) return r.timestamp;
      return inner(Record<K, V>{r.key, *r.value, r.timestamp, r.headers});
    };
  }
  topology_.add_source<K, std::optional<V>>(names.source, {std::move(topic)},
                                            names.source_key_serde, names.source_value_serde,
                                            extractor);
  if (materialized.history_retention) {
    auto old_values = std::make_shared<internal::SendOldValues>();
    topology_.add_processor(
        names.node,
        [store = names.store, old_values] {
          return std::make_unique<operators::VersionedTableSourceProcessor<K, V>>(
              store, old_values->enabled);
        },
        {names.source});
    topology_.add_state_store(
        internal::materialize(
            Stores::versioned_key_value<K, V>(names.store, *materialized.history_retention,
                                              names.key_serde, names.value_serde),
            materialized),
        {names.node});
    return KTable<K, V>(this, names.node, names.key_serde, names.value_serde, names.store,
                        std::nullopt, std::move(old_values));
  }
  return internal::add_materialized_table(
      *this, names.node, names.source, names.store, names.key_serde, names.value_serde,
      materialized, [](const std::string& name, bool caching, bool send_old_values) {
        return std::make_unique<operators::TableSourceProcessor<K, V>>(name, caching,
                                                                       send_old_values);
      });
}

template <class K, class V>
template <class VT>
KTable<K, VT> KStream<K, V>::to_table(std::string name, Materialized<K, VT> materialized) const {
  // Kafka Streams names the node before the store.
  std::string node = builder_->name_or_new(std::move(name), "KSTREAM-TOTABLE");
  std::string store =
      builder_->name_or_new(std::move(materialized.store_name), "KSTREAM-TOTABLE-STATE-STORE");
  SerdePtr<K> key_serde = materialized.key_serde ? materialized.key_serde : key_serde_;
  SerdePtr<VT> value_serde = materialized.value_serde
                                 ? materialized.value_serde
                                 : internal::serde_if_same<VT, V>(value_serde_);
  if (!key_serde || !value_serde)
    throw TopologyError(
        "to_table '" + node + "': no " + (key_serde ? "value" : "key") + " serde for type " +
        internal::demangle(key_serde ? typeid(VT) : typeid(K)) + "; give Materialized one");
  const KStream input = repartition_if_required(node);
  return internal::add_materialized_table(
      *builder_, node, input.node_name(), store, key_serde, value_serde, materialized,
      [](const std::string& table_store, bool caching, bool send_old_values) {
        return std::make_unique<operators::TableSourceProcessor<K, VT, V>>(table_store, caching,
                                                                           send_old_values);
      });
}

template <class K, class V>
template <class VO, class VJ, class J>
KTable<K, VJ> KTable<K, V>::join_tables(const KTable<K, VO>& other, operators::TableJoinKind kind,
                                        J joiner, Materialized<K, VJ> materialized,
                                        std::string name) const {
  using operators::TableJoinKind;
  // Kafka Streams' names: KTABLE-JOINTHIS / -JOINOTHER, LEFTTHIS, OUTERTHIS...
  const std::string kind_name = kind == TableJoinKind::kInner  ? "JOIN"
                                : kind == TableJoinKind::kLeft ? "LEFT"
                                                               : "OUTER";
  const std::string this_node = builder_->new_name("KTABLE-" + kind_name + "THIS");
  const std::string other_node = builder_->new_name("KTABLE-" + kind_name + "OTHER");
  const std::string merge_node = builder_->name_or_new(std::move(name), "KTABLE-MERGE");
  if (!rows_ || !other.rows() || !old_values_ || !other.old_values_)
    throw TopologyError("join '" + merge_node + "' of tables '" + node_ + "' and '" +
                        other.node_name() +
                        "': a table's rows cannot be read (a windowed or suppressed table)");
  // The joined row of a key, from both sides' rows (either may be absent).
  const operators::RowJoiner<K, V, VO, VJ> rows_joined =
      [joiner](const K& key, const std::optional<V>& left,
               const std::optional<VO>& right) mutable -> std::optional<VJ> {
    return joiner(key, left, right);
  };
  // A side that loses its row must say which row it had, or the joined row of
  // an outer or left join would never be deleted: both tables send old
  // values, whatever the joined table's children need.
  old_values_->enable();
  other.old_values_->enable();
  auto result_old_values = std::make_shared<internal::SendOldValues>();
  const auto this_rows = rows_;
  const auto other_rows = other.rows();
  builder_->topology().add_processor(
      this_node,
      [kind, rows_joined, other_rows, result_old_values] {
        return std::make_unique<operators::TableJoinSideProcessor<K, V, VO, VJ>>(
            other_rows->reader,
            [kind, rows_joined](const K& key, const std::optional<V>& mine,
                                const std::optional<VO>& theirs) {
              return operators::join_rows(kind, rows_joined, key, mine, theirs);
            },
            kind == TableJoinKind::kInner, result_old_values->enabled);
      },
      {node_});
  builder_->topology().connect_processor_and_stores(this_node, other_rows->stores);
  builder_->topology().add_processor(
      other_node,
      [kind, rows_joined, this_rows, result_old_values] {
        return std::make_unique<operators::TableJoinSideProcessor<K, VO, V, VJ>>(
            this_rows->reader,
            [kind, rows_joined](const K& key, const std::optional<VO>& mine,
                                const std::optional<V>& theirs) {
              return operators::join_rows(kind, rows_joined, key, theirs, mine);
            },
            kind != TableJoinKind::kOuter, result_old_values->enabled);
      },
      {other.node_name()});
  builder_->topology().connect_processor_and_stores(other_node, this_rows->stores);
  const std::string store = materialized.store_name;
  builder_->topology().add_processor(
      merge_node,
      [store] { return std::make_unique<operators::TableJoinMergeProcessor<K, VJ>>(store); },
      {this_node, other_node});
  SerdePtr<VJ> value_serde =
      materialized.value_serde ? materialized.value_serde : default_serde<VJ>();
  KTable<K, VJ> joined(builder_, merge_node, key_serde_, value_serde, store, std::nullopt,
                       result_old_values);
  if (!store.empty()) {
    if (!value_serde)
      throw TopologyError("join '" + merge_node + "': no value serde for type " +
                          internal::demangle(typeid(VJ)) + " to keep the joined rows with");
    builder_->topology().add_state_store(
        internal::materialize(
            Stores::key_value<K, ValueAndTimestamp<VJ>>(
                store, materialized.key_serde ? materialized.key_serde : key_serde_,
                serdes::value_and_timestamp<VJ>(value_serde)),
            materialized),
        {merge_node});
  } else {
    joined.rows_ = std::make_shared<const internal::TableRows<K, VJ>>(internal::TableRows<K, VJ>{
        [&] {
          std::vector<std::string> stores = this_rows->stores;
          stores.insert(stores.end(), other_rows->stores.begin(), other_rows->stores.end());
          return stores;
        }(),
        [kind, rows_joined, this_rows, other_rows](ProcessingContext& context) {
          return [kind, rows_joined, left = this_rows->reader(context),
                  right = other_rows->reader(context)](
                     const K& key, int64_t as_of) mutable -> std::optional<ValueAndTimestamp<VJ>> {
            const std::optional<ValueAndTimestamp<V>> l = left(key, as_of);
            const std::optional<ValueAndTimestamp<VO>> r = right(key, as_of);
            std::optional<VJ> row = operators::join_rows(
                kind, rows_joined, key, l ? std::optional<V>(l->value) : std::nullopt,
                r ? std::optional<VO>(r->value) : std::nullopt);
            if (!row) return std::nullopt;
            return ValueAndTimestamp<VJ>{std::move(*row),
                                         std::max(l ? l->timestamp : 0, r ? r->timestamp : 0)};
          };
        }});
  }
  return joined;
}

template <class K, class V>
template <class VT, class F, class VR>
KStream<K, VR> KStream<K, V>::join(const KTable<K, VT>& table, F joiner,
                                   Joined<K, V> joined) const {
  return join_table<VT, VR>(
      table, false,
      [joiner](const K& key, const V& value, const std::optional<VT>& row,
               const RecordContext& record) mutable {
        return internal::call_joiner(joiner, key, value, *row, record);
      },
      std::move(joined));
}

template <class K, class V>
template <class VT, class F, class VR>
KStream<K, VR> KStream<K, V>::left_join(const KTable<K, VT>& table, F joiner,
                                        Joined<K, V> joined) const {
  return join_table<VT, VR>(
      table, true,
      [joiner](const K& key, const V& value, const std::optional<VT>& row,
               const RecordContext& record) mutable {
        return internal::call_joiner(joiner, key, value, row, record);
      },
      std::move(joined));
}

template <class K, class V>
template <class VT, class VR, class J>
KStream<K, VR> KStream<K, V>::join_table(const KTable<K, VT>& table, bool left, J joiner,
                                         Joined<K, V> joined) const {
  std::string node = builder_->name_or_new(joined.name, left ? "KSTREAM-LEFTJOIN" : "KSTREAM-JOIN");
  if (!table.rows())
    throw TopologyError("join '" + node + "' with table '" + table.node_name() +
                        "': the table's rows cannot be read (a windowed or suppressed table)");
  // The stream's records must reach the task of their key's row.
  const KStream input =
      repartition_required_
          ? repartition(Repartitioned<K, V>{joined.name.empty() ? node_ : joined.name, std::nullopt,
                                            joined.key_serde, joined.value_serde})
          : *this;
  return input.template add_join<K, VT, VR>(
      std::move(node), left,
      [](const K& key, const V&) -> std::optional<K> {
        if (operators::is_null(key)) return std::nullopt;
        return key;
      },
      std::move(joiner), table.rows()->reader, table.rows()->stores);
}

// The nodes, stores and topics of a foreign-key join, named as Kafka Streams
// names them (operators/foreign_key_join.h describes how they work together).
template <class K, class V>
template <class KO, class VO, class VJ>
KTable<K, VJ> KTable<K, V>::join_foreign_key(
    const KTable<KO, VO>& other, std::function<std::optional<KO>(const K&, const V&)> foreign_key,
    std::function<VJ(const K&, const V&, const std::optional<VO>&)> joiner, bool left,
    Materialized<K, VJ> materialized, std::string name) const {
  using namespace operators;
  const bool named = !name.empty();
  auto node_name = [&](std::string_view suffix, std::string_view prefix) {
    return named ? name + std::string(suffix) : builder_->new_name(prefix);
  };
  const std::string registration =
      node_name("-subscription-registration-processor", "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION");
  const std::string what = "foreign-key join '" + registration + "' of tables '" + node_ +
                           "' and '" + other.node_name() + "'";
  if (!old_values_ || !rows_ || !other.rows())
    throw TopologyError(what +
                        ": both tables' rows must be readable (not a windowed or "
                        "suppressed table)");
  if (!key_serde_ || !value_serde_ || !other.key_serde() || !other.value_serde())
    throw TopologyError(what +
                        ": both tables need key and value serdes; the subscriptions and "
                        "answers carry their bytes");
  SerdePtr<VJ> value_serde =
      materialized.value_serde ? materialized.value_serde : default_serde<VJ>();
  if (!value_serde)
    throw TopologyError(what + ": no value serde for type " + internal::demangle(typeid(VJ)) +
                        " to keep the joined rows with; give Materialized one");
  // A changed row unsubscribes its old foreign key.
  old_values_->enable();

  Topology& topology = builder_->topology();
  const std::string registration_topic =
      named ? name + "-subscription-registration-topic" : registration + "-topic";
  const std::string registration_sink = node_name("-subscription-registration-sink", "KTABLE-SINK");
  const std::string registration_source =
      node_name("-subscription-registration-source", "KTABLE-SOURCE");
  const std::string subscriptions =
      node_name("-subscription-store", "KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE");
  const std::string receive =
      node_name("-subscription-receive", "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR");
  const std::string foreign_updates =
      node_name("-subscription-join-foreign", "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR");
  const std::string response_topic =
      named ? name + "-subscription-response-topic"
            : builder_->new_name("KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE") + "-topic";
  const std::string response_sink = node_name("-subscription-response-sink", "KTABLE-SINK");
  const std::string response_source = node_name("-subscription-response-source", "KTABLE-SOURCE");
  const std::string absent = node_name("-no-foreign-key", "KTABLE-FK-JOIN-NO-FOREIGN-KEY");
  const std::string resolver = node_name("-subscription-response-resolver",
                                         "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR");
  const std::string output = node_name("-result", "KTABLE-FK-JOIN-OUTPUT");
  const std::string store = builder_->name_or_new(std::move(materialized.store_name),
                                                  "KTABLE-FK-JOIN-OUTPUT-STATE-STORE");

  // Left side: subscriptions out, keyed by foreign key; updates that name no
  // foreign row answered at once.
  topology.add_processor(registration,
                         [foreign_key, key_serde = key_serde_, value_serde = value_serde_,
                          foreign_key_serde = other.key_serde(), left, registration_sink, absent] {
                           return std::make_unique<SubscriptionSendProcessor<K, V, KO>>(
                               foreign_key, key_serde, value_serde, foreign_key_serde, left,
                               registration_sink, absent);
                         },
                         {node_});
  topology.template add_sink<std::string, Subscription>(
      registration_sink, TopicRef(registration_topic, true), {registration}, serdes::bytes(),
      subscription_serde());

  // Right side: subscriptions kept and answered, foreign rows' updates sent
  // to their subscribers; answers keyed by the left key's bytes, to its
  // partition.
  topology.template add_source<std::string, Subscription>(registration_source, {}, serdes::bytes(),
                                                          subscription_serde());
  topology.mutable_node(registration_source).topics.push_back(TopicRef(registration_topic, true));
  topology.add_processor(
      receive,
      [subscriptions, rows = other.rows()->reader, foreign_key_serde = other.key_serde(),
       foreign_value_serde = other.value_serde()] {
        return std::make_unique<SubscriptionReceiveProcessor<KO, VO>>(
            subscriptions, rows, foreign_key_serde, foreign_value_serde);
      },
      {registration_source});
  topology.connect_processor_and_stores(receive, other.rows()->stores);
  topology.add_processor(foreign_updates,
                         [subscriptions, foreign_key_serde = other.key_serde(),
                          foreign_value_serde = other.value_serde()] {
                           return std::make_unique<ForeignRowUpdateProcessor<KO, VO>>(
                               subscriptions, foreign_key_serde, foreign_value_serde);
                         },
                         {other.node_name()});
  topology.add_state_store(
      Stores::key_value<std::string, ValueAndTimestamp<Subscription>>(
          subscriptions, serdes::bytes(), serdes::value_and_timestamp(subscription_serde())),
      {receive, foreign_updates});
  topology.template add_sink<std::string, SubscriptionResponse>(
      response_sink, TopicRef(response_topic, true), {receive, foreign_updates}, serdes::bytes(),
      subscription_response_serde(),
      [](const std::string&, const SubscriptionResponse& response, int32_t partitions) {
        return response.primary_partition < partitions ? response.primary_partition : -1;
      });

  // Left side: answers joined with the rows they were asked for.
  topology.template add_source<K, SubscriptionResponse>(response_source, {}, key_serde_,
                                                        subscription_response_serde());
  topology.mutable_node(response_source).topics.push_back(TopicRef(response_topic, true));
  topology.add_processor(
      absent,
      [key_serde = key_serde_] { return std::make_unique<NoForeignKeyProcessor<K>>(key_serde); },
      {registration});
  topology.add_processor(resolver,
                         [rows = rows_->reader, value_serde = value_serde_,
                          foreign_value_serde = other.value_serde(), joiner, left] {
                           return std::make_unique<SubscriptionResolverProcessor<K, V, VO, VJ>>(
                               rows, value_serde, foreign_value_serde, joiner, left);
                         },
                         {response_source, absent});
  topology.connect_processor_and_stores(resolver, rows_->stores);
  return internal::add_materialized_table(
      *builder_, output, resolver, store, key_serde_, value_serde, materialized,
      [](const std::string& table_store, bool caching, bool send_old_values) {
        return std::make_unique<TableSourceProcessor<K, VJ>>(table_store, caching, send_old_values);
      });
}

template <class K, class V>
template <class F, class KV, class K2, class V2>
KGroupedTable<K2, V2> KTable<K, V>::group_by(F selector, Grouped<K2, V2> grouped) const {
  if (!old_values_)
    throw TopologyError("group_by after '" + node_ +
                        "': the table cannot send the old values a regrouping subtracts "
                        "(a table from a windowed aggregation or suppress)");
  SerdePtr<K2> key_serde =
      grouped.key_serde ? grouped.key_serde : internal::serde_if_same<K2, K>(key_serde_);
  SerdePtr<V2> value_serde =
      grouped.value_serde ? grouped.value_serde : internal::serde_if_same<V2, V>(value_serde_);
  if (!value_serde)
    throw TopologyError("group_by after '" + node_ + "': no value serde for type " +
                        internal::demangle(typeid(V2)) + "; give Grouped a value_serde");
  old_values_->enable();
  std::string node = builder_->name_or_new(grouped.name, "KTABLE-SELECT");
  builder_->topology().add_processor(
      node,
      [selector] {
        return std::make_unique<operators::TableRepartitionMapProcessor<K, V, K2, V2>>(
            [selector](const K& key, const V& value) mutable {
              auto kv = selector(key, value);
              return KeyValue<K2, V2>{internal::kv_key(std::move(kv)),
                                      internal::kv_value(std::move(kv))};
            });
      },
      {node_});
  SerdePtr<Change<V2>> changes = serdes::changed<V2>(value_serde);
  return KGroupedTable<K2, V2>(KStream<K2, Change<V2>>(builder_, node, key_serde, changes, true),
                               std::move(grouped.name), key_serde, value_serde);
}

}  // namespace rill
