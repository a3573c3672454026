// Records as processors see them: a key, a value, an event timestamp and headers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rill {

// One Kafka record header. A header value may be null, which Kafka keeps apart
// from an empty value.
struct Header {
  std::string key;
  std::optional<std::string> value;

  bool operator==(const Header&) const = default;
};

// The headers of a record, in order; keys may repeat, as in Kafka.
class Headers {
 public:
  Headers() = default;
  Headers(std::initializer_list<Header> headers) : headers_(headers) {}

  void add(std::string key, std::optional<std::string> value) {
    headers_.push_back({std::move(key), std::move(value)});
  }
  // The last header with this key, or nullptr.
  const Header* last(std::string_view key) const {
    for (auto it = headers_.rbegin(); it != headers_.rend(); ++it)
      if (it->key == key) return &*it;
    return nullptr;
  }
  void remove(std::string_view key) {
    std::erase_if(headers_, [&](const Header& h) { return h.key == key; });
  }
  bool empty() const { return headers_.empty(); }
  std::size_t size() const { return headers_.size(); }
  auto begin() const { return headers_.begin(); }
  auto end() const { return headers_.end(); }

  bool operator==(const Headers&) const = default;

 private:
  std::vector<Header> headers_;
};

// A key-value pair, returned by `map` and `flat_map` functions.
template <class K, class V>
struct KeyValue {
  K key;
  V value;

  bool operator==(const KeyValue&) const = default;
};
template <class K, class V>
KeyValue(K, V) -> KeyValue<K, V>;

// What an aggregator may read of the record it folds in besides its key and
// value: its time and headers.
struct RecordContext {
  int64_t timestamp = 0;
  const Headers* headers = nullptr;
};

// A typed record flowing between processors. `timestamp` is event time in
// milliseconds since the epoch.
template <class K, class V>
struct Record {
  K key;
  V value;
  int64_t timestamp = 0;
  Headers headers;

  // Copies of this record with one part replaced, as Kafka Streams' Record#withX.
  template <class V2>
  Record<K, V2> with_value(V2 new_value) const {
    return {key, std::move(new_value), timestamp, headers};
  }
  template <class K2>
  Record<K2, V> with_key(K2 new_key) const {
    return {std::move(new_key), value, timestamp, headers};
  }
  Record with_timestamp(int64_t new_timestamp) const {
    return {key, value, new_timestamp, headers};
  }
};

// Where the record being processed was read from. Absent for records created by
// a punctuation.
struct RecordMetadata {
  std::string_view topic;
  int32_t partition = -1;
  int64_t offset = -1;
};

}  // namespace rill
