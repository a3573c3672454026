// bench_postgres (W8): rows per second of rill's PostgreSQL sink against raw
// libpqxx writing the same rows to the same server, in one run.
//
//   bench_postgres --bootstrap B --postgres URL --input T --rows N
//       [--batch-size 1000] [--repeats 3] [--threads 1] [--state-dir DIR] [--timeout-s 600]
//
// It first loads the input topic (which must exist) with N records, keys
// "k<i>" (all distinct) and 8-byte big-endian values i, in a shuffled order
// that every writer below uses too: keys arrive at the sink in no order (four
// partitions interleave), and a baseline writing them sorted would fill its
// index far more cheaply than any writer of a real stream.
// Three tables of the same shape (k text primary key, v bigint) are filled:
//   - batched INSERT: `--batch-size` rows per statement and transaction;
//   - COPY: one COPY of every row in one transaction;
//   - rill: KStream::to_postgres from the input topic, batches of
//     `--batch-size`, with one connection and then with two (the partitions
//     shared by two writers), each measured from the first batch the sink
//     commits to the last (start-up and the group join are not the sink's
//     rate), as the sink's offsets in rill_sink_offsets show them: a
//     single-row read, where counting the table's rows would take a core from
//     the run.
// They run in turn `--repeats` times, and each figure is the median of its
// runs: the server's rate varies from one run to the next by a third.
// Prints one JSON line: {"rows":N,"insert_rows_per_s":...,"copy_rows_per_s":...,
// "rill_rows_per_s":...,"rill_to_insert_by_round":[...],
// "rill_2_connections_rows_per_s":...,"rill_ok":true}. Each rill table is
// checked row for row (count and sum of v) before its figure counts.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <pqxx/pqxx>

#include "rill/kafka_streams.h"
#include "rill/postgres.h"
#include "rill/streams_builder.h"

#include "common/bench.h"
#include "common/kafka.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The keys' order: every number in [0, rows) once, shuffled with a fixed seed.
std::vector<int64_t> shuffled_keys(int64_t rows) {
  std::vector<int64_t> keys(static_cast<std::size_t>(rows));
  std::iota(keys.begin(), keys.end(), 0);
  std::shuffle(keys.begin(), keys.end(), std::mt19937_64(42));
  return keys;
}

void load_input(const bench::Args& args, const std::vector<int64_t>& keys) {
  namespace kafka = rill::kafka;
  const kafka::KafkaPtr producer = kafka::make_client(
      RD_KAFKA_PRODUCER,
      kafka::make_conf({{"bootstrap.servers", args.str("bootstrap")}, {"linger.ms", "20"}}));
  const kafka::TopicPtr topic = kafka::open_topic(producer.get(), args.str("input"));
  for (const int64_t i : keys) {
    const std::string key = "k" + std::to_string(i);
    std::string value(8, '\0');
    for (int b = 0; b < 8; ++b)
      value[static_cast<std::size_t>(b)] = static_cast<char>((i >> (56 - 8 * b)) & 0xff);
    kafka::HeadersPtr none;
    if (kafka::ErrorPtr error = kafka::produce(producer.get(), topic.get(), -1, key, value,
                                               bench::now_ms(), none, nullptr))
      throw kafka::Error(error, "cannot load the input");
  }
  if (kafka::flush(producer.get(), std::chrono::seconds(60)) != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw std::runtime_error("the input was not acknowledged within 60 s");
}

void fresh_table(pqxx::connection& db, const std::string& table) {
  pqxx::work work(db);
  work.exec("DROP TABLE IF EXISTS " + table);
  work.exec("CREATE TABLE " + table + " (k text PRIMARY KEY, v bigint)");
  work.commit();
}

double batched_insert(pqxx::connection& db, const std::vector<int64_t>& keys, int64_t batch) {
  const auto rows = static_cast<int64_t>(keys.size());
  fresh_table(db, "w8_insert");
  const auto start = Clock::now();
  for (int64_t first = 0; first < rows; first += batch) {
    std::string statement = "INSERT INTO w8_insert (k, v) VALUES ";
    for (int64_t n = first; n < std::min(rows, first + batch); ++n) {
      const int64_t i = keys[static_cast<std::size_t>(n)];
      if (n > first) statement += ',';
      statement += "('k" + std::to_string(i) + "'," + std::to_string(i) + ")";
    }
    pqxx::work work(db);
    work.exec(statement);
    work.commit();
  }
  return static_cast<double>(rows) / seconds_since(start);
}

double copy(pqxx::connection& db, const std::vector<int64_t>& keys) {
  const auto rows = static_cast<int64_t>(keys.size());
  fresh_table(db, "w8_copy");
  const auto start = Clock::now();
  pqxx::work work(db);
  pqxx::stream_to stream(work, "w8_copy", std::vector<std::string>{"k", "v"});
  for (const int64_t i : keys) stream << std::make_tuple("k" + std::to_string(i), i);
  stream.complete();
  work.commit();
  return static_cast<double>(rows) / seconds_since(start);
}

struct SinkRun {
  double rows_per_s = 0;
  bool ok = false;
};

SinkRun rill_sink(const bench::Args& args, pqxx::connection& db, int64_t rows, int64_t batch,
                  std::size_t connections) {
  fresh_table(db, "w8_rill");
  rill::StreamsBuilder builder;
  rill::PostgresTable table;
  table.connection = args.str("postgres");
  table.table = "w8_rill";
  table.key_columns = {{"k", "text"}};
  table.value_columns = {{"v", "bigint"}};
  table.batch_size = static_cast<std::size_t>(batch);
  table.connections = connections;
  builder.stream<std::string, int64_t>(std::vector<std::string>{args.str("input")})
      .to_postgres("w8", table);
  static int run_number = 0;
  const std::string app =
      "bench-w8-" + std::to_string(bench::now_ms()) + "-" + std::to_string(++run_number);
  rill::KafkaStreams streams(
      builder.build(),
      rill::StreamsConfig{{"application.id", app},
                          {"bootstrap.servers", args.str("bootstrap")},
                          {"num.stream.threads", args.str("threads", "1")},
                          {"state.dir", args.str("state-dir", "/tmp/rill-bench")}});
  streams.start();
  const auto deadline = Clock::now() + std::chrono::seconds(args.num("timeout-s", 600));
  pqxx::connection poll(args.str("postgres"));
  // Keys are distinct and the topic is not transactional: the offsets the
  // sink committed add up to the rows it wrote.
  auto count = [&]() -> int64_t {
    pqxx::work work(poll);
    // The sink creates its offsets table when it first connects.
    if (work.exec("SELECT to_regclass('rill_sink_offsets') IS NULL")[0][0].as<bool>()) return 0;
    return work
        .exec_params(
            "SELECT coalesce(sum(next_offset), 0) FROM rill_sink_offsets WHERE "
            "application_id = $1 AND next_offset > 0",
            app)[0][0]
        .as<int64_t>();
  };
  int64_t at_first = 0;
  Clock::time_point first;
  while (Clock::now() < deadline && (at_first = count()) == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  first = Clock::now();
  int64_t now = at_first;
  while (Clock::now() < deadline && now < rows) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    now = count();
  }
  const double elapsed = seconds_since(first);
  streams.close(std::chrono::seconds(30));
  SinkRun run;
  pqxx::work work(poll);
  const pqxx::row check = work.exec("SELECT count(*), coalesce(sum(v), 0) FROM w8_rill")[0];
  run.ok = check[0].as<int64_t>() == rows &&
           check[1].as<std::string>() == std::to_string(rows * (rows - 1) / 2);
  run.rows_per_s = static_cast<double>(rows - at_first) / elapsed;
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const bench::Args args(argc, argv);
    const int64_t rows = args.num("rows");
    if (rows <= 0) throw std::invalid_argument("--rows: a positive count");
    const std::vector<int64_t> keys = shuffled_keys(rows);
    const int64_t batch = args.num("batch-size", 1000);
    load_input(args, keys);
    pqxx::connection db(args.str("postgres"));
    std::vector<double> inserts, copies, sinks, two_connections;
    bool ok = true;
    for (int64_t round = 0; round < args.num("repeats", 3); ++round) {
      inserts.push_back(batched_insert(db, keys, batch));
      copies.push_back(copy(db, keys));
      const SinkRun sink = rill_sink(args, db, rows, batch, 1);
      sinks.push_back(sink.rows_per_s);
      const SinkRun two = rill_sink(args, db, rows, batch, 2);
      two_connections.push_back(two.rows_per_s);
      ok = ok && sink.ok && two.ok;
    }
    auto median = [](std::vector<double> values) {
      std::sort(values.begin(), values.end());
      return values[values.size() / 2];
    };
    // Each round's sink against the INSERT beside it: the spread of the ratio.
    std::string rounds;
    for (std::size_t i = 0; i < sinks.size(); ++i)
      rounds += (i > 0 ? "," : "") + std::to_string(sinks[i] / inserts[i]);
    std::cout << "{\"rows\":" << rows << ",\"batch_size\":" << batch
              << ",\"repeats\":" << sinks.size() << ",\"insert_rows_per_s\":" << median(inserts)
              << ",\"copy_rows_per_s\":" << median(copies)
              << ",\"rill_rows_per_s\":" << median(sinks) << ",\"rill_to_insert_by_round\":["
              << rounds << "],\"rill_2_connections_rows_per_s\":" << median(two_connections)
              << ",\"rill_ok\":" << (ok ? "true" : "false") << "}\n";
    return ok ? 0 : 3;
  } catch (const std::exception& e) {
    std::cerr << "bench_postgres: " << e.what() << "\n";
    return 2;
  }
}
