// A session byte store over any key-value byte store (in memory or RocksDB),
// with time segments for retention.
//
// Store key: segment id (8 bytes) | key bytes | session end (8 bytes) | session
// start (8 bytes), integers big-endian: within a segment, Kafka Streams'
// session key layout, so one key's sessions are adjacent and ordered by end
// time. Segments are by session end, which is what retention is measured by.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "rill/internal/bytes_store.h"

#include "state/segments.h"

namespace rill::state {

class SegmentedSessionStore final : public SessionBytesStore {
 public:
  // Throws std::invalid_argument unless retention >= 0 and segment_interval > 0.
  SegmentedSessionStore(std::string name, std::unique_ptr<KeyValueBytesStore> store,
                        int64_t retention, int64_t segment_interval);

  std::string_view name() const override { return name_; }
  bool persistent() const override { return store_->persistent(); }
  bool is_open() const override { return store_->is_open(); }
  void flush() override { store_->flush(); }
  void close() override { store_->close(); }

  int64_t retention_period() const override { return segments_.retention(); }
  int64_t observed_stream_time() const override { return segments_.observed_stream_time(); }

  bool put(std::string_view key, int64_t start, int64_t end, std::string_view value) override;
  void remove(std::string_view key, int64_t start, int64_t end) override;
  std::optional<std::string> fetch_session(std::string_view key, int64_t start,
                                           int64_t end) const override;
  std::unique_ptr<SessionBytesIterator> find_sessions(std::string_view key,
                                                      int64_t earliest_session_end,
                                                      int64_t latest_session_start) const override;
  std::unique_ptr<SessionBytesIterator> fetch(std::string_view key) const override;
  std::unique_ptr<SessionBytesIterator> all() const override;

  // The store the segments live in.
  KeyValueBytesStore& segments_store() { return *store_; }
  const KeyValueBytesStore& segments_store() const { return *store_; }

 private:
  void check_session(int64_t start, int64_t end) const;
  std::string_view store_key(std::string_view key, int64_t start, int64_t end) const;

  std::string name_;
  std::unique_ptr<KeyValueBytesStore> store_;
  Segments segments_;
  // Reused for every store key built.
  mutable std::string key_buffer_;
};

}  // namespace rill::state
