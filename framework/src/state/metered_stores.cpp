#include "state/metered_stores.h"

#include <chrono>

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

class MeteredKeyValueStore final : public KeyValueBytesStore {
 public:
  MeteredKeyValueStore(std::unique_ptr<KeyValueBytesStore> inner, metrics::StoreLatency& latency)
      : inner_(std::move(inner)), latency_(latency) {}

  std::string_view name() const override { return inner_->name(); }
  bool persistent() const override { return inner_->persistent(); }
  bool is_open() const override { return inner_->is_open(); }
  void flush() override { inner_->flush(); }
  void close() override { inner_->close(); }

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
  void write_all(std::span<const BytesWrite> writes) override { inner_->write_all(writes); }
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

 private:
  std::unique_ptr<KeyValueBytesStore> inner_;
  metrics::StoreLatency& latency_;
};

}  // namespace

std::unique_ptr<KeyValueBytesStore> with_latency(std::unique_ptr<KeyValueBytesStore> inner,
                                                 metrics::StoreLatency& latency) {
  return std::make_unique<MeteredKeyValueStore>(std::move(inner), latency);
}

}  // namespace rill::state
