// The built-in serdes, byte-compatible with Kafka's Java serializers.
#include <bit>
#include <cstring>

#include "rill/serde.h"

namespace rill::serdes {
namespace {

class StringSerde final : public Serde<std::string> {
 public:
  explicit StringSerde(std::string_view name) : name_(name) {}
  bool serialize(const std::string& value, std::string& out) const override {
    out += value;
    return true;
  }
  std::string deserialize(NullableBytes bytes) const override {
    return bytes ? std::string(*bytes) : std::string();
  }
  std::string_view name() const override { return name_; }

 private:
  std::string_view name_;
};

// Fixed-width big-endian numbers, as java.nio.ByteBuffer writes them.
template <class T, class Bits>
class BigEndianSerde final : public Serde<T> {
 public:
  explicit BigEndianSerde(std::string_view name) : name_(name) {}
  bool serialize(const T& value, std::string& out) const override {
    Bits bits = std::bit_cast<Bits>(value);
    char bytes[sizeof(Bits)];
    for (std::size_t i = 0; i < sizeof(Bits); ++i)
      bytes[i] = static_cast<char>((bits >> (8 * (sizeof(Bits) - 1 - i))) & 0xff);
    out.append(bytes, sizeof bytes);
    return true;
  }
  T deserialize(NullableBytes bytes) const override {
    if (!bytes) throw SerdeError(std::string(name_) + ": null where a value was expected");
    if (bytes->size() != sizeof(Bits))
      throw SerdeError(std::string(name_) + ": expected " + std::to_string(sizeof(Bits)) +
                       " bytes, got " + std::to_string(bytes->size()));
    Bits bits = 0;
    for (unsigned char byte : *bytes) bits = static_cast<Bits>((bits << 8) | byte);
    return std::bit_cast<T>(bits);
  }
  std::string_view name() const override { return name_; }

 private:
  std::string_view name_;
};

}  // namespace

SerdePtr<std::string> string() {
  static const auto serde = std::make_shared<StringSerde>("string");
  return serde;
}
SerdePtr<std::string> bytes() {
  static const auto serde = std::make_shared<StringSerde>("bytes");
  return serde;
}
SerdePtr<int32_t> int32() {
  static const auto serde = std::make_shared<BigEndianSerde<int32_t, uint32_t>>("int32");
  return serde;
}
SerdePtr<int64_t> int64() {
  static const auto serde = std::make_shared<BigEndianSerde<int64_t, uint64_t>>("int64");
  return serde;
}
SerdePtr<double> float64() {
  static const auto serde = std::make_shared<BigEndianSerde<double, uint64_t>>("float64");
  return serde;
}

}  // namespace rill::serdes
