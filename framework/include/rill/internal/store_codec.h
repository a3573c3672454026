// How the query endpoint reads a store without knowing its types: a key from
// the text of a URL, and keys and values rendered for a JSON answer. Made by
// Stores for each store, where the types are known.
#pragma once

#include <charconv>
#include <concepts>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include "rill/serde.h"
#include "rill/value_and_timestamp.h"

namespace rill::internal {

// A key or value for a JSON answer.
struct QueryText {
  enum class Kind {
    kString,  // `text` is a string
    kNumber,  // `text` is a JSON number or true/false
    kJson,    // `text` is JSON
    kBytes,   // `text` is the serde's bytes of a type with no known rendering
  };
  Kind kind = Kind::kString;
  std::string text;
};

class StoreCodec {
 public:
  virtual ~StoreCodec() = default;
  // The serialized key a URL names: a string key is the text itself, a number
  // its digits, a JSON key its JSON text (or the text as a JSON string); a key
  // of another type is the text as its serde's bytes. Throws
  // std::invalid_argument naming what was expected.
  virtual std::string key_from_text(std::string_view text) const = 0;
  virtual QueryText key_text(std::string_view bytes) const = 0;
  // A stored value; a timestamped store's value without its timestamp.
  virtual QueryText value_text(std::string_view bytes) const = 0;
};

// Types with a rendering of their own; others render as their serde's bytes.
template <class T>
concept RenderedType = std::is_same_v<T, std::string> || std::is_arithmetic_v<T> ||
    requires(const T& value) {
  { value.dump() } -> std::convertible_to<std::string>;
};

template <RenderedType T>
QueryText query_text(const T& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    return {QueryText::Kind::kString, value};
  } else if constexpr (std::is_same_v<T, bool>) {
    return {QueryText::Kind::kNumber, value ? "true" : "false"};
  } else if constexpr (std::is_arithmetic_v<T>) {
    char digits[64];
    const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    return {QueryText::Kind::kNumber, std::string(digits, end)};
  } else {
    return {QueryText::Kind::kJson, value.dump()};
  }
}

// A stored value without the timestamp a timestamped store keeps with it
// (the first 8 bytes of its serialized form).
template <class T>
struct PlainValue {
  using Type = T;
  static constexpr std::size_t kTimestampBytes = 0;
  static const T& of(const T& value) { return value; }
};
template <class T>
struct PlainValue<ValueAndTimestamp<T>> {
  using Type = T;
  static constexpr std::size_t kTimestampBytes = 8;
  static const T& of(const ValueAndTimestamp<T>& value) { return value.value; }
};

template <class K, class V>
class TypedStoreCodec final : public StoreCodec {
 public:
  TypedStoreCodec(SerdePtr<K> key_serde, SerdePtr<V> value_serde)
      : key_serde_(std::move(key_serde)), value_serde_(std::move(value_serde)) {}

  std::string key_from_text(std::string_view text) const override {
    std::string bytes;
    if constexpr (std::is_same_v<K, std::string>) {
      key_serde_->serialize(std::string(text), bytes);
    } else if constexpr (std::is_arithmetic_v<K> && !std::is_same_v<K, bool>) {
      K key{};
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), key);
      if (error != std::errc() || end != text.data() + text.size())
        throw std::invalid_argument("'" + std::string(text) + "' is not a number");
      key_serde_->serialize(key, bytes);
    } else if constexpr (requires { K::parse(text); }) {
      K key;
      try {
        key = K::parse(text);
      } catch (const std::exception&) {
        key = K(std::string(text));
      }
      key_serde_->serialize(key, bytes);
    } else {
      bytes = std::string(text);
    }
    return bytes;
  }

  QueryText key_text(std::string_view bytes) const override {
    if constexpr (RenderedType<K>) {
      return query_text(key_serde_->deserialize(bytes));
    } else {
      return {QueryText::Kind::kBytes, std::string(bytes)};
    }
  }

  QueryText value_text(std::string_view bytes) const override {
    using Plain = PlainValue<V>;
    if constexpr (RenderedType<typename Plain::Type>) {
      return query_text(Plain::of(value_serde_->deserialize(bytes)));
    } else {
      if (bytes.size() < Plain::kTimestampBytes)
        throw SerdeError("a stored value shorter than its timestamp");
      return {QueryText::Kind::kBytes, std::string(bytes.substr(Plain::kTimestampBytes))};
    }
  }

 private:
  SerdePtr<K> key_serde_;
  SerdePtr<V> value_serde_;
};

// Shows JSON values as `present` makes them of their text.
class PresentingStoreCodec final : public StoreCodec {
 public:
  PresentingStoreCodec(std::shared_ptr<const StoreCodec> inner,
                       std::function<std::string(std::string_view json)> present)
      : inner_(std::move(inner)), present_(std::move(present)) {}
  std::string key_from_text(std::string_view text) const override {
    return inner_->key_from_text(text);
  }
  QueryText key_text(std::string_view bytes) const override { return inner_->key_text(bytes); }
  QueryText value_text(std::string_view bytes) const override {
    QueryText text = inner_->value_text(bytes);
    if (text.kind == QueryText::Kind::kJson) text.text = present_(text.text);
    return text;
  }

 private:
  std::shared_ptr<const StoreCodec> inner_;
  std::function<std::string(std::string_view json)> present_;
};

template <class K, class V>
std::shared_ptr<const StoreCodec> make_store_codec(SerdePtr<K> key_serde, SerdePtr<V> value_serde) {
  return std::make_shared<TypedStoreCodec<K, V>>(std::move(key_serde), std::move(value_serde));
}

}  // namespace rill::internal
