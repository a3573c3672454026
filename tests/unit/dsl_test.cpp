// The DSL operations, run through TopologyTestDriver: what each one does to
// records, that timestamps and headers survive it, and how its node is named.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/streams_builder.h"
#include "rill/test_driver.h"

using namespace rill;

namespace {

using StringKV = KeyValue<std::string, std::string>;

std::vector<std::string> node_names(const Topology& topology) {
  std::vector<std::string> names;
  for (const auto& node : topology.nodes()) names.push_back(node.name);
  return names;
}

Headers trace_headers() {
  Headers headers;
  headers.add("trace", "t-1");
  headers.add("empty", std::nullopt);
  return headers;
}

KStream<std::string, std::string> string_stream(StreamsBuilder& builder,
                                                const std::string& topic = "in") {
  return builder.stream(topic, serdes::string(), serdes::string());
}

}  // namespace

TEST_CASE("map replaces key and value and keeps timestamp and headers", "[unit][dsl]") {
  StreamsBuilder builder;
  auto mapped = string_stream(builder).map([](const std::string& key, const std::string& value) {
    return KeyValue<std::string, int64_t>{value, static_cast<int64_t>(key.size())};
  });
  mapped.to("out");
  CHECK(mapped.node_name() == "KSTREAM-MAP-0000000001");
  CHECK(mapped.repartition_required());

  TopologyTestDriver driver(builder.build());
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::int64());
  in.pipe_input("abc", "hello", 1234, trace_headers());

  auto record = out.read_record();
  CHECK(record.key == "hello");
  CHECK(record.value == 3);
  CHECK(record.timestamp == 1234);
  CHECK(record.headers == trace_headers());
  CHECK(out.is_empty());
}

TEST_CASE("map accepts std::pair results", "[unit][dsl]") {
  StreamsBuilder builder;
  string_stream(builder)
      .map([](const std::string& key, const std::string& value) {
        return std::make_pair(value + "!", key);
      })
      .to("out");

  TopologyTestDriver driver(builder.build());
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::string());
  in.pipe_input("k", "v");
  CHECK(out.read_key_value() == StringKV{"v!", "k"});
}

TEST_CASE("map_values takes f(value) or f(key, value) and keeps the key", "[unit][dsl]") {
  StreamsBuilder builder;
  auto source = string_stream(builder);
  auto by_value = source.map_values(
      [](const std::string& value) { return static_cast<int64_t>(value.size()); });
  auto by_key_and_value = source.map_values(
      [](const std::string& key, const std::string& value) { return key + "=" + value; });
  by_value.to("lengths");
  by_key_and_value.to("pairs");
  CHECK(by_value.node_name() == "KSTREAM-MAPVALUES-0000000001");
  CHECK(by_key_and_value.node_name() == "KSTREAM-MAPVALUES-0000000002");
  CHECK_FALSE(by_value.repartition_required());

  TopologyTestDriver driver(builder.build());
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto lengths = driver.create_output_topic("lengths", serdes::string(), serdes::int64());
  auto pairs = driver.create_output_topic("pairs", serdes::string(), serdes::string());
  in.pipe_input("k", "four", 77, trace_headers());

  auto length = lengths.read_record();
  CHECK(length.key == "k");
  CHECK(length.value == 4);
  CHECK(length.timestamp == 77);
  CHECK(length.headers == trace_headers());
  auto pair = pairs.read_record();
  CHECK(pair.key == "k");
  CHECK(pair.value == "k=four");
  CHECK(pair.timestamp == 77);
  CHECK(pair.headers == trace_headers());
}

TEST_CASE("filter keeps and filter_not drops the records a predicate accepts", "[unit][dsl]") {
  StreamsBuilder builder;
  auto source = string_stream(builder);
  auto kept = source.filter([](const std::string& value) { return value.starts_with("y"); });
  auto dropped = source.filter_not(
      [](const std::string& key, const std::string&) { return key == "skip"; }, "not-skipped");
  kept.to("kept");
  dropped.to("not-skipped-out");
  CHECK(kept.node_name() == "KSTREAM-FILTER-0000000001");
  CHECK(dropped.node_name() == "not-skipped");

  TopologyTestDriver driver(builder.build());
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto kept_out = driver.create_output_topic("kept", serdes::string(), serdes::string());
  auto dropped_out =
      driver.create_output_topic("not-skipped-out", serdes::string(), serdes::string());
  in.pipe_input("a", "yes", 5, trace_headers());
  in.pipe_input("skip", "yes");
  in.pipe_input("b", "no");

  auto first = kept_out.read_record();
  CHECK(first.key == "a");
  CHECK(first.timestamp == 5);
  CHECK(first.headers == trace_headers());
  CHECK(kept_out.read_key_value() == StringKV{"skip", "yes"});
  CHECK(kept_out.is_empty());
  CHECK(dropped_out.read_key_values_to_list() == std::vector<StringKV>{{"a", "yes"}, {"b", "no"}});
}

TEST_CASE("flat_map turns one record into zero or more with new keys", "[unit][dsl]") {
  StreamsBuilder builder;
  auto words =
      string_stream(builder).flat_map([](const std::string& key, const std::string& value) {
        std::vector<KeyValue<std::string, int32_t>> out;
        for (char c : value) out.push_back({std::string(1, c), static_cast<int32_t>(key.size())});
        return out;
      });
  words.to("out");
  CHECK(words.node_name() == "KSTREAM-FLATMAP-0000000001");
  CHECK(words.repartition_required());

  TopologyTestDriver driver(builder.build());
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::int32());
  in.pipe_input("key", "ab", 9, trace_headers());
  in.pipe_input("key", "");

  auto records = out.read_records_to_list();
  REQUIRE(records.size() == 2);
  CHECK(records[0].key == "a");
  CHECK(records[1].key == "b");
  for (const auto& record : records) {
    CHECK(record.value == 3);
    CHECK(record.timestamp == 9);
    CHECK(record.headers == trace_headers());
  }
}

TEST_CASE("flat_map_values keeps the key, with f(value) or f(key, value)", "[unit][dsl]") {
  StreamsBuilder builder;
  auto source = string_stream(builder);
  auto words = source.flat_map_values([](const std::string& line) {
    std::vector<std::string> out;
    std::string word;
    for (char c : line + " ") {
      if (c != ' ') {
        word += c;
      } else if (!word.empty()) {
        out.push_back(std::exchange(word, {}));
      }
    }
    return out;
  });
  auto repeated = source.flat_map_values(
      [](const std::string& key, const std::string& value) {
        return std::vector<std::string>(key.size(), value);
      },
      "repeat");
  words.to("words");
  repeated.to("repeated");
  CHECK(words.node_name() == "KSTREAM-FLATMAPVALUES-0000000001");
  CHECK(repeated.node_name() == "repeat");
  CHECK_FALSE(words.repartition_required());

  TopologyTestDriver driver(builder.build());
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto words_out = driver.create_output_topic("words", serdes::string(), serdes::string());
  auto repeated_out = driver.create_output_topic("repeated", serdes::string(), serdes::string());
  in.pipe_input("ab", "hello  big world", 11, trace_headers());

  auto records = words_out.read_records_to_list();
  REQUIRE(records.size() == 3);
  CHECK(records[0].value == "hello");
  CHECK(records[1].value == "big");
  CHECK(records[2].value == "world");
  for (const auto& record : records) {
    CHECK(record.key == "ab");
    CHECK(record.timestamp == 11);
    CHECK(record.headers == trace_headers());
  }
  CHECK(repeated_out.read_key_values_to_list() ==
        std::vector<StringKV>{{"ab", "hello  big world"}, {"ab", "hello  big world"}});
}

TEST_CASE("select_key changes the key and marks the stream for repartitioning", "[unit][dsl]") {
  StreamsBuilder builder;
  auto source = string_stream(builder);
  CHECK_FALSE(source.repartition_required());
  CHECK(source.repartition_if_required("unused").node_name() == source.node_name());

  auto rekeyed = source.select_key([](const std::string&, const std::string& value) {
    return static_cast<int64_t>(value.size());
  });
  CHECK(rekeyed.node_name() == "KSTREAM-KEY-SELECT-0000000001");
  CHECK(rekeyed.repartition_required());
  // Value-only operations keep the need to repartition.
  auto upper = rekeyed.map_values([](const std::string& value) { return value + "!"; });
  CHECK(upper.repartition_required());

  auto repartitioned = upper.repartition_if_required("by-length");
  CHECK_FALSE(repartitioned.repartition_required());
  CHECK(repartitioned.node_name() == "by-length-repartition-source");
  repartitioned.to("out");

  Topology topology = builder.build();
  const auto& sink = topology.node("by-length-repartition-sink");
  REQUIRE(sink.topics.size() == 1);
  CHECK(sink.topics[0].name == "by-length-repartition");
  CHECK(sink.topics[0].internal);
  CHECK(topology.node("by-length-repartition-source").topics == sink.topics);
  CHECK(topology.subtopologies().size() == 2);

  TopologyTestDriver driver(std::move(topology));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::int64(), serdes::string());
  in.pipe_input("k", "four", 42, trace_headers());

  auto through = driver.create_output_topic("test-driver-by-length-repartition", serdes::int64(),
                                            serdes::string());
  CHECK(through.read_key_value() == KeyValue<int64_t, std::string>{4, "four!"});
  auto record = out.read_record();
  CHECK(record.key == 4);
  CHECK(record.value == "four!");
  CHECK(record.timestamp == 42);
  CHECK(record.headers == trace_headers());
}

TEST_CASE("peek sees each record and passes it on, foreach ends the stream", "[unit][dsl]") {
  StreamsBuilder builder;
  std::vector<StringKV> peeked;
  std::vector<StringKV> consumed;
  auto peeked_stream =
      string_stream(builder).peek([&peeked](const std::string& key, const std::string& value) {
        peeked.push_back({key, value});
      });
  peeked_stream.to("out");
  peeked_stream.foreach (
      [&consumed](const std::string& key, const std::string& value) {
        consumed.push_back({key, value});
      },
      "collect");
  Topology topology = builder.build();
  CHECK(node_names(topology) == std::vector<std::string>{"KSTREAM-SOURCE-0000000000",
                                                         "KSTREAM-PEEK-0000000001",
                                                         "KSTREAM-SINK-0000000002", "collect"});

  TopologyTestDriver driver(std::move(topology));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::string());
  in.pipe_input("a", "1", 3, trace_headers());
  in.pipe_input("b", "2");

  const std::vector<StringKV> expected{{"a", "1"}, {"b", "2"}};
  CHECK(peeked == expected);
  CHECK(consumed == expected);
  auto first = out.read_record();
  CHECK(first.timestamp == 3);
  CHECK(first.headers == trace_headers());
  CHECK(out.read_key_value() == expected[1]);
}

TEST_CASE("foreach gets a generated name", "[unit][dsl]") {
  StreamsBuilder builder;
  string_stream(builder).foreach ([](const std::string&, const std::string&) {});
  CHECK(node_names(builder.build()) ==
        std::vector<std::string>{"KSTREAM-SOURCE-0000000000", "KSTREAM-FOREACH-0000000001"});
}

TEST_CASE("split routes each record to the first branch that accepts it", "[unit][dsl]") {
  StreamsBuilder builder;
  auto branches =
      string_stream(builder)
          .split("route")
          .branch("small", [](const std::string& value) { return value.size() < 3; })
          .branch("a-key", [](const std::string& key, const std::string&) { return key == "a"; })
          .default_branch()
          .branches();
  REQUIRE(branches.size() == 3);
  branches.at("route-small").to("small");
  branches.at("route-a-key").to("a-key");
  branches.at("route-default").to("other");

  Topology topology = builder.build();
  CHECK(node_names(topology) ==
        std::vector<std::string>{"KSTREAM-SOURCE-0000000000", "route", "route-small", "route-a-key",
                                 "route-default", "KSTREAM-SINK-0000000001",
                                 "KSTREAM-SINK-0000000002", "KSTREAM-SINK-0000000003"});

  TopologyTestDriver driver(std::move(topology));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto small = driver.create_output_topic("small", serdes::string(), serdes::string());
  auto a_key = driver.create_output_topic("a-key", serdes::string(), serdes::string());
  auto other = driver.create_output_topic("other", serdes::string(), serdes::string());
  in.pipe_input("a", "xy", 8, trace_headers());  // small and a-key: the first wins
  in.pipe_input("a", "long");
  in.pipe_input("b", "long");
  in.pipe_input("b", "z");

  auto first = small.read_record();
  CHECK(first.key == "a");
  CHECK(first.timestamp == 8);
  CHECK(first.headers == trace_headers());
  CHECK(small.read_key_values_to_list() == std::vector<StringKV>{{"b", "z"}});
  CHECK(a_key.read_key_values_to_list() == std::vector<StringKV>{{"a", "long"}});
  CHECK(other.read_key_values_to_list() == std::vector<StringKV>{{"b", "long"}});
}

TEST_CASE("split without a default branch drops records no branch accepts", "[unit][dsl]") {
  StreamsBuilder builder;
  auto split = string_stream(builder).split();
  split.branch("one", [](const std::string& value) { return value == "1"; })
      .branch("two", [](const std::string& value) { return value == "2"; });
  CHECK(split.branches().begin()->first.starts_with("KSTREAM-BRANCH-0000000001-"));
  split["one"].to("one");
  split["KSTREAM-BRANCH-0000000001-two"].to("two");
  CHECK_THROWS_AS(split["three"], TopologyError);
  CHECK_THROWS_WITH(split.branch("one", [](const std::string&) { return true; }),
                    Catch::Contains("already has a branch named 'one'"));

  TopologyTestDriver driver(builder.build());
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto one = driver.create_output_topic("one", serdes::string(), serdes::string());
  auto two = driver.create_output_topic("two", serdes::string(), serdes::string());
  in.pipe_input("k", "1");
  in.pipe_input("k", "3");
  in.pipe_input("k", "2");

  CHECK(one.read_key_values_to_list() == std::vector<StringKV>{{"k", "1"}});
  CHECK(two.read_key_values_to_list() == std::vector<StringKV>{{"k", "2"}});
  CHECK(driver.written_topics() == std::vector<std::string>{"one", "two"});
  CHECK(driver.skipped_records() == 0);
}

TEST_CASE("merge interleaves two streams in arrival order", "[unit][dsl]") {
  StreamsBuilder builder;
  auto left = string_stream(builder, "left");
  auto right =
      string_stream(builder, "right").select_key([](const std::string& key, const std::string&) {
        return key + "'";
      });
  auto merged = left.merge(right);
  CHECK(merged.node_name() == "KSTREAM-MERGE-0000000003");
  CHECK(merged.repartition_required());
  CHECK_FALSE(left.merge(left.filter([](const std::string&) { return true; }), "plain")
                  .repartition_required());
  merged.to("out");
  CHECK(builder.build().node("KSTREAM-MERGE-0000000003").parents ==
        std::vector<std::string>{"KSTREAM-SOURCE-0000000000", "KSTREAM-KEY-SELECT-0000000002"});

  TopologyTestDriver driver(builder.build());
  auto left_in = driver.create_input_topic("left", serdes::string(), serdes::string());
  auto right_in = driver.create_input_topic("right", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::string());
  left_in.pipe_input("l", "1", 10);
  right_in.pipe_input("r", "2", 20, trace_headers());
  left_in.pipe_input("l", "3", 30);

  auto records = out.read_records_to_list();
  REQUIRE(records.size() == 3);
  CHECK(records[0].key == "l");
  CHECK(records[1].key == "r'");
  CHECK(records[1].value == "2");
  CHECK(records[1].timestamp == 20);
  CHECK(records[1].headers == trace_headers());
  CHECK(records[2].value == "3");
}

namespace {

// Emits the value's length, and a second record for long values, to show a
// processor decides what and how much it forwards.
class LengthProcessor final : public Processor<std::string, std::string, std::string, int32_t> {
 public:
  void init(ProcessorContext<std::string, int32_t>& context) override { context_ = &context; }
  void process(const Record<std::string, std::string>& record) override {
    context_->forward(record.with_value(static_cast<int32_t>(record.value.size())));
    if (record.value.size() > 3)
      context_->forward(record.with_key(std::string("long")).with_value(int32_t{-1}));
  }

 private:
  ProcessorContext<std::string, int32_t>* context_ = nullptr;
};

}  // namespace

TEST_CASE("process() runs a Processor API processor inside the DSL", "[unit][dsl]") {
  StreamsBuilder builder;
  auto lengths =
      string_stream(builder).process([] { return std::make_unique<LengthProcessor>(); }, "lengths");
  CHECK(lengths.node_name() == "lengths");
  CHECK(lengths.repartition_required());
  // The output value type changed, so its serde is the default one for int32.
  REQUIRE(lengths.value_serde() != nullptr);
  CHECK(lengths.value_serde()->name() == "int32");
  lengths.to("out");
  auto unnamed =
      string_stream(builder, "in2").process([] { return std::make_unique<LengthProcessor>(); });
  CHECK(unnamed.node_name() == "KSTREAM-PROCESSOR-0000000003");

  TopologyTestDriver driver(builder.build());
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::int32());
  in.pipe_input("k", "abc", 100, trace_headers());
  in.pipe_input("k", "abcd");

  auto first = out.read_record();
  CHECK(first.key == "k");
  CHECK(first.value == 3);
  CHECK(first.timestamp == 100);
  CHECK(first.headers == trace_headers());
  CHECK(out.read_key_values_to_list() ==
        std::vector<KeyValue<std::string, int32_t>>{{"k", 4}, {"long", -1}});
}

TEST_CASE("repartition writes through <application.id>-<name>-repartition", "[unit][dsl]") {
  StreamsBuilder builder;
  auto repartitioned =
      string_stream(builder)
          .select_key([](const std::string&, const std::string& value) { return value; })
          .repartition({.name = "by-value", .partitions = 4});
  repartitioned.map_values([](const std::string& value) { return value + "?"; }).to("out");

  Topology topology = builder.build();
  REQUIRE(topology.subtopologies().size() == 2);
  CHECK(topology.subtopologies()[0].sink_topics ==
        std::vector<TopicRef>{TopicRef("by-value-repartition", true)});
  CHECK(topology.subtopologies()[1].source_topics ==
        std::vector<TopicRef>{TopicRef("by-value-repartition", true)});
  CHECK(topology.node("by-value-repartition-sink").partitions == 4);

  TopologyTestDriver driver(std::move(topology), StreamsConfig{{"application.id", "shop"}});
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::string());
  in.pipe_input("old-key", "v", 7, trace_headers());

  auto internal = driver.read_raw("shop-by-value-repartition");
  REQUIRE(internal.has_value());
  CHECK(internal->key == "v");
  CHECK(internal->value == "v");
  CHECK(internal->timestamp == 7);
  auto record = out.read_record();
  CHECK(record.key == "v");
  CHECK(record.value == "v?");
  CHECK(record.timestamp == 7);
  CHECK(record.headers == trace_headers());
  CHECK(driver.written_topics() == std::vector<std::string>{"out", "shop-by-value-repartition"});
}

TEST_CASE("repartition without a name and with other serdes", "[unit][dsl]") {
  StreamsBuilder builder;
  auto shouting = serdes::from_functions<std::string>(
      "shouting", [](const std::string& value, std::string& out) { out += value + "!"; },
      [](NullableBytes bytes) {
        std::string text(bytes.value_or(""));
        if (!text.empty()) text.pop_back();
        return text;
      });
  string_stream(builder).repartition({.value_serde = shouting}).to("out");
  Topology topology = builder.build();
  CHECK(node_names(topology) ==
        std::vector<std::string>{
            "KSTREAM-SOURCE-0000000000", "KSTREAM-REPARTITION-0000000001-repartition-sink",
            "KSTREAM-REPARTITION-0000000001-repartition-source", "KSTREAM-SINK-0000000002"});

  TopologyTestDriver driver(std::move(topology));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  in.pipe_input("k", "quiet");
  auto internal = driver.read_raw("test-driver-KSTREAM-REPARTITION-0000000001-repartition");
  REQUIRE(internal.has_value());
  CHECK(internal->value == "quiet!");
  // As in Kafka Streams, the stream after repartition() keeps the serdes given to it.
  auto written = driver.read_raw("out");
  REQUIRE(written.has_value());
  CHECK(written->value == "quiet!");
  CHECK(shouting->deserialize(*written->value) == "quiet");
}

TEST_CASE("to() with explicit serdes and a custom partitioner", "[unit][dsl]") {
  StreamsBuilder builder;
  auto decimal = serdes::from_functions<int64_t>(
      "decimal", [](const int64_t& value, std::string& out) { out += std::to_string(value); },
      [](NullableBytes bytes) { return std::stoll(std::string(bytes.value_or("0"))); });
  auto prefixed = serdes::from_functions<std::string>(
      "prefixed", [](const std::string& key, std::string& out) { out += "key:" + key; },
      [](NullableBytes bytes) { return std::string(bytes.value_or("")).substr(4); });
  std::vector<int32_t> partition_counts;
  auto lengths = string_stream(builder).map_values(
      [](const std::string& value) { return static_cast<int64_t>(value.size()); });
  lengths.to("out", Produced<std::string, int64_t>{
                        .key_serde = prefixed,
                        .value_serde = decimal,
                        .partitioner =
                            [&partition_counts](const std::string& key, const int64_t& value,
                                                int32_t partitions) {
                              partition_counts.push_back(partitions);
                              return key == "a" ? static_cast<int32_t>(value % partitions) : -1;
                            },
                        .name = "to-out"});
  lengths.to("plain", prefixed, decimal);
  Topology topology = builder.build();
  CHECK(topology.node("to-out").topics == std::vector<TopicRef>{"out"});
  CHECK(node_names(topology).back() == "KSTREAM-SINK-0000000002");

  TopologyTestDriver driver(std::move(topology));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  in.pipe_input("a", "12345", 3, trace_headers());
  in.pipe_input("b", "1");

  auto first = driver.read_raw("out");
  REQUIRE(first.has_value());
  CHECK(first->key == "key:a");
  CHECK(first->value == "5");
  CHECK(first->partition == 0);
  CHECK(first->timestamp == 3);
  CHECK(first->headers == trace_headers());
  auto second = driver.read_raw("out");
  REQUIRE(second.has_value());
  CHECK(second->partition == -1);
  CHECK(partition_counts == std::vector<int32_t>{1, 1});

  auto plain = driver.create_output_topic("plain", prefixed, decimal);
  CHECK(plain.read_key_values_to_list() ==
        std::vector<KeyValue<std::string, int64_t>>{{"a", 5}, {"b", 1}});
}

TEST_CASE("generated names follow Kafka Streams and user names replace them", "[unit][dsl]") {
  SECTION("generated") {
    StreamsBuilder builder;
    string_stream(builder)
        .map([](const std::string& k, const std::string& v) {
          return KeyValue{v, k};
        })
        .filter([](const std::string&) { return true; })
        .select_key([](const std::string& k, const std::string&) { return k; })
        .to("out");
    CHECK(node_names(builder.build()) ==
          std::vector<std::string>{"KSTREAM-SOURCE-0000000000", "KSTREAM-MAP-0000000001",
                                   "KSTREAM-FILTER-0000000002", "KSTREAM-KEY-SELECT-0000000003",
                                   "KSTREAM-SINK-0000000004"});
  }
  SECTION("given") {
    StreamsBuilder builder;
    builder
        .stream<std::string, std::string>("in", Consumed<std::string, std::string>{.name = "read"})
        .map(
            [](const std::string& k, const std::string& v) {
              return KeyValue{v, k};
            },
            "swap")
        .peek([](const std::string&, const std::string&) {}, "look")
        .select_key([](const std::string& k, const std::string&) { return k; }, "rekey")
        .merge(string_stream(builder, "other"), "both")
        .to("out", {.name = "write"});
    CHECK(node_names(builder.build()) == std::vector<std::string>{"read", "swap", "look", "rekey",
                                                                  "KSTREAM-SOURCE-0000000000",
                                                                  "both", "write"});
  }
}

TEST_CASE("Consumed sets the timestamp with an extractor", "[unit][dsl]") {
  StreamsBuilder builder;
  builder
      .stream<std::string, std::string>("in",
                                        {.timestamp_extractor =
                                             [](const Record<std::string, std::string>& record) {
                                               return std::stoll(record.value);
                                             }})
      .to("out");

  TopologyTestDriver driver(builder.build());
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::string());
  in.pipe_input("k", "5000", 1);
  CHECK(out.read_record().timestamp == 5000);
}
