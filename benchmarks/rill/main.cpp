// bench_rill: runs one benchmark workload on rill through the C++ DSL, stops
// by itself when the work is done and prints one JSON line of timings (the
// same fields as the Kafka Streams and raw librdkafka programs).
//
//   bench_rill --list                        the workloads available, one per line
//   bench_rill --workload W --bootstrap B --application-id A --input T --output T
//       [--threads N] [--guarantee at_least_once|exactly_once_v2] [--state-dir DIR]
//       --expect RECORDS [--timeout-s S] [--ready-file PATH] [--linger-ms MS] [--grace-ms MS]
//       [--partitions N] [--config key=value,key=value] [--second-input T]
//       [--query-keys K [--query-skip-ms MS]] [--snapshot-at-end 1] [--group-progress DIR]
//
// --second-input is the joins' other topic (W6's customers, W7's payments).
// Most workloads stop once RECORDS input records (of every input) are processed; W5's restore
// stops once the N changelog partitions of its store are restored.
//
// --group-progress makes RECORDS the count of the whole group: instances of one
// application sharing DIR stop once they have processed RECORDS together.
//
// --query-keys has a thread read random keys "u<0..K-1>" of the store "counts"
// from the moment the instance runs until the work is done, one at a time, as
// interactive queries (KafkaStreams::store); the reads after the first MS
// milliseconds are timed (query_reads, query_p50_ms, query_p99_ms).
//
// --snapshot-at-end 1 has every task snapshot as of the end (snapshots must be on).
//
// The workloads are in workloads.cpp.
#include <algorithm>
#include <optional>
#include <random>
#include <thread>

#include "rill/kafka_streams.h"

#include "workloads.h"

namespace {

using bench::rill_workloads::Completion;

int run(const bench::Args& args) {
  const std::string name = args.str("workload");
  const auto* workload = bench::rill_workloads::find_workload(name);
  if (workload == nullptr) {
    std::cerr << "bench_rill: workload '" << name << "' is not available\n";
    return 4;
  }
  const int threads = static_cast<int>(args.num("threads", 1));
  const auto expect = static_cast<uint64_t>(args.num("expect", 0));
  const std::string ready_file = args.optional("ready-file");
  const int64_t start_ms = bench::now_ms();
  const int64_t deadline = start_ms + args.num("timeout-s", 600) * 1000;

  bench::FirstRecord first_record;
  bench::rill_workloads::Context context{args.str("input"), args.optional("second-input"),
                                         args.str("output"), &first_record,
                                         args.num("grace-ms", 10'000)};
  rill::StreamsBuilder builder;
  workload->build(builder, context);

  rill::StreamsConfig config{
      {"application.id", args.str("application-id")},
      {"bootstrap.servers", args.str("bootstrap")},
      {"num.stream.threads", std::to_string(threads)},
      {"processing.guarantee", args.str("guarantee", "at_least_once")},
      {"state.dir", args.str("state-dir", "/tmp/rill-bench")},
  };
  if (args.has("linger-ms")) config.set("producer.linger.ms", args.str("linger-ms"));
  // Extra "key=value,key=value" settings, for experiments.
  std::string extra = args.optional("config");
  for (std::size_t begin = 0; begin < extra.size();) {
    std::size_t end = std::min(extra.find(',', begin), extra.size());
    std::string entry = extra.substr(begin, end - begin);
    std::size_t eq = entry.find('=');
    if (eq == std::string::npos) throw std::invalid_argument("--config wants key=value,...");
    config.set(entry.substr(0, eq), entry.substr(eq + 1));
    begin = end + 1;
  }

  rill::KafkaStreams streams(builder.build(), config);
  // W5: restoration is over when every changelog partition reported done.
  const auto partitions = static_cast<uint64_t>(args.num("partitions", 1));
  std::atomic<int64_t> restore_start_ms{0}, restore_end_ms{0};
  std::atomic<uint64_t> restored_partitions{0};
  if (workload->completion == Completion::kRestored)
    streams.set_restore_listener([&](const rill::KafkaStreams::RestoreProgress& progress) {
      int64_t expected = 0;
      restore_start_ms.compare_exchange_strong(expected, bench::now_ms());
      if (progress.done) {
        restore_end_ms.store(bench::now_ms());
        restored_partitions.fetch_add(1);
      }
    });
  std::atomic<int64_t> running_ms{0};
  streams.set_state_listener([&](rill::KafkaStreams::State now, rill::KafkaStreams::State) {
    if (now != rill::KafkaStreams::State::kRunning || running_ms.load() != 0) return;
    running_ms.store(bench::now_ms());
    if (!ready_file.empty()) bench::write_file(ready_file, "running\n");
  });
  streams.start();

  // Interactive queries while the workload runs.
  const auto query_keys = static_cast<uint64_t>(args.num("query-keys", 0));
  std::atomic<bool> reading{query_keys > 0};
  std::vector<int64_t> read_us;
  uint64_t reads_unavailable = 0;
  std::thread reader;
  if (query_keys > 0)
    reader = std::thread([&] {
      while (reading.load() && running_ms.load() == 0)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      const int64_t timed_from = bench::now_ms() + args.num("query-skip-ms", 0);
      auto counts =
          streams.store("counts", rill::QueryableStoreTypes::key_value<std::string, int64_t>());
      std::mt19937_64 random(7);
      while (reading.load()) {
        const std::string key = "u" + std::to_string(random() % query_keys);
        const int64_t start = bench::now_us();
        try {
          (void)counts.get(key);
        } catch (const rill::StoreUnavailableError&) {
          ++reads_unavailable;
          continue;
        }
        if (bench::now_ms() >= timed_from) read_us.push_back(bench::now_us() - start);
      }
    });

  std::optional<bench::GroupProgress> group_progress;
  if (args.has("group-progress")) group_progress.emplace(args.str("group-progress"));
  bool timed_out = false;
  std::string error;
  while (true) {
    auto state = streams.state();
    if (state == rill::KafkaStreams::State::kError ||
        state == rill::KafkaStreams::State::kNotRunning) {
      error =
          "rill stopped in state " + std::string(rill::to_string(state)) + ": " + streams.error();
      break;
    }
    if (workload->completion == Completion::kProcessed) {
      const uint64_t processed = streams.stats().processed_records;
      if ((group_progress ? group_progress->update(processed) : processed) >= expect) break;
    }
    if (workload->completion == Completion::kRestored && restored_partitions.load() >= partitions)
      break;
    if (bench::now_ms() > deadline) {
      timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const int64_t done_ms = bench::now_ms();
  const double done_cpu = bench::cpu_seconds();
  reading.store(false);
  if (reader.joinable()) reader.join();
  // W5b's fill: every task's snapshot as of the end, uploaded by close().
  if (args.has("snapshot-at-end") && !streams.snapshot())
    error = "--snapshot-at-end: snapshots are off (state.snapshot.interval.ms is 0)";
  streams.close();
  const int64_t closed_ms = bench::now_ms();

  bench::JsonLine line;
  line.add("system", "rill")
      .add("workload", name)
      .add("threads", threads)
      .add("processed", streams.stats().processed_records)
      .add("start_ms", start_ms)
      .add("running_ms", running_ms.load())
      .add("first_record_ms", first_record.ms())
      .add("done_ms", done_ms)
      .add("closed_ms", closed_ms)
      .add("cpu_first_s", first_record.cpu())
      .add("cpu_done_s", done_cpu)
      .add("cpu_closed_s", bench::cpu_seconds())
      .add("partition_pauses", streams.stats().partition_pauses)
      // What the configuration lets state take: the record caches and RocksDB's block
      // cache, which its memtables are charged to.
      .add("state_memory_budget_bytes", config.get_int("statestore.cache.max.bytes") +
                                            config.get_int("rocksdb.block.cache.bytes"))
      .add("timed_out", timed_out);
  if (workload->completion == Completion::kRestored)
    line.add("restored_records", streams.stats().restored_records)
        .add("restore_start_ms", restore_start_ms.load())
        .add("restore_end_ms", restore_end_ms.load())
        .add("restored_partitions", restored_partitions.load());
  if (query_keys > 0) {
    std::sort(read_us.begin(), read_us.end());
    auto percentile_ms = [&](double p) {
      if (read_us.empty()) return 0.0;
      return static_cast<double>(
                 read_us[static_cast<std::size_t>(p * static_cast<double>(read_us.size() - 1))]) /
             1000.0;
    };
    line.add("query_reads", static_cast<uint64_t>(read_us.size()))
        .add("query_p50_ms", percentile_ms(0.50))
        .add("query_p99_ms", percentile_ms(0.99))
        .add("query_unavailable", reads_unavailable);
  }
  if (!error.empty()) line.add("error", error);
  line.print();
  return timed_out || !error.empty() ? 3 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 2 && std::string_view(argv[1]) == "--list") {
      for (const auto& workload : bench::rill_workloads::workloads())
        std::cout << workload.name << "\t" << workload.description << "\n";
      return 0;
    }
    return run(bench::Args(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "bench_rill: " << e.what() << "\n";
    return 1;
  }
}
