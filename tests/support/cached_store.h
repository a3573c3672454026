// A typed key-value store behind a record cache, as the runtime stacks them,
// with a flush listener that keeps what the cache hands on.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rill/state.h"

#include "state/caching_stores.h"

namespace rill::testing {

template <class V>
class CachedStore {
 public:
  using HandedOn = std::vector<std::pair<std::string, std::optional<V>>>;

  // Over `bytes`, or a new in-memory store when it is nullptr.
  explicit CachedStore(state::CacheBudget& budget,
                       std::unique_ptr<state::BytesStore> bytes = nullptr) {
    auto builder = Stores::key_value<std::string, V>("cached").in_memory();
    if (!bytes) bytes = builder.build_bytes_store({}, nullptr);
    auto cached = state::with_record_cache(std::move(bytes), StoreKind::kKeyValue, budget);
    cache = dynamic_cast<state::RecordCache*>(cached.get());
    typed_ = builder.wrap(std::move(cached));
    store().set_flush_listener([this](const std::string& key, const std::optional<V>& value,
                                      int64_t) { handed_on.emplace_back(key, value); });
  }

  KeyValueStore<std::string, V>& store() {
    return dynamic_cast<KeyValueStore<std::string, V>&>(*typed_);
  }

  HandedOn handed_on;
  // The cache's side of the store: a commit calls hand_on().
  state::RecordCache* cache = nullptr;

 private:
  std::unique_ptr<StateStore> typed_;
};

}  // namespace rill::testing
