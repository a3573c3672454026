// rill: runs, checks and describes pipelines described in YAML
// (docs/yaml-reference.md).
//
//   rill run orders.yaml               # on the cluster of bootstrap.servers, or embedded
//   rill run orders.yaml --set bootstrap.servers=kafka:9092 --until-idle 10s
//   rill validate orders.yaml          # exit code 2 with file:line:column on a mistake
//   rill describe orders.yaml --format dot | dot -Tsvg > orders.svg
//   rill reset orders.yaml --to-datetime 2026-11-01T00:00:00Z --dry-run
//   rill replay orders.yaml --until 2026-11-01T00:00:00Z   # the state as of a time
//   rill query orders.yaml --store totals --key alice       # ask a running deployment
//   rill archive orders.yaml --topic orders --to s3://events/archive   # keep old events
//   rill replay orders.yaml --until 2026-11-01T00:00:00Z --from-archive s3://events/archive
//
// Exit codes: 0 success, 1 failure while running, 2 a mistake in the
// pipeline file (or a topic it names that does not exist, or sources that
// meet in a stateful step with different partition counts).
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

// CLI::detail::split, used for repeated options, trips GCC 12's
// -Wnull-dereference inside std::vector's reallocation: a false positive in
// library code, silenced for CLI11's own definitions only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#pragma GCC diagnostic pop
#include <unistd.h>

#include "rill/kafka_streams.h"
#include "rill/pipeline/declaration.h"
#include "rill/pipeline/pipeline.h"
#include "rill/version.h"

#include "archive.h"
#include "kafka/admin.h"
#include "kafka/consumer.h"
#include "kafka/group.h"
#include "kafka/handles.h"
#include "kafka/mock_cluster.h"
#include "kafka/producer.h"
#include "queries/query_server.h"
#include "replay.h"
#include "reset.h"
#include "runtime/allocator.h"

namespace {

using rill::pipeline::Pipeline;
using rill::pipeline::PipelineError;

constexpr int kPipelineMistake = 2;

// Internal topics the runtime writes: repartition topics and changelogs.
std::set<std::string> internal_topics(const Pipeline& pipeline) {
  const std::string application_id = pipeline.config.get_string(rill::config::kApplicationId);
  std::set<std::string> topics;
  for (const auto& sub : pipeline.topology.subtopologies()) {
    for (const auto& topic : sub.sink_topics)
      if (topic.internal) topics.insert(topic.full_name(application_id));
    for (const auto& store : sub.stores) {
      const auto& spec = pipeline.topology.store(store).spec();
      if (spec.logging_enabled) topics.insert(spec.changelog_topic(application_id));
    }
  }
  return topics;
}

// How long `run` and `validate` wait for the cluster to answer.
constexpr std::chrono::seconds kClusterTimeout{10};

// Every topic on the cluster of bootstrap.servers, with its partition count.
std::map<std::string, int32_t> cluster_topics(const rill::StreamsConfig& config) {
  auto properties = config.client_properties("admin");
  properties["bootstrap.servers"] = config.get_string(rill::config::kBootstrapServers);
  properties["log_level"] = "3";
  const rill::kafka::KafkaPtr client =
      rill::kafka::make_client(RD_KAFKA_PRODUCER, rill::kafka::make_conf(properties));
  try {
    return rill::kafka::topic_partitions(client.get(), kClusterTimeout);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("cannot reach the cluster at " +
                             config.get_string(rill::config::kBootstrapServers) + ": " + e.what());
  }
}

// A topic the file names that the cluster lacks is a mistake at its place in
// the file; sources that meet in a stateful sub-topology with different
// partition counts are a TopologyError.
void check_against_cluster(const Pipeline& pipeline, const rill::StreamsConfig& config,
                           const std::map<std::string, int32_t>& topics) {
  for (const auto& use : pipeline.topics)
    if (!topics.contains(use.topic))
      throw PipelineError(use.position, "topic '" + use.topic + "' does not exist on " +
                                            config.get_string(rill::config::kBootstrapServers) +
                                            ", expected it created before the pipeline runs");
  pipeline.topology.partition_counts(config.get_string(rill::config::kApplicationId), topics);
}

// Produces a source's sample records until `stop` or its count is reached.
class GeneratorThread {
 public:
  GeneratorThread(rill::pipeline::Generator generator, const rill::StreamsConfig& config)
      : generator_(std::move(generator)) {
    auto properties = config.client_properties("producer");
    properties["bootstrap.servers"] = config.get_string(rill::config::kBootstrapServers);
    properties["linger.ms"] = "5";
    producer_ = rill::kafka::make_client(RD_KAFKA_PRODUCER, rill::kafka::make_conf(properties));
    topic_ = rill::kafka::open_topic(producer_.get(), generator_.topic);
    thread_ = std::thread([this] { run(); });
  }
  ~GeneratorThread() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
    rill::kafka::flush(producer_.get(), std::chrono::seconds(5));
  }
  GeneratorThread(const GeneratorThread&) = delete;
  GeneratorThread& operator=(const GeneratorThread&) = delete;

 private:
  void run() {
    for (int64_t n = 0; generator_.count == 0 || n < generator_.count; ++n) {
      const rill::pipeline::Json seed = {{"n", n}};
      const rill::pipeline::Json null_key;
      const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
      const rill::pipeline::EvalContext context{null_key, seed, now, nullptr};
      try {
        produce(generator_.key ? generator_.key->evaluate(context) : rill::pipeline::Json(),
                generator_.value(context), now);
      } catch (const std::exception& e) {
        std::cerr << "rill: generator of source '" << generator_.source << "': " << e.what()
                  << "\n";
        return;
      }
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, std::chrono::milliseconds(generator_.interval_ms),
                         [this] { return stop_; }))
        return;
    }
  }

  void produce(const rill::pipeline::Json& key, const rill::pipeline::Json& value, int64_t now) {
    std::string key_bytes, value_bytes;
    const bool has_key = generator_.key_serde->serialize(key, key_bytes);
    const bool has_value = generator_.value_serde->serialize(value, value_bytes);
    rill::kafka::HeadersPtr no_headers;
    if (const rill::kafka::ErrorPtr error =
            rill::kafka::produce(producer_.get(), topic_.get(), -1,
                                 has_key ? std::string_view(key_bytes) : std::string_view(),
                                 has_value ? std::string_view(value_bytes) : std::string_view(),
                                 now, no_headers, nullptr))
      throw rill::kafka::Error(error, "cannot produce to '" + generator_.topic + "'");
    rill::kafka::serve(producer_.get(), 0);
  }

  rill::pipeline::Generator generator_;
  rill::kafka::KafkaPtr producer_;
  rill::kafka::TopicPtr topic_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

// What the status line asks the cluster: how far the application's committed
// offsets are behind the ends of its source topics, and how many records its
// output topics hold. A consumer in the application's group that never joins
// it reads both.
class ClusterProbe {
 public:
  ClusterProbe(const Pipeline& pipeline, const rill::StreamsConfig& config) {
    auto properties = config.client_properties("consumer");
    properties["bootstrap.servers"] = config.get_string(rill::config::kBootstrapServers);
    properties["group.id"] = config.get_string(rill::config::kApplicationId);
    properties["log_level"] = "3";
    consumer_ = rill::kafka::make_client(RD_KAFKA_CONSUMER, rill::kafka::make_conf(properties));
    for (const auto& use : pipeline.topics) (use.source ? sources_ : sinks_).push_back(use.topic);
  }
  ~ClusterProbe() { rill::kafka::close_consumer(consumer_.get()); }
  ClusterProbe(const ClusterProbe&) = delete;
  ClusterProbe& operator=(const ClusterProbe&) = delete;

  // Records not yet committed, or nullopt when the cluster did not answer.
  std::optional<int64_t> lag() {
    std::vector<rill::kafka::TopicPartition> committed;
    try {
      committed =
          rill::kafka::consumer_of(consumer_.get())
              ->committed(partitions_of(sources_), std::chrono::milliseconds(kProbeTimeoutMs));
    } catch (const rill::kafka::Error&) {
      return std::nullopt;
    }
    const auto ends = watermarks(committed);
    if (!ends) return std::nullopt;
    int64_t total = 0;
    for (std::size_t i = 0; i < committed.size(); ++i) {
      const auto [low, high] = (*ends)[i];
      total += high - std::max(committed[i].offset, low);
    }
    return total;
  }

  // The end offsets of the output topics, summed: their growth is the rate
  // of records written.
  std::optional<int64_t> written() {
    const auto ends = watermarks(partitions_of(sinks_));
    if (!ends) return std::nullopt;
    int64_t total = 0;
    for (const auto& [low, high] : *ends) total += high;
    return total;
  }

 private:
  static constexpr int kProbeTimeoutMs = 2000;

  // Every partition of `topics` the cluster knows of.
  std::vector<rill::kafka::TopicPartition> partitions_of(const std::vector<std::string>& topics) {
    std::vector<rill::kafka::TopicPartition> partitions;
    for (const std::string& topic : topics) {
      std::optional<int32_t> count;
      try {
        count = rill::kafka::partition_count(consumer_.get(), topic,
                                             std::chrono::milliseconds(kProbeTimeoutMs));
      } catch (const std::runtime_error&) {
        // Not answering: the topic counts for nothing this time.
      }
      for (int32_t p = 0; p < count.value_or(0); ++p) partitions.push_back({topic, p});
    }
    return partitions;
  }

  // The low and high watermarks of each partition, in order.
  std::optional<std::vector<std::pair<int64_t, int64_t>>> watermarks(
      const std::vector<rill::kafka::TopicPartition>& list) {
    std::vector<std::pair<std::string, int32_t>> partitions;
    for (const rill::kafka::TopicPartition& tp : list)
      partitions.emplace_back(tp.topic, tp.partition);
    try {
      return rill::kafka::watermarks(consumer_.get(), partitions,
                                     std::chrono::milliseconds(kProbeTimeoutMs));
    } catch (const std::runtime_error&) {
      return std::nullopt;
    }
  }

  rill::kafka::KafkaPtr consumer_;
  std::vector<std::string> sources_;
  std::vector<std::string> sinks_;
};

// On a terminal: one line, rewritten every second, with the state, the rates
// in and out, the lag and the records the error handlers took.
class StatusLine {
 public:
  StatusLine(const rill::KafkaStreams& streams, std::unique_ptr<ClusterProbe> probe)
      : streams_(streams), probe_(std::move(probe)) {
    thread_ = std::thread([this] { run(); });
  }
  ~StatusLine() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
    std::cerr << "\n";
  }
  StatusLine(const StatusLine&) = delete;
  StatusLine& operator=(const StatusLine&) = delete;

 private:
  void run() {
    // The cluster's numbers take round trips: every few seconds is enough.
    constexpr int kProbeEvery = 5;
    uint64_t last_processed = 0;
    std::optional<int64_t> last_written;
    int tick = 0;
    std::string cluster = "out ?/s  lag ?";
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; })) {
      const rill::KafkaStreams::Stats stats = streams_.stats();
      if (tick++ % kProbeEvery == 0) {
        const std::optional<int64_t> written = probe_->written();
        const std::optional<int64_t> lag = probe_->lag();
        const bool rate_known = written && last_written && tick > 1;
        cluster = "out " +
                  (rate_known ? std::to_string((*written - *last_written) / kProbeEvery)
                              : std::string("?")) +
                  "/s  lag " + (lag ? std::to_string(*lag) : std::string("?"));
        last_written = written;
      }
      // A store restoring (its snapshot downloading first) says how much is left.
      std::string restoring;
      if (stats.snapshot_download_bytes > 0)
        restoring = "snapshot " + std::to_string(stats.snapshot_download_bytes / 1024) +
                    " KiB to download  ";
      if (stats.restoring_records > 0)
        restoring += "restoring " + std::to_string(stats.restoring_records) + " records  ";
      std::cerr << "\r\033[K" << restoring << rill::to_string(streams_.state()) << "  in "
                << stats.processed_records - last_processed << "/s  " << cluster << "  "
                << stats.processed_records << " processed  " << stats.active_tasks << " tasks  "
                << stats.skipped_records << " skipped  " << stats.dead_lettered_records
                << " dead-lettered" << std::flush;
      last_processed = stats.processed_records;
    }
  }

  const rill::KafkaStreams& streams_;
  std::unique_ptr<ClusterProbe> probe_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

class TemporaryDirectory {
 public:
  TemporaryDirectory() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "rill-embedded-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("cannot create a temporary state directory");
    path_ = pattern;
  }
  ~TemporaryDirectory() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// What `rill run` takes besides the file.
struct RunOptions {
  rill::pipeline::Settings overrides;
  std::optional<int> metrics_port;
  rill::RunLimits limits;
};

// host:port with the port replaced, or the port alone (which binds 127.0.0.1).
std::string with_port(const std::string& address, int port) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) return std::to_string(port);
  return address.substr(0, colon + 1) + std::to_string(port);
}

// What operators dropped or handlers skipped, said once at the end: drops
// that are right (late records, records without a key) still surprise.
void print_summary(const rill::KafkaStreams::Stats& stats) {
  std::cerr << "rill: processed " << stats.processed_records << " records; dropped "
            << stats.dropped_records
            << " (later than their window's grace period, or without the key an aggregation "
               "needs); skipped "
            << stats.skipped_records << " bad records; dead-lettered "
            << stats.dead_lettered_records << "\n";
}

int run(const std::string& file, const RunOptions& options) {
  Pipeline pipeline =
      rill::pipeline::load_file(file, rill::pipeline::process_environment(), options.overrides);
  rill::StreamsConfig config = pipeline.config;
  if (options.metrics_port)
    config.set(std::string(rill::config::kMetricsAddress),
               with_port(config.get_string(rill::config::kMetricsAddress), *options.metrics_port));
  std::unique_ptr<rill::kafka::MockCluster> cluster;
  std::unique_ptr<TemporaryDirectory> state_dir;
  if (pipeline.embedded) {
    cluster = std::make_unique<rill::kafka::MockCluster>();
    config.set(std::string(rill::config::kBootstrapServers), cluster->bootstrap_servers());
    // State from an earlier run would refer to offsets of a cluster that is gone.
    state_dir = std::make_unique<TemporaryDirectory>();
    config.set(std::string(rill::config::kStateDir), state_dir->path());
    // The embedded cluster cannot create topics when asked: every topic is
    // made here, internal ones with the counts the runtime would give them.
    std::map<std::string, int32_t> topics;
    for (const auto& use : pipeline.topics) {
      cluster->create_topic(use.topic, use.partitions);
      topics.emplace(use.topic, use.partitions);  // the first wins, as in the cluster
    }
    const auto counts =
        pipeline.topology.partition_counts(config.get_string(rill::config::kApplicationId), topics);
    for (const auto& topic : internal_topics(pipeline))
      cluster->create_topic(topic, counts.at(topic));
    std::cerr << "rill: running on an embedded cluster at " << cluster->bootstrap_servers()
              << ". It keeps nothing: topics, offsets and state are gone when rill stops. Set "
                 "bootstrap.servers to run on Kafka.\n";
  } else {
    check_against_cluster(pipeline, config, cluster_topics(config));
  }
  rill::KafkaStreams streams(pipeline.topology, config);
  streams.start();
  // Sample records go only to the embedded cluster, never into a real one.
  std::vector<std::unique_ptr<GeneratorThread>> generators;
  for (auto& generator : pipeline.generators) {
    if (pipeline.embedded)
      generators.push_back(std::make_unique<GeneratorThread>(std::move(generator), config));
    else
      std::cerr << "rill: the generator of source '" << generator.source
                << "' is off: generators feed only the embedded cluster\n";
  }
  std::unique_ptr<StatusLine> status;
  if (isatty(STDERR_FILENO) != 0)
    status =
        std::make_unique<StatusLine>(streams, std::make_unique<ClusterProbe>(pipeline, config));
  const int code = rill::run_until_signal(streams, options.limits);
  status.reset();
  generators.clear();
  streams.close();
  print_summary(streams.stats());
  return code;
}

int validate(const std::string& file) {
  Pipeline pipeline = rill::pipeline::load_file(file);
  std::cout << file << ": ok, " << pipeline.topology.subtopologies().size() << " sub-topologies, "
            << pipeline.topology.stores().size() << " state stores, reads";
  for (const auto& use : pipeline.topics)
    if (use.source) std::cout << " " << use.topic;
  std::cout << ", writes";
  for (const auto& use : pipeline.topics)
    if (!use.source) std::cout << " " << use.topic;
  std::cout << "\n";
  if (pipeline.config.get_string(rill::config::kDeserializationHandler) == "log-and-fail" ||
      pipeline.config.get_string(rill::config::kProcessingHandler) == "log-and-fail")
    std::cout << file
              << ": note: the first record that does not parse or whose expression fails stops "
                 "the pipeline (log-and-fail); to set such records aside in a dead-letter "
                 "topic, see \"Bad records\" in docs/yaml-reference.md\n";
  if (pipeline.embedded) return 0;
  // Topics and partition counts are checked where the cluster can be reached;
  // a file is still valid where it cannot (validated before deployment).
  std::map<std::string, int32_t> topics;
  try {
    topics = cluster_topics(pipeline.config);
  } catch (const std::runtime_error& e) {
    std::cout << file << ": topics not checked: " << e.what() << "\n";
    return 0;
  }
  check_against_cluster(pipeline, pipeline.config, topics);
  std::cout << file << ": topics and partition counts agree with the cluster at "
            << pipeline.config.get_string(rill::config::kBootstrapServers) << "\n";
  return 0;
}

int describe(const std::string& file, const std::string& format) {
  Pipeline pipeline = rill::pipeline::load_file(file);
  if (format == "dot")
    std::cout << pipeline.topology.describe_dot();
  else if (format == "mermaid")
    std::cout << pipeline.topology.describe_mermaid();
  else
    std::cout << pipeline.topology.describe();
  return 0;
}

struct QueryOptions {
  std::string store;
  std::optional<std::string> key;
  std::optional<std::string> from;
  std::optional<std::string> to;
  std::optional<std::size_t> limit;
  std::string server;
  bool stale = false;
};

// Asks a running deployment of the pipeline (the instance at --server, else
// the file's application.server) for a key, a range or a key's windows, and
// prints its JSON answer.
int query(const std::string& file, const rill::pipeline::Settings& overrides,
          const QueryOptions& options) {
  Pipeline pipeline =
      rill::pipeline::load_file(file, rill::pipeline::process_environment(), overrides);
  const std::string server = options.server.empty()
                                 ? pipeline.config.get_string(rill::config::kApplicationServer)
                                 : options.server;
  const std::size_t colon = server.rfind(':');
  int port = 0;
  if (server.empty() || colon == std::string::npos || colon == 0 ||
      std::from_chars(server.data() + colon + 1, server.data() + server.size(), port).ec !=
          std::errc() ||
      port <= 0 || port > 65535) {
    std::cerr << file << ": "
              << (server.empty() ? "no application.server to ask: set it in the application "
                                   "section, or give --server host:port"
                                 : "--server " + server + ": expected host:port")
              << "\n";
    return kPipelineMistake;
  }
  const rill::StoreBuilder* store = nullptr;
  std::string names;
  for (const rill::StoreBuilder& candidate : pipeline.topology.stores()) {
    if (pipeline.topology.is_global_store(candidate.name())) continue;
    if (candidate.name() == options.store) store = &candidate;
    names += (names.empty() ? "" : ", ") + candidate.name();
  }
  if (store == nullptr) {
    std::cerr << file << ": no store '" << options.store
              << "' to query; the pipeline's stores: " << (names.empty() ? "(none)" : names)
              << "\n";
    return kPipelineMistake;
  }
  using rill::queries::encode_url;
  std::string target = "/v1/stores/" + encode_url(options.store);
  auto add = [&target](const char* name, const std::string& value) {
    target += (target.find('?') == std::string::npos ? "?" : "&") + std::string(name) + "=" +
              encode_url(value);
  };
  if (store->spec().kind == rill::StoreKind::kWindow) {
    if (!options.key) {
      std::cerr << file << ": store '" << options.store
                << "' is a window store: give --key, and --from/--to as times in ms\n";
      return kPipelineMistake;
    }
    target += "/windows";
    add("key", *options.key);
    if (options.from) add("from", *options.from);
    if (options.to) add("to", *options.to);
  } else if (options.key) {
    target += "/keys/" + encode_url(*options.key);
  } else {
    target += "/range";
    if (options.from) add("from", *options.from);
    if (options.to) add("to", *options.to);
    if (options.limit) add("limit", std::to_string(*options.limit));
  }
  if (options.stale) add("stale", "true");
  std::string why;
  const auto answer = rill::queries::http_get({server.substr(0, colon), port}, target,
                                              std::chrono::seconds(15), why);
  if (!answer) {
    std::cerr << "rill query: " << server << " did not answer: " << why << "\n";
    return 1;
  }
  const nlohmann::json body = nlohmann::json::parse(answer->body, nullptr, false);
  if (answer->status == 200) {
    std::cout << (body.is_discarded() ? answer->body : body.dump(2) + "\n");
    return 0;
  }
  std::cerr << "rill query: " << answer->status << ": "
            << (body.is_object() ? body.value("error", answer->body) : answer->body)
            << (answer->status == 503 ? " (retry)" : "") << "\n";
  return 1;
}

struct ResetOptions {
  std::string application_id;
  std::string bootstrap_server;
  std::vector<std::string> input_topics;
  std::string to_datetime;
  std::string by_duration;
  std::optional<int64_t> to_offset;
  bool delete_local_state = false;
  std::string state_dir;
  bool dry_run = false;
};

int reset(const std::string& file,
          const std::vector<std::pair<std::string, std::string>>& overrides,
          const ResetOptions& options) {
  rill::cli::ResetPlan plan;
  if (!file.empty()) {
    const Pipeline pipeline =
        rill::pipeline::load_file(file, rill::pipeline::process_environment(), overrides);
    plan.application_id = pipeline.config.get_string(rill::config::kApplicationId);
    plan.bootstrap_servers = pipeline.config.get_string(rill::config::kBootstrapServers);
    plan.client_properties = pipeline.config.client_properties("admin");
    plan.internal_topics = internal_topics(pipeline);
    std::set<std::string> inputs;
    for (const auto& sub : pipeline.topology.subtopologies())
      for (const auto& topic : sub.source_topics)
        if (!topic.internal) inputs.insert(topic.name);
    plan.input_topics.assign(inputs.begin(), inputs.end());
    if (options.delete_local_state)
      plan.local_state =
          std::filesystem::path(pipeline.config.get_string(rill::config::kStateDir)) /
          plan.application_id;
  }
  if (!options.application_id.empty()) plan.application_id = options.application_id;
  if (!options.bootstrap_server.empty()) plan.bootstrap_servers = options.bootstrap_server;
  if (!options.input_topics.empty()) plan.input_topics = options.input_topics;
  if (!options.state_dir.empty() && options.delete_local_state)
    plan.local_state = std::filesystem::path(options.state_dir) / plan.application_id;
  if (plan.application_id.empty() || plan.bootstrap_servers.empty()) {
    std::cerr << "rill reset: which application on which cluster? Give a pipeline file with "
                 "bootstrap.servers, or --application-id and --bootstrap-server\n";
    return kPipelineMistake;
  }
  if (options.delete_local_state && !plan.local_state) {
    std::cerr << "rill reset: --delete-local-state needs --state-dir without a pipeline file\n";
    return kPipelineMistake;
  }
  try {
    if (!options.to_datetime.empty()) {
      plan.target = rill::cli::ResetPlan::Target::kTime;
      plan.timestamp_ms = rill::cli::parse_datetime_ms(options.to_datetime);
    } else if (!options.by_duration.empty()) {
      plan.target = rill::cli::ResetPlan::Target::kTime;
      plan.timestamp_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count() -
                          rill::pipeline::parse_duration_ms(options.by_duration);
    } else if (options.to_offset) {
      plan.target = rill::cli::ResetPlan::Target::kOffset;
      plan.offset = *options.to_offset;
    }
  } catch (const std::invalid_argument& e) {
    std::cerr << "rill reset: "
              << (options.to_datetime.empty() ? "--by-duration: " : "--to-datetime: ") << e.what()
              << "\n";
    return kPipelineMistake;
  }
  plan.dry_run = options.dry_run;
  return rill::cli::reset_application(plan, std::cout, std::cerr);
}

struct ReplayOptions {
  std::string until;
  std::string application_id;
  // Reads every source topic from this archive first (archive.location,
  // archive.topics=*).
  std::string from_archive;
};

struct ArchiveOptions {
  std::vector<std::string> topics;
  std::string to;
  std::string bootstrap_server;
  std::string until;
  std::optional<int64_t> until_offset;
  std::string segment_size;
  bool verify = false;
};

int archive(const std::string& file,
            const std::vector<std::pair<std::string, std::string>>& settings,
            const ArchiveOptions& options) {
  rill::cli::ArchiveCommand command;
  if (!file.empty()) {
    const Pipeline pipeline =
        rill::pipeline::load_file(file, rill::pipeline::process_environment(), settings);
    command.config = pipeline.config;
  } else {
    for (const auto& [key, value] : settings) command.config.set(key, value);
  }
  if (!options.bootstrap_server.empty())
    command.config.set(std::string(rill::config::kBootstrapServers), options.bootstrap_server);
  command.location =
      options.to.empty() ? command.config.get_string(rill::config::kArchiveLocation) : options.to;
  command.topics = options.topics;
  if (command.topics.empty()) {
    // The sources marked `archive: true`, or listed in archive.topics.
    for (std::string& topic : command.config.get_list(rill::config::kArchiveTopics))
      if (topic != "*") command.topics.push_back(std::move(topic));
  }
  if (command.config.get_string(rill::config::kBootstrapServers).empty() ||
      command.location.empty() || command.topics.empty()) {
    std::cerr << "rill archive: which topics of which cluster, to where? Give --topic, "
                 "--bootstrap-server and --to, or a pipeline file with bootstrap.servers, "
                 "archive.location and sources marked archive: true\n";
    return kPipelineMistake;
  }
  try {
    if (!options.until.empty()) command.until_ms = rill::cli::parse_datetime_ms(options.until);
  } catch (const std::invalid_argument& e) {
    std::cerr << "rill archive: --until: " << e.what() << "\n";
    return kPipelineMistake;
  }
  command.until_offset = options.until_offset;
  if (!options.segment_size.empty()) {
    // Digits, then K or M or nothing: anything else ("16MB", "1.5M") is refused.
    const std::string& text = options.segment_size;
    uint64_t bytes = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), bytes);
    const std::string unit(end, text.data() + text.size());
    const uint64_t scale = unit.empty()                 ? 1
                           : unit == "K" || unit == "k" ? 1024
                           : unit == "M" || unit == "m" ? 1024 * 1024
                                                        : 0;
    command.segment_bytes = error == std::errc() && bytes < (uint64_t{1} << 40)
                                ? static_cast<std::size_t>(bytes * scale)
                                : 0;
    if (command.segment_bytes == 0) {
      std::cerr << "rill archive: --segment-size: '" << options.segment_size
                << "' is not a size like 16M, 512K or 65536\n";
      return kPipelineMistake;
    }
  }
  command.verify = options.verify;
  command.progress = isatty(STDERR_FILENO) != 0;
  return rill::cli::run_archive(command, std::cout, std::cerr);
}

int replay(const std::string& file,
           const std::vector<std::pair<std::string, std::string>>& settings,
           const ReplayOptions& options) {
  int64_t until_ms = 0;
  try {
    until_ms = rill::cli::parse_datetime_ms(options.until);
  } catch (const std::invalid_argument& e) {
    std::cerr << "rill replay: --until: " << e.what() << "\n";
    return kPipelineMistake;
  }
  const std::string stamp = rill::cli::compact_datetime(until_ms);
  const auto as_of = [&stamp](const std::string& topic) { return topic + "-as-of-" + stamp; };
  const Pipeline original =
      rill::pipeline::load_file(file, rill::pipeline::process_environment(), settings);
  if (original.embedded) {
    std::cerr << "rill replay: " << file
              << ": no bootstrap.servers: a replay reads the log of a Kafka cluster\n";
    return kPipelineMistake;
  }
  // Its own application id, outputs and dead letters: the replay writes
  // nothing the running application reads or writes. Settings given last win.
  rill::pipeline::Settings overrides = {
      {std::string(rill::config::kApplicationId),
       options.application_id.empty()
           ? original.config.get_string(rill::config::kApplicationId) + "-replay-" + stamp
           : options.application_id},
      {std::string(rill::config::kCommitIntervalMs), "1000"}};
  const std::string dead_letters = original.config.get_string(rill::config::kDeadLetterTopic);
  if (!dead_letters.empty())
    overrides.emplace_back(std::string(rill::config::kDeadLetterTopic), as_of(dead_letters));
  if (!options.from_archive.empty()) {
    overrides.emplace_back(std::string(rill::config::kArchiveLocation), options.from_archive);
    overrides.emplace_back(std::string(rill::config::kArchiveTopics), "*");
  }
  for (const auto& setting : settings)
    if (setting.first != rill::config::kApplicationId || options.application_id.empty())
      overrides.push_back(setting);
  Pipeline pipeline =
      rill::pipeline::load_file(file, rill::pipeline::process_environment(), overrides, as_of);
  rill::StreamsConfig config = pipeline.config;

  rill::cli::ReplayReport report;
  report.application_id = config.get_string(rill::config::kApplicationId);
  report.until = rill::cli::format_datetime(until_ms);
  std::map<std::string, int32_t> topics = cluster_topics(config);
  // The as-of topics take the partitions of the topics they stand for.
  std::vector<rill::kafka::NewTopic> to_create;
  std::set<std::string> originals;
  for (const auto& use : original.topics)
    if (!use.source) originals.insert(use.topic);
  for (const std::string& topic : originals) {
    const std::string replayed = as_of(topic);
    if (topic == dead_letters || topics.contains(replayed)) continue;
    const auto count = topics.find(topic);
    to_create.push_back({replayed,
                         count == topics.end() ? 1 : count->second,
                         static_cast<int32_t>(config.get_int(rill::config::kReplicationFactor)),
                         {}});
  }
  for (const auto& topic : to_create) report.output_topics.push_back(topic.name);
  if (!dead_letters.empty() && !topics.contains(as_of(dead_letters)))
    to_create.push_back({as_of(dead_letters),
                         1,
                         static_cast<int32_t>(config.get_int(rill::config::kReplicationFactor)),
                         {}});
  if (!to_create.empty()) {
    auto properties = config.client_properties("admin");
    properties["bootstrap.servers"] = config.get_string(rill::config::kBootstrapServers);
    const rill::kafka::KafkaPtr admin =
        rill::kafka::make_client(RD_KAFKA_PRODUCER, rill::kafka::make_conf(properties));
    rill::kafka::create_topics(admin.get(), to_create, kClusterTimeout);
    for (const auto& topic : to_create) topics[topic.name] = topic.partitions;
  }
  check_against_cluster(pipeline, config, topics);
  for (const std::string& topic : internal_topics(pipeline))
    if (topic.ends_with("-changelog")) report.changelog_topics.push_back(topic);

  rill::KafkaStreams streams(pipeline.topology, config);
  streams.replay_until(until_ms);
  streams.start();
  return rill::cli::run_replay(streams, report, isatty(STDERR_FILENO) != 0, std::cout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "rill: stream processing on Kafka, with pipelines described in YAML.\n"
      "The pipeline format: docs/yaml-reference.md."};
  app.require_subcommand(1);
  std::string file;
  std::string format = "text";

  CLI::App* run_command =
      app.add_subcommand("run",
                         "Run a pipeline until SIGINT or SIGTERM (then commit and close). "
                         "Without bootstrap.servers it runs on an embedded cluster.");
  run_command->add_option("FILE", file, "The pipeline file")->required();
  std::vector<std::string> settings;
  run_command->add_option("--set", settings,
                          "KEY=VALUE: an application setting that replaces the file's "
                          "(repeatable; any key of docs/configuration.md or librdkafka)");
  std::string run_for;
  run_command->add_option("--for", run_for,
                          "Commit and close after this long (500ms, 30s, 5m, 1h, 1d)");
  std::string until_idle;
  run_command->add_option("--until-idle", until_idle,
                          "Commit and close once the input is drained and no record arrived "
                          "for this long: a bounded input processed, for CI jobs and replays");
  std::optional<int> metrics_port;
  run_command
      ->add_option("--metrics-port", metrics_port,
                   "The port of /metrics, /healthz and /readyz (the host of metrics.address "
                   "stays; 127.0.0.1 without one); 0 picks a free port")
      ->check(CLI::Range(0, 65535));
  std::string log_level;
  run_command->add_option("--log-level", log_level, "Log level, as the key log.level (replaces it)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  CLI::App* validate_command =
      app.add_subcommand("validate", "Check a pipeline file; exit code 2 on a mistake.");
  validate_command->add_option("FILE", file, "The pipeline file")->required();
  CLI::App* describe_command = app.add_subcommand("describe", "Print the topology of a pipeline.");
  describe_command->add_option("FILE", file, "The pipeline file")->required();
  describe_command->add_option("--format", format, "text, dot (Graphviz) or mermaid")
      ->check(CLI::IsMember({"text", "dot", "mermaid"}));
  CLI::App* reset_command = app.add_subcommand(
      "reset",
      "Reset an application so that its next run reprocesses its input: move the group's input "
      "offsets back, delete its internal topics (changelogs, repartition topics) and, when asked, "
      "its local state. Refuses while an instance runs.");
  reset_command->add_option("FILE", file,
                            "The pipeline file; for a C++ application give --application-id, "
                            "--bootstrap-server and --input-topics instead");
  ResetOptions reset_options;
  reset_command->add_option("--application-id", reset_options.application_id,
                            "The application.id (replaces the file's)");
  reset_command->add_option("--bootstrap-server", reset_options.bootstrap_server,
                            "The cluster (replaces the file's bootstrap.servers)");
  reset_command
      ->add_option("--input-topics", reset_options.input_topics,
                   "The input topics whose offsets move (replaces the file's sources)")
      ->delimiter(',');
  bool to_earliest_flag = false;
  CLI::Option* to_earliest = reset_command->add_flag("--to-earliest", to_earliest_flag,
                                                     "To the earliest offsets (the default)");
  CLI::Option* to_datetime = reset_command->add_option(
      "--to-datetime", reset_options.to_datetime,
      "To the first record at or after this time (2026-11-01T00:00:00Z; UTC without an offset)");
  CLI::Option* by_duration =
      reset_command->add_option("--by-duration", reset_options.by_duration,
                                "To the first record at or after this long ago (90m, 1d)");
  CLI::Option* to_offset =
      reset_command->add_option("--to-offset", reset_options.to_offset, "To this offset");
  to_earliest->excludes(to_datetime, by_duration, to_offset);
  to_datetime->excludes(by_duration, to_offset);
  by_duration->excludes(to_offset);
  reset_command->add_flag("--delete-local-state", reset_options.delete_local_state,
                          "Delete the local state directory (state.dir/application.id) too");
  reset_command->add_option("--state-dir", reset_options.state_dir,
                            "The state.dir of a C++ application, for --delete-local-state");
  reset_command->add_flag("--dry-run", reset_options.dry_run, "Print the plan; change nothing");
  reset_command->add_option("--set", settings, "KEY=VALUE: a setting that replaces the file's");
  CLI::App* replay_command = app.add_subcommand(
      "replay",
      "Rebuild a pipeline's state as of a point in event time: process each input partition up "
      "to its last record at or before --until, under an application id of its own, writing "
      "the outputs to <topic>-as-of-<time> topics; then stop. Interrupted, the same command "
      "continues.");
  replay_command->add_option("FILE", file, "The pipeline file")->required();
  ReplayOptions replay_options;
  replay_command
      ->add_option("--until", replay_options.until,
                   "The time (2026-11-01T00:00:00Z; UTC without an offset)")
      ->required();
  replay_command->add_option("--application-id", replay_options.application_id,
                             "The replay's application.id (default: "
                             "<application.id>-replay-<time>)");
  replay_command->add_option("--from-archive", replay_options.from_archive,
                             "Read what retention deleted from the source topics from this "
                             "archive (s3://bucket[/prefix] or a directory; rill archive "
                             "writes it) first: the replay starts at the first event");
  replay_command->add_option("--set", settings, "KEY=VALUE: a setting that replaces the file's");
  CLI::App* archive_command = app.add_subcommand(
      "archive",
      "Copy topics' records into their archive in an object store, as compressed segments per "
      "partition with an index, from where the archive ends to the topic's end (or --until); "
      "sources marked archive: true (or rill replay --from-archive) read from it what "
      "retention deleted. --verify compares the archive with the topic instead.");
  archive_command->add_option("FILE", file,
                              "A pipeline file: its cluster, s3.* settings, archive.location and "
                              "the sources marked archive: true");
  ArchiveOptions archive_options;
  archive_command->add_option("--topic", archive_options.topics, "A topic (repeatable)");
  archive_command->add_option("--to", archive_options.to,
                              "The archive: s3://bucket[/prefix] (with --set s3.endpoint=..., "
                              "s3.access.key.id, s3.secret.access.key) or a directory "
                              "(replaces archive.location)");
  archive_command->add_option("--bootstrap-server", archive_options.bootstrap_server,
                              "The cluster (replaces the file's bootstrap.servers)");
  CLI::Option* archive_until = archive_command->add_option(
      "--until", archive_options.until,
      "Up to the last record at or before this time (2026-11-01T00:00:00Z)");
  archive_command
      ->add_option("--until-offset", archive_options.until_offset,
                   "Up to this offset (excluded) of each partition")
      ->excludes(archive_until);
  archive_command->add_option("--segment-size", archive_options.segment_size,
                              "Records per segment, by their size before compression "
                              "(default 16M)");
  archive_command->add_flag("--verify", archive_options.verify,
                            "Check every segment's checksum, and compare each archived record "
                            "the topic still holds with the topic's; exit code 1 on a difference");
  archive_command->add_option("--set", settings, "KEY=VALUE: a setting (s3.*, client settings)");
  CLI::App* query_command = app.add_subcommand(
      "query",
      "Ask a running deployment of a pipeline for a store's key, range of keys, or a key's "
      "windows, through the query endpoint of one of its instances (docs/queries.md); prints "
      "the JSON answer.");
  query_command->add_option("FILE", file, "The pipeline file")->required();
  QueryOptions query_options;
  query_command->add_option("--store", query_options.store, "The store: an aggregation's name")
      ->required();
  query_command->add_option("--key", query_options.key, "A key (of a window store: its windows)");
  query_command->add_option("--from", query_options.from,
                            "The first key of a range; of a window store, the first window "
                            "start (ms since the epoch)");
  query_command->add_option("--to", query_options.to,
                            "The last key of a range; of a window store, the last window start");
  query_command->add_option("--limit", query_options.limit, "At most this many keys of a range")
      ->check(CLI::Range(1, 100'000));
  query_command->add_option("--server", query_options.server,
                            "host:port of an instance (default: the file's application.server)");
  query_command->add_flag("--stale", query_options.stale,
                          "A key or its windows may come from a standby copy when the instance "
                          "holding them cannot answer (the answer says \"stale\": true)");
  query_command->add_option("--set", settings, "KEY=VALUE: a setting that replaces the file's");
  CLI::App* version_command = app.add_subcommand("version", "Print rill's version.");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kPipelineMistake;
  }

  try {
    if (version_command->parsed()) {
      std::cout << "rill " << RILL_VERSION_STRING << "\n"
                << "malloc from " << rill::runtime::allocator_library() << "\n";
      return 0;
    }
    if (validate_command->parsed()) return validate(file);
    if (describe_command->parsed()) return describe(file, format);
    RunOptions options;
    for (const std::string& setting : settings) {
      const auto equals = setting.find('=');
      if (equals == std::string::npos || equals == 0) {
        std::cerr << "rill: --set " << setting << ": expected KEY=VALUE\n";
        return kPipelineMistake;
      }
      options.overrides.emplace_back(setting.substr(0, equals), setting.substr(equals + 1));
    }
    if (reset_command->parsed()) return reset(file, options.overrides, reset_options);
    if (replay_command->parsed()) return replay(file, options.overrides, replay_options);
    if (query_command->parsed()) return query(file, options.overrides, query_options);
    if (archive_command->parsed()) return archive(file, options.overrides, archive_options);
    if (!log_level.empty()) options.overrides.emplace_back(rill::config::kLogLevel, log_level);
    options.metrics_port = metrics_port;
    auto duration = [](const char* option, const std::string& text) {
      try {
        return std::chrono::milliseconds(text.empty() ? 0
                                                      : rill::pipeline::parse_duration_ms(text));
      } catch (const std::invalid_argument& e) {
        throw std::invalid_argument(std::string("rill run: ") + option + ": " + e.what());
      }
    };
    try {
      options.limits.duration = duration("--for", run_for);
      options.limits.idle = duration("--until-idle", until_idle);
    } catch (const std::invalid_argument& e) {
      std::cerr << e.what() << "\n";
      return kPipelineMistake;
    }
    return run(file, options);
  } catch (const PipelineError& e) {
    std::cerr << e.report();
    return kPipelineMistake;
  } catch (const rill::ConfigError& e) {
    std::cerr << file << ": " << e.what() << "\n";
    return kPipelineMistake;
  } catch (const rill::TopologyError& e) {
    std::cerr << file << ": " << e.what() << "\n";
    return kPipelineMistake;
  } catch (const std::exception& e) {
    std::cerr << "rill: " << e.what() << "\n";
    return 1;
  }
}
