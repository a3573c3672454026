// Application configuration, with Kafka Streams' key names.
//
// Every rill key is declared once, in config_keys() (name, type, default,
// description); the documentation and the checks come from that table. Keys
// prefixed "consumer.", "producer." or "admin." go to that librdkafka client
// only; "topic." keys configure the internal topics rill creates; other
// unknown keys go to every librdkafka client, so any librdkafka property
// (SASL, SSL, timeouts) can be set.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rill {

// A configuration that cannot work: the message names the key and the problem.
class ConfigError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

enum class ConfigType { kString, kInt, kBool, kEnum, kDuration };

struct ConfigKey {
  std::string_view name;
  ConfigType type;
  // Empty means "no default": the key is required or optional as `required` says.
  std::string_view default_value;
  std::string_view description;
  // The values a kEnum key accepts.
  std::vector<std::string_view> allowed = {};
  bool required = false;
  // Secrets are never printed or logged.
  bool secret = false;
};

// The declaration of every key rill itself reads.
std::span<const ConfigKey> config_keys();

// The configuration reference (docs/configuration.md), rendered from config_keys().
std::string config_reference_markdown();

// What error reports and logs show in place of a secret value.
inline constexpr std::string_view kSecretMask = "*****";

// Whether the value of `key` is a secret, never printed or logged: a key
// declared secret, or one naming a password, secret, token, credentials, a
// private key (ssl.key.*, private.key), a JAAS or OAUTHBEARER login config, or
// basic-auth user info. Case, '_' and '-' do not matter, so the names of
// environment variables (SASL_PASSWORD) are judged by the same rule.
bool is_secret_key(std::string_view key);

namespace config {
inline constexpr std::string_view kApplicationId = "application.id";
inline constexpr std::string_view kBootstrapServers = "bootstrap.servers";
inline constexpr std::string_view kNumStreamThreads = "num.stream.threads";
inline constexpr std::string_view kCommitIntervalMs = "commit.interval.ms";
inline constexpr std::string_view kStateDir = "state.dir";
inline constexpr std::string_view kProcessingGuarantee = "processing.guarantee";
inline constexpr std::string_view kReplicationFactor = "replication.factor";
inline constexpr std::string_view kBufferedRecordsPerPartition = "buffered.records.per.partition";
inline constexpr std::string_view kDeserializationHandler = "deserialization.exception.handler";
inline constexpr std::string_view kProcessingHandler = "processing.exception.handler";
inline constexpr std::string_view kProductionHandler = "production.exception.handler";
inline constexpr std::string_view kDeadLetterTopic = "errors.dead.letter.queue.topic.name";
inline constexpr std::string_view kClientId = "client.id";
inline constexpr std::string_view kApplicationServer = "application.server";
inline constexpr std::string_view kQueryBindHost = "query.bind.host";
inline constexpr std::string_view kSessionTimeoutMs = "session.timeout.ms";
inline constexpr std::string_view kTaskTimeoutMs = "task.timeout.ms";
inline constexpr std::string_view kMaxTaskIdleMs = "max.task.idle.ms";
inline constexpr std::string_view kRepartitionPurgeIntervalMs = "repartition.purge.interval.ms";
inline constexpr std::string_view kTopicWaitMs = "source.topic.wait.ms";
inline constexpr std::string_view kNumStandbyReplicas = "num.standby.replicas";
inline constexpr std::string_view kCacheMaxBytes = "statestore.cache.max.bytes";
inline constexpr std::string_view kRocksDbBlockCacheBytes = "rocksdb.block.cache.bytes";
inline constexpr std::string_view kRocksDbMemtableBytes = "rocksdb.memtable.bytes";
inline constexpr std::string_view kSnapshotIntervalMs = "state.snapshot.interval.ms";
inline constexpr std::string_view kSnapshotLocation = "state.snapshot.location";
inline constexpr std::string_view kSnapshotsRetained = "state.snapshot.retained";
inline constexpr std::string_view kArchiveLocation = "archive.location";
inline constexpr std::string_view kArchiveTopics = "archive.topics";
inline constexpr std::string_view kS3Endpoint = "s3.endpoint";
inline constexpr std::string_view kS3Region = "s3.region";
inline constexpr std::string_view kS3AccessKey = "s3.access.key.id";
inline constexpr std::string_view kS3SecretKey = "s3.secret.access.key";
inline constexpr std::string_view kMetricsAddress = "metrics.address";
inline constexpr std::string_view kMetricsEnabled = "metrics.enabled";
inline constexpr std::string_view kMetricsRecordingLevel = "metrics.recording.level";
inline constexpr std::string_view kLogFormat = "log.format";
inline constexpr std::string_view kLogLevel = "log.level";
}  // namespace config

class StreamsConfig {
 public:
  StreamsConfig() = default;
  StreamsConfig(std::initializer_list<std::pair<std::string, std::string>> entries);

  StreamsConfig& set(std::string key, std::string value);
  bool contains(std::string_view key) const;

  // Typed reads of rill keys; the value set, or the declared default. Throw
  // ConfigError naming the key when the value does not parse.
  std::string get_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  std::chrono::milliseconds get_duration(std::string_view key) const;
  // A comma-separated value's entries, spaces trimmed, empty ones left out.
  std::vector<std::string> get_list(std::string_view key) const;

  // Checks every rill key that is set (type, allowed values) and that required
  // keys are present. Throws ConfigError.
  void validate() const;
  // Checks one value of a declared key (type, allowed values), as validate()
  // does, so a caller can tell which entry is wrong. Throws ConfigError.
  static void check_value(std::string_view key, std::string_view value);

  // librdkafka properties for one client ("consumer", "producer" or "admin"):
  // unprefixed unknown keys plus that client's prefixed keys, prefix removed.
  std::map<std::string, std::string> client_properties(std::string_view client) const;

  // Configs of the internal topics rill creates: the "topic." keys, prefix removed.
  std::map<std::string, std::string> topic_configs() const;

  // All entries, with secrets masked, for logs.
  std::string to_log_string() const;

  const std::map<std::string, std::string, std::less<>>& entries() const { return entries_; }

 private:
  std::optional<std::string> raw(std::string_view key) const;

  std::map<std::string, std::string, std::less<>> entries_;
};

}  // namespace rill
