// Byte layouts of store keys, shared by the store implementations and by the
// changelogging of window and session stores.
//
// Window and session keys are Kafka Streams' (WindowKeySchema without the
// sequence number, and SessionKeySchema):
//   window key:  key bytes | window start (8 bytes, big-endian)
//   session key: key bytes | session end (8 bytes, big-endian) | session start (8 bytes)
// Timestamps are never negative, so big-endian bytes sort as the numbers do.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace rill::state {

inline constexpr std::size_t kTimestampSize = 8;

// Unsigned byte order, as memcmp, RocksDB's BytewiseComparator and Kafka's Bytes.
inline int compare_bytes(std::string_view a, std::string_view b) {
  const std::size_t common = std::min(a.size(), b.size());
  if (common != 0) {
    const int order = std::memcmp(a.data(), b.data(), common);
    if (order != 0) return order;
  }
  return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

// The ordering of in-memory stores; transparent so lookups take string_views.
struct BytesLess {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return compare_bytes(a, b) < 0; }
};

// Hashes std::string keys and views alike, so that a lookup by view copies
// nothing.
struct BytesHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view bytes) const {
    return std::hash<std::string_view>{}(bytes);
  }
};

inline void append_be64(std::string& out, int64_t value) {
  const auto bits = static_cast<uint64_t>(value);
  char bytes[kTimestampSize];
  for (std::size_t i = 0; i < kTimestampSize; ++i)
    bytes[i] = static_cast<char>((bits >> (8 * (kTimestampSize - 1 - i))) & 0xff);
  out.append(bytes, kTimestampSize);
}

// Reads 8 big-endian bytes at `bytes[offset]`; the caller checked the size.
inline int64_t read_be64(std::string_view bytes, std::size_t offset) {
  uint64_t bits = 0;
  for (std::size_t i = 0; i < kTimestampSize; ++i)
    bits = (bits << 8) | static_cast<unsigned char>(bytes[offset + i]);
  return static_cast<int64_t>(bits);
}

inline std::string be64(int64_t value) {
  std::string out;
  append_be64(out, value);
  return out;
}

// The first string after every string that starts with `prefix`, or nullopt
// when there is none (an empty prefix, or one of only 0xff bytes).
inline std::optional<std::string> prefix_successor(std::string_view prefix) {
  std::string next(prefix);
  while (!next.empty()) {
    auto last = static_cast<unsigned char>(next.back());
    if (last != 0xff) {
      next.back() = static_cast<char>(last + 1);
      return next;
    }
    next.pop_back();
  }
  return std::nullopt;
}

// The first string after `key` itself: the exclusive bound of an inclusive range.
inline std::string key_successor(std::string_view key) {
  std::string next(key);
  next.push_back('\0');
  return next;
}

inline void append_window_key(std::string& out, std::string_view key, int64_t window_start) {
  out.append(key);
  append_be64(out, window_start);
}

inline void append_session_key(std::string& out, std::string_view key, int64_t start, int64_t end) {
  out.append(key);
  append_be64(out, end);
  append_be64(out, start);
}

struct WindowKey {
  std::string_view key;
  int64_t window_start = 0;
};
// Requires bytes.size() >= 8.
inline WindowKey parse_window_key(std::string_view bytes) {
  const std::size_t key_size = bytes.size() - kTimestampSize;
  return {bytes.substr(0, key_size), read_be64(bytes, key_size)};
}

struct SessionKey {
  std::string_view key;
  int64_t start = 0;
  int64_t end = 0;
};
// Requires bytes.size() >= 16.
inline SessionKey parse_session_key(std::string_view bytes) {
  const std::size_t key_size = bytes.size() - 2 * kTimestampSize;
  return {bytes.substr(0, key_size), read_be64(bytes, key_size + kTimestampSize),
          read_be64(bytes, key_size)};
}

}  // namespace rill::state
