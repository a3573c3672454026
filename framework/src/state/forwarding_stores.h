// Store layers that pass every call to the store below them. A layer that
// changelogs, times or otherwise watches a store derives from one of these and
// overrides only the calls it is about.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "rill/internal/bytes_store.h"

namespace rill::state {

// `Interface` is KeyValueBytesStore, or an interface derived from it that the
// layer implements (the record cache's).
template <class Interface>
class BasicForwardingKeyValueStore : public Interface {
 public:
  explicit BasicForwardingKeyValueStore(std::unique_ptr<KeyValueBytesStore> inner)
      : inner_(std::move(inner)) {}

  std::string_view name() const override { return inner_->name(); }
  bool persistent() const override { return inner_->persistent(); }
  bool is_open() const override { return inner_->is_open(); }
  void flush() override { inner_->flush(); }
  void close() override { inner_->close(); }

  std::optional<std::string> get(std::string_view key) const override { return inner_->get(key); }
  void put(std::string_view key, std::string_view value) override { inner_->put(key, value); }
  std::optional<std::string> put_if_absent(std::string_view key, std::string_view value) override {
    return inner_->put_if_absent(key, value);
  }
  void remove(std::string_view key) override { inner_->remove(key); }
  void write_all(std::span<const BytesWrite> writes) override { inner_->write_all(writes); }
  void log_only(std::span<const BytesWrite> writes) override { inner_->log_only(writes); }
  void store_only(std::span<const BytesWrite> writes) override { inner_->store_only(writes); }
  void remove_range(std::string_view from, std::string_view to_exclusive) override {
    inner_->remove_range(from, to_exclusive);
  }
  std::unique_ptr<KeyValueBytesIterator> range(std::string_view from,
                                               std::string_view to) const override {
    return inner_->range(from, to);
  }
  std::unique_ptr<KeyValueBytesIterator> prefix_scan(std::string_view prefix) const override {
    return inner_->prefix_scan(prefix);
  }
  std::unique_ptr<KeyValueBytesIterator> all() const override { return inner_->all(); }
  uint64_t approximate_num_entries() const override { return inner_->approximate_num_entries(); }

 protected:
  std::unique_ptr<KeyValueBytesStore> inner_;
};

using ForwardingKeyValueStore = BasicForwardingKeyValueStore<KeyValueBytesStore>;

// `Interface` is WindowBytesStore, or the record cache's interface derived from it.
template <class Interface>
class BasicForwardingWindowStore : public Interface {
 public:
  explicit BasicForwardingWindowStore(std::unique_ptr<WindowBytesStore> inner)
      : inner_(std::move(inner)) {}

  std::string_view name() const override { return inner_->name(); }
  bool persistent() const override { return inner_->persistent(); }
  bool is_open() const override { return inner_->is_open(); }
  void flush() override { inner_->flush(); }
  void close() override { inner_->close(); }
  int64_t window_size() const override { return inner_->window_size(); }
  int64_t retention_period() const override { return inner_->retention_period(); }
  int64_t observed_stream_time() const override { return inner_->observed_stream_time(); }
  int64_t segment_interval() const override { return inner_->segment_interval(); }

  bool put(std::string_view key, int64_t window_start, std::string_view value) override {
    return inner_->put(key, window_start, value);
  }
  void remove(std::string_view key, int64_t window_start) override {
    inner_->remove(key, window_start);
  }
  void put_all(std::span<WindowWrite> writes) override { inner_->put_all(writes); }
  std::optional<std::string> fetch(std::string_view key, int64_t window_start) const override {
    return inner_->fetch(key, window_start);
  }
  std::unique_ptr<WindowBytesIterator> fetch(std::string_view key, int64_t time_from,
                                             int64_t time_to) const override {
    return inner_->fetch(key, time_from, time_to);
  }
  std::unique_ptr<WindowBytesIterator> fetch_all(int64_t time_from,
                                                 int64_t time_to) const override {
    return inner_->fetch_all(time_from, time_to);
  }
  std::unique_ptr<WindowBytesIterator> all() const override { return inner_->all(); }

 protected:
  std::unique_ptr<WindowBytesStore> inner_;
};

using ForwardingWindowStore = BasicForwardingWindowStore<WindowBytesStore>;

class ForwardingSessionStore : public SessionBytesStore {
 public:
  explicit ForwardingSessionStore(std::unique_ptr<SessionBytesStore> inner)
      : inner_(std::move(inner)) {}

  std::string_view name() const override { return inner_->name(); }
  bool persistent() const override { return inner_->persistent(); }
  bool is_open() const override { return inner_->is_open(); }
  void flush() override { inner_->flush(); }
  void close() override { inner_->close(); }
  int64_t retention_period() const override { return inner_->retention_period(); }
  int64_t observed_stream_time() const override { return inner_->observed_stream_time(); }

  bool put(std::string_view key, int64_t start, int64_t end, std::string_view value) override {
    return inner_->put(key, start, end, value);
  }
  void remove(std::string_view key, int64_t start, int64_t end) override {
    inner_->remove(key, start, end);
  }
  std::optional<std::string> fetch_session(std::string_view key, int64_t start,
                                           int64_t end) const override {
    return inner_->fetch_session(key, start, end);
  }
  std::unique_ptr<SessionBytesIterator> find_sessions(std::string_view key,
                                                      int64_t earliest_session_end,
                                                      int64_t latest_session_start) const override {
    return inner_->find_sessions(key, earliest_session_end, latest_session_start);
  }
  std::unique_ptr<SessionBytesIterator> fetch(std::string_view key) const override {
    return inner_->fetch(key);
  }
  std::unique_ptr<SessionBytesIterator> all() const override { return inner_->all(); }

 protected:
  std::unique_ptr<SessionBytesStore> inner_;
};

}  // namespace rill::state
