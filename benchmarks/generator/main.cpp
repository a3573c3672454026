// bench_generator: loads the benchmark's input topic with purchase events, as
// fast as librdkafka can send them or at a fixed rate, and writes what every
// workload's output must be.
//
//   bench_generator --bootstrap HOST:PORT --topic T --count N --keys K
//       [--seed S] [--base-ts MS] [--event-span-ms MS] [--disorder-ms MS]
//       [--sequential-keys 1] [--rate RECORDS_PER_S] [--expected FILE] [--dry-run 1]
//
// Record i has key "u<user>" and a 150-byte JSON value
//   {"user":"u<user>","amount":D.CC,"category":"c<n>","ts":<event ms>,"seq":i,"pad":"xx..."}
// user is random in [0, K) (or i % K with --sequential-keys), amount uniform in
// [0, 100) with two decimals, so W1 keeps about half. Event time runs from
// --base-ts over --event-span-ms across the records, each minus a random
// disorder of up to --disorder-ms, so events arrive somewhat out of order.
// Every field comes from a hash of (seed, i): the same arguments give the same
// records.
//
// With --rate the records are sent at that rate and "ts" is the wall clock at
// sending minus the disorder; the Kafka timestamp is always the time of sending,
// which is what latency is measured from.
//
// --expected writes the digest of each workload's correct output (see
// common/bench.h) as JSON; --dry-run computes it without producing. stdout gets
// one JSON line: records sent, seconds, records/s.
#include <algorithm>
#include <charconv>
#include <thread>
#include <unordered_map>

#include "common/bench.h"
#include "common/kafka.h"

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

struct Spec {
  uint64_t count = 0;
  uint64_t keys = 1;
  uint64_t seed = 1;
  int64_t base_ts = 0;
  int64_t event_span_ms = 300'000;
  int64_t disorder_ms = 2'000;
  bool sequential_keys = false;
};

struct Event {
  uint64_t user = 0;
  int64_t cents = 0;
  uint64_t category = 0;
  int64_t ts = 0;
  uint64_t seq = 0;
};

Event event_at(const Spec& spec, uint64_t i, int64_t event_base) {
  uint64_t r1 = splitmix64(spec.seed * 0x100000001b3ull + i);
  uint64_t r2 = splitmix64(r1);
  Event e;
  e.seq = i;
  e.user = spec.sequential_keys ? i % spec.keys : r1 % spec.keys;
  e.cents = static_cast<int64_t>((r1 >> 32) % 10'000);
  e.category = (r2 >> 40) % 20;
  e.ts = event_base - static_cast<int64_t>(r2 % static_cast<uint64_t>(spec.disorder_ms + 1));
  return e;
}

constexpr std::size_t kValueSize = 150;

// Writes the key into `key` and the value into `value`; returns their lengths.
std::pair<std::size_t, std::size_t> format(const Event& e, char* key, char* value) {
  char* k = key;
  *k++ = 'u';
  k = std::to_chars(k, k + 24, e.user).ptr;

  char* p = value;
  auto put = [&p](std::string_view s) {
    std::memcpy(p, s.data(), s.size());
    p += s.size();
  };
  put("{\"user\":\"");
  put(std::string_view(key, static_cast<std::size_t>(k - key)));
  put("\",\"amount\":");
  p = std::to_chars(p, p + 24, e.cents / 100).ptr;
  *p++ = '.';
  *p++ = static_cast<char>('0' + (e.cents % 100) / 10);
  *p++ = static_cast<char>('0' + e.cents % 10);
  put(",\"category\":\"c");
  p = std::to_chars(p, p + 24, e.category).ptr;
  put("\",\"ts\":");
  p = std::to_chars(p, p + 24, e.ts).ptr;
  put(",\"seq\":");
  p = std::to_chars(p, p + 24, e.seq).ptr;
  put(",\"pad\":\"");
  auto used = static_cast<std::size_t>(p - value) + 2;
  std::size_t pad = used < kValueSize ? kValueSize - used : 1;
  std::memset(p, 'x', pad);
  p += pad;
  put("\"}");
  return {static_cast<std::size_t>(k - key), static_cast<std::size_t>(p - value)};
}

// The correct output of each workload over the records generated.
class Expected {
 public:
  explicit Expected(uint64_t keys) : counts_(keys, 0) {}

  void add(const Event& e, std::string_view key) {
    if (static_cast<double>(e.cents) / 100.0 >= bench::kW1MinAmount)
      w1_.add(bench::w1_line(key, key, e.cents));
    ++counts_[e.user];
    int64_t start = e.ts - (e.ts % bench::kWindowMs);
    windows_[(e.user << 32) | static_cast<uint64_t>(start / bench::kWindowMs)] += e.cents;
    ++records_;
  }

  std::string json() const {
    bench::Digest w2;
    int64_t total = 0;
    for (std::size_t user = 0; user < counts_.size(); ++user) {
      if (counts_[user] == 0) continue;
      w2.add(bench::w2_line("u" + std::to_string(user), counts_[user]));
      total += counts_[user];
    }
    bench::Digest w3;
    int64_t total_cents = 0;
    for (const auto& [id, cents] : windows_) {
      w3.add(bench::w3_line("u" + std::to_string(id >> 32),
                            static_cast<int64_t>(id & 0xffffffffu) * bench::kWindowMs, cents));
      total_cents += cents;
    }
    return bench::JsonLine()
        .add("records", records_)
        .raw("w1", bench::JsonLine().add("records", w1_.count).add("digest", w1_.hex()).str())
        .raw("w2", bench::JsonLine()
                       .add("keys", w2.count)
                       .add("total", total)
                       .add("digest", w2.hex())
                       .str())
        .raw("w3", bench::JsonLine()
                       .add("windows", w3.count)
                       .add("total_cents", total_cents)
                       .add("digest", w3.hex())
                       .str())
        .str();
  }

 private:
  uint64_t records_ = 0;
  bench::Digest w1_;
  std::vector<int64_t> counts_;
  std::unordered_map<uint64_t, int64_t> windows_;
};

std::atomic<uint64_t> failed_deliveries{0};

int run(const bench::Args& args) {
  Spec spec;
  spec.count = static_cast<uint64_t>(args.num("count"));
  spec.keys = static_cast<uint64_t>(std::max<int64_t>(1, args.num("keys")));
  spec.seed = static_cast<uint64_t>(args.num("seed", 1));
  spec.base_ts = args.num("base-ts", bench::now_ms());
  spec.event_span_ms = args.num("event-span-ms", 300'000);
  spec.disorder_ms = args.num("disorder-ms", 2'000);
  spec.sequential_keys = args.num("sequential-keys", 0) != 0;
  const int64_t rate = args.num("rate", 0);
  const bool dry_run = args.num("dry-run", 0) != 0;
  const std::string expected_file = args.optional("expected");

  rill::kafka::KafkaPtr producer;
  rill::kafka::TopicPtr topic;
  if (!dry_run) {
    std::map<std::string, std::string> properties{
        {"bootstrap.servers", args.str("bootstrap")},
        {"partitioner", "murmur2_random"},  // the Java client's, so keys land where Java puts them
        {"enable.idempotence", "true"},
        {"linger.ms", rate > 0 ? "1" : "20"},
        {"batch.num.messages", "10000"},
        {"queue.buffering.max.messages", "500000"},
        {"queue.buffering.max.kbytes", "1048576"},
    };
    rill::kafka::ConfPtr conf = rill::kafka::make_conf(properties);
    rill::kafka::on_delivery(conf.get(), [](rd_kafka_t*, const rd_kafka_message_t* message, void*) {
      if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) failed_deliveries.fetch_add(1);
    });
    producer = rill::kafka::make_client(RD_KAFKA_PRODUCER, std::move(conf));
    topic = rill::kafka::open_topic(producer.get(), args.str("topic"));
    bench::kafka::existing_partitions(producer.get(), args.str("topic"));
  }

  Expected expected(expected_file.empty() ? 1 : spec.keys);
  rill::kafka::HeadersPtr no_headers;
  char key[32];
  char value[512];
  const int64_t start_us = bench::now_us();
  for (uint64_t i = 0; i < spec.count; ++i) {
    int64_t send_ms = 0;
    int64_t event_base = 0;
    if (rate > 0) {
      // Record i is due at start + i/rate; wait for it, serving deliveries.
      int64_t due_us = start_us + static_cast<int64_t>(i * 1'000'000 / static_cast<uint64_t>(rate));
      while (bench::now_us() < due_us) {
        if (producer) rill::kafka::serve(producer.get(), 0);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      send_ms = bench::now_ms();
      event_base = send_ms;
    } else {
      event_base = spec.base_ts + static_cast<int64_t>(static_cast<double>(i) *
                                                       static_cast<double>(spec.event_span_ms) /
                                                       static_cast<double>(spec.count));
    }
    Event e = event_at(spec, i, event_base);
    auto [key_len, value_len] = format(e, key, value);
    if (!expected_file.empty()) expected.add(e, std::string_view(key, key_len));
    if (dry_run) continue;
    if (const rill::kafka::ErrorPtr error =
            rill::kafka::produce(producer.get(), topic.get(), -1, std::string_view(key, key_len),
                                 std::string_view(value, value_len), send_ms, no_headers, nullptr))
      throw rill::kafka::Error(error, "produce");
    if ((i & 1023) == 0) rill::kafka::serve(producer.get(), 0);
  }
  if (producer) {
    if (rd_kafka_resp_err_t err = rill::kafka::flush(producer.get(), std::chrono::minutes(2)))
      throw rill::kafka::Error(err, "flush");
    if (failed_deliveries.load() != 0)
      throw std::runtime_error(std::to_string(failed_deliveries.load()) +
                               " records were not delivered");
  }
  const double seconds = static_cast<double>(bench::now_us() - start_us) / 1e6;
  if (!expected_file.empty()) bench::write_file(expected_file, expected.json() + "\n");
  bench::JsonLine()
      .add("records", spec.count)
      .add("seconds", seconds)
      .add("records_per_s", seconds > 0 ? static_cast<double>(spec.count) / seconds : 0.0)
      .print();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(bench::Args(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "bench_generator: " << e.what() << "\n";
    return 1;
  }
}
