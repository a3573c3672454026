// A table update, as Kafka Streams' Change<V>: the key's new value and, when
// the table sends old values (for KTable::group_by), the value it replaces.
// Table processors forward Record<K, Change<V>>; std::nullopt as the new value
// deletes the key (a tombstone).
//
// serdes::changed writes both on a repartition topic in Kafka Streams'
// ChangedSerializer layout, so rill and Java applications read each other's
// regrouped tables:
//   old value only:  {old bytes}{0x00}
//   new value only:  {new bytes}{0x01}
//   both:            {zig-zag varint length of new}{new bytes}{old bytes}{0x02}
// Flags 3 to 5, which Kafka Streams reads as 0 to 2 followed by an "is latest"
// byte before the flag, are read too (the byte is ignored).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "rill/serde.h"

namespace rill {

template <class V>
struct Change {
  std::optional<V> new_value;
  std::optional<V> old_value;

  bool operator==(const Change&) const = default;
};

namespace serdes {

// Change<V> in Kafka Streams' ChangedSerializer layout (see above). A change
// with neither value is an error, as in Kafka Streams.
template <class V>
SerdePtr<Change<V>> changed(SerdePtr<V> inner);

}  // namespace serdes

// ---------------------------------------------------------------------------
// Implementation of the templates above.

namespace serdes::detail {

template <class V>
class ChangedSerde final : public Serde<Change<V>> {
 public:
  explicit ChangedSerde(SerdePtr<V> inner)
      : inner_(std::move(inner)), name_("changed<" + std::string(inner_->name()) + ">") {}

  bool serialize(const Change<V>& change, std::string& out) const override {
    if (!change.new_value && !change.old_value)
      throw SerdeError(name_ + ": a change with neither a new nor an old value");
    if (!change.old_value) return append_one(*change.new_value, out, kNewOnly);
    if (!change.new_value) return append_one(*change.old_value, out, kOldOnly);
    // The length of the new value comes first; it is known only once written.
    std::string& scratch = scratch_buffer();
    scratch.clear();
    inner_->serialize(*change.new_value, scratch);
    append_varint(out, static_cast<int32_t>(scratch.size()));
    out += scratch;
    inner_->serialize(*change.old_value, out);
    out.push_back(kBoth);
    return true;
  }

  Change<V> deserialize(NullableBytes bytes) const override {
    if (!bytes || bytes->empty())
      throw SerdeError(name_ + ": expected a change, got " + (bytes ? "no bytes" : "null"));
    std::string_view data = *bytes;
    const auto flag = static_cast<unsigned char>(data.back());
    data.remove_suffix(1);
    if (flag > kBoth + 3)
      throw SerdeError(name_ + ": unknown encoding flag " + std::to_string(flag));
    if (flag > kBoth) {
      if (data.empty()) throw SerdeError(name_ + ": missing the is-latest byte");
      data.remove_suffix(1);
    }
    Change<V> change;
    switch (flag % 3) {
      case kOldOnly:
        change.old_value = inner_->deserialize(data);
        break;
      case kNewOnly:
        change.new_value = inner_->deserialize(data);
        break;
      default: {
        const int32_t length = read_varint(data);
        if (length < 0 || static_cast<std::size_t>(length) > data.size())
          throw SerdeError(name_ + ": new value length " + std::to_string(length) +
                           " exceeds the " + std::to_string(data.size()) + " bytes left");
        change.new_value = inner_->deserialize(data.substr(0, static_cast<std::size_t>(length)));
        change.old_value = inner_->deserialize(data.substr(static_cast<std::size_t>(length)));
      }
    }
    return change;
  }

  std::string_view name() const override { return name_; }

 private:
  static constexpr unsigned char kOldOnly = 0;
  static constexpr unsigned char kNewOnly = 1;
  static constexpr unsigned char kBoth = 2;

  bool append_one(const V& value, std::string& out, unsigned char flag) const {
    inner_->serialize(value, out);
    out.push_back(static_cast<char>(flag));
    return true;
  }
  // Serdes are shared by tasks on several threads; each thread reuses its own.
  static std::string& scratch_buffer() {
    thread_local std::string buffer;
    return buffer;
  }
  // Kafka's ByteUtils.writeVarint: zig-zag, then 7 bits per byte, low first.
  static void append_varint(std::string& out, int32_t value) {
    auto bits = (static_cast<uint32_t>(value) << 1) ^ static_cast<uint32_t>(value >> 31);
    while (bits >= 0x80) {
      out.push_back(static_cast<char>((bits & 0x7f) | 0x80));
      bits >>= 7;
    }
    out.push_back(static_cast<char>(bits));
  }
  int32_t read_varint(std::string_view& data) const {
    uint32_t bits = 0;
    for (int shift = 0; shift < 35; shift += 7) {
      if (data.empty()) break;
      const auto byte = static_cast<unsigned char>(data.front());
      data.remove_prefix(1);
      bits |= static_cast<uint32_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return static_cast<int32_t>((bits >> 1) ^ (~(bits & 1) + 1));
    }
    throw SerdeError(name_ + ": malformed varint length of the new value");
  }

  SerdePtr<V> inner_;
  std::string name_;
};

}  // namespace serdes::detail

template <class V>
SerdePtr<Change<V>> serdes::changed(SerdePtr<V> inner) {
  return std::make_shared<detail::ChangedSerde<V>>(std::move(inner));
}

}  // namespace rill
