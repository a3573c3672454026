#include "runtime/global_state_manager.h"

#include <unistd.h>

#include "log/log.h"

namespace rill::runtime {

GlobalStateManager::GlobalStateManager(const Topology& topology, std::string application_id,
                                       std::filesystem::path directory,
                                       state::RocksDbResources* resources, ErrorHandling& errors,
                                       internal::RecordCollector* dead_letters, Clock clock)
    : topology_(topology),
      application_id_(std::move(application_id)),
      directory_(std::move(directory)),
      resources_(resources),
      errors_(errors),
      dead_letters_(dead_letters),
      clock_(std::move(clock)) {}

GlobalStateManager::~GlobalStateManager() {
  try {
    close(false);
  } catch (...) {
    // A destructor must not throw; close() logged what failed.
  }
}

std::vector<std::string> GlobalStateManager::topics() const {
  std::vector<std::string> topics;
  for (const auto& global : topology_.global_stores())
    topics.push_back(global.topic.full_name(application_id_));
  return topics;
}

std::string GlobalStateManager::store_of(std::string_view topic) const {
  for (const auto& global : topology_.global_stores())
    if (global.topic.full_name(application_id_) == topic) return global.store;
  return {};
}

void GlobalStateManager::open() {
  if (empty() || open_) return;
  lock_fd_ = state::lock_state_directory(directory_);
  checkpoint_ = state::read_checkpoint(directory_);
  if (dead_letters_ != nullptr && errors_.has_dead_letter_topic())
    dead_letter_topic_ = dead_letters_->register_topic(errors_.dead_letter_topic());
  for (const auto& spec : topology_.global_stores()) {
    const StoreBuilder& builder = topology_.store(spec.store);
    const std::string topic = spec.topic.full_name(application_id_);
    bool trusted = false;
    for (const auto& [partition, offset] : checkpoint_)
      trusted = trusted || partition.first == topic;
    const auto store_directory = builder.spec().directory_in(directory_);
    std::error_code error;
    if (builder.spec().persistent && !trusted && std::filesystem::exists(store_directory)) {
      log::get().info("global store {} has no checkpoint; wiping it for a full restore",
                      spec.store);
      std::filesystem::remove_all(store_directory, error);
    }
    auto bytes = builder.build_bytes_store(store_directory, resources_);
    std::unique_ptr<state::KeyValueBytesStore> key_value(
        static_cast<state::KeyValueBytesStore*>(bytes.release()));
    Global global;
    global.spec = &spec;
    global.shared = std::make_unique<state::SharedKeyValueStore>(std::move(key_value));
    global.writer = builder.wrap(std::make_unique<state::GlobalStoreView>(*global.shared, true));
    global.source = topology_.node(spec.source).factory();
    global.processor = topology_.node(spec.processor).factory();
    global.source->add_child(global.processor.get());
    sources_[topic] = static_cast<internal::SourceNodeBase*>(global.source.get());
    globals_.push_back(std::move(global));
    // A store in memory starts empty: it restores its whole topic.
    if (!builder.spec().persistent)
      std::erase_if(checkpoint_, [&](const auto& entry) { return entry.first.first == topic; });
  }
  open_ = true;
  for (auto& global : globals_) {
    global.processor->init(*this);
    global.source->init(*this);
  }
}

std::optional<int64_t> GlobalStateManager::checkpointed(const std::string& topic,
                                                        int32_t partition) const {
  auto it = checkpoint_.find({topic, partition});
  if (it == checkpoint_.end()) return std::nullopt;
  return it->second;
}

void GlobalStateManager::process(const internal::RawRecord& record) {
  auto it = sources_.find(record.metadata.topic);
  if (it == sources_.end())
    throw std::logic_error("no global store reads topic '" + std::string(record.metadata.topic) +
                           "'");
  metadata_ = record.metadata;
  try {
    it->second->process_raw(record);
  } catch (const internal::DeserializationError& e) {
    errors_.handle(ErrorKind::kDeserialization, record, "DeserializationError", e.what(),
                   collector(), dead_letter_topic_);
  } catch (const FatalError&) {
    throw;
  } catch (const StateStoreError&) {
    throw;  // the store's trouble, not the record's
  } catch (const std::exception& e) {
    errors_.handle(ErrorKind::kProcessing, record, internal::demangle(typeid(e)), e.what(),
                   collector(), dead_letter_topic_);
  }
  metadata_.reset();
  applied_records_.fetch_add(1, std::memory_order_relaxed);
}

void GlobalStateManager::checkpoint() {
  if (!open_) return;
  for (auto& global : globals_) global.shared->flush();
  state::CheckpointOffsets offsets = checkpoint_;
  for (const auto& [partition, offset] : positions_) offsets[partition] = offset;
  state::write_checkpoint(directory_, offsets);
}

void GlobalStateManager::close(bool clean) {
  if (!open_) return;
  for (auto& global : globals_) {
    try {
      global.processor->close();
    } catch (const std::exception& e) {
      log::get().warn("global store {}: closing its processor: {}", global.spec->store, e.what());
    }
  }
  if (clean) {
    try {
      checkpoint();
    } catch (const std::exception& e) {
      log::get().warn("global stores: {}", e.what());
    }
  }
  open_ = false;
  for (auto& global : globals_) global.shared->close();
  sources_.clear();
  globals_.clear();
  if (lock_fd_ >= 0) {
    ::close(lock_fd_);
    lock_fd_ = -1;
  }
}

const GlobalStateManager::Global* GlobalStateManager::find(std::string_view store) const {
  for (const auto& global : globals_)
    if (global.spec->store == store) return &global;
  return nullptr;
}

std::unique_ptr<StateStore> GlobalStateManager::task_view(std::string_view name) const {
  const Global* global = find(name);
  if (global == nullptr) return nullptr;
  return topology_.store(name).wrap(
      std::make_unique<state::GlobalStoreView>(*global->shared, false));
}

Cancellable GlobalStateManager::schedule(std::chrono::milliseconds, PunctuationType,
                                         std::function<void(int64_t)>) {
  // As Kafka Streams' GlobalProcessorContextImpl: the global thread runs no
  // punctuations.
  throw std::logic_error("the processor of a global store cannot schedule punctuations");
}

StateStore* GlobalStateManager::state_store(const internal::ProcessorNode& node,
                                            std::string_view name) {
  for (auto& global : globals_)
    if (global.spec->store == name && global.spec->processor == node.name())
      return global.writer.get();
  return nullptr;
}

void GlobalStateManager::record_dropped(std::string_view reason) {
  if (metadata_)
    log::get().debug("global store: dropped the record at {}-{} offset {}: {}", metadata_->topic,
                     metadata_->partition, metadata_->offset, reason);
}

namespace {

// Where dead letters of the global stores go when there is no producer for
// them: nowhere, as the handler then never sends (its topic handle is -1).
class NoCollector final : public internal::RecordCollector {
 public:
  int register_topic(const std::string&) override { return -1; }
  int32_t partition_count(int) override { return 1; }
  void send(int, int32_t, NullableBytes, NullableBytes, int64_t, const Headers&) override {
    throw std::logic_error("the processor of a global store cannot send records");
  }
  void send_changelog(int, int32_t, NullableBytes, NullableBytes, int64_t,
                      std::atomic<int64_t>*) override {
    throw std::logic_error("global stores have no changelog");
  }
  std::atomic<int64_t>& acknowledged_offset(int, int32_t) override {
    throw std::logic_error("global stores have no changelog");
  }
};

}  // namespace

internal::RecordCollector& GlobalStateManager::collector() {
  static NoCollector none;
  return dead_letters_ != nullptr ? *dead_letters_ : none;
}

void GlobalStateManager::on_record_timestamp(int64_t timestamp) {
  if (timestamp > stream_time_) stream_time_ = timestamp;
}

}  // namespace rill::runtime
