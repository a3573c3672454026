// KafkaStreams runs a topology against a Kafka cluster: it joins the consumer
// group named by application.id, creates one task per assigned partition of
// each sub-topology, runs the tasks on a pool of worker threads and commits
// offsets. Start as many instances as you like: they share the partitions.
//
//   rill::KafkaStreams streams(builder.build(), config);
//   streams.start();
//   return rill::run_until_signal(streams);  // SIGINT/SIGTERM close it cleanly
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>

#include "rill/config.h"
#include "rill/queries.h"
#include "rill/topology.h"

namespace rill {

class KafkaStreams {
 public:
  // The lifecycle, as in Kafka Streams.
  enum class State { kCreated, kRebalancing, kRunning, kPendingShutdown, kNotRunning, kError };

  // What to do after a task failed with an error its handlers did not absorb.
  enum class ExceptionResponse {
    // Close the failed task without committing and start it again from its last
    // committed offsets (Kafka Streams' REPLACE_THREAD).
    kReplaceThread,
    // Stop this instance; its partitions move to the other instances.
    kShutdownClient,
  };

  using StateListener = std::function<void(State new_state, State old_state)>;
  // Restore progress of one store's changelog partition: called when it
  // starts, about every second, and when it is done.
  struct RestoreProgress {
    std::string store;
    std::string topic;
    int32_t partition = 0;
    uint64_t restored = 0;
    uint64_t total = 0;
    bool done = false;
  };
  using RestoreListener = std::function<void(const RestoreProgress& progress)>;
  using ExceptionHandler = std::function<ExceptionResponse(const std::exception& error)>;

  // Throws ConfigError or TopologyError when either cannot work.
  KafkaStreams(Topology topology, StreamsConfig config);
  ~KafkaStreams();
  KafkaStreams(const KafkaStreams&) = delete;
  KafkaStreams& operator=(const KafkaStreams&) = delete;

  // Set before start().
  void set_state_listener(StateListener listener);
  void set_uncaught_exception_handler(ExceptionHandler handler);
  // Called on the restoring thread; keep it short.
  void set_restore_listener(RestoreListener listener);

  // Replays the log up to a point in event time instead of following it
  // (`rill replay`): each partition of the source topics is processed up to
  // its last record with a timestamp at or before `until_ms` (milliseconds
  // since the epoch), where the first later record begins, and nothing after
  // it. Once all of that, and what went through repartition topics, is
  // processed and committed, the instance closes by itself (NOT_RUNNING): its
  // stores and outputs then hold the state as of `until_ms`. Completion is
  // checked at commits, so a short commit.interval.ms ends it sooner. Global
  // tables are read up to `until_ms` too. Give the replay an application.id
  // and output topics of its own, and run one instance. Set before start().
  void replay_until(int64_t until_ms);

  // Checks the source topics exist, creates internal topics, joins the group and
  // starts processing in the background. Throws std::runtime_error naming a
  // missing source topic or an unreachable cluster.
  void start();
  // Finishes in-flight records, flushes outputs, commits and leaves the group.
  // Returns false when that took longer than `timeout`.
  bool close(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Has every active task snapshot its persistent stores at a commit made
  // soon for it, whatever state.snapshot.interval.ms says (`rill run` does
  // it on SIGUSR1). Returns false, and does nothing, when snapshots are off
  // or the instance is not started.
  bool snapshot();
  // Waits until the instance is NOT_RUNNING or ERROR, or the timeout passes.
  bool wait_for_stop(std::chrono::milliseconds timeout);
  // Deletes this instance's local state (state.dir/application.id): stores,
  // checkpoints and global stores, which the next start() restores from the
  // changelogs. As Kafka Streams' cleanUp(), for a reset (`rill reset`) or a
  // state suspected corrupt. Only before start() or after close(): throws
  // std::logic_error otherwise, and StateStoreError when another instance on
  // the machine uses the directory.
  void cleanup();

  State state() const;
  // The error that put the instance in ERROR state, if any.
  std::string error() const;

  // Counters since start; the metrics endpoint exports the same numbers.
  struct Stats {
    uint64_t processed_records = 0;
    uint64_t commits = 0;
    // Times fetching of a partition was held back because
    // buffered.records.per.partition records waited for its task.
    uint64_t partition_pauses = 0;
    uint64_t skipped_records = 0;
    // Records operators dropped on purpose: later than their window's grace
    // period, or without the key an aggregation needs.
    uint64_t dropped_records = 0;
    uint64_t dead_lettered_records = 0;
    uint64_t active_tasks = 0;
    // Changelog records applied to stores while restoring them, and those
    // still to apply to the stores restoring now.
    uint64_t restored_records = 0;
    uint64_t restoring_records = 0;
    // Bytes of a task's snapshot still to download (state.snapshot.*; 0:
    // none under way).
    uint64_t snapshot_download_bytes = 0;
    // Changelog records applied to standby replicas.
    uint64_t standby_records = 0;
    // Records of global stores' topics applied to them, restoring included.
    uint64_t global_records = 0;
    // exactly_once_v2: transactions aborted (each took every task back to
    // the last commit).
    uint64_t aborted_transactions = 0;
    // Times tasks went back to their last commit after a fault, of the
    // cluster or of a task's records that the exception handler restarted.
    uint64_t task_rewinds = 0;
    // Records of the instance's input partitions not processed yet, up to
    // each partition's end as its last fetch reported it; updated about once
    // a second, and -1 while an end or position is not known yet. 0 with no
    // partitions assigned.
    int64_t pending_input_records = -1;
    // Under replay_until, records are pending only up to the replay's end.
    // How far the input has come in event time: the earliest last-processed
    // timestamp among source partitions with records pending (the latest
    // when none has any); -1 before any record. Updated as pending is.
    int64_t event_time_ms = -1;
    // Under replay_until: the replay is complete (the instance then closes
    // by itself).
    bool replayed = false;
  };
  Stats stats() const;

  // The port of the endpoint serving /metrics, /healthz and /readyz (see
  // metrics.address), once start() has begun; 0 when there is none.
  int metrics_port() const;

  // A read-only view of the store `name` in this instance's tasks (see
  // rill/queries.h), of the kind and types `type` names:
  //   streams.store("counts", QueryableStoreTypes::key_value<std::string, int64_t>())
  // `options` lets the view read standby copies too (stale_stores), or only
  // one partition. Throws std::invalid_argument when the topology has no such
  // store of that kind. Do not read a view from a processor: it waits for the
  // tasks to run.
  template <class Type>
  typename Type::Store store(std::string name, Type = {}, StoreQueryOptions options = {}) const {
    queries().check_store(name, Type::kKind);
    return typename Type::Store(queries(), std::move(name), options);
  }
  internal::StoreQueries& queries() const;

  // Where the application's stores live, as of the group's last rebalance
  // seen here (refreshed every few seconds): every instance that advertises an
  // application.server, with its tasks and stores. Empty until this instance
  // has seen the group, and when it advertises no application.server itself.
  std::vector<StreamsMetadata> all_metadata() const;
  // The instances with an active or standby task of `store`.
  std::vector<StreamsMetadata> all_metadata_for_store(std::string_view store) const;
  // The partition of `key` in `store` (as the producers' murmur2 partitioner
  // places the key's bytes under `key_serde`), the instance that runs its task
  // and those that keep standby copies. nullopt while that is not known: no
  // group seen yet, or the partition has no owner during a rebalance. Throws
  // std::invalid_argument for an unknown store.
  template <class K>
  std::optional<KeyQueryMetadata> metadata_for_key(std::string_view store, const K& key,
                                                   const SerdePtr<K>& key_serde) const {
    return metadata_for_key_bytes(store, internal::serialized_key(key_serde, key, store));
  }
  std::optional<KeyQueryMetadata> metadata_for_key_bytes(std::string_view store,
                                                         std::string_view key) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string_view to_string(KafkaStreams::State state);

// When run_until_signal closes the instance by itself; zero: no such limit.
struct RunLimits {
  // Close after this long.
  std::chrono::milliseconds duration{0};
  // Close once the input is drained (Stats::pending_input_records is 0, the
  // instance RUNNING) and no record was processed for this long: a bounded
  // input processed, as CI jobs and replays want.
  std::chrono::milliseconds idle{0};
};

// Blocks until SIGINT or SIGTERM arrives, a limit is reached (then closes
// `streams` cleanly) or the instance stops by itself. Returns a process exit
// code: 0 after a clean close, 1 when the instance ended in ERROR (its error is
// printed on stderr). A crash (SIGSEGV, SIGABRT...) prints the signal and the
// crashing thread's stack on stderr before the process dies of it.
int run_until_signal(KafkaStreams& streams, const RunLimits& limits = {});

}  // namespace rill
