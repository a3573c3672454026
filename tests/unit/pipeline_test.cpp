// YAML pipelines run through TopologyTestDriver: each test loads a pipeline
// from text, pipes records into its source topics as bytes and checks what it
// wrote, so the loader, the expressions and the shared operators are tested
// together.
#include "rill/pipeline/pipeline.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/test_driver.h"

using rill::CapturedRecord;
using rill::TopologyTestDriver;
using rill::pipeline::Json;

namespace {

rill::pipeline::Environment environment(std::map<std::string, std::string> variables = {}) {
  return [variables](const std::string& name) -> std::optional<std::string> {
    auto it = variables.find(name);
    if (it == variables.end()) return std::nullopt;
    return it->second;
  };
}

rill::pipeline::Pipeline load(const std::string& yaml,
                              std::map<std::string, std::string> variables = {}) {
  return rill::pipeline::load_text(yaml, "test.yaml", environment(std::move(variables)));
}

// A driver over the pipeline, with its configuration and caching off, so
// that every update is visible at once.
struct Run {
  explicit Run(const std::string& yaml, std::map<std::string, std::string> variables = {})
      : pipeline(load(yaml, std::move(variables))),
        driver(pipeline.topology, with_no_cache(pipeline.config)) {}

  static rill::StreamsConfig with_no_cache(rill::StreamsConfig config) {
    config.set("statestore.cache.max.bytes", "0");
    return config;
  }

  void pipe(const std::string& topic, std::optional<std::string> key,
            std::optional<std::string> value, int64_t timestamp = 1000,
            rill::Headers headers = {}) {
    CapturedRecord record;
    record.key = std::move(key);
    record.value = std::move(value);
    record.timestamp = timestamp;
    record.headers = std::move(headers);
    driver.pipe_raw(topic, record);
  }

  // key and value as text, in order.
  std::vector<std::pair<std::string, std::string>> read(const std::string& topic) {
    std::vector<std::pair<std::string, std::string>> records;
    while (auto record = driver.read_raw(topic))
      records.emplace_back(record->key.value_or("<null>"), record->value.value_or("<null>"));
    return records;
  }

  rill::pipeline::Pipeline pipeline;
  TopologyTestDriver driver;
};

using Records = std::vector<std::pair<std::string, std::string>>;

}  // namespace

TEST_CASE("a word count pipeline counts words", "[unit][pipeline]") {
  Run run(R"(
application:
  application.id: word-count
sources:
  lines: {topic: lines, value_format: string}
flows:
  - from: lines
    steps:
      - flat_map: {split: lower(value)}
      - group_by: value
      - aggregate: {value: count(), name: counts}
      - to: {topic: word-counts, value_format: int64}
)");
  CHECK(run.pipeline.embedded);
  run.pipe("lines", std::nullopt, "The fox  the");
  run.pipe("lines", std::nullopt, "fox");
  const std::string one("\0\0\0\0\0\0\0\1", 8), two("\0\0\0\0\0\0\0\2", 8);
  CHECK(run.read("word-counts") == Records{{"the", one}, {"fox", one}, {"the", two}, {"fox", two}});
  CHECK(run.driver.get_state_store("counts") != nullptr);
}

TEST_CASE("group_by writes keys as other Kafka clients do, JSON only when declared",
          "[unit][pipeline][keys]") {
  auto with_format = [](const std::string& key_format) {
    return R"(
application: {application.id: app}
sources:
  orders: {topic: orders}
flows:
  - from: orders
    steps:
      - group_by: {key: value.customer, name: by-customer)" +
           (key_format.empty() ? "" : ", key_format: " + key_format) + R"(}
      - aggregate: {value: count(), name: counts}
      - to: out
)";
  };

  Run plain(with_format(""));
  plain.pipe("orders", std::nullopt, R"({"customer": "c-7"})");
  plain.pipe("orders", std::nullopt, R"({"customer": 42})");
  // The plain string's bytes, as Kafka's StringSerializer writes it; a number
  // as its text.
  CHECK(plain.read("app-by-customer-repartition") ==
        Records{{"c-7", R"({"customer":"c-7"})"}, {"42", R"({"customer":42})"}});
  CHECK(plain.read("app-counts-changelog").size() == 2);
  CHECK(plain.read("out") == Records{{"c-7", "1"}, {"42", "1"}});

  Run json(with_format("json"));
  json.pipe("orders", std::nullopt, R"({"customer": "c-7"})");
  json.pipe("orders", std::nullopt, R"({"customer": {"id": 7}})");
  CHECK(
      json.read("app-by-customer-repartition") ==
      Records{{R"("c-7")", R"({"customer":"c-7"})"}, {R"({"id":7})", R"({"customer":{"id":7}})"}});
  CHECK(json.read("out") == Records{{"c-7", "1"}, {R"({"id":7})", "1"}});

  // An object key has no plain-string form: the record is a processing error,
  // which the default handler (log-and-fail) stops on.
  Run objects(with_format(""));
  CHECK_THROWS_WITH(
      objects.pipe("orders", std::nullopt, R"({"customer": {"id": 7}})"),
      Catch::Contains("key format string: cannot write the key {\"id\":7}, expected a string or a "
                      "number (declare key_format: json"));
}

TEST_CASE("filter, map and select_key see the value, timestamp and headers", "[unit][pipeline]") {
  Run run(R"(
application: {application.id: orders}
sources:
  orders: {topic: orders, fields: [user, amount, currency]}
flows:
  - from: orders
    steps:
      - filter: value.amount >= 10 and headers.source != "test"
      - map:
          user: upper(value.user)
          cents: value.amount * 100
          at: timestamp
          meta:
            currency: value.currency ?? "EUR"
      - select_key: value.user
      - to: big-orders
)");
  run.pipe("orders", "1", R"({"user":"ada","amount":12})", 5000);
  run.pipe("orders", "2", R"({"user":"bob","amount":3})", 6000);
  run.pipe("orders", "3", R"({"user":"cy","amount":50,"currency":"USD"})", 7000,
           rill::Headers{{"source", "test"}});
  run.pipe("orders", "4", R"({"user":"dan","amount":10,"currency":"USD"})", 8000);
  CHECK(run.read("big-orders") ==
        Records{{"ADA", R"({"at":5000,"cents":1200,"meta":{"currency":"EUR"},"user":"ADA"})"},
                {"DAN", R"({"at":8000,"cents":1000,"meta":{"currency":"USD"},"user":"DAN"})"}});
}

TEST_CASE("branch routes records to streams that later flows read and merge", "[unit][pipeline]") {
  Run run(R"(
application: {application.id: routes}
sources:
  payments: {topic: payments}
flows:
  - from: payments
    steps:
      - branch:
          routes:
            large: value.amount >= 1000
            refunds: value.amount < 0
          default: normal
  - from: large
    steps:
      - map: {value: {amount: value.amount, flagged: true}}
    as: flagged
  - from: [normal, refunds]
    steps:
      - merge: flagged
      - to: reviewed
  - from: refunds
    steps:
      - flat_map: {explode: '[value.amount, -value.amount]'}
      - to: refund-parts
)");
  run.pipe("payments", "a", R"({"amount":5000})");
  run.pipe("payments", "b", R"({"amount":-20})");
  run.pipe("payments", "c", R"({"amount":15})");
  CHECK(run.read("reviewed") == Records{{"a", R"({"amount":5000,"flagged":true})"},
                                        {"b", R"({"amount":-20})"},
                                        {"c", R"({"amount":15})"}});
  CHECK(run.read("refund-parts") == Records{{"b", "-20"}, {"b", "20"}});
}

TEST_CASE("aggregate computes every aggregation function per key", "[unit][pipeline]") {
  Run run(R"(
application: {application.id: stats}
sources:
  sales: {topic: sales}
flows:
  - from: sales
    steps:
      - group_by: value.shop
      - aggregate:
          fields:
            n: count()
            total: sum(value.amount)
            low: min(value.amount)
            high: max(value.amount)
            mean: avg(value.amount)
            first_item: first(value.item)
            last_item: last(value.item)
            items: count_distinct(value.item)
      - to: shop-stats
)");
  run.pipe("sales", std::nullopt, R"({"shop":"s1","amount":10,"item":"tea"})");
  run.pipe("sales", std::nullopt, R"({"shop":"s2","amount":1,"item":"jam"})");
  run.pipe("sales", std::nullopt, R"({"shop":"s1","amount":30,"item":"cake"})");
  run.pipe("sales", std::nullopt, R"({"shop":"s1","amount":null,"item":"tea"})");
  const Records out = run.read("shop-stats");
  REQUIRE(out.size() == 4);
  CHECK(out.back().first == "s1");
  CHECK(Json::parse(out.back().second) == Json::parse(R"({"n":3,"total":40,"low":10,"high":30,
        "mean":20.0,"first_item":"tea","last_item":"tea","items":2})"));
  CHECK(Json::parse(out[1].second)["mean"] == 1.0);
}

TEST_CASE("aggregations read the record's time and headers, per key and per window",
          "[unit][pipeline]") {
  const std::string body = R"(
sources:
  clicks: {topic: clicks}
flows:
  - from: clicks
    steps:
      - group_by: value.user
      - aggregate:
          WINDOW
          fields:
            first_seen: min(timestamp)
            last_seen: max(timestamp)
            traces: count_distinct(headers.trace)
            last_trace: last(headers.trace)
      - to: seen
)";
  const Json expected =
      Json::parse(R"({"first_seen":3000,"last_seen":9000,"traces":2,"last_trace":"t1"})");
  for (const std::string window : {"", "window: {type: tumbling, size: 1m}"}) {
    INFO("window: " << window);
    std::string yaml = "application: {application.id: seen}\n" + body;
    yaml.replace(yaml.find("WINDOW"), 6, window);
    Run run(yaml);
    run.pipe("clicks", std::nullopt, R"({"user":"ada"})", 5000, rill::Headers{{"trace", "t1"}});
    run.pipe("clicks", std::nullopt, R"({"user":"ada"})", 3000, rill::Headers{{"trace", "t2"}});
    run.pipe("clicks", std::nullopt, R"({"user":"ada"})", 9000, rill::Headers{{"trace", "t1"}});
    const Records out = run.read("seen");
    REQUIRE(out.size() == 3);
    CHECK(Json::parse(out.back().second) == expected);
  }
}

TEST_CASE("tumbling windows with grace emit one final result per window", "[unit][pipeline]") {
  Run run(R"(
application: {application.id: views}
sources:
  views:
    topic: page-views
    timestamp: value.at
flows:
  - from: views
    steps:
      - group_by: value.user
      - aggregate:
          window: {type: tumbling, size: 1m, grace: 10s, emit: final}
          value: count()
      - to: views-per-minute
)");
  auto view = [&](const std::string& user, int64_t at) {
    run.pipe("page-views", std::nullopt,
             R"({"user":")" + user + R"(","at":)" + std::to_string(at) + "}", 1);
  };
  view("u1", 0);
  view("u1", 30'000);
  view("u2", 59'999);
  view("u1", 61'000);  // next window; stream time 61s, first window open until 70s
  view("u1", 65'000);  // late but within grace: counted in the first window
  CHECK(run.read("views-per-minute").empty());
  view("u1", 70'000);  // closes [0, 60s)
  view("u1", 5'000);   // too late: the window closed
  CHECK(run.read("views-per-minute") == Records{{R"({"end":60000,"key":"u1","start":0})", "2"},
                                                {R"({"end":60000,"key":"u2","start":0})", "1"}});
  view("u1", 130'000);  // closes [60s, 120s)
  CHECK(run.read("views-per-minute") ==
        Records{{R"({"end":120000,"key":"u1","start":60000})", "3"}});
  CHECK(run.driver.dropped_records() == 1);
}

TEST_CASE("hopping, sliding and session windows emit their changes", "[unit][pipeline]") {
  const std::string head = R"(
application: {application.id: w}
sources:
  clicks: {topic: clicks}
flows:
  - from: clicks
    steps:
      - group_by: key
      - aggregate:
)";
  SECTION("hopping") {
    Run run(head + R"(          window: {type: hopping, size: 10s, advance: 5s}
          value: sum(value.n)
      - to: out
)");
    run.pipe("clicks", "k", R"({"n":1})", 7000);
    CHECK(run.read("out") == Records{{R"({"end":10000,"key":"k","start":0})", "1"},
                                     {R"({"end":15000,"key":"k","start":5000})", "1"}});
  }
  SECTION("session") {
    Run run(head + R"(          window: {type: session, gap: 5s, grace: 10s}
          value: count()
      - to: out
)");
    run.pipe("clicks", "k", "{}", 1000);
    run.pipe("clicks", "k", "{}", 9000);
    run.pipe("clicks", "k", "{}", 5000);  // bridges both sessions
    const Records out = run.read("out");
    INFO(Json(out).dump());
    REQUIRE(!out.empty());
    CHECK(out.back() ==
          std::pair<std::string, std::string>{R"({"end":9000,"key":"k","start":1000})", "3"});
  }
  SECTION("session, final results only") {
    Run run(head + R"(          window: {type: session, gap: 5s, emit: final}
          value: count()
      - to: out
)");
    run.pipe("clicks", "k", "{}", 1000);
    run.pipe("clicks", "k", "{}", 4000);
    CHECK(run.read("out").empty());
    run.pipe("clicks", "k", "{}", 10000);  // stream time passes 4 s + the 5 s gap
    CHECK(run.read("out") == Records{{R"({"end":4000,"key":"k","start":1000})", "2"}});
  }
  SECTION("sliding") {
    Run run(head + R"(          window: {type: sliding, size: 5s}
          value: max(value.n)
      - to: out
)");
    run.pipe("clicks", "k", R"({"n":4})", 10000);
    CHECK(run.read("out") == Records{{R"({"end":10000,"key":"k","start":5000})", "4"}});
  }
}

TEST_CASE("environment variables fill values, with defaults", "[unit][pipeline]") {
  const std::string yaml = R"(
application:
  application.id: ${APP_ID}
  bootstrap.servers: ${BOOTSTRAP:-embedded}
  sasl.password: ${PASSWORD:-}
sources:
  in: {topic: "${PREFIX:-dev}-input"}
flows:
  - from: in
    steps:
      - filter: value.n > ${THRESHOLD:-10}
      - to: "${PREFIX:-dev}-output"
)";
  auto pipeline = load(
      yaml,
      {{"APP_ID", "env-app"}, {"PREFIX", "prod"}, {"THRESHOLD", "1"}, {"PASSWORD", "hunter2"}});
  CHECK(pipeline.config.get_string("application.id") == "env-app");
  CHECK(pipeline.embedded);
  CHECK(pipeline.config.to_log_string().find("hunter2") == std::string::npos);
  REQUIRE(pipeline.topics.size() == 2);
  CHECK(pipeline.topics[0].topic == "prod-input");
  CHECK(pipeline.topics[1].topic == "prod-output");
  TopologyTestDriver driver(pipeline.topology, pipeline.config);
  CapturedRecord record;
  record.value = R"({"n":2})";
  driver.pipe_raw("prod-input", record);
  CHECK(driver.queue_size("prod-output") == 1);

  auto with_broker = load(yaml, {{"APP_ID", "a"}, {"BOOTSTRAP", "broker:9092"}});
  CHECK_FALSE(with_broker.embedded);
  CHECK(with_broker.config.get_string("bootstrap.servers") == "broker:9092");
}

TEST_CASE("poison records go to the configured handler", "[unit][pipeline]") {
  const std::string body = R"(
sources:
  in: {topic: in}
flows:
  - from: in
    steps:
      - map: {doubled: value.n * 2}
      - to: out
)";
  SECTION("malformed JSON goes to the dead-letter topic") {
    Run run(R"(
application:
  application.id: dlq
  deserialization.exception.handler: dead-letter
  errors.dead.letter.queue.topic.name: in-dead-letters
)" + body);
    run.pipe("in", "a", "{not json");
    run.pipe("in", "b", R"({"n":2})");
    CHECK(run.read("in-dead-letters") == Records{{"a", "{not json"}});
    CHECK(run.read("out") == Records{{"b", R"({"doubled":4})"}});
    CHECK(run.driver.dead_lettered_records() == 1);
  }
  SECTION("an expression failing on a record is a processing error") {
    Run run(R"(
application:
  application.id: skip
  processing.exception.handler: log-and-continue
)" + body);
    run.pipe("in", "a", R"({"n":"two"})");
    run.pipe("in", "b", R"({"n":3})");
    CHECK(run.read("out") == Records{{"b", R"({"doubled":6})"}});
    CHECK(run.driver.skipped_records() == 1);
  }
  SECTION("an event time that is not a number is a processing error") {
    Run run(R"(
application:
  application.id: times
  processing.exception.handler: dead-letter
  errors.dead.letter.queue.topic.name: bad-times
sources:
  in: {topic: in, timestamp: value.at}
flows:
  - from: in
    steps:
      - to: out
)");
    run.pipe("in", "a", R"({"at":"yesterday"})");
    run.pipe("in", "b", R"({"at":5})");
    CHECK(run.read("bad-times") == Records{{"a", R"({"at":"yesterday"})"}});
    CHECK(run.read("out") == Records{{"b", R"({"at":5})"}});
  }
  SECTION("a source's on_error decides for bad event times, whatever the handler says") {
    auto run_with = [](const std::string& on_error) {
      return std::make_unique<Run>(R"(
application:
  application.id: chosen
  processing.exception.handler: log-and-fail
  errors.dead.letter.queue.topic.name: bad-times
sources:
  in:
    topic: in
    timestamp: {expression: value.at, on_error: )" +
                                   on_error + R"(}
flows:
  - from: in
    steps:
      - to: out
)");
    };
    auto pipe_three = [](Run& run) {
      run.pipe("in", "a", R"({"at":"yesterday"})", 1000);
      run.pipe("in", "b", R"([{"at":7}])", 2000);
      run.pipe("in", "c", R"({"at":5})", 3000);
    };
    {
      auto run = run_with("dead_letter");
      pipe_three(*run);
      CHECK(run->read("bad-times") ==
            Records{{"a", R"({"at":"yesterday"})"}, {"b", R"([{"at":7}])"}});
      CHECK(run->read("out") == Records{{"c", R"({"at":5})"}});
    }
    {
      auto run = run_with("record_time");
      pipe_three(*run);
      std::vector<int64_t> times;
      while (auto record = run->driver.read_raw("out")) times.push_back(record->timestamp);
      CHECK(times == std::vector<int64_t>{1000, 2000, 5});
    }
    {
      auto run = run_with("skip");
      pipe_three(*run);
      CHECK(run->read("out") == Records{{"c", R"({"at":5})"}});
      CHECK(run->read("bad-times").empty());
      CHECK(run->driver.skipped_records() == 2);
    }
    {
      auto run = run_with("fail");
      CHECK_THROWS_WITH(run->pipe("in", "a", R"({"at":"yesterday"})"),
                        Catch::Contains("timestamp 'value.at' gave \"yesterday\""));
    }
  }
  SECTION("integer overflow and event times beyond 64 bits are processing errors") {
    Run run(R"(
application:
  application.id: extremes
  processing.exception.handler: dead-letter
  errors.dead.letter.queue.topic.name: dead
sources:
  in: {topic: in, timestamp: value.at}
flows:
  - from: in
    steps:
      - map: {rest: value.n % -1, negated: -value.n}
      - to: out
)");
    run.pipe("in", "a", R"({"at":1e300,"n":1})");
    run.pipe("in", "b", R"({"at":5,"n":-9223372036854775808})");
    run.pipe("in", "c", R"({"at":5,"n":7})");
    CHECK(run.read("dead") ==
          Records{{"a", R"({"at":1e300,"n":1})"}, {"b", R"({"at":5,"n":-9223372036854775808})"}});
    CHECK(run.read("out") == Records{{"c", R"({"negated":-7,"rest":0})"}});
  }
  SECTION("a sum over unsigned integers beyond 64 signed bits is a double, not a wrapped sum") {
    Run run(R"(
application: {application.id: big-sums}
sources:
  in: {topic: in}
flows:
  - from: in
    steps:
      - group_by: key
      - aggregate: {name: totals, value: sum(value.n)}
      - to: out
)");
    run.pipe("in", "k", R"({"n":18446744073709551615})");
    run.pipe("in", "k", R"({"n":1})");
    const Records out = run.read("out");
    REQUIRE(out.size() == 2);
    // A wrapped sum reads -1 and then 0.
    CHECK(Json::parse(out[0].second).get<double>() == 18446744073709551615.0);
    CHECK(Json::parse(out[1].second).get<double>() == 18446744073709551616.0);
  }
  SECTION("log-and-fail stops on it") {
    Run run(R"(
application: {application.id: fail}
)" + body);
    CHECK_THROWS(run.pipe("in", "a", R"({"n":"two"})"));
  }
}

TEST_CASE(
    "a table source regrouped keeps count, sum and avg right through updates, moves and "
    "deletes",
    "[unit][pipeline]") {
  Run run(R"(
application: {application.id: balances}
sources:
  accounts: {topic: accounts, type: table}
flows:
  - from: accounts
    steps:
      - group_by: value.branch
      - aggregate:
          name: per-branch
          fields:
            n: count()
            total: sum(value.balance)
            mean: avg(value.balance)
      - to: branch-totals
)");
  run.pipe("accounts", "a", R"({"branch":"east","balance":5})", 1);
  run.pipe("accounts", "b", R"({"branch":"east","balance":3})", 2);
  run.pipe("accounts", "a", R"({"branch":"east","balance":7})", 3);  // same group
  run.pipe("accounts", "a", R"({"branch":"west","balance":7})", 4);  // moves
  run.pipe("accounts", "b", std::nullopt, 5);                        // deleted
  // As Kafka Streams emits them: one update per change within a group; a move
  // updates the old group, then the new; a delete updates the old group only.
  const Records expected = {
      {"east", R"({"n":1,"total":5,"mean":5.0})"},  {"east", R"({"n":2,"total":8,"mean":4.0})"},
      {"east", R"({"n":2,"total":10,"mean":5.0})"}, {"east", R"({"n":1,"total":3,"mean":3.0})"},
      {"west", R"({"n":1,"total":7,"mean":7.0})"},  {"east", R"({"n":0,"total":0,"mean":null})"},
  };
  const Records out = run.read("branch-totals");
  REQUIRE(out.size() == expected.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    INFO(i);
    CHECK(out[i].first == expected[i].first);
    CHECK(Json::parse(out[i].second) == Json::parse(expected[i].second));
  }
  // The table is kept in a store named after the source.
  CHECK(run.driver.get_state_store("accounts") != nullptr);
}

TEST_CASE("a table's single count() follows its rows", "[unit][pipeline]") {
  Run run(R"(
application: {application.id: members}
sources:
  members: {topic: members, type: table, value_format: string}
flows:
  - from: members
    steps:
      - group_by: value
      - aggregate: count()
      - to: {topic: team-sizes, value_format: int64}
)");
  run.pipe("members", "ann", "red");
  run.pipe("members", "bob", "red");
  run.pipe("members", "ann", "blue");
  run.pipe("members", "bob", std::nullopt);
  Records out;
  while (auto record = run.driver.read_raw("team-sizes")) {
    const std::string& bytes = *record->value;
    REQUIRE(bytes.size() == 8);
    out.emplace_back(*record->key, std::to_string(static_cast<unsigned char>(bytes[7])));
  }
  CHECK(out == Records{{"red", "1"}, {"red", "2"}, {"red", "1"}, {"blue", "1"}, {"red", "0"}});
}

TEST_CASE("a global_table source is loaded as a global store, even unused", "[unit][pipeline]") {
  Run run(R"(
application: {application.id: enrich}
sources:
  customers: {topic: customers, type: global_table, value_format: string}
  orders: {topic: orders}
flows:
  - from: orders
    steps:
      - to: copied
)");
  REQUIRE(run.pipeline.topology.global_stores().size() == 1);
  CHECK(run.pipeline.topology.global_stores()[0].store == "customers");
  CHECK(run.pipeline.topology.subtopologies().size() == 1);
  run.pipe("customers", "c1", "Ada");
  auto& store =
      run.driver.get_timestamped_key_value_store<rill::pipeline::Json, rill::pipeline::Json>(
          "customers");
  CHECK(store.get("c1")->value == "Ada");
  run.pipe("orders", "o1", R"({"customer":"c1"})");
  CHECK(run.read("copied").size() == 1);
}

TEST_CASE("a join step enriches a stream from a table, by the record's key or a new one",
          "[unit][pipeline][join]") {
  Run run(R"(
application: {application.id: enrich}
sources:
  customers: {topic: customers, type: table}
  orders: {topic: orders}
flows:
  - from: orders
    steps:
      - join:
          with: customers
          key: value.customer
          type: left
          value:
            order: left.id
            customer: right.name
            at: timestamp
      - to: enriched
)");
  // The new key sends the orders through a repartition topic named after the
  // flow's node, into the task of the customer's row.
  CHECK_THAT(run.pipeline.topology.describe(), Catch::Contains("-repartition]"));
  run.pipe("customers", "c1", R"({"name":"Ada"})", 1);
  run.pipe("orders", "o1", R"({"id":"o1","customer":"c1"})", 2);
  run.pipe("orders", "o2", R"({"id":"o2","customer":"c2"})", 3);
  run.pipe("customers", "c1", R"({"name":"Ada L."})", 4);  // emits nothing
  run.pipe("orders", "o3", R"({"id":"o3","customer":"c1"})", 5);
  CHECK(run.read("enriched") == Records{{"c1", R"({"at":2,"customer":"Ada","order":"o1"})"},
                                        {"c2", R"({"at":3,"customer":null,"order":"o2"})"},
                                        {"c1", R"({"at":5,"customer":"Ada L.","order":"o3"})"}});
}

TEST_CASE("a join step in a flow from a table joins the rows of another table by foreign key",
          "[unit][pipeline][join][foreign-key]") {
  Run run(R"(
application: {application.id: shop}
sources:
  customers: {topic: customers, type: table}
  orders: {topic: orders, type: table}
flows:
  - from: orders
    steps:
      - join:
          with: customers
          key: value.customer
          type: left
          value: {order: key, product: left.product, customer: right.name}
      - to: enriched
)");
  CHECK_THAT(run.pipeline.topology.describe(),
             Catch::Contains("KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-"));
  run.pipe("customers", "c1", R"({"name":"Ada"})", 1);
  run.pipe("orders", "o1", R"({"customer":"c1","product":"apple"})", 2);
  run.pipe("orders", "o2", R"({"customer":"c2","product":"pear"})", 3);
  run.pipe("customers", "c1", R"({"name":"Ada L."})", 4);
  run.pipe("orders", "o1", R"({"customer":"c2","product":"apple"})", 5);
  run.pipe("customers", "c2", R"({"name":"Bo"})", 6);
  run.pipe("orders", "o2", std::nullopt, 7);
  CHECK(run.read("enriched") ==
        Records{{"o1", R"({"customer":"Ada","order":"o1","product":"apple"})"},
                {"o2", R"({"customer":null,"order":"o2","product":"pear"})"},
                {"o1", R"({"customer":"Ada L.","order":"o1","product":"apple"})"},
                {"o1", R"({"customer":null,"order":"o1","product":"apple"})"},
                {"o1", R"({"customer":"Bo","order":"o1","product":"apple"})"},
                {"o2", R"({"customer":"Bo","order":"o2","product":"pear"})"},
                {"o2", "<null>"}});
}

TEST_CASE("a join step in a flow from a table with key: key joins rows of the same key",
          "[unit][pipeline][join]") {
  const std::string type =
      GENERATE(std::string("inner"), std::string("left"), std::string("outer"));
  INFO(type);
  Run run(R"(
application: {application.id: bank}
sources:
  accounts: {topic: accounts, type: table}
  limits: {topic: limits, type: table}
flows:
  - from: accounts
    steps:
      - join:
          with: limits
          key: key
          type: )" +
          type + R"(
          value: {account: key, balance: left.balance, limit: right.limit}
      - to: limited
)");
  CHECK_THAT(run.pipeline.topology.describe(), !Catch::Contains("SUBSCRIPTION"));
  run.pipe("accounts", "a1", R"({"balance":10})", 1);
  run.pipe("limits", "a1", R"({"limit":100})", 2);
  run.pipe("limits", "a2", R"({"limit":50})", 3);
  run.pipe("accounts", "a1", std::nullopt, 4);
  run.pipe("limits", "a2", std::nullopt, 5);
  const std::pair<std::string, std::string> a1_alone{
      "a1", R"({"account":"a1","balance":10,"limit":null})"},
      a1_joined{"a1", R"({"account":"a1","balance":10,"limit":100})"};
  if (type == "inner")
    CHECK(run.read("limited") == Records{a1_joined, {"a1", "<null>"}});
  else if (type == "left")
    CHECK(run.read("limited") == Records{a1_alone, a1_joined, {"a1", "<null>"}});
  else
    CHECK(run.read("limited") == Records{a1_alone,
                                         a1_joined,
                                         {"a2", R"({"account":"a2","balance":null,"limit":50})"},
                                         {"a1", R"({"account":"a1","balance":null,"limit":100})"},
                                         {"a2", "<null>"}});
}

TEST_CASE("a join step reads a table with history as it was at each record's time",
          "[unit][pipeline][join][versioned-store]") {
  Run run(R"(
application: {application.id: enrich}
sources:
  customers: {topic: customers, type: table, history: 1d}
  orders: {topic: orders}
flows:
  - from: orders
    steps:
      - join: {with: customers, type: left, value: {order: left.id, city: right.city}}
      - to: enriched
)");
  run.pipe("customers", "c1", R"({"city":"Paris"})", 100);
  run.pipe("customers", "c1", R"({"city":"Oslo"})", 300);
  run.pipe("customers", "c1", R"({"city":"Lima"})", 200);  // late: the city from 200 to 300
  run.pipe("orders", "c1", R"({"id":"o1"})", 150);
  run.pipe("orders", "c1", R"({"id":"o2"})", 250);
  run.pipe("orders", "c1", R"({"id":"o3"})", 350);
  run.pipe("orders", "c1", R"({"id":"o0"})", 50);
  CHECK(run.read("enriched") == Records{{"c1", R"({"city":"Paris","order":"o1"})"},
                                        {"c1", R"({"city":"Lima","order":"o2"})"},
                                        {"c1", R"({"city":"Oslo","order":"o3"})"},
                                        {"c1", R"({"city":null,"order":"o0"})"}});
}

TEST_CASE("a join step looks rows up in a global table, inner or left", "[unit][pipeline][join]") {
  const std::string type = GENERATE(std::string("inner"), std::string("left"));
  INFO(type);
  Run run(R"(
application: {application.id: enrich}
sources:
  products: {topic: products, type: global_table, value_format: string}
  orders: {topic: orders}
flows:
  - from: orders
    steps:
      - join: {with: products, key: value.product, type: )" +
          type + R"(, value: {qty: left.qty, product: right}}
      - to: lines
)");
  CHECK(run.pipeline.topology.subtopologies().size() == 1);
  run.pipe("products", "p1", "pen");
  run.pipe("orders", "o1", R"({"product":"p1","qty":"2"})");
  run.pipe("orders", "o2", R"({"product":"p9","qty":"1"})");
  const Records joined{{"o1", R"({"product":"pen","qty":"2"})"}};
  if (type == "inner")
    CHECK(run.read("lines") == joined);
  else
    CHECK(run.read("lines") == Records{joined[0], {"o2", R"({"product":null,"qty":"1"})"}});
}

TEST_CASE("a join step pairs a stream's records with another's within a window",
          "[unit][pipeline][join]") {
  const std::string type =
      GENERATE(std::string("inner"), std::string("left"), std::string("outer"));
  INFO(type);
  Run run(R"(
application: {application.id: payments}
sources:
  orders: {topic: orders}
  payments: {topic: payments}
flows:
  - from: orders
    steps:
      - join:
          with: payments
          type: )" +
          type + R"(
          key: value.order
          window: {difference: 10s, grace: 1s}
          value: {order: left.id, paid: right.amount, at: timestamp}
      - to: paid
)");
  // The orders are keyed anew, so they go through a repartition topic named
  // after the key-changing node (or "<name>-left-repartition" with a name).
  CHECK_THAT(run.pipeline.topology.describe(),
             Catch::Contains("topics: [KSTREAM-KEY-SELECT-0000000000-repartition]"));
  run.pipe("orders", "x", R"({"id":"o1","order":"o1"})", 1000);
  run.pipe("payments", "o1", R"({"amount":5})", 4000);  // within 10 s: joins
  run.pipe("orders", "y", R"({"id":"o2","order":"o2"})", 5000);
  run.pipe("payments", "o3", R"({"amount":7})", 6000);   // no order o3
  run.pipe("payments", "o2", R"({"amount":9})", 20000);  // 15 s after o2: too late
  // Stream time 20 s closes the windows of o2 (5 + 10 + 1 s) and o3 (6 + 10 + 1 s).
  const Records joined{{"o1", R"({"at":4000,"order":"o1","paid":5})"}};
  const Records o2_alone{{"o2", R"({"at":5000,"order":"o2","paid":null})"}};
  const Records o3_alone{{"o3", R"({"at":6000,"order":null,"paid":7})"}};
  if (type == "inner")
    CHECK(run.read("paid") == joined);
  else if (type == "left")
    CHECK(run.read("paid") == Records{joined[0], o2_alone[0]});
  else
    CHECK(run.read("paid") == Records{joined[0], o2_alone[0], o3_alone[0]});
}

TEST_CASE("to_postgres writes each record's row to the sink's topic, a table's deletions as null",
          "[unit][pipeline][postgres]") {
  Run run(R"(
application:
  application.id: shop
sources:
  customers: {topic: customers, type: table}
  orders: {topic: orders}
flows:
  - from: customers
    steps:
      - to_postgres:
          name: customer-rows
          connection: postgresql://localhost/shop
          table: customers
          key_columns:
            id: {value: key}
          columns:
            city: {value: value.city}
            since: {value: timestamp, type: bigint}
  - from: orders
    steps:
      - to_postgres:
          connection: postgresql://localhost/shop
          table: last_order
          key_columns:
            customer: {value: value.customer}
            shop: {value: '"main"'}
          columns:
            total: {value: value.qty * value.price}
      - to: seen
)");
  REQUIRE(run.pipeline.topology.postgres_sinks().size() == 2);
  CHECK(run.pipeline.topology.postgres_sinks()[1].name == "last_order");
  run.pipe("customers", "ada", R"({"city":"Paris"})", 1000);
  run.pipe("customers", "ada", std::nullopt, 2000);
  CHECK(run.read("shop-customer-rows-sink") ==
        Records{{R"({"id":"ada"})", R"({"city":"Paris","since":1000})"},
                {R"({"id":"ada"})", "<null>"}});
  run.pipe("orders", "o1", R"({"customer":"bob","qty":2,"price":1.5})");
  CHECK(run.read("shop-last_order-sink") ==
        Records{{R"({"customer":"bob","shop":"main"})", R"({"total":3.0})"}});
  // The stream goes on after the step.
  CHECK(run.read("seen").size() == 1);
}
