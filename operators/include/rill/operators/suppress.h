// Suppression of a windowed table's intermediate results, as Kafka Streams'
// KTableSuppressProcessor with Suppressed.untilWindowCloses: each window's
// latest result waits in a buffer and is forwarded once, when the window has
// closed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "rill/change.h"
#include "rill/processor.h"
#include "rill/record.h"
#include "rill/serde.h"
#include "rill/state.h"
#include "rill/value_and_timestamp.h"

namespace rill::operators {

// The buffer is a KeyValueStore<Windowed<K>, ValueAndTimestamp<V>> (in memory
// and changelogged, so it is restored after a restart) with an index in memory
// ordered by window end, rebuilt from the store at init.
//
// The processor's stream time is the largest timestamp of the updates it has
// seen. After each update, every buffered window whose end <= stream time -
// `close_delay_ms` (the grace period; for sessions the inactivity gap plus the
// grace period) is forwarded, earliest end first, then key bytes, with the
// timestamp of its latest update. A tombstone removes its window from the
// buffer: final results never include deletions.
template <class K, class V>
class WindowCloseSuppressProcessor final
    : public Processor<Windowed<K>, Change<V>, Windowed<K>, Change<V>> {
 public:
  using Store = KeyValueStore<Windowed<K>, ValueAndTimestamp<V>>;

  // `key_serde` orders windows with equal ends, by the bytes it writes.
  WindowCloseSuppressProcessor(std::string store, int64_t close_delay_ms,
                               SerdePtr<Windowed<K>> key_serde)
      : store_name_(std::move(store)),
        close_delay_ms_(close_delay_ms),
        key_serde_(std::move(key_serde)) {}

  void init(ProcessorContext<Windowed<K>, Change<V>>& context) override {
    context_ = &context;
    store_ = &context.template state_store<Store>(store_name_);
    index_.clear();
    for (auto it = store_->all(); it.valid(); it.next()) {
      Windowed<K> key = it.key();
      index_.insert_or_assign(index_key(key), std::move(key));
    }
  }

  void process(const Record<Windowed<K>, Change<V>>& record) override {
    observed_stream_time_ = std::max(observed_stream_time_, record.timestamp);
    if (record.value.new_value) {
      store_->put(record.key, ValueAndTimestamp<V>{*record.value.new_value, record.timestamp});
      index_.insert_or_assign(index_key(record.key), record.key);
    } else if (index_.erase(index_key(record.key)) > 0) {
      store_->remove(record.key);
    }
    const int64_t expiry = observed_stream_time_ - close_delay_ms_;
    while (!index_.empty() && index_.begin()->first.first <= expiry) {
      auto node = index_.extract(index_.begin());
      const Windowed<K>& key = node.mapped();
      std::optional<ValueAndTimestamp<V>> buffered = store_->remove(key);
      if (buffered)
        context_->forward(Record<Windowed<K>, Change<V>>{
            key, {std::move(buffered->value), std::nullopt}, buffered->timestamp, {}});
    }
  }

 private:
  using IndexKey = std::pair<int64_t, std::string>;

  IndexKey index_key(const Windowed<K>& key) const {
    std::string bytes;
    key_serde_->serialize(key, bytes);
    return {key.window.end, std::move(bytes)};
  }

  std::string store_name_;
  int64_t close_delay_ms_;
  SerdePtr<Windowed<K>> key_serde_;
  ProcessorContext<Windowed<K>, Change<V>>* context_ = nullptr;
  Store* store_ = nullptr;
  std::map<IndexKey, Windowed<K>> index_;
  int64_t observed_stream_time_ = -1;
};

}  // namespace rill::operators
