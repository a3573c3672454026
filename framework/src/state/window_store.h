// A window byte store over any key-value byte store (in memory or RocksDB),
// with time segments for retention.
//
// Store key: segment id (8 bytes) | key bytes | window start (8 bytes), all
// integers big-endian: within a segment, Kafka Streams' window key layout, so
// one key's windows are adjacent and ordered by start time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "rill/internal/bytes_store.h"

#include "state/segments.h"

namespace rill::state {

class SegmentedWindowStore final : public WindowBytesStore {
 public:
  // Throws std::invalid_argument unless window_size > 0, retention >= 0 and
  // segment_interval > 0.
  SegmentedWindowStore(std::string name, std::unique_ptr<KeyValueBytesStore> store,
                       int64_t window_size, int64_t retention, int64_t segment_interval);

  std::string_view name() const override { return name_; }
  bool persistent() const override { return store_->persistent(); }
  bool is_open() const override { return store_->is_open(); }
  void flush() override { store_->flush(); }
  void close() override { store_->close(); }

  int64_t window_size() const override { return window_size_; }
  int64_t retention_period() const override { return segments_.retention(); }
  int64_t observed_stream_time() const override { return segments_.observed_stream_time(); }
  int64_t segment_interval() const override { return segments_.interval(); }

  bool put(std::string_view key, int64_t window_start, std::string_view value) override;
  void remove(std::string_view key, int64_t window_start) override;
  void put_all(std::span<WindowWrite> writes) override;
  std::optional<std::string> fetch(std::string_view key, int64_t window_start) const override;
  std::unique_ptr<WindowBytesIterator> fetch(std::string_view key, int64_t time_from,
                                             int64_t time_to) const override;
  std::unique_ptr<WindowBytesIterator> fetch_all(int64_t time_from, int64_t time_to) const override;
  std::unique_ptr<WindowBytesIterator> all() const override;

  // The store the segments live in.
  KeyValueBytesStore& segments_store() { return *store_; }
  const KeyValueBytesStore& segments_store() const { return *store_; }

 private:
  void check_start(int64_t window_start) const;
  std::string_view store_key(std::string_view key, int64_t window_start) const;

  std::string name_;
  std::unique_ptr<KeyValueBytesStore> store_;
  int64_t window_size_;
  Segments segments_;
  // Reused for every store key built.
  mutable std::string key_buffer_;
  // Reused for the store keys of each put_all.
  std::string batch_keys_;
};

}  // namespace rill::state
