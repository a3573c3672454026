// JSON text into nlohmann::json through simdjson. nlohmann's own parser reads
// a character at a time into a token buffer: in a pipeline that only filters
// and projects JSON records, it took about half of the process's time.
// simdjson validates and indexes the whole text at once, and the value is
// built from its tape. The result is the one nlohmann's parser gives: a
// number without a fraction or an exponent is an unsigned integer when not
// negative and a signed one otherwise, anything else a double; a repeated key
// keeps its last value. What simdjson refuses (a number beyond 64 bits, a
// double out of range, nesting deeper than it indexes, any malformed text)
// goes to nlohmann's parser, which accepts what it accepts and words the error.
#include <simdjson.h>

#include "rill/json.h"

namespace rill::serdes::detail {
namespace {

nlohmann::json value_of(simdjson::dom::element element) {
  using Type = simdjson::dom::element_type;
  switch (element.type()) {
    case Type::OBJECT: {
      const simdjson::dom::object fields(element);
      nlohmann::json object = nlohmann::json::object();
      for (const simdjson::dom::key_value_pair field : fields)
        object[std::string(field.key)] = value_of(field.value);
      return object;
    }
    case Type::ARRAY: {
      const simdjson::dom::array items(element);
      nlohmann::json array = nlohmann::json::array();
      for (const simdjson::dom::element item : items) array.push_back(value_of(item));
      return array;
    }
    case Type::INT64: {
      const int64_t number = element.get_int64().value_unsafe();
      if (number >= 0) return static_cast<uint64_t>(number);
      return number;
    }
    case Type::UINT64:
      return element.get_uint64().value_unsafe();
    case Type::DOUBLE:
      return element.get_double().value_unsafe();
    case Type::STRING:
      return std::string(element.get_string().value_unsafe());
    case Type::BOOL:
      return element.get_bool().value_unsafe();
    case Type::NULL_VALUE:
      return nullptr;
  }
  return nullptr;
}

}  // namespace

nlohmann::json parse_json(std::string_view text) {
  // One parser per thread: it keeps its buffers from one record to the next.
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(text.data(), text.size(), /*realloc_if_needed=*/true).get(root) ==
      simdjson::SUCCESS)
    return value_of(root);
  return nlohmann::json::parse(text.begin(), text.end());
}

}  // namespace rill::serdes::detail
