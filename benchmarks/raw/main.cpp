// bench_raw: W1 straight on librdkafka, with no framework in between: the
// physical limit of stateless consume-transform-produce on this machine.
//
//   bench_raw --bootstrap B --group G --input T --output T [--threads N]
//       --expect RECORDS [--timeout-s S] [--ready-file PATH] [--linger-ms MS]
//
// One consumer in group G, as in rill; each assigned partition's queue is
// forwarded to one of N worker threads (partition p to worker p % N), which
// consume from it directly and feed one shared producer, as rill's workers
// share one. Clients are configured as rill configures its own
// (cooperative-sticky, manual commits, idempotent producer, murmur2_random
// partitioner, librdkafka defaults otherwise), so the difference to rill is
// the framework alone. A worker takes whatever is queued without waiting for
// a full batch, and blocks only when nothing is. Values are parsed with
// simdjson On Demand, only up to the two fields W1 needs; the output is
// written from the input's bytes (the user string and the amount token are
// copied, not re-encoded). Offsets are committed after a producer flush,
// every 30 s and at the end: at-least-once, as rill. As rill's readers, a
// worker whose queue librdkafka held back (at queued.min.messages) wakes its
// partitions' fetchers once it has drained to half of that, from a thread of
// their own (kafka/fetch_hold_back.h): librdkafka 2.0 would look at them again
// only a second later, and runs that met it took up to three times as long.
//
// Stops once RECORDS input records are processed and prints one JSON line of
// timings, the same fields as the other systems' programs.
#include <charconv>
#include <thread>

#include <simdjson.h>

#include "common/bench.h"
#include "common/kafka.h"
#include "kafka/fetch_hold_back.h"

namespace {

using rill::kafka::KafkaPtr;

constexpr std::size_t kBatch = 500;  // as rill's polling thread
constexpr int kPollTimeoutMs = 50;
constexpr int64_t kCommitIntervalMs = 30'000;
// librdkafka's default queued.min.messages, which this program keeps.
constexpr std::size_t kQueuedMinMessages = 100'000;

std::atomic<uint64_t> failed_deliveries{0};
std::atomic<uint64_t> processed{0};
std::atomic<bool> stopping{false};
bench::FirstRecord first_record;

struct Worker {
  rill::kafka::QueuePtr queue;
  // The input partitions forwarded to `queue`: librdkafka holds them all
  // back while it holds kQueuedMinMessages.
  std::vector<int32_t> partitions;
  rill::kafka::FetchHoldBack hold_back{kQueuedMinMessages};
  // Per input partition, -1 when nothing was processed. Read by the worker's
  // own commits, and by the final commit after the worker has stopped.
  std::vector<int64_t> next_offset;
  std::thread thread;
};

struct App {
  std::vector<std::unique_ptr<Worker>> workers;
  std::atomic<int> assigned{0};
};

// On assignment, each partition's queue is forwarded to its worker's queue,
// so its messages never pass through the consumer's own queue.
void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                  rd_kafka_topic_partition_list_t* partitions, void* opaque) {
  auto* app = static_cast<App*>(opaque);
  rd_kafka_error_t* error = nullptr;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    error = rd_kafka_incremental_assign(rk, partitions);
    for (int i = 0; i < partitions->cnt; ++i) {
      const rd_kafka_topic_partition_t& tp = partitions->elems[i];
      Worker& worker = *app->workers[static_cast<std::size_t>(tp.partition) % app->workers.size()];
      rill::kafka::QueuePtr queue(rd_kafka_queue_get_partition(rk, tp.topic, tp.partition));
      rd_kafka_queue_forward(queue.get(), worker.queue.get());
    }
    app->assigned.fetch_add(partitions->cnt);
  } else {
    error = rd_kafka_incremental_unassign(rk, partitions);
    app->assigned.fetch_sub(partitions->cnt);
  }
  if (error != nullptr) {
    std::cerr << "bench_raw: rebalance: " << rd_kafka_error_string(error) << "\n";
    rd_kafka_error_destroy(error);
  }
}

// Commits what `worker` processed; call after a producer flush.
void commit(rd_kafka_t* consumer, Worker& worker, const std::string& input) {
  rill::kafka::PartitionListPtr offsets(rd_kafka_topic_partition_list_new(4));
  for (std::size_t p = 0; p < worker.next_offset.size(); ++p)
    if (worker.next_offset[p] >= 0)
      rd_kafka_topic_partition_list_add(offsets.get(), input.c_str(), static_cast<int32_t>(p))
          ->offset = worker.next_offset[p];
  if (offsets->cnt > 0) rd_kafka_commit(consumer, offsets.get(), 0);
}

class W1Transform {
 public:
  // Appends W1's output for `value` to `out`; false when the record is
  // filtered out or malformed.
  bool operator()(const char* value, std::size_t len, std::string& out) {
    padded_.assign(value, len);
    padded_.append(simdjson::SIMDJSON_PADDING, '\0');
    auto doc = parser_.iterate(padded_.data(), len, padded_.size());
    simdjson::ondemand::raw_json_string user;
    if (doc["user"].get_raw_json_string().get(user) != simdjson::SUCCESS) return false;
    // The user string ends at the first unescaped quote after it starts.
    const char* user_begin = user.raw();
    const char* user_end = user_begin;
    while (*user_end != '"') user_end += *user_end == '\\' ? 2 : 1;
    simdjson::ondemand::value amount_value;
    if (doc["amount"].get(amount_value) != simdjson::SUCCESS) return false;
    std::string_view token = amount_value.raw_json_token();
    while (!token.empty() && (token.back() == ' ' || token.back() == '\n')) token.remove_suffix(1);
    double amount = 0;
    auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), amount);
    if (ec != std::errc() || end != token.data() + token.size()) return false;
    if (amount < bench::kW1MinAmount) return false;
    out.append("{\"user\":\"");
    out.append(user_begin, static_cast<std::size_t>(user_end - user_begin));
    out.append("\",\"amount\":");
    out.append(token);
    out.push_back('}');
    return true;
  }

 private:
  simdjson::ondemand::parser parser_;
  std::string padded_;
};

void run_worker(Worker& worker, rd_kafka_t* consumer, rd_kafka_t* producer,
                rd_kafka_topic_t* output, const std::string& input,
                rill::kafka::FetchWaker& waker) {
  std::vector<rd_kafka_message_t*> batch(kBatch);
  W1Transform transform;
  std::string value;
  rill::kafka::HeadersPtr no_headers;
  int64_t next_commit = bench::now_ms() + kCommitIntervalMs;
  while (!stopping.load(std::memory_order_relaxed)) {
    // Whatever is queued, without waiting for a full batch; when nothing is,
    // wait for one message.
    ssize_t n = rd_kafka_consume_batch_queue(worker.queue.get(), 0, batch.data(), batch.size());
    if (n == 0) {
      rd_kafka_message_t* first = rd_kafka_consume_queue(worker.queue.get(), kPollTimeoutMs);
      if (first != nullptr) batch[static_cast<std::size_t>(n++)] = first;
    }
    if (worker.hold_back.observe(rd_kafka_queue_length(worker.queue.get()),
                                 static_cast<std::size_t>(n)) ==
        rill::kafka::FetchHoldBack::Change::kDrained)
      for (int32_t partition : worker.partitions) waker.wake(input, partition);
    uint64_t done = 0;
    for (ssize_t i = 0; i < n; ++i) {
      rill::kafka::MessagePtr m(batch[static_cast<std::size_t>(i)]);
      if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) continue;
      first_record.mark();
      value.clear();
      if (m->payload != nullptr && transform(static_cast<const char*>(m->payload), m->len, value)) {
        std::string_view key(static_cast<const char*>(m->key), m->key ? m->key_len : 0);
        int64_t timestamp = rd_kafka_message_timestamp(m.get(), nullptr);
        if (const rill::kafka::ErrorPtr error = rill::kafka::produce(
                producer, output, -1, key, value, timestamp, no_headers, nullptr)) {
          std::cerr << "bench_raw: produce: " << rd_kafka_error_string(error.get()) << "\n";
          std::exit(1);
        }
      }
      auto partition = static_cast<std::size_t>(m->partition);
      if (partition >= worker.next_offset.size()) worker.next_offset.resize(partition + 1, -1);
      worker.next_offset[partition] = m->offset + 1;
      ++done;
    }
    if (done > 0) processed.fetch_add(done, std::memory_order_relaxed);
    rd_kafka_poll(producer, 0);
    if (bench::now_ms() >= next_commit) {
      rd_kafka_flush(producer, 60'000);
      commit(consumer, worker, input);
      next_commit = bench::now_ms() + kCommitIntervalMs;
    }
  }
}

int run(const bench::Args& args) {
  const std::string bootstrap = args.str("bootstrap");
  const std::string input = args.str("input");
  const int threads = static_cast<int>(args.num("threads", 1));
  const auto expect = static_cast<uint64_t>(args.num("expect"));
  const std::string ready_file = args.optional("ready-file");
  const int64_t start_ms = bench::now_ms();
  const int64_t deadline = start_ms + args.num("timeout-s", 600) * 1000;

  std::map<std::string, std::string> producer_properties{
      {"bootstrap.servers", bootstrap},
      {"client.id", args.str("group") + "-producer"},
      {"partitioner", "murmur2_random"},
      {"enable.idempotence", "true"},
  };
  if (args.has("linger-ms")) producer_properties["linger.ms"] = args.str("linger-ms");
  rill::kafka::ConfPtr producer_conf = rill::kafka::make_conf(producer_properties);
  rd_kafka_conf_set_dr_msg_cb(producer_conf.get(),
                              [](rd_kafka_t*, const rd_kafka_message_t* message, void*) {
                                if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR)
                                  failed_deliveries.fetch_add(1);
                              });
  KafkaPtr producer = rill::kafka::make_client(RD_KAFKA_PRODUCER, std::move(producer_conf));
  rill::kafka::TopicPtr output(
      rd_kafka_topic_new(producer.get(), args.str("output").c_str(), nullptr));
  const int partitions = bench::kafka::existing_partitions(producer.get(), input);

  KafkaPtr consumer;  // declared first so that it outlives the workers' queues
  App app;
  {
    rill::kafka::ConfPtr conf = rill::kafka::make_conf({
        {"bootstrap.servers", bootstrap},
        {"client.id", args.str("group") + "-consumer"},
        {"group.id", args.str("group")},
        {"partition.assignment.strategy", "cooperative-sticky"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"session.timeout.ms", "45000"},
    });
    rd_kafka_conf_set_rebalance_cb(conf.get(), on_rebalance);
    rd_kafka_conf_set_opaque(conf.get(), &app);
    consumer = rill::kafka::make_client(RD_KAFKA_CONSUMER, std::move(conf));
  }
  rd_kafka_poll_set_consumer(consumer.get());
  for (int t = 0; t < threads; ++t) {
    auto worker = std::make_unique<Worker>();
    worker->queue.reset(rd_kafka_queue_new(consumer.get()));
    for (int32_t partition = t; partition < partitions; partition += threads)
      worker->partitions.push_back(partition);
    app.workers.push_back(std::move(worker));
  }
  rill::kafka::FetchWaker waker(consumer.get());
  rill::kafka::PartitionListPtr topics(rd_kafka_topic_partition_list_new(1));
  rd_kafka_topic_partition_list_add(topics.get(), input.c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer.get(), topics.get()))
    throw std::runtime_error(std::string("subscribe: ") + rd_kafka_err2str(err));
  for (auto& worker : app.workers)
    worker->thread = std::thread(run_worker, std::ref(*worker), consumer.get(), producer.get(),
                                 output.get(), std::cref(input), std::ref(waker));

  // This thread serves the consumer's own queue: rebalances and errors.
  int64_t running_ms = 0;
  bool timed_out = false;
  while (processed.load() < expect) {
    if (rd_kafka_message_t* event = rd_kafka_consumer_poll(consumer.get(), 5)) {
      if (event->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
          event->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        std::cerr << "bench_raw: consumer: " << rd_kafka_message_errstr(event) << "\n";
      rd_kafka_message_destroy(event);
    }
    if (running_ms == 0 && app.assigned.load() >= partitions) {
      running_ms = bench::now_ms();
      if (!ready_file.empty()) bench::write_file(ready_file, "running\n");
    }
    if (bench::now_ms() > deadline) {
      timed_out = true;
      break;
    }
  }
  const int64_t done_ms = bench::now_ms();
  const double done_cpu = bench::cpu_seconds();
  stopping.store(true);
  for (auto& worker : app.workers) worker->thread.join();
  waker.stop();
  rd_kafka_flush(producer.get(), 60'000);
  for (auto& worker : app.workers) commit(consumer.get(), *worker, input);
  rd_kafka_consumer_close(consumer.get());
  const int64_t closed_ms = bench::now_ms();
  bench::JsonLine()
      .add("system", "raw")
      .add("workload", "w1")
      .add("threads", threads)
      .add("processed", processed.load())
      .add("start_ms", start_ms)
      .add("running_ms", running_ms)
      .add("first_record_ms", first_record.ms())
      .add("done_ms", done_ms)
      .add("closed_ms", closed_ms)
      .add("cpu_first_s", first_record.cpu())
      .add("cpu_done_s", done_cpu)
      .add("cpu_closed_s", bench::cpu_seconds())
      .add("failed_deliveries", failed_deliveries.load())
      .add("timed_out", timed_out)
      .print();
  return timed_out || failed_deliveries.load() != 0 ? 3 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(bench::Args(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "bench_raw: " << e.what() << "\n";
    return 1;
  }
}
