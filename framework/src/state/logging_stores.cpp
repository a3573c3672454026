#include "state/logging_stores.h"

#include <stdexcept>

#include "state/forwarding_stores.h"
#include "state/key_layout.h"

namespace rill::state {
namespace {

// The 4-byte sequence number Kafka Streams appends to window changelog keys; 0
// when a store keeps one value per window, as rill's do.
constexpr std::string_view kWindowSequence("\0\0\0\0", 4);

class LoggingKeyValueStore final : public ForwardingKeyValueStore {
 public:
  LoggingKeyValueStore(std::unique_ptr<KeyValueBytesStore> inner, ChangelogWriter& writer)
      : ForwardingKeyValueStore(std::move(inner)), writer_(writer) {}

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
    log_only(writes);
  }
  void log_only(std::span<const BytesWrite> writes) override {
    for (const BytesWrite& write : writes) writer_.write(write.key, write.value);
  }
  void store_only(std::span<const BytesWrite> writes) override { inner_->store_only(writes); }
  void remove_range(std::string_view from, std::string_view to_exclusive) override {
    // Each key needs its own tombstone in a compacted changelog.
    for (auto it = inner_->range(from, to_exclusive); it->valid(); it->next())
      if (it->key() != to_exclusive) writer_.write(it->key(), std::nullopt);
    inner_->remove_range(from, to_exclusive);
  }

 private:
  ChangelogWriter& writer_;
};

class LoggingWindowStore final : public ForwardingWindowStore {
 public:
  LoggingWindowStore(std::unique_ptr<WindowBytesStore> inner, ChangelogWriter& writer)
      : ForwardingWindowStore(std::move(inner)), writer_(writer) {}

  bool put(std::string_view key, int64_t window_start, std::string_view value) override {
    if (!inner_->put(key, window_start, value)) return false;
    writer_.write(changelog_key(key, window_start), value);
    return true;
  }
  void remove(std::string_view key, int64_t window_start) override {
    inner_->remove(key, window_start);
    writer_.write(changelog_key(key, window_start), std::nullopt);
  }
  void put_all(std::span<WindowWrite> writes) override {
    inner_->put_all(writes);
    for (const WindowWrite& write : writes)
      if (write.stored) writer_.write(changelog_key(write.key, write.window_start), write.value);
  }

 private:
  const std::string& changelog_key(std::string_view key, int64_t window_start) {
    buffer_.clear();
    append_window_key(buffer_, key, window_start);
    buffer_.append(kWindowSequence);
    return buffer_;
  }
  ChangelogWriter& writer_;
  std::string buffer_;
};

class LoggingSessionStore final : public ForwardingSessionStore {
 public:
  LoggingSessionStore(std::unique_ptr<SessionBytesStore> inner, ChangelogWriter& writer)
      : ForwardingSessionStore(std::move(inner)), writer_(writer) {}

  bool put(std::string_view key, int64_t start, int64_t end, std::string_view value) override {
    if (!inner_->put(key, start, end, value)) return false;
    writer_.write(changelog_key(key, start, end), value);
    return true;
  }
  void remove(std::string_view key, int64_t start, int64_t end) override {
    inner_->remove(key, start, end);
    writer_.write(changelog_key(key, start, end), std::nullopt);
  }

 private:
  const std::string& changelog_key(std::string_view key, int64_t start, int64_t end) {
    buffer_.clear();
    append_session_key(buffer_, key, start, end);
    return buffer_;
  }
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
