// Stream-stream windowed joins through TopologyTestDriver, against Kafka
// Streams' semantics: the input sequences of its documentation and of its
// KStreamKStream*JoinTest cases, with their expected outputs record for record.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/rill.h"
#include "rill/test_driver.h"

using namespace rill;
using namespace std::chrono_literals;

namespace {

enum class Kind { kInner, kLeft, kOuter };

const char* kind_name(Kind kind) {
  return kind == Kind::kInner ? "inner" : kind == Kind::kLeft ? "left" : "outer";
}

struct Output {
  std::string key;
  std::string value;
  int64_t timestamp;
  bool operator==(const Output&) const = default;
};

std::ostream& operator<<(std::ostream& out, const Output& output) {
  return out << "(" << output.key << ", " << output.value << ")@" << output.timestamp;
}

std::string or_null(const std::optional<std::string>& value) {
  return value ? *value : "null";
}

// "left" joined with "right" into "out" as "<left>+<right>", null for a
// missing side.
using Value = std::optional<std::string>;

Topology join_topology(Kind kind, JoinWindows windows,
                       StreamJoined<std::string, Value, Value> joined = {}) {
  StreamsBuilder builder;
  auto left = builder.stream("left", serdes::string(), serdes::nullable(serdes::string()));
  auto right = builder.stream("right", serdes::string(), serdes::nullable(serdes::string()));
  KStream<std::string, std::string> out;
  switch (kind) {
    case Kind::kInner:
      out = left.join(
          right, [](const Value& l, const Value& r) { return or_null(l) + "+" + or_null(r); },
          windows, joined);
      break;
    case Kind::kLeft:
      out = left.left_join(
          right,
          [](const Value& l, const std::optional<Value>& r) {
            return or_null(l) + "+" + (r ? or_null(*r) : "null");
          },
          windows, joined);
      break;
    case Kind::kOuter:
      out = left.outer_join(
          right,
          [](const std::optional<Value>& l, const std::optional<Value>& r) {
            return (l ? or_null(*l) : "null") + "+" + (r ? or_null(*r) : "null");
          },
          windows, joined);
      break;
  }
  out.to("out", serdes::string(), serdes::string());
  return builder.build();
}

struct Driver {
  Driver(const Topology& topology)
      : driver(topology, StreamsConfig{{"application.id", "app"}}),
        left(driver.create_input_topic("left", serdes::string(),
                                       serdes::nullable(serdes::string()))),
        right(driver.create_input_topic("right", serdes::string(),
                                        serdes::nullable(serdes::string()))),
        out(driver.create_output_topic("out", serdes::string(), serdes::string())) {}

  std::vector<Output> read() {
    std::vector<Output> all;
    for (const auto& r : out.read_records_to_list()) all.push_back({r.key, r.value, r.timestamp});
    return all;
  }

  TopologyTestDriver driver;
  TopologyTestDriver::InputTopic<std::string, std::optional<std::string>> left;
  TopologyTestDriver::InputTopic<std::string, std::optional<std::string>> right;
  TopologyTestDriver::OutputTopic<std::string, std::string> out;
};

}  // namespace

TEST_CASE("stream-stream joins follow the semantics table of Kafka Streams' documentation",
          "[unit][join][stream-join]") {
  const Kind kind = GENERATE(Kind::kInner, Kind::kLeft, Kind::kOuter);
  INFO(kind_name(kind) << " join");
  Driver d(join_topology(kind, JoinWindows::of_time_difference_and_grace(15ms, 5ms)));
  struct Step {
    bool left;
    std::optional<std::string> value;
    int64_t timestamp;
    std::vector<std::string> inner, left_join, outer;  // what the step emits
  };
  using V = std::vector<std::string>;
  // One key throughout. Null values are dropped. An unmatched record is emitted
  // once stream time is past its time + 15 + 5 ms: the documentation's table
  // shows E+null one record early, at 60, where Kafka Streams' code (and rill)
  // still holds it.
  const std::vector<Step> steps{
      {true, std::nullopt, 1, {}, {}, {}},
      {false, std::nullopt, 2, {}, {}, {}},
      {true, "A", 3, {}, {}, {}},
      {false, "a", 4, V{"A+a"}, V{"A+a"}, V{"A+a"}},
      {true, "B", 5, V{"B+a"}, V{"B+a"}, V{"B+a"}},
      {false, "b", 6, V{"A+b", "B+b"}, V{"A+b", "B+b"}, V{"A+b", "B+b"}},
      {true, std::nullopt, 7, {}, {}, {}},
      {false, std::nullopt, 8, {}, {}, {}},
      {true, "C", 9, V{"C+a", "C+b"}, V{"C+a", "C+b"}, V{"C+a", "C+b"}},
      {false, "c", 10, V{"A+c", "B+c", "C+c"}, V{"A+c", "B+c", "C+c"}, V{"A+c", "B+c", "C+c"}},
      {false, std::nullopt, 11, {}, {}, {}},
      {true, std::nullopt, 12, {}, {}, {}},
      {false, std::nullopt, 13, {}, {}, {}},
      {false, "d", 14, V{"A+d", "B+d", "C+d"}, V{"A+d", "B+d", "C+d"}, V{"A+d", "B+d", "C+d"}},
      {true, "D", 15, V{"D+a", "D+b", "D+c", "D+d"}, V{"D+a", "D+b", "D+c", "D+d"},
       V{"D+a", "D+b", "D+c", "D+d"}},
      {true, "E", 40, {}, {}, {}},
      {true, "F", 60, {}, {}, {}},
      {false, "f", 80, {}, V{"E+null"}, V{"E+null"}},
      {true, "G", 100, {}, V{"F+null"}, V{"F+null"}},
      {true, "H", 121, {}, V{"G+null"}, V{"null+f", "G+null"}},
  };
  for (const Step& step : steps) {
    INFO("at " << step.timestamp);
    (step.left ? d.left : d.right).pipe_input("k", step.value, step.timestamp);
    const V& expected = kind == Kind::kInner  ? step.inner
                        : kind == Kind::kLeft ? step.left_join
                                              : step.outer;
    std::vector<std::string> values;
    for (const Output& output : d.read()) values.push_back(output.value);
    CHECK(values == expected);
  }
}

TEST_CASE("joined records take the later timestamp, unmatched ones their own",
          "[unit][join][stream-join]") {
  Driver d(join_topology(Kind::kOuter, JoinWindows::of_time_difference_and_grace(15ms, 5ms)));
  d.left.pipe_input("k", "A", 3);
  d.right.pipe_input("k", "a", 4);
  d.left.pipe_input("k", "B", 10);
  d.left.pipe_input("k", "E", 40);
  d.right.pipe_input("x", "x", 61);
  CHECK(d.read() == std::vector<Output>{{"k", "A+a", 4}, {"k", "B+a", 10}, {"k", "E+null", 40}});
}

TEST_CASE(
    "a left join emits unmatched records once their window closed, whichever side advances time",
    "[unit][join][stream-join]") {
  // KStreamKStreamLeftJoinTest: testLeftExpiredNonJoinedRecordsAreEmittedBy{Left,Right}Processor.
  const bool by_left = GENERATE(true, false);
  INFO("time advanced by the " << (by_left ? "left" : "right") << " side");
  Driver d(join_topology(Kind::kLeft, JoinWindows::of_time_difference_with_no_grace(100ms)));
  d.left.pipe_input("0", "A0", 1);
  d.left.pipe_input("1", "A1", 2);
  d.left.pipe_input("0", "A0-0", 3);
  CHECK(d.read().empty());
  d.right.pipe_input("1", "a1", 3);
  CHECK(d.read() == std::vector<Output>{{"1", "A1+a1", 3}});
  (by_left ? d.left : d.right).pipe_input("2", "dummy", 401);
  CHECK(d.read() == std::vector<Output>{{"0", "A0+null", 1}, {"0", "A0-0+null", 3}});
  (by_left ? d.right : d.left).pipe_input("2", "dummy", 401);
  CHECK(d.read() == std::vector<Output>{{"2", "dummy+dummy", 401}});
}

TEST_CASE("an outer join waits for the grace period, right before left at equal times",
          "[unit][join][stream-join]") {
  // KStreamKStreamOuterJoinTest.testGracePeriod.
  Driver d(join_topology(Kind::kOuter, JoinWindows::of_time_difference_and_grace(100ms, 10ms)));
  d.left.pipe_input("0", "A0", 0);
  d.right.pipe_input("1", "11", 0);
  d.left.pipe_input("1", "A1", 101);
  d.right.pipe_input("0", "10", 101);
  CHECK(d.read().empty());
  d.right.pipe_input("0", "100", 112);
  CHECK(d.read() == std::vector<Output>{{"1", "null+11", 0}, {"0", "A0+null", 0}});
}

TEST_CASE("an outer join over asymmetric windows closes each side's window by its own bound",
          "[unit][join][stream-join]") {
  // KStreamKStreamOuterJoinTest.testEmitAllNonJoinedResultsForAsymmetricWindow.
  Driver d(
      join_topology(Kind::kOuter, JoinWindows::of_time_difference_with_no_grace(5ms).after(20ms)));
  d.left.pipe_input("0", "A0", 29);
  d.left.pipe_input("1", "A1", 30);
  d.right.pipe_input("2", "12", 31);
  d.right.pipe_input("3", "13", 36);
  CHECK(d.read().empty());
  d.right.pipe_input("4", "14", 37);
  CHECK(d.read() == std::vector<Output>{{"2", "null+12", 31}});
  d.right.pipe_input("5", "15", 50);
  CHECK(d.read() ==
        std::vector<Output>{{"0", "A0+null", 29}, {"3", "null+13", 36}, {"4", "null+14", 37}});
}

TEST_CASE("records with equal keys and times are all kept and joined in arrival order",
          "[unit][join][stream-join]") {
  // KStreamKStreamOuterJoinTest.testOuterJoinDuplicates.
  Driver d(join_topology(Kind::kOuter, JoinWindows::of_time_difference_and_grace(100ms, 10ms)));
  d.left.pipe_input("0", "A0", 0);
  d.left.pipe_input("0", "A0-0", 0);
  d.right.pipe_input("1", "11", 0);
  d.right.pipe_input("1", "12", 0);
  d.right.pipe_input("1", "10", 111);
  d.right.pipe_input("3", "100", 211);
  CHECK(d.read() ==
        std::vector<Output>{
            {"1", "null+11", 0}, {"1", "null+12", 0}, {"0", "A0+null", 0}, {"0", "A0-0+null", 0}});
  d.left.pipe_input("2", "A2", 200);
  d.left.pipe_input("2", "A2-0", 200);
  d.right.pipe_input("2", "13", 201);
  d.right.pipe_input("2", "14", 201);
  CHECK(d.read() == std::vector<Output>{{"2", "A2+13", 201},
                                        {"2", "A2-0+13", 201},
                                        {"2", "A2+14", 201},
                                        {"2", "A2-0+14", 201}});
  d.right.pipe_input("3", "100", 1500);
  CHECK(d.read() == std::vector<Output>{{"1", "null+10", 111}, {"3", "null+100", 211}});
}

TEST_CASE(
    "a late record joins what the stores still keep, and a left join emits it unmatched at once",
    "[unit][join][stream-join]") {
  const Kind kind = GENERATE(Kind::kInner, Kind::kLeft);
  INFO(kind_name(kind) << " join");
  Driver d(join_topology(kind, JoinWindows::of_time_difference_with_no_grace(100ms)));
  d.right.pipe_input("k", "b", 1000);
  d.left.pipe_input("x", "x", 1405);  // stream time 1405
  CHECK(d.read().empty());
  // Its window [799, 999] closed long ago and holds nothing: no waiting.
  d.left.pipe_input("k", "G", 899);
  // [800, 1000] holds b.
  d.left.pipe_input("k", "H", 900);
  if (kind == Kind::kInner)
    CHECK(d.read() == std::vector<Output>{{"k", "H+b", 1000}});
  else
    CHECK(d.read() == std::vector<Output>{{"k", "G+null", 899}, {"k", "H+b", 1000}});
  // Past the right store's retention (200 ms behind its stream time), b is
  // no partner any more even though its segment is still there.
  d.right.pipe_input("x", "x", 1301);
  d.left.pipe_input("k", "I", 1001);
  if (kind == Kind::kInner)
    CHECK(d.read().empty());
  else
    CHECK(d.read() == std::vector<Output>{{"k", "I+null", 1001}});
}

TEST_CASE("null keys and values meet a stream-stream join as Kafka Streams 4's",
          "[unit][join][stream-join]") {
  const Kind kind = GENERATE(Kind::kInner, Kind::kLeft, Kind::kOuter);
  INFO(kind_name(kind) << " join");
  StreamsBuilder builder;
  auto left = builder.stream("left", serdes::nullable(serdes::string()), serdes::string());
  auto right = builder.stream("right", serdes::nullable(serdes::string()), serdes::string());
  using Key = std::optional<std::string>;
  const auto windows = JoinWindows::of_time_difference_and_grace(10ms, 24h);
  auto show = [](const std::optional<std::string>& v) { return v ? *v : std::string("null"); };
  KStream<Key, std::string> out;
  if (kind == Kind::kInner)
    out = left.join(
        right, [](const std::string& l, const std::string& r) { return l + "+" + r; }, windows);
  else if (kind == Kind::kLeft)
    out = left.left_join(
        right,
        [show](const std::string& l, const std::optional<std::string>& r) {
          return l + "+" + show(r);
        },
        windows);
  else
    out = left.outer_join(
        right,
        [show](const std::optional<std::string>& l, const std::optional<std::string>& r) {
          return show(l) + "+" + show(r);
        },
        windows);
  out.to("out", serdes::nullable(serdes::string()), serdes::string());
  TopologyTestDriver driver(builder.build(), StreamsConfig{{"application.id", "app"}});
  auto left_in =
      driver.create_input_topic("left", serdes::nullable(serdes::string()), serdes::string());
  auto right_in =
      driver.create_input_topic("right", serdes::nullable(serdes::string()), serdes::string());
  auto out_topic =
      driver.create_output_topic("out", serdes::nullable(serdes::string()), serdes::string());
  // StreamStreamJoinIntegrationTest: a left record without a key goes on at
  // once in left and outer joins, a right one only in outer joins.
  left_in.pipe_input(std::nullopt, "E", 16);
  right_in.pipe_input(std::nullopt, "e", 17);
  std::vector<std::string> values;
  for (const auto& r : out_topic.read_records_to_list()) {
    CHECK_FALSE(r.key.has_value());
    values.push_back(r.value + "@" + std::to_string(r.timestamp));
  }
  const std::vector<std::string> expected =
      kind == Kind::kInner  ? std::vector<std::string>{}
      : kind == Kind::kLeft ? std::vector<std::string>{"E+null@16"}
                            : std::vector<std::string>{"E+null@16", "null+e@17"};
  CHECK(values == expected);
  CHECK(driver.dropped_records() == (kind == Kind::kInner ? 2 : kind == Kind::kLeft ? 1 : 0));
}

TEST_CASE("a self-join pairs each record with itself and with its neighbours in time",
          "[unit][join][stream-join]") {
  StreamsBuilder builder;
  auto events = builder.stream("events", serdes::string(), serdes::string());
  events
      .join(
          events, [](const std::string& l, const std::string& r) { return l + "+" + r; },
          JoinWindows::of_time_difference_with_no_grace(10ms))
      .to("out", serdes::string(), serdes::string());
  TopologyTestDriver driver(builder.build(), StreamsConfig{{"application.id", "app"}});
  auto in = driver.create_input_topic("events", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::string());
  in.pipe_input("k", "A", 1);
  in.pipe_input("k", "B", 5);
  in.pipe_input("k", "C", 30);
  std::vector<std::string> values;
  for (const auto& r : out.read_records_to_list())
    values.push_back(r.value + "@" + std::to_string(r.timestamp));
  CHECK(values == std::vector<std::string>{"A+A@1", "B+A@5", "A+B@5", "B+B@5", "C+C@30"});
}

TEST_CASE("a stream-stream join's nodes, stores and topics are named as Kafka Streams names them",
          "[unit][join][stream-join]") {
  SECTION("generated names") {
    const std::string description =
        join_topology(Kind::kLeft, JoinWindows::of_time_difference_with_no_grace(1min)).describe();
    INFO(description);
    CHECK_THAT(description, Catch::Contains("Processor: KSTREAM-WINDOWED-0000000002 (stores: "
                                            "[KSTREAM-JOINTHIS-0000000004-store])"));
    CHECK_THAT(description, Catch::Contains("Processor: KSTREAM-WINDOWED-0000000003 (stores: "
                                            "[KSTREAM-OUTEROTHER-0000000005-store])"));
    CHECK_THAT(description, Catch::Contains("Processor: KSTREAM-JOINTHIS-0000000004 (stores: "
                                            "[KSTREAM-OUTEROTHER-0000000005-store, "
                                            "KSTREAM-OUTERSHARED-0000000004-store])"));
    CHECK_THAT(description, Catch::Contains("Processor: KSTREAM-MERGE-0000000006"));
  }
  SECTION("given names, and sides repartitioned after a key change") {
    StreamsBuilder builder;
    auto orders = builder.stream("orders", serdes::string(), serdes::string())
                      .select_key([](const std::string&, const std::string& v) {
                        return v.substr(0, v.find(':'));
                      });
    auto payments = builder.stream("payments", serdes::string(), serdes::string());
    orders
        .outer_join(
            payments,
            [](const std::optional<std::string>& o, const std::optional<std::string>& p) {
              return (o ? *o : "-") + "/" + (p ? *p : "-");
            },
            JoinWindows::of_time_difference_with_no_grace(1min),
            StreamJoined<std::string, std::string, std::string>{.name = "paid",
                                                                .store_name = "payments"})
        .to("out", serdes::string(), serdes::string());
    const Topology topology = builder.build();
    const std::string description = topology.describe();
    INFO(description);
    CHECK_THAT(description, Catch::Contains("topics: [paid-left-repartition]"));
    CHECK_THAT(description, Catch::Contains("Processor: paid-this-windowed (stores: "
                                            "[payments-outer-this-join-store])"));
    CHECK_THAT(description, Catch::Contains("Processor: paid-outer-other-join (stores: "
                                            "[payments-outer-this-join-store, "
                                            "payments-outer-shared-join-store])"));
    CHECK_THAT(description, Catch::Contains("Processor: paid-merge"));

    TopologyTestDriver driver(topology, StreamsConfig{{"application.id", "app"}});
    auto order_in = driver.create_input_topic("orders", serdes::string(), serdes::string());
    auto payment_in = driver.create_input_topic("payments", serdes::string(), serdes::string());
    auto out = driver.create_output_topic("out", serdes::string(), serdes::string());
    order_in.pipe_input("o1", "c1:o1", 1000);
    payment_in.pipe_input("c1", "p1", 2000);
    std::vector<std::string> values;
    for (const auto& r : out.read_records_to_list()) values.push_back(r.key + "=" + r.value);
    CHECK(values == std::vector<std::string>{"c1=c1:o1/p1"});
  }
}

TEST_CASE("join windows check their bounds", "[unit][join][stream-join]") {
  const auto windows = JoinWindows::of_time_difference_and_grace(10ms, 3ms).before(-5ms);
  CHECK(windows.before_ms() == -5);
  CHECK(windows.after_ms() == 10);
  CHECK(windows.size_ms() == 5);
  CHECK(windows.grace_ms() == 3);
  CHECK_THROWS_WITH(JoinWindows::of_time_difference_with_no_grace(10ms).before(-11ms),
                    Catch::Contains("before + after must not be negative"));
  CHECK_THROWS_WITH(JoinWindows::of_time_difference_with_no_grace(-1ms),
                    Catch::Contains("time difference must be non-negative"));
}
