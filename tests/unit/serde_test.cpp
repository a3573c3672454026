#include "rill/serde.h"

#include <catch2/catch.hpp>

#include "rill/json.h"

using namespace rill;

namespace {
template <class T>
std::string bytes_of(const SerdePtr<T>& serde, const T& value) {
  std::string out;
  REQUIRE(serde->serialize(value, out));
  return out;
}
}  // namespace

TEST_CASE("integer serdes write big-endian bytes like Kafka's Java serializers", "[unit][serde]") {
  CHECK(bytes_of(serdes::int32(), int32_t{1}) == std::string("\0\0\0\1", 4));
  CHECK(bytes_of(serdes::int32(), int32_t{-2}) == std::string("\xff\xff\xff\xfe", 4));
  CHECK(bytes_of(serdes::int64(), int64_t{0x0102030405060708}) ==
        "\x01\x02\x03\x04\x05\x06\x07\x08");
  CHECK(serdes::int64()->deserialize(std::string_view("\xff\xff\xff\xff\xff\xff\xff\xff", 8)) ==
        -1);
  CHECK(serdes::int32()->deserialize(std::string_view("\x7f\xff\xff\xff", 4)) == 2147483647);
}

TEST_CASE("double serde writes IEEE 754 big-endian", "[unit][serde]") {
  CHECK(bytes_of(serdes::float64(), 1.0) == std::string("\x3f\xf0\0\0\0\0\0\0", 8));
  CHECK(serdes::float64()->deserialize(bytes_of(serdes::float64(), -2.5)) == -2.5);
}

TEST_CASE("malformed bytes give a SerdeError naming the serde", "[unit][serde]") {
  CHECK_THROWS_WITH(serdes::int64()->deserialize(std::string_view("abc")),
                    Catch::Contains("int64") && Catch::Contains("expected 8 bytes, got 3"));
  CHECK_THROWS_AS(serdes::int32()->deserialize(std::nullopt), SerdeError);
  CHECK_THROWS_WITH(serdes::json()->deserialize(std::string_view("{\"a\":")),
                    Catch::Contains("json"));
}

TEST_CASE("strings, bytes and nulls", "[unit][serde]") {
  CHECK(bytes_of(serdes::string(), std::string("héllo")) == "héllo");
  CHECK(serdes::string()->deserialize(std::nullopt).empty());
  auto nullable = serdes::nullable(serdes::int64());
  std::string out;
  CHECK_FALSE(nullable->serialize(std::nullopt, out));
  CHECK(nullable->deserialize(std::nullopt) == std::nullopt);
  CHECK(nullable->deserialize(bytes_of(serdes::int64(), int64_t{7})) == 7);
}

namespace {
struct Order {
  std::string id;
  int quantity = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Order, id, quantity)
};
}  // namespace

TEST_CASE("json serde maps user types through nlohmann", "[unit][serde]") {
  auto serde = serdes::json<Order>();
  std::string text = bytes_of(serde, Order{"o-1", 3});
  CHECK(nlohmann::json::parse(text) == nlohmann::json{{"id", "o-1"}, {"quantity", 3}});
  Order back = serde->deserialize(text);
  CHECK(back.id == "o-1");
  CHECK(back.quantity == 3);
  CHECK_THROWS_AS(serde->deserialize(std::string_view("{\"id\":1}")), SerdeError);
}

TEST_CASE("default serdes exist for common types only", "[unit][serde]") {
  CHECK(default_serde<std::string>() != nullptr);
  CHECK(default_serde<int64_t>() != nullptr);
  CHECK(default_serde<std::optional<int32_t>>() != nullptr);
  CHECK(default_serde<Order>() == nullptr);
}

TEST_CASE("a serde made from two functions", "[unit][serde]") {
  auto upper = serdes::from_functions<std::string>(
      "upper",
      [](const std::string& value, std::string& out) {
        for (char c : value) out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      },
      [](NullableBytes bytes) { return bytes ? std::string(*bytes) : std::string("<null>"); });
  CHECK(bytes_of(upper, std::string("abc")) == "ABC");
  CHECK(upper->deserialize(std::nullopt) == "<null>");
  CHECK(upper->name() == "upper");
}

TEST_CASE(
    "the json serde reads what nlohmann's parser reads, with the same types, and refuses "
    "what it refuses",
    "[unit][serde]") {
  auto serde = serdes::json<nlohmann::json>();
  const std::vector<std::string> accepted = {
      R"({"user":"u1","amount":12.5,"n":3,"neg":-4,"ok":true,"no":false,"none":null})",
      R"({"nested":{"list":[1,-2,3.25,"x",[],{}],"e":{"f":{"g":[[[]]]}}}})",
      R"({"big":18446744073709551615,"min":-9223372036854775808,"max":9223372036854775807})",
      R"({"huge":123456789012345678901234567890,"exp":1e2,"neg_exp":-2.5E-3,"zero":0})",
      R"({"minus_zero":-0.0,"frac":0.1,"third":0.3333333333333333})",
      R"({"dup":1,"dup":"last"})",
      R"({"esc":"tab\there \"q\" \\ \/ \u00e9 \ud83d\ude00 \n"})",
      "{\"utf8\":\"gr\xc3\xbc\xc3\x9f \xe2\x82\xac\"}",
      R"(  [1, 2 , 3]  )",
      R"("just a string")",
      "42",
      "-7",
      "3.5",
      "true",
      "null",
      R"([])",
      R"({})",
  };
  for (const std::string& text : accepted) {
    INFO(text);
    const nlohmann::json expected = nlohmann::json::parse(text);
    const nlohmann::json read = serde->deserialize(text);
    CHECK(read == expected);
    CHECK(read.dump() == expected.dump());
    // Same types, not only equal values: an integer stays an integer, and its
    // sign decides signed or unsigned as nlohmann's parser does.
    const auto type_of = [](const nlohmann::json& v) { return static_cast<int>(v.type()); };
    if (expected.is_object())
      for (const auto& [field, value] : expected.items()) {
        INFO(field);
        CHECK(type_of(read.at(field)) == type_of(value));
      }
    else
      CHECK(type_of(read) == type_of(expected));
  }
  const std::vector<std::string> refused = {
      R"({"a":1)",         R"({"a":1} trailing)",
      R"({"a":01})",       R"({'a':1})",
      R"({"a":1,})",       R"([1,2,])",
      R"({"a":"\ud800"})", "{\"a\":\"\xff\xfe\"}",
      R"({"a":1.5e400})",  "",
      R"({"a":"line
break"})",
  };
  for (const std::string& text : refused) {
    INFO(text);
    CHECK_THROWS_AS(nlohmann::json::parse(text), nlohmann::json::exception);
    CHECK_THROWS_AS(serde->deserialize(text), SerdeError);
  }
}
