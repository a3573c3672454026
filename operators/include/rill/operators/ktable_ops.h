// The processors behind KTable: the source that materializes a topic as a
// table, and the stateless operations on table updates. A table update is a
// Record<K, std::optional<V>>: a new value for the key, or std::nullopt when
// the key is deleted (a tombstone).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "rill/operators/aggregate.h"
#include "rill/processor.h"
#include "rill/record.h"
#include "rill/state.h"
#include "rill/value_and_timestamp.h"

namespace rill::operators {

// Materializes a changelog stream (a topic read as a table) in a
// KeyValueStore<K, ValueAndTimestamp<V>> and forwards the updates, through the
// store's record cache as aggregations do. A tombstone deletes its key; a
// tombstone for a key the table does not hold changes nothing and is not
// forwarded. Records with a null key are dropped and counted.
template <class K, class V>
class TableSourceProcessor final : public Processor<K, std::optional<V>, K, std::optional<V>> {
 public:
  using Store = KeyValueStore<K, ValueAndTimestamp<V>>;

  explicit TableSourceProcessor(std::string store, bool caching = true)
      : store_name_(std::move(store)), caching_(caching) {}

  void init(ProcessorContext<K, std::optional<V>>& context) override {
    context_ = &context;
    store_ = &context.template state_store<Store>(store_name_);
    if (!caching_) store_->disable_cache();
    store_->set_flush_listener(
        [this](const K& key, const std::optional<ValueAndTimestamp<V>>& value, int64_t timestamp) {
          context_->forward(Record<K, std::optional<V>>{
              key, value ? std::optional<V>(value->value) : std::nullopt, timestamp, {}});
        });
  }

  void process(const Record<K, std::optional<V>>& record) override {
    if (is_null(record.key)) {
      context_->record_dropped(kNullKey);
      return;
    }
    if (!record.value) {
      if (!store_->get(record.key)) return;
      store_->put(record.key, std::optional<ValueAndTimestamp<V>>(), record.timestamp);
      return;
    }
    store_->put(record.key, ValueAndTimestamp<V>{*record.value, record.timestamp},
                record.timestamp);
  }

 private:
  std::string store_name_;
  bool caching_;
  ProcessorContext<K, std::optional<V>>* context_ = nullptr;
  Store* store_ = nullptr;
};

// mapper(key, value) -> the new value, or std::nullopt to delete the key.
// Tombstones pass as tombstones.
template <class K, class V, class V2>
class TableMapValuesProcessor final : public Processor<K, std::optional<V>, K, std::optional<V2>> {
 public:
  using Mapper = std::function<std::optional<V2>(const K& key, const V& value)>;

  explicit TableMapValuesProcessor(Mapper mapper) : mapper_(std::move(mapper)) {}

  void init(ProcessorContext<K, std::optional<V2>>& context) override { context_ = &context; }
  void process(const Record<K, std::optional<V>>& record) override {
    context_->forward(Record<K, std::optional<V2>>{
        record.key, record.value ? mapper_(record.key, *record.value) : std::nullopt,
        record.timestamp, record.headers});
  }

 private:
  Mapper mapper_;
  ProcessorContext<K, std::optional<V2>>* context_ = nullptr;
};

// Keeps the values for which predicate(key, value) is true; the others become
// tombstones, so that downstream the key disappears from the filtered table
// (Kafka Streams' KTable#filter).
template <class K, class V>
class TableFilterProcessor final : public Processor<K, std::optional<V>, K, std::optional<V>> {
 public:
  using Predicate = std::function<bool(const K& key, const V& value)>;

  TableFilterProcessor(Predicate predicate, bool keep_when)
      : predicate_(std::move(predicate)), keep_when_(keep_when) {}

  void init(ProcessorContext<K, std::optional<V>>& context) override { context_ = &context; }
  void process(const Record<K, std::optional<V>>& record) override {
    if (record.value && predicate_(record.key, *record.value) != keep_when_) {
      context_->forward(
          Record<K, std::optional<V>>{record.key, std::nullopt, record.timestamp, record.headers});
      return;
    }
    context_->forward(record);
  }

 private:
  Predicate predicate_;
  bool keep_when_;
  ProcessorContext<K, std::optional<V>>* context_ = nullptr;
};

// A table's updates as a stream: each update, tombstones included, is a record.
template <class K, class V>
class TableToStreamProcessor final : public Processor<K, std::optional<V>> {
 public:
  void init(ProcessorContext<K, std::optional<V>>& context) override { context_ = &context; }
  void process(const Record<K, std::optional<V>>& record) override { context_->forward(record); }

 private:
  ProcessorContext<K, std::optional<V>>* context_ = nullptr;
};

}  // namespace rill::operators
