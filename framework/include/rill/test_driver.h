// TopologyTestDriver runs a topology in-process, without a broker: pipe records
// into input topics, read what the topology wrote to output topics, and move the
// mocked wall clock to fire punctuations. Records written to a topic the
// topology itself reads (a repartition topic) are processed straight away.
//
//   rill::TopologyTestDriver driver(topology);
//   auto in = driver.create_input_topic("words", rill::serdes::string(), rill::serdes::string());
//   auto out = driver.create_output_topic("counts", rill::serdes::string(), rill::serdes::int64());
//   in.pipe_input("k", "hello");
//   REQUIRE(out.read_key_value() == rill::KeyValue<std::string, int64_t>{"hello", 1});
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rill/config.h"
#include "rill/record.h"
#include "rill/serde.h"
#include "rill/state.h"
#include "rill/topology.h"
#include "rill/value_and_timestamp.h"

namespace rill {

// A record as a topic holds it: bytes, timestamp, headers.
struct CapturedRecord {
  std::optional<std::string> key;
  std::optional<std::string> value;
  int64_t timestamp = 0;
  Headers headers;
  // The partition a sink's partitioner chose; -1 when left to the default
  // partitioner. Ignored for piped input.
  int32_t partition = -1;
};

class TopologyTestDriver {
 public:
  // `config` needs no bootstrap.servers; application.id defaults to
  // "test-driver". The wall clock starts at `wall_clock_start_ms`.
  explicit TopologyTestDriver(Topology topology, StreamsConfig config = {},
                              int64_t wall_clock_start_ms = 0);
  ~TopologyTestDriver();
  TopologyTestDriver(const TopologyTestDriver&) = delete;
  TopologyTestDriver& operator=(const TopologyTestDriver&) = delete;

  template <class K, class V>
  class InputTopic;
  template <class K, class V>
  class OutputTopic;

  template <class K, class V>
  InputTopic<K, V> create_input_topic(std::string topic, SerdePtr<K> key_serde,
                                      SerdePtr<V> value_serde) {
    return InputTopic<K, V>(*this, std::move(topic), std::move(key_serde), std::move(value_serde));
  }
  template <class K, class V>
  OutputTopic<K, V> create_output_topic(std::string topic, SerdePtr<K> key_serde,
                                        SerdePtr<V> value_serde) {
    return OutputTopic<K, V>(*this, std::move(topic), std::move(key_serde), std::move(value_serde));
  }

  // Moves the wall clock forward and runs the wall-clock punctuations now due.
  void advance_wall_clock_time(std::chrono::milliseconds advance);
  int64_t wall_clock_time() const;

  // Processes one record given as bytes, then everything it caused.
  void pipe_raw(const std::string& topic, const CapturedRecord& record);
  // Takes the oldest record written to `topic`, if any.
  std::optional<CapturedRecord> read_raw(const std::string& topic);
  std::size_t queue_size(const std::string& topic) const;
  // Topics written so far, in name order.
  std::vector<std::string> written_topics() const;

  // The store of that name (in any task), or nullptr. Typed access:
  // get_key_value_store<K, V>(name), get_window_store, get_session_store,
  // get_versioned_key_value_store.
  StateStore* get_state_store(const std::string& name) const;
  template <class K, class V>
  KeyValueStore<K, V>& get_key_value_store(const std::string& name) const {
    return typed_store<KeyValueStore<K, V>>(name);
  }
  template <class K, class V>
  WindowStore<K, V>& get_window_store(const std::string& name) const {
    return typed_store<WindowStore<K, V>>(name);
  }
  template <class K, class V>
  SessionStore<K, V>& get_session_store(const std::string& name) const {
    return typed_store<SessionStore<K, V>>(name);
  }
  // The stores of DSL aggregations and tables, which keep each value with the
  // timestamp of its latest record.
  template <class K, class V>
  VersionedKeyValueStore<K, V>& get_versioned_key_value_store(const std::string& name) const {
    return typed_store<VersionedKeyValueStore<K, V>>(name);
  }
  template <class K, class V>
  KeyValueStore<K, ValueAndTimestamp<V>>& get_timestamped_key_value_store(
      const std::string& name) const {
    return typed_store<KeyValueStore<K, ValueAndTimestamp<V>>>(name);
  }
  template <class K, class V>
  WindowStore<K, ValueAndTimestamp<V>>& get_timestamped_window_store(
      const std::string& name) const {
    return typed_store<WindowStore<K, ValueAndTimestamp<V>>>(name);
  }

  // Counts of records the error handlers skipped or dead-lettered.
  uint64_t skipped_records() const;
  uint64_t dead_lettered_records() const;
  // Records processors dropped on purpose: too late for their window, or with
  // a null key (Kafka Streams' dropped-records metric).
  uint64_t dropped_records() const;

 private:
  template <class Store>
  Store& typed_store(const std::string& name) const {
    auto* store = dynamic_cast<Store*>(get_state_store(name));
    if (store == nullptr)
      throw std::invalid_argument("no state store '" + name + "' of the requested type");
    return *store;
  }

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

template <class K, class V>
class TopologyTestDriver::InputTopic {
 public:
  InputTopic(TopologyTestDriver& driver, std::string topic, SerdePtr<K> key_serde,
             SerdePtr<V> value_serde)
      : driver_(&driver),
        topic_(std::move(topic)),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)) {}

  // Pipes a record; without a timestamp, the wall-clock time is used.
  void pipe_input(const K& key, const V& value, std::optional<int64_t> timestamp = std::nullopt,
                  Headers headers = {}) {
    CapturedRecord record;
    std::string bytes;
    if (key_serde_->serialize(key, bytes)) record.key = bytes;
    bytes.clear();
    if (value_serde_->serialize(value, bytes)) record.value = bytes;
    record.timestamp = timestamp ? *timestamp : driver_->wall_clock_time();
    record.headers = std::move(headers);
    driver_->pipe_raw(topic_, record);
  }
  void pipe_key_values(const std::vector<KeyValue<K, V>>& records,
                       std::optional<int64_t> timestamp = std::nullopt) {
    for (const auto& kv : records) pipe_input(kv.key, kv.value, timestamp);
  }

 private:
  TopologyTestDriver* driver_;
  std::string topic_;
  SerdePtr<K> key_serde_;
  SerdePtr<V> value_serde_;
};

template <class K, class V>
class TopologyTestDriver::OutputTopic {
 public:
  OutputTopic(TopologyTestDriver& driver, std::string topic, SerdePtr<K> key_serde,
              SerdePtr<V> value_serde)
      : driver_(&driver),
        topic_(std::move(topic)),
        key_serde_(std::move(key_serde)),
        value_serde_(std::move(value_serde)) {}

  bool is_empty() const { return driver_->queue_size(topic_) == 0; }
  std::size_t queue_size() const { return driver_->queue_size(topic_); }

  Record<K, V> read_record() {
    auto raw = driver_->read_raw(topic_);
    if (!raw) throw std::out_of_range("no record in output topic '" + topic_ + "'");
    return {key_serde_->deserialize(as_bytes(raw->key)),
            value_serde_->deserialize(as_bytes(raw->value)), raw->timestamp,
            std::move(raw->headers)};
  }
  KeyValue<K, V> read_key_value() {
    auto record = read_record();
    return {std::move(record.key), std::move(record.value)};
  }
  V read_value() { return read_record().value; }
  std::vector<KeyValue<K, V>> read_key_values_to_list() {
    std::vector<KeyValue<K, V>> records;
    while (!is_empty()) records.push_back(read_key_value());
    return records;
  }
  std::vector<Record<K, V>> read_records_to_list() {
    std::vector<Record<K, V>> records;
    while (!is_empty()) records.push_back(read_record());
    return records;
  }
  // The last value per key, as a compacted topic would keep it.
  std::map<K, V> read_key_values_to_map() {
    std::map<K, V> table;
    while (!is_empty()) {
      auto kv = read_key_value();
      table.insert_or_assign(std::move(kv.key), std::move(kv.value));
    }
    return table;
  }

 private:
  static NullableBytes as_bytes(const std::optional<std::string>& bytes) {
    return bytes ? NullableBytes(*bytes) : std::nullopt;
  }
  TopologyTestDriver* driver_;
  std::string topic_;
  SerdePtr<K> key_serde_;
  SerdePtr<V> value_serde_;
};

}  // namespace rill
