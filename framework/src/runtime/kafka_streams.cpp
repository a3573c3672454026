// The running application: one polling thread owns the consumer and the
// commit protocol; a Boost.Asio pool of num.stream.threads workers runs tasks.
// See docs/architecture.md for the path of a record and the protocols.
#include "rill/kafka_streams.h"

#include <charconv>
#include <condition_variable>
#include <csignal>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <thread>

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <fmt/format.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include "archive/archive.h"
#include "kafka/admin.h"
#include "kafka/consumer.h"
#include "kafka/fetch_hold_back.h"
#include "kafka/group.h"
#include "kafka/handles.h"
#include "kafka/producer.h"
#include "kafka/records.h"
#include "log/crash_report.h"
#include "log/log.h"
#include "metrics/http_server.h"
#include "metrics/registry.h"
#include "queries/query_server.h"
#include "runtime/active_task.h"
#include "runtime/allocator.h"
#include "runtime/error_handling.h"
#include "runtime/global_thread.h"
#include "runtime/group_coverage.h"
#include "runtime/producer_collector.h"
#include "runtime/standby_placement.h"
#include "runtime/task_manager.h"
#include "sinks/postgres_sink.h"
#include "state/caching_stores.h"
#include "state/changelog_reader.h"
#include "state/rocksdb_resources.h"
#include "state/state_directory.h"
#include "state/task_snapshots.h"

namespace rill {

std::string_view to_string(KafkaStreams::State state) {
  switch (state) {
    case KafkaStreams::State::kCreated:
      return "CREATED";
    case KafkaStreams::State::kRebalancing:
      return "REBALANCING";
    case KafkaStreams::State::kRunning:
      return "RUNNING";
    case KafkaStreams::State::kPendingShutdown:
      return "PENDING_SHUTDOWN";
    case KafkaStreams::State::kNotRunning:
      return "NOT_RUNNING";
    case KafkaStreams::State::kError:
      return "ERROR";
  }
  return "UNKNOWN";
}

namespace {

using Clock = std::chrono::steady_clock;
using runtime::ActiveTask;
using state::StandbyTask;

constexpr std::size_t kMaxBatch = 500;
constexpr int kPollTimeoutMs = 50;
constexpr auto kWallClockTick = std::chrono::milliseconds(100);
// How long a query waits for the tasks it reads: a task runs its queries
// before its next batch of records, and waits only while the gate is closed
// for a commit or a rebalance.
constexpr auto kQueryTimeout = std::chrono::milliseconds(10'000);
// How often the polling thread publishes partition and task gauges, and how
// often librdkafka reports statistics (lag, producer queue) by default.
constexpr auto kGaugeInterval = std::chrono::seconds(1);
// Free heap kept for the next burst when the rest goes back to the system (at
// the gauges' pace): a commit that hands on a full record cache, or a fetch
// catching up, leaves tens of MiB freed that tcmalloc would otherwise keep.
constexpr uint64_t kKeptFreeHeapBytes = uint64_t{16} << 20;
constexpr const char* kStatisticsIntervalMs = "1000";
// Recovery from faults of the cluster: how long one call to the cluster may
// block the polling thread.
constexpr auto kRecoveryCallTimeout = std::chrono::milliseconds(10'000);
// socket.timeout.ms of the consumers whose threads ask the broker while they
// serve others (the polling thread, the changelog reader): long enough for a
// loaded broker to answer, short enough that a dead one costs seconds.
constexpr const char* kBoundedRequestTimeoutMs = "10000";
// How long the polling thread waits for topic metadata it asks for again.
constexpr auto kMetadataRefreshTimeout = std::chrono::milliseconds(2'000);

int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void log_callback(const rd_kafka_t*, int level, const char* facility, const char* message) {
  // syslog levels: 0-3 error, 4 warning, 5-6 info, 7 debug.
  auto& logger = log::librdkafka();
  if (level <= 3)
    logger.error("{}: {}", facility, message);
  else if (level == 4)
    logger.warn("{}: {}", facility, message);
  else if (level <= 6)
    logger.info("{}: {}", facility, message);
  else
    logger.debug("{}: {}", facility, message);
}

}  // namespace

// The group as an instance last described it, for metadata queries.
struct GroupView {
  std::vector<runtime::GroupMember> members;
  std::map<std::string, HostInfo> endpoints;         // by member id
  std::map<std::string, int32_t> subscribed;         // driving topics and partition counts
  std::map<std::string, int32_t> stateful;           // driving topics of stateful sub-topologies
  std::map<std::string, std::set<TaskId>> standbys;  // by member id
};

struct KafkaStreams::Impl final : internal::StoreQueries {
  Impl(Topology topology_in, StreamsConfig config_in)
      : topology(std::move(topology_in)),
        config(std::move(config_in)),
        errors(config),
        // Under exactly-once a refused output aborts the transaction it is
        // in, with the rest of it: it cannot be skipped.
        deliveries(runtime::DeliveryPolicy{
            .skip_refused_records =
                config.get_string(config::kProductionHandler) == "log-and-continue" &&
                config.get_string(config::kProcessingGuarantee) != "exactly_once_v2",
            .transactional =
                config.get_string(config::kProcessingGuarantee) == "exactly_once_v2"}) {
    config.validate();
    // Only when asked: an application may have set up the "rill" logger itself.
    if (config.contains(config::kLogFormat) || config.contains(config::kLogLevel))
      log::configure(config.get_string(config::kLogFormat), config.get_string(config::kLogLevel));
    topology.build();
    application_id = config.get_string(config::kApplicationId);
    metrics_enabled = config.get_bool(config::kMetricsEnabled);
    if (std::string server = config.get_string(config::kApplicationServer); !server.empty()) {
      const auto own = advertised_endpoint("@" + server);
      if (!own || own->host.empty() || own->port <= 0 || own->port > 65535 ||
          own->host.find_first_of("@ ") != std::string::npos)
        throw ConfigError("config 'application.server': invalid value '" + server +
                          "', expected host:port, the address other instances reach this one at");
      advertises = true;
    }
    if (std::string address = config.get_string(config::kMetricsAddress); !address.empty())
      metrics_address = metrics::parse_listen_address(config::kMetricsAddress, address);
    std::string client_id = config.get_string(config::kClientId);
    metrics = std::make_unique<metrics::Registry>(
        application_id, client_id.empty() ? application_id : client_id, metrics_enabled,
        config.get_string(config::kMetricsRecordingLevel) == "DEBUG");
    metrics->set_instance_values([this] { return instance_values(); });
    if (!topology.postgres_sinks().empty())
      metrics->set_sink_values([this] { return sink_values(); });
    worker_threads = static_cast<std::size_t>(config.get_int(config::kNumStreamThreads));
    metrics->set_worker_threads(worker_threads);
    standby_replicas = config.get_int(config::kNumStandbyReplicas);
    commit_interval = config.get_duration(config::kCommitIntervalMs);
    task_timeout = config.get_duration(config::kTaskTimeoutMs);
    buffer_capacity =
        static_cast<std::size_t>(config.get_int(config::kBufferedRecordsPerPartition));
    exactly_once = config.get_string(config::kProcessingGuarantee) == "exactly_once_v2";
    state_directory = std::filesystem::path(config.get_string(config::kStateDir)) / application_id;
    for (const auto& sub : topology.subtopologies()) {
      for (const auto& topic : sub.source_topics) {
        subtopology_of_topic[topic.full_name(application_id)] = sub.id;
        if (!topic.internal) topology_sources.insert(topic.name);
      }
      for (const auto& store : sub.stores) subtopology_of_store[store] = sub.id;
    }
  }

  ~Impl() override {
    // Tasks left by a start() that failed read from the consumer's queues.
    task_manager.reset();
    // shutdown() closed the consumer (leaving the group); closing it again
    // inside rd_kafka_destroy can wait forever on a coordinator that fenced
    // this member.
    consumer_queue.reset();
    follower_topics.clear();
    // librdkafka 2.0.2 aborts when it destroys a cooperative-sticky consumer
    // that never received an assignment (librdkafka issue 4312, fixed in
    // 2.3.0): such a consumer, closed already, is left to the process's end.
    if (consumer && !received_assignment) {
      log::get().debug("{}: the consumer never received an assignment; not destroyed",
                       application_id);
      [[maybe_unused]] rd_kafka_t* left = consumer.release();
    }
    if (!kafka::destroy_unclosed(std::move(consumer)))
      log::get().warn(
          "{}: the consumer, closed, was not destroyed within 10 s (librdkafka waiting for its "
          "group handler to end); it is left to the end of the process",
          application_id);
    if (process_id_fd >= 0) ::close(process_id_fd);
  }

  // ---- set-up ------------------------------------------------------------

  std::map<std::string, std::string> base_properties(std::string_view client) {
    auto properties = config.client_properties(client);
    properties["bootstrap.servers"] = config.get_string(config::kBootstrapServers);
    std::string client_id = config.get_string(config::kClientId);
    properties.emplace(
        "client.id", (client_id.empty() ? application_id : client_id) + "-" + std::string(client));
    return properties;
  }

  kafka::ConfPtr conf_for(std::map<std::string, std::string> properties, bool statistics = false) {
    // Lag and the producer queue come from librdkafka's statistics.
    if (statistics && metrics_enabled)
      properties.emplace("statistics.interval.ms", kStatisticsIntervalMs);
    kafka::ConfPtr conf = kafka::make_conf(properties);
    kafka::on_log(conf.get(), log_callback);
    kafka::set_opaque(conf.get(), this);
    if (statistics && metrics_enabled)
      kafka::on_statistics(conf.get(), [](rd_kafka_t*, char* json, size_t size, void* opaque) {
        static_cast<Impl*>(opaque)->metrics->on_statistics(std::string_view(json, size));
        return 0;  // librdkafka frees the JSON
      });
    return conf;
  }

  // Under exactly-once, one transactional producer per consumer (KIP-447):
  // its transactional.id is stable across restarts of this instance, so a
  // restart aborts what a crash left open instead of waiting for its timeout.
  kafka::KafkaPtr make_producer() {
    auto producer_properties = base_properties("producer");
    producer_properties.emplace("partitioner", "murmur2_random");  // as Kafka's Java client
    producer_properties.emplace("enable.idempotence", "true");
    if (exactly_once) {
      producer_properties["transactional.id"] = application_id + "-" + process_id();
      // Longer than Kafka Streams' 10 s: a produce request waits while a dead
      // broker is still in the partition's in-sync replicas, up to the
      // broker's replica.lag.time.max.ms (30 s), and a transaction that
      // outlives that wait commits instead of aborting. librdkafka caps
      // message.timeout.ms at this.
      producer_properties.emplace("transaction.timeout.ms", "60000");
    } else {
      // Kafka Streams' delivery.timeout.ms: an output the cluster cannot take
      // for this long is reported, and the tasks go back to the last commit.
      producer_properties.emplace("message.timeout.ms", "120000");
    }
    const std::string& timeout =
        producer_properties[exactly_once ? "transaction.timeout.ms" : "message.timeout.ms"];
    int64_t timeout_ms = 0;
    // A value that does not parse is librdkafka's to report, below.
    if (std::from_chars(timeout.data(), timeout.data() + timeout.size(), timeout_ms).ec ==
        std::errc())
      delivery_timeout = std::chrono::milliseconds(timeout_ms);
    kafka::ConfPtr producer_conf = conf_for(producer_properties, true);
    kafka::on_delivery(producer_conf.get(),
                       [](rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
                         static_cast<Impl*>(opaque)->deliveries.on_delivery(*message);
                       });
    return kafka::make_client(RD_KAFKA_PRODUCER, std::move(producer_conf));
  }

  // This instance's id (see state::claim_process_id), claimed once.
  std::string process_id() {
    if (instance_id.empty()) {
      state::ProcessId claimed = state::claim_process_id(state_directory);
      instance_id = std::move(claimed.id);
      process_id_fd = claimed.lock_fd;
    }
    return instance_id;
  }

  void create_clients() {
    producer = make_producer();

    auto consumer_properties = base_properties("consumer");
    // The other instances read this instance's query endpoint from here
    // (librdkafka 2.0.2 sends no user data with a cooperative-sticky
    // subscription; see refresh_group).
    if (advertises)
      consumer_properties["client.id"] += "@" + config.get_string(config::kApplicationServer);
    consumer_properties["group.id"] = application_id;
    consumer_properties["partition.assignment.strategy"] = "cooperative-sticky";
    consumer_properties["enable.auto.commit"] = "false";
    consumer_properties["enable.auto.offset.store"] = "false";
    consumer_properties.emplace("auto.offset.reset", "earliest");
    // A partition read to its end says so through its queue: a task reading
    // several knows it waits for no record there (max.task.idle.ms).
    consumer_properties["enable.partition.eof"] = "true";
    // A broker that has not yet heard of an internal topic just created may
    // tell the consumer that a subscribed topic does not exist, without an
    // error: the group then assigns none of its partitions until the
    // consumer's next periodic refresh, 5 minutes by default. Seen at the
    // first start of an application, whose counting tasks waited for it.
    consumer_properties.emplace("topic.metadata.refresh.interval.ms", "10000");
    // A partition's fetcher is woken with a watermark query
    // (see kafka::wake_fetcher), which waits up to this long for a leader
    // that died: not librdkafka's default minute.
    consumer_properties.emplace("socket.timeout.ms", kBoundedRequestTimeoutMs);
    // Each partition's queue is its buffer: librdkafka fetches a partition
    // while fewer records than this wait in its queue.
    consumer_properties.emplace("queued.min.messages", std::to_string(buffer_capacity));
    // librdkafka sends one fetch at a time to a broker, and the broker holds a
    // fetch of partitions without new records for this long. A partition whose
    // queue is full is left out of fetches, so once a table's partitions are
    // read to their end, a fetch of them alone would keep the stream beside
    // them waiting for the default 500 ms each time its queue drains.
    consumer_properties.emplace("fetch.wait.max.ms", "50");
    // Aborted outputs of an upstream sub-topology must not be processed.
    if (exactly_once) consumer_properties["isolation.level"] = "read_committed";
    consumer_properties.emplace("session.timeout.ms",
                                std::to_string(config.get_int(config::kSessionTimeoutMs)));
    kafka::ConfPtr consumer_conf = conf_for(consumer_properties, true);
    kafka::on_rebalance(
        consumer_conf.get(),
        [](rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* partitions,
           void* opaque) { static_cast<Impl*>(opaque)->on_rebalance(rk, err, partitions); });
    consumer = kafka::make_client(RD_KAFKA_CONSUMER, std::move(consumer_conf));
    group_consumer = kafka::consumer_of(consumer.get());
    kafka::redirect_events_to_consumer(consumer.get());
    consumer_queue = kafka::MessageQueue::of_consumer(consumer.get());
  }

  // Source topics must exist; internal topics are created here with the
  // partition counts the topology gives them (see Topology::partition_counts),
  // which also refuses sources that are not co-partitioned.
  void prepare_topics() {
    const auto timeout = config.get_duration(config::kTopicWaitMs);
    std::map<std::string, int32_t> existing = kafka::topic_partitions(producer.get(), timeout);
    for (const auto& sub : topology.subtopologies()) {
      for (const auto& topic : sub.source_topics) {
        if (topic.internal || existing.contains(topic.name)) continue;
        auto deadline = Clock::now() + timeout;
        std::optional<int32_t> count;
        while (!(count = kafka::partition_count(producer.get(), topic.name, timeout)) &&
               Clock::now() < deadline)
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
        if (!count)
          throw std::runtime_error("source topic '" + topic.name + "' does not exist (waited " +
                                   std::to_string(timeout.count()) + " ms); create it first");
        existing[topic.name] = *count;
      }
    }
    partition_counts = topology.partition_counts(application_id, existing);

    const auto replication = static_cast<int32_t>(config.get_int(config::kReplicationFactor));
    std::vector<kafka::NewTopic> to_create;
    std::set<std::string> row_topics;
    for (const auto& sink : topology.postgres_sinks()) {
      row_topics.insert(sink.topic.full_name(application_id));
      const std::string dead_letters = postgres_dead_letter_topic(sink);
      if (existing.emplace(dead_letters, 1).second)
        to_create.push_back({dead_letters, 1, replication, config.topic_configs()});
    }
    for (const auto& sub : topology.subtopologies()) {
      for (const auto& topic : sub.sink_topics) {
        const std::string name = topic.full_name(application_id);
        if (topic.internal && existing.emplace(name, partition_counts.at(name)).second)
          // A PostgreSQL sink's rows are upserts by key: compacted, the topic
          // keeps every key's last row however far the database falls behind.
          to_create.push_back(
              {name, partition_counts.at(name), replication,
               row_topics.contains(name) ? row_topic_configs() : repartition_topic_configs()});
      }
      for (const auto& store_name : sub.stores) {
        const StoreSpec& spec = topology.store(store_name).spec();
        const std::string name = spec.changelog_topic(application_id);
        if (spec.logging_enabled && !existing.contains(name))
          to_create.push_back(
              {name, partition_counts.at(name), replication, changelog_topic_configs(spec)});
      }
    }
    kafka::create_topics(producer.get(), to_create, timeout);
    for (const auto& topic : to_create) {
      auto deadline = Clock::now() + timeout;
      while (!kafka::partition_count(producer.get(), topic.name, timeout) &&
             Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    plan_sources();
  }

  // archive.topics: the source topics read from archive.location where
  // retention deleted their records.
  void open_archive() {
    const std::vector<std::string> listed = config.get_list(config::kArchiveTopics);
    if (listed.empty()) return;
    const std::string location = config.get_string(config::kArchiveLocation);
    if (location.empty())
      throw ConfigError(std::string(config::kArchiveTopics) + " is '" +
                        config.get_string(config::kArchiveTopics) + "', but " +
                        std::string(config::kArchiveLocation) + " is not set");
    std::set<std::string> sources;
    for (const auto& sub : topology.subtopologies())
      for (const auto& topic : sub.source_topics)
        if (!topic.internal) sources.insert(topic.name);
    for (const std::string& topic : listed) {
      if (topic == "*") {
        archived_topics.insert(sources.begin(), sources.end());
      } else if (sources.contains(topic)) {
        archived_topics.insert(topic);
      } else {
        std::string names;
        for (const std::string& source : sources) names += (names.empty() ? "" : ", ") + source;
        throw ConfigError(std::string(config::kArchiveTopics) + ": '" + topic +
                          "' is not a source topic of the topology (its source topics: " + names +
                          ")");
      }
    }
    archive = std::make_shared<archive::Archive>(
        objects::open_location(location, config, config::kArchiveLocation));
  }

  // Under replay_until: where each source partition's replay ends, the
  // first offset with a later timestamp; and what retention already took.
  void plan_replay() {
    std::vector<std::pair<std::string, int32_t>> partitions;
    for (const auto& sub : topology.subtopologies())
      for (const auto& topic : sub.source_topics)
        if (!topic.internal)
          for (int32_t p = 0; p < partition_counts.at(topic.name); ++p)
            partitions.emplace_back(topic.name, p);
    const auto timeout = config.get_duration(config::kTopicWaitMs);
    std::vector<int64_t> ends =
        kafka::offsets_for_time(producer.get(), partitions, *replay_until_ms + 1, timeout);
    const auto marks = kafka::watermarks(producer.get(), partitions, timeout);
    int64_t records = 0;
    for (std::size_t i = 0; i < partitions.size(); ++i) {
      // What retention deleted may end the replay sooner: its first record
      // past the time, in the archive.
      std::optional<archive::PartitionIndex> index;
      if (archived_topics.contains(partitions[i].first) && marks[i].first > 0)
        index = archive->read_index(partitions[i].first, partitions[i].second);
      if (index)
        if (std::optional<int64_t> archived =
                archive::first_offset_at_or_after(*archive, *index, *replay_until_ms + 1))
          ends[i] = std::min(ends[i], *archived);
      replay_end_offsets[partitions[i]] = ends[i];
      const int64_t first =
          index ? std::min(index->start_offset(), marks[i].first) : marks[i].first;
      records += std::max<int64_t>(0, ends[i] - first);
      if (first > 0 && ends[i] > 0)
        log::get().warn(
            "{}: {}[{}] starts at offset {}: the records before it are deleted (retention), "
            "so the state as of {} ms lacks them",
            application_id, partitions[i].first, partitions[i].second, first, *replay_until_ms);
    }
    log::get().info("{}: replaying {} partitions up to {} ms: at most {} records", application_id,
                    partitions.size(), *replay_until_ms, records);
  }

  // After a commit under replay_until: closes the instance once the replay
  // is complete.
  void finish_replay_when_complete() {
    bool complete = false;
    try {
      complete = task_manager->replay_complete(
          [this](const std::vector<std::pair<std::string, int32_t>>& partitions) {
            std::vector<int64_t> ends;
            for (const auto& [low, high] :
                 kafka::watermarks(consumer.get(), partitions, kRecoveryCallTimeout))
              ends.push_back(high);
            return ends;
          });
    } catch (const std::exception& e) {
      log::get().debug("{}: replay: {}", application_id, e.what());
    }
    if (!complete) return;
    log::get().info("{}: replayed the input up to {} ms; closing", application_id,
                    *replay_until_ms);
    replayed.store(true);
    stopping.store(true);
  }

  // The group assigns one topic per sub-topology, its driving topic: its
  // largest source (the first one on a tie). Partition p of each other source
  // follows partition p of the driving topic, so an instance holds all of a
  // task's partitions or none (see docs/architecture.md, "Assignment").
  void plan_sources() {
    for (const auto& sub : topology.subtopologies()) {
      std::string driving;
      int32_t most = 0;
      for (const auto& topic : sub.source_topics) {
        const std::string name = topic.full_name(application_id);
        if (partition_counts.at(name) > most) {
          most = partition_counts.at(name);
          driving = name;
        }
      }
      for (const auto& topic : sub.source_topics) {
        const std::string name = topic.full_name(application_id);
        if (name != driving) followers[driving].emplace_back(name, partition_counts.at(name));
      }
      driving_topics.push_back(std::move(driving));
    }
  }

  // Partitions of driving topics, with the partitions that follow them.
  std::vector<kafka::TopicPartition> with_followers(
      const std::vector<kafka::TopicPartition>& driving) const {
    std::vector<kafka::TopicPartition> all;
    for (const kafka::TopicPartition& tp : driving) {
      all.push_back({tp.topic, tp.partition});
      if (auto it = followers.find(tp.topic); it != followers.end())
        for (const auto& [topic, count] : it->second)
          if (tp.partition < count) all.push_back({topic, tp.partition});
    }
    return all;
  }

  // A repartition topic's configs: rill's defaults, overridden by the
  // application's "topic." keys.
  std::map<std::string, std::string> repartition_topic_configs() const {
    std::map<std::string, std::string> configs{{"cleanup.policy", "delete"},
                                               {"retention.ms", "-1"}};
    for (auto& [name, value] : config.topic_configs()) configs[name] = value;
    return configs;
  }

  std::map<std::string, std::string> row_topic_configs() const {
    std::map<std::string, std::string> configs = config.topic_configs();
    configs["cleanup.policy"] = "compact";
    return configs;
  }

  // Where a PostgreSQL sink's rejected rows go: the application's dead-letter
  // topic, or one of the sink's own.
  std::string postgres_dead_letter_topic(const Topology::PostgresSink& sink) const {
    return errors.has_dead_letter_topic() ? errors.dead_letter_topic()
                                          : application_id + "-" + sink.name + "-dead-letters";
  }

  // One writer per PostgreSQL sink, each on its own thread and consumer group.
  void start_postgres_sinks() {
    for (const auto& sink : topology.postgres_sinks()) {
      sinks::PostgresSinkSettings settings;
      settings.application_id = application_id;
      settings.sink = sink.name;
      settings.topic = sink.topic.full_name(application_id);
      settings.table = sink.table;
      settings.dead_letter_topic = postgres_dead_letter_topic(sink);
      settings.consumer_properties = base_properties("consumer");
      // Like the tasks' partitions, a dead instance's sink partitions move
      // after the application's session timeout.
      settings.consumer_properties.emplace(
          "session.timeout.ms", std::to_string(config.get_int(config::kSessionTimeoutMs)));
      settings.producer_properties = base_properties("producer");
      settings.make_conf = [this](const std::map<std::string, std::string>& properties) {
        return conf_for(properties);
      };
      settings.fail = [this](const std::string& reason) { fail(reason); };
      postgres_sinks.push_back(std::make_unique<sinks::PostgresSink>(std::move(settings)));
      postgres_sinks.back()->start();
    }
    // From here the list stays as it is: the endpoint's threads read it.
    sinks_started.store(true, std::memory_order_release);
  }

  std::vector<metrics::SinkValues> sink_values() const {
    std::vector<metrics::SinkValues> values;
    if (!sinks_started.load(std::memory_order_acquire)) return values;
    for (const auto& sink : postgres_sinks) values.push_back(sink->status());
    return values;
  }

  // A changelog's configs: the application's "topic." keys, overridden by
  // what the store sets (its cleanup policy, a window store's retention, the
  // store's own log config).
  std::map<std::string, std::string> changelog_topic_configs(const StoreSpec& spec) const {
    std::map<std::string, std::string> configs = config.topic_configs();
    for (auto& [name, value] : spec.changelog_topic_config()) configs[name] = value;
    return configs;
  }

  // State: the instance's directory, the RocksDB memory shared by its stores,
  // the reader that restores changelogs, and the snapshots of its tasks.
  void prepare_state() {
    if (topology.stores().empty()) return;
    snapshots = state::TaskSnapshots::from_config(config, state_directory);
    published_snapshots.store(snapshots.get(), std::memory_order_release);
    RocksDbMemoryOptions memory;
    memory.block_cache_bytes =
        static_cast<std::size_t>(config.get_int(config::kRocksDbBlockCacheBytes));
    memory.memtable_bytes = static_cast<std::size_t>(config.get_int(config::kRocksDbMemtableBytes));
    rocksdb = std::make_unique<state::RocksDbResources>(memory);
    cache_budget = std::make_unique<state::CacheBudget>(
        static_cast<std::size_t>(config.get_int(config::kCacheMaxBytes)));
    published_rocksdb.store(rocksdb.get(), std::memory_order_release);
    published_cache_budget.store(cache_budget.get(), std::memory_order_release);

    auto properties = base_properties("consumer");
    properties["client.id"] += "-restore";
    properties["enable.auto.commit"] = "false";
    properties["enable.partition.eof"] = "true";
    // A fetch of partitions at their end lingers this long, and the first
    // fetch of a restore that starts meanwhile waits behind it.
    properties.emplace("fetch.wait.max.ms", "50");
    // librdkafka 2.0.2's watermark query waits for its answer up to
    // socket.timeout.ms (60 s by default), whatever timeout it is given. The
    // reader asks the ends of changelogs whose leader may have just died, and
    // a revocation waits for the reader's turn: a dead leader must not hold
    // that turn, and the rebalance behind it, for a minute.
    properties.emplace("socket.timeout.ms", kBoundedRequestTimeoutMs);
    properties.emplace("auto.offset.reset", "earliest");
    properties["queued.min.messages"] = std::to_string(state::ChangelogReader::kQueuedRecords);
    // The changelogs' ends come from a client of their own: asked on the
    // reader's connection, they would wait behind its pending fetch. It reads
    // uncommitted records, as a restore ends at the high watermark even under
    // exactly-once, where the stores take committed writes only.
    auto ends_properties = properties;
    ends_properties["client.id"] += "-ends";
    ends_properties["isolation.level"] = "read_uncommitted";
    ends_properties.erase("queued.min.messages");
    kafka::KafkaPtr ends = kafka::make_client(RD_KAFKA_CONSUMER, conf_for(ends_properties));
    if (exactly_once) properties["isolation.level"] = "read_committed";
    // librdkafka wants a group even for a consumer that only assigns; this one
    // never joins it nor commits to it.
    properties["group.id"] = application_id + "-restore";
    changelog_reader = std::make_unique<state::ChangelogReader>(
        kafka::make_client(RD_KAFKA_CONSUMER, conf_for(properties)), std::move(ends),
        [this](const RestoreProgress& progress) {
          metrics->on_restore_progress(progress.store, progress.topic, progress.partition,
                                       progress.restored, progress.total, progress.done);
          if (restore_listener) restore_listener(progress);
        },
        [this] {
          if (consumer_queue) consumer_queue->wake();
        });
    published_reader.store(changelog_reader.get(), std::memory_order_release);
  }

  // Global stores: restored up to their topics' ends before the instance
  // subscribes, so no task runs (and RUNNING is not reported) before they
  // hold every record written before start(); see runtime/global_thread.h.
  void start_global_thread() {
    if (topology.global_stores().empty()) return;
    auto properties = base_properties("consumer");
    properties["client.id"] += "-global";
    properties["enable.auto.commit"] = "false";
    properties["enable.partition.eof"] = "true";
    properties.emplace("auto.offset.reset", "earliest");
    if (exactly_once) properties["isolation.level"] = "read_committed";
    // librdkafka wants a group even for a consumer that only assigns; this one
    // never joins it nor commits to it.
    properties["group.id"] = application_id + "-global";
    kafka::KafkaPtr dead_letters;
    if (errors.has_dead_letter_topic())
      dead_letters = kafka::make_client(RD_KAFKA_PRODUCER, conf_for(base_properties("global")));
    global_thread = std::make_unique<runtime::GlobalThread>(
        topology, application_id, state_directory / "global", rocksdb.get(), errors,
        kafka::make_client(RD_KAFKA_CONSUMER, conf_for(properties)), std::move(dead_letters),
        commit_interval, config.get_duration(config::kTopicWaitMs), task_timeout,
        [this](const RestoreProgress& progress) {
          metrics->on_restore_progress(progress.store, progress.topic, progress.partition,
                                       progress.restored, progress.total, progress.done);
          if (restore_listener) restore_listener(progress);
        });
    global_thread->restore(replay_until_ms);
    global_thread->start();
  }

  // The consumer learns of topics from whichever broker it asks, and right
  // after an internal topic is created another broker may not know it yet. A
  // subscription to a topic the consumer thinks missing is looked at again
  // only at its next periodic refresh (topic.metadata.refresh.interval.ms), so
  // the consumer first asks until it sees every topic itself.
  //
  // Followers are assigned by this instance rather than subscribed, so the
  // consumer would learn their leaders only when it first looks for metadata
  // of topics it holds none for, a second after one was first assigned, and
  // the task would wait that long for their records. A handle kept open on
  // each makes the consumer keep their metadata with its subscription's.
  void subscribe() {
    const auto timeout = config.get_duration(config::kTopicWaitMs);
    const auto deadline = Clock::now() + timeout;
    std::vector<std::string> topics = driving_topics;
    for (const auto& [driving, following] : followers)
      for (const auto& [topic, partitions] : following) {
        follower_topics.push_back(kafka::open_topic(consumer.get(), topic));
        topics.push_back(topic);
      }
    for (const std::string& topic : topics)
      while (!kafka::partition_count(consumer.get(), topic, timeout) && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    kafka::subscribe(consumer.get(), driving_topics);
  }

  // After a broker said a subscribed topic does not exist, which one that has
  // not heard of it yet may say: the consumer asks again now rather than at
  // its next periodic refresh.
  void refresh_subscribed_topics() {
    try {
      kafka::all_topics(consumer.get(), kMetadataRefreshTimeout);
    } catch (const std::exception&) {
      // Asked again at the next such error, or by the periodic refresh.
    }
  }

  // ---- state -------------------------------------------------------------

  void set_state(State next) {
    State previous;
    {
      std::lock_guard lock(state_mutex);
      previous = state;
      if (previous == next) return;
      // Terminal states stay; only NOT_RUNNING may follow ERROR... nothing does.
      if (previous == State::kNotRunning || previous == State::kError) return;
      if (previous == State::kPendingShutdown && next != State::kNotRunning &&
          next != State::kError)
        return;
      state = next;
    }
    state_changed.notify_all();
    log::get().info("{} state {} -> {}", application_id, to_string(previous), to_string(next));
    if (listener) listener(next, previous);
  }

  void fail(const std::string& message) {
    {
      std::lock_guard lock(state_mutex);
      if (error_message.empty()) error_message = message;
    }
    log::get().error("{}: {}", application_id, message);
  }

  // This worker thread's number, from 0, taken at its first run: the "thread"
  // label of its busy time. A pool thread serves one instance only.
  std::size_t worker_index() {
    thread_local const Impl* owner = nullptr;
    thread_local std::size_t index = 0;
    if (owner != this) {
      owner = this;
      index = next_worker_index.fetch_add(1, std::memory_order_relaxed) % worker_threads;
    }
    return index;
  }

  void schedule(const std::shared_ptr<ActiveTask>& task) {
    // A failed task waits for the task manager's update(), which skips a
    // scheduled one. A task that is not running yet (restoring) is scheduled
    // by the task manager when it starts: a run before that would find its
    // records waiting and post itself again, spinning a worker for the whole
    // restore.
    if (task->task_state() != runtime::TaskState::kRunning || task->failure_reported() ||
        task->scheduled.exchange(true))
      return;
    boost::asio::post(*pool, [this, task] {
      const auto started = metrics_enabled ? Clock::now() : Clock::time_point();
      const bool wake_poll_thread = task->run(wall_clock_ms());
      if (metrics_enabled)
        metrics->worker_busy_ns(worker_index())
            .add(static_cast<uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - started)
                    .count()));
      if (!gate.closed.load() && task->should_run_again()) schedule(task);
      // It handles failures and wakes fetchers.
      if (wake_poll_thread) consumer_queue->wake();
    });
  }

  // ---- queries -------------------------------------------------------------

  void check_store(std::string_view name, StoreKind kind) const override {
    std::vector<std::string_view> known;
    for (const StoreBuilder& store : topology.stores()) {
      if (store.name() != name) {
        known.push_back(store.name());
        continue;
      }
      const StoreSpec& spec = store.spec();
      if (spec.kind != kind || spec.versioned)
        throw std::invalid_argument("state store '" + std::string(name) + "' is a " +
                                    (spec.versioned ? std::string("versioned key-value")
                                                    : std::string(to_string(spec.kind))) +
                                    " store, not a " + std::string(to_string(kind)) + " store");
      return;
    }
    std::string names;
    for (std::string_view store : known) names += (names.empty() ? "" : ", ") + std::string(store);
    throw std::invalid_argument(
        "no state store '" + std::string(name) +
        "' to query; the topology's stores: " + (names.empty() ? std::string("(none)") : names));
  }

  bool for_each_task_store(std::string_view name, const std::function<void(StateStore&)>& query,
                           const StoreQueryOptions& options) override {
    const std::string store(name);
    const int32_t partition = options.partition;
    auto unavailable = [&store](const std::string& why) {
      return StoreUnavailableError("state store '" + store + "' cannot be read now: " + why +
                                   "; retry later");
    };
    {
      std::lock_guard lock(state_mutex);
      const bool readable =
          state == State::kRunning || (options.stale_stores && state == State::kRebalancing);
      if (!readable)
        throw unavailable("the instance is " + std::string(to_string(state)) + ", not RUNNING");
    }
    if (topology.is_global_store(store) && global_thread) {
      // Every instance holds the whole of a global store, which is safe to
      // read beside its writer, the global thread: read it here.
      const std::unique_ptr<StateStore> view = global_thread->state().task_view(store);
      query(*view);
      return false;
    }
    const auto subtopology = subtopology_of_store.find(store);
    if (subtopology == subtopology_of_store.end()) return false;
    // `query` lives on the caller's stack: runs not started when the caller
    // returns never start, and a return waits for runs under way.
    struct Guard {
      std::shared_mutex mutex;
      bool returned = false;
    };
    auto guard = std::make_shared<Guard>();
    struct Returned {
      std::shared_ptr<Guard> guard;
      ~Returned() {
        std::unique_lock lock(guard->mutex);
        guard->returned = true;
      }
    } returned{guard};
    std::vector<std::pair<TaskId, std::future<void>>> runs;
    std::set<int32_t> active_partitions;
    for (const auto& task : task_manager->published_tasks()) {
      if (task->id().subtopology != subtopology->second) continue;
      if (partition >= 0 && task->id().partition != partition) continue;
      active_partitions.insert(task->id().partition);
      auto promise = std::make_shared<std::promise<void>>();
      runs.emplace_back(task->id(), promise->get_future());
      ActiveTask* const runner = task.get();
      const bool posted = task->post_query([runner, promise, guard, &store, &query] {
        std::shared_lock lock(guard->mutex);
        if (guard->returned) return;
        try {
          StateStore* task_store = runner->state().get(store);
          if (task_store == nullptr)
            throw std::logic_error("task " + runner->id().to_string() + " has no store '" + store +
                                   "'");
          query(*task_store);
          promise->set_value();
        } catch (...) {
          promise->set_exception(std::current_exception());
        }
      });
      if (!posted)
        throw unavailable("its partition " + std::to_string(task->id().partition) + " is " +
                          std::string(runtime::to_string(task->task_state())));
      schedule(task);
    }
    const bool read_standby =
        options.stale_stores &&
        read_standbys(store, subtopology->second, partition, active_partitions, query);
    if (partition >= 0 && runs.empty() && !read_standby)
      throw unavailable("its partition " + std::to_string(partition) +
                        " is not on this instance (it moved, or a rebalance is moving it)");
    const auto deadline = Clock::now() + kQueryTimeout;
    for (auto& [task, run] : runs) {
      if (run.wait_until(deadline) != std::future_status::ready)
        throw unavailable("task " + task.to_string() + " did not answer within " +
                          std::to_string(kQueryTimeout.count()) + " ms");
      try {
        run.get();
      } catch (const std::future_error&) {
        throw unavailable("its partition " + std::to_string(task.partition) + " moved or stopped");
      }
    }
    return read_standby;
  }

  // Runs `query` on this instance's standby copies of `store` (of the
  // partition, when it is not -1) whose partition has no active task here,
  // on the caller's thread, between two of the changelog reader's writes.
  // Returns whether there was one.
  bool read_standbys(const std::string& store, int32_t subtopology, int32_t partition,
                     const std::set<int32_t>& active_partitions,
                     const std::function<void(StateStore&)>& query) {
    std::vector<std::shared_ptr<StandbyTask>> copies;
    {
      std::lock_guard lock(standbys_mutex);
      for (const auto& [id, standby] : standbys)
        if (id.subtopology == subtopology && (partition < 0 || id.partition == partition) &&
            !active_partitions.contains(id.partition))
          copies.push_back(standby);
    }
    for (const auto& standby : copies) {
      std::lock_guard lock(standby->store_mutex);
      if (!standby->readable)
        throw StoreUnavailableError("state store '" + store + "' cannot be read now: its standby " +
                                    standby->id.to_string() + " closed; retry later");
      StateStore* copy = standby->state.get(store);
      if (copy == nullptr)
        throw std::logic_error("standby task " + standby->id.to_string() + " has no store '" +
                               store + "'");
      query(*copy);
    }
    return !copies.empty();
  }

  std::shared_ptr<const GroupView> current_group_view() const {
    std::lock_guard lock(group_view_mutex);
    return group_view;
  }

  // Every member that advertises an endpoint, with its tasks and stores.
  std::vector<StreamsMetadata> all_metadata() const {
    const auto view = current_group_view();
    std::vector<StreamsMetadata> all;
    if (!view) return all;
    for (const auto& member : view->members) {
      const auto advertised = view->endpoints.find(member.id);
      if (advertised == view->endpoints.end()) continue;
      StreamsMetadata metadata;
      metadata.host = advertised->second;
      for (const auto& sub : topology.subtopologies()) {
        const std::string& driving = driving_topics.at(static_cast<std::size_t>(sub.id));
        for (const auto& [topic, partition] : member.owned) {
          if (topic != driving) continue;
          metadata.active_tasks.insert(TaskId{sub.id, partition});
          metadata.state_stores.insert(sub.stores.begin(), sub.stores.end());
        }
      }
      if (auto placed = view->standbys.find(member.id); placed != view->standbys.end()) {
        for (const TaskId& task : placed->second) {
          metadata.standby_tasks.insert(task);
          const auto& stores =
              topology.subtopologies().at(static_cast<std::size_t>(task.subtopology)).stores;
          metadata.standby_state_stores.insert(stores.begin(), stores.end());
        }
      }
      all.push_back(std::move(metadata));
    }
    std::sort(all.begin(), all.end(),
              [](const StreamsMetadata& a, const StreamsMetadata& b) { return a.host < b.host; });
    return all;
  }

  // The instances with an active or standby task of `store`.
  std::vector<StreamsMetadata> all_metadata_for_store(std::string_view store) const {
    std::vector<StreamsMetadata> holding;
    for (auto& metadata : all_metadata())
      if (metadata.state_stores.contains(std::string(store)) ||
          metadata.standby_state_stores.contains(std::string(store)))
        holding.push_back(std::move(metadata));
    return holding;
  }

  std::optional<KeyQueryMetadata> metadata_for_key(std::string_view store,
                                                   std::string_view key) const {
    const auto subtopology = subtopology_of_store.find(store);
    if (subtopology == subtopology_of_store.end()) {
      check_store(store, StoreKind::kKeyValue);  // names the stores there are
      return std::nullopt;
    }
    const auto view = current_group_view();
    if (!view) return std::nullopt;
    const std::string& driving = driving_topics.at(static_cast<std::size_t>(subtopology->second));
    KeyQueryMetadata metadata;
    metadata.partition = rd_kafka_msg_partitioner_murmur2(
        nullptr, key.data(), key.size(), view->subscribed.at(driving), nullptr, nullptr);
    const TaskId task{subtopology->second, metadata.partition};
    bool owned = false;
    for (const auto& member : view->members) {
      const auto advertised = view->endpoints.find(member.id);
      if (advertised == view->endpoints.end()) continue;
      if (member.owned.contains({driving, metadata.partition})) {
        metadata.active_host = advertised->second;
        owned = true;
      }
      if (auto placed = view->standbys.find(member.id);
          placed != view->standbys.end() && placed->second.contains(task))
        metadata.standby_hosts.push_back(advertised->second);
    }
    if (!owned) return std::nullopt;
    std::sort(metadata.standby_hosts.begin(), metadata.standby_hosts.end());
    return metadata;
  }

  // ---- tasks ---------------------------------------------------------------

  // Tasks and their commits from here on; the producer goes with them, as
  // they write through it and a rewind may replace it.
  void create_task_manager() {
    runtime::TaskManager::Settings settings;
    settings.application_id = application_id;
    settings.exactly_once = exactly_once;
    settings.max_batch = kMaxBatch;
    settings.buffer_capacity = buffer_capacity;
    settings.delivery_timeout = delivery_timeout;
    settings.call_timeout = kRecoveryCallTimeout;
    settings.metadata_timeout = config.get_duration(config::kTopicWaitMs);
    settings.task_timeout = task_timeout;
    settings.max_task_idle_ms = config.get_int(config::kMaxTaskIdleMs);
    settings.repartition_purge_interval = config.get_duration(config::kRepartitionPurgeIntervalMs);
    settings.input_end_offsets = replay_end_offsets;
    settings.state_directory = state_directory;
    settings.metrics_enabled = metrics_enabled;
    settings.archive = archive;
    settings.archived_topics = archived_topics;
    runtime::TaskManager::Clients clients;
    clients.consumer = consumer.get();
    clients.group = group_consumer.get();
    clients.producer = std::move(producer);
    clients.make_producer = [this] { return make_producer(); };
    clients.transactional = [this](rd_kafka_t* transactional) {
      return kafka::transactional_producer_of(transactional, consumer.get());
    };
    runtime::TaskManager::Shared shared{topology, deliveries, errors,  gate,
                                        counters, *metrics,   stopping};
    shared.rocksdb = rocksdb.get();
    shared.cache_budget = cache_budget.get();
    shared.changelog_reader = changelog_reader.get();
    shared.snapshots = snapshots.get();
    if (global_thread) shared.global_stores = &global_thread->state();
    shared.schedule = [this](const std::shared_ptr<ActiveTask>& task) { schedule(task); };
    shared.before_create = [this](const TaskId& id) {
      // A standby of this task becomes the active one: its stores are warm,
      // so restoring reads only the changelog's tail after its checkpoint.
      drop_standby(id);
    };
    shared.fail_instance = [this](const std::string& message) { fail(message); };
    task_manager = std::make_unique<runtime::TaskManager>(std::move(settings), std::move(clients),
                                                          std::move(shared));
    task_manager->start();
  }

  // ---- rebalance ---------------------------------------------------------

  // librdkafka calls this from C code inside the poll, which an exception
  // must not cross: an error the rebalance cannot handle stops the instance.
  void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                    rd_kafka_topic_partition_list_t* partitions) {
    try {
      rebalance(rk, err, kafka::from_list(*partitions));
    } catch (const std::exception& e) {
      fail(std::string("rebalance: ") + e.what());
      stopping.store(true);
      failed_stop = true;
    }
  }

  void rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                 const std::vector<kafka::TopicPartition>& driving) {
    const auto rebalance_start = Clock::now();
    // The group moves driving partitions; their followers move with them.
    const std::vector<kafka::TopicPartition> changed = with_followers(driving);
    set_state(State::kRebalancing);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
      received_assignment = true;
      task_manager->assign(changed);
      try {
        kafka::incremental_assign(rk, task_manager->start_positions(changed));
      } catch (const kafka::Error& e) {
        fail(e.what());
      }
    } else {
      task_manager->revoke(changed, kafka::assignment_lost(rk));
      try {
        kafka::incremental_unassign(rk, changed);
      } catch (const kafka::Error& e) {
        log::get().warn("{}: {}", application_id, e.what());
      }
    }
    publish_gauges();
    if (!stopping.load()) set_state(State::kRunning);
    next_group_refresh = Clock::now();
    coverage.rebalanced();
    next_coverage_check = Clock::now() + kCoverageCheckInterval;
    rebalanced_since_left_out = true;
    metrics->rebalances.add();
    metrics->rebalance_latency.observe_ns(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - rebalance_start)
            .count());
    log::get().info("{}: {} {} partitions; {} tasks [{}]", application_id,
                    err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS ? "assigned" : "revoked",
                    changed.size(), task_manager->tasks().size(), task_manager->task_ids());
  }

  // ---- standby replicas --------------------------------------------------

  void close_standby(StandbyTask& standby) {
    {
      std::lock_guard lock(standby.store_mutex);
      standby.readable = false;
    }
    changelog_reader->remove_standby(standby);
    try {
      standby.state.close(true);
    } catch (const std::exception& e) {
      log::get().warn("{}: standby task {}: {}", application_id, standby.id.to_string(), e.what());
    }
    log::get().info("{}: closed standby task {}", application_id, standby.id.to_string());
  }

  // Takes the standby of `id`, if any, from those queries see, and closes it.
  void drop_standby(const TaskId& id) {
    std::shared_ptr<StandbyTask> standby;
    {
      std::lock_guard lock(standbys_mutex);
      auto found = standbys.find(id);
      if (found == standbys.end()) return;
      standby = std::move(found->second);
      standbys.erase(found);
    }
    close_standby(*standby);
  }

  // The group's driving topics and their partition counts, and those of
  // stateful sub-topologies with the sub-topology's id.
  std::pair<std::map<std::string, int32_t>, std::map<std::string, int32_t>> group_topics() const {
    std::map<std::string, int32_t> subscribed;
    std::map<std::string, int32_t> stateful;
    for (const auto& sub : topology.subtopologies()) {
      const std::string& driving = driving_topics.at(static_cast<std::size_t>(sub.id));
      subscribed[driving] = partition_counts.at(driving);
      if (!sub.stores.empty()) stateful[driving] = sub.id;
    }
    return {subscribed, stateful};
  }

  // Describes the group as every instance sees it: its members, the driving
  // partitions each was assigned and the endpoint each advertises, and where
  // the standbys go. Metadata queries read that view; this instance's
  // standbys follow it.
  void refresh_group() {
    const auto described =
        kafka::describe_group(task_manager->producer(), application_id, std::chrono::seconds(10));
    if (!described) return;
    auto view = std::make_shared<GroupView>();
    view->members = members_of(*described);
    for (const auto& member : *described)
      if (auto server = advertised_endpoint(member.client_id))
        view->endpoints[member.member_id] = *server;
    std::tie(view->subscribed, view->stateful) = group_topics();
    if (standby_replicas > 0)
      view->standbys = runtime::place_standbys(view->members, view->subscribed, view->stateful,
                                               static_cast<std::size_t>(standby_replicas));
    {
      std::lock_guard lock(group_view_mutex);
      group_view = view;
    }
    if (standby_replicas > 0 && changelog_reader) refresh_standbys(*view);
  }

  // See runtime/group_coverage.h. Leaving topics out of the subscription
  // makes the group rebalance, cooperatively: no other partition moves. Once
  // it has, they go back in, and the group assigns them with fresh metadata.
  // The group is described only while this instance holds no partition of
  // some driving topic, the case of such a gap, and with a short timeout: the
  // polling thread waits for the answer.
  void check_coverage() {
    if (stopping.load()) return;
    if (!left_out_of_subscription.empty()) {
      if (!rebalanced_since_left_out) return;
      kafka::subscribe(consumer.get(), driving_topics);
      log::get().info("{}: subscribed to {} again", application_id,
                      fmt::join(left_out_of_subscription, ", "));
      left_out_of_subscription.clear();
      return;
    }
    std::set<std::string> held;
    for (const kafka::TopicPartition& tp : kafka::assignment(consumer.get())) held.insert(tp.topic);
    const std::map<std::string, int32_t> subscribed = group_topics().first;
    bool holds_every_topic = true;
    for (const auto& [topic, count] : subscribed)
      holds_every_topic = holds_every_topic && held.contains(topic);
    if (holds_every_topic) {
      coverage.rebalanced();
      return;
    }
    const auto described =
        kafka::describe_group(task_manager->producer(), application_id, std::chrono::seconds(1));
    if (!described) return;
    const std::set<std::string> unowned =
        coverage.check(runtime::unowned_partitions(members_of(*described), subscribed));
    if (unowned.empty()) return;
    std::vector<std::string> rest;
    for (const std::string& topic : driving_topics)
      if (!unowned.contains(topic)) rest.push_back(topic);
    log::get().warn(
        "{}: no member of the group has been assigned partitions of {} for {} checks, {} s apart "
        "(the group assigned from a broker that did not know them yet){}",
        application_id, fmt::join(unowned, ", "), kCoverageChecks,
        std::chrono::duration_cast<std::chrono::seconds>(kCoverageCheckInterval).count(),
        rest.empty() ? ""
                     : "; leaving them out of the subscription once, so that it assigns again");
    if (rest.empty()) return;
    kafka::subscribe(consumer.get(), rest);
    left_out_of_subscription = unowned;
    rebalanced_since_left_out = false;
  }

  // The members of a described group and the driving partitions each owns.
  static std::vector<runtime::GroupMember> members_of(
      const std::vector<kafka::MemberAssignment>& described) {
    std::vector<runtime::GroupMember> members;
    for (const auto& member : described) {
      runtime::GroupMember& entry = members.emplace_back();
      entry.id = member.member_id;
      for (const auto& tp : member.partitions) entry.owned.emplace(tp.topic, tp.partition);
    }
    return members;
  }

  // The endpoint a member advertises after the last '@' of its consumer's
  // client id (see create_clients).
  static std::optional<HostInfo> advertised_endpoint(std::string_view client_id) {
    const std::size_t at = client_id.rfind('@');
    if (at == std::string_view::npos) return std::nullopt;
    const std::string_view endpoint = client_id.substr(at + 1);
    const std::size_t colon = endpoint.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    int port = 0;
    const std::string_view digits = endpoint.substr(colon + 1);
    if (std::from_chars(digits.data(), digits.data() + digits.size(), port).ec != std::errc())
      return std::nullopt;
    return HostInfo{std::string(endpoint.substr(0, colon)), port};
  }

  // Places num.standby.replicas copies of each stateful task, the first on
  // the member predicted to take the task over when its owner dies (see
  // runtime/standby_placement.h), and makes this instance's share match: new
  // standbys start following their changelogs, others close (writing their
  // checkpoint).
  void refresh_standbys(const GroupView& group) {
    const std::string me = kafka::member_id(consumer.get());
    if (std::none_of(group.members.begin(), group.members.end(),
                     [&](const runtime::GroupMember& member) { return member.id == me; }))
      return;  // not in the group's view yet
    const auto mine = group.standbys.find(me);
    const std::set<TaskId> wanted =
        mine != group.standbys.end() ? mine->second : std::set<TaskId>{};
    std::vector<TaskId> unwanted;
    for (const auto& [id, standby] : standbys)
      if (!wanted.contains(id) || task_manager->has_task(id)) unwanted.push_back(id);
    for (const TaskId& id : unwanted) drop_standby(id);
    for (const TaskId& id : wanted) {
      if (task_manager->has_task(id) || standbys.contains(id)) continue;
      auto standby = std::make_shared<StandbyTask>(topology, id, application_id,
                                                   state_directory / id.to_string(), rocksdb.get());
      try {
        standby->state.open(
            nullptr, [] { return int64_t{0}; }, 0);
      } catch (const std::exception& e) {
        log::get().warn("{}: cannot open standby task {}: {}", application_id, id.to_string(),
                        e.what());
        continue;
      }
      changelog_reader->add_standby(standby);
      std::lock_guard lock(standbys_mutex);
      standbys.emplace(id, std::move(standby));
    }
  }

  // ---- the poll loop -----------------------------------------------------

  // Records arrive in each partition's own queue; what reaches the consumer's
  // queue is errors and events.
  void handle_event(kafka::MessagePtr message) {
    // Records come through their partitions' own queues; one that reaches
    // the consumer's queue (as when its partition was assigned while a recovery
    // waited) is not processed here, and its offset is not committed (see
    // TaskManager::collect_offsets): the partition's task, once it starts,
    // reads it again from the committed offset.
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      if (stray_records_logged.emplace(kafka::topic_of(*message), message->partition).second)
        log::get().warn(
            "{}: records of {}[{}] from offset {} reached the consumer's queue, not their "
            "task's; the task reads them again from the committed offset when it starts",
            application_id, kafka::topic_of(*message), message->partition, message->offset);
      return;
    }
    if (message->err != RD_KAFKA_RESP_ERR_NO_ERROR &&
        message->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      log::get().warn("{}: consumer: {}", application_id, kafka::error_of(*message));
      if (message->err == RD_KAFKA_RESP_ERR__FATAL) fail(kafka::error_of(*message));
      if (message->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
          message->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
        refresh_subscribed_topics();
    }
  }

  // Restored tasks start; failed ones are rewound, or the uncaught exception
  // handler decides, which may stop the instance.
  void update_tasks() {
    if (!error_message.empty()) return;  // the instance is stopping anyway
    if (std::optional<std::string> fatal = task_manager->update(exception_handler)) {
      fail(*fatal);
      stopping.store(true);
      failed_stop = true;
    }
  }

  void poll_loop() {
    std::vector<rd_kafka_message_t*> events(16);
    auto next_commit = Clock::now() + commit_interval;
    auto next_tick = Clock::now() + kWallClockTick;
    try {
      while (!stopping.load()) {
        // Serves the rebalance callback too. Workers yield it when a task fails.
        const std::size_t count =
            consumer_queue->take(events.data(), events.size(), kPollTimeoutMs);
        for (std::size_t i = 0; i < count; ++i) handle_event(kafka::MessagePtr(events[i]));
        kafka::serve(task_manager->producer(), 0);
        task_manager->wake_fetchers();
        update_tasks();
        if (global_thread && global_thread->failed() && error_message.empty())
          fail(global_thread->error());
        if (!error_message.empty() && !failed_stop) {
          stopping.store(true);
          failed_stop = true;
        }
        auto now = Clock::now();
        // Wall-clock punctuations, and a task whose arrival signal came while
        // its previous run was ending.
        if (now >= next_tick) {
          next_tick = now + kWallClockTick;
          task_manager->schedule_all();
        }
        if (now >= next_gauges) {
          next_gauges = now + kGaugeInterval;
          publish_gauges();
          runtime::release_free_heap(kKeptFreeHeapBytes);
        } else {
          update_restored();
        }
        if (((standby_replicas > 0 && changelog_reader) || advertises) &&
            now >= next_group_refresh) {
          refresh_group();
          next_group_refresh = Clock::now() + std::chrono::seconds(5);
        }
        if (now >= next_coverage_check) {
          check_coverage();
          next_coverage_check = Clock::now() + kCoverageCheckInterval;
        }
        task_manager->recover_when_due(now);
        if (std::optional<std::string> timed_out = task_manager->timed_out(now)) {
          fail(*timed_out);
          stopping.store(true);
          failed_stop = true;
          break;
        }
        // Every task's request is taken, so each asks once.
        const bool requested = task_manager->commit_requested() ||
                               snapshot_commit_wanted.exchange(false, std::memory_order_relaxed);
        if (now >= next_commit || requested) {
          if (task_manager->commit() && replay_until_ms) finish_replay_when_complete();
          next_commit = Clock::now() + commit_interval;
        }
      }
    } catch (const std::exception& e) {
      fail(e.what());
      failed_stop = true;
    }
    shutdown();
  }

  // ---- metrics and probes -----------------------------------------------

  // Ready means every assigned task has its stores restored; cheap enough to
  // check on every turn of the poll loop.
  void update_restored() {
    bool restored = true;
    for (const auto& [id, task] : task_manager->tasks()) {
      const bool restoring = task->task_state() == runtime::TaskState::kRestoring;
      restored = restored && !restoring;
      if (task->metrics() != nullptr)
        task->metrics()->restoring.store(restoring, std::memory_order_relaxed);
    }
    all_restored.store(restored, std::memory_order_relaxed);
  }

  // See Stats::pending_input_records. A partition the application has taken
  // nothing from in this run has no position yet: what its fetches brought
  // waits in its queue, and only that counts.
  void publish_pending_input() {
    std::vector<kafka::TopicPartition> assigned;
    std::vector<const runtime::InputPartition*> inputs;
    for (const auto& [id, task] : task_manager->tasks())
      for (const auto& input : task->inputs()) {
        assigned.push_back({input->topic, input->partition});
        inputs.push_back(input.get());
      }
    int64_t pending = 0;
    if (!assigned.empty()) {
      try {
        assigned = group_consumer->position(std::move(assigned));
      } catch (const kafka::Error&) {
        pending_input.store(-1, std::memory_order_relaxed);
        return;
      }
    }
    // Event time: the earliest among source partitions with records
    // pending, else the latest.
    int64_t earliest_pending = -1, latest = -1;
    for (std::size_t i = 0; i < assigned.size(); ++i) {
      const runtime::InputPartition& input = *inputs[i];
      const auto marks = kafka::fetched_watermarks(consumer.get(), input.topic, input.partition);
      if (!marks) {
        pending = -1;
        break;
      }
      const kafka::TopicPartition& position = assigned[i];
      int64_t left = 0;
      if (position.error == RD_KAFKA_RESP_ERR_NO_ERROR && position.offset >= 0)
        left = std::max<int64_t>(0, std::min(marks->high, input.end_offset) - position.offset) +
               static_cast<int64_t>(input.unprocessed.load(std::memory_order_relaxed));
      else
        left = static_cast<int64_t>(input.waiting());
      pending += left;
      const int64_t timestamp = input.last_timestamp.load(std::memory_order_relaxed);
      if (timestamp < 0 || !topology_sources.contains(input.topic)) continue;
      latest = std::max(latest, timestamp);
      if (left > 0 && (earliest_pending < 0 || timestamp < earliest_pending))
        earliest_pending = timestamp;
    }
    pending_input.store(pending, std::memory_order_relaxed);
    event_time.store(earliest_pending >= 0 ? earliest_pending : latest, std::memory_order_relaxed);
  }

  void publish_gauges() {
    update_restored();
    publish_pending_input();
    standby_tasks.store(standbys.size(), std::memory_order_relaxed);
    if (!metrics_enabled) return;
    std::vector<metrics::PartitionGauges> partitions;
    for (const auto& [id, task] : task_manager->tasks())
      for (auto& input : task->inputs())
        partitions.push_back(
            {input->topic, input->partition, input->waiting(), input->hold_back.held_back()});
    metrics->publish_partitions(std::move(partitions));
    std::vector<metrics::StoreGauges> stores;
    for (const auto& [id, task] : task_manager->tasks()) {
      if (task->in_restore()) continue;  // the reader owns the stores meanwhile
      for (auto& store : task->state().store_metrics())
        stores.push_back({id.to_string(), store.store, store.estimated_keys, store.bytes,
                          store.cache.hits, store.cache.misses});
    }
    metrics->publish_stores(std::move(stores));
  }

  bool ready() const { return !not_ready_reason(); }

  // Why the instance is not ready, if it is not: its state, stores still
  // restoring, or a PostgreSQL sink that cannot write.
  std::optional<std::string> not_ready_reason() const {
    const State now = state_now();
    if (now != State::kRunning) return "state " + std::string(to_string(now));
    if (!all_restored.load(std::memory_order_relaxed)) return std::string("restoring state stores");
    for (const metrics::SinkValues& status : sink_values()) {
      if (!status.available)
        return "PostgreSQL sink '" + status.sink + "' is behind: it cannot write to table '" +
               status.table + "': " + status.last_error;
    }
    return std::nullopt;
  }

  metrics::InstanceValues instance_values() const {
    metrics::InstanceValues values;
    {
      std::lock_guard lock(state_mutex);
      values.state = to_string(state);
    }
    values.ready = ready();
    values.commits = counters.commits.load(std::memory_order_relaxed);
    values.partition_pauses = counters.partition_pauses.load(std::memory_order_relaxed);
    values.skipped_records =
        errors.counts().skipped.load(std::memory_order_relaxed) + deliveries.skipped();
    values.dead_lettered_records = errors.counts().dead_lettered.load(std::memory_order_relaxed);
    values.production_errors = deliveries.skipped();
    values.failed_tasks = counters.failed_tasks.load(std::memory_order_relaxed);
    values.active_tasks = counters.active_tasks.load(std::memory_order_relaxed);
    values.standby_tasks = standby_tasks.load(std::memory_order_relaxed);
    if (const auto* reader = published_reader.load(std::memory_order_acquire)) {
      values.restored_records = reader->restored_records();
      values.standby_records = reader->standby_records();
    }
    values.worker_threads = static_cast<uint64_t>(config.get_int(config::kNumStreamThreads));
    if (const auto* taken = published_snapshots.load(std::memory_order_acquire)) {
      values.snapshots = true;
      values.snapshots_uploaded = taken->uploaded();
      values.snapshot_failures = taken->failed();
      values.snapshot_bytes = taken->uploaded_bytes();
      values.last_snapshot_ms = taken->last_upload_ms();
      values.last_snapshot_duration_ms = taken->last_duration_ms();
      values.snapshot_duration_ms = taken->total_duration_ms();
      values.snapshot_restores = taken->restores();
      values.snapshot_fallbacks = taken->fallbacks();
    }
    const runtime::HeapMemory heap = runtime::heap_memory();
    values.heap_known = heap.known;
    values.heap_allocated_bytes = heap.allocated_bytes;
    values.heap_free_bytes = heap.free_bytes;
    const auto* memory = published_rocksdb.load(std::memory_order_acquire);
    const auto* caches = published_cache_budget.load(std::memory_order_acquire);
    if (memory != nullptr && caches != nullptr) {
      values.stores = true;
      values.rocksdb_memory_bytes = memory->usage();
      values.rocksdb_memory_limit_bytes = memory->capacity();
      values.rocksdb_memtable_bytes = memory->memtable_usage();
      values.store_cache_bytes = caches->bytes();
      values.store_cache_max_bytes = caches->max_bytes();
    }
    return values;
  }

  metrics::HttpResponse serve(std::string_view path) {
    if (path == "/metrics") {
      return {200, "text/plain; version=0.0.4; charset=utf-8",
              prometheus::TextSerializer().Serialize(metrics->Collect())};
    }
    if (path == "/healthz") {
      // Alive unless the instance failed: restarting it is then the cure.
      std::string current(to_string(state_now()));
      if (state_now() == State::kError) return {503, "text/plain; charset=utf-8", current + "\n"};
      return {200, "text/plain; charset=utf-8", current + "\n"};
    }
    if (path == "/readyz") {
      const std::optional<std::string> why = not_ready_reason();
      if (!why) return {200, "text/plain; charset=utf-8", "ready\n"};
      return {503, "text/plain; charset=utf-8", "not ready: " + *why + "\n"};
    }
    return {404, "text/plain; charset=utf-8", "not found; try /metrics, /healthz, /readyz\n"};
  }

  State state_now() const {
    std::lock_guard lock(state_mutex);
    return state;
  }

  // The query endpoint on application.server's port (see queries/query_server.h).
  void start_query_server() {
    if (!advertises) return;
    const std::string server = config.get_string(config::kApplicationServer);
    queries::QuerySource source;
    source.stores = this;
    auto queryable = [this](std::string_view name) {
      return subtopology_of_store.contains(name) || topology.is_global_store(name);
    };
    source.store = [this, queryable](std::string_view name) -> const StoreBuilder* {
      if (!queryable(name)) return nullptr;
      return &topology.store(name);
    };
    source.all_stores = [this, queryable] {
      std::vector<const StoreBuilder*> stores;
      for (const StoreBuilder& store : topology.stores())
        if (queryable(store.name())) stores.push_back(&store);
      return stores;
    };
    source.is_global = [this](std::string_view name) { return topology.is_global_store(name); };
    source.metadata_for_key = [this](std::string_view store, std::string_view key) {
      return metadata_for_key(store, key);
    };
    source.metadata_for_store = [this](std::string_view store) {
      return all_metadata_for_store(store);
    };
    source.partition_of = [this](std::string_view store, std::string_view key) {
      const int32_t sub = subtopology_of_store.find(store)->second;
      const int32_t partitions =
          partition_counts.at(driving_topics.at(static_cast<std::size_t>(sub)));
      return rd_kafka_msg_partitioner_murmur2(nullptr, key.data(), key.size(), partitions, nullptr,
                                              nullptr);
    };
    source.tasks_of = [this](std::string_view store) {
      const int32_t sub = subtopology_of_store.find(store)->second;
      return std::pair(sub, partition_counts.at(driving_topics.at(static_cast<std::size_t>(sub))));
    };
    source.self = *advertised_endpoint("@" + server);
    query_server = std::make_unique<queries::QueryServer>(config.get_string(config::kQueryBindHost),
                                                          std::move(source));
    log::get().info("{}: queries on http://{}:{}/v1/stores (advertised as {})", application_id,
                    config.get_string(config::kQueryBindHost), query_server->port(), server);
  }

  void start_endpoint() {
    if (!metrics_address) return;
    endpoint = std::make_unique<metrics::HttpServer>(
        metrics_address->first, metrics_address->second,
        [this](const metrics::HttpRequest& request) { return serve(request.path); });
    log::get().info("{}: metrics and probes on http://{}:{}/metrics", application_id,
                    metrics_address->first, endpoint->port());
  }

  void shutdown() {
    set_state(State::kPendingShutdown);
    query_server.reset();    // its queries under way answer "unavailable"
    task_manager->commit();  // skips failed tasks, and refuses after a refused output
    // Leaving the group revokes our partitions through on_rebalance, which
    // commits again (nothing new) and closes the tasks.
    stopping.store(true);
    task_manager->stop_waking_fetchers();
    kafka::close_consumer(consumer.get());
    // Tasks the revocation left: failed ones, or all when the consumer could
    // not leave the group.
    task_manager->close_all(!failed_stop);
    std::map<TaskId, std::shared_ptr<StandbyTask>> closing;
    {
      std::lock_guard lock(standbys_mutex);
      closing.swap(standbys);
    }
    for (auto& [id, standby] : closing) close_standby(*standby);
    kafka::flush(task_manager->producer(), std::chrono::seconds(30));
    pool->join();
    // No commit follows: the snapshots taken so far are uploaded (for a
    // while; see TaskSnapshots::stop).
    if (snapshots) snapshots->stop();
    // No task reads the global stores any more.
    if (global_thread) global_thread->stop();
    for (auto& sink : postgres_sinks) sink->stop();
    set_state(error_message.empty() ? State::kNotRunning : State::kError);
  }

  Topology topology;
  StreamsConfig config;
  runtime::ErrorHandling errors;
  std::string application_id;
  std::chrono::milliseconds commit_interval{30000};
  std::size_t buffer_capacity = 1000;
  std::map<std::string, int32_t> subtopology_of_topic;
  // Partition counts of every topic the application reads or creates.
  std::map<std::string, int32_t> partition_counts;
  // By sub-topology id: the topic the group assigns (see plan_sources).
  std::vector<std::string> driving_topics;
  // By driving topic: the other sources and their partition counts.
  std::map<std::string, std::vector<std::pair<std::string, int32_t>>> followers;

  runtime::DeliveryTracker deliveries;
  // Until the task manager takes it: set-up's admin calls go through it.
  kafka::KafkaPtr producer;
  kafka::KafkaPtr consumer;
  // Handles on the followers' topics (see subscribe), let go before `consumer`.
  std::vector<kafka::TopicPtr> follower_topics;
  // The calls on `consumer` whose outcome the runtime decides on.
  std::unique_ptr<kafka::Consumer> group_consumer;
  std::optional<kafka::MessageQueue> consumer_queue;
  std::unique_ptr<boost::asio::thread_pool> pool;
  std::thread poll_thread;

  runtime::TaskGate gate;
  // statestore.cache.max.bytes, for the record caches of every task's stores
  // together; declared before the tasks, which count against it.
  std::unique_ptr<state::CacheBudget> cache_budget;
  runtime::TaskCounters counters;
  std::atomic<uint64_t> standby_tasks{0};
  std::size_t worker_threads = 1;
  std::atomic<std::size_t> next_worker_index{0};
  std::atomic<bool> all_restored{true};
  std::atomic<int64_t> pending_input{-1};
  std::atomic<int64_t> event_time{-1};
  // The source topics that are not internal.
  std::set<std::string> topology_sources;
  Clock::time_point next_gauges = Clock::now();

  std::filesystem::path state_directory;
  bool exactly_once = false;
  // replay_until: the event time, and where each source partition ends.
  std::optional<int64_t> replay_until_ms;
  std::atomic<bool> replayed{false};
  std::map<std::pair<std::string, int32_t>, int64_t> replay_end_offsets;
  // How long an output may wait for the cluster's acknowledgement: the
  // transaction timeout, or message.timeout.ms at least once.
  std::chrono::milliseconds delivery_timeout{60000};
  std::chrono::milliseconds task_timeout{300000};
  std::string instance_id;
  int process_id_fd = -1;
  std::unique_ptr<state::RocksDbResources> rocksdb;
  std::unique_ptr<state::ChangelogReader> changelog_reader;
  // Declared before the task manager, so gone after it: its commits queue uploads.
  std::unique_ptr<state::TaskSnapshots> snapshots;
  // archive.location, and the source topics read from it (archive.topics).
  std::shared_ptr<const archive::Archive> archive;
  std::set<std::string> archived_topics;
  // What metrics read of it, from their own thread.
  std::atomic<const state::TaskSnapshots*> published_snapshots{nullptr};
  // The stores' memory, for the metrics endpoint's thread.
  std::atomic<const state::RocksDbResources*> published_rocksdb{nullptr};
  std::atomic<const state::CacheBudget*> published_cache_budget{nullptr};
  // KafkaStreams::snapshot() asked for a commit, at which tasks snapshot.
  std::atomic<bool> snapshot_commit_wanted{false};
  std::unique_ptr<runtime::GlobalThread> global_thread;
  std::vector<std::unique_ptr<sinks::PostgresSink>> postgres_sinks;
  std::atomic<bool> sinks_started{false};
  // The same, for scrapes, which may come while start() creates it.
  std::atomic<const state::ChangelogReader*> published_reader{nullptr};
  // Changed on the owning thread only; queries read it under standbys_mutex.
  std::map<TaskId, std::shared_ptr<state::StandbyTask>> standbys;
  mutable std::mutex standbys_mutex;
  // From start(): the active tasks, their commits, and the producer.
  std::unique_ptr<runtime::TaskManager> task_manager;
  std::unique_ptr<queries::QueryServer> query_server;
  // The sub-topology whose tasks hold each store, for queries.
  std::map<std::string, int32_t, std::less<>> subtopology_of_store;
  int64_t standby_replicas = 0;
  Clock::time_point next_group_refresh = Clock::time_point::max();
  // The group's coverage of its driving partitions (check_coverage).
  static constexpr auto kCoverageCheckInterval = std::chrono::seconds(10);
  static constexpr int kCoverageChecks = 3;
  runtime::CoverageWatch coverage{kCoverageChecks};
  Clock::time_point next_coverage_check = Clock::time_point::max();
  std::set<std::string> left_out_of_subscription;
  bool rebalanced_since_left_out = false;
  // Whether this instance advertises an application.server.
  bool advertises = false;
  mutable std::mutex group_view_mutex;
  std::shared_ptr<const GroupView> group_view;
  RestoreListener restore_listener;

  std::atomic<bool> stopping{false};
  bool failed_stop = false;
  // Partitions whose records reached the consumer's queue (see handle_event).
  std::set<std::pair<std::string, int32_t>> stray_records_logged;
  // Whether the group ever assigned this consumer partitions (see ~Impl).
  bool received_assignment = false;
  mutable std::mutex state_mutex;
  std::condition_variable state_changed;
  State state = State::kCreated;
  std::string error_message;
  StateListener listener;
  ExceptionHandler exception_handler;

  bool metrics_enabled = true;
  std::optional<std::pair<std::string, uint16_t>> metrics_address;
  std::unique_ptr<metrics::Registry> metrics;
  // Last: stopped first, so no request reads the instance while it is torn down.
  std::unique_ptr<metrics::HttpServer> endpoint;
};

KafkaStreams::KafkaStreams(Topology topology, StreamsConfig config)
    : impl_(std::make_unique<Impl>(std::move(topology), std::move(config))) {}

KafkaStreams::~KafkaStreams() {
  close();
}

void KafkaStreams::set_state_listener(StateListener listener) {
  impl_->listener = std::move(listener);
}

void KafkaStreams::set_restore_listener(RestoreListener listener) {
  impl_->restore_listener = std::move(listener);
}

void KafkaStreams::set_uncaught_exception_handler(ExceptionHandler handler) {
  impl_->exception_handler = std::move(handler);
}

bool KafkaStreams::snapshot() {
  state::TaskSnapshots* snapshots = impl_->snapshots.get();
  if (snapshots == nullptr || state() == State::kCreated) return false;
  snapshots->request_all();
  impl_->snapshot_commit_wanted.store(true, std::memory_order_relaxed);
  return true;
}

void KafkaStreams::replay_until(int64_t until_ms) {
  if (state() != State::kCreated)
    throw std::logic_error("KafkaStreams::replay_until() after start()");
  impl_->replay_until_ms = until_ms;
}

void KafkaStreams::start() {
  if (state() != State::kCreated) throw std::logic_error("KafkaStreams::start() called twice");
  log::get().info("{} starting: {}; malloc from {}", impl_->application_id,
                  impl_->config.to_log_string(), runtime::allocator_library());
  impl_->start_endpoint();
  impl_->create_clients();
  impl_->prepare_topics();
  impl_->open_archive();
  if (impl_->replay_until_ms) impl_->plan_replay();
  impl_->prepare_state();
  impl_->pool = std::make_unique<boost::asio::thread_pool>(impl_->worker_threads);
  impl_->set_state(State::kRebalancing);
  impl_->start_global_thread();
  impl_->start_postgres_sinks();
  impl_->create_task_manager();
  impl_->subscribe();
  impl_->start_query_server();  // it reads the driving topics subscribe() chose
  impl_->poll_thread = std::thread([this] { impl_->poll_loop(); });
}

bool KafkaStreams::close(std::chrono::milliseconds timeout) {
  if (!impl_->poll_thread.joinable()) {
    impl_->set_state(State::kNotRunning);
    return true;
  }
  impl_->set_state(State::kPendingShutdown);
  impl_->stopping.store(true);
  bool stopped = wait_for_stop(timeout);
  if (impl_->poll_thread.joinable()) impl_->poll_thread.join();
  return stopped;
}

bool KafkaStreams::wait_for_stop(std::chrono::milliseconds timeout) {
  std::unique_lock lock(impl_->state_mutex);
  return impl_->state_changed.wait_for(lock, timeout, [&] {
    return impl_->state == State::kNotRunning || impl_->state == State::kError;
  });
}

void KafkaStreams::cleanup() {
  const State now = state();
  if (impl_->poll_thread.joinable() || now == State::kRunning || now == State::kRebalancing ||
      now == State::kPendingShutdown)
    throw std::logic_error(
        "KafkaStreams::cleanup() while the instance runs: call it before start() or after "
        "close()");
  state::delete_local_state(impl_->state_directory);
}

KafkaStreams::State KafkaStreams::state() const {
  std::lock_guard lock(impl_->state_mutex);
  return impl_->state;
}

std::string KafkaStreams::error() const {
  std::lock_guard lock(impl_->state_mutex);
  return impl_->error_message;
}

KafkaStreams::Stats KafkaStreams::stats() const {
  Stats stats;
  stats.processed_records = impl_->gate.processed.load(std::memory_order_relaxed);
  stats.dropped_records = impl_->gate.dropped.load(std::memory_order_relaxed);
  stats.commits = impl_->counters.commits.load(std::memory_order_relaxed);
  stats.partition_pauses = impl_->counters.partition_pauses.load(std::memory_order_relaxed);
  stats.skipped_records =
      impl_->errors.counts().skipped.load(std::memory_order_relaxed) + impl_->deliveries.skipped();
  stats.dead_lettered_records =
      impl_->errors.counts().dead_lettered.load(std::memory_order_relaxed);
  stats.active_tasks = impl_->counters.active_tasks.load(std::memory_order_relaxed);
  stats.aborted_transactions = impl_->counters.aborted_transactions.load(std::memory_order_relaxed);
  stats.task_rewinds = impl_->counters.rewinds.load(std::memory_order_relaxed);
  if (impl_->changelog_reader) {
    stats.restored_records = impl_->changelog_reader->restored_records();
    stats.restoring_records = impl_->metrics->restore_remaining();
    stats.standby_records = impl_->changelog_reader->standby_records();
  }
  if (const auto* snapshots = impl_->published_snapshots.load(std::memory_order_acquire))
    stats.snapshot_download_bytes = snapshots->download_bytes_left();
  if (impl_->global_thread) stats.global_records = impl_->global_thread->state().applied_records();
  stats.pending_input_records = impl_->pending_input.load(std::memory_order_relaxed);
  stats.event_time_ms = impl_->event_time.load(std::memory_order_relaxed);
  stats.replayed = impl_->replayed.load();
  return stats;
}

internal::StoreQueries& KafkaStreams::queries() const {
  return *impl_;
}

std::vector<StreamsMetadata> KafkaStreams::all_metadata() const {
  return impl_->all_metadata();
}

std::vector<StreamsMetadata> KafkaStreams::all_metadata_for_store(std::string_view store) const {
  return impl_->all_metadata_for_store(store);
}

std::optional<KeyQueryMetadata> KafkaStreams::metadata_for_key_bytes(std::string_view store,
                                                                     std::string_view key) const {
  return impl_->metadata_for_key(store, key);
}

int KafkaStreams::metrics_port() const {
  return impl_->endpoint ? impl_->endpoint->port() : 0;
}

namespace {
std::atomic<int> received_signal{0};
std::atomic<bool> snapshot_signal{false};
}  // namespace

int run_until_signal(KafkaStreams& streams, const RunLimits& limits) {
  received_signal.store(0);
  auto on_signal = [](int signal) { received_signal.store(signal); };
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGUSR1, [](int) { snapshot_signal.store(true); });
  log::install_crash_report();
  const auto started = Clock::now();
  auto last_progress = started;
  uint64_t processed = 0;
  while (received_signal.load() == 0 && !streams.wait_for_stop(std::chrono::milliseconds(100))) {
    if (snapshot_signal.exchange(false))
      log::get().info(streams.snapshot() ? "SIGUSR1: every task snapshots at the next commit"
                                         : "SIGUSR1: snapshots are off "
                                           "(state.snapshot.interval.ms is 0)");
    const auto now = Clock::now();
    if (limits.duration.count() > 0 && now - started >= limits.duration) {
      log::get().info("ran for {} ms; closing", limits.duration.count());
      break;
    }
    if (limits.idle.count() > 0) {
      const KafkaStreams::Stats stats = streams.stats();
      if (stats.processed_records != processed || stats.pending_input_records != 0 ||
          streams.state() != KafkaStreams::State::kRunning) {
        processed = stats.processed_records;
        last_progress = now;
      } else if (now - last_progress >= limits.idle) {
        log::get().info("input drained and idle for {} ms after {} records; closing",
                        limits.idle.count(), processed);
        break;
      }
    }
  }
  if (received_signal.load() != 0)
    log::get().info("received signal {}; closing", received_signal.load());
  streams.close();
  if (streams.state() == KafkaStreams::State::kError) {
    std::cerr << "rill: " << streams.error() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace rill
