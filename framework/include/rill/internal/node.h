// Internal: the per-task instances of topology nodes and the seams between them
// and the task that runs them. Templates live here because user types pass
// through them; nothing here is part of the stable API.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeindex>
#include <vector>

#include "rill/processor.h"
#include "rill/record.h"
#include "rill/serde.h"

namespace rill::internal {

// A topic a node reads or writes. Internal topics (repartition topics) are
// named "<application.id>-<name>" when the application runs.
struct TopicRef {
  TopicRef() = default;
  TopicRef(std::string topic, bool is_internal = false)  // NOLINT: implicit from a name
      : name(std::move(topic)), internal(is_internal) {}
  TopicRef(const char* topic) : name(topic) {}  // NOLINT: implicit from a name

  std::string name;
  bool internal = false;

  std::string full_name(std::string_view application_id) const {
    return internal ? std::string(application_id) + "-" + name : name;
  }
  bool operator==(const TopicRef&) const = default;
};

// A record as it comes from Kafka, before deserialization.
struct RawRecord {
  NullableBytes key;
  NullableBytes value;
  int64_t timestamp = 0;
  const Headers* headers = nullptr;
  RecordMetadata metadata;
};

// Thrown by a source node when a key or value cannot be deserialized; the task
// hands it to the deserialization exception handler.
class DeserializationError : public std::runtime_error {
 public:
  DeserializationError(std::string node, bool in_key, const std::string& cause)
      : std::runtime_error((in_key ? "cannot deserialize key in source '"
                                   : "cannot deserialize "
                                     "value in source '") +
                           node + "': " + cause) {}
};

// Where sink nodes send serialized records: the producer at run time, a capture
// buffer in the test driver.
class RecordCollector {
 public:
  virtual ~RecordCollector() = default;
  // Resolves a topic once, at init, so that send() does no lookup by name.
  virtual int register_topic(const std::string& topic) = 0;
  // Number of partitions of a registered topic, for custom partitioners.
  virtual int32_t partition_count(int topic) = 0;
  // `partition` < 0 lets the default partitioner (murmur2 of the key bytes, as
  // Kafka's Java client) choose.
  virtual void send(int topic, int32_t partition, NullableBytes key, NullableBytes value,
                    int64_t timestamp, const Headers& headers) = 0;
  // Like send(), for a store's changelog: `delivered_offset` (from
  // acknowledged_offset) is raised to the offset of each record the broker
  // acknowledges, which checkpoints record.
  virtual void send_changelog(int topic, int32_t partition, NullableBytes key, NullableBytes value,
                              int64_t timestamp, std::atomic<int64_t>* delivered_offset) = 0;
  // The counter of a changelog partition's acknowledged offset (-1: none
  // yet). It outlives the task: a record may be acknowledged after the task
  // that wrote it closed.
  virtual std::atomic<int64_t>& acknowledged_offset(int topic, int32_t partition) = 0;
};

class ProcessorNode;

// The task as its nodes see it. Implemented by the runtime's task and by the
// test driver's.
class TaskContext {
 public:
  virtual ~TaskContext() = default;
  virtual std::string_view application_id() const = 0;
  virtual TaskId task_id() const = 0;
  virtual std::optional<RecordMetadata> record_metadata() const = 0;
  virtual int64_t stream_time() const = 0;
  virtual int64_t system_time() const = 0;
  virtual Cancellable schedule(std::chrono::milliseconds interval, PunctuationType type,
                               std::function<void(int64_t)> punctuate) = 0;
  virtual void request_commit() = 0;
  virtual StateStore* state_store(const ProcessorNode& node, std::string_view name) = 0;
  // Counts a record a processor dropped on purpose (see ProcessingContext).
  virtual void record_dropped(std::string_view reason) = 0;
  virtual RecordCollector& collector() = 0;
  // Sets the timestamp of the record a source node is about to forward, so the
  // task can advance stream time before the record is processed.
  virtual void on_record_timestamp(int64_t timestamp) = 0;
};

// One node of a topology, instantiated once per task.
class ProcessorNode {
 public:
  explicit ProcessorNode(std::string name) : name_(std::move(name)) {}
  virtual ~ProcessorNode() = default;
  ProcessorNode(const ProcessorNode&) = delete;
  ProcessorNode& operator=(const ProcessorNode&) = delete;

  const std::string& name() const { return name_; }
  const std::vector<ProcessorNode*>& children() const { return children_; }
  void add_child(ProcessorNode* child) { children_.push_back(child); }

  virtual void init(TaskContext& task) = 0;
  // `record` points to the Record<K, V> of this node's input types.
  virtual void process(const void* record) = 0;
  virtual void close() {}

  // Where the node counts the records it receives: a slot of the task's
  // metrics, written only by the thread running the task.
  void count_records_in(std::atomic<uint64_t>& counter) { records_ = &counter; }

 protected:
  void count_record() {
    records_->store(records_->load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

 private:
  std::string name_;
  std::vector<ProcessorNode*> children_;
  std::atomic<uint64_t> own_records_{0};
  std::atomic<uint64_t>* records_ = &own_records_;
};

// The ProcessorContext handed to one node: forwarding goes to that node's
// children, everything else to the task.
template <class K, class V>
class NodeContext final : public ProcessorContext<K, V> {
 public:
  NodeContext(ProcessorNode& node, TaskContext& task) : node_(node), task_(task) {}

  std::string_view application_id() const override { return task_.application_id(); }
  TaskId task_id() const override { return task_.task_id(); }
  std::optional<RecordMetadata> record_metadata() const override { return task_.record_metadata(); }
  int64_t current_stream_time() const override { return task_.stream_time(); }
  int64_t current_system_time() const override { return task_.system_time(); }
  Cancellable schedule(std::chrono::milliseconds interval, PunctuationType type,
                       std::function<void(int64_t)> punctuate) override {
    return task_.schedule(interval, type, std::move(punctuate));
  }
  void commit() override { task_.request_commit(); }
  StateStore* get_state_store(std::string_view name) override {
    return task_.state_store(node_, name);
  }
  void record_dropped(std::string_view reason) override { task_.record_dropped(reason); }

  void forward(const Record<K, V>& record) override {
    for (ProcessorNode* child : node_.children()) child->process(&record);
  }
  void forward(const Record<K, V>& record, std::string_view child_name) override {
    for (ProcessorNode* child : node_.children()) {
      if (child->name() == child_name) {
        child->process(&record);
        return;
      }
    }
    throw std::logic_error("processor '" + node_.name() + "' has no child named '" +
                           std::string(child_name) + "'");
  }

 private:
  ProcessorNode& node_;
  TaskContext& task_;
};

// Runs a user's (or a DSL operator's) Processor as a node.
template <class P>
class UserProcessorNode final : public ProcessorNode {
 public:
  using KIn = typename P::KeyIn;
  using VIn = typename P::ValueIn;
  using KOut = typename P::KeyOut;
  using VOut = typename P::ValueOut;

  UserProcessorNode(std::string name, std::unique_ptr<P> processor)
      : ProcessorNode(std::move(name)), processor_(std::move(processor)) {}

  void init(TaskContext& task) override {
    context_.emplace(*this, task);
    processor_->init(*context_);
  }
  void process(const void* record) override {
    count_record();
    processor_->process(*static_cast<const Record<KIn, VIn>*>(record));
  }
  void close() override { processor_->close(); }

 private:
  std::unique_ptr<P> processor_;
  std::optional<NodeContext<KOut, VOut>> context_;
};

// The erased face of a source node: the task hands it raw bytes.
class SourceNodeBase : public ProcessorNode {
 public:
  using ProcessorNode::ProcessorNode;
  virtual void process_raw(const RawRecord& raw) = 0;
};

template <class K, class V>
using TimestampExtractor = std::function<int64_t(const Record<K, V>& record)>;

template <class K, class V>
class SourceNode final : public SourceNodeBase {
 public:
  SourceNode(std::string name, SerdePtr<K> key_serde, SerdePtr<V> value_serde,
             TimestampExtractor<K, V> extractor)
      : SourceNodeBase(std::move(name)),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)),
        extractor_(std::move(extractor)) {}

  void init(TaskContext& task) override { task_ = &task; }

  void process_raw(const RawRecord& raw) override {
    count_record();
    Record<K, V> record;
    try {
      record.key = key_serde_->deserialize(raw.key);
    } catch (const std::exception& e) {
      throw DeserializationError(name(), true, e.what());
    }
    try {
      record.value = value_serde_->deserialize(raw.value);
    } catch (const std::exception& e) {
      throw DeserializationError(name(), false, e.what());
    }
    record.timestamp = raw.timestamp;
    if (raw.headers != nullptr)
      record.headers = Headers::read_later(
          [](const void* from, std::vector<Header>& into) {
            const auto& headers = *static_cast<const Headers*>(from);
            into.assign(headers.begin(), headers.end());
          },
          raw.headers);
    if (extractor_) record.timestamp = extractor_(record);
    task_->on_record_timestamp(record.timestamp);
    process(&record);
  }

  void process(const void* record) override {
    for (ProcessorNode* child : children()) child->process(record);
  }

 private:
  SerdePtr<K> key_serde_;
  SerdePtr<V> value_serde_;
  TimestampExtractor<K, V> extractor_;
  TaskContext* task_ = nullptr;
};

// Chooses the partition of an output record; returning a negative number
// leaves the choice to the default partitioner.
template <class K, class V>
using Partitioner = std::function<int32_t(const K& key, const V& value, int32_t partitions)>;

template <class K, class V>
class SinkNode final : public ProcessorNode {
 public:
  SinkNode(std::string name, TopicRef topic, SerdePtr<K> key_serde, SerdePtr<V> value_serde,
           Partitioner<K, V> partitioner)
      : ProcessorNode(std::move(name)),
        topic_(std::move(topic)),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)),
        partitioner_(std::move(partitioner)) {}

  void init(TaskContext& task) override {
    collector_ = &task.collector();
    topic_handle_ = collector_->register_topic(topic_.full_name(task.application_id()));
  }

  void process(const void* erased) override {
    count_record();
    const auto& record = *static_cast<const Record<K, V>*>(erased);
    key_buffer_.clear();
    value_buffer_.clear();
    NullableBytes key, value;
    if (key_serde_->serialize(record.key, key_buffer_)) key = key_buffer_;
    if (value_serde_->serialize(record.value, value_buffer_)) value = value_buffer_;
    int32_t partition = -1;
    if (partitioner_)
      partition =
          partitioner_(record.key, record.value, collector_->partition_count(topic_handle_));
    collector_->send(topic_handle_, partition, key, value, record.timestamp, record.headers);
  }

 private:
  TopicRef topic_;
  SerdePtr<K> key_serde_;
  SerdePtr<V> value_serde_;
  Partitioner<K, V> partitioner_;
  RecordCollector* collector_ = nullptr;
  int topic_handle_ = -1;
  // Reused for every record, so serializing allocates only when a record is
  // larger than any before it.
  std::string key_buffer_;
  std::string value_buffer_;
};

// Readable C++ type names for validation messages and descriptions.
std::string demangle(const std::type_info& type);

struct TypeInfo {
  std::type_index index = typeid(void);
  std::string name;
  bool operator==(const TypeInfo& other) const { return index == other.index; }
};
template <class T>
TypeInfo type_info_of() {
  return {typeid(T), demangle(typeid(T))};
}

}  // namespace rill::internal
