// The processors behind KTable: the source that materializes a topic (or a
// stream) as a table, the stateless operations on table updates, and the
// regrouping of a table with its aggregation (Kafka Streams'
// KTableRepartitionMap, KTableAggregate and KTableReduce). A table update is a
// Record<K, Change<V>>: the key's new value, or std::nullopt when the key is
// deleted (a tombstone), and, when the table sends old values, the value it
// replaces.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "rill/change.h"
#include "rill/operators/aggregate.h"
#include "rill/processor.h"
#include "rill/record.h"
#include "rill/state.h"
#include "rill/value_and_timestamp.h"

namespace rill::operators {

// The row a stream record sets: std::nullopt when the value is null (an
// empty std::optional or a JSON null), which deletes the key.
template <class V, class VIn>
std::optional<V> row_value(const VIn& value) {
  if (is_null(value)) return std::nullopt;
  if constexpr (kIsOptional<VIn>) {
    return *value;
  } else {
    return value;
  }
}

// Materializes a changelog stream (a topic read as a table, or
// KStream::to_table) in a KeyValueStore<K, ValueAndTimestamp<V>> and forwards
// the updates, through the store's record cache as aggregations do. A null
// value deletes its key; deleting a key the table does not hold changes
// nothing and is not forwarded. Records with a null key are dropped and
// counted. The store knows each key's old value, so sending old values costs
// only a read.
template <class K, class V, class VIn = std::optional<V>>
class TableSourceProcessor final : public Processor<K, VIn, K, Change<V>> {
 public:
  using Store = KeyValueStore<K, ValueAndTimestamp<V>>;

  explicit TableSourceProcessor(std::string store, bool caching = true,
                                bool send_old_values = false)
      : store_name_(std::move(store)), caching_(caching), send_old_values_(send_old_values) {}

  void init(ProcessorContext<K, Change<V>>& context) override {
    context_ = &context;
    store_ = &table_store(context, store_name_, caching_, send_old_values_);
  }

  void process(const Record<K, VIn>& record) override {
    if (is_null(record.key)) {
      context_->record_dropped(kNullKey);
      return;
    }
    std::optional<V> row = row_value<V>(record.value);
    if (!row) {
      if (!store_->get(record.key)) return;
      store_->put(record.key, std::optional<ValueAndTimestamp<V>>(), record.timestamp);
      return;
    }
    store_->put(record.key, ValueAndTimestamp<V>{std::move(*row), record.timestamp},
                record.timestamp);
  }

 private:
  std::string store_name_;
  bool caching_;
  bool send_old_values_;
  ProcessorContext<K, Change<V>>* context_ = nullptr;
  Store* store_ = nullptr;
};

// Materializes a changelog stream in a versioned store (Kafka Streams'
// KIP-914): each record becomes its key's version at its timestamp. A record
// at or after the key's latest version changes the table and is forwarded; an
// out-of-order one only fills in the history, which as-of reads (a
// stream-table join) see.
template <class K, class V, class VIn = std::optional<V>>
class VersionedTableSourceProcessor final : public Processor<K, VIn, K, Change<V>> {
 public:
  using Store = VersionedKeyValueStore<K, V>;

  VersionedTableSourceProcessor(std::string store, bool send_old_values)
      : store_name_(std::move(store)), send_old_values_(send_old_values) {}

  void init(ProcessorContext<K, Change<V>>& context) override {
    context_ = &context;
    store_ = &context.template state_store<Store>(store_name_);
  }

  void process(const Record<K, VIn>& record) override {
    if (is_null(record.key)) {
      context_->record_dropped(kNullKey);
      return;
    }
    std::optional<V> row = row_value<V>(record.value);
    std::optional<VersionedRecord<V>> latest = store_->get(record.key);
    const bool in_order = !latest || record.timestamp >= latest->timestamp;
    if (!store_->put(record.key, row, record.timestamp)) {
      context_->record_dropped(kExpiredVersion);
      return;
    }
    if (!in_order || (!row && !latest)) return;
    std::optional<V> old_value;
    if (send_old_values_ && latest) old_value = std::move(latest->value);
    context_->forward(Record<K, Change<V>>{record.key,
                                           Change<V>{std::move(row), std::move(old_value)},
                                           record.timestamp, record.headers});
  }

 private:
  std::string store_name_;
  bool send_old_values_;
  ProcessorContext<K, Change<V>>* context_ = nullptr;
  Store* store_ = nullptr;
};

// mapper(key, value) -> the new value, or std::nullopt to delete the key.
// Tombstones pass as tombstones; old values, when sent, are mapped too.
template <class K, class V, class V2>
class TableMapValuesProcessor final : public Processor<K, Change<V>, K, Change<V2>> {
 public:
  using Mapper = std::function<std::optional<V2>(const K& key, const V& value)>;

  TableMapValuesProcessor(Mapper mapper, bool send_old_values = false)
      : mapper_(std::move(mapper)), send_old_values_(send_old_values) {}

  void init(ProcessorContext<K, Change<V2>>& context) override { context_ = &context; }
  void process(const Record<K, Change<V>>& record) override {
    context_->forward(Record<K, Change<V2>>{
        record.key,
        {map(record.key, record.value.new_value),
         send_old_values_ ? map(record.key, record.value.old_value) : std::nullopt},
        record.timestamp,
        record.headers});
  }

 private:
  std::optional<V2> map(const K& key, const std::optional<V>& value) {
    return value ? mapper_(key, *value) : std::nullopt;
  }

  Mapper mapper_;
  bool send_old_values_;
  ProcessorContext<K, Change<V2>>* context_ = nullptr;
};

// Keeps the values for which predicate(key, value) is true; the others become
// tombstones, so that downstream the key disappears from the filtered table
// (Kafka Streams' KTable#filter). When old values are sent, an old value the
// predicate rejects was never in the filtered table, so it is sent as none,
// and an update in which neither value passes is not forwarded.
template <class K, class V>
class TableFilterProcessor final : public Processor<K, Change<V>, K, Change<V>> {
 public:
  using Predicate = std::function<bool(const K& key, const V& value)>;

  TableFilterProcessor(Predicate predicate, bool keep_when, bool send_old_values = false)
      : predicate_(std::move(predicate)),
        keep_when_(keep_when),
        send_old_values_(send_old_values) {}

  void init(ProcessorContext<K, Change<V>>& context) override { context_ = &context; }
  void process(const Record<K, Change<V>>& record) override {
    Change<V> change{kept(record.key, record.value.new_value),
                     send_old_values_ ? kept(record.key, record.value.old_value) : std::nullopt};
    if (send_old_values_ && !change.new_value && !change.old_value) return;
    context_->forward(
        Record<K, Change<V>>{record.key, std::move(change), record.timestamp, record.headers});
  }

 private:
  std::optional<V> kept(const K& key, const std::optional<V>& value) {
    if (value && predicate_(key, *value) == keep_when_) return value;
    return std::nullopt;
  }

  Predicate predicate_;
  bool keep_when_;
  bool send_old_values_;
  ProcessorContext<K, Change<V>>* context_ = nullptr;
};

// A table's updates as a stream: each update, tombstones included, is a record.
template <class K, class V>
class TableToStreamProcessor final : public Processor<K, Change<V>, K, std::optional<V>> {
 public:
  void init(ProcessorContext<K, std::optional<V>>& context) override { context_ = &context; }
  void process(const Record<K, Change<V>>& record) override {
    context_->forward(Record<K, std::optional<V>>{record.key, record.value.new_value,
                                                  record.timestamp, record.headers});
  }

 private:
  ProcessorContext<K, std::optional<V>>* context_ = nullptr;
};

// Regroups a table (Kafka Streams' KTableRepartitionMap): mapper(key, value)
// -> KeyValue<K2, V2> gives a row's group and the value it adds to it. Each
// update subtracts the old row from its group and adds the new row to its
// group: one change with both values when the group stays, otherwise first
// the old group's change (old value only), then the new group's (new value
// only). A pair with a null key or value is left out.
template <class K, class V, class K2, class V2>
class TableRepartitionMapProcessor final : public Processor<K, Change<V>, K2, Change<V2>> {
 public:
  using Mapper = std::function<KeyValue<K2, V2>(const K& key, const V& value)>;

  explicit TableRepartitionMapProcessor(Mapper mapper) : mapper_(std::move(mapper)) {}

  void init(ProcessorContext<K2, Change<V2>>& context) override { context_ = &context; }
  void process(const Record<K, Change<V>>& record) override {
    if (is_null(record.key)) {
      context_->record_dropped(kNullKey);
      return;
    }
    std::optional<KeyValue<K2, V2>> added = pair(record.key, record.value.new_value);
    std::optional<KeyValue<K2, V2>> removed = pair(record.key, record.value.old_value);
    if (added && removed && added->key == removed->key) {
      forward(record, std::move(added->key), {std::move(added->value), std::move(removed->value)});
      return;
    }
    if (removed)
      forward(record, std::move(removed->key), {std::nullopt, std::move(removed->value)});
    if (added) forward(record, std::move(added->key), {std::move(added->value), std::nullopt});
  }

 private:
  std::optional<KeyValue<K2, V2>> pair(const K& key, const std::optional<V>& value) {
    if (!value) return std::nullopt;
    KeyValue<K2, V2> kv = mapper_(key, *value);
    if (is_null(kv.key) || is_null(kv.value)) return std::nullopt;
    return kv;
  }
  void forward(const Record<K, Change<V>>& record, K2 key, Change<V2> change) {
    context_->forward(Record<K2, Change<V2>>{std::move(key), std::move(change), record.timestamp,
                                             record.headers});
  }

  Mapper mapper_;
  ProcessorContext<K2, Change<V2>>* context_ = nullptr;
};

// Aggregates a regrouped table (Kafka Streams' KTableAggregate and
// KTableReduce): for each change, subtractor(key, old value, aggregate) takes
// the old value out of the group's aggregate, then the aggregation's
// aggregator adds the new value (starting from its initializer when the
// group has no aggregate; a reduction's first value is its aggregate). A
// group whose rows all left keeps its last aggregate (a count of 0). Results
// go through the store's record cache, as StreamAggregateProcessor's do.
template <class K, class V, class VA>
class TableAggregateProcessor final : public Processor<K, Change<V>, K, Change<VA>> {
 public:
  using Store = KeyValueStore<K, ValueAndTimestamp<VA>>;
  using Subtractor = std::function<VA(const K& key, const V& value, const VA& aggregate,
                                      const RecordContext& record)>;

  TableAggregateProcessor(std::string store, Aggregation<K, V, VA> adding, Subtractor subtractor,
                          bool caching = true, bool send_old_values = false)
      : store_name_(std::move(store)),
        adding_(std::move(adding)),
        subtractor_(std::move(subtractor)),
        caching_(caching),
        send_old_values_(send_old_values) {}

  void init(ProcessorContext<K, Change<VA>>& context) override {
    context_ = &context;
    store_ = &table_store(context, store_name_, caching_, send_old_values_);
  }

  void process(const Record<K, Change<V>>& record) override {
    if (is_null(record.key)) {
      context_->record_dropped(kNullKey);
      return;
    }
    const std::optional<ValueAndTimestamp<VA>> old = store_->get(record.key);
    const RecordContext context{record.timestamp, &record.headers};
    std::optional<VA> aggregate;
    int64_t timestamp = record.timestamp;
    if (old) {
      aggregate = old->value;
      if (record.value.old_value) {
        aggregate = subtractor_(record.key, *record.value.old_value, *aggregate, context);
        timestamp = std::max(timestamp, old->timestamp);
      }
    }
    if (record.value.new_value) {
      if (!aggregate) aggregate = adding_.initializer();
      aggregate = adding_.aggregator(record.key, *record.value.new_value, aggregate, context);
      if (old) timestamp = std::max(timestamp, old->timestamp);
    }
    store_->put(record.key,
                aggregate ? std::optional<ValueAndTimestamp<VA>>(
                                ValueAndTimestamp<VA>{std::move(*aggregate), timestamp})
                          : std::nullopt,
                timestamp);
  }

 private:
  std::string store_name_;
  Aggregation<K, V, VA> adding_;
  Subtractor subtractor_;
  bool caching_;
  bool send_old_values_;
  ProcessorContext<K, Change<VA>>* context_ = nullptr;
  Store* store_ = nullptr;
};

}  // namespace rill::operators
