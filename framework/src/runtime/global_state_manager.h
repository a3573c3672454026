// The global stores of an instance (Kafka Streams' GlobalStateManager and
// GlobalStateUpdateTask in one): it opens them under
// <state.dir>/<application.id>/global/ (holding that directory's lock), runs
// each store's source and update processor over the records of its topic,
// keeps the checkpoint of how far each topic partition was applied, and hands
// each task a read-only view of a store. It knows nothing of librdkafka: the
// global thread feeds it at run time, the test driver in tests.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rill/topology.h"

#include "runtime/error_handling.h"
#include "state/global_stores.h"
#include "state/state_directory.h"

namespace rill::runtime {
class RocksDbResources;
}

namespace rill::runtime {

class GlobalStateManager final : public internal::TaskContext {
 public:
  using Clock = std::function<int64_t()>;

  // `dead_letters`, when not nullptr, takes records the error handlers send
  // to the dead-letter topic.
  GlobalStateManager(const Topology& topology, std::string application_id,
                     std::filesystem::path directory, state::RocksDbResources* resources,
                     ErrorHandling& errors, internal::RecordCollector* dead_letters, Clock clock);
  ~GlobalStateManager() override;
  GlobalStateManager(const GlobalStateManager&) = delete;
  GlobalStateManager& operator=(const GlobalStateManager&) = delete;

  bool empty() const { return topology_.global_stores().empty(); }
  // The topics of the global stores (their full names).
  std::vector<std::string> topics() const;
  // Whether a global store reads `topic` (a full name); after open().
  bool reads(std::string_view topic) const { return sources_.contains(topic); }
  // The global store `topic` (a full name) feeds.
  std::string store_of(std::string_view topic) const;

  // Locks the directory (throws StateStoreError when another instance holds
  // it), reads the checkpoint, wipes persistent stores it does not cover and
  // opens the stores and their processors.
  void open();
  // Where applying a partition starts: the checkpointed offset of a
  // persistent store, std::nullopt for the beginning of the topic.
  std::optional<int64_t> checkpointed(const std::string& topic, int32_t partition) const;

  // Applies one record of a global topic (its metadata names the topic);
  // throws FatalError when a handler decides to fail. The caller records how
  // far each partition is applied in position().
  void process(const internal::RawRecord& record);
  // The next offset to apply of a partition of a global topic, which the
  // checkpoint records: a reference that stays valid until close(), so that
  // the global thread updates it without a lookup per record.
  int64_t& position(const std::string& topic, int32_t partition) {
    return positions_[{topic, partition}];
  }

  // Flushes the stores and writes the checkpoint of the positions.
  void checkpoint();
  // Closes processors and stores and releases the lock; `clean` writes the
  // checkpoint first.
  void close(bool clean);

  // A new read-only typed view of the global store `name` for one task (its
  // own serialization buffers over the shared bytes store), or nullptr when
  // there is no such global store.
  std::unique_ptr<StateStore> task_view(std::string_view name) const;
  // Records applied since open, from any thread.
  uint64_t applied_records() const { return applied_records_.load(std::memory_order_relaxed); }

  // internal::TaskContext, for the update processors.
  std::string_view application_id() const override { return application_id_; }
  TaskId task_id() const override { return {-1, -1}; }
  std::optional<RecordMetadata> record_metadata() const override { return metadata_; }
  int64_t stream_time() const override { return stream_time_; }
  int64_t system_time() const override { return clock_(); }
  Cancellable schedule(std::chrono::milliseconds interval, PunctuationType type,
                       std::function<void(int64_t)> punctuate) override;
  void request_commit() override {}
  StateStore* state_store(const internal::ProcessorNode& node, std::string_view name) override;
  void record_dropped(std::string_view reason) override;
  internal::RecordCollector& collector() override;
  void on_record_timestamp(int64_t timestamp) override;

 private:
  struct Global {
    const Topology::GlobalStore* spec = nullptr;
    std::unique_ptr<state::SharedKeyValueStore> shared;
    // The update processor's store: a writable view.
    std::unique_ptr<StateStore> writer;
    std::unique_ptr<internal::ProcessorNode> source;
    std::unique_ptr<internal::ProcessorNode> processor;
  };
  const Global* find(std::string_view store) const;

  const Topology& topology_;
  std::string application_id_;
  std::filesystem::path directory_;
  state::RocksDbResources* resources_;
  ErrorHandling& errors_;
  internal::RecordCollector* dead_letters_;
  int dead_letter_topic_ = -1;
  Clock clock_;
  int lock_fd_ = -1;
  bool open_ = false;
  std::vector<Global> globals_;
  // By full topic name.
  std::map<std::string, internal::SourceNodeBase*, std::less<>> sources_;
  state::CheckpointOffsets checkpoint_;
  state::CheckpointOffsets positions_;
  std::optional<RecordMetadata> metadata_;
  int64_t stream_time_ = -1;
  std::atomic<uint64_t> applied_records_{0};
};

}  // namespace rill::runtime
