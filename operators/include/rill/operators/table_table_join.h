// The join of two tables, as Kafka Streams' KTableKTableJoin: an update of
// either side looks up the other side's row for its key and forwards the
// joined row's change, which a merge node gathers (and keeps in a store when
// the result is materialized). Inner, left and outer joins differ in which
// rows exist: both sides', the left side's, or either side's. The joined row's
// time is the later of the two rows' times.
#pragma once

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "rill/change.h"
#include "rill/operators/aggregate.h"
#include "rill/operators/stream_table_join.h"
#include "rill/processor.h"
#include "rill/record.h"
#include "rill/state.h"
#include "rill/value_and_timestamp.h"

namespace rill::operators {

enum class TableJoinKind { kInner, kLeft, kOuter };

// The joined row of a key's left row and right row, each possibly absent;
// absent when the join has no row for them. The joiner sees both sides as
// std::optional; the DSL adapts the user's joiner to that.
template <class K, class VL, class VR, class VJ>
using RowJoiner = std::function<std::optional<VJ>(const K& key, const std::optional<VL>& left,
                                                  const std::optional<VR>& right)>;

template <class K, class VL, class VR, class VJ>
std::optional<VJ> join_rows(TableJoinKind kind, const RowJoiner<K, VL, VR, VJ>& joiner,
                            const K& key, const std::optional<VL>& left,
                            const std::optional<VR>& right) {
  switch (kind) {
    case TableJoinKind::kInner:
      if (!left || !right) return std::nullopt;
      break;
    case TableJoinKind::kLeft:
      if (!left) return std::nullopt;
      break;
    case TableJoinKind::kOuter:
      if (!left && !right) return std::nullopt;
      break;
  }
  return joiner(key, left, right);
}

// One side of the join: updates of this side's table, joined with the other
// side's current row. `this_is_left` says which argument of the joiner this
// side's value is. As Kafka Streams, a side forwards nothing when the other
// side has no row and the join needs one (inner; the right side of a left
// join), or when the update changes no row (a deletion of a row that was not
// there).
template <class K, class V, class VO, class VJ>
class TableJoinSideProcessor final : public Processor<K, Change<V>, K, Change<VJ>> {
 public:
  using Joiner = std::function<std::optional<VJ>(const K& key, const std::optional<V>& mine,
                                                 const std::optional<VO>& other)>;

  TableJoinSideProcessor(RowReaderFactory<K, VO> other, Joiner joiner, bool other_required,
                         bool send_old_values)
      : make_reader_(std::move(other)),
        joiner_(std::move(joiner)),
        other_required_(other_required),
        old_values_(send_old_values) {}

  void init(ProcessorContext<K, Change<VJ>>& context) override {
    context_ = &context;
    other_ = make_reader_(context);
  }

  void process(const Record<K, Change<V>>& record) override {
    if (is_null(record.key)) {
      context_->record_dropped(kNullKey);
      return;
    }
    const std::optional<ValueAndTimestamp<VO>> other = other_(record.key, kLatestRow);
    if (!other && (other_required_ || (!record.value.new_value && !record.value.old_value))) return;
    std::optional<VO> other_value;
    int64_t timestamp = record.timestamp;
    if (other) {
      other_value = other->value;
      timestamp = std::max(timestamp, other->timestamp);
    }
    Change<VJ> joined{record.value.new_value || other_value
                          ? joiner_(record.key, record.value.new_value, other_value)
                          : std::nullopt,
                      old_values_ && (record.value.old_value || other_value)
                          ? joiner_(record.key, record.value.old_value, other_value)
                          : std::nullopt};
    context_->forward(
        Record<K, Change<VJ>>{record.key, std::move(joined), timestamp, record.headers});
  }

 private:
  RowReaderFactory<K, VO> make_reader_;
  Joiner joiner_;
  bool other_required_;
  bool old_values_;
  ProcessorContext<K, Change<VJ>>* context_ = nullptr;
  RowReader<K, VO> other_;
};

// Gathers both sides' changes of the joined table; with a store, keeps each
// joined row there (a deletion removes it) before forwarding, so the joined
// table can be read and joined in turn.
template <class K, class VJ>
class TableJoinMergeProcessor final : public Processor<K, Change<VJ>, K, Change<VJ>> {
 public:
  explicit TableJoinMergeProcessor(std::string store) : store_name_(std::move(store)) {}

  void init(ProcessorContext<K, Change<VJ>>& context) override {
    context_ = &context;
    if (store_name_.empty()) return;
    store_ = &context.template state_store<KeyValueStore<K, ValueAndTimestamp<VJ>>>(store_name_);
    // Each change goes on as it comes: folding them would lose the sides'
    // old values.
    store_->disable_cache();
  }

  void process(const Record<K, Change<VJ>>& record) override {
    if (store_ != nullptr) {
      if (record.value.new_value)
        store_->put(record.key, ValueAndTimestamp<VJ>{*record.value.new_value, record.timestamp},
                    record.timestamp);
      else
        store_->put(record.key, std::optional<ValueAndTimestamp<VJ>>(), record.timestamp);
    }
    context_->forward(record);
  }

 private:
  std::string store_name_;
  ProcessorContext<K, Change<VJ>>* context_ = nullptr;
  KeyValueStore<K, ValueAndTimestamp<VJ>>* store_ = nullptr;
};

}  // namespace rill::operators
