// Fuzzes the expression language: compiles arbitrary text, as an expression
// and as an aggregation, and evaluates what compiles against one fixed record.
// Compile errors (ExpressionError) and evaluation errors (EvalError) are the
// expected outcomes; any other exception, a sanitizer report, or a result
// whose type contradicts the type known at compile time is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "rill/pipeline/expression.h"
#include "rill/record.h"

namespace {

using rill::pipeline::EvalContext;
using rill::pipeline::EvalError;
using rill::pipeline::Expression;
using rill::pipeline::ExpressionError;
using rill::pipeline::Json;
using rill::pipeline::ValueType;

const Json& record_key() {
  static const Json key = "k1";
  return key;
}

const Json& record_value() {
  static const Json value = Json::parse(R"({
    "user": {"id": "u1", "name": "Ada"},
    "amount": 12,
    "price": 2.5,
    "big": 9223372036854775807,
    "small": -9223372036854775808,
    "country": "NL",
    "tags": ["a", "b"],
    "items": [{"sku": "x", "qty": 2}, {"sku": "y", "qty": -1}],
    "nothing": null,
    "flag": true,
    "text": "  Hello World  "
  })");
  return value;
}

bool matches(ValueType type, const Json& result) {
  if (result.is_null()) return true;  // null propagates through every type
  switch (type) {
    case ValueType::kAny:
      return true;
    case ValueType::kNull:
      return false;
    case ValueType::kBool:
      return result.is_boolean();
    case ValueType::kNumber:
      return result.is_number();
    case ValueType::kString:
      return result.is_string();
    case ValueType::kArray:
      return result.is_array();
    case ValueType::kObject:
      return result.is_object();
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  static const rill::Headers headers{{"trace", "t-1"}, {"empty", std::nullopt}};
  const EvalContext context{record_key(), record_value(), 1700000000123, &headers};

  try {
    const Expression expression = Expression::compile(text);
    try {
      const Json result = expression.evaluate(context);
      if (!matches(expression.type(), result)) std::abort();
    } catch (const EvalError&) {
    }
  } catch (const ExpressionError& e) {
    if (e.offset() > size) std::abort();  // the offset must point into the text
  }

  try {
    const rill::pipeline::AggregateCall call = rill::pipeline::compile_aggregate(text);
    if (call.argument) {
      try {
        call.argument->evaluate(context);
      } catch (const EvalError&) {
      }
    }
  } catch (const ExpressionError& e) {
    if (e.offset() > size) std::abort();
  }
  return 0;
}
