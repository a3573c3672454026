// bench_tool: what benchmarks/run asks of the broker besides loading input.
//
//   bench_tool create-topics --bootstrap B --partitions P --topics a,b [--configs k=v,k=v]
//       [--replication-factor N]
//   bench_tool verify --bootstrap B --topic T --workload w1|w2|w3|w6|w7 [--dump FILE]
//   bench_tool latency --bootstrap B --topic T --count N [--skip-ms MS] [--timeout-s S]
//       [--interval-s S] [--records-file FILE]
//   bench_tool offsets --bootstrap B --topic T
//   bench_tool queries --server HOST:PORT --store S --keys K --seconds N [--skip-ms MS]
//       [--clients C] [--key-prefix u]
//   bench_tool group-ready --bootstrap B --group G --members N --topic T [--timeout-s S]
//
// verify reads a whole output topic (read_committed) and prints the digest of
// its final contents, in the canonical form the generator's --expected uses:
// W1, W6 and W7 every record, W2 the last count per key, W3 the last sum per
// key and window. It also prints the smallest and largest record timestamps; output
// topics of throughput runs use LogAppendTime, so the largest is when the last
// output reached the broker.
//
// latency consumes an output topic while a run is going on; output records
// carry the timestamp of the input they came from (the time the generator sent
// it), so receive time minus record timestamp is the end-to-end latency.
// With --interval-s it prints one line per interval (the soak) until SIGTERM or
// the timeout, instead of one line once --count records have arrived.
// --records-file writes a line per record measured, "receive_us timestamp_ms
// partition offset", to find what the slowest outputs have in common.
//
// queries asks a running instance's query endpoint (GET
// /v1/stores/S/keys/K, a new connection each, as curl does) for random keys
// "<prefix><0..K-1>": for N seconds one request at a time, for latency, then
// for N seconds with C clients at once, for queries per second. Answers the
// instance read itself and those it forwarded to another instance (their
// "host" names that one) are timed apart. The first MS milliseconds are
// warm-up.
#include <algorithm>
#include <atomic>
#include <csignal>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_map>

#include <simdjson.h>

#include "common/bench.h"
#include "common/kafka.h"
#include "queries/query_server.h"

namespace {

using rill::kafka::KafkaPtr;

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  for (std::string part; std::getline(in, part, separator);)
    if (!part.empty()) parts.push_back(part);
  return parts;
}

KafkaPtr make_consumer(const std::string& bootstrap,
                       std::map<std::string, std::string> extra = {}) {
  std::map<std::string, std::string> properties{
      {"bootstrap.servers", bootstrap},
      {"group.id", "bench-tool"},  // required by librdkafka, never joined: partitions are assigned
      {"enable.auto.commit", "false"},
      {"enable.partition.eof", "true"},
      {"isolation.level", "read_committed"},
  };
  for (auto& [k, v] : extra) properties[k] = v;
  KafkaPtr consumer =
      rill::kafka::make_client(RD_KAFKA_CONSUMER, rill::kafka::make_conf(properties));
  rill::kafka::redirect_events_to_consumer(consumer.get());
  return consumer;
}

// Assigns every partition of `topic` from the beginning; returns their count.
int assign_all(rd_kafka_t* consumer, const std::string& topic) {
  const int partitions = bench::kafka::existing_partitions(consumer, topic);
  std::vector<rill::kafka::TopicPartition> list;
  for (int p = 0; p < partitions; ++p) list.push_back({topic, p, RD_KAFKA_OFFSET_BEGINNING});
  rill::kafka::assign(consumer, list);
  return partitions;
}

int create_topics(const bench::Args& args) {
  std::map<std::string, std::string> configs;
  for (const auto& entry : split(args.optional("configs"), ',')) {
    auto eq = entry.find('=');
    if (eq == std::string::npos) throw std::invalid_argument("--configs wants k=v,k=v");
    configs[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  KafkaPtr admin = rill::kafka::make_client(
      RD_KAFKA_PRODUCER, rill::kafka::make_conf({{"bootstrap.servers", args.str("bootstrap")}}));
  // A topic left from an earlier run would mix its records into this one.
  const auto existing = rill::kafka::topic_partitions(admin.get(), std::chrono::seconds(10));
  std::vector<rill::kafka::NewTopic> requests;
  for (const auto& topic : split(args.str("topics"), ',')) {
    if (existing.contains(topic)) throw std::runtime_error("topic '" + topic + "' exists already");
    requests.push_back({topic, static_cast<int32_t>(args.num("partitions")),
                        static_cast<int32_t>(args.num("replication-factor", 1)), configs});
  }
  rill::kafka::create_topics(admin.get(), requests, std::chrono::seconds(30));
  // Metadata reaches every listener a moment after creation; wait for it.
  for (const auto& request : requests)
    for (int attempt = 0;
         !rill::kafka::partition_count(admin.get(), request.name, bench::kafka::kMetadataTimeout);
         ++attempt) {
      if (attempt > 100) throw std::runtime_error("topic '" + request.name + "' did not appear");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  return 0;
}

int offsets(const bench::Args& args) {
  KafkaPtr consumer = make_consumer(args.str("bootstrap"));
  const std::string topic = args.str("topic");
  const int partitions = bench::kafka::existing_partitions(consumer.get(), topic);
  std::vector<std::pair<std::string, int32_t>> list;
  for (int p = 0; p < partitions; ++p) list.emplace_back(topic, p);
  int64_t total = 0;
  for (const auto& [low, high] :
       rill::kafka::watermarks(consumer.get(), list, std::chrono::seconds(10)))
    total += high - low;
  bench::JsonLine().add("records", total).add("partitions", partitions).print();
  return 0;
}

class Verifier {
 public:
  explicit Verifier(std::string workload) : workload_(std::move(workload)) {
    if (workload_ != "w1" && workload_ != "w2" && workload_ != "w3" && workload_ != "w6" &&
        workload_ != "w7")
      throw std::invalid_argument("--workload must be w1, w2, w3, w6 or w7");
  }

  void add(const rd_kafka_message_t& m) {
    std::string_view key = rill::kafka::key_of(m);
    ++records_;
    int64_t ts = rill::kafka::timestamp_of(m);
    first_ts_ = records_ == 1 ? ts : std::min(first_ts_, ts);
    last_ts_ = std::max(last_ts_, ts);
    if (workload_ == "w1") {
      if (m.payload == nullptr) {
        ++malformed_;
        return;
      }
      auto doc = parse(payload_of(m));
      std::string_view user;
      double amount = 0;
      if (doc["user"].get_string().get(user) != simdjson::SUCCESS ||
          doc["amount"].get_double().get(amount) != simdjson::SUCCESS) {
        ++malformed_;
        return;
      }
      lines_.add(bench::w1_line(key, user, bench::to_cents(amount)));
    } else if (workload_ == "w6" || workload_ == "w7") {
      add_join_result(key, m);
    } else if (workload_ == "w2") {
      if (m.payload == nullptr) {
        last_.erase(std::string(key));
      } else if (m.len != 8) {
        ++malformed_;
      } else {
        last_[std::string(key)] = bench::read_be64(static_cast<const char*>(m.payload));
      }
    } else if (!key.empty() && key.front() == '{') {
      add_json_window(key, m);
    } else {
      if (key.size() < 8) {
        ++malformed_;
        return;
      }
      std::string id(key);
      if (m.payload == nullptr) {
        last_.erase(id);
      } else if (m.len != 8) {
        ++malformed_;
      } else {
        last_[id] = bench::to_cents(bench::read_be_double(static_cast<const char*>(m.payload)));
      }
    }
  }

  // W6: {"user","amount","tier"}; W7: {"user","amount","method","delay_ms"}.
  void add_join_result(std::string_view key, const rd_kafka_message_t& m) {
    if (m.payload == nullptr) {
      ++malformed_;
      return;
    }
    auto doc = parse(payload_of(m));
    std::string_view user, other;
    double amount = 0;
    int64_t delay_ms = 0;
    const bool w6 = workload_ == "w6";
    if (doc["user"].get_string().get(user) != simdjson::SUCCESS ||
        doc["amount"].get_double().get(amount) != simdjson::SUCCESS ||
        doc[w6 ? "tier" : "method"].get_string().get(other) != simdjson::SUCCESS ||
        (!w6 && doc["delay_ms"].get_int64().get(delay_ms) != simdjson::SUCCESS)) {
      ++malformed_;
      return;
    }
    lines_.add(w6 ? bench::w6_line(key, user, bench::to_cents(amount), other)
                  : bench::w7_line(key, user, bench::to_cents(amount), other, delay_ms));
  }

  // A YAML pipeline's windowed result: key {"key": ..., "start": ms, "end": ms}
  // and the sum as a JSON number, kept under the id the binary form has.
  void add_json_window(std::string_view key, const rd_kafka_message_t& m) {
    auto doc = parse(key);
    std::string_view user;
    int64_t start = 0;
    if (doc["key"].get_string().get(user) != simdjson::SUCCESS ||
        doc["start"].get_int64().get(start) != simdjson::SUCCESS) {
      ++malformed_;
      return;
    }
    std::string id(user);
    for (int shift = 56; shift >= 0; shift -= 8)
      id.push_back(static_cast<char>((static_cast<uint64_t>(start) >> shift) & 0xff));
    if (m.payload == nullptr) {
      last_.erase(id);
      return;
    }
    auto value = parse(payload_of(m));
    double sum = 0;
    if (value.get_double().get(sum) != simdjson::SUCCESS) {
      ++malformed_;
      return;
    }
    last_[id] = bench::to_cents(sum);
  }

  std::string json(const std::string& dump_file) {
    std::ostringstream dump;
    int64_t total = 0;
    if (workload_ == "w1" || workload_ == "w6" || workload_ == "w7") {
      total = static_cast<int64_t>(lines_.count);
    } else {
      for (const auto& [id, value] : last_) {
        std::string line;
        if (workload_ == "w2") {
          line = bench::w2_line(id, value);
        } else {
          std::string_view user(id.data(), id.size() - 8);
          line = bench::w3_line(user, bench::read_be64(id.data() + id.size() - 8), value);
        }
        lines_.add(line);
        total += value;
        if (!dump_file.empty()) dump << line << "\n";
      }
    }
    if (!dump_file.empty()) bench::write_file(dump_file, dump.str());
    return bench::JsonLine()
        .add("records", records_)
        .add("first_ts", first_ts_)
        .add("last_ts", last_ts_)
        .add("lines", lines_.count)
        .add("total", total)
        .add("malformed", malformed_)
        .add("digest", lines_.hex())
        .str();
  }

 private:
  std::string workload_;
  uint64_t records_ = 0;
  uint64_t malformed_ = 0;
  int64_t first_ts_ = 0;
  int64_t last_ts_ = 0;
  bench::Digest lines_;
  std::unordered_map<std::string, int64_t> last_;
  static std::string_view payload_of(const rd_kafka_message_t& m) {
    return {static_cast<const char*>(m.payload), m.len};
  }
  // simdjson reads past the end of its input: it parses a padded copy.
  simdjson::simdjson_result<simdjson::ondemand::document> parse(std::string_view text) {
    padded_.assign(text);
    padded_.append(simdjson::SIMDJSON_PADDING, ' ');
    return parser_.iterate(padded_.data(), text.size(), padded_.size());
  }

  simdjson::ondemand::parser parser_;
  std::string padded_;
};

int verify(const bench::Args& args) {
  KafkaPtr consumer = make_consumer(args.str("bootstrap"), {{"fetch.max.bytes", "104857600"}});
  int partitions = assign_all(consumer.get(), args.str("topic"));
  Verifier verifier(args.str("workload"));
  auto queue = rill::kafka::MessageQueue::of_consumer(consumer.get());
  std::vector<rd_kafka_message_t*> batch(10'000);
  int at_end = 0;
  const int64_t deadline = bench::now_ms() + args.num("timeout-s", 300) * 1000;
  std::vector<bool> ended(static_cast<std::size_t>(partitions), false);
  while (at_end < partitions) {
    if (bench::now_ms() > deadline) throw std::runtime_error("verify: timed out reading the topic");
    const std::size_t n = queue.take(batch.data(), batch.size(), 500);
    for (std::size_t i = 0; i < n; ++i) {
      rill::kafka::MessagePtr m(batch[i]);
      if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (!ended[static_cast<std::size_t>(m->partition)]) {
          ended[static_cast<std::size_t>(m->partition)] = true;
          ++at_end;
        }
        continue;
      }
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
        throw std::runtime_error("verify: " + rill::kafka::error_of(*m));
      verifier.add(*m);
    }
  }
  rill::kafka::close_consumer(consumer.get());
  std::cout << verifier.json(args.optional("dump")) << std::endl;
  return 0;
}

// The p-th fraction of sorted `values` (microseconds), in milliseconds.
double percentile_ms(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0.0;
  auto index = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
  return static_cast<double>(sorted[index]) / 1000.0;
}

std::atomic<bool> latency_stop_requested{false};

int latency(const bench::Args& args) {
  KafkaPtr consumer = make_consumer(
      args.str("bootstrap"), {{"enable.partition.eof", "false"}, {"fetch.wait.max.ms", "100"}});
  assign_all(consumer.get(), args.str("topic"));
  const auto expected = static_cast<uint64_t>(args.num("count", 0));
  const int64_t skip_ms = args.num("skip-ms", 0);
  const int64_t deadline = bench::now_ms() + args.num("timeout-s", 300) * 1000;
  // --interval-s: one line per interval of receive time, until SIGTERM or the deadline.
  const int64_t interval_ms = args.num("interval-s", 0) * 1000;
  if (interval_ms > 0) std::signal(SIGTERM, [](int) { latency_stop_requested.store(true); });
  int64_t interval_end = bench::now_ms() + interval_ms;
  std::ofstream records_file;
  if (args.has("records-file")) records_file.open(args.str("records-file"));
  std::vector<int64_t> latencies_us, interval_us;
  latencies_us.reserve(expected);
  uint64_t received = 0;
  int64_t first_ts = -1;
  auto print_interval = [&] {
    std::sort(interval_us.begin(), interval_us.end());
    bench::JsonLine()
        .add("interval_end_ms", interval_end)
        .add("records", static_cast<uint64_t>(interval_us.size()))
        .add("p50_ms", percentile_ms(interval_us, 0.50))
        .add("p99_ms", percentile_ms(interval_us, 0.99))
        .add("max_ms", percentile_ms(interval_us, 1.0))
        .print();
    interval_us.clear();
    interval_end += interval_ms;
  };
  // One message at a time: a batch call would wait for its batch to fill.
  auto queue = rill::kafka::MessageQueue::of_consumer(consumer.get());
  while ((interval_ms > 0 || received < expected) && bench::now_ms() < deadline &&
         !latency_stop_requested.load()) {
    if (interval_ms > 0 && bench::now_ms() >= interval_end) print_interval();
    rd_kafka_message_t* taken = nullptr;
    if (queue.take(&taken, 1, 100) == 0) continue;
    const rill::kafka::MessagePtr m(taken);
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
    const int64_t now = bench::now_us();
    ++received;
    int64_t ts = rill::kafka::timestamp_of(*m);
    if (first_ts < 0) first_ts = ts;
    if (ts < first_ts + skip_ms) continue;  // warm-up
    (interval_ms > 0 ? interval_us : latencies_us).push_back(now - ts * 1000);
    if (records_file.is_open())
      records_file << now << ' ' << ts << ' ' << m->partition << ' ' << m->offset << '\n';
  }
  rill::kafka::close_consumer(consumer.get());
  if (interval_ms > 0) return 0;
  std::sort(latencies_us.begin(), latencies_us.end());
  bench::JsonLine()
      .add("records", received)
      .add("measured", static_cast<uint64_t>(latencies_us.size()))
      .add("complete", received >= expected)
      .add("p50_ms", percentile_ms(latencies_us, 0.50))
      .add("p99_ms", percentile_ms(latencies_us, 0.99))
      .add("max_ms", percentile_ms(latencies_us, 1.0))
      .print();
  return received >= expected ? 0 : 3;
}

// Waits until `group` has `members` members that share every partition of
// `topic`, each holding at least one, in two looks a moment apart: the runs
// that start several instances load their input only then, so that no
// partition moves while it is processed.
int group_ready(const bench::Args& args) {
  KafkaPtr client = make_consumer(args.str("bootstrap"));
  const std::string group = args.str("group"), topic = args.str("topic");
  const auto members = static_cast<std::size_t>(args.num("members"));
  const int partitions = bench::kafka::existing_partitions(client.get(), topic);
  const int64_t start = bench::now_ms();
  const int64_t deadline = start + args.num("timeout-s", 120) * 1000;
  int stable_looks = 0;
  while (bench::now_ms() < deadline) {
    const auto described =
        rill::kafka::describe_group(client.get(), group, std::chrono::seconds(5));
    bool ready = described && described->size() == members;
    int assigned = 0;
    for (std::size_t i = 0; ready && i < described->size(); ++i) {
      int mine = 0;
      for (const auto& partition : (*described)[i].partitions) mine += partition.topic == topic;
      ready = mine > 0;
      assigned += mine;
    }
    ready = ready && assigned == partitions;
    stable_looks = ready ? stable_looks + 1 : 0;
    if (stable_looks == 2) {
      bench::JsonLine()
          .add("members", static_cast<uint64_t>(members))
          .add("waited_ms", bench::now_ms() - start)
          .print();
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(ready ? 500 : 100));
  }
  std::cerr << "bench_tool: group " << group << " never had " << members
            << " members sharing the partitions of " << topic << "\n";
  return 3;
}

int queries(const bench::Args& args) {
  const std::string server = args.str("server");
  const std::size_t colon = server.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("--server wants host:port");
  const rill::HostInfo host{server.substr(0, colon), std::stoi(server.substr(colon + 1))};
  const std::string target_prefix =
      "/v1/stores/" + args.str("store") + "/keys/" + args.str("key-prefix", "u");
  const auto keys = static_cast<uint64_t>(args.num("keys"));
  const int64_t seconds = args.num("seconds");
  const int clients = static_cast<int>(args.num("clients", 4));
  // An answer this instance read itself names it as the host.
  const std::string self_host = "\"host\":\"" + server + "\"";

  struct Tally {
    std::vector<int64_t> local_us, forwarded_us;
    uint64_t answered = 0, not_found = 0, unavailable = 0, failed = 0;
  };
  auto ask = [&](std::mt19937_64& random, Tally& tally, bool timed) {
    const std::string target = target_prefix + std::to_string(random() % keys);
    std::string why;
    const int64_t start = bench::now_us();
    const auto answer = rill::queries::http_get(host, target, std::chrono::seconds(10), why);
    const int64_t took = bench::now_us() - start;
    if (!answer) {
      ++tally.failed;
    } else if (answer->status == 200) {
      ++tally.answered;
      if (timed)
        (answer->body.find(self_host) != std::string::npos ? tally.local_us : tally.forwarded_us)
            .push_back(took);
    } else if (answer->status == 404) {
      ++tally.answered;
      ++tally.not_found;
    } else if (answer->status == 503) {
      ++tally.unavailable;
    } else {
      ++tally.failed;
    }
  };

  std::mt19937_64 random(42);
  Tally warm_up;
  for (const int64_t end = bench::now_ms() + args.num("skip-ms", 0); bench::now_ms() < end;)
    ask(random, warm_up, false);
  Tally one;
  for (const int64_t end = bench::now_ms() + seconds * 1000; bench::now_ms() < end;)
    ask(random, one, true);
  std::vector<Tally> many(static_cast<std::size_t>(clients));
  {
    const int64_t end = bench::now_ms() + seconds * 1000;
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c)
      threads.emplace_back([&, c] {
        std::mt19937_64 own(static_cast<uint64_t>(100 + c));
        while (bench::now_ms() < end) ask(own, many[static_cast<std::size_t>(c)], false);
      });
    for (auto& thread : threads) thread.join();
  }
  uint64_t answered_by_many = 0, unavailable = one.unavailable, failed = one.failed;
  for (const Tally& tally : many) {
    answered_by_many += tally.answered;
    unavailable += tally.unavailable;
    failed += tally.failed;
  }
  std::sort(one.local_us.begin(), one.local_us.end());
  std::sort(one.forwarded_us.begin(), one.forwarded_us.end());
  const auto per_second = [seconds](uint64_t count) {
    return static_cast<double>(count) / static_cast<double>(seconds);
  };
  bench::JsonLine()
      .add("local", static_cast<uint64_t>(one.local_us.size()))
      .add("local_p50_ms", percentile_ms(one.local_us, 0.50))
      .add("local_p99_ms", percentile_ms(one.local_us, 0.99))
      .add("forwarded", static_cast<uint64_t>(one.forwarded_us.size()))
      .add("forwarded_p50_ms", percentile_ms(one.forwarded_us, 0.50))
      .add("forwarded_p99_ms", percentile_ms(one.forwarded_us, 0.99))
      .add("not_found", one.not_found)
      .add("qps_one_client", per_second(one.answered))
      .add("clients", clients)
      .add("qps_clients", per_second(answered_by_many))
      .add("unavailable", unavailable)
      .add("failed", failed)
      .print();
  return one.answered > 0 && failed == 0 ? 0 : 3;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: bench_tool create-topics|verify|latency|offsets|queries|group-ready "
                 "--name value...\n";
    return 2;
  }
  try {
    std::string command = argv[1];
    bench::Args args(argc, argv, 2);
    if (command == "create-topics") return create_topics(args);
    if (command == "verify") return verify(args);
    if (command == "latency") return latency(args);
    if (command == "offsets") return offsets(args);
    if (command == "queries") return queries(args);
    if (command == "group-ready") return group_ready(args);
    std::cerr << "bench_tool: unknown command '" << command << "'\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "bench_tool: " << e.what() << "\n";
    return 1;
  }
}
