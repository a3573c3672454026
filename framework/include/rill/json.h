// JSON keys and values: the serde that writes them as UTF-8 text, as Kafka's
// JSON serializers do, and the default serde of nlohmann::json.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "rill/serde.h"

namespace rill {

namespace serdes {

// JSON text. T is nlohmann::json or any type with nlohmann `to_json`/`from_json`.
template <class T = nlohmann::json>
SerdePtr<T> json();

}  // namespace serdes

// ---------------------------------------------------------------------------
// Implementation of the templates above.

namespace serdes::detail {

// Parses JSON text as nlohmann::json::parse does, faster; throws
// nlohmann::json::exception on malformed text.
nlohmann::json parse_json(std::string_view text);

template <class T>
class JsonSerde final : public Serde<T> {
 public:
  bool serialize(const T& value, std::string& out) const override {
    if constexpr (std::is_same_v<T, nlohmann::json>) {
      if (value.is_null()) return false;
      out += value.dump();
    } else {
      out += nlohmann::json(value).dump();
    }
    return true;
  }
  T deserialize(NullableBytes bytes) const override {
    if (!bytes) {
      if constexpr (std::is_same_v<T, nlohmann::json>) return nullptr;
      throw SerdeError("json: null where a value was expected");
    }
    try {
      nlohmann::json parsed = parse_json(*bytes);
      if constexpr (std::is_same_v<T, nlohmann::json>) {
        return parsed;
      } else {
        return parsed.template get<T>();
      }
    } catch (const nlohmann::json::exception& e) {
      throw SerdeError(std::string("json: ") + e.what());
    }
  }
  std::string_view name() const override { return "json"; }
};

template <>
struct DefaultSerde<nlohmann::json> {
  static SerdePtr<nlohmann::json> get() { return serdes::json<nlohmann::json>(); }
};

}  // namespace serdes::detail

template <class T>
SerdePtr<T> serdes::json() {
  return std::make_shared<detail::JsonSerde<T>>();
}

}  // namespace rill
