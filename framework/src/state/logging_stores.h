// Changelogging layers: each write to a store also goes to the store's
// changelog topic (partition = the task's partition), from which the store can
// be rebuilt. Reads pass straight through. The changelog keys are Kafka
// Streams': the record key for key-value stores, key + window start (8 bytes
// big-endian) + a 4-byte sequence number for window stores, and key + end +
// start for session stores, so Java tools can read rill's changelogs.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "rill/internal/bytes_store.h"
#include "rill/internal/node.h"
#include "rill/state.h"

namespace rill::state {

// Sends one store's changelog records.
class ChangelogWriter {
 public:
  ChangelogWriter(internal::RecordCollector& collector, int topic, int32_t partition,
                  std::function<int64_t()> timestamp)
      : collector_(collector),
        topic_(topic),
        partition_(partition),
        timestamp_(std::move(timestamp)),
        delivered_offset_(collector.acknowledged_offset(topic, partition)) {}

  void write(std::string_view key, std::optional<std::string_view> value) {
    collector_.send_changelog(topic_, partition_, key, value, timestamp_(), &delivered_offset_);
  }
  // The offset of the last changelog record the broker acknowledged, or -1.
  int64_t delivered_offset() const { return delivered_offset_.load(std::memory_order_acquire); }

 private:
  internal::RecordCollector& collector_;
  int topic_;
  int32_t partition_;
  std::function<int64_t()> timestamp_;
  std::atomic<int64_t>& delivered_offset_;
};

// Wraps `inner` (of `kind`) so its writes are logged through `writer`.
std::unique_ptr<BytesStore> with_changelog(std::unique_ptr<BytesStore> inner, StoreKind kind,
                                           ChangelogWriter& writer);

// Applies one changelog record (null value: a deletion) to an unlogged store.
void apply_changelog_record(BytesStore& store, StoreKind kind, std::string_view key,
                            std::optional<std::string_view> value);

}  // namespace rill::state
