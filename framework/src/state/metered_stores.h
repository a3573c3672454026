// A timing layer for stores, under metrics.recording.level=DEBUG:
// each get and each write through it is timed into the task's histograms, as
// Kafka Streams' metered stores do at that level. It sits right above the
// RocksDB or in-memory store, so the figures are the store's own, without the
// changelog or the record cache.
#pragma once

#include <memory>

#include "rill/internal/bytes_store.h"
#include "rill/state.h"

#include "metrics/task_metrics.h"

namespace rill::state {

// `store` (a key-value, window or session store, as `kind` says) timed into
// `latency`.
std::unique_ptr<BytesStore> with_latency(std::unique_ptr<BytesStore> store, StoreKind kind,
                                         metrics::StoreLatency& latency);

}  // namespace rill::state
