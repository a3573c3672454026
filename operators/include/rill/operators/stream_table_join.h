// The join of a stream with a table, as Kafka Streams' KStreamKTableJoin: each
// stream record looks up the table's row for its join key (current, or as of
// the record's timestamp in a versioned table) and, when
// there is one (or always, in a left join), goes on with the joiner's value,
// its own key and its own timestamp. Updates of the table emit nothing. The
// same processor joins a stream with a GlobalKTable, whose join key a key
// selector picks from the record.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <utility>

#include "rill/operators/aggregate.h"
#include "rill/processor.h"
#include "rill/record.h"
#include "rill/value_and_timestamp.h"

namespace rill::operators {

// Reads a table's row for a key, with the time of its last update: from its
// store, or through the table operations between it and the nearest store
// (Kafka Streams' KTableValueGetter). A versioned table answers with the row
// as of `as_of`; others with their current row. Made in the joining
// processor's init().
template <class K, class V>
using RowReader = std::function<std::optional<ValueAndTimestamp<V>>(const K& key, int64_t as_of)>;
// The as-of time that reads a versioned table's latest row.
inline constexpr int64_t kLatestRow = std::numeric_limits<int64_t>::max();
template <class K, class V>
using RowReaderFactory = std::function<RowReader<K, V>(ProcessingContext& context)>;

// Null handling, as Kafka Streams 4 (KIP-962): a record with a null value is
// dropped and counted; one without a join key (a null key, or a key selector
// that gives none) is dropped by an inner join and joined with no row by a
// left join.
template <class K, class V, class KT, class VT, class VR>
class StreamTableJoinProcessor final : public Processor<K, V, K, VR> {
 public:
  // The join key of a record; std::nullopt when it has none.
  using JoinKey = std::function<std::optional<KT>(const K& key, const V& value)>;
  using Joiner = std::function<VR(const K& key, const V& value, const std::optional<VT>& row,
                                  const RecordContext& record)>;

  StreamTableJoinProcessor(RowReaderFactory<KT, VT> rows, JoinKey join_key, Joiner joiner,
                           bool left)
      : make_reader_(std::move(rows)),
        join_key_(std::move(join_key)),
        joiner_(std::move(joiner)),
        left_(left) {}

  void init(ProcessorContext<K, VR>& context) override {
    context_ = &context;
    row_ = make_reader_(context);
  }

  void process(const Record<K, V>& record) override {
    if (is_null(record.value)) {
      context_->record_dropped(kNullJoinKeyOrValue);
      return;
    }
    const std::optional<KT> join_key = join_key_(record.key, record.value);
    if (!join_key && !left_) {
      context_->record_dropped(kNullJoinKeyOrValue);
      return;
    }
    std::optional<VT> row;
    if (join_key)
      if (std::optional<ValueAndTimestamp<VT>> found = row_(*join_key, record.timestamp))
        row = std::move(found->value);
    if (!row && !left_) return;
    context_->forward(Record<K, VR>{
        record.key,
        joiner_(record.key, record.value, row, RecordContext{record.timestamp, &record.headers}),
        record.timestamp, record.headers});
  }

 private:
  RowReaderFactory<KT, VT> make_reader_;
  JoinKey join_key_;
  Joiner joiner_;
  bool left_;
  ProcessorContext<K, VR>* context_ = nullptr;
  RowReader<KT, VT> row_;
};

}  // namespace rill::operators
