// GlobalKTable: a table every instance holds whole, as Kafka Streams'
// GlobalKTable. Each instance's global thread reads every partition of the
// topic into a key-value store (a null value deletes the key) before the
// instance starts processing, and keeps it up to date; any processor reads it
// by its store name:
//
//   auto countries = builder.global_table("countries", rill::serdes::string(),
//                                         rill::serdes::string());
//   ...in a processor's init():
//   store_ = &context.state_store<rill::KeyValueStore<
//       std::string, rill::ValueAndTimestamp<std::string>>>(countries.queryable_store_name());
//
// The store is never cached and has no changelog: the topic is its changelog.
// Tasks read it and cannot write it.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "rill/ktable.h"
#include "rill/operators/ktable_ops.h"
#include "rill/serde.h"
#include "rill/state.h"
#include "rill/streams_builder.h"
#include "rill/value_and_timestamp.h"

namespace rill {

template <class K, class V>
class GlobalKTable {
 public:
  GlobalKTable(std::string store, SerdePtr<K> key_serde, SerdePtr<V> value_serde)
      : store_(std::move(store)),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)) {}

  // The name of the store holding the table: a KeyValueStore<K,
  // ValueAndTimestamp<V>>.
  const std::string& queryable_store_name() const { return store_; }
  const SerdePtr<K>& key_serde() const { return key_serde_; }
  const SerdePtr<V>& value_serde() const { return value_serde_; }

 private:
  std::string store_;
  SerdePtr<K> key_serde_;
  SerdePtr<V> value_serde_;
};

template <class K, class V>
GlobalKTable<K, V> StreamsBuilder::global_table(std::string topic, SerdePtr<K> key_serde,
                                                SerdePtr<V> value_serde,
                                                Materialized<K, V> materialized) {
  return global_table<K, V>(std::move(topic),
                            Consumed<K, V>{std::move(key_serde), std::move(value_serde)},
                            std::move(materialized));
}

template <class K, class V>
GlobalKTable<K, V> StreamsBuilder::global_table(std::string topic, Consumed<K, V> consumed,
                                                Materialized<K, V> materialized) {
  auto names = internal::table_source(*this, "global table", topic, consumed, materialized);
  StoreBuilder builder = Stores::key_value<K, ValueAndTimestamp<V>>(
      names.store, names.key_serde, serdes::value_and_timestamp<V>(names.value_serde));
  if (materialized.in_memory) builder.in_memory();
  topology_.add_global_store(
      std::move(builder), names.source, std::move(topic), names.source_key_serde,
      names.source_value_serde, names.node, [store = names.store] {
        return std::make_unique<operators::TableSourceProcessor<K, V>>(store, false);
      });
  return GlobalKTable<K, V>(names.store, names.key_serde, names.value_serde);
}

template <class K, class V>
template <class KG, class VG, class S, class F, class VR>
KStream<K, VR> KStream<K, V>::join(const GlobalKTable<KG, VG>& table, S key_selector, F joiner,
                                   std::string name) const {
  return join_global<KG, VG, VR>(
      table, false, std::move(key_selector),
      [joiner](const K& key, const V& value, const std::optional<VG>& row,
               const RecordContext& record) mutable {
        return internal::call_joiner(joiner, key, value, *row, record);
      },
      std::move(name));
}

template <class K, class V>
template <class KG, class VG, class S, class F, class VR>
KStream<K, VR> KStream<K, V>::left_join(const GlobalKTable<KG, VG>& table, S key_selector, F joiner,
                                        std::string name) const {
  return join_global<KG, VG, VR>(
      table, true, std::move(key_selector),
      [joiner](const K& key, const V& value, const std::optional<VG>& row,
               const RecordContext& record) mutable {
        return internal::call_joiner(joiner, key, value, row, record);
      },
      std::move(name));
}

template <class K, class V>
template <class KG, class VG, class VR, class S, class J>
KStream<K, VR> KStream<K, V>::join_global(const GlobalKTable<KG, VG>& table, bool left,
                                          S key_selector, J joiner, std::string name) const {
  // Global stores are read by name, without a connection.
  return add_join<KG, VG, VR>(
      builder_->name_or_new(std::move(name), left ? "KSTREAM-LEFTJOIN" : "KSTREAM-JOIN"), left,
      [key_selector](const K& key, const V& value) mutable -> std::optional<KG> {
        auto selected = key_selector(key, value);
        if (operators::is_null(selected)) return std::nullopt;
        if constexpr (operators::kIsOptional<decltype(selected)>) {
          return std::move(*selected);
        } else {
          return selected;
        }
      },
      std::move(joiner), internal::rows_of_store<KG, VG>(table.queryable_store_name())->reader, {});
}

}  // namespace rill
