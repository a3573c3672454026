// Read models in a real PostgreSQL server (scripts/postgres, started by
// scripts/test): the writer's batches and fencing on their own, then
// KStream/KTable::to_postgres and the YAML step on the real broker, through
// deletions, rejected rows, a database that goes away, and crashes.
#include <chrono>
#include <csignal>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/rill.h"

#include "sinks/postgres_writer.h"
#include "support/counts.h"
#include "support/http_client.h"
#include "support/kafka_cluster.h"
#include "support/postgres_server.h"
#include "support/process.h"
#include "support/temp_dir.h"

using namespace rill;
using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

// A table name no other test (or earlier run) uses; PostgreSQL folds none of
// its characters, since the sink quotes names.
std::string unique_table(const std::string& prefix) {
  std::string name = unique_name(prefix);
  for (char& c : name)
    if (c == '-') c = '_';
  return name;
}

sinks::SinkRow row(std::vector<std::optional<std::string>> columns, int32_t partition,
                   int64_t offset, bool deletion = false) {
  sinks::SinkRow r;
  r.columns = std::move(columns);
  r.partition = partition;
  r.offset = offset;
  r.deletion = deletion;
  return r;
}

// Waits until `query` (two columns) returns `expected`; returns what it
// returned last.
std::map<std::string, std::string> await_rows(const std::string& query,
                                              const std::map<std::string, std::string>& expected,
                                              std::chrono::seconds timeout = 90s) {
  const auto deadline = Clock::now() + timeout;
  std::map<std::string, std::string> rows;
  while (Clock::now() < deadline) {
    try {
      rows = sql_map(query);
    } catch (const std::exception&) {
      // The sink creates its table when it first connects.
    }
    if (rows == expected) break;
    std::this_thread::sleep_for(200ms);
  }
  return rows;
}

TestRecord record(std::string key, std::optional<std::string> value) {
  TestRecord r;
  r.key = std::move(key);
  r.value = std::move(value);
  return r;
}

// Creates `table` (id, amount) with a CHECK that amounts are not negative, and
// returns the sink's declaration of it.
PostgresTable amounts_table(const std::string& table) {
  sql("CREATE TABLE " + table + " (id text PRIMARY KEY, amount bigint CHECK (amount >= 0))");
  PostgresTable spec;
  spec.connection = postgres_url();
  spec.table = table;
  spec.key_columns = {{"id"}};
  spec.value_columns = {{"amount"}};
  return spec;
}

const sinks::PostgresWriter::RejectedHandler kNoRejection = [](const sinks::SinkRow& r,
                                                               const std::string& error) {
  FAIL("row at offset " << r.offset << " rejected: " << error);
};

}  // namespace

TEST_CASE(
    "a PostgreSQL writer applies each batch once, last row per key, and fences a second "
    "writer of the same partitions",
    "[kafka][postgres]") {
  const std::string table = unique_table("pg_writer");
  PostgresTable spec;
  spec.connection = postgres_url();
  spec.table = table;
  spec.key_columns = {{"id", "text"}};
  spec.value_columns = {{"amount", "bigint"}, {"note", "text"}};
  spec.create_table = true;
  sinks::PostgresWriter first(spec, "app", "sink", "topic");
  sinks::PostgresWriter second(spec, "app", "sink", "topic");
  first.connect();
  second.connect();
  CHECK(first.claim({0, 1}) == std::map<int32_t, int64_t>{{0, -1}, {1, -1}});
  CHECK(second.claim({0}) == std::map<int32_t, int64_t>{{0, -1}});

  sinks::SinkBatch batch;
  batch.rows.push_back(row({"a", "1", "x"}, 0, 0));
  batch.rows.push_back(row({"b", "2", std::nullopt}, 0, 1));
  // Quotes, commas and backslashes go through the array literals unharmed.
  batch.rows.push_back(row({"c", "3", "say \"hi\", \\ {}"}, 1, 0));
  batch.rows.push_back(row({"a", "10", "x2"}, 0, 2));
  batch.offsets[0] = {-1, 3};
  batch.offsets[1] = {-1, 1};
  REQUIRE(first.write(batch, kNoRejection) == sinks::PostgresWriter::Outcome::kWritten);
  CHECK(sql_map("SELECT id, amount FROM " + table + " ORDER BY id") ==
        std::map<std::string, std::string>{{"a", "10"}, {"b", "2"}, {"c", "3"}});
  CHECK(sql("SELECT note FROM " + table + " WHERE id = 'c'").at(0).at(0) ==
        std::optional<std::string>("say \"hi\", \\ {}"));
  CHECK(sql("SELECT note FROM " + table + " WHERE id = 'b'").at(0).at(0) == std::nullopt);

  // The second writer still believes partition 0 is at -1: refused whole.
  sinks::SinkBatch stale;
  stale.rows.push_back(row({"a", "999", "stale"}, 0, 0));
  stale.rows.push_back(row({"z", "1", "stale"}, 0, 1));
  stale.offsets[0] = {-1, 2};
  CHECK(second.write(stale, kNoRejection) == sinks::PostgresWriter::Outcome::kStale);
  CHECK(sql_map("SELECT id, amount FROM " + table + " ORDER BY id") ==
        std::map<std::string, std::string>{{"a", "10"}, {"b", "2"}, {"c", "3"}});
  // Claiming again, it resumes where the first writer got to.
  CHECK(second.claim({0}) == std::map<int32_t, int64_t>{{0, 3}});
  // One stale partition refuses the batch whole: the current one's offset
  // does not move either.
  sinks::SinkBatch half_stale;
  half_stale.rows.push_back(row({"y", "1", "stale"}, 0, 3));
  half_stale.rows.push_back(row({"x", "1", "current"}, 1, 1));
  half_stale.offsets[0] = {1, 4};
  half_stale.offsets[1] = {1, 2};
  CHECK(first.write(half_stale, kNoRejection) == sinks::PostgresWriter::Outcome::kStale);
  CHECK(first.claim({0, 1}) == std::map<int32_t, int64_t>{{0, 3}, {1, 1}});
  CHECK(sql_map("SELECT id, amount FROM " + table + " ORDER BY id") ==
        std::map<std::string, std::string>{{"a", "10"}, {"b", "2"}, {"c", "3"}});

  // A deletion deletes; a key deleted and written again in one batch is
  // written (its last row wins).
  sinks::SinkBatch deletions;
  deletions.rows.push_back(row({"b"}, 0, 3, true));
  deletions.rows.push_back(row({"c"}, 1, 1, true));
  deletions.rows.push_back(row({"c", "30", "back"}, 1, 2));
  deletions.offsets[0] = {3, 4};
  deletions.offsets[1] = {1, 3};
  REQUIRE(second.write(deletions, kNoRejection) == sinks::PostgresWriter::Outcome::kWritten);
  CHECK(sql_map("SELECT id, amount FROM " + table + " ORDER BY id") ==
        std::map<std::string, std::string>{{"a", "10"}, {"c", "30"}});
  CHECK(sql_map("SELECT partition::text, next_offset::text FROM rill_sink_offsets WHERE "
                "application_id = 'app' AND sink = 'sink' AND topic = 'topic'") ==
        std::map<std::string, std::string>{{"0", "4"}, {"1", "3"}});
  sql("DROP TABLE " + table + "; DELETE FROM rill_sink_offsets WHERE application_id = 'app'");
}

TEST_CASE(
    "a row PostgreSQL rejects is handed on with its error and the rest of its batch "
    "is written",
    "[kafka][postgres]") {
  const std::string table = unique_table("pg_rejects");
  const PostgresTable spec = amounts_table(table);
  const std::string app = unique_name("pg-rejects-app");
  sinks::PostgresWriter writer(spec, app, "sink", "topic");
  writer.connect();
  REQUIRE(writer.claim({0}) == std::map<int32_t, int64_t>{{0, -1}});
  sinks::SinkBatch batch;
  batch.rows.push_back(row({"a", "1"}, 0, 0));
  batch.rows.push_back(row({"b", "-5"}, 0, 1));
  batch.rows.push_back(row({"c", "not a number"}, 0, 2));
  batch.rows.push_back(row({"d", "4"}, 0, 3));
  batch.offsets[0] = {-1, 4};
  std::map<int64_t, std::string> rejected;
  REQUIRE(writer.write(batch, [&](const sinks::SinkRow& r, const std::string& error) {
    rejected[r.offset] = error;
  }) == sinks::PostgresWriter::Outcome::kWritten);
  REQUIRE(rejected.size() == 2);
  CHECK_THAT(rejected.at(1), Catch::Contains("23514"));  // check_violation
  CHECK_THAT(rejected.at(2), Catch::Contains("22P02"));  // invalid_text_representation
  CHECK(sql_map("SELECT id, amount FROM " + table + " ORDER BY id") ==
        std::map<std::string, std::string>{{"a", "1"}, {"d", "4"}});
  CHECK(writer.claim({0}) == std::map<int32_t, int64_t>{{0, 4}});
  sql("DROP TABLE " + table);
}

TEST_CASE(
    "a PostgreSQL table that is missing, lacks a column or has another key is named in "
    "the error",
    "[kafka][postgres]") {
  const std::string table = unique_table("pg_missing");
  PostgresTable spec;
  spec.connection = postgres_url();
  spec.table = table;
  spec.key_columns = {{"id"}};
  spec.value_columns = {{"amount"}};
  sinks::PostgresWriter writer(spec, "app", "sink", "topic");
  CHECK_THROWS_WITH(writer.connect(),
                    Catch::Contains("'" + table + "'") && Catch::Contains("does not exist"));
  sql("CREATE TABLE " + table + " (id text PRIMARY KEY)");
  CHECK_THROWS_WITH(writer.connect(), Catch::Contains("no column 'amount'"));
  sql("ALTER TABLE " + table + " ADD COLUMN amount bigint, DROP CONSTRAINT " + table + "_pkey");
  CHECK_THROWS_WITH(writer.connect(), Catch::Contains("ON CONFLICT"));
  spec.connection = "postgresql://nobody@127.0.0.1:1/none";
  sinks::PostgresWriter unreachable(spec, "app", "sink", "topic");
  CHECK_THROWS_WITH(unreachable.connect(),
                    Catch::Contains("cannot connect") && Catch::Contains("'" + table + "'"));
  sql("DROP TABLE " + table);
}

TEST_CASE("KTable::to_postgres keeps a table equal to a changing table, deletions included",
          "[kafka][postgres]") {
  const std::string app = unique_name("pg-table-app"), input = unique_name("pg-table-in");
  const std::string table = unique_table("pg_table");
  create_topic(input, 3);
  StreamsBuilder builder;
  PostgresTable spec;
  spec.connection = postgres_url();
  spec.table = table;
  spec.key_columns = {{"customer", "text"}};
  spec.value_columns = {{"city", "text"}};
  spec.create_table = true;
  // Two writers share the topic's partitions.
  spec.connections = 2;
  builder.table<std::string, std::string>(input).to_postgres("customers", spec);
  StreamsConfig config{{"application.id", app},
                       {"bootstrap.servers", bootstrap_servers()},
                       {"state.dir", temp_state_dir(app)},
                       {"commit.interval.ms", "100"}};
  KafkaStreams streams(builder.build(), config);
  streams.start();

  std::vector<TestRecord> records;
  std::map<std::string, std::string> expected;
  for (int i = 0; i < 200; ++i) {
    const std::string key = "c" + std::to_string(i % 50);
    if (i % 7 == 3) {
      records.push_back(record(key, std::nullopt));
      expected.erase(key);
    } else {
      records.push_back(record(key, "city" + std::to_string(i)));
      expected[key] = "city" + std::to_string(i);
    }
  }
  produce(input, records);
  CHECK(await_rows("SELECT customer, city FROM " + table, expected) == expected);
  CHECK(topic_configs(app + "-customers-sink").at("cleanup.policy") == "compact");
  CHECK(sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'rill " + app +
            " customers'")
            .at(0)
            .at(0) == std::optional<std::string>("2"));
  // Every partition applied, whichever writer held it.
  CHECK(sql("SELECT count(*) FROM rill_sink_offsets WHERE application_id = '" + app +
            "' AND next_offset > 0")
            .at(0)
            .at(0) == std::optional<std::string>("3"));
  REQUIRE(streams.close(30s));
  sql("DROP TABLE " + table);
}

TEST_CASE(
    "rows PostgreSQL rejects go to the dead-letter topic with the error and their "
    "origin, and the other rows are written",
    "[kafka][postgres]") {
  const std::string app = unique_name("pg-dlq-app"), input = unique_name("pg-dlq-in");
  const std::string dead_letters = unique_name("pg-dlq-dead");
  const std::string table = unique_table("pg_dlq");
  create_topic(input, 2);
  create_topic(dead_letters, 1);
  PostgresTable spec = amounts_table(table);
  StreamsBuilder builder;
  builder.stream<std::string, int64_t>(std::vector<std::string>{input})
      .to_postgres("amounts", spec);
  StreamsConfig config{{"application.id", app},
                       {"bootstrap.servers", bootstrap_servers()},
                       {"state.dir", temp_state_dir(app)},
                       {"errors.dead.letter.queue.topic.name", dead_letters}};
  KafkaStreams streams(builder.build(), config);
  streams.start();
  std::vector<TestRecord> records;
  std::map<std::string, std::string> expected;
  int negative = 0;
  for (int i = 0; i < 100; ++i) {
    const int64_t amount = i % 10 == 0 ? -i : i;
    std::string value;
    serdes::int64()->serialize(amount, value);
    records.push_back(record("k" + std::to_string(i), value));
    if (amount >= 0)
      expected["k" + std::to_string(i)] = std::to_string(amount);
    else
      ++negative;
  }
  produce(input, records);
  CHECK(await_rows("SELECT id, amount FROM " + table, expected) == expected);
  const std::vector<TestRecord> rejected =
      consume(dead_letters, static_cast<std::size_t>(negative), 30s);
  REQUIRE(rejected.size() == static_cast<std::size_t>(negative));
  for (const TestRecord& r : rejected) {
    std::map<std::string, std::string> headers(r.headers.begin(), r.headers.end());
    CHECK_THAT(headers["__streams.errors.message"], Catch::Contains("23514"));
    CHECK(headers["__streams.errors.topic"] == app + "-amounts-sink");
    CHECK(headers.contains("__streams.errors.offset"));
    CHECK_THAT(r.value.value_or(""), Catch::Contains("\"amount\":\"-"));
  }
  REQUIRE(streams.close(30s));
  sql("DROP TABLE " + table);
}

TEST_CASE("a rejected row stops the instance when the sink is told to fail, naming the row",
          "[kafka][postgres]") {
  const std::string app = unique_name("pg-fail-app"), input = unique_name("pg-fail-in");
  const std::string table = unique_table("pg_fail");
  create_topic(input, 1);
  PostgresTable spec = amounts_table(table);
  StreamsBuilder builder;
  spec.rejected_rows = RejectedRows::kFail;
  builder.stream<std::string, int64_t>(std::vector<std::string>{input}).to_postgres("strict", spec);
  KafkaStreams streams(builder.build(), StreamsConfig{{"application.id", app},
                                                      {"bootstrap.servers", bootstrap_servers()},
                                                      {"state.dir", temp_state_dir(app)}});
  streams.start();
  std::string negative;
  serdes::int64()->serialize(-1, negative);
  produce(input, {record("bad", negative)});
  const auto deadline = Clock::now() + 60s;
  while (Clock::now() < deadline && streams.state() != KafkaStreams::State::kError)
    std::this_thread::sleep_for(100ms);
  CHECK(streams.state() == KafkaStreams::State::kError);
  CHECK_THAT(streams.error(), Catch::Contains("'" + table + "'") &&
                                  Catch::Contains(app + "-strict-sink[0]@0") &&
                                  Catch::Contains("23514"));
  CHECK(sql("SELECT * FROM " + table).empty());
  streams.close(30s);
  sql("DROP TABLE " + table);
}

TEST_CASE(
    "while PostgreSQL is down the sink waits and says so, the topology's other outputs "
    "go on, and the rows catch up after",
    "[kafka][postgres]") {
  const std::string app = unique_name("pg-down-app"), input = unique_name("pg-down-in");
  const std::string output = unique_name("pg-down-out");
  const std::string table = unique_table("pg_down");
  create_topic(input, 2);
  create_topic(output, 2);
  StreamsBuilder builder;
  PostgresTable spec;
  spec.connection = postgres_url();
  spec.table = table;
  spec.key_columns = {{"id"}};
  spec.value_columns = {{"text"}};
  spec.create_table = true;
  auto stream = builder.stream<std::string, std::string>(std::vector<std::string>{input});
  stream.to(output);
  stream.to_postgres("texts", spec);
  StreamsConfig config{{"application.id", app},
                       {"bootstrap.servers", bootstrap_servers()},
                       {"state.dir", temp_state_dir(app)},
                       {"commit.interval.ms", "100"},
                       {"metrics.address", "127.0.0.1:0"}};
  KafkaStreams streams(builder.build(), config);
  streams.start();
  auto batch = [](int from, int to) {
    std::vector<TestRecord> records;
    for (int i = from; i < to; ++i)
      records.push_back(record("k" + std::to_string(i), "t" + std::to_string(i)));
    return records;
  };
  std::map<std::string, std::string> expected;
  for (const auto& r : batch(0, 50)) expected[*r.key] = *r.value;
  produce(input, batch(0, 50));
  REQUIRE(await_rows("SELECT id, text FROM " + table, expected) == expected);
  const int port = streams.metrics_port();

  postgres_command("kill");
  produce(input, batch(50, 100));
  for (const auto& r : batch(50, 100)) expected[*r.key] = *r.value;
  // The other output goes on without the database.
  CHECK(consume(output, 100, 60s).size() == 100);
  const auto deadline = Clock::now() + 60s;
  HttpResult ready;
  while (Clock::now() < deadline) {
    ready = http_get(port, "/readyz");
    if (ready.status == 503) break;
    std::this_thread::sleep_for(100ms);
  }
  CHECK(ready.status == 503);
  CHECK_THAT(ready.body, Catch::Contains("PostgreSQL sink 'texts' is behind"));
  const std::string metrics = http_get(port, "/metrics").body;
  CHECK_THAT(metrics, Catch::Contains("rill_postgres_sink_up{") &&
                          Catch::Contains("sink=\"texts\"") &&
                          Catch::Contains("rill_postgres_sink_failures_total"));
  CHECK(streams.state() == KafkaStreams::State::kRunning);

  postgres_command("start");
  CHECK(await_rows("SELECT id, text FROM " + table, expected) == expected);
  const auto ready_again = Clock::now() + 60s;
  while (Clock::now() < ready_again && http_get(port, "/readyz").status != 200)
    std::this_thread::sleep_for(100ms);
  CHECK(http_get(port, "/readyz").status == 200);
  REQUIRE(streams.close(30s));
  sql("DROP TABLE " + table);
}

TEST_CASE(
    "a keyed count kept in PostgreSQL is exact while the pipeline is SIGKILLed twice and "
    "PostgreSQL restarts once",
    "[kafka][postgres][rill-command]") {
  const std::string app = unique_name("pg-crash-app"), input = unique_name("pg-crash-in");
  const std::string table = unique_table("pg_crash");
  create_topic(input, 3);
  const std::string state_dir = temp_state_dir(app);
  const std::string file = write_temp_file(app + ".yaml", R"(
application:
  application.id: )" + app + R"(
  bootstrap.servers: )" + bootstrap_servers() + R"(
  state.dir: )" + state_dir + R"(
  processing.guarantee: exactly_once_v2
  commit.interval.ms: 200
  # A killed instance's partitions (the topology's and the sink's) move after
  # its session times out.
  session.timeout.ms: 6000
sources:
  orders:
    topic: )" + input + R"(
    fields: [customer]
flows:
  - from: orders
    steps:
      - group_by: value.customer
      - aggregate:
          name: orders-per-customer
          fields:
            orders: count()
      - to_postgres:
          name: orders-by-customer
          connection: )" + postgres_url() + R"(
          table: )" + table + R"(
          create_table: true
          batch_size: 50
          key_columns:
            customer: {value: key}
          columns:
            orders: {value: value.orders, type: bigint}
)");
  auto start = [&](int n) {
    return ChildProcess({test_binary("../rill"), "run", file},
                        "/tmp/" + app + "-" + std::to_string(n) + ".log");
  };
  std::map<std::string, std::string> expected;
  std::map<std::string, int> counts;
  int next = 0;
  auto produce_orders = [&](int n) {
    std::vector<TestRecord> records;
    for (int i = 0; i < n; ++i, ++next) {
      const std::string customer = "cust-" + std::to_string(next % 40);
      records.push_back(record(std::to_string(next), R"({"customer":")" + customer + R"("})"));
      expected[customer] = std::to_string(++counts[customer]);
    }
    produce(input, records);
  };
  auto wait_for_rows = [&](ChildProcess& process) {
    INFO(process.log_tail());
    REQUIRE(await_rows("SELECT customer, orders FROM " + table, expected) == expected);
  };

  ChildProcess first = start(1);
  produce_orders(400);
  wait_for_rows(first);
  // Killed in the middle of a stream of orders: batches in flight in both the
  // transaction and the database.
  produce_orders(400);
  std::this_thread::sleep_for(300ms);
  first.signal(SIGKILL);
  first.wait(10s);

  ChildProcess second = start(2);
  produce_orders(400);
  postgres_command("restart");
  produce_orders(400);
  std::this_thread::sleep_for(300ms);
  second.signal(SIGKILL);
  second.wait(10s);

  ChildProcess third = start(3);
  produce_orders(400);
  wait_for_rows(third);
  third.signal(SIGTERM);
  CHECK(third.wait(30s) == 0);
  sql("DROP TABLE " + table);
}
