// bench_generator: loads the benchmark's input topic with purchase events, as
// fast as librdkafka can send them or at a fixed rate, and writes what every
// workload's output must be. It also loads the second inputs of the join
// workloads: W6's table of customers and W7's orders and payments.
//
//   bench_generator --bootstrap HOST:PORT --topic T --count N --keys K
//       [--seed S] [--base-ts MS] [--event-span-ms MS] [--disorder-ms MS]
//       [--sequential-keys 1] [--rate RECORDS_PER_S] [--expected FILE] [--dry-run 1]
//       [--customers C]
//   bench_generator --kind customers --bootstrap HOST:PORT --topic T --count C
//       [--seed S] [--base-ts MS] [--expected FILE]
//   bench_generator --kind orders-payments --bootstrap HOST:PORT --topic ORDERS
//       --payments-topic PAYMENTS --count N --keys K [--seed S] [--base-ts MS]
//       [--event-span-ms MS] [--disorder-ms MS] [--expected FILE]
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
// --kind customers writes W6's table: C records, key "u<i>", value
// {"name":"customer-<i>","tier":"<tier>"}, timestamped a minute before --base-ts,
// so before every purchase (whose Kafka timestamp is when it was sent). With
// --customers C, the purchases' expected output includes W6's: every purchase
// of a user below C with that user's tier.
//
// --kind orders-payments writes W7's inputs: the N purchases above keyed by
// order id "o<i>" and timestamped with their "ts", and for each one payment of
// the same key, timestamped 0 to kMaxPaymentDelayMs after it (so about 80% are
// within W7's one-minute window), value {"order":"o<i>","method":"<m>","ts":<ms>}.
// Payments are written in timestamp order, orders in index order (their "ts"
// up to --disorder-ms out of order), so that no record of either comes so late
// that a join window store has dropped its partner.
//
// --expected writes the digest of each workload's correct output (see
// common/bench.h) as JSON; --dry-run computes it without producing. stdout gets
// one JSON line: records sent, seconds, records/s.
#include <algorithm>
#include <array>
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

// W6's customer tiers and W7's payment methods.
constexpr std::array<std::string_view, 4> kTiers{"bronze", "silver", "gold", "platinum"};
constexpr std::array<std::string_view, 4> kMethods{"card", "transfer", "wallet", "voucher"};
// W7: payments come 0 to 75 s after their order; the join window is 60 s.
constexpr int64_t kMaxPaymentDelayMs = 75'000;
// W6: the customers' timestamp, before --base-ts and so before every purchase.
constexpr int64_t kCustomersBeforeMs = 60'000;

std::string_view tier_of(uint64_t seed, uint64_t user) {
  return kTiers[splitmix64(seed * 0x2545f4914f6cdd1dull + user + 0x7ab1e) % kTiers.size()];
}

struct Payment {
  int64_t delay_ms = 0;
  std::string_view method;
};

Payment payment_of(uint64_t seed, uint64_t order) {
  uint64_t r = splitmix64(seed * 0x9e3779b97f4a7c15ull + order + 0x9a7e);
  return {static_cast<int64_t>(r % static_cast<uint64_t>(kMaxPaymentDelayMs + 1)),
          kMethods[(r >> 40) % kMethods.size()]};
}

std::string_view put_number(char* out, std::string_view prefix, uint64_t n) {
  std::memcpy(out, prefix.data(), prefix.size());
  char* end = std::to_chars(out + prefix.size(), out + 32, n).ptr;
  return {out, static_cast<std::size_t>(end - out)};
}

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
  Expected(uint64_t keys, uint64_t seed, uint64_t customers)
      : counts_(keys, 0), seed_(seed), customers_(customers) {}

  void add(const Event& e, std::string_view key) {
    if (static_cast<double>(e.cents) / 100.0 >= bench::kW1MinAmount)
      w1_.add(bench::w1_line(key, key, e.cents));
    if (e.user < customers_) w6_.add(bench::w6_line(key, key, e.cents, tier_of(seed_, e.user)));
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
    bench::JsonLine line;
    if (customers_ > 0)
      line.raw("w6", bench::JsonLine().add("records", w6_.count).add("digest", w6_.hex()).str());
    return line.add("records", records_)
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
  bench::Digest w6_;
  std::vector<int64_t> counts_;
  uint64_t seed_;
  uint64_t customers_;
  std::unordered_map<uint64_t, int64_t> windows_;
};

std::atomic<uint64_t> failed_deliveries{0};

// The producer every kind of input is written with, or nothing in a dry run.
class Sender {
 public:
  Sender(const bench::Args& args, bool dry_run, bool paced) {
    if (dry_run) return;
    std::map<std::string, std::string> properties{
        {"bootstrap.servers", args.str("bootstrap")},
        {"partitioner", "murmur2_random"},  // the Java client's, so keys land where Java puts them
        {"enable.idempotence", "true"},
        {"linger.ms", paced ? "1" : "20"},
        {"batch.num.messages", "10000"},
        {"queue.buffering.max.messages", "500000"},
        {"queue.buffering.max.kbytes", "1048576"},
    };
    rill::kafka::ConfPtr conf = rill::kafka::make_conf(properties);
    rill::kafka::on_delivery(conf.get(), [](rd_kafka_t*, const rd_kafka_message_t* message, void*) {
      if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR) failed_deliveries.fetch_add(1);
    });
    producer_ = rill::kafka::make_client(RD_KAFKA_PRODUCER, std::move(conf));
  }

  bool dry_run() const { return !producer_; }

  // The topic to send to; it must exist.
  rd_kafka_topic_t* topic(const std::string& name) {
    if (!producer_) return nullptr;
    bench::kafka::existing_partitions(producer_.get(), name);
    topics_.push_back(rill::kafka::open_topic(producer_.get(), name));
    return topics_.back().get();
  }

  // Queues a record; timestamp 0 is the time of sending.
  void send(rd_kafka_topic_t* topic, std::string_view key, std::string_view value,
            int64_t timestamp) {
    if (!producer_) return;
    if (const rill::kafka::ErrorPtr error = rill::kafka::produce(
            producer_.get(), topic, -1, key, value, timestamp, no_headers_, nullptr))
      throw rill::kafka::Error(error, "produce");
    if ((++sent_ & 1023) == 0) serve();
  }

  void serve() {
    if (producer_) rill::kafka::serve(producer_.get(), 0);
  }

  // Waits until every record is delivered; throws if one was not.
  void finish() {
    if (!producer_) return;
    if (rd_kafka_resp_err_t err = rill::kafka::flush(producer_.get(), std::chrono::minutes(2)))
      throw rill::kafka::Error(err, "flush");
    if (failed_deliveries.load() != 0)
      throw std::runtime_error(std::to_string(failed_deliveries.load()) +
                               " records were not delivered");
  }

 private:
  rill::kafka::KafkaPtr producer_;
  std::vector<rill::kafka::TopicPtr> topics_;
  rill::kafka::HeadersPtr no_headers_;
  uint64_t sent_ = 0;
};

int64_t spread_event_base(const Spec& spec, uint64_t i) {
  return spec.base_ts +
         static_cast<int64_t>(static_cast<double>(i) * static_cast<double>(spec.event_span_ms) /
                              static_cast<double>(spec.count));
}

// The purchases (W1-W6's input); returns the expected outputs as JSON.
std::string send_purchases(const bench::Args& args, const Spec& spec, Sender& sender,
                           bool with_expected) {
  const int64_t rate = args.num("rate", 0);
  rd_kafka_topic_t* topic = sender.topic(args.str("topic", "-"));
  Expected expected(with_expected ? spec.keys : 1, spec.seed,
                    static_cast<uint64_t>(args.num("customers", 0)));
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
        sender.serve();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      send_ms = bench::now_ms();
      event_base = send_ms;
    } else {
      event_base = spread_event_base(spec, i);
    }
    Event e = event_at(spec, i, event_base);
    auto [key_len, value_len] = format(e, key, value);
    if (with_expected) expected.add(e, std::string_view(key, key_len));
    sender.send(topic, std::string_view(key, key_len), std::string_view(value, value_len), send_ms);
  }
  return expected.json();
}

// W6's table: one customer per user, timestamped before every purchase.
std::string send_customers(const bench::Args& args, const Spec& spec, Sender& sender) {
  rd_kafka_topic_t* topic = sender.topic(args.str("topic", "-"));
  const int64_t timestamp = spec.base_ts - kCustomersBeforeMs;
  char key[32];
  std::string value;
  for (uint64_t user = 0; user < spec.count; ++user) {
    std::string_view k = put_number(key, "u", user);
    value.assign("{\"name\":\"customer-");
    value.append(k.substr(1));
    value.append("\",\"tier\":\"");
    value.append(tier_of(spec.seed, user));
    value.append("\"}");
    sender.send(topic, k, value, timestamp);
  }
  return bench::JsonLine().add("records", spec.count).str();
}

// W7's inputs: orders by order id, then their payments in timestamp order.
std::string send_orders_and_payments(const bench::Args& args, const Spec& spec, Sender& sender) {
  rd_kafka_topic_t* orders = sender.topic(args.str("topic", "-"));
  rd_kafka_topic_t* payments = sender.topic(args.str("payments-topic", "-"));
  bench::Digest w7;
  // (payment timestamp, order index): sorted before the payments are sent.
  std::vector<std::pair<int64_t, uint64_t>> due;
  due.reserve(spec.count);
  char key[32];
  char user[32];
  char value[512];
  for (uint64_t i = 0; i < spec.count; ++i) {
    Event e = event_at(spec, i, spread_event_base(spec, i));
    auto [user_len, value_len] = format(e, user, value);
    std::string_view k = put_number(key, "o", i);
    sender.send(orders, k, std::string_view(value, value_len), e.ts);
    Payment payment = payment_of(spec.seed, i);
    due.emplace_back(e.ts + payment.delay_ms, i);
    if (payment.delay_ms <= bench::kJoinWindowMs)
      w7.add(bench::w7_line(k, std::string_view(user, user_len), e.cents, payment.method,
                            payment.delay_ms));
  }
  std::sort(due.begin(), due.end());
  std::string payment_value;
  for (const auto& [ts, i] : due) {
    std::string_view k = put_number(key, "o", i);
    payment_value.assign("{\"order\":\"");
    payment_value.append(k);
    payment_value.append("\",\"method\":\"");
    payment_value.append(payment_of(spec.seed, i).method);
    payment_value.append("\",\"ts\":");
    payment_value.append(std::to_string(ts));
    payment_value.push_back('}');
    sender.send(payments, k, payment_value, ts);
  }
  return bench::JsonLine()
      .add("records", 2 * spec.count)
      .add("orders", spec.count)
      .add("payments", spec.count)
      .raw("w7", bench::JsonLine().add("records", w7.count).add("digest", w7.hex()).str())
      .str();
}

int run(const bench::Args& args) {
  Spec spec;
  spec.count = static_cast<uint64_t>(args.num("count"));
  spec.keys = static_cast<uint64_t>(std::max<int64_t>(1, args.num("keys", 1)));
  spec.seed = static_cast<uint64_t>(args.num("seed", 1));
  spec.base_ts = args.num("base-ts", bench::now_ms());
  spec.event_span_ms = args.num("event-span-ms", 300'000);
  spec.disorder_ms = args.num("disorder-ms", 2'000);
  spec.sequential_keys = args.num("sequential-keys", 0) != 0;
  const std::string kind = args.str("kind", "purchases");
  const bool dry_run = args.num("dry-run", 0) != 0;
  const std::string expected_file = args.optional("expected");

  Sender sender(args, dry_run, args.num("rate", 0) > 0);
  const int64_t start_us = bench::now_us();
  std::string expected;
  uint64_t sent = spec.count;
  if (kind == "purchases") {
    expected = send_purchases(args, spec, sender, !expected_file.empty());
  } else if (kind == "customers") {
    expected = send_customers(args, spec, sender);
  } else if (kind == "orders-payments") {
    expected = send_orders_and_payments(args, spec, sender);
    sent = 2 * spec.count;
  } else {
    throw std::invalid_argument("--kind must be purchases, customers or orders-payments");
  }
  sender.finish();
  const double seconds = static_cast<double>(bench::now_us() - start_us) / 1e6;
  if (!expected_file.empty()) bench::write_file(expected_file, expected + "\n");
  bench::JsonLine()
      .add("records", sent)
      .add("seconds", seconds)
      .add("records_per_s", seconds > 0 ? static_cast<double>(sent) / seconds : 0.0)
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
