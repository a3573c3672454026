// What the configured exception handlers do with records that cannot be
// deserialized or processed: skip and count, fail naming the record, or write
// the original bytes to the dead-letter topic.
#include "runtime/error_handling.h"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/streams_builder.h"
#include "rill/test_driver.h"

#include "kafka/producer.h"
#include "runtime/producer_collector.h"
#include "state/logging_stores.h"

using namespace rill;
using Catch::Contains;

namespace {

using LengthKV = KeyValue<std::string, int64_t>;

// in (string, int64) -> out (string, int64): the int64 serde refuses values
// that are not 8 bytes long.
Topology read_int64() {
  StreamsBuilder builder;
  builder.stream("in", serdes::string(), serdes::int64()).to("out");
  return builder.build();
}

// in (string, string) -> map_values(length, throwing for "bad") -> out
Topology throwing_map_values() {
  StreamsBuilder builder;
  builder.stream("in", serdes::string(), serdes::string())
      .map_values([](const std::string& value) {
        if (value == "bad") throw std::runtime_error("cannot measure 'bad'");
        return static_cast<int64_t>(value.size());
      })
      .to("out");
  return builder.build();
}

std::string int64_bytes(int64_t value) {
  std::string out;
  serdes::int64()->serialize(value, out);
  return out;
}

CapturedRecord raw(std::optional<std::string> key, std::optional<std::string> value,
                   int64_t timestamp = 0, Headers headers = {}) {
  CapturedRecord record;
  record.key = std::move(key);
  record.value = std::move(value);
  record.timestamp = timestamp;
  record.headers = std::move(headers);
  return record;
}

std::optional<std::string> header(const CapturedRecord& record, std::string_view key) {
  const Header* found = record.headers.last(key);
  return found == nullptr ? std::nullopt : found->value;
}

Headers origin_headers() {
  Headers headers;
  headers.add("origin", "sensor-7");
  return headers;
}

}  // namespace

TEST_CASE("deserialization errors: log-and-continue skips and counts", "[unit][errors]") {
  TopologyTestDriver driver(read_int64(),
                            {{"deserialization.exception.handler", "log-and-continue"}});
  auto out = driver.create_output_topic("out", serdes::string(), serdes::int64());

  driver.pipe_raw("in", raw("a", int64_bytes(1)));
  driver.pipe_raw("in", raw("b", "abc"));
  driver.pipe_raw("in", raw("c", std::nullopt));
  driver.pipe_raw("in", raw("d", int64_bytes(4)));

  CHECK(driver.skipped_records() == 2);
  CHECK(driver.dead_lettered_records() == 0);
  CHECK(out.read_key_values_to_list() == std::vector<LengthKV>{{"a", 1}, {"d", 4}});
}

TEST_CASE("deserialization errors: log-and-fail names topic, partition and offset",
          "[unit][errors]") {
  // log-and-fail is the default.
  TopologyTestDriver driver(read_int64());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::int64());
  driver.pipe_raw("in", raw("a", int64_bytes(1)));

  CHECK_THROWS_AS(driver.pipe_raw("in", raw("b", "abc")), runtime::FatalError);
  CHECK_THROWS_WITH(
      driver.pipe_raw("in", raw("b", "abcd")),
      Contains("deserialization error at topic in, partition 0, offset 2") &&
          Contains("cannot deserialize value in source 'KSTREAM-SOURCE-0000000000'") &&
          Contains("int64: expected 8 bytes, got 4"));
  CHECK(driver.skipped_records() == 0);
  CHECK(out.read_key_values_to_list() == std::vector<LengthKV>{{"a", 1}});
}

TEST_CASE("deserialization errors in the key name the key", "[unit][errors]") {
  StreamsBuilder builder;
  builder.stream("in", serdes::int32(), serdes::string()).to("out");
  TopologyTestDriver driver(builder.build(),
                            {{"deserialization.exception.handler", "log-and-fail"}});
  CHECK_THROWS_WITH(driver.pipe_raw("in", raw("xy", "value")),
                    Contains("offset 0") && Contains("cannot deserialize key in source"));
}

TEST_CASE("deserialization errors: dead-letter writes the original record", "[unit][errors]") {
  TopologyTestDriver driver(read_int64(), {{"deserialization.exception.handler", "dead-letter"},
                                           {"errors.dead.letter.queue.topic.name", "dlq"}});
  auto out = driver.create_output_topic("out", serdes::string(), serdes::int64());

  driver.pipe_raw("in", raw("a", int64_bytes(1)));
  driver.pipe_raw("in", raw("b", "abc", 1234, origin_headers()));
  driver.pipe_raw("in", raw(std::nullopt, int64_bytes(3)));

  CHECK(driver.dead_lettered_records() == 1);
  CHECK(driver.skipped_records() == 0);
  CHECK(out.read_key_values_to_list() == std::vector<LengthKV>{{"a", 1}, {"", 3}});

  auto dead = driver.read_raw("dlq");
  REQUIRE(dead.has_value());
  CHECK(dead->key == "b");
  CHECK(dead->value == "abc");
  CHECK(dead->timestamp == 1234);
  CHECK(header(*dead, "origin") == "sensor-7");
  CHECK(header(*dead, "__streams.errors.exception") == "DeserializationError");
  auto message = header(*dead, "__streams.errors.message");
  REQUIRE(message.has_value());
  CHECK_THAT(*message, Contains("cannot deserialize value in source 'KSTREAM-SOURCE-0000000000'") &&
                           Contains("expected 8 bytes, got 3"));
  CHECK(header(*dead, "__streams.errors.topic") == "in");
  CHECK(header(*dead, "__streams.errors.partition") == "0");
  CHECK(header(*dead, "__streams.errors.offset") == "1");
  CHECK(driver.queue_size("dlq") == 0);
}

TEST_CASE("dead-letter keeps null keys and values null", "[unit][errors]") {
  TopologyTestDriver driver(read_int64(), {{"deserialization.exception.handler", "dead-letter"},
                                           {"errors.dead.letter.queue.topic.name", "dlq"}});
  driver.pipe_raw("in", raw(std::nullopt, std::nullopt));
  auto dead = driver.read_raw("dlq");
  REQUIRE(dead.has_value());
  CHECK_FALSE(dead->key.has_value());
  CHECK_FALSE(dead->value.has_value());
  CHECK_THAT(header(*dead, "__streams.errors.message").value_or(""), Contains("null"));
}

TEST_CASE("processing errors: log-and-continue skips and counts", "[unit][errors]") {
  TopologyTestDriver driver(throwing_map_values(),
                            {{"processing.exception.handler", "log-and-continue"}});
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::int64());
  in.pipe_input("a", "one");
  in.pipe_input("b", "bad");
  in.pipe_input("c", "three");

  CHECK(driver.skipped_records() == 1);
  CHECK(driver.dead_lettered_records() == 0);
  CHECK(out.read_key_values_to_list() == std::vector<LengthKV>{{"a", 3}, {"c", 5}});
}

TEST_CASE("processing errors: log-and-fail names topic, partition and offset", "[unit][errors]") {
  TopologyTestDriver driver(throwing_map_values());
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  in.pipe_input("a", "one");
  CHECK_THROWS_WITH(in.pipe_input("b", "bad"),
                    Contains("processing error at topic in, partition 0, offset 1") &&
                        Contains("cannot measure 'bad'"));
  CHECK(driver.skipped_records() == 0);
}

TEST_CASE("processing errors: dead-letter writes the original record", "[unit][errors]") {
  TopologyTestDriver driver(throwing_map_values(),
                            {{"processing.exception.handler", "dead-letter"},
                             {"errors.dead.letter.queue.topic.name", "dlq"}});
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("out", serdes::string(), serdes::int64());
  in.pipe_input("a", "one");
  in.pipe_input("b", "bad", 99, origin_headers());
  in.pipe_input("c", "three");

  CHECK(driver.dead_lettered_records() == 1);
  CHECK(driver.skipped_records() == 0);
  CHECK(out.read_key_values_to_list() == std::vector<LengthKV>{{"a", 3}, {"c", 5}});

  auto dead = driver.read_raw("dlq");
  REQUIRE(dead.has_value());
  CHECK(dead->key == "b");
  CHECK(dead->value == "bad");
  CHECK(dead->timestamp == 99);
  CHECK(header(*dead, "origin") == "sensor-7");
  CHECK(header(*dead, "__streams.errors.exception") == "std::runtime_error");
  CHECK(header(*dead, "__streams.errors.message") == "cannot measure 'bad'");
  CHECK(header(*dead, "__streams.errors.topic") == "in");
  CHECK(header(*dead, "__streams.errors.partition") == "0");
  CHECK(header(*dead, "__streams.errors.offset") == "1");
  CHECK_FALSE(driver.read_raw("dlq").has_value());
}

TEST_CASE("a dead-letter topic also receives records before log-and-fail stops", "[unit][errors]") {
  // As KIP-1034: with a dead-letter topic set, every handler writes to it.
  TopologyTestDriver driver(throwing_map_values(),
                            {{"errors.dead.letter.queue.topic.name", "dlq"}});
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  CHECK_THROWS_WITH(in.pipe_input("b", "bad"), Contains("offset 0"));
  CHECK(driver.dead_lettered_records() == 1);
  auto dead = driver.read_raw("dlq");
  REQUIRE(dead.has_value());
  CHECK(dead->value == "bad");
}

TEST_CASE("errors after a repartition name the repartition topic", "[unit][errors]") {
  StreamsBuilder builder;
  builder.stream("in", serdes::string(), serdes::string())
      .select_key([](const std::string&, const std::string& value) { return value; })
      .repartition({.name = "by-value"})
      .peek([](const std::string& key, const std::string&) {
        if (key == "bad") throw std::invalid_argument("bad key");
      })
      .to("out");
  TopologyTestDriver driver(builder.build(), {{"application.id", "app"},
                                              {"processing.exception.handler", "dead-letter"},
                                              {"errors.dead.letter.queue.topic.name", "dlq"}});
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  in.pipe_input("k", "good");
  in.pipe_input("k", "bad");

  CHECK(driver.create_output_topic("out", serdes::string(), serdes::string())
            .read_key_values_to_list() ==
        std::vector<KeyValue<std::string, std::string>>{{"good", "good"}});
  auto dead = driver.read_raw("dlq");
  REQUIRE(dead.has_value());
  CHECK(dead->key == "bad");
  CHECK(header(*dead, "__streams.errors.exception") == "std::invalid_argument");
  CHECK(header(*dead, "__streams.errors.topic") == "app-by-value-repartition");
  CHECK(header(*dead, "__streams.errors.offset") == "1");
}

// A producer with no broker behind it, for delivery reports the tests make up.
static kafka::KafkaPtr unconnected_producer() {
  return kafka::make_client(RD_KAFKA_PRODUCER, kafka::make_conf({{"log_level", "3"}}));
}

// What the broker refuses, sorted for the commit protocol: a refusal the
// cluster caused rewinds to the last commit; a refusal of the record stops.
TEST_CASE(
    "a record refused for a topic or partition the metadata lacks rewinds, a bad record stops",
    "[unit][errors]") {
  // No broker: delivery reports are made up below.
  const kafka::KafkaPtr producer = unconnected_producer();
  const kafka::TopicPtr topic = kafka::open_topic(producer.get(), "out");
  auto refused = [&](rd_kafka_resp_err_t err) {
    rd_kafka_message_t message{};
    message.err = err;
    message.rkt = topic.get();
    return message;
  };

  runtime::DeliveryTracker tracker(runtime::DeliveryPolicy{});
  // A broker that restarted, or has not heard of a topic just created,
  // answers without it for a while.
  for (auto err : {RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION, RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC,
                   RD_KAFKA_RESP_ERR__MSG_TIMED_OUT}) {
    tracker.on_delivery(refused(err));
    CHECK_THAT(tracker.take_rewind_reason(), Contains("topic out"));
    CHECK(tracker.fatal_error().empty());
  }
  tracker.on_delivery(refused(RD_KAFKA_RESP_ERR_INVALID_RECORD));
  CHECK(tracker.take_rewind_reason().empty());
  CHECK_THAT(tracker.fatal_error(), Contains("topic out"));
}

// A producer replaced after a fault, or closed, reports what it still held as
// destroyed; those outputs are past the last commit and produced again.
TEST_CASE("a record in flight when its producer is destroyed neither stops nor rewinds",
          "[unit][errors]") {
  const kafka::KafkaPtr producer = unconnected_producer();
  const kafka::TopicPtr topic = kafka::open_topic(producer.get(), "out");
  rd_kafka_message_t destroyed{};
  destroyed.err = RD_KAFKA_RESP_ERR__DESTROY;
  destroyed.rkt = topic.get();

  for (const bool skip_refused_records : {false, true}) {
    runtime::DeliveryTracker tracker(
        runtime::DeliveryPolicy{.skip_refused_records = skip_refused_records});
    tracker.on_delivery(destroyed);
    CHECK(tracker.fatal_error().empty());
    CHECK(tracker.take_rewind_reason().empty());
    CHECK(tracker.skipped() == 0);
  }
}

// An idempotent producer (at-least-once) whose epoch librdkafka bumped after a
// broker stopped answering has its older requests refused with
// INVALID_PRODUCER_EPOCH: those records are lost, and a commit past them would
// lose their inputs. A transactional producer's refused records belong to a
// transaction that is aborted and redone.
TEST_CASE("a record refused to an older producer epoch rewinds under at-least-once only",
          "[unit][errors]") {
  const kafka::KafkaPtr producer = unconnected_producer();
  const kafka::TopicPtr topic = kafka::open_topic(producer.get(), "out");
  for (const auto err : {RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH,
                         RD_KAFKA_RESP_ERR_PRODUCER_FENCED, RD_KAFKA_RESP_ERR__FENCED}) {
    rd_kafka_message_t refused{};
    refused.err = err;
    refused.rkt = topic.get();
    INFO(rd_kafka_err2name(err));

    runtime::DeliveryTracker idempotent(runtime::DeliveryPolicy{});
    idempotent.on_delivery(refused);
    CHECK_THAT(idempotent.take_rewind_reason(), Contains("topic out"));
    CHECK(idempotent.fatal_error().empty());

    runtime::DeliveryTracker transactional(runtime::DeliveryPolicy{.transactional = true});
    transactional.on_delivery(refused);
    CHECK(transactional.take_rewind_reason().empty());
    CHECK(transactional.fatal_error().empty());
  }
}

// An unclean close (a failed commit, lost partitions) drops a task while its
// changelog records are still in flight; their acknowledgements arrive later.
TEST_CASE("a changelog record acknowledged after its task closed counts for the next one",
          "[unit][errors]") {
  const kafka::KafkaPtr producer = unconnected_producer();
  runtime::DeliveryTracker tracker(runtime::DeliveryPolicy{});

  // The task writes through its collector and closes before the broker answers.
  rd_kafka_message_t acknowledged{};
  kafka::TopicPtr changelog_topic;
  {
    runtime::ProducerCollector collector(producer.get(), tracker, std::chrono::seconds(1));
    const int changelog = collector.register_topic("app-counts-changelog");
    state::ChangelogWriter writer(collector, changelog, 3, [] { return int64_t{0}; });
    writer.write("key", std::string_view("value"));
    CHECK(writer.delivered_offset() == -1);
    changelog_topic = kafka::open_topic(producer.get(), "app-counts-changelog");
    acknowledged.rkt = changelog_topic.get();
    acknowledged.partition = 3;
    acknowledged.offset = 41;
    acknowledged._private = &collector.acknowledged_offset(changelog, 3);
  }
  tracker.on_delivery(acknowledged);

  runtime::ProducerCollector reopened(producer.get(), tracker, std::chrono::seconds(1));
  state::ChangelogWriter next(reopened, reopened.register_topic("app-counts-changelog"), 3,
                              [] { return int64_t{0}; });
  CHECK(next.delivered_offset() == 41);
  CHECK(tracker.acknowledged_offset("app-counts-changelog", 2).load() == -1);
}
