#include "state/metered_stores.h"

#include <chrono>

#include "state/forwarding_stores.h"

namespace rill::state {
namespace {

using Clock = std::chrono::steady_clock;

// Observes the time from its creation to its end.
class Timed {
 public:
  explicit Timed(metrics::LatencyHistogram& histogram)
      : histogram_(histogram), start_(Clock::now()) {}
  ~Timed() {
    histogram_.observe_ns(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count());
  }
  Timed(const Timed&) = delete;
  Timed& operator=(const Timed&) = delete;

 private:
  metrics::LatencyHistogram& histogram_;
  Clock::time_point start_;
};

class MeteredKeyValueStore final : public ForwardingKeyValueStore {
 public:
  MeteredKeyValueStore(std::unique_ptr<KeyValueBytesStore> inner, metrics::StoreLatency& latency)
      : ForwardingKeyValueStore(std::move(inner)), latency_(latency) {}

  std::optional<std::string> get(std::string_view key) const override {
    Timed timed(latency_.get);
    return inner_->get(key);
  }
  void put(std::string_view key, std::string_view value) override {
    Timed timed(latency_.put);
    inner_->put(key, value);
  }
  std::optional<std::string> put_if_absent(std::string_view key, std::string_view value) override {
    Timed timed(latency_.put);
    return inner_->put_if_absent(key, value);
  }
  void remove(std::string_view key) override {
    Timed timed(latency_.put);
    inner_->remove(key);
  }

 private:
  metrics::StoreLatency& latency_;
};

// Window stores: a put or remove is a write, a fetch of one window a read.
// Range fetches hand back iterators whose cost falls in the iteration, so
// they are not timed.
class MeteredWindowStore final : public ForwardingWindowStore {
 public:
  MeteredWindowStore(std::unique_ptr<WindowBytesStore> inner, metrics::StoreLatency& latency)
      : ForwardingWindowStore(std::move(inner)), latency_(latency) {}

  bool put(std::string_view key, int64_t window_start, std::string_view value) override {
    Timed timed(latency_.put);
    return inner_->put(key, window_start, value);
  }
  void remove(std::string_view key, int64_t window_start) override {
    Timed timed(latency_.put);
    inner_->remove(key, window_start);
  }
  std::optional<std::string> fetch(std::string_view key, int64_t window_start) const override {
    Timed timed(latency_.get);
    return inner_->fetch(key, window_start);
  }
  using ForwardingWindowStore::fetch;

 private:
  metrics::StoreLatency& latency_;
};

// Session stores: a put or remove is a write; fetching one session, or
// looking up the sessions a record may merge with, a read.
class MeteredSessionStore final : public ForwardingSessionStore {
 public:
  MeteredSessionStore(std::unique_ptr<SessionBytesStore> inner, metrics::StoreLatency& latency)
      : ForwardingSessionStore(std::move(inner)), latency_(latency) {}

  bool put(std::string_view key, int64_t start, int64_t end, std::string_view value) override {
    Timed timed(latency_.put);
    return inner_->put(key, start, end, value);
  }
  void remove(std::string_view key, int64_t start, int64_t end) override {
    Timed timed(latency_.put);
    inner_->remove(key, start, end);
  }
  std::optional<std::string> fetch_session(std::string_view key, int64_t start,
                                           int64_t end) const override {
    Timed timed(latency_.get);
    return inner_->fetch_session(key, start, end);
  }
  std::unique_ptr<SessionBytesIterator> find_sessions(std::string_view key,
                                                      int64_t earliest_session_end,
                                                      int64_t latest_session_start) const override {
    Timed timed(latency_.get);
    return inner_->find_sessions(key, earliest_session_end, latest_session_start);
  }

 private:
  metrics::StoreLatency& latency_;
};

template <class Metered, class Store>
std::unique_ptr<BytesStore> metered(std::unique_ptr<BytesStore>& store,
                                    metrics::StoreLatency& latency) {
  return std::make_unique<Metered>(std::unique_ptr<Store>(static_cast<Store*>(store.release())),
                                   latency);
}

}  // namespace

std::unique_ptr<BytesStore> with_latency(std::unique_ptr<BytesStore> store, StoreKind kind,
                                         metrics::StoreLatency& latency) {
  switch (kind) {
    case StoreKind::kKeyValue:
      return metered<MeteredKeyValueStore, KeyValueBytesStore>(store, latency);
    case StoreKind::kWindow:
      return metered<MeteredWindowStore, WindowBytesStore>(store, latency);
    case StoreKind::kSession:
      return metered<MeteredSessionStore, SessionBytesStore>(store, latency);
  }
  return store;
}

}  // namespace rill::state
