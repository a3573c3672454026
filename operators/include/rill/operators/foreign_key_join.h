// The foreign-key join of two tables, as Kafka Streams' KIP-213: each row of
// the left table names a row of the right table by a key extracted from its
// value, and the joined table, keyed as the left table, holds each left row
// joined with the right row it names.
//
// The two tables are partitioned by different keys, so the join runs in two
// sub-topologies that talk through two internal topics:
// - the left side sends a subscription, keyed by the foreign key, for every
//   left update: "key K now names foreign key F" (and, when F changed,
//   "K no longer names the old F");
// - the right side keeps the subscriptions in a store keyed by (F, K), which a
//   prefix scan reads as "every left key that names F". It answers a
//   subscription with F's current row, and an update of F's row to every
//   subscriber. Answers go back keyed by K to the partition K came from;
// - the left side joins an answer with K's current row, unless that row
//   changed since it subscribed: each subscription carries a hash of the left
//   value it was sent for, and an answer whose hash is not the current row's
//   is stale and dropped. This keeps the result right however subscriptions
//   and answers of successive updates interleave.
// A left row without a foreign key, and a deleted left row, are answered on
// the left side directly: there is nothing to ask.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "rill/change.h"
#include "rill/operators/aggregate.h"
#include "rill/operators/stream_table_join.h"
#include "rill/processor.h"
#include "rill/record.h"
#include "rill/serde.h"
#include "rill/state.h"
#include "rill/value_and_timestamp.h"

namespace rill::operators {

// What a subscription asks of the right side.
enum class SubscriptionInstruction : uint8_t {
  // The left key no longer names this foreign key; nothing is answered.
  kUnsubscribe = 0,
  // Answer with the foreign row, or with no row when there is none, which
  // deletes a joined row the previous foreign key had made.
  kSubscribeAnswerAlways = 1,
  // Answer only when the foreign row exists: a new left row of an inner join
  // has no joined row to delete.
  kSubscribeAnswerIfFound = 2,
};

// A left key's subscription to a foreign key; the registration topic's value.
// Its record key is the foreign key's serialized bytes.
struct Subscription {
  SubscriptionInstruction instruction = SubscriptionInstruction::kUnsubscribe;
  // Hash of the left value's bytes; absent for a deleted row.
  std::optional<uint64_t> value_hash;
  // The left key's partition, where the answer goes.
  int32_t primary_partition = -1;
  std::string primary_key;  // serialized
};

// The right side's answer to a subscription; the response topic's value.
struct SubscriptionResponse {
  std::optional<uint64_t> value_hash;        // the subscription's
  std::optional<std::string> foreign_value;  // serialized; absent: no row
  // Where the answer goes; not written to the topic.
  int32_t primary_partition = -1;
};

// The hash a subscription carries of its left value: FNV-1a over the value's
// serialized bytes. It only tells successive values of one key apart.
inline uint64_t subscription_hash(std::string_view bytes) {
  uint64_t hash = 14695981039346656037ULL;
  for (const char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

namespace fk_join_detail {

inline void append_big_endian(std::string& out, uint64_t value, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((value >> shift) & 0xff));
}

// Reads `bytes` bytes big-endian from `in` at `at`, moving `at` past them.
inline uint64_t read_big_endian(std::string_view in, std::size_t& at, int bytes,
                                std::string_view what) {
  if (in.size() < at + static_cast<std::size_t>(bytes))
    throw SerdeError(std::string(what) + ": " + std::to_string(in.size()) +
                     " bytes end before its fields do");
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | static_cast<unsigned char>(in[at++]);
  return value;
}

constexpr char kFormatVersion = 0;
constexpr uint8_t kHasHash = 1;
constexpr uint8_t kHasValue = 2;

inline std::string_view checked_bytes(NullableBytes bytes, std::string_view what) {
  if (!bytes || bytes->empty() || (*bytes)[0] != kFormatVersion)
    throw SerdeError(std::string(what) + ": not written by this version of rill");
  return *bytes;
}

}  // namespace fk_join_detail

// The registration topic's values: version, instruction, flags, the hash when
// there is one, the left key's partition (4 bytes), the left key.
inline SerdePtr<Subscription> subscription_serde() {
  using namespace fk_join_detail;
  return serdes::from_functions<Subscription>(
      "subscription",
      [](const Subscription& s, std::string& out) {
        out.push_back(kFormatVersion);
        out.push_back(static_cast<char>(s.instruction));
        out.push_back(static_cast<char>(s.value_hash ? kHasHash : 0));
        if (s.value_hash) append_big_endian(out, *s.value_hash, 8);
        append_big_endian(out, static_cast<uint32_t>(s.primary_partition), 4);
        out.append(s.primary_key);
        return true;
      },
      [](NullableBytes bytes) {
        constexpr std::string_view kWhat = "foreign-key join subscription";
        const std::string_view in = checked_bytes(bytes, kWhat);
        std::size_t at = 1;
        Subscription s;
        const auto instruction = read_big_endian(in, at, 1, kWhat);
        if (instruction > static_cast<uint8_t>(SubscriptionInstruction::kSubscribeAnswerIfFound))
          throw SerdeError(std::string(kWhat) + ": unknown instruction " +
                           std::to_string(instruction));
        s.instruction = static_cast<SubscriptionInstruction>(instruction);
        if (read_big_endian(in, at, 1, kWhat) & kHasHash)
          s.value_hash = read_big_endian(in, at, 8, kWhat);
        s.primary_partition = static_cast<int32_t>(read_big_endian(in, at, 4, kWhat));
        s.primary_key = std::string(in.substr(at));
        return s;
      });
}

// The response topic's values: version, flags, the hash when there is one,
// the foreign row's bytes when there is one.
inline SerdePtr<SubscriptionResponse> subscription_response_serde() {
  using namespace fk_join_detail;
  return serdes::from_functions<SubscriptionResponse>(
      "subscription_response",
      [](const SubscriptionResponse& r, std::string& out) {
        out.push_back(kFormatVersion);
        out.push_back(
            static_cast<char>((r.value_hash ? kHasHash : 0) | (r.foreign_value ? kHasValue : 0)));
        if (r.value_hash) append_big_endian(out, *r.value_hash, 8);
        if (r.foreign_value) out.append(*r.foreign_value);
        return true;
      },
      [](NullableBytes bytes) {
        constexpr std::string_view kWhat = "foreign-key join response";
        const std::string_view in = checked_bytes(bytes, kWhat);
        std::size_t at = 1;
        SubscriptionResponse r;
        const uint64_t flags = read_big_endian(in, at, 1, kWhat);
        if (flags & kHasHash) r.value_hash = read_big_endian(in, at, 8, kWhat);
        if (flags & kHasValue) r.foreign_value = std::string(in.substr(at));
        return r;
      });
}

// The subscription store's key: the foreign key's length (4 bytes, big
// endian), the foreign key, then the left key, so that a prefix scan of the
// first two finds every subscriber of a foreign key.
inline std::string subscription_prefix(std::string_view foreign_key) {
  std::string prefix;
  prefix.reserve(4 + foreign_key.size());
  fk_join_detail::append_big_endian(prefix, foreign_key.size(), 4);
  prefix.append(foreign_key);
  return prefix;
}
inline std::string subscription_key(std::string_view foreign_key, std::string_view primary_key) {
  std::string key = subscription_prefix(foreign_key);
  key.append(primary_key);
  return key;
}

// The value hash of a left row; absent when the row is absent or its serde
// writes null.
template <class V>
std::optional<uint64_t> row_hash(const SerdePtr<V>& serde, const std::optional<V>& row,
                                 std::string& buffer) {
  if (!row) return std::nullopt;
  buffer.clear();
  if (!serde->serialize(*row, buffer)) return std::nullopt;
  return subscription_hash(buffer);
}

// Left side: the subscriptions of each left update, keyed by foreign key, to
// the registration topic's sink. An update that names no foreign row (a
// deleted row, or one without a foreign key) has nothing to ask: it goes to
// the `no_foreign_key` child instead, keyed by nothing. Needs the left
// table's old values.
template <class K, class V, class KO>
class SubscriptionSendProcessor final : public Processor<K, Change<V>, std::string, Subscription> {
 public:
  using ForeignKey = std::function<std::optional<KO>(const K& key, const V& value)>;

  SubscriptionSendProcessor(ForeignKey foreign_key, SerdePtr<K> key_serde, SerdePtr<V> value_serde,
                            SerdePtr<KO> foreign_key_serde, bool left_join, std::string sink,
                            std::string no_foreign_key)
      : foreign_key_(std::move(foreign_key)),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)),
        foreign_key_serde_(std::move(foreign_key_serde)),
        left_join_(left_join),
        sink_(std::move(sink)),
        no_foreign_key_(std::move(no_foreign_key)) {}

  void init(ProcessorContext<std::string, Subscription>& context) override { context_ = &context; }

  void process(const Record<K, Change<V>>& record) override {
    if (is_null(record.key)) {
      context_->record_dropped(kNullKey);
      return;
    }
    const Change<V>& change = record.value;
    const std::optional<std::string> new_key = foreign_key_bytes(record.key, change.new_value);
    const std::optional<std::string> old_key = foreign_key_bytes(record.key, change.old_value);
    std::string primary_key;
    key_serde_->serialize(record.key, primary_key);
    const std::optional<uint64_t> hash = row_hash(value_serde_, change.new_value, buffer_);
    if (old_key && old_key != new_key)
      send(record, *old_key, SubscriptionInstruction::kUnsubscribe, std::nullopt, primary_key,
           sink_);
    if (new_key) {
      // A new row of an inner join made no joined row that a missing foreign
      // row must delete.
      const bool answer_always = left_join_ || change.old_value.has_value();
      send(record, *new_key,
           answer_always ? SubscriptionInstruction::kSubscribeAnswerAlways
                         : SubscriptionInstruction::kSubscribeAnswerIfFound,
           hash, primary_key, sink_);
    } else if (change.new_value || change.old_value) {
      send(record, {}, SubscriptionInstruction::kSubscribeAnswerAlways, hash, primary_key,
           no_foreign_key_);
    }
  }

 private:
  std::optional<std::string> foreign_key_bytes(const K& key, const std::optional<V>& value) {
    if (!value) return std::nullopt;
    std::optional<KO> foreign = foreign_key_(key, *value);
    if (!foreign || is_null(*foreign)) return std::nullopt;
    std::string bytes;
    if (!foreign_key_serde_->serialize(*foreign, bytes)) return std::nullopt;
    return bytes;
  }

  void send(const Record<K, Change<V>>& record, const std::string& foreign_key,
            SubscriptionInstruction instruction, std::optional<uint64_t> hash,
            const std::string& primary_key, const std::string& child) {
    Subscription subscription{instruction, hash, context_->task_id().partition, primary_key};
    context_->forward(Record<std::string, Subscription>{foreign_key, std::move(subscription),
                                                        record.timestamp, record.headers},
                      child);
  }

  ForeignKey foreign_key_;
  SerdePtr<K> key_serde_;
  SerdePtr<V> value_serde_;
  SerdePtr<KO> foreign_key_serde_;
  bool left_join_;
  std::string sink_;
  std::string no_foreign_key_;
  std::string buffer_;
  ProcessorContext<std::string, Subscription>* context_ = nullptr;
};

// Left side: an update that names no foreign row is answered at once, with
// no foreign row, straight to the resolver.
template <class K>
class NoForeignKeyProcessor final
    : public Processor<std::string, Subscription, K, SubscriptionResponse> {
 public:
  explicit NoForeignKeyProcessor(SerdePtr<K> key_serde) : key_serde_(std::move(key_serde)) {}

  void init(ProcessorContext<K, SubscriptionResponse>& context) override { context_ = &context; }

  void process(const Record<std::string, Subscription>& record) override {
    context_->forward(Record<K, SubscriptionResponse>{
        key_serde_->deserialize(std::string_view(record.value.primary_key)),
        SubscriptionResponse{record.value.value_hash, std::nullopt, -1}, record.timestamp,
        record.headers});
  }

 private:
  SerdePtr<K> key_serde_;
  ProcessorContext<K, SubscriptionResponse>* context_ = nullptr;
};

// Right side: keeps each subscription in the store and answers it with the
// foreign row. Answers are keyed by the left key's bytes.
template <class KO, class VO>
class SubscriptionReceiveProcessor final
    : public Processor<std::string, Subscription, std::string, SubscriptionResponse> {
 public:
  using Store = KeyValueStore<std::string, ValueAndTimestamp<Subscription>>;

  SubscriptionReceiveProcessor(std::string store, RowReaderFactory<KO, VO> rows,
                               SerdePtr<KO> foreign_key_serde, SerdePtr<VO> foreign_value_serde)
      : store_name_(std::move(store)),
        make_reader_(std::move(rows)),
        foreign_key_serde_(std::move(foreign_key_serde)),
        foreign_value_serde_(std::move(foreign_value_serde)) {}

  void init(ProcessorContext<std::string, SubscriptionResponse>& context) override {
    context_ = &context;
    store_ = &context.template state_store<Store>(store_name_);
    // Prefix scans read the store itself.
    store_->disable_cache();
    rows_ = make_reader_(context);
  }

  void process(const Record<std::string, Subscription>& record) override {
    const Subscription& subscription = record.value;
    const std::string key = subscription_key(record.key, subscription.primary_key);
    if (subscription.instruction == SubscriptionInstruction::kUnsubscribe) {
      store_->remove(key);
      return;
    }
    store_->put(key, ValueAndTimestamp<Subscription>{subscription, record.timestamp});
    const KO foreign = foreign_key_serde_->deserialize(std::string_view(record.key));
    const std::optional<ValueAndTimestamp<VO>> row = rows_(foreign, kLatestRow);
    if (!row && subscription.instruction == SubscriptionInstruction::kSubscribeAnswerIfFound)
      return;
    SubscriptionResponse response{subscription.value_hash, std::nullopt,
                                  subscription.primary_partition};
    int64_t timestamp = record.timestamp;
    if (row) {
      std::string bytes;
      if (foreign_value_serde_->serialize(row->value, bytes))
        response.foreign_value = std::move(bytes);
      timestamp = std::max(timestamp, row->timestamp);
    }
    context_->forward(Record<std::string, SubscriptionResponse>{
        subscription.primary_key, std::move(response), timestamp, record.headers});
  }

 private:
  std::string store_name_;
  RowReaderFactory<KO, VO> make_reader_;
  SerdePtr<KO> foreign_key_serde_;
  SerdePtr<VO> foreign_value_serde_;
  ProcessorContext<std::string, SubscriptionResponse>* context_ = nullptr;
  Store* store_ = nullptr;
  RowReader<KO, VO> rows_;
};

// Right side: an update of a foreign row answers every subscriber of its key.
template <class KO, class VO>
class ForeignRowUpdateProcessor final
    : public Processor<KO, Change<VO>, std::string, SubscriptionResponse> {
 public:
  using Store = KeyValueStore<std::string, ValueAndTimestamp<Subscription>>;

  ForeignRowUpdateProcessor(std::string store, SerdePtr<KO> foreign_key_serde,
                            SerdePtr<VO> foreign_value_serde)
      : store_name_(std::move(store)),
        foreign_key_serde_(std::move(foreign_key_serde)),
        foreign_value_serde_(std::move(foreign_value_serde)) {}

  void init(ProcessorContext<std::string, SubscriptionResponse>& context) override {
    context_ = &context;
    store_ = &context.template state_store<Store>(store_name_);
  }

  void process(const Record<KO, Change<VO>>& record) override {
    // A table hands on real changes only; a deletion has no old value unless
    // the table sends old values, which this node does not need.
    if (is_null(record.key)) return;
    std::string foreign_key;
    if (!foreign_key_serde_->serialize(record.key, foreign_key)) return;
    std::optional<std::string> value;
    if (record.value.new_value) {
      std::string bytes;
      if (foreign_value_serde_->serialize(*record.value.new_value, bytes)) value = std::move(bytes);
    }
    for (const auto& [key, subscription] :
         store_->prefix_scan(subscription_prefix(foreign_key), serdes::bytes())) {
      (void)key;
      context_->forward(Record<std::string, SubscriptionResponse>{
          subscription.value.primary_key,
          SubscriptionResponse{subscription.value.value_hash, value,
                               subscription.value.primary_partition},
          std::max(record.timestamp, subscription.timestamp), record.headers});
    }
  }

 private:
  std::string store_name_;
  SerdePtr<KO> foreign_key_serde_;
  SerdePtr<VO> foreign_value_serde_;
  ProcessorContext<std::string, SubscriptionResponse>* context_ = nullptr;
  Store* store_ = nullptr;
};

// Left side: joins an answer with the left row it was asked for, unless the
// row changed since (the hashes differ): a newer answer is on its way. Its
// output is the joined row, or std::nullopt to delete it.
template <class K, class V, class VO, class VJ>
class SubscriptionResolverProcessor final
    : public Processor<K, SubscriptionResponse, K, std::optional<VJ>> {
 public:
  using Joiner = std::function<VJ(const K& key, const V& value, const std::optional<VO>& foreign)>;

  SubscriptionResolverProcessor(RowReaderFactory<K, V> rows, SerdePtr<V> value_serde,
                                SerdePtr<VO> foreign_value_serde, Joiner joiner, bool left_join)
      : make_reader_(std::move(rows)),
        value_serde_(std::move(value_serde)),
        foreign_value_serde_(std::move(foreign_value_serde)),
        joiner_(std::move(joiner)),
        left_join_(left_join) {}

  void init(ProcessorContext<K, std::optional<VJ>>& context) override {
    context_ = &context;
    rows_ = make_reader_(context);
  }

  void process(const Record<K, SubscriptionResponse>& record) override {
    const std::optional<ValueAndTimestamp<V>> row = rows_(record.key, kLatestRow);
    std::optional<V> current;
    if (row) current = row->value;
    // A stale answer is expected, not an error: it is not counted as dropped.
    if (row_hash(value_serde_, current, buffer_) != record.value.value_hash) return;
    std::optional<VJ> joined;
    if (current && (record.value.foreign_value || left_join_)) {
      std::optional<VO> foreign;
      if (record.value.foreign_value)
        foreign = foreign_value_serde_->deserialize(std::string_view(*record.value.foreign_value));
      joined = joiner_(record.key, *current, foreign);
    }
    context_->forward(Record<K, std::optional<VJ>>{record.key, std::move(joined), record.timestamp,
                                                   record.headers});
  }

 private:
  RowReaderFactory<K, V> make_reader_;
  SerdePtr<V> value_serde_;
  SerdePtr<VO> foreign_value_serde_;
  Joiner joiner_;
  bool left_join_;
  std::string buffer_;
  ProcessorContext<K, std::optional<VJ>>* context_ = nullptr;
  RowReader<K, V> rows_;
};

}  // namespace rill::operators
