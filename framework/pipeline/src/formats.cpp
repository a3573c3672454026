// The record formats of pipelines, as serdes over JSON values, so that every
// stream of a pipeline has one type, KStream<Json, Json>.
#include <cstring>

#include "rill/pipeline/pipeline.h"
#include "rill/serde.h"

namespace rill::pipeline {
namespace {

// Text as a JSON string; a value that is not a string is written as JSON text.
class TextSerde final : public Serde<Json> {
 public:
  explicit TextSerde(std::string_view name) : name_(name) {}
  bool serialize(const Json& value, std::string& out) const override {
    if (value.is_null()) return false;
    if (value.is_string())
      out += value.get_ref<const std::string&>();
    else
      out += value.dump();
    return true;
  }
  Json deserialize(NullableBytes bytes) const override {
    if (!bytes) return nullptr;
    return std::string(*bytes);
  }
  std::string_view name() const override { return name_; }

 private:
  std::string_view name_;
};

// The key of a repartition topic and a store in the string format: what
// Kafka's StringSerializer writes for the same key, so that a key lands on the
// partition a Java or librdkafka producer keyed by the plain string picks. A
// number is written as its text (and read back as a string); an object or
// array has no such form.
class StringKeySerde final : public Serde<Json> {
 public:
  bool serialize(const Json& key, std::string& out) const override {
    if (key.is_null()) return false;
    if (key.is_string()) {
      out += key.get_ref<const std::string&>();
    } else if (key.is_structured()) {
      throw SerdeError("key format string: cannot write the key " + key.dump() +
                       ", expected a string or a number (declare key_format: json for "
                       "object and array keys)");
    } else {
      out += key.dump();
    }
    return true;
  }
  Json deserialize(NullableBytes bytes) const override {
    if (!bytes) return nullptr;
    return std::string(*bytes);
  }
  std::string_view name() const override { return "string"; }
};

// Kafka's LongSerializer: 8 big-endian bytes.
class Int64Serde final : public Serde<Json> {
 public:
  bool serialize(const Json& value, std::string& out) const override {
    if (value.is_null()) return false;
    if (!value.is_number_integer())
      throw SerdeError("int64: cannot write " + value.dump() + ", expected an integer");
    return inner_->serialize(value.get<int64_t>(), out);
  }
  Json deserialize(NullableBytes bytes) const override {
    if (!bytes) return nullptr;
    return inner_->deserialize(bytes);
  }
  std::string_view name() const override { return "int64"; }

 private:
  SerdePtr<int64_t> inner_ = serdes::int64();
};

}  // namespace

SerdePtr<Json> format_serde(std::string_view format) {
  if (format == "json") return serdes::json<Json>();
  if (format == "string") return std::make_shared<TextSerde>("string");
  if (format == "bytes") return std::make_shared<TextSerde>("bytes");
  if (format == "int64") return std::make_shared<Int64Serde>();
  throw std::invalid_argument("unknown format '" + std::string(format) + "'");
}

SerdePtr<Json> key_format_serde(std::string_view format) {
  if (format == "string") return std::make_shared<StringKeySerde>();
  return format_serde(format);
}

}  // namespace rill::pipeline
