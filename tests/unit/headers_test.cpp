// Headers read later: a record's headers are read from where they come from
// only when a processor, a sink or a handler looks at them, and copies stand on
// their own.
#include <catch2/catch.hpp>

#include "rill/streams_builder.h"
#include "rill/test_driver.h"

using namespace rill;

namespace {

// Where headers come from, counting how often they are read.
struct CountedSource {
  std::vector<Header> headers{{"trace", "t-1"}, {"origin", std::nullopt}};
  int reads = 0;

  Headers read_later() {
    return Headers::read_later(
        [](const void* from, std::vector<Header>& into) {
          auto& source = *const_cast<CountedSource*>(static_cast<const CountedSource*>(from));
          ++source.reads;
          into = source.headers;
        },
        this);
  }
};

const Headers kExpected{{"trace", "t-1"}, {"origin", std::nullopt}};

}  // namespace

TEST_CASE("headers read later are read once, when first looked at", "[unit][headers]") {
  CountedSource source;
  Headers headers = source.read_later();
  CHECK(source.reads == 0);
  CHECK(headers.size() == 2);
  CHECK(source.reads == 1);
  CHECK(headers.last("trace")->value == "t-1");
  CHECK(headers == kExpected);
  CHECK(source.reads == 1);
}

TEST_CASE("a copy of headers read later reads them first and stands on its own",
          "[unit][headers]") {
  CountedSource source;
  Headers original = source.read_later();
  Headers copy = original;
  CHECK(source.reads == 1);
  source.headers.clear();  // what it was read from is gone
  CHECK(copy == kExpected);
  CHECK(original == kExpected);
  Headers assigned;
  assigned = copy;
  assigned.add("more", "x");
  CHECK(copy == kExpected);
  CHECK(assigned.size() == 3);
}

TEST_CASE("a move hands headers read later on unread", "[unit][headers]") {
  CountedSource source;
  Headers original = source.read_later();
  Headers moved = std::move(original);
  CHECK(source.reads == 0);
  CHECK(moved == kExpected);
  CHECK(source.reads == 1);
  Headers replaced{{"old", "o"}};
  replaced = source.read_later();
  CHECK(source.reads == 1);
  replaced.remove("trace");
  CHECK(source.reads == 2);
  CHECK(replaced == Headers{{"origin", std::nullopt}});
}

TEST_CASE("a record that is filtered out or aggregated never has its headers read",
          "[unit][headers]") {
  StreamsBuilder builder;
  auto in = builder.stream("in", serdes::string(), serdes::string());
  in.filter([](const std::string&, const std::string& value) { return value == "pass"; }).to("out");
  in.group_by_key().count();
  TopologyTestDriver driver(builder.build());
  auto input = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto output = driver.create_output_topic("out", serdes::string(), serdes::string());

  CountedSource dropped;
  input.pipe_input("k", "drop", 1, dropped.read_later());
  CHECK(dropped.reads == 0);
  CHECK(output.is_empty());

  CountedSource passed;
  input.pipe_input("k", "pass", 2, passed.read_later());
  CHECK(passed.reads == 1);
  CHECK(output.read_record().headers == kExpected);
}
