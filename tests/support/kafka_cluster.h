// Test helpers that talk to the real broker started by scripts/test: its
// address, unique topics, and an independent producer and consumer.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rill::testing {

// The broker's address from RILL_KAFKA_BOOTSTRAP; fails the test when unset.
std::string bootstrap_servers();

// Now, in milliseconds since the epoch. Test records carry recent timestamps:
// the broker deletes records older than its retention (7 days) at once.
int64_t now_ms();

// A topic name no other test (or earlier run) uses.
std::string unique_name(const std::string& prefix);

// Creates a topic, replicated as the cluster's default.replication.factor
// (every node of scripts/kafka's clusters), and waits until its metadata
// shows every partition.
void create_topic(const std::string& topic, int partitions,
                  const std::map<std::string, std::string>& configs = {});
void delete_topic(const std::string& topic);
// Deletes every topic whose name starts with one of `prefixes`.
void delete_topics_with_prefixes(const std::vector<std::string>& prefixes);

// Waits until every partition's replicas are in sync, asking the cluster
// through a client (no tool JVM to start); fails the test, naming the
// partitions still behind, after `timeout`.
void wait_in_sync(std::chrono::seconds timeout = std::chrono::seconds(120));

// Nodes of the cluster scripts/kafka runs from RILL_KAFKA_STATE_DIR; fails
// the test when that is unset or no cluster was started there.
int cluster_nodes();

// Runs scripts/kafka with `arguments` ("kill-node 2", "wait-in-sync") on that
// cluster; fails the test, with what it printed, when it fails.
void cluster_command(const std::string& arguments);

// Brings every node of that cluster back, paused or stopped, and never fails:
// the clean-up of a fault test, whatever happened in it.
void restore_cluster() noexcept;

struct TestRecord {
  std::optional<std::string> key;
  std::optional<std::string> value;
  int32_t partition = -1;
  int64_t offset = -1;
  int64_t timestamp = 0;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Produces records (partition -1: by key) and waits for every acknowledgement.
void produce(const std::string& topic, const std::vector<TestRecord>& records);

// Reads `topic` from the beginning with a fresh, group-less consumer until
// `count` records arrived or `timeout` passed; returns what arrived.
// read_committed skips aborted transactional records.
std::vector<TestRecord> consume(const std::string& topic, std::size_t count,
                                std::chrono::milliseconds timeout, bool read_committed = true);

// Reads every committed record of `topic` with a fresh, group-less
// read_committed consumer, from the beginning until each partition's end (its
// last stable offset), handing each to `on_record`; false when `timeout`
// passed first. `stable_ends` (optional) receives, per partition, the offset
// where the reader found its end (-1: never).
bool read_to_end(const std::string& topic, const std::function<void(const TestRecord&)>& on_record,
                 std::chrono::milliseconds timeout, std::vector<int64_t>* stable_ends = nullptr);

// The end offsets of `topic` per partition (records ever written, including
// markers), and their sum.
std::vector<int64_t> end_offsets_by_partition(const std::string& topic);
int64_t end_offsets(const std::string& topic);
// The log start offsets of `topic` per partition: where the records deleted
// by retention or DeleteRecords end.
std::vector<int64_t> start_offsets_by_partition(const std::string& topic);

// Deletes the records of `topic`'s partition below `offset`, as retention
// would; fails the test when the broker refuses.
void delete_records_below(const std::string& topic, int32_t partition, int64_t offset);

// The offsets consumer group `group` committed for `topic` per partition (0
// without a commit), and their sum.
std::vector<int64_t> committed_offsets_by_partition(const std::string& group,
                                                    const std::string& topic);
int64_t committed_offsets(const std::string& group, const std::string& topic);

// The configs the broker reports for `topic` that were set on the topic itself
// (not broker defaults).
std::map<std::string, std::string> topic_configs(const std::string& topic);

}  // namespace rill::testing
