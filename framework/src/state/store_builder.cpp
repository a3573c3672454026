// Store descriptions: validation, changelog topic settings, and opening the
// byte store a description asks for.
#include <algorithm>
#include <stdexcept>
#include <utility>

#include "rill/state.h"

#include "state/in_memory_key_value_store.h"
#include "state/rocksdb_key_value_store.h"
#include "state/session_store.h"
#include "state/window_store.h"

namespace rill {
namespace {

// Kafka Streams' windowstore.changelog.additional.retention.ms: changelog
// records outlive the store's retention by a day, so clock drift between
// brokers and instances cannot delete data the store still needs.
constexpr int64_t kChangelogAdditionalRetentionMs = 24 * 60 * 60 * 1000;
// Kafka Streams' lower bound of a segment interval.
constexpr int64_t kMinSegmentIntervalMs = 60 * 1000;
// Kafka's limit on topic names (249) less "-changelog" and room for an
// application id.
constexpr std::size_t kMaxStoreNameLength = 200;

bool legal_topic_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

void validate(const StoreSpec& spec) {
  if (spec.name.empty()) throw std::invalid_argument("state store name must not be empty");
  if (spec.name.size() > kMaxStoreNameLength ||
      !std::all_of(spec.name.begin(), spec.name.end(), legal_topic_char))
    throw std::invalid_argument("state store name '" + spec.name +
                                "' is not usable in a changelog topic name: use at most " +
                                std::to_string(kMaxStoreNameLength) +
                                " of the characters a-z A-Z 0-9 . _ -");
  switch (spec.kind) {
    case StoreKind::kKeyValue:
      if (spec.versioned && spec.retention.count() < 0)
        throw std::invalid_argument("versioned store '" + spec.name +
                                    "': history retention must not be negative, got " +
                                    std::to_string(spec.retention.count()) + " ms");
      break;
    case StoreKind::kWindow:
      if (spec.window_size.count() <= 0)
        throw std::invalid_argument("window store '" + spec.name +
                                    "': window size must be positive, got " +
                                    std::to_string(spec.window_size.count()) + " ms");
      if (spec.retention < spec.window_size)
        throw std::invalid_argument("window store '" + spec.name + "': retention (" +
                                    std::to_string(spec.retention.count()) +
                                    " ms) must be at least the window size (" +
                                    std::to_string(spec.window_size.count()) + " ms)");
      break;
    case StoreKind::kSession:
      if (spec.retention.count() <= 0)
        throw std::invalid_argument("session store '" + spec.name +
                                    "': retention must be positive, got " +
                                    std::to_string(spec.retention.count()) + " ms");
      break;
  }
}

}  // namespace

std::string_view to_string(StoreKind kind) {
  switch (kind) {
    case StoreKind::kKeyValue:
      return "key-value";
    case StoreKind::kWindow:
      return "window";
    case StoreKind::kSession:
      return "session";
  }
  return "unknown";
}

std::string StoreSpec::changelog_topic(std::string_view application_id) const {
  return std::string(application_id) + "-" + name + "-changelog";
}

std::map<std::string, std::string> StoreSpec::changelog_topic_config() const {
  std::map<std::string, std::string> config;
  if (kind == StoreKind::kKeyValue) {
    config["cleanup.policy"] = "compact";
  } else {
    config["cleanup.policy"] = "compact,delete";
    config["retention.ms"] = std::to_string(retention.count() + kChangelogAdditionalRetentionMs);
  }
  for (const auto& [key, value] : log_config) config[key] = value;
  return config;
}

std::filesystem::path StoreSpec::directory_in(const std::filesystem::path& task_directory) const {
  return task_directory / "rocksdb" / name;
}

int64_t StoreSpec::segment_interval_ms() const {
  return std::max<int64_t>(retention.count() / 2, kMinSegmentIntervalMs);
}

namespace internal {

void throw_store_kind_mismatch(std::string_view store, StoreKind expected) {
  throw std::logic_error("state store '" + std::string(store) + "': expected a " +
                         std::string(to_string(expected)) + " byte store");
}

}  // namespace internal

StoreBuilder::StoreBuilder(StoreSpec spec, Wrapper wrapper,
                           std::shared_ptr<const internal::StoreCodec> codec)
    : spec_(std::move(spec)), wrapper_(std::move(wrapper)), codec_(std::move(codec)) {
  validate(spec_);
}

StoreBuilder& StoreBuilder::with_query_json(
    std::function<std::string(std::string_view json)> present) {
  if (codec_)
    codec_ =
        std::make_shared<internal::PresentingStoreCodec>(std::move(codec_), std::move(present));
  return *this;
}

StoreBuilder& StoreBuilder::in_memory() {
  spec_.persistent = false;
  return *this;
}

StoreBuilder& StoreBuilder::with_logging_enabled(std::map<std::string, std::string> topic_config) {
  spec_.logging_enabled = true;
  spec_.log_config = std::move(topic_config);
  return *this;
}

StoreBuilder& StoreBuilder::with_logging_disabled() {
  spec_.logging_enabled = false;
  spec_.log_config.clear();
  return *this;
}

StoreBuilder& StoreBuilder::with_retention(std::chrono::milliseconds retention) {
  if (spec_.kind == StoreKind::kKeyValue)
    throw std::invalid_argument("key-value store '" + spec_.name +
                                "' has no retention; only window and session stores do");
  StoreSpec changed = spec_;
  changed.retention = retention;
  validate(changed);
  spec_ = std::move(changed);
  return *this;
}

StoreBuilder& StoreBuilder::with_rocksdb_options(const RocksDbOptions& options) {
  spec_.rocksdb = options;
  return *this;
}

std::unique_ptr<state::BytesStore> StoreBuilder::build_bytes_store(
    const std::filesystem::path& directory, state::RocksDbResources* resources,
    bool compactions_paused) const {
  auto key_value =
      [&](bool paused,
          std::size_t timestamp_suffix_bytes) -> std::unique_ptr<state::KeyValueBytesStore> {
    if (!spec_.persistent) return std::make_unique<state::InMemoryKeyValueStore>(spec_.name);
    return std::make_unique<state::RocksDbKeyValueStore>(spec_.name, directory, spec_.rocksdb,
                                                         resources, paused, timestamp_suffix_bytes);
  };
  switch (spec_.kind) {
    case StoreKind::kKeyValue:
      return key_value(compactions_paused, 0);
    case StoreKind::kWindow:
      return std::make_unique<state::SegmentedWindowStore>(
          spec_.name, key_value(false, state::kTimestampSize), spec_.window_size.count(),
          spec_.retention.count(), spec_.segment_interval_ms());
    case StoreKind::kSession:
      return std::make_unique<state::SegmentedSessionStore>(
          spec_.name, key_value(false, 0), spec_.retention.count(), spec_.segment_interval_ms());
  }
  throw std::logic_error("state store '" + spec_.name + "': unknown store kind");
}

std::unique_ptr<StateStore> StoreBuilder::wrap(std::unique_ptr<state::BytesStore> bytes) const {
  return wrapper_(std::move(bytes));
}

std::unique_ptr<StateStore> StoreBuilder::build(const std::filesystem::path& directory,
                                                state::RocksDbResources* resources) const {
  return wrap(build_bytes_store(directory, resources));
}

}  // namespace rill
