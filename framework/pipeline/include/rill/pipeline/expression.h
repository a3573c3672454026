// Expressions of configured pipelines: the conditions of `filter` and
// `branch`, the values built by `map`, keys, and the arguments of
// aggregations.
//
//   value.amount * 100 > 5000 and lower(value.country) == "nl"
//   coalesce(value.user.name, "anonymous")
//   format_time(timestamp, "%Y-%m-%d")
//
// An expression is parsed once, when the pipeline loads, into a tree of
// nodes; evaluating it per record walks that tree and parses nothing. Names:
// `key`, `value`, `timestamp` (the record's event time, ms since the epoch)
// and `headers` (`headers.trace` is the last header named "trace", as a
// string). Null propagates through arithmetic and string functions; a
// missing field reads as null. docs/yaml-reference.md lists the operators
// and functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "rill/json.h"
#include "rill/record.h"

namespace rill::pipeline {

using Json = nlohmann::json;

// A record as an expression sees it.
struct EvalContext {
  const Json& key;
  const Json& value;
  int64_t timestamp = 0;
  const Headers* headers = nullptr;
  // In a join's value: the row joined to the record; nullptr when there is none.
  const Json* right = nullptr;
};

// How deep one expression may nest: each pair of parentheses or brackets,
// each function call and each operator counts a level, including each link of
// a chain such as `a or b or c`. Parsing and evaluating recurse once per
// level, so the limit keeps a pipeline from exhausting the stack.
inline constexpr std::size_t kMaxExpressionDepth = 256;

// An expression that does not parse or cannot work: `offset` is the byte in
// the expression's text where the problem is.
class ExpressionError : public std::runtime_error {
 public:
  ExpressionError(std::size_t offset, const std::string& message)
      : std::runtime_error(message), offset_(offset) {}
  std::size_t offset() const { return offset_; }

 private:
  std::size_t offset_;
};

// An expression that failed on one record (a string multiplied, a division by
// zero, an integer result beyond 64 bits). The processor throws it, so the record goes to
// processing.exception.handler.
class EvalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A number as a 64-bit integer, a fraction truncated toward zero; nothing for
// anything else, or for a number beyond 64 bits (which a cast would turn into
// undefined behaviour).
std::optional<int64_t> integer_value(const Json& value);

// An integer (not a double) that fits in int64_t. Records may hold unsigned
// integers beyond INT64_MAX; arithmetic takes those as doubles.
std::optional<int64_t> exact_integer(const Json& value);

// What is known of a value's type when the pipeline loads.
enum class ValueType { kAny, kNull, kBool, kNumber, kString, kArray, kObject };
std::string_view to_string(ValueType type);

// What expressions may refer to at one point of a pipeline.
struct Scope {
  // The fields the value is known to have (after a `map` that builds an
  // object, after an aggregation, or as a source's declared fields). When
  // set, `value.<name>` of another name is an error at load time.
  std::optional<std::set<std::string>> value_fields;
  // In a join's value: `left` (the record's value, as `value`) and `right`
  // (the row joined to it, null when a left join finds none) are known.
  bool join_sides = false;
};

namespace detail {
class Node;
}

class Expression {
 public:
  // Throws ExpressionError.
  static Expression compile(std::string_view text, const Scope& scope = {});

  // Throws EvalError.
  Json evaluate(const EvalContext& context) const;
  // The expression as a condition: true only for the boolean true.
  bool test(const EvalContext& context) const;

  // The result type, as far as it is known at load time.
  ValueType type() const;
  // Whether the expression is exactly `key`, which lets a grouping skip the
  // repartition.
  bool is_key() const;
  // Whether it reads `timestamp` or `headers`, which aggregations do not see.
  bool reads_metadata() const;
  const std::string& text() const { return text_; }

 private:
  std::shared_ptr<const detail::Node> root_;
  std::string text_;
  bool reads_metadata_ = false;
};

// The aggregation functions of `aggregate`.
enum class AggregateFunction { kCount, kSum, kMin, kMax, kAvg, kFirst, kLast, kCountDistinct };
std::string_view to_string(AggregateFunction function);

// One aggregation, written as a call: `count()`, `sum(value.amount)`.
struct AggregateCall {
  AggregateFunction function;
  // Absent for count().
  std::optional<Expression> argument;
};

// Throws ExpressionError.
AggregateCall compile_aggregate(std::string_view text, const Scope& scope = {});

// The names of the functions expressions may call, for the reference.
struct FunctionDoc {
  std::string_view signature;
  std::string_view description;
};
const std::vector<FunctionDoc>& function_docs();

}  // namespace rill::pipeline
