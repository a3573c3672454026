// The one declaration of rill's configuration keys, and their parsing.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <iterator>
#include <limits>

#include "rill/config.h"

namespace rill {
namespace {

const std::vector<ConfigKey> kKeys = {
    {config::kApplicationId,
     ConfigType::kString,
     "",
     "Identifies the application: the consumer group id and the prefix of internal topics. "
     "Instances with the same id share the work.",
     {},
     true},
    {config::kBootstrapServers,
     ConfigType::kString,
     "",
     "Kafka brokers to connect to, as host:port[,host:port...].",
     {},
     true},
    {config::kNumStreamThreads, ConfigType::kInt, "1",
     "Worker threads that run tasks. Tasks run serially each, in parallel across threads."},
    {config::kCommitIntervalMs, ConfigType::kDuration, "30000",
     "How often input offsets are committed (100 under exactly_once_v2 unless set)."},
    {config::kStateDir, ConfigType::kString, "/tmp/rill",
     "Directory of local state stores, one folder per application and task."},
    {config::kProcessingGuarantee,
     ConfigType::kEnum,
     "at_least_once",
     "at_least_once: outputs may repeat after a failure, never go missing. exactly_once_v2: "
     "outputs, state and input offsets commit atomically through Kafka transactions.",
     {"at_least_once", "exactly_once_v2"}},
    {config::kReplicationFactor, ConfigType::kInt, "-1",
     "Replication factor of internal topics; -1 takes the broker's default."},
    {config::kBufferedRecordsPerPartition, ConfigType::kInt, "10000",
     "Records fetched ahead per input partition (librdkafka's queued.min.messages): a partition "
     "holding this many waiting records is not fetched until its task has processed half of "
     "them. consumer.queued.max.messages.kbytes bounds the same buffer in bytes (64 MiB per "
     "partition by default)."},
    {config::kDeserializationHandler,
     ConfigType::kEnum,
     "log-and-fail",
     "What happens to a record whose key or value cannot be deserialized: log-and-fail stops "
     "the application naming topic, partition and offset; log-and-continue skips it and counts "
     "it; dead-letter writes it to errors.dead.letter.queue.topic.name and continues. When "
     "that topic is set, every handler first writes the record there, as in Kafka Streams.",
     {"log-and-fail", "log-and-continue", "dead-letter"}},
    {config::kProcessingHandler,
     ConfigType::kEnum,
     "log-and-fail",
     "What happens to a record whose processing throws: as deserialization.exception.handler.",
     {"log-and-fail", "log-and-continue", "dead-letter"}},
    {config::kProductionHandler,
     ConfigType::kEnum,
     "log-and-fail",
     "What happens when the broker rejects an output record: log-and-fail stops the "
     "application; log-and-continue skips the record and counts it (at_least_once only: under "
     "exactly_once_v2 the refusal aborts the transaction the record is in, so it stops the "
     "application). Refusals caused by the cluster (timeouts, too few in-sync replicas) reach "
     "no handler: the tasks go back to the last commit and retry.",
     {"log-and-fail", "log-and-continue"}},
    {config::kDeadLetterTopic, ConfigType::kString, "",
     "Topic that receives records the error handlers give up on: the original key and value "
     "bytes, with headers naming the error, source topic, partition and offset."},
    {config::kApplicationServer, ConfigType::kString, "",
     "The host:port where this instance answers queries of its stores, as Kafka Streams' "
     "application.server. Every instance advertises it to the others through the client id "
     "of its group consumer, so that KafkaStreams::metadata_for_key and all_metadata name the "
     "instance that holds a key, and answers queries over HTTP on its port (see "
     "docs/queries.md). Empty: the instance advertises nothing and serves no queries."},
    {config::kQueryBindHost, ConfigType::kString, "127.0.0.1",
     "The address the query endpoint listens on, at the port of application.server. "
     "127.0.0.1 lets only this machine in; 0.0.0.0 listens on every interface, for instances "
     "and clients on other machines."},
    {config::kClientId, ConfigType::kString, "",
     "Prefix of the librdkafka client ids; defaults to the application id."},
    {config::kSessionTimeoutMs, ConfigType::kDuration, "45000",
     "Consumer group session timeout: how long a silent instance keeps its partitions."},
    {config::kTaskTimeoutMs, ConfigType::kDuration, "300000",
     "How long the application rides out faults of the cluster (timeouts, a broker down, a "
     "transaction that must abort) before it fails: each fault takes every task back to the "
     "last commit and retries with backoff, and only when no commit has succeeded for this "
     "long does the instance stop in ERROR."},
    {config::kMaxTaskIdleMs, ConfigType::kInt, "0",
     "How a task reading several partitions (a join, a merge into an aggregate) waits for one "
     "of them that has nothing fetched, so that it processes their records in timestamp order "
     "(Kafka Streams' setting): 0 waits only while the partition's records are still being "
     "fetched, never for new ones; N also waits N ms for records to be written once the "
     "partition is read to its end; -1 never waits."},
    {config::kRepartitionPurgeIntervalMs, ConfigType::kDuration, "30000",
     "How often, at most, the records of repartition topics that a commit covered are deleted "
     "(DeleteRecords), so that these topics stop growing; the deletion runs in the background "
     "after a commit, and a failed one is retried at the next interval."},
    {config::kNumStandbyReplicas, ConfigType::kInt, "0",
     "Warm copies kept of each stateful task on other instances, following its changelog, so "
     "that on failover only the tail after their checkpoint is restored."},
    {config::kCacheMaxBytes, ConfigType::kInt, "10485760",
     "Memory for record caches: what the caches of all the instance's tasks and stores hold "
     "together. Consecutive updates of a key in an aggregation are folded there and handed on "
     "(to the changelog and downstream) at commit, or earlier by a store whose write takes "
     "the total over this bound: its least recently updated entries, a sixteenth of the bound "
     "at a time. 0 hands on every update at once. An entry counts as Kafka Streams counts it: "
     "its key and value and 45 bytes, so the same bound holds as many entries in both; in "
     "memory an entry takes about 80 bytes more."},
    {config::kRocksDbBlockCacheBytes, ConfigType::kInt, "104857600",
     "Memory for the RocksDB block cache shared by every store of the instance; memtables "
     "are charged to it too, so it bounds RocksDB's memory."},
    {config::kRocksDbMemtableBytes, ConfigType::kInt, "67108864",
     "The part of rocksdb.block.cache.bytes all stores' memtables may take together."},
    {config::kSnapshotIntervalMs, ConfigType::kDuration, "0",
     "How often, at most, each task snapshots its persistent stores after a commit (RocksDB "
     "checkpoints and the changelog offsets they cover, uploaded to state.snapshot.location), "
     "so that a task starting without local state downloads the newest snapshot and restores "
     "only the changelogs' tail. 0: no snapshots are taken, and none is read."},
    {config::kSnapshotLocation, ConfigType::kString, "",
     "Where snapshots go: s3://bucket[/prefix] (with s3.*), or a local "
     "directory (file:///path or a path). Empty: <state.dir>/snapshots."},
    {config::kSnapshotsRetained, ConfigType::kInt, "3",
     "How many snapshots of each task are kept; older ones are deleted after an upload."},
    {config::kArchiveLocation, ConfigType::kString, "",
     "Where topics' archives are (rill archive writes them): s3://bucket[/prefix] (with "
     "s3.*), or a local directory (file:///path or a path)."},
    {config::kArchiveTopics, ConfigType::kString, "",
     "Source topics whose records retention deleted are read from archive.location: "
     "comma-separated, or * for every source topic. A partition whose next offset the topic "
     "no longer holds processes its archived records from there to the archive's end, in "
     "offset order, then the topic from the archive's end on."},
    {config::kS3Endpoint, ConfigType::kString, "",
     "The S3-compatible endpoint of s3:// locations (snapshots and the archive), as "
     "http(s)://host:port; empty: https://s3.<region>.amazonaws.com."},
    {config::kS3Region, ConfigType::kString, "us-east-1",
     "The region requests to s3:// locations are signed for (AWS SigV4)."},
    {config::kS3AccessKey, ConfigType::kString, "",
     "The access key id requests to s3:// locations are signed with."},
    {config::kS3SecretKey,
     ConfigType::kString,
     "",
     "The secret access key requests to s3:// locations are signed with.",
     {},
     false,
     true},
    {config::kTopicWaitMs, ConfigType::kDuration, "30000",
     "How long start-up waits for source topics to exist before failing with an error "
     "that names the missing topic."},
    {config::kMetricsAddress, ConfigType::kString, "",
     "Where the HTTP endpoint listens that serves Prometheus metrics (/metrics) and the "
     "liveness and readiness probes (/healthz, /readyz): host:port, or a port alone, which "
     "binds 127.0.0.1 only. Port 0 picks a free port (KafkaStreams::metrics_port() tells "
     "which). Empty: no endpoint. Use 0.0.0.0:PORT to let Prometheus on another host scrape."},
    {config::kMetricsEnabled, ConfigType::kBool, "true",
     "Whether tasks record metrics: records per processor and task, processing and "
     "end-to-end latency histograms (timing one record in eight), and librdkafka statistics "
     "every second for consumer lag and the producer queue. false leaves the endpoint "
     "serving the probes and instance-wide counters only."},
    {config::kMetricsRecordingLevel,
     ConfigType::kEnum,
     "INFO",
     "As in Kafka Streams: INFO records the metrics listed in docs/operations.md; DEBUG adds "
     "get and put latency histograms of key-value stores, at two clock reads per store "
     "operation.",
     {"INFO", "DEBUG"}},
    {config::kLogFormat,
     ConfigType::kEnum,
     "text",
     "Format of log lines on stderr, rill's and librdkafka's: text, or json (one object per "
     "line with time, level, logger, thread and message). Applies to the whole process.",
     {"text", "json"}},
    {config::kLogLevel,
     ConfigType::kEnum,
     "",
     "Level of rill's and librdkafka's log lines; unset, the RILL_LOG_LEVEL environment "
     "variable or info. Applies to the whole process.",
     {"trace", "debug", "info", "warn", "error", "critical", "off"}},
};

const ConfigKey* find_key(std::string_view name) {
  for (const auto& key : kKeys)
    if (key.name == name) return &key;
  return nullptr;
}

const ConfigKey& declared(std::string_view name) {
  const ConfigKey* key = find_key(name);
  if (key == nullptr) throw std::logic_error("config key not declared: " + std::string(name));
  return *key;
}

ConfigError invalid(std::string_view key, std::string_view value, std::string_view expected) {
  const std::string_view shown = is_secret_key(key) ? kSecretMask : value;
  return ConfigError("config '" + std::string(key) + "': invalid value '" + std::string(shown) +
                     "', expected " + std::string(expected));
}

int64_t parse_int(std::string_view key, std::string_view value) {
  int64_t result = 0;
  auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), result);
  if (error != std::errc() || end != value.data() + value.size())
    throw invalid(key, value, "an integer");
  return result;
}

bool parse_bool(std::string_view key, std::string_view value) {
  if (value == "true") return true;
  if (value == "false") return false;
  throw invalid(key, value, "true or false");
}

// The values an integer or duration key takes. Durations reach librdkafka and
// timers as int milliseconds (24.8 days at most), as Kafka's own int-typed
// *.ms settings do; counts are bounded where a larger one could only be a typo
// that would take the machine down (threads) or that Kafka refuses (replicas).
struct Range {
  int64_t min;
  int64_t max;
};
Range range_of(const ConfigKey& key) {
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  if (key.name == config::kReplicationFactor) return {-1, std::numeric_limits<int16_t>::max()};
  if (key.name == config::kNumStreamThreads) return {1, 1024};
  if (key.name == config::kNumStandbyReplicas) return {0, 1024};
  if (key.name == config::kSnapshotsRetained) return {1, 1000};
  if (key.name == config::kBufferedRecordsPerPartition) return {1, kInt32Max};
  if (key.name == config::kMaxTaskIdleMs) return {-1, kInt32Max};
  if (key.type == ConfigType::kDuration) return {0, kInt32Max};
  return {0, std::numeric_limits<int64_t>::max()};
}

void check(const ConfigKey& key, std::string_view value) {
  switch (key.type) {
    case ConfigType::kString:
      break;
    case ConfigType::kInt:
    case ConfigType::kDuration: {
      const Range range = range_of(key);
      const int64_t n = parse_int(key.name, value);
      if (n < range.min || n > range.max)
        throw invalid(
            key.name, value,
            "an integer from " + std::to_string(range.min) + " to " + std::to_string(range.max));
      break;
    }
    case ConfigType::kBool:
      parse_bool(key.name, value);
      break;
    case ConfigType::kEnum:
      if (std::find(key.allowed.begin(), key.allowed.end(), value) == key.allowed.end()) {
        std::string expected = "one of";
        for (auto allowed : key.allowed) expected += " " + std::string(allowed);
        throw invalid(key.name, value, expected);
      }
      break;
  }
}

constexpr std::string_view kClients[] = {"consumer", "producer", "admin"};
// Keys for the configs of the internal topics rill creates, not for a client.
constexpr std::string_view kTopicPrefix = "topic.";

}  // namespace

std::span<const ConfigKey> config_keys() {
  return kKeys;
}

bool is_secret_key(std::string_view key) {
  const ConfigKey* declaration = find_key(key);
  if (declaration != nullptr) return declaration->secret;
  std::string name(key);
  for (char& c : name) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c == '_' || c == '-') c = '.';
  }
  // Substrings rather than whole names: librdkafka and the Java clients name
  // the same secret several ways (ssl.key.password, sasl.oauthbearer.client.secret).
  constexpr std::string_view kSecretWords[] = {"password",
                                               "secret",
                                               "token",
                                               "credential",
                                               "ssl.key",
                                               "private.key",
                                               "jaas.config",
                                               "oauthbearer.config",
                                               "basic.auth.user.info"};
  return std::any_of(std::begin(kSecretWords), std::end(kSecretWords),
                     [&](std::string_view word) { return name.find(word) != std::string::npos; });
}

std::string config_reference_markdown() {
  auto type_name = [](const ConfigKey& key) -> std::string {
    switch (key.type) {
      case ConfigType::kString:
        return "string";
      case ConfigType::kInt:
      case ConfigType::kDuration: {
        const Range range = range_of(key);
        return std::string(key.type == ConfigType::kInt ? "integer" : "milliseconds") + ", " +
               std::to_string(range.min) + " to " + std::to_string(range.max);
      }
      case ConfigType::kBool:
        return "boolean";
      case ConfigType::kEnum: {
        std::string values;
        for (auto value : key.allowed)
          values += (values.empty() ? "" : " \\| ") + std::string(value);
        return values;
      }
    }
    return "";
  };
  std::string out =
      "# Configuration\n\n"
      "Keys follow Kafka Streams' names. This page is rendered from the declaration in\n"
      "`framework/src/config/streams_config.cpp`; a unit test fails when they differ\n"
      "(`RILL_UPDATE_DOCS=1 build/tests/rill_unit_tests \"[config-doc]\"` rewrites it).\n\n"
      "Any other key is passed to librdkafka: `consumer.`, `producer.` and `admin.`\n"
      "prefixes address one client (prefix removed); unprefixed keys go to every client.\n"
      "So `security.protocol`, `sasl.mechanism`, `sasl.username` and `sasl.password` set\n"
      "SASL for all of them. The values of secret keys (names with password, secret, token,\n"
      "credentials, ssl.key, private.key, jaas.config, oauthbearer.config or\n"
      "basic.auth.user.info) are never logged nor quoted in errors: they show as `*****`.\n\n"
      "Keys prefixed `topic.` set configs of the internal topics rill creates (changelogs and\n"
      "repartition topics), as in Kafka Streams: `topic.min.insync.replicas: 2` with\n"
      "`replication.factor: 3` matches a cluster of three brokers. What a store sets for its\n"
      "changelog (its cleanup policy, a window store's retention, its own log config) wins;\n"
      "`cleanup.policy` cannot be set, since each topic's role decides it.\n\n"
      "A new application, or one whose group has committed nothing for a partition, reads\n"
      "that partition from its earliest record, as Kafka Streams does\n"
      "(`consumer.auto.offset.reset: latest` starts at the end instead). Once the group has\n"
      "committed, it resumes after the last commit.\n\n"
      "The consumer waits at most 50 ms for a fetch that finds no new records\n"
      "(`consumer.fetch.wait.max.ms`; librdkafka and Kafka Streams wait 500 ms). A task reading\n"
      "a table beside a stream keeps the table's partitions in every fetch once they are read\n"
      "to their end: a longer wait would hold back the stream's records behind it.\n\n"
      "The consumer refreshes the metadata of its topics every 10 s\n"
      "(`consumer.topic.metadata.refresh.interval.ms`; librdkafka refreshes every 5 minutes).\n"
      "Just after an application creates its internal topics, a broker that has not heard of\n"
      "one yet answers that it does not exist, and the group assigns none of its partitions\n"
      "until the consumer asks again.\n\n"
      "The `rill` command takes any key on its command line too: `rill run FILE --set\n"
      "key=value` replaces the file's value, checked as the file's is.\n\n"
      "| key | type | default | description |\n|---|---|---|---|\n";
  for (const auto& key : kKeys) {
    std::string default_value = key.required ? "required" : std::string(key.default_value);
    if (default_value.empty()) default_value = "(none)";
    out += "| `" + std::string(key.name) + "` | " + type_name(key) + " | " + default_value + " | " +
           std::string(key.description) + " |\n";
  }
  return out;
}

StreamsConfig::StreamsConfig(std::initializer_list<std::pair<std::string, std::string>> entries) {
  for (const auto& [key, value] : entries) set(key, value);
}

StreamsConfig& StreamsConfig::set(std::string key, std::string value) {
  entries_[std::move(key)] = std::move(value);
  return *this;
}

bool StreamsConfig::contains(std::string_view key) const {
  return entries_.contains(key);
}

std::optional<std::string> StreamsConfig::raw(std::string_view key) const {
  auto it = entries_.find(key);
  if (it != entries_.end()) return it->second;
  const ConfigKey& declaration = declared(key);
  if (key == config::kCommitIntervalMs &&
      get_string(config::kProcessingGuarantee) != "at_least_once")
    return "100";
  if (declaration.default_value.empty()) return std::nullopt;
  return std::string(declaration.default_value);
}

std::string StreamsConfig::get_string(std::string_view key) const {
  auto value = raw(key);
  if (!value) {
    if (declared(key).required) throw ConfigError("config '" + std::string(key) + "' is required");
    return {};
  }
  check(declared(key), *value);
  return *value;
}

std::vector<std::string> StreamsConfig::get_list(std::string_view key) const {
  const std::string listed = get_string(key);
  std::vector<std::string> entries;
  std::size_t start = 0;
  while (start <= listed.size()) {
    std::size_t comma = listed.find(',', start);
    if (comma == std::string::npos) comma = listed.size();
    const std::size_t first = listed.find_first_not_of(' ', start);
    const std::size_t last = listed.find_last_not_of(' ', comma == 0 ? 0 : comma - 1);
    if (first < comma && last != std::string::npos && last >= first)
      entries.push_back(listed.substr(first, last - first + 1));
    start = comma + 1;
  }
  return entries;
}

int64_t StreamsConfig::get_int(std::string_view key) const {
  return parse_int(key, get_string(key));
}

bool StreamsConfig::get_bool(std::string_view key) const {
  return parse_bool(key, get_string(key));
}

std::chrono::milliseconds StreamsConfig::get_duration(std::string_view key) const {
  return std::chrono::milliseconds(get_int(key));
}

void StreamsConfig::check_value(std::string_view key, std::string_view value) {
  check(declared(key), value);
}

void StreamsConfig::validate() const {
  for (const auto& key : kKeys) {
    if (key.required && !entries_.contains(key.name))
      throw ConfigError("config '" + std::string(key.name) + "' is required");
    auto it = entries_.find(key.name);
    if (it != entries_.end()) check(key, it->second);
  }
  if (get_string(config::kApplicationId).empty())
    throw ConfigError("config 'application.id' must not be empty");
  if (entries_.contains("topic.cleanup.policy"))
    throw ConfigError(
        "config 'topic.cleanup.policy': the cleanup policy of internal topics follows their role "
        "(compact for changelogs, delete for repartition topics) and cannot be set");
  bool dead_letter = get_string(config::kDeserializationHandler) == "dead-letter" ||
                     get_string(config::kProcessingHandler) == "dead-letter";
  if (dead_letter && get_string(config::kDeadLetterTopic).empty())
    throw ConfigError(
        "config 'errors.dead.letter.queue.topic.name' is required when an exception handler "
        "is dead-letter");
}

std::map<std::string, std::string> StreamsConfig::client_properties(std::string_view client) const {
  std::map<std::string, std::string> properties;
  for (const auto& [key, value] : entries_) {
    if (find_key(key) != nullptr || key.starts_with(kTopicPrefix)) continue;
    bool prefixed = false;
    for (auto other : kClients) {
      std::string prefix = std::string(other) + ".";
      if (key.starts_with(prefix)) {
        prefixed = true;
        if (other == client) properties[key.substr(prefix.size())] = value;
      }
    }
    if (!prefixed) properties.emplace(key, value);
  }
  // Prefixed keys win over unprefixed ones.
  for (const auto& [key, value] : entries_) {
    std::string prefix = std::string(client) + ".";
    if (key.starts_with(prefix)) properties[key.substr(prefix.size())] = value;
  }
  return properties;
}

std::map<std::string, std::string> StreamsConfig::topic_configs() const {
  std::map<std::string, std::string> configs;
  for (const auto& [key, value] : entries_)
    if (key.starts_with(kTopicPrefix)) configs[key.substr(kTopicPrefix.size())] = value;
  return configs;
}

std::string StreamsConfig::to_log_string() const {
  std::string out;
  for (const auto& [key, value] : entries_) {
    out += (out.empty() ? "" : ", ") + key + "=" +
           std::string(is_secret_key(key) ? kSecretMask : std::string_view(value));
  }
  return out;
}

}  // namespace rill
