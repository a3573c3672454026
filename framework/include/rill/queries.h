// Interactive queries: reading the state stores of a running application from
// outside its processors, as Kafka Streams' KafkaStreams#store.
//
//   auto counts = streams.store("counts", rill::QueryableStoreTypes::key_value<std::string,
//                                                                              int64_t>());
//   std::optional<int64_t> count = counts.get("alice");
//
// A view reads the store of every task of this instance that holds it: each
// task's share is read on the task's own worker, between two of its records,
// so that a read sees what processing has written, record cache included, and
// processing takes no lock for it. Results are copied out: ranges come back
// as vectors, ordered by the serialized keys' bytes (as the stores order
// them), so give large ones a limit. Stores of timestamped values (those of
// DSL aggregations and tables) are read as their values.
//
// A view answers for the partitions this instance holds: a key of another
// instance's partition reads as absent (see KafkaStreams::metadata_for_key).
// A global store is whole on every instance, and read on the caller's thread.
// While the instance is not RUNNING, or a partition of the store is restoring
// or moving, a read throws StoreUnavailableError: retry it later. With
// StoreQueryOptions::stale_stores, a view also reads the standby copies this
// instance keeps, during rebalances too, for answers that may lag behind.
// Reads are safe from any thread, for as long as the KafkaStreams instance
// lives.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rill/processor.h"
#include "rill/record.h"
#include "rill/state.h"
#include "rill/value_and_timestamp.h"

namespace rill {

// The store cannot be read now: the instance is not running, or a partition
// of the store is restoring or moving to or from this instance. Retry later.
class StoreUnavailableError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An instance's query endpoint, its application.server.
struct HostInfo {
  std::string host;
  int port = 0;
  auto operator<=>(const HostInfo&) const = default;
  std::string to_string() const { return host + ":" + std::to_string(port); }
};

// What an instance of the application holds, as the group's members see it:
// the tasks (sub-topology and partition) it runs and those it keeps standby
// copies of, and their stores.
struct StreamsMetadata {
  HostInfo host;
  std::set<TaskId> active_tasks;
  std::set<std::string> state_stores;
  std::set<TaskId> standby_tasks;
  std::set<std::string> standby_state_stores;
};

// Where the partition of a key lives: the instance that runs its task, and
// those that keep standby copies of its stores.
struct KeyQueryMetadata {
  HostInfo active_host;
  std::vector<HostInfo> standby_hosts;
  int32_t partition = -1;
};

// Which copies of a store a view reads, as Kafka Streams' StoreQueryParameters.
struct StoreQueryOptions {
  // Also read the standby copies of the store this instance keeps (see
  // num.standby.replicas), for partitions whose active task is elsewhere,
  // and read while the instance rebalances. A standby follows the changelog
  // of the active task, so its answer may lag behind by what the active task
  // has not yet committed; during a failover it answers while the new active
  // task restores. Active tasks that are restoring are never read.
  bool stale_stores = false;
  // Only the task of this partition; -1 for every task of the store.
  int32_t partition = -1;
};

namespace internal {

// What a view asks of the running instance (implemented by KafkaStreams).
class StoreQueries {
 public:
  virtual ~StoreQueries() = default;
  // Throws std::invalid_argument naming the stores there are when the
  // topology has no store `store` of `kind`.
  virtual void check_store(std::string_view store, StoreKind kind) const = 0;
  // Runs `query` with the store of each of this instance's tasks that holds
  // it (only the task of options.partition when it is not -1), on the
  // task's worker, possibly on several workers at once, and with
  // options.stale_stores with the store of each standby copy of a partition
  // whose active task is elsewhere, on the caller's thread. Returns once
  // every run is done, rethrowing the first exception a run threw; returns
  // whether a standby copy was read (the answer may be stale). Throws
  // StoreUnavailableError when the instance is not RUNNING (nor REBALANCING
  // with stale stores), a task of the store is not running, the partition
  // asked for has neither an active task nor (stale stores) a standby here,
  // or the runs took longer than the query timeout.
  virtual bool for_each_task_store(std::string_view store,
                                   const std::function<void(StateStore& store)>& query,
                                   const StoreQueryOptions& options = {}) = 0;
};

inline constexpr std::size_t kNoLimit = std::numeric_limits<std::size_t>::max();

// Calls f(store, value_of) with the store as Typed<K, V> or, for a store of
// timestamped values, as Typed<K, ValueAndTimestamp<V>>; value_of gives the
// plain value of what the store holds. Throws std::invalid_argument when the
// store holds other types.
template <template <class, class> class Typed, class K, class V, class F>
void visit_store(StateStore& store, F&& f) {
  if (auto* plain = dynamic_cast<Typed<K, V>*>(&store)) {
    f(*plain, [](const V& value) -> const V& { return value; });
  } else if (auto* timestamped = dynamic_cast<Typed<K, ValueAndTimestamp<V>>*>(&store)) {
    f(*timestamped, [](const ValueAndTimestamp<V>& value) -> const V& { return value.value; });
  } else {
    throw std::invalid_argument("state store '" + std::string(store.name()) +
                                "' holds other key or value types than " + demangle(typeid(K)) +
                                " and " + demangle(typeid(V)));
  }
}

// Entries of several tasks, each list ordered by `order`, merged in that
// order and cut at `limit`. Serialized keys compare as std::string does,
// which is unsigned byte order, the stores' order.
template <class Entry, class Less>
std::vector<Entry> merged(std::vector<std::vector<Entry>> lists, Less order, std::size_t limit) {
  std::vector<Entry> all;
  for (auto& list : lists) std::move(list.begin(), list.end(), std::back_inserter(all));
  std::stable_sort(all.begin(), all.end(), order);
  if (all.size() > limit) all.resize(limit);
  return all;
}

// Runs `collect(store, list)` on each task's store, each task into its own
// list; returns the lists.
template <class Entry, class Collect>
std::vector<std::vector<Entry>> collect_per_task(StoreQueries& queries, std::string_view store,
                                                 const StoreQueryOptions& options,
                                                 Collect collect) {
  std::mutex mutex;
  std::vector<std::vector<Entry>> lists;
  queries.for_each_task_store(
      store,
      [&](StateStore& task_store) {
        std::vector<Entry> list;
        collect(task_store, list);
        std::lock_guard lock(mutex);
        lists.push_back(std::move(list));
      },
      options);
  return lists;
}

// The entries of (serialized key, entry) pairs, once merged in key order.
template <class Entry>
std::vector<Entry> without_order(std::vector<std::pair<std::string, Entry>> ordered) {
  std::vector<Entry> out;
  out.reserve(ordered.size());
  for (auto& entry : ordered) out.push_back(std::move(entry.second));
  return out;
}

template <class K>
std::string serialized_key(const SerdePtr<K>& serde, const K& key, std::string_view store) {
  std::string bytes;
  if (!serde->serialize(key, bytes))
    throw std::invalid_argument("state store '" + std::string(store) + "': key serialized to null");
  return bytes;
}

}  // namespace internal

// A read-only view of a key-value store.
template <class K, class V>
class ReadOnlyKeyValueStore {
 public:
  ReadOnlyKeyValueStore(internal::StoreQueries& queries, std::string name,
                        StoreQueryOptions options = {})
      : queries_(&queries), name_(std::move(name)), options_(options) {}

  const std::string& name() const { return name_; }
  const StoreQueryOptions& options() const { return options_; }

  std::optional<V> get(const K& key) const {
    std::mutex mutex;
    std::optional<V> found;
    queries_->for_each_task_store(
        name_,
        [&](StateStore& store) {
          internal::visit_store<KeyValueStore, K, V>(store, [&](auto& typed, auto value_of) {
            if (auto value = typed.get(key)) {
              std::lock_guard lock(mutex);
              found = value_of(*value);
            }
          });
        },
        options_);
    return found;
  }

  // Keys from `from` to `to`, both inclusive, at most `limit` of them.
  std::vector<KeyValue<K, V>> range(const K& from, const K& to,
                                    std::size_t limit = internal::kNoLimit) const {
    return scan([&](const auto& typed) { return typed.range(from, to); }, limit);
  }
  // As range, from `to` down to `from`: the last `limit` keys of the range.
  std::vector<KeyValue<K, V>> reverse_range(const K& from, const K& to,
                                            std::size_t limit = internal::kNoLimit) const {
    std::vector<KeyValue<K, V>> entries = range(from, to);
    std::reverse(entries.begin(), entries.end());
    if (entries.size() > limit) entries.resize(limit);
    return entries;
  }
  std::vector<KeyValue<K, V>> all(std::size_t limit = internal::kNoLimit) const {
    return scan([](const auto& typed) { return typed.all(); }, limit);
  }
  // Keys whose serialized bytes start with the serialized `prefix`.
  template <class P>
  std::vector<KeyValue<K, V>> prefix_scan(const P& prefix, const SerdePtr<P>& prefix_serde,
                                          std::size_t limit = internal::kNoLimit) const {
    return scan([&](const auto& typed) { return typed.prefix_scan(prefix, prefix_serde); }, limit);
  }
  // The sum of every task's estimate (RocksDB's, for a persistent store):
  // entries the record cache holds until the next commit are not counted.
  uint64_t approximate_num_entries() const {
    std::mutex mutex;
    uint64_t entries = 0;
    queries_->for_each_task_store(
        name_,
        [&](StateStore& store) {
          internal::visit_store<KeyValueStore, K, V>(store, [&](auto& typed, auto) {
            const uint64_t task_entries = typed.approximate_num_entries();
            std::lock_guard lock(mutex);
            entries += task_entries;
          });
        },
        options_);
    return entries;
  }

 private:
  using Entry = std::pair<std::string, KeyValue<K, V>>;

  // Each task's entries with their serialized keys, merged in their order.
  template <class Open>
  std::vector<KeyValue<K, V>> scan(Open open, std::size_t limit) const {
    auto lists = internal::collect_per_task<
        Entry>(*queries_, name_, options_, [&](StateStore& store, std::vector<Entry>& list) {
      internal::visit_store<KeyValueStore, K, V>(store, [&](auto& typed, auto value_of) {
        for (auto it = open(typed); it.valid() && list.size() < limit; it.next()) {
          K key = it.key();
          std::string bytes = internal::serialized_key(typed.key_serde(), key, name_);
          list.push_back({std::move(bytes), KeyValue<K, V>{std::move(key), value_of(it.value())}});
        }
      });
    });
    std::vector<Entry> entries = internal::merged(
        std::move(lists), [](const Entry& a, const Entry& b) { return a.first < b.first; }, limit);
    return internal::without_order(std::move(entries));
  }

  internal::StoreQueries* queries_;
  std::string name_;
  StoreQueryOptions options_;
};

// A read-only view of a window store.
template <class K, class V>
class ReadOnlyWindowStore {
 public:
  ReadOnlyWindowStore(internal::StoreQueries& queries, std::string name,
                      StoreQueryOptions options = {})
      : queries_(&queries), name_(std::move(name)), options_(options) {}

  const std::string& name() const { return name_; }
  const StoreQueryOptions& options() const { return options_; }

  // The value of `key` in the window that starts at `window_start`.
  std::optional<V> fetch(const K& key, int64_t window_start) const {
    std::mutex mutex;
    std::optional<V> found;
    queries_->for_each_task_store(
        name_,
        [&](StateStore& store) {
          internal::visit_store<WindowStore, K, V>(store, [&](auto& typed, auto value_of) {
            if (auto value = typed.fetch(key, window_start)) {
              std::lock_guard lock(mutex);
              found = value_of(*value);
            }
          });
        },
        options_);
    return found;
  }
  // The windows of `key` that start from `time_from` to `time_to`, as
  // (window start, value), by window start.
  std::vector<KeyValue<int64_t, V>> fetch(const K& key, int64_t time_from, int64_t time_to) const {
    using StartAndValue = KeyValue<int64_t, V>;
    auto lists = internal::collect_per_task<StartAndValue>(
        *queries_, name_, options_, [&](StateStore& store, std::vector<StartAndValue>& list) {
          internal::visit_store<WindowStore, K, V>(store, [&](auto& typed, auto value_of) {
            for (auto it = typed.fetch(key, time_from, time_to); it.valid(); it.next())
              list.push_back({it.key(), value_of(it.value())});
          });
        });
    return internal::merged(
        std::move(lists),
        [](const StartAndValue& a, const StartAndValue& b) { return a.key < b.key; },
        internal::kNoLimit);
  }
  // The windows of every key that start from `time_from` to `time_to`, by
  // window start and then by serialized key.
  std::vector<KeyValue<Windowed<K>, V>> fetch_all(int64_t time_from, int64_t time_to,
                                                  std::size_t limit = internal::kNoLimit) const {
    return windows([&](const auto& typed) { return typed.fetch_all(time_from, time_to); }, limit);
  }
  std::vector<KeyValue<Windowed<K>, V>> all(std::size_t limit = internal::kNoLimit) const {
    return windows([](const auto& typed) { return typed.all(); }, limit);
  }

 private:
  using Entry = std::pair<std::string, KeyValue<Windowed<K>, V>>;

  template <class Open>
  std::vector<KeyValue<Windowed<K>, V>> windows(Open open, std::size_t limit) const {
    auto lists = internal::collect_per_task<Entry>(
        *queries_, name_, options_, [&](StateStore& store, std::vector<Entry>& list) {
          internal::visit_store<WindowStore, K, V>(store, [&](auto& typed, auto value_of) {
            for (auto it = open(typed); it.valid(); it.next()) {
              Windowed<K> key = it.key();
              std::string bytes = internal::serialized_key(typed.key_serde(), key.key, name_);
              list.push_back({std::move(bytes), {std::move(key), value_of(it.value())}});
            }
          });
        });
    std::vector<Entry> entries = internal::merged(
        std::move(lists),
        [](const Entry& a, const Entry& b) {
          if (a.second.key.window.start != b.second.key.window.start)
            return a.second.key.window.start < b.second.key.window.start;
          return a.first < b.first;
        },
        limit);
    return internal::without_order(std::move(entries));
  }

  internal::StoreQueries* queries_;
  std::string name_;
  StoreQueryOptions options_;
};

// A read-only view of a session store.
template <class K, class V>
class ReadOnlySessionStore {
 public:
  ReadOnlySessionStore(internal::StoreQueries& queries, std::string name,
                       StoreQueryOptions options = {})
      : queries_(&queries), name_(std::move(name)), options_(options) {}

  const std::string& name() const { return name_; }
  const StoreQueryOptions& options() const { return options_; }

  // Every session of `key`, by session end.
  std::vector<KeyValue<Windowed<K>, V>> fetch(const K& key) const {
    return sessions([&](const auto& typed) { return typed.fetch(key); });
  }
  // The sessions of `key` that end at or after `earliest_session_end` and
  // start at or before `latest_session_start`, by session end.
  std::vector<KeyValue<Windowed<K>, V>> find_sessions(const K& key, int64_t earliest_session_end,
                                                      int64_t latest_session_start) const {
    return sessions([&](const auto& typed) {
      return typed.find_sessions(key, earliest_session_end, latest_session_start);
    });
  }

 private:
  using Entry = KeyValue<Windowed<K>, V>;

  template <class Open>
  std::vector<Entry> sessions(Open open) const {
    auto lists = internal::collect_per_task<Entry>(
        *queries_, name_, options_, [&](StateStore& store, std::vector<Entry>& list) {
          internal::visit_store<SessionStore, K, V>(store, [&](auto& typed, auto value_of) {
            for (auto it = open(typed); it.valid(); it.next())
              list.push_back({it.key(), value_of(it.value())});
          });
        });
    return internal::merged(
        std::move(lists),
        [](const Entry& a, const Entry& b) {
          return std::pair(a.key.window.end, a.key.window.start) <
                 std::pair(b.key.window.end, b.key.window.start);
        },
        internal::kNoLimit);
  }

  internal::StoreQueries* queries_;
  std::string name_;
  StoreQueryOptions options_;
};

// The kinds of store a query may ask for, as Kafka Streams' QueryableStoreTypes.
struct QueryableStoreTypes {
  template <class K, class V>
  struct KeyValueType {
    using Store = ReadOnlyKeyValueStore<K, V>;
    static constexpr StoreKind kKind = StoreKind::kKeyValue;
  };
  template <class K, class V>
  struct WindowType {
    using Store = ReadOnlyWindowStore<K, V>;
    static constexpr StoreKind kKind = StoreKind::kWindow;
  };
  template <class K, class V>
  struct SessionType {
    using Store = ReadOnlySessionStore<K, V>;
    static constexpr StoreKind kKind = StoreKind::kSession;
  };

  template <class K, class V>
  static KeyValueType<K, V> key_value() {
    return {};
  }
  template <class K, class V>
  static WindowType<K, V> window() {
    return {};
  }
  template <class K, class V>
  static SessionType<K, V> session() {
    return {};
  }
};

}  // namespace rill
