#include "state/logging_stores.h"

#include <stdexcept>

#include "state/key_layout.h"

namespace rill::state {
namespace {

// The 4-byte sequence number Kafka Streams appends to window changelog keys; 0
// when a store keeps one value per window, as rill's do.
constexpr std::string_view kWindowSequence("\0\0\0\0", 4);

class LoggingKeyValueStore final : public KeyValueBytesStore {
 public:
  LoggingKeyValueStore(std::unique_ptr<KeyValueBytesStore> inner, ChangelogWriter& writer)
      : inner_(std::move(inner)), writer_(writer) {}

  std::string_view name() const override { return inner_->name(); }
  bool persistent() const override { return inner_->persistent(); }
  bool is_open() const override { return inner_->is_open(); }
  void flush() override { inner_->flush(); }
  void close() override { inner_->close(); }

  std::optional<std::string> get(std::string_view key) const override { return inner_->get(key); }
  void put(std::string_view key, std::string_view value) override {
    inner_->put(key, value);
    writer_.write(key, value);
  }
  std::optional<std::string> put_if_absent(std::string_view key, std::string_view value) override {
    auto existing = inner_->put_if_absent(key, value);
    if (!existing) writer_.write(key, value);
    return existing;
  }
  void remove(std::string_view key) override {
    inner_->remove(key);
    writer_.write(key, std::nullopt);
  }
  void write_all(std::span<const BytesWrite> writes) override {
    inner_->write_all(writes);
    for (const BytesWrite& write : writes) writer_.write(write.key, write.value);
  }
  void remove_range(std::string_view from, std::string_view to_exclusive) override {
    // Each key needs its own tombstone in a compacted changelog.
    for (auto it = inner_->range(from, to_exclusive); it->valid(); it->next())
      if (it->key() != to_exclusive) writer_.write(it->key(), std::nullopt);
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

 private:
  std::unique_ptr<KeyValueBytesStore> inner_;
  ChangelogWriter& writer_;
};

class LoggingWindowStore final : public WindowBytesStore {
 public:
  LoggingWindowStore(std::unique_ptr<WindowBytesStore> inner, ChangelogWriter& writer)
      : inner_(std::move(inner)), writer_(writer) {}

  std::string_view name() const override { return inner_->name(); }
  bool persistent() const override { return inner_->persistent(); }
  bool is_open() const override { return inner_->is_open(); }
  void flush() override { inner_->flush(); }
  void close() override { inner_->close(); }
  int64_t window_size() const override { return inner_->window_size(); }
  int64_t retention_period() const override { return inner_->retention_period(); }
  int64_t observed_stream_time() const override { return inner_->observed_stream_time(); }

  bool put(std::string_view key, int64_t window_start, std::string_view value) override {
    if (!inner_->put(key, window_start, value)) return false;
    writer_.write(changelog_key(key, window_start), value);
    return true;
  }
  void remove(std::string_view key, int64_t window_start) override {
    inner_->remove(key, window_start);
    writer_.write(changelog_key(key, window_start), std::nullopt);
  }
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

 private:
  const std::string& changelog_key(std::string_view key, int64_t window_start) {
    buffer_.clear();
    append_window_key(buffer_, key, window_start);
    buffer_.append(kWindowSequence);
    return buffer_;
  }
  std::unique_ptr<WindowBytesStore> inner_;
  ChangelogWriter& writer_;
  std::string buffer_;
};

class LoggingSessionStore final : public SessionBytesStore {
 public:
  LoggingSessionStore(std::unique_ptr<SessionBytesStore> inner, ChangelogWriter& writer)
      : inner_(std::move(inner)), writer_(writer) {}

  std::string_view name() const override { return inner_->name(); }
  bool persistent() const override { return inner_->persistent(); }
  bool is_open() const override { return inner_->is_open(); }
  void flush() override { inner_->flush(); }
  void close() override { inner_->close(); }
  int64_t retention_period() const override { return inner_->retention_period(); }
  int64_t observed_stream_time() const override { return inner_->observed_stream_time(); }

  bool put(std::string_view key, int64_t start, int64_t end, std::string_view value) override {
    if (!inner_->put(key, start, end, value)) return false;
    writer_.write(changelog_key(key, start, end), value);
    return true;
  }
  void remove(std::string_view key, int64_t start, int64_t end) override {
    inner_->remove(key, start, end);
    writer_.write(changelog_key(key, start, end), std::nullopt);
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

 private:
  const std::string& changelog_key(std::string_view key, int64_t start, int64_t end) {
    buffer_.clear();
    append_session_key(buffer_, key, start, end);
    return buffer_;
  }
  std::unique_ptr<SessionBytesStore> inner_;
  ChangelogWriter& writer_;
  std::string buffer_;
};

template <class Expected>
std::unique_ptr<Expected> downcast(std::unique_ptr<BytesStore> store) {
  auto* typed = dynamic_cast<Expected*>(store.get());
  if (typed == nullptr) throw std::logic_error("store kind does not match its spec");
  store.release();
  return std::unique_ptr<Expected>(typed);
}

}  // namespace

std::unique_ptr<BytesStore> with_changelog(std::unique_ptr<BytesStore> inner, StoreKind kind,
                                           ChangelogWriter& writer) {
  switch (kind) {
    case StoreKind::kKeyValue:
      return std::make_unique<LoggingKeyValueStore>(downcast<KeyValueBytesStore>(std::move(inner)),
                                                    writer);
    case StoreKind::kWindow:
      return std::make_unique<LoggingWindowStore>(downcast<WindowBytesStore>(std::move(inner)),
                                                  writer);
    case StoreKind::kSession:
      return std::make_unique<LoggingSessionStore>(downcast<SessionBytesStore>(std::move(inner)),
                                                   writer);
  }
  throw std::logic_error("unknown store kind");
}

void apply_changelog_record(BytesStore& store, StoreKind kind, std::string_view key,
                            std::optional<std::string_view> value) {
  switch (kind) {
    case StoreKind::kKeyValue: {
      auto& kv = static_cast<KeyValueBytesStore&>(store);
      if (value)
        kv.put(key, *value);
      else
        kv.remove(key);
      return;
    }
    case StoreKind::kWindow: {
      if (key.size() < kTimestampSize + kWindowSequence.size())
        throw StateStoreError("window changelog record key too short for store '" +
                              std::string(store.name()) + "'");
      auto parsed = parse_window_key(key.substr(0, key.size() - kWindowSequence.size()));
      auto& window = static_cast<WindowBytesStore&>(store);
      if (value)
        window.put(parsed.key, parsed.window_start, *value);
      else
        window.remove(parsed.key, parsed.window_start);
      return;
    }
    case StoreKind::kSession: {
      if (key.size() < 2 * kTimestampSize)
        throw StateStoreError("session changelog record key too short for store '" +
                              std::string(store.name()) + "'");
      auto parsed = parse_session_key(key);
      auto& session = static_cast<SessionBytesStore&>(store);
      if (value)
        session.put(parsed.key, parsed.start, parsed.end, *value);
      else
        session.remove(parsed.key, parsed.start, parsed.end);
      return;
    }
  }
}

}  // namespace rill::state
