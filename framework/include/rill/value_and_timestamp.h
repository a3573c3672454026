// Values kept with the timestamp of the latest record that updated them, as in
// Kafka Streams' timestamped stores. DSL aggregations and tables keep their
// results this way: a result carries the largest timestamp of the records it
// was built from, and sliding windows need that timestamp to know which
// records a window holds.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "rill/serde.h"

namespace rill {

template <class V>
struct ValueAndTimestamp {
  V value;
  int64_t timestamp = 0;

  bool operator==(const ValueAndTimestamp&) const = default;
};

namespace serdes {

// The timestamp as 8 big-endian bytes, then the inner serde's bytes: the
// layout of Kafka Streams' timestamped stores. A value the inner serde writes
// as null is written as null.
template <class V>
SerdePtr<ValueAndTimestamp<V>> value_and_timestamp(SerdePtr<V> inner);

}  // namespace serdes

// ---------------------------------------------------------------------------
// Implementation of the templates above.

namespace serdes::detail {

inline void append_be64(std::string& out, int64_t value) {
  const auto bits = static_cast<uint64_t>(value);
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((bits >> shift) & 0xff));
}

inline int64_t read_be64(std::string_view bytes, std::size_t offset) {
  uint64_t bits = 0;
  for (std::size_t i = 0; i < 8; ++i)
    bits = (bits << 8) | static_cast<unsigned char>(bytes[offset + i]);
  return static_cast<int64_t>(bits);
}

template <class V>
class ValueAndTimestampSerde final : public Serde<ValueAndTimestamp<V>> {
 public:
  explicit ValueAndTimestampSerde(SerdePtr<V> inner)
      : inner_(std::move(inner)),
        name_("value_and_timestamp<" + std::string(inner_->name()) + ">") {}

  bool serialize(const ValueAndTimestamp<V>& value, std::string& out) const override {
    const std::size_t mark = out.size();
    append_be64(out, value.timestamp);
    if (inner_->serialize(value.value, out)) return true;
    out.resize(mark);
    return false;
  }
  ValueAndTimestamp<V> deserialize(NullableBytes bytes) const override {
    if (!bytes || bytes->size() < 8)
      throw SerdeError(name_ + ": expected an 8-byte timestamp and a value, got " +
                       (bytes ? std::to_string(bytes->size()) + " bytes" : "null"));
    return {inner_->deserialize(bytes->substr(8)), read_be64(*bytes, 0)};
  }
  std::string_view name() const override { return name_; }

 private:
  SerdePtr<V> inner_;
  std::string name_;
};

}  // namespace serdes::detail

template <class V>
SerdePtr<ValueAndTimestamp<V>> serdes::value_and_timestamp(SerdePtr<V> inner) {
  return std::make_shared<detail::ValueAndTimestampSerde<V>>(std::move(inner));
}

}  // namespace rill
