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
//
// A record read from Kafka gets its headers when a processor, a sink or an
// error handler first looks at them: the Kafka client allocates to parse them,
// even to find that there are none, which would cost every record an
// aggregation or a filter consumes. Only the record a source hands on reads
// them later; a copy reads them first, so copies stand on their own. Like its
// record, one Headers is not to be read from two threads at once.
class Headers {
 public:
  // Reads headers into `into`, from where `Headers::read_later` was given.
  using Reader = void (*)(const void* from, std::vector<Header>& into);

  Headers() = default;
  Headers(std::initializer_list<Header> headers) : headers_(headers) {}
  Headers(const Headers& other) : headers_(other.read()) {}
  Headers(Headers&& other) noexcept
      : headers_(std::move(other.headers_)),
        reader_(std::exchange(other.reader_, nullptr)),
        from_(std::exchange(other.from_, nullptr)) {}
  Headers& operator=(const Headers& other) {
    if (this != &other) {
      headers_ = other.read();
      reader_ = nullptr;
      from_ = nullptr;
    }
    return *this;
  }
  Headers& operator=(Headers&& other) noexcept {
    if (this != &other) {
      headers_ = std::move(other.headers_);
      reader_ = std::exchange(other.reader_, nullptr);
      from_ = std::exchange(other.from_, nullptr);
    }
    return *this;
  }
  ~Headers() = default;

  // Headers that `reader` reads from `from` when first looked at; `from` must
  // outlive that. For the runtime's sources.
  static Headers read_later(Reader reader, const void* from) {
    Headers headers;
    headers.reader_ = reader;
    headers.from_ = from;
    return headers;
  }

  void add(std::string key, std::optional<std::string> value) {
    read();
    headers_.push_back({std::move(key), std::move(value)});
  }
  // The last header with this key, or nullptr.
  const Header* last(std::string_view key) const {
    const std::vector<Header>& headers = read();
    for (auto it = headers.rbegin(); it != headers.rend(); ++it)
      if (it->key == key) return &*it;
    return nullptr;
  }
  void remove(std::string_view key) {
    read();
    std::erase_if(headers_, [&](const Header& h) { return h.key == key; });
  }
  bool empty() const { return read().empty(); }
  std::size_t size() const { return read().size(); }
  auto begin() const { return read().begin(); }
  auto end() const { return read().end(); }

  bool operator==(const Headers& other) const { return read() == other.read(); }

 private:
  const std::vector<Header>& read() const {
    if (reader_ != nullptr) [[unlikely]]
      std::exchange(reader_, nullptr)(from_, headers_);
    return headers_;
  }

  mutable std::vector<Header> headers_;
  mutable Reader reader_ = nullptr;
  const void* from_ = nullptr;
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
