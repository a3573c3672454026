// The expression language of pipelines: values and types, null handling,
// operator precedence, functions, and the errors found when an expression is
// compiled (with the offset of the problem) or evaluated on a record.
#include "rill/pipeline/expression.h"

#include <string>
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
