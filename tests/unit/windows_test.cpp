// Windowed aggregations through TopologyTestDriver: tumbling, hopping, sliding
// and session windows, late records at and beyond the grace boundary,
// suppression of intermediate results, and windowed keys as Kafka Streams
// writes them. Expected results follow Kafka Streams' processors step by step.
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include "rill/rill.h"
#include "rill/test_driver.h"

#include "log/log.h"
#include "support/capturing_context.h"

using namespace rill;
using rill::testing::CapturingContext;
using namespace std::chrono_literals;

namespace {

const StreamsConfig kConfig{{"application.id", "app"}};

// One windowed result as a test reads it.
struct Result {
  std::string key;
  int64_t start = 0;
  int64_t end = 0;
  std::optional<int64_t> value;
  int64_t timestamp = 0;
  bool operator==(const Result&) const = default;
};

std::ostream& operator<<(std::ostream& out, const Result& r) {
  out << "{" << r.key << " [" << r.start << "," << r.end << "] = ";
  if (r.value)
    out << *r.value;
  else
    out << "null";
  return out << " @" << r.timestamp << "}";
}

std::vector<Result> read_results(
    TopologyTestDriver::OutputTopic<Windowed<std::string>, std::optional<int64_t>>& topic) {
  std::vector<Result> results;
  for (const auto& r : topic.read_records_to_list())
    results.push_back({r.key.key, r.key.window.start, r.key.window.end, r.value, r.timestamp});
  return results;
}

std::string be64(int64_t value) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((static_cast<uint64_t>(value) >> shift) & 0xff));
  return out;
}

// in (string keys and values) -> group_by_key -> windowed count -> "out".
struct WindowedCount {
  explicit WindowedCount(const std::function<KTable<Windowed<std::string>, int64_t>(
                             KGroupedStream<std::string, std::string>)>& count,
                         const SerdePtr<Windowed<std::string>>& out_key_serde) {
    StreamsBuilder builder;
    count(builder.stream("in", serdes::string(), serdes::string()).group_by_key())
        .to_stream()
        .to("out");
    driver = std::make_unique<TopologyTestDriver>(builder.build(), kConfig);
    in.emplace(driver->create_input_topic("in", serdes::string(), serdes::string()));
    out.emplace(
        driver->create_output_topic("out", out_key_serde, serdes::nullable(serdes::int64())));
  }
  void pipe(const std::string& key, int64_t timestamp) { in->pipe_input(key, "v", timestamp); }
  std::vector<Result> results() { return read_results(*out); }

  std::unique_ptr<TopologyTestDriver> driver;
  std::optional<TopologyTestDriver::InputTopic<std::string, std::string>> in;
  std::optional<TopologyTestDriver::OutputTopic<Windowed<std::string>, std::optional<int64_t>>> out;
};

}  // namespace

TEST_CASE("a task logs its first drop, then sums up drops at most once a minute and at close",
          "[unit][windows][log]") {
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  log::get().sinks().push_back(sink);
  auto lines_with = [&](const std::string& text) {
    std::istringstream lines(captured.str());
    std::vector<std::string> found;
    for (std::string line; std::getline(lines, line);)
      if (line.find(text) != std::string::npos) found.push_back(line);
    return found;
  };
  {
    WindowedCount test(
        [](auto grouped) {
          return grouped.windowed_by(TimeWindows::of_size_with_no_grace(10ms))
              .count(Materialized<std::string, int64_t>::as("counts"));
        },
        serdes::time_windowed(serdes::string(), 10ms));
    test.pipe("a", 100);
    for (int64_t late : {1, 2, 3}) test.pipe("a", late);
    CHECK(lines_with("dropped the record at in-0 offset 1: expired window").size() == 1);
    CHECK(lines_with("more records").empty());

    test.driver->advance_wall_clock_time(60s);
    test.pipe("a", 4);
    const auto summary = lines_with("more records");
    REQUIRE(summary.size() == 1);
    CHECK_THAT(summary[0], Catch::Contains("dropped 3 more records in the last 60 s (3 expired "
                                           "window)"));
    test.pipe("a", 5);
    CHECK(lines_with("more records").size() == 1);
    CHECK(test.driver->dropped_records() == 5);
  }  // closing the task says what the last summary did not
  log::get().sinks().pop_back();
  const auto summaries = lines_with("more records");
  REQUIRE(summaries.size() == 2);
  CHECK_THAT(summaries[1], Catch::Contains("dropped 1 more records in the last 0 s"));
}

TEST_CASE("tumbling windows count out-of-order records until stream time passes end + grace",
          "[unit][windows]") {
  WindowedCount test(
      [](auto grouped) {
        return grouped.windowed_by(TimeWindows::of_size_and_grace(10ms, 5ms))
            .count(Materialized<std::string, int64_t>::as("counts"));
      },
      serdes::time_windowed(serdes::string(), 10ms));
  test.pipe("a", 1);
  test.pipe("a", 5);
  test.pipe("a", 12);
  test.pipe("a", 3);  // stream time 12: [0,10) is open until 15
  test.pipe("a", 14);
  test.pipe("a", 2);   // stream time 14 = end + grace - 1: still accepted
  test.pipe("a", 15);  // stream time 15 = end + grace: [0,10) closes
  test.pipe("a", 4);   // dropped

  // A result carries the largest timestamp in its window.
  CHECK(test.results() == std::vector<Result>{{"a", 0, 10, 1, 1},
                                              {"a", 0, 10, 2, 5},
                                              {"a", 10, 20, 1, 12},
                                              {"a", 0, 10, 3, 5},
                                              {"a", 10, 20, 2, 14},
                                              {"a", 0, 10, 4, 5},
                                              {"a", 10, 20, 3, 15}});
  CHECK(test.driver->dropped_records() == 1);

  auto& store = test.driver->get_timestamped_window_store<std::string, int64_t>("counts");
  CHECK(store.fetch("a", 0) == ValueAndTimestamp<int64_t>{4, 5});
  CHECK(store.fetch("a", 10) == ValueAndTimestamp<int64_t>{3, 15});
  CHECK(store.window_size() == 10);
  CHECK(store.retention_period() == 15);  // size + grace
}

TEST_CASE("a window without grace closes when stream time reaches its end", "[unit][windows]") {
  WindowedCount test(
      [](auto grouped) {
        return grouped.windowed_by(TimeWindows::of_size_with_no_grace(10ms)).count();
      },
      serdes::time_windowed(serdes::string(), 10ms));
  test.pipe("a", 0);
  test.pipe("b", 9);
  test.pipe("a", 1);   // stream time 9: [0,10) open
  test.pipe("b", 10);  // stream time 10 = window end
  test.pipe("a", 2);   // dropped
  CHECK(test.results() ==
        std::vector<Result>{
            {"a", 0, 10, 1, 0}, {"b", 0, 10, 1, 9}, {"a", 0, 10, 2, 1}, {"b", 10, 20, 1, 10}});
  CHECK(test.driver->dropped_records() == 1);
}

TEST_CASE("hopping windows update every window holding the record earliest first",
          "[unit][windows]") {
  WindowedCount test(
      [](auto grouped) {
        return grouped.windowed_by(TimeWindows::of_size_with_no_grace(10ms).advance_by(5ms))
            .count();
      },
      serdes::time_windowed(serdes::string(), 10ms));
  test.pipe("a", 7);
  test.pipe("a", 12);
  test.pipe("a", 8);  // stream time 12: [0,10) has closed, [5,15) has not
  CHECK(test.results() == std::vector<Result>{{"a", 0, 10, 1, 7},
                                              {"a", 5, 15, 1, 7},
                                              {"a", 5, 15, 2, 12},
                                              {"a", 10, 20, 1, 12},
                                              {"a", 5, 15, 3, 12}});
  CHECK(test.driver->dropped_records() == 1);  // one per closed window
}

TEST_CASE("windowed reduce and aggregate", "[unit][windows]") {
  StreamsBuilder builder;
  auto grouped = builder.stream("in", serdes::string(), serdes::int64()).group_by_key();
  auto windows = TimeWindows::of_size_with_no_grace(10ms);
  grouped.windowed_by(windows)
      .reduce([](int64_t sum, int64_t value) { return sum + value; })
      .to_stream()
      .to("sums");
  grouped.windowed_by(windows)
      .aggregate([] { return std::string(); },
                 [](const std::string&, int64_t value, const std::string& digits) {
                   return digits + std::to_string(value);
                 })
      .to_stream()
      .to("digits");
  TopologyTestDriver driver(builder.build(), kConfig);
  auto in = driver.create_input_topic("in", serdes::string(), serdes::int64());
  auto sums = driver.create_output_topic("sums", serdes::time_windowed(serdes::string(), 10ms),
                                         serdes::nullable(serdes::int64()));
  auto digits = driver.create_output_topic("digits", serdes::time_windowed(serdes::string(), 10ms),
                                           serdes::nullable(serdes::string()));
  in.pipe_input("a", 1, 1);
  in.pipe_input("a", 2, 2);
  in.pipe_input("a", 3, 11);
  CHECK(read_results(sums) ==
        std::vector<Result>{{"a", 0, 10, 1, 1}, {"a", 0, 10, 3, 2}, {"a", 10, 20, 3, 11}});
  std::vector<std::string> values;
  for (const auto& r : digits.read_records_to_list()) values.push_back(r.value.value_or("null"));
  CHECK(values == std::vector<std::string>{"1", "12", "3"});
}

TEST_CASE("windowed keys are written as Kafka Streams writes them", "[unit][windows][serde]") {
  SECTION("time windows: key bytes, then the start as 8 big-endian bytes") {
    StreamsBuilder builder;
    builder.stream("in", serdes::string(), serdes::string())
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(1000ms))
        .count()
        .to_stream()
        .to("out");
    TopologyTestDriver driver(builder.build(), kConfig);
    driver.create_input_topic("in", serdes::string(), serdes::string())
        .pipe_input("key", "v", 1'700'000'000'123);
    auto raw = driver.read_raw("out");
    REQUIRE(raw);
    CHECK(raw->key == "key" + be64(1'700'000'000'000));
    CHECK(raw->value == be64(1));
    CHECK(raw->timestamp == 1'700'000'000'123);
  }
  SECTION("sessions: key bytes, then the end and the start as 8 big-endian bytes each") {
    StreamsBuilder builder;
    builder.stream("in", serdes::string(), serdes::string())
        .group_by_key()
        .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(100ms))
        .count()
        .to_stream()
        .to("out");
    TopologyTestDriver driver(builder.build(), kConfig);
    auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
    in.pipe_input("key", "v", 1000);
    in.pipe_input("key", "v", 1050);
    auto first = driver.read_raw("out");
    auto tombstone = driver.read_raw("out");
    auto merged = driver.read_raw("out");
    REQUIRE((first && tombstone && merged));
    CHECK(first->key == "key" + be64(1000) + be64(1000));
    CHECK(tombstone->key == "key" + be64(1000) + be64(1000));
    CHECK(tombstone->value == std::nullopt);
    CHECK(merged->key == "key" + be64(1050) + be64(1000));
    CHECK(merged->value == be64(2));
  }
  SECTION("the serdes read back what they write") {
    auto time = serdes::time_windowed(serdes::string(), 10ms);
    std::string bytes;
    REQUIRE(time->serialize(Windowed<std::string>{"k", {20, 30}}, bytes));
    CHECK(bytes == "k" + be64(20));
    CHECK(time->deserialize(std::string_view(bytes)) == Windowed<std::string>{"k", {20, 30}});
    // Without a window size the end is unknown, as in Kafka Streams.
    CHECK(
        serdes::time_windowed(serdes::string())->deserialize(std::string_view(bytes)).window.end ==
        std::numeric_limits<int64_t>::max());

    auto session = serdes::session_windowed(serdes::int32());
    bytes.clear();
    REQUIRE(session->serialize(Windowed<int32_t>{7, {5, 9}}, bytes));
    CHECK(bytes == std::string("\0\0\0\x07", 4) + be64(9) + be64(5));
    CHECK(session->deserialize(std::string_view(bytes)) == Windowed<int32_t>{7, {5, 9}});
    CHECK_THROWS_AS(session->deserialize(std::string_view("short")), SerdeError);
  }
}

TEST_CASE("sliding windows follow the records including out-of-order ones", "[unit][windows]") {
  WindowedCount test(
      [](auto grouped) {
        return grouped.windowed_by(SlidingWindows::of_time_difference_and_grace(10ms, 5ms))
            .count(Materialized<std::string, int64_t>::as("sliding"));
      },
      serdes::time_windowed(serdes::string(), 10ms));
  test.pipe("a", 10);
  test.pipe("a", 15);
  test.pipe("a", 12);  // out of order, within grace
  test.pipe("a", 30);
  test.pipe("a", 8);  // stream time 30: its right window [9,19] closed at 24
  // Windows are [start, start + 10], both ends inclusive: [0,10] holds 10;
  // [2,12] holds 10 and 12; [5,15] holds all three; [11,21] holds 12 and 15;
  // [13,23] holds 15; [20,30] holds 30.
  CHECK(test.results() == std::vector<Result>{{"a", 0, 10, 1, 10},
                                              {"a", 11, 21, 1, 15},
                                              {"a", 5, 15, 2, 15},
                                              {"a", 11, 21, 2, 15},
                                              {"a", 5, 15, 3, 15},
                                              {"a", 2, 12, 2, 12},
                                              {"a", 13, 23, 1, 15},
                                              {"a", 20, 30, 1, 30}});
  CHECK(test.driver->dropped_records() == 1);
  auto& store = test.driver->get_timestamped_window_store<std::string, int64_t>("sliding");
  CHECK(store.retention_period() == 25);  // 2 x difference + grace
  CHECK(store.fetch("a", 5) == ValueAndTimestamp<int64_t>{3, 15});
}

TEST_CASE("sliding windows put records earlier than the time difference in the first window",
          "[unit][windows]") {
  WindowedCount test(
      [](auto grouped) {
        return grouped.windowed_by(SlidingWindows::of_time_difference_with_no_grace(10ms)).count();
      },
      serdes::time_windowed(serdes::string(), 10ms));
  test.pipe("a", 3);
  test.pipe("a", 5);
  test.pipe("a", 4);
  CHECK(test.results() == std::vector<Result>{{"a", 0, 10, 1, 3},
                                              {"a", 4, 14, 1, 5},
                                              {"a", 0, 10, 2, 5},
                                              {"a", 4, 14, 2, 5},
                                              {"a", 5, 15, 1, 5},
                                              {"a", 0, 10, 3, 5}});
}

TEST_CASE("a sliding window closes once stream time passes its end + grace", "[unit][windows]") {
  WindowedCount test(
      [](auto grouped) {
        return grouped.windowed_by(SlidingWindows::of_time_difference_with_no_grace(10ms)).count();
      },
      serdes::time_windowed(serdes::string(), 10ms));
  test.pipe("a", 20);
  test.pipe("b", 31);
  // Stream time 31: a record at 20 could only be in windows ending by 31 - 1,
  // all closed, so it is dropped; so is one at 9.
  test.pipe("a", 20);
  test.pipe("b", 9);
  CHECK(test.results() == std::vector<Result>{{"a", 10, 20, 1, 20}, {"b", 21, 31, 1, 31}});
  CHECK(test.driver->dropped_records() == 2);
  // A record at 21: the right window of the record at 20, [21,31], ends exactly
  // at stream time - grace and takes it; its own left window [11,21] is closed.
  test.pipe("a", 21);
  CHECK(test.results() == std::vector<Result>{{"a", 21, 31, 1, 21}});
  CHECK(test.driver->dropped_records() == 3);
}

TEST_CASE("session windows merge and retract the sessions they replace", "[unit][windows]") {
  WindowedCount test(
      [](auto grouped) {
        return grouped.windowed_by(SessionWindows::of_inactivity_gap_and_grace(5ms, 10ms))
            .count(Materialized<std::string, int64_t>::as("sessions"));
      },
      serdes::session_windowed(serdes::string()));
  test.pipe("a", 0);
  test.pipe("a", 10);
  test.pipe("a", 5);  // within the gap of both sessions: merges them
  CHECK(test.results() == std::vector<Result>{{"a", 0, 0, 1, 0},
                                              {"a", 10, 10, 1, 10},
                                              {"a", 0, 0, std::nullopt, 0},
                                              {"a", 10, 10, std::nullopt, 10},
                                              {"a", 0, 10, 3, 10}});
  auto& store = test.driver->get_session_store<std::string, int64_t>("sessions");
  CHECK(store.retention_period() == 15);  // gap + grace
  CHECK(store.fetch("a").to_vector() ==
        std::vector<KeyValue<Windowed<std::string>, int64_t>>{{{"a", {0, 10}}, 3}});

  // Stream time 30: sessions ending before 30 - gap - grace = 15 are closed.
  test.pipe("b", 30);
  test.pipe("a", 14);  // dropped
  test.pipe("a", 15);  // exactly at the boundary: accepted
  CHECK(test.results() == std::vector<Result>{{"b", 30, 30, 1, 30}, {"a", 15, 15, 1, 15}});
  CHECK(test.driver->dropped_records() == 1);
  CHECK(store.fetch("b").to_vector() ==
        std::vector<KeyValue<Windowed<std::string>, int64_t>>{{{"b", {30, 30}}, 1}});
}

TEST_CASE("a record at the time of a lone session updates it without a retraction",
          "[unit][windows]") {
  WindowedCount test(
      [](auto grouped) {
        return grouped.windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(5ms)).count();
      },
      serdes::session_windowed(serdes::string()));
  test.pipe("a", 3);
  test.pipe("a", 3);
  CHECK(test.results() == std::vector<Result>{{"a", 3, 3, 1, 3}, {"a", 3, 3, 2, 3}});
}

TEST_CASE("session aggregate merges with the merger and then aggregates", "[unit][windows]") {
  StreamsBuilder builder;
  builder.stream("in", serdes::string(), serdes::string())
      .group_by_key()
      .windowed_by(SessionWindows::of_inactivity_gap_and_grace(5ms, 10ms))
      .aggregate([] { return std::string(); },
                 [](const std::string&, const std::string& value, const std::string& aggregate) {
                   return aggregate + value;
                 },
                 [](const std::string& left, const std::string& right) { return left + right; })
      .to_stream()
      .to("out");
  TopologyTestDriver driver(builder.build(), kConfig);
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::session_windowed(serdes::string()),
                                        serdes::nullable(serdes::string()));
  in.pipe_input("a", "x", 0);
  in.pipe_input("a", "z", 10);
  in.pipe_input("a", "y", 5);
  auto records = out.read_records_to_list();
  REQUIRE(records.size() == 5);
  CHECK(records[4].key == Windowed<std::string>{"a", {0, 10}});
  CHECK(records[4].value == "xzy");  // merged sessions in end order, then the record
}

TEST_CASE("suppress emits only each window's final result", "[unit][windows][suppress]") {
  StreamsBuilder builder;
  auto counts = builder.stream("in", serdes::string(), serdes::string())
                    .group_by_key()
                    .windowed_by(TimeWindows::of_size_and_grace(10ms, 5ms))
                    .count();
  counts.to_stream().to("updates");
  counts.suppress(Suppressed::until_window_closes().with_name("final")).to_stream().to("out");
  TopologyTestDriver driver(builder.build(), kConfig);
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::time_windowed(serdes::string(), 10ms),
                                        serdes::nullable(serdes::int64()));
  auto updates = driver.create_output_topic(
      "updates", serdes::time_windowed(serdes::string(), 10ms), serdes::nullable(serdes::int64()));

  in.pipe_input("b", "v", 3);
  in.pipe_input("a", "v", 1);
  in.pipe_input("a", "v", 2);
  in.pipe_input("a", "v", 12);
  in.pipe_input("a", "v", 14);  // stream time 14 < 10 + 5: nothing is final yet
  CHECK(out.is_empty());
  in.pipe_input("b", "v", 4);   // late but within grace: counted in the final result
  in.pipe_input("a", "v", 15);  // [0,10) closes: its results, by key bytes
  CHECK(read_results(out) == std::vector<Result>{{"a", 0, 10, 2, 2}, {"b", 0, 10, 2, 4}});
  in.pipe_input("a", "v", 40);  // [10,20) closes
  CHECK(read_results(out) == std::vector<Result>{{"a", 10, 20, 3, 15}});
  CHECK(updates.queue_size() == 8);

  // The window still open waits in the buffer's store, which is changelogged.
  auto& buffer =
      driver.get_timestamped_key_value_store<Windowed<std::string>, int64_t>("final-store");
  CHECK(buffer.all().to_vector() ==
        std::vector<KeyValue<Windowed<std::string>, ValueAndTimestamp<int64_t>>>{
            {{"a", {40, 50}}, {1, 40}}});
  CHECK(driver.queue_size("app-final-store-changelog") > 0);
}

TEST_CASE("suppressed sessions wait for the gap and the grace and drop retracted sessions",
          "[unit][windows][suppress]") {
  StreamsBuilder builder;
  builder.stream("in", serdes::string(), serdes::string())
      .group_by_key()
      .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(5ms))
      .count()
      .suppress(Suppressed::until_window_closes())
      .to_stream()
      .to("out");
  TopologyTestDriver driver(builder.build(), kConfig);
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::session_windowed(serdes::string()),
                                        serdes::nullable(serdes::int64()));
  in.pipe_input("a", "v", 0);
  in.pipe_input("a", "v", 3);  // merges into [0,3]; [0,0] is retracted from the buffer
  in.pipe_input("b", "v", 7);  // stream time 7 < 3 + 5
  CHECK(out.is_empty());
  in.pipe_input("b", "v", 8);  // stream time 8 = end + gap: [0,3] is final
  CHECK(read_results(out) == std::vector<Result>{{"a", 0, 3, 2, 3}});
}

TEST_CASE("windowed aggregations after a key change repartition by the grouped name",
          "[unit][windows]") {
  StreamsBuilder builder;
  builder.stream("in", serdes::string(), serdes::string())
      .group_by([](const std::string&, const std::string& user) { return user; },
                {.name = "by-user"})
      .windowed_by(TimeWindows::of_size_with_no_grace(10ms))
      .count()
      .to_stream()
      .to("out");
  TopologyTestDriver driver(builder.build(), kConfig);
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::time_windowed(serdes::string(), 10ms),
                                        serdes::nullable(serdes::int64()));
  in.pipe_input("k1", "alice", 1);
  in.pipe_input("k2", "alice", 2);
  CHECK(read_results(out) == std::vector<Result>{{"alice", 0, 10, 1, 1}, {"alice", 0, 10, 2, 2}});
  CHECK(driver.queue_size("app-by-user-repartition") == 2);
}

TEST_CASE("window definitions and retentions are checked", "[unit][windows]") {
  CHECK_THROWS_AS(TimeWindows::of_size_with_no_grace(0ms), std::invalid_argument);
  CHECK_THROWS_AS(TimeWindows::of_size_and_grace(10ms, -1ms), std::invalid_argument);
  CHECK_THROWS_AS(TimeWindows::of_size_with_no_grace(10ms).advance_by(11ms), std::invalid_argument);
  CHECK_THROWS_AS(TimeWindows::of_size_with_no_grace(10ms).advance_by(0ms), std::invalid_argument);
  CHECK_THROWS_AS(SlidingWindows::of_time_difference_with_no_grace(0ms), std::invalid_argument);
  CHECK_THROWS_AS(SessionWindows::of_inactivity_gap_with_no_grace(0ms), std::invalid_argument);
  // Durations whose sums (size plus grace, twice the difference plus grace)
  // would overflow are refused where they are given, not wrapped later.
  constexpr auto kForever = std::chrono::milliseconds::max();
  CHECK_THROWS_WITH(TimeWindows::of_size_and_grace(10ms, kForever),
                    Catch::Contains("time windows: grace period must be non-negative and at most"));
  CHECK_THROWS_AS(TimeWindows::of_size_with_no_grace(kMaxWindowDuration + 1ms),
                  std::invalid_argument);
  CHECK_THROWS_AS(SlidingWindows::of_time_difference_with_no_grace(kForever),
                  std::invalid_argument);
  CHECK_THROWS_AS(SessionWindows::of_inactivity_gap_and_grace(kForever, 0ms),
                  std::invalid_argument);
  CHECK(TimeWindows::of_size_and_grace(kMaxWindowDuration, kMaxWindowDuration).grace_ms() ==
        kMaxWindowDuration.count());

  StreamsBuilder builder;
  auto grouped = builder.stream("in", serdes::string(), serdes::string()).group_by_key();
  Materialized<std::string, int64_t> short_retention;
  short_retention.retention = 14ms;
  CHECK_THROWS_WITH(
      grouped.windowed_by(TimeWindows::of_size_and_grace(10ms, 5ms)).count(short_retention),
      Catch::Contains("retention must be at least the window size plus the grace period"));

  // Suppression needs to know when windows close.
  StreamsBuilder other;
  auto table = other.table("t", serdes::time_windowed(serdes::string(), 10ms), serdes::string());
  CHECK_THROWS_AS(table.suppress(Suppressed::until_window_closes()), TopologyError);
}

TEST_CASE("windows at the largest timestamp end there instead of overflowing", "[unit][windows]") {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  SECTION("tumbling") {
    WindowedCount test(
        [](auto grouped) {
          return grouped.windowed_by(TimeWindows::of_size_with_no_grace(10ms)).count();
        },
        serdes::time_windowed(serdes::string(), 10ms));
    // The window [kMax - 7, kMax + 3) ends at kMax instead.
    test.pipe("a", kMax - 1);
    CHECK(test.results() == std::vector<Result>{{"a", kMax - kMax % 10, kMax, 1, kMax - 1}});
    // Stream time kMax has reached that end, so the window has closed.
    test.pipe("a", kMax);
    CHECK(test.results().empty());
    CHECK(test.driver->dropped_records() == 1);
  }
  SECTION("hopping") {
    WindowedCount test(
        [](auto grouped) {
          return grouped.windowed_by(TimeWindows::of_size_with_no_grace(10ms).advance_by(5ms))
              .count();
        },
        serdes::time_windowed(serdes::string(), 10ms));
    test.pipe("a", kMax - 1);
    const int64_t last = kMax - kMax % 5;
    CHECK(test.results() ==
          std::vector<Result>{{"a", last - 5, kMax, 1, kMax - 1}, {"a", last, kMax, 1, kMax - 1}});
  }
  SECTION("session") {
    WindowedCount test(
        [](auto grouped) {
          return grouped.windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(5ms)).count();
        },
        serdes::session_windowed(serdes::string()));
    test.pipe("a", kMax - 2);
    test.pipe("a", kMax);  // within the gap: joins the session
    CHECK(test.results() == std::vector<Result>{{"a", kMax - 2, kMax - 2, 1, kMax - 2},
                                                {"a", kMax - 2, kMax - 2, std::nullopt, kMax - 2},
                                                {"a", kMax - 2, kMax, 2, kMax}});
  }
  SECTION("sliding") {
    WindowedCount test(
        [](auto grouped) {
          return grouped.windowed_by(SlidingWindows::of_time_difference_with_no_grace(10ms))
              .count();
        },
        serdes::time_windowed(serdes::string(), 10ms));
    // The right window of a record at t is [t + 1, t + 1 + 10]: the last t
    // with room for it is kMax - 11.
    test.pipe("a", kMax - 11);
    CHECK(test.results() == std::vector<Result>{{"a", kMax - 21, kMax - 11, 1, kMax - 11}});
    CHECK_THROWS_WITH(test.pipe("a", kMax - 10),
                      Catch::Contains("sliding windows: timestamp 9223372036854775797 leaves no "
                                      "room for the window of 10 ms after it"));
  }
}

TEST_CASE("windowed stores can live in memory without a changelog", "[unit][windows]") {
  StreamsBuilder builder;
  Materialized<std::string, int64_t> materialized = Materialized<std::string, int64_t>::as("w");
  materialized.in_memory = true;
  materialized.logging_enabled = false;
  builder.stream("in", serdes::string(), serdes::string())
      .group_by_key()
      .windowed_by(TimeWindows::of_size_with_no_grace(10ms))
      .count(materialized)
      .to_stream()
      .to("out");
  TopologyTestDriver driver(builder.build(), kConfig);
  driver.create_input_topic("in", serdes::string(), serdes::string()).pipe_input("a", "v", 1);
  auto& store = driver.get_timestamped_window_store<std::string, int64_t>("w");
  CHECK_FALSE(store.persistent());
  CHECK(store.fetch("a", 0) == ValueAndTimestamp<int64_t>{1, 1});
  CHECK(driver.queue_size("app-w-changelog") == 0);
}

TEST_CASE("the suppression buffer is rebuilt from its store at init", "[unit][windows][suppress]") {
  using Buffer = KeyValueStore<Windowed<std::string>, ValueAndTimestamp<int64_t>>;
  auto key_serde = serdes::time_windowed(serdes::string(), 10ms);
  auto store = Stores::key_value<Windowed<std::string>, ValueAndTimestamp<int64_t>>(
                   "buffer", key_serde, serdes::value_and_timestamp(serdes::int64()))
                   .in_memory()
                   .build({}, nullptr);
  auto& buffer = dynamic_cast<Buffer&>(*store);
  // What an earlier run left buffered, as the changelog restores it.
  buffer.put({"b", {0, 10}}, {3, 7});
  buffer.put({"a", {10, 20}}, {1, 12});
  buffer.put({"a", {0, 10}}, {2, 9});

  operators::WindowCloseSuppressProcessor<std::string, int64_t> processor("buffer", 0, key_serde);
  CapturingContext<Windowed<std::string>, Change<int64_t>> context;
  context.stores.emplace("buffer", store.get());
  processor.init(context);
  processor.process(
      {{"c", {20, 30}}, {1, std::nullopt}, 20, {}});  // stream time 20 closes [0,10) and [10,20)

  std::vector<Result> emitted;
  for (const auto& r : context.forwarded)
    emitted.push_back(
        {r.key.key, r.key.window.start, r.key.window.end, r.value.new_value, r.timestamp});
  CHECK(emitted ==
        std::vector<Result>{{"a", 0, 10, 2, 9}, {"b", 0, 10, 3, 7}, {"a", 10, 20, 1, 12}});
  CHECK(buffer.all().to_vector() ==
        std::vector<KeyValue<Windowed<std::string>, ValueAndTimestamp<int64_t>>>{
            {{"c", {20, 30}}, {1, 20}}});
}
