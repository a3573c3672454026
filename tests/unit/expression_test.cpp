// The expression language of pipelines: values and types, null handling,
// operator precedence, functions, and the errors found when an expression is
// compiled (with the offset of the problem) or evaluated on a record.
#include "rill/pipeline/expression.h"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

using rill::pipeline::EvalContext;
using rill::pipeline::EvalError;
using rill::pipeline::Expression;
using rill::pipeline::ExpressionError;
using rill::pipeline::Json;
using rill::pipeline::Scope;
using rill::pipeline::ValueType;

namespace {

const Json kValue = Json::parse(R"({
  "user": {"id": "u1", "name": "Ada"},
  "amount": 12,
  "price": 2.5,
  "country": "NL",
  "tags": ["a", "b"],
  "missing_not": null,
  "text": "  Hello World  "
})");
const Json kKey = "k1";

Json eval(const std::string& text, const Json& value = kValue) {
  rill::Headers headers{{"trace", "t-1"}, {"empty", std::nullopt}};
  return Expression::compile(text).evaluate(EvalContext{kKey, value, 1700000000123, &headers});
}

// The offset and message of the compile error of `text`.
std::pair<std::size_t, std::string> compile_error(const std::string& text,
                                                  const Scope& scope = {}) {
  try {
    Expression::compile(text, scope);
  } catch (const ExpressionError& e) {
    return {e.offset(), e.what()};
  }
  FAIL("'" << text << "' compiled");
  return {};
}

}  // namespace

TEST_CASE("expressions read key, value fields, timestamp and headers", "[unit][expression]") {
  CHECK(eval("key") == "k1");
  CHECK(eval("value.user.id") == "u1");
  CHECK(eval("value.tags[1]") == "b");
  CHECK(eval("value.tags[-1]") == "b");
  CHECK(eval("value[\"country\"]") == "NL");
  CHECK(eval("timestamp") == 1700000000123);
  CHECK(eval("headers.trace") == "t-1");
  CHECK(eval("headers.empty").is_null());
  CHECK(eval("headers.absent").is_null());
  CHECK(eval("value.nothing.deeper").is_null());
  CHECK(eval("value.tags[5]").is_null());
}

TEST_CASE("expression arithmetic keeps integers integral and follows precedence",
          "[unit][expression]") {
  CHECK(eval("1 + 2 * 3") == 7);
  CHECK(eval("(1 + 2) * 3") == 9);
  CHECK(eval("10 - 4 - 3") == 3);
  CHECK(eval("7 % 4") == 3);
  CHECK(eval("7 / 2") == 3.5);
  CHECK(eval("value.amount * value.price") == 30.0);
  CHECK(eval("-value.amount + 2") == -10);
  CHECK(eval("\"a\" + \"b\"") == "ab");
  CHECK(eval("value.amount").is_number_integer());
  CHECK(eval("value.amount * 2").is_number_integer());
  CHECK(eval("1 + 2 == 3 and 2 < 3 or false") == true);
  CHECK(eval("not 1 == 2") == true);
  CHECK(eval("not true and false") == false);
  CHECK(eval("true or false and false") == true);
  CHECK(eval("1 < 2 && \"b\" > \"a\"") == true);
}

TEST_CASE("null propagates through arithmetic and counts as false in conditions",
          "[unit][expression]") {
  CHECK(eval("value.nothing + 1").is_null());
  CHECK(eval("value.nothing > 1").is_null());
  CHECK(eval("value.nothing == null") == true);
  CHECK(eval("value.amount != null") == true);
  CHECK(eval("value.nothing ?? \"default\"") == "default");
  CHECK(eval("value.country ?? \"default\"") == "NL");
  CHECK(eval("coalesce(value.nothing, value.missing_not, 3)") == 3);
  CHECK(eval("lower(value.nothing)").is_null());
  CHECK(eval("is_null(value.nothing)") == true);
  CHECK(eval("value.nothing and true") == false);
  const Expression condition = Expression::compile("value.nothing > 3");
  rill::Headers none;
  CHECK_FALSE(condition.test(EvalContext{kKey, kValue, 0, &none}));
}

TEST_CASE("string, number and time functions", "[unit][expression]") {
  CHECK(eval("lower(value.country)") == "nl");
  CHECK(eval("upper(value.user.name)") == "ADA");
  CHECK(eval("trim(value.text)") == "Hello World");
  CHECK(eval("length(value.tags)") == 2);
  CHECK(eval("substr(\"abcdef\", 2, 3)") == "cde");
  CHECK(eval("concat(value.user.id, \"-\", value.amount, value.nothing)") == "u1-12");
  CHECK(eval("contains(value.tags, \"b\")") == true);
  CHECK(eval("starts_with(value.country, \"N\")") == true);
  CHECK(eval("replace(\"a-b-c\", \"-\", \"+\")") == "a+b+c");
  CHECK(eval("split(\"a,b,,c\", \",\")") == Json::array({"a", "b", "", "c"}));
  CHECK(eval("to_string(value.amount)") == "12");
  CHECK(eval("to_number(\"2.5\") * 2") == 5.0);
  CHECK(eval("round(2.456, 2)") == 2.46);
  CHECK(eval("round(2.5) + 1") == 4);
  CHECK(eval("floor(-1.5)") == -2);
  CHECK(eval("abs(-3)") == 3);
  CHECK(eval("if(value.amount > 10, \"big\", \"small\")") == "big");
  CHECK(eval("format_time(timestamp, \"%Y-%m-%d %H:%M:%S\")") == "2023-11-14 22:13:20");
  CHECK(eval("parse_time(\"2023-11-14T22:13:20\", \"%Y-%m-%dT%H:%M:%S\")") == 1699999999000 + 1000);
  CHECK(eval("window_start(timestamp, 60000)") == 1699999980000);
  CHECK(eval("[value.amount, 1]") == Json::array({12, 1}));
}

TEST_CASE("expression errors at load time name the offset", "[unit][expression]") {
  CHECK(compile_error("value.amount +") ==
        std::pair<std::size_t, std::string>{14,
                                            "expected a value, a name or '(', found the "
                                            "end of the expression"});
  CHECK(compile_error("valu.amount").first == 0);
  CHECK_THAT(compile_error("valu.amount").second, Catch::Contains("did you mean 'value'?"));
  CHECK(compile_error("lowr(value.x)").first == 0);
  CHECK_THAT(compile_error("lowr(value.x)").second, Catch::Contains("did you mean 'lower'?"));
  CHECK(compile_error("value.a = 1").first == 8);
  CHECK(compile_error("1 + \"a\"").first == 2);
  CHECK(compile_error("\"abc").first == 0);
  CHECK(compile_error("(1 + 2").first == 6);
  CHECK(compile_error("lower(1)").first == 6);
  CHECK(compile_error("substr(\"a\")").first == 0);
  CHECK(compile_error("timestamp.x").first == 10);
  CHECK(compile_error("1 < \"a\"").first == 2);
  CHECK(compile_error("not 5").first == 0);
  CHECK(compile_error("value.a value.b").first == 8);
  CHECK(compile_error("count()").first == 0);
  CHECK(compile_error("99999999999999999999").first == 0);
  Scope scope;
  scope.value_fields = std::set<std::string>{"user", "amount"};
  CHECK(compile_error("value.amout > 1", scope) ==
        std::pair<std::size_t, std::string>{
            6,
            "unknown field 'value.amout', expected one of: amount, user; did you mean "
            "'amount'?"});
  CHECK_NOTHROW(Expression::compile("value.amount > 1", scope));
}

TEST_CASE("expression types are known at load time where they can be", "[unit][expression]") {
  CHECK(Expression::compile("value.a > 1").type() == ValueType::kBool);
  CHECK(Expression::compile("value.a + 1").type() == ValueType::kNumber);
  CHECK(Expression::compile("lower(value.a)").type() == ValueType::kString);
  CHECK(Expression::compile("value.a").type() == ValueType::kAny);
  CHECK(Expression::compile(" key ").is_key());
  CHECK_FALSE(Expression::compile("key + 1").is_key());
  CHECK(Expression::compile("timestamp + 1").reads_metadata());
  CHECK_FALSE(Expression::compile("value.a").reads_metadata());
}

TEST_CASE("expression errors on a record throw EvalError", "[unit][expression]") {
  CHECK_THROWS_WITH(eval("value.country * 2"),
                    "operator '*' expects numbers, found a string and a number");
  CHECK_THROWS_AS(eval("value.amount / 0"), EvalError);
  CHECK_THROWS_AS(eval("value.amount % 0"), EvalError);
  CHECK_THROWS_WITH(eval("value.country.code"),
                    "'value.country.code': cannot read field 'code' of a string, expected an "
                    "object");
  CHECK_THROWS_AS(eval("9223372036854775807 + 1"), EvalError);
  CHECK_THROWS_AS(eval("value.country < 3"), EvalError);
  CHECK_THROWS_AS(eval("parse_time(\"x\", \"%Y\")"), EvalError);
  rill::Headers none;
  CHECK_THROWS_AS(Expression::compile("value.amount").test(EvalContext{kKey, kValue, 0, &none}),
                  EvalError);
}

TEST_CASE("integer results beyond 64 bits are EvalErrors, never wrapped or undefined",
          "[unit][expression]") {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const Json extremes = {{"min", kMin},
                         {"max", kMax},
                         {"huge", std::numeric_limits<uint64_t>::max()},
                         {"far", 1e300},
                         {"list", {1, 2}}};
  // x % -1 is 0 for every x; the machine's INT64_MIN % -1 traps.
  CHECK(eval("value.min % -1", extremes) == 0);
  CHECK(eval("value.min % 10", extremes) == kMin % 10);
  // Division computes in floating point: INT64_MIN / -1 is 2^63.
  CHECK(eval("value.min / -1", extremes) == 0x1p63);
  CHECK_THROWS_WITH(eval("-value.min", extremes),
                    "integer overflow: -(-9223372036854775808) does not fit in 64 bits");
  CHECK(eval("-(value.min + 1)", extremes) == kMax);
  CHECK_THROWS_AS(eval("abs(value.min)", extremes), EvalError);
  CHECK(eval("abs(value.min + 1)", extremes) == kMax);
  CHECK_THROWS_WITH(eval("value.max + 1", extremes),
                    "integer overflow: 9223372036854775807 + 1 does not fit in 64 bits");
  CHECK_THROWS_AS(eval("value.min - 1", extremes), EvalError);
  CHECK_THROWS_AS(eval("value.max * 2", extremes), EvalError);
  CHECK_THROWS_AS(eval("value.min * -1", extremes), EvalError);
  CHECK_THROWS_AS(eval("timestamp + value.max", extremes), EvalError);
  CHECK(eval("value.max - timestamp", extremes) == kMax - 1700000000123);
  // An unsigned record value beyond INT64_MAX is taken as a double, not wrapped.
  CHECK(eval("value.huge + 1", extremes) == 0x1p64);
  CHECK(eval("-value.huge", extremes) == -0x1p64);
  CHECK(eval("value.huge % 10", extremes).is_number_float());
  CHECK(eval("value.list[value.huge]", extremes).is_null());
  // Functions that take integers refuse doubles beyond them.
  CHECK_THROWS_WITH(eval("substr(\"abc\", value.far)", extremes),
                    "substr() expects a number within 64-bit integers, found 1e+300");
  CHECK_THROWS_AS(eval("format_time(value.huge, \"%Y\")", extremes), EvalError);
}

TEST_CASE("time functions work or fail cleanly at the ends of 64-bit time", "[unit][expression]") {
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  const Json extremes = {{"min", kMin}, {"max", kMax}};
  // A negative time is in the second before it, not the one after.
  CHECK(eval("format_time(-1, \"%Y-%m-%d %H:%M:%S\")") == "1969-12-31 23:59:59");
  // 2^63 ms is about 292 million years, which the calendar still holds.
  CHECK_THAT(eval("format_time(value.min, \"%Y\")", extremes).get<std::string>(),
             Catch::StartsWith("-292"));
  CHECK_THAT(eval("format_time(value.max, \"%Y\")", extremes).get<std::string>(),
             Catch::StartsWith("292"));
  // 10^16 s parses (year 316889355), but is beyond 64-bit milliseconds.
  CHECK_THROWS_WITH(eval("parse_time(\"10000000000000000\", \"%s\")"),
                    "parse_time(): '10000000000000000' is beyond 64-bit milliseconds");
  CHECK(eval("window_start(-1, 10)") == -10);
  CHECK(eval("window_start(value.max, 10)", extremes) == kMax - kMax % 10);
  CHECK(eval("window_start(5, value.max)", extremes) == 0);
  CHECK(eval("window_start(value.min, 8)", extremes) == kMin);
  CHECK_THROWS_WITH(eval("window_start(value.min, 10)", extremes),
                    "window_start(): the window of time -9223372036854775808 ms starts before "
                    "the earliest 64-bit time");
  CHECK_THROWS_AS(eval("window_start(value.min, value.max)", extremes), EvalError);
}

TEST_CASE("number literals beyond 64 bits are errors at their offset", "[unit][expression]") {
  CHECK(compile_error("1 + 1e999") ==
        std::pair<std::size_t, std::string>{
            4, "number 1e999 is out of the range of 64-bit floating-point numbers"});
  CHECK(compile_error("1e-400") ==
        std::pair<std::size_t, std::string>{
            0, "number 1e-400 is out of the range of 64-bit floating-point numbers"});
  CHECK(compile_error("2 * 99999999999999999999") ==
        std::pair<std::size_t, std::string>{4,
                                            "number 99999999999999999999 does not fit in 64 bits"});
  CHECK(eval("9223372036854775807") == std::numeric_limits<int64_t>::max());
  CHECK(eval("1.5e308") == 1.5e308);
  CHECK(eval("2.5e-300") == 2.5e-300);
}

namespace {

std::string repeated(std::string_view part, std::size_t times) {
  std::string out;
  for (std::size_t i = 0; i < times; ++i) out += part;
  return out;
}

}  // namespace

TEST_CASE("expressions nest at most kMaxExpressionDepth levels", "[unit][expression]") {
  using rill::pipeline::kMaxExpressionDepth;
  const std::size_t n = kMaxExpressionDepth;
  // The whole expression is the first level.
  CHECK(eval(repeated("(", n - 1) + "1" + repeated(")", n - 1)) == 1);
  CHECK(eval(repeated("-", n - 1) + "1") == ((n - 1) % 2 == 0 ? 1 : -1));
  CHECK(eval("1" + repeated(" + 1", n - 1)) == static_cast<int64_t>(n));
  CHECK(eval(repeated("abs(", n - 1) + "1" + repeated(")", n - 1)) == 1);

  // Each is reported where the level too many begins, before the stack runs out.
  const std::string too_deep = "the expression nests more than 256 levels deep";
  for (const auto& [text, offset] : std::vector<std::pair<std::string, std::size_t>>{
           {repeated("(", 10000) + "1" + repeated(")", 10000), n - 1},
           {repeated("[", 10000) + "1" + repeated("]", 10000), n - 1},
           {repeated("-", 100000) + "1", n - 1},
           {repeated("not ", 100000) + "true", 4 * (n - 1)},
           {repeated("lower(", 10000) + "\"a\"" + repeated(")", 10000), 6 * (n - 1) + 5},
           {"1" + repeated(" + 1", 100000), 2 + 4 * (n - 1)},
           {"true" + repeated(" or false", 100000), 5 + 9 * (n - 1)},
           {"value.tags" + repeated("[0]", 100000), 10 + 3 * (n - 1)}}) {
    INFO(text.substr(0, 40));
    const auto [at, message] = compile_error(text);
    CHECK(at == offset);
    CHECK_THAT(message, Catch::StartsWith(too_deep));
  }
}

TEST_CASE("damaged expressions compile or give an ExpressionError inside the text",
          "[unit][expression]") {
  const std::vector<std::string> valid = {
      R"(value.amount * 100 > 5000 and lower(value.country) == "nl")",
      R"(coalesce(value.user.name, 'anonymous') + "!")",
      R"(if(not is_null(value.tags[0]), substr(value.text, 1, 2), -3.5e2 ?? null))",
      R"(format_time(timestamp, "%Y") != headers.trace || [1, 2] == value.list)"};
  int errors = 0;
  for (const std::string& text : valid) {
    REQUIRE_NOTHROW(Expression::compile(text));
    for (std::size_t at = 0; at <= text.size(); ++at) {
      for (const std::string damage : {"", "(", ")", ".", "\"", ",", "=", "]", "-"}) {
        std::string damaged = text;
        if (damage.empty()) {
          if (at == text.size()) continue;
          damaged.erase(at, 1);
        } else {
          damaged.insert(at, damage);
        }
        try {
          Expression::compile(damaged);
        } catch (const ExpressionError& e) {
          ++errors;
          INFO(damaged << ": " << e.what());
          CHECK(e.offset() <= damaged.size());
        } catch (const std::exception& e) {
          FAIL_CHECK(damaged << ": " << e.what());
        }
      }
    }
  }
  CHECK(errors > 500);
}
