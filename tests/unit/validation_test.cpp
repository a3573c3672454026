// Topologies and configurations that cannot run are refused with a message
// naming the node or key at fault.
#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "rill/config.h"
#include "rill/json.h"
#include "rill/processor.h"
#include "rill/streams_builder.h"
#include "rill/test_driver.h"
#include "rill/topology.h"

using namespace rill;
using Catch::Contains;

namespace {

// A user type with no default serde.
struct Point {
  int x = 0;
  int y = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Point, x, y)
};

class Pass final : public Processor<std::string, std::string> {
 public:
  void init(ProcessorContext<std::string, std::string>& context) override { context_ = &context; }
  void process(const Record<std::string, std::string>& record) override {
    context_->forward(record);
  }

 private:
  ProcessorContext<std::string, std::string>* context_ = nullptr;
};

class Length final : public Processor<std::string, int64_t> {
 public:
  void process(const Record<std::string, int64_t>&) override {}
};

auto pass() {
  return [] { return std::make_unique<Pass>(); };
}

Topology with_source() {
  Topology topology;
  topology.add_source<std::string, std::string>("src", {"in"});
  return topology;
}

}  // namespace

TEST_CASE("node names must be unique", "[unit][validation]") {
  Topology topology = with_source();
  CHECK_THROWS_AS(topology.add_processor("src", pass(), {"src"}), TopologyError);
  CHECK_THROWS_WITH(topology.add_processor("src", pass(), {"src"}),
                    "processor 'src': the name is already used by source 'src'");
  topology.add_processor("p", pass(), {"src"});
  CHECK_THROWS_WITH((topology.add_sink<std::string, std::string>("p", "out", {"src"})),
                    Contains("sink 'p'") && Contains("processor 'p'"));

  StreamsBuilder builder;
  auto stream = builder.stream("in", serdes::string(), serdes::string());
  stream.peek([](const std::string&, const std::string&) {}, "look");
  CHECK_THROWS_WITH(stream.filter([](const std::string&) { return true; }, "look"),
                    Contains("processor 'look'") && Contains("already used"));
}

TEST_CASE("a parent must exist", "[unit][validation]") {
  Topology topology = with_source();
  topology.add_processor("p", pass(), {"src", "nowhere"});
  CHECK_THROWS_WITH(topology.build(), "processor 'p' has unknown parent 'nowhere'");
  CHECK_FALSE(topology.built());
}

TEST_CASE("a processor needs a parent", "[unit][validation]") {
  Topology topology = with_source();
  topology.add_processor("orphan", pass(), {});
  CHECK_THROWS_WITH(topology.build(), "processor 'orphan' has no parent");
}

TEST_CASE("cycles are refused", "[unit][validation]") {
  Topology topology = with_source();
  // "a" names "c" as a parent before "c" exists: a -> b -> c -> a.
  topology.add_processor("a", pass(), {"src", "c"})
      .add_processor("b", pass(), {"a"})
      .add_processor("c", pass(), {"b"})
      .add_sink<std::string, std::string>("sink", "out", {"c"});
  CHECK_THROWS_WITH(topology.build(), "processor 'a' is part of a cycle");

  Topology self_loop = with_source();
  self_loop.add_processor("loop", pass(), {"src", "loop"});
  CHECK_THROWS_WITH(self_loop.build(), "processor 'loop' is part of a cycle");
}

TEST_CASE("sources need topics and sinks need a topic", "[unit][validation]") {
  SECTION("source") {
    Topology topology;
    topology.add_source<std::string, std::string>("reader", {});
    CHECK_THROWS_WITH(topology.build(), "source 'reader' has no topics to read");
  }
  SECTION("source with an empty topic name") {
    Topology topology;
    topology.add_source<std::string, std::string>("reader", {"in", ""});
    CHECK_THROWS_WITH(topology.build(), "source 'reader' has an empty topic name");
  }
  SECTION("sink") {
    Topology topology = with_source();
    topology.add_sink<std::string, std::string>("writer", "", {"src"});
    CHECK_THROWS_WITH(topology.build(), "sink 'writer' has no topic to write");
  }
}

TEST_CASE("a topic is read by one source only", "[unit][validation]") {
  Topology topology = with_source();
  topology.add_source<std::string, std::string>("other", {"elsewhere", "in"});
  CHECK_THROWS_WITH(topology.build(),
                    "source 'other' reads topic 'in', which source 'src' already reads");

  StreamsBuilder builder;
  builder.stream("in", serdes::string(), serdes::string());
  builder.stream("in", serdes::string(), serdes::string());
  CHECK_THROWS_WITH(builder.build(), Contains("source 'KSTREAM-SOURCE-0000000001'") &&
                                         Contains("which source 'KSTREAM-SOURCE-0000000000'"));
}

TEST_CASE("a child must take the record type its parent forwards", "[unit][validation]") {
  Topology topology = with_source();
  topology.add_processor("lengths", [] { return std::make_unique<Length>(); }, {"src"});
  CHECK_THROWS_WITH(topology.build(),
                    "processor 'lengths' takes Record<std::string, long> but its parent "
                    "source 'src' forwards Record<std::string, std::string>");

  Topology sink_types = with_source();
  sink_types.add_sink<std::string, int64_t>("sink", "out", {"src"});
  CHECK_THROWS_WITH(sink_types.build(), Contains("sink 'sink' takes Record<std::string, long>"));
}

TEST_CASE("a sink cannot be a parent", "[unit][validation]") {
  Topology topology = with_source();
  topology.add_sink<std::string, std::string>("sink", "out", {"src"})
      .add_processor("after", pass(), {"sink"});
  CHECK_THROWS_WITH(topology.build(),
                    "processor 'after' has parent sink 'sink', but a sink cannot have children");
}

TEST_CASE("types without a default serde need one where records become bytes",
          "[unit][validation]") {
  auto to_point = [](const std::string& value) { return Point{static_cast<int>(value.size()), 0}; };

  SECTION("a sink") {
    StreamsBuilder builder;
    builder.stream("in", serdes::string(), serdes::string()).map_values(to_point).to("out");
    CHECK_THROWS_WITH(builder.build(), Contains("sink 'KSTREAM-SINK-0000000002': no value serde") &&
                                           Contains("Point"));
  }
  SECTION("a key") {
    StreamsBuilder builder;
    builder.stream("in", serdes::string(), serdes::string())
        .select_key([](const std::string&, const std::string&) { return Point{}; })
        .to("out", {.name = "points"});
    CHECK_THROWS_WITH(builder.build(),
                      Contains("sink 'points': no key serde for type") && Contains("Point"));
  }
  SECTION("a repartition topic") {
    StreamsBuilder builder;
    builder.stream("in", serdes::string(), serdes::string())
        .map_values(to_point)
        .repartition({.name = "points"})
        .foreach ([](const std::string&, const Point&) {});
    CHECK_THROWS_WITH(builder.build(), Contains("sink 'points-repartition-sink': no value serde") &&
                                           Contains("Point"));
  }
  SECTION("a source") {
    Topology topology;
    topology.add_source<std::string, Point>("points", {"in"});
    CHECK_THROWS_WITH(topology.build(),
                      Contains("source 'points': no value serde for type") && Contains("Point"));
  }
  SECTION("a stream that never leaves the process needs none") {
    StreamsBuilder builder;
    builder.stream("in", serdes::string(), serdes::string())
        .map_values(to_point)
        .foreach ([](const std::string&, const Point&) {});
    CHECK_NOTHROW(builder.build());
  }
  SECTION("an explicit serde is enough") {
    StreamsBuilder builder;
    builder.stream("in", serdes::string(), serdes::string())
        .map_values(to_point)
        .to("out", {.value_serde = serdes::json<Point>()});
    TopologyTestDriver driver(builder.build());
    auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
    in.pipe_input("k", "abc");
    auto written = driver.read_raw("out");
    REQUIRE(written.has_value());
    CHECK(nlohmann::json::parse(written->value.value()) == nlohmann::json{{"x", 3}, {"y", 0}});
  }
}

TEST_CASE("a PostgreSQL sink must declare its table whole and its key's columns",
          "[unit][validation][postgres]") {
  StreamsBuilder builder;
  auto stream = builder.stream<std::string, std::string>(std::string("in"));
  PostgresTable table;
  table.connection = "postgresql://localhost/db";
  table.table = "t";
  CHECK_THROWS_WITH(stream.to_postgres("rows", table),
                    "to_postgres 'rows': no key column: the rows are upserted by key");
  table.key_columns = {{"id"}};
  table.value_columns = {{"id"}};
  CHECK_THROWS_WITH(stream.to_postgres("rows", table),
                    "to_postgres 'rows': column 'id' appears twice");
  table.value_columns = {{"text"}};
  table.connections = 0;
  CHECK_THROWS_WITH(stream.to_postgres("rows", table),
                    "to_postgres 'rows': connections must be at least 1");
  table.connections = 2;
  table.connection.clear();
  CHECK_THROWS_WITH(stream.to_postgres("rows", table), "to_postgres 'rows': no connection string");
  table.connection = "postgresql://localhost/db";
  stream.to_postgres("rows", table);
  CHECK_THROWS_WITH(stream.to_postgres("rows", table),
                    Contains("a PostgreSQL sink of that name exists already"));
  struct Point {
    int x = 0;
  };
  auto points = builder.stream<std::string, Point>(
      std::string("points"), Consumed<std::string, Point>{serdes::string(), nullptr});
  CHECK_THROWS_WITH(points.to_postgres("points", table),
                    Contains("the value type has no text of its own; give value_columns"));
}

TEST_CASE("a built topology cannot change and an empty one cannot build", "[unit][validation]") {
  Topology empty;
  CHECK_THROWS_WITH(empty.build(), "the topology has no nodes");
  CHECK_THROWS_WITH(empty.describe(), Contains("call build()"));

  Topology topology = with_source();
  topology.build();
  CHECK_NOTHROW(topology.build());
  CHECK_THROWS_WITH(topology.add_processor("late", pass(), {"src"}), Contains("already built"));
  CHECK_THROWS_WITH(topology.node("nope"), "no node named 'nope'");
}

namespace {

StreamsConfig valid_config() {
  return StreamsConfig{{"application.id", "app"}, {"bootstrap.servers", "localhost:9092"}};
}

}  // namespace

TEST_CASE("StreamsConfig names the key at fault", "[unit][validation][config]") {
  CHECK_NOTHROW(valid_config().validate());

  SECTION("an enum value that is not allowed") {
    auto config = valid_config().set("processing.guarantee", "exactly_once");
    CHECK_THROWS_AS(config.validate(), ConfigError);
    CHECK_THROWS_WITH(config.validate(),
                      "config 'processing.guarantee': invalid value "
                      "'exactly_once', expected one of at_least_once "
                      "exactly_once_v2");
    CHECK_THROWS_WITH(valid_config().set("deserialization.exception.handler", "ignore").validate(),
                      Contains("'deserialization.exception.handler'") && Contains("'ignore'") &&
                          Contains("log-and-continue"));
  }
  SECTION("a missing or empty application.id") {
    StreamsConfig config{{"bootstrap.servers", "localhost:9092"}};
    CHECK_THROWS_WITH(config.validate(), "config 'application.id' is required");
    CHECK_THROWS_WITH(config.get_string("application.id"), "config 'application.id' is required");
    CHECK_THROWS_WITH(valid_config().set("application.id", "").validate(),
                      "config 'application.id' must not be empty");
  }
  SECTION("a dead-letter handler without a topic") {
    auto config = valid_config().set("processing.exception.handler", "dead-letter");
    CHECK_THROWS_WITH(config.validate(),
                      Contains("'errors.dead.letter.queue.topic.name'") && Contains("dead-letter"));
    CHECK_NOTHROW(config.set("errors.dead.letter.queue.topic.name", "dlq").validate());
  }
  SECTION("numbers") {
    CHECK_THROWS_WITH(valid_config().set("num.stream.threads", "two").validate(),
                      "config 'num.stream.threads': invalid value 'two', expected an integer");
    CHECK_THROWS_WITH(valid_config().set("num.stream.threads", "0").validate(),
                      "config 'num.stream.threads': invalid value '0', expected an integer from "
                      "1 to 1024");
    CHECK_THROWS_WITH(valid_config().set("commit.interval.ms", "-5").validate(),
                      Contains("'commit.interval.ms'") && Contains("from 0 to 2147483647"));
    // Beyond what librdkafka's int milliseconds hold: refused, not wrapped
    // into a negative timeout.
    CHECK_THROWS_WITH(valid_config().set("source.topic.wait.ms", "4294967296").validate(),
                      Contains("'source.topic.wait.ms'") && Contains("from 0 to 2147483647"));
    CHECK_THROWS_WITH(valid_config().set("replication.factor", "65539").validate(),
                      Contains("from -1 to 32767"));
    CHECK_NOTHROW(valid_config().set("replication.factor", "-1").validate());
    CHECK_THROWS_WITH(valid_config().set("num.stream.threads", "100000000").validate(),
                      Contains("'num.stream.threads'"));
    CHECK(valid_config().get_duration("commit.interval.ms") == std::chrono::milliseconds(30000));
    CHECK(valid_config()
              .set("processing.guarantee", "exactly_once_v2")
              .get_int("commit.interval.ms") == 100);
  }
}

TEST_CASE("StreamsConfig hands other keys to librdkafka and hides secrets",
          "[unit][validation][config]") {
  auto config = valid_config()
                    .set("linger.ms", "5")
                    .set("consumer.fetch.min.bytes", "10")
                    .set("producer.linger.ms", "20")
                    .set("sasl.password", "hunter2");
  CHECK_NOTHROW(config.validate());
  auto producer = config.client_properties("producer");
  CHECK(producer.at("linger.ms") == "20");
  CHECK_FALSE(producer.contains("fetch.min.bytes"));
  CHECK_FALSE(producer.contains("application.id"));
  auto consumer = config.client_properties("consumer");
  CHECK(consumer.at("linger.ms") == "5");
  CHECK(consumer.at("fetch.min.bytes") == "10");
  const std::string logged = config.to_log_string();
  CHECK_THAT(logged, Contains("sasl.password=*****") && Contains("application.id=app"));
  CHECK_THAT(logged, !Contains("hunter2"));
}

TEST_CASE("topic. keys configure internal topics and reach no client",
          "[unit][validation][config]") {
  StreamsConfig config{{"application.id", "app"},
                       {"bootstrap.servers", "b:9092"},
                       {"topic.min.insync.replicas", "2"},
                       {"topic.segment.bytes", "1048576"}};
  CHECK_NOTHROW(config.validate());
  CHECK(config.topic_configs() == std::map<std::string, std::string>{{"min.insync.replicas", "2"},
                                                                     {"segment.bytes", "1048576"}});
  for (const char* client : {"producer", "consumer", "admin"}) {
    auto properties = config.client_properties(client);
    CHECK_FALSE(properties.contains("topic.min.insync.replicas"));
    CHECK_FALSE(properties.contains("min.insync.replicas"));
  }
  config.set("topic.cleanup.policy", "delete");
  CHECK_THROWS_WITH(config.validate(), Contains("topic.cleanup.policy"));
}

TEST_CASE("task.timeout.ms is a duration with Kafka Streams' default",
          "[unit][validation][config]") {
  StreamsConfig config{{"application.id", "app"}, {"bootstrap.servers", "b:9092"}};
  CHECK(config.get_duration(config::kTaskTimeoutMs) == std::chrono::minutes(5));
  config.set("task.timeout.ms", "soon");
  CHECK_THROWS_WITH(config.validate(), Contains("task.timeout.ms"));
}

TEST_CASE("the test driver validates its configuration", "[unit][validation][config]") {
  auto run = [](StreamsConfig config) {
    StreamsBuilder builder;
    builder.stream("in", serdes::string(), serdes::string()).to("out");
    TopologyTestDriver driver(builder.build(), std::move(config));
  };
  StreamsConfig dead_letter_without_topic;
  dead_letter_without_topic.set("deserialization.exception.handler", "dead-letter");
  CHECK_THROWS_AS(run(dead_letter_without_topic), ConfigError);
  StreamsConfig unknown_handler;
  unknown_handler.set("processing.exception.handler", "retry");
  CHECK_THROWS_WITH(run(unknown_handler),
                    Contains("'processing.exception.handler'") && Contains("'retry'"));
  CHECK_NOTHROW(run(StreamsConfig()));
}

TEST_CASE("a list setting reads as its entries, spaces trimmed and empty ones left out",
          "[unit][validation][config]") {
  StreamsConfig config{{"application.id", "app"}, {"bootstrap.servers", "b:9092"}};
  CHECK(config.get_list(config::kArchiveTopics).empty());
  config.set("archive.topics", " orders, payments ,,*, ");
  CHECK(config.get_list(config::kArchiveTopics) ==
        std::vector<std::string>{"orders", "payments", "*"});
  config.set("archive.topics", "orders");
  CHECK(config.get_list(config::kArchiveTopics) == std::vector<std::string>{"orders"});
  config.set("archive.topics", " , ");
  CHECK(config.get_list(config::kArchiveTopics).empty());
}
