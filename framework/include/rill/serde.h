// Serdes turn typed keys and values into Kafka's bytes and back.
//
// Built-in serdes write what Kafka's Java serializers write, so rill and Java
// applications can share topics: integers are big-endian, strings are UTF-8,
// JSON is UTF-8 text. The JSON serde lives in rill/json.h, so that only
// programs that use JSON compile nlohmann/json.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace rill {

// Bytes as Kafka carries them: either null or a (possibly empty) byte string.
using NullableBytes = std::optional<std::string_view>;

// Thrown by a serde that cannot read the bytes it was given.
class SerdeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A serializer and deserializer for one type. Serdes are shared by every task of
// an application, so they must be stateless or thread-safe.
template <class T>
class Serde {
 public:
  using Type = T;
  virtual ~Serde() = default;

  // Appends the bytes of `value` to `out` (which the caller reuses between
  // records). Returns false to write null instead, e.g. for a tombstone.
  virtual bool serialize(const T& value, std::string& out) const = 0;
  // Reads a value; throws SerdeError when the bytes are malformed.
  virtual T deserialize(NullableBytes bytes) const = 0;
  // A short name shown in topology descriptions and error messages.
  virtual std::string_view name() const = 0;
};

template <class T>
using SerdePtr = std::shared_ptr<const Serde<T>>;

namespace serdes {

// UTF-8 text, as Kafka's StringSerializer. Null reads as the empty string.
SerdePtr<std::string> string();
// Raw bytes, as Kafka's ByteArraySerializer. Null reads as the empty string.
SerdePtr<std::string> bytes();
// 4-byte big-endian integers, as Kafka's IntegerSerializer.
SerdePtr<int32_t> int32();
// 8-byte big-endian integers, as Kafka's LongSerializer.
SerdePtr<int64_t> int64();
// 8-byte big-endian IEEE 754 doubles, as Kafka's DoubleSerializer.
SerdePtr<double> float64();

// Maps null to std::nullopt and back, around any serde.
template <class T>
SerdePtr<std::optional<T>> nullable(SerdePtr<T> inner);

// A serde from two functions, for user-defined formats.
template <class T, class SerializeFn, class DeserializeFn>
SerdePtr<T> from_functions(std::string name, SerializeFn serialize, DeserializeFn deserialize);

}  // namespace serdes

// The serde used when none is given: string, int32, int64, double,
// nlohmann::json (with rill/json.h included) and std::optional of those have
// one; other types return nullptr, and a topology that needs a serde for them
// fails validation naming the node.
template <class T>
SerdePtr<T> default_serde();

// ---------------------------------------------------------------------------
// Implementation of the templates above.

namespace serdes::detail {

template <class T>
class NullableSerde final : public Serde<std::optional<T>> {
 public:
  explicit NullableSerde(SerdePtr<T> inner)
      : inner_(std::move(inner)), name_("nullable<" + std::string(inner_->name()) + ">") {}
  bool serialize(const std::optional<T>& value, std::string& out) const override {
    return value && inner_->serialize(*value, out);
  }
  std::optional<T> deserialize(NullableBytes bytes) const override {
    if (!bytes) return std::nullopt;
    return inner_->deserialize(bytes);
  }
  std::string_view name() const override { return name_; }

 private:
  SerdePtr<T> inner_;
  std::string name_;
};

template <class T, class SerializeFn, class DeserializeFn>
class FunctionSerde final : public Serde<T> {
 public:
  FunctionSerde(std::string serde_name, SerializeFn serialize_fn, DeserializeFn deserialize_fn)
      : name_(std::move(serde_name)),
        serialize_(std::move(serialize_fn)),
        deserialize_(std::move(deserialize_fn)) {}
  bool serialize(const T& value, std::string& out) const override {
    if constexpr (std::is_same_v<std::invoke_result_t<SerializeFn, const T&, std::string&>, bool>) {
      return serialize_(value, out);
    } else {
      serialize_(value, out);
      return true;
    }
  }
  T deserialize(NullableBytes bytes) const override { return deserialize_(bytes); }
  std::string_view name() const override { return name_; }

 private:
  std::string name_;
  SerializeFn serialize_;
  DeserializeFn deserialize_;
};

template <class T>
struct DefaultSerde {
  static SerdePtr<T> get() { return nullptr; }
};
template <>
struct DefaultSerde<std::string> {
  static SerdePtr<std::string> get() { return serdes::string(); }
};
template <>
struct DefaultSerde<int32_t> {
  static SerdePtr<int32_t> get() { return serdes::int32(); }
};
template <>
struct DefaultSerde<int64_t> {
  static SerdePtr<int64_t> get() { return serdes::int64(); }
};
template <>
struct DefaultSerde<double> {
  static SerdePtr<double> get() { return serdes::float64(); }
};
template <class T>
struct DefaultSerde<std::optional<T>> {
  static SerdePtr<std::optional<T>> get() {
    auto inner = DefaultSerde<T>::get();
    return inner ? serdes::nullable<T>(std::move(inner)) : nullptr;
  }
};

}  // namespace serdes::detail

template <class T>
SerdePtr<std::optional<T>> serdes::nullable(SerdePtr<T> inner) {
  return std::make_shared<detail::NullableSerde<T>>(std::move(inner));
}

template <class T, class SerializeFn, class DeserializeFn>
SerdePtr<T> serdes::from_functions(std::string name, SerializeFn serialize,
                                   DeserializeFn deserialize) {
  return std::make_shared<detail::FunctionSerde<T, SerializeFn, DeserializeFn>>(
      std::move(name), std::move(serialize), std::move(deserialize));
}

template <class T>
SerdePtr<T> default_serde() {
  return serdes::detail::DefaultSerde<T>::get();
}

}  // namespace rill
