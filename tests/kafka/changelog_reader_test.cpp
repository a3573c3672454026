// The changelog reader against the real broker:
// - under exactly-once, a restore that meets a transaction still open on its
//   changelog (the task's previous owner was cut off from the group
//   mid-commit) waits for that transaction to end, and then holds its writes
//   if it committed and none of them if it aborted;
// - records written in sorted batches split across threads keep each key's
//   last value, in a full restore (through a vector memtable) and in
//   a tail onto checkpointed files, and the store serves reads and writes
//   after either.
#include "state/changelog_reader.h"

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <memory>
#include <mutex>

#include <catch2/catch.hpp>
#include <librdkafka/rdkafkacpp.h>

#include "rill/rill.h"

#include "kafka/handles.h"
#include "support/count_topology.h"
#include "support/kafka_cluster.h"

using namespace rill;
using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

class Task final : public state::RestoringTask {
 public:
  Task(const Topology& topology, const std::string& application_id,
       const std::filesystem::path& directory)
      : state_(topology, topology.subtopologies().at(0), TaskId{0, 0}, application_id, directory,
               nullptr) {
    state_.open(
        nullptr, [] { return int64_t{0}; }, nullptr);
  }
  ~Task() override {
    if (!closed_) state_.close(false);
  }
  // Writes the checkpoint: the next task on the directory restores the tail.
  void close_clean() {
    state_.close(true);
    closed_ = true;
  }

  TaskId id() const override { return {0, 0}; }
  state::StateManager& state() override { return state_; }
  void report_failure(std::string reason, bool) override {
    std::lock_guard lock(mutex_);
    failure_ = std::move(reason);
  }
  void report_restored() override {
    std::lock_guard lock(mutex_);
    restored_ = true;
    changed_.notify_all();
  }
  bool wait_restored(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return restored_; });
  }
  std::string failure() {
    std::lock_guard lock(mutex_);
    return failure_;
  }
  KeyValueStore<std::string, int64_t>& counts() {
    auto* store = dynamic_cast<KeyValueStore<std::string, int64_t>*>(state_.get("counts"));
    REQUIRE(store != nullptr);
    return *store;
  }
  std::optional<int64_t> count(const std::string& key) { return counts().get(key); }

 private:
  state::StateManager state_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool restored_ = false;
  bool closed_ = false;
  std::string failure_;
};

std::unique_ptr<RdKafka::Conf> producer_conf(const std::string& transactional_id) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string error;
  REQUIRE(conf->set("bootstrap.servers", bootstrap_servers(), error) == RdKafka::Conf::CONF_OK);
  REQUIRE(conf->set("transactional.id", transactional_id, error) == RdKafka::Conf::CONF_OK);
  return conf;
}

void require_ok(RdKafka::Error* error) {
  const std::unique_ptr<RdKafka::Error> owned(error);
  if (owned) FAIL(owned->str());
}

void produce_count(RdKafka::Producer& producer, const std::string& topic, const std::string& key,
                   int64_t count) {
  std::string value;
  REQUIRE(serdes::int64()->serialize(count, value));
  REQUIRE(producer.produce(topic, 0, RdKafka::Producer::RK_MSG_COPY, value.data(), value.size(),
                           key.data(), key.size(), now_ms(), nullptr) == RdKafka::ERR_NO_ERROR);
}

kafka::KafkaPtr restore_client(const std::string& application_id, const char* isolation) {
  return kafka::make_client(RD_KAFKA_CONSUMER,
                            kafka::make_conf({{"bootstrap.servers", bootstrap_servers()},
                                              {"group.id", application_id + "-restore"},
                                              {"enable.auto.commit", "false"},
                                              {"enable.partition.eof", "true"},
                                              {"fetch.wait.max.ms", "50"},
                                              {"isolation.level", isolation}}));
}

// Commits {a: 1, b: 1}, then leaves {a: 2, c: 1} in an open transaction,
// acknowledged by the broker, and restores the store while it is open.
// `commit` then ends that transaction one way or the other.
void restore_past_open_transaction(bool commit) {
  const std::string application_id = unique_name("reader");
  const std::string changelog = application_id + "-counts-changelog";
  create_topic(changelog, 1, {{"cleanup.policy", "compact"}});
  std::string error;
  auto conf = producer_conf(application_id + "-previous-owner");
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  REQUIRE(producer);
  require_ok(producer->init_transactions(30000));
  require_ok(producer->begin_transaction());
  produce_count(*producer, changelog, "a", 1);
  produce_count(*producer, changelog, "b", 1);
  require_ok(producer->commit_transaction(30000));
  require_ok(producer->begin_transaction());
  produce_count(*producer, changelog, "a", 2);
  produce_count(*producer, changelog, "c", 1);
  REQUIRE(producer->flush(30000) == RdKafka::ERR_NO_ERROR);

  Topology topology = processor_count_topology("in", "out");
  topology.build();
  const auto directory = std::filesystem::temp_directory_path() / application_id / "0_0";
  std::filesystem::remove_all(directory.parent_path());
  auto task = std::make_shared<Task>(topology, application_id, directory);
  {
    state::ChangelogReader reader(restore_client(application_id, "read_committed"),
                                  restore_client(application_id, "read_uncommitted"), {}, [] {});
    reader.submit({task});

    // The committed records are restored; the open transaction holds the rest.
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (reader.restored_records() < 2 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(10ms);
    REQUIRE(reader.restored_records() == 2);
    // The consumer's end (the stable offset) is reached within a fetch of 50 ms:
    // a reader that took it for the restore's end would report within 2 s.
    CHECK_FALSE(task->wait_restored(2s));

    if (commit)
      require_ok(producer->commit_transaction(30000));
    else
      require_ok(producer->abort_transaction(30000));
    REQUIRE(task->wait_restored(30s));
    CHECK(task->failure().empty());
  }
  CHECK(task->count("b") == 1);
  if (commit) {
    CHECK(task->count("a") == 2);
    CHECK(task->count("c") == 1);
  } else {
    CHECK(task->count("a") == 1);
    CHECK_FALSE(task->count("c").has_value());
  }
  task.reset();
  std::filesystem::remove_all(directory.parent_path());
  delete_topic(changelog);
}

}  // namespace

TEST_CASE(
    "under exactly-once a restore waits for a transaction open on its changelog and keeps its "
    "writes when it commits",
    "[kafka][state][eos]") {
  restore_past_open_transaction(true);
}

TEST_CASE(
    "under exactly-once a restore waits for a transaction open on its changelog and drops its "
    "writes when it aborts",
    "[kafka][state][eos]") {
  restore_past_open_transaction(false);
}

TEST_CASE(
    "a restore written in sorted batches across threads keeps each key's last value, in full and "
    "as a tail onto checkpointed files",
    "[kafka][state][restore]") {
  const std::string application_id = unique_name("reader-batches");
  const std::string changelog = application_id + "-counts-changelog";
  create_topic(changelog, 1, {{"cleanup.policy", "compact"}});
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string error;
  REQUIRE(conf->set("bootstrap.servers", bootstrap_servers(), error) == RdKafka::Conf::CONF_OK);
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  REQUIRE(producer);
  // Every key updated once per round, the rounds one after the other: a batch
  // holds several updates of a key, which must stay in order.
  const int keys = 5000;
  auto produce_rounds = [&](int64_t from, int64_t to) {
    for (int64_t round = from; round <= to; ++round)
      for (int key = 0; key < keys; ++key) {
        produce_count(*producer, changelog, "key-" + std::to_string(key), round);
        producer->poll(0);
      }
    REQUIRE(producer->flush(30000) == RdKafka::ERR_NO_ERROR);
  };
  Topology topology = processor_count_topology("in", "out");
  topology.build();
  const auto directory = std::filesystem::temp_directory_path() / application_id / "0_0";
  std::filesystem::remove_all(directory.parent_path());
  // A task on `directory` restores `records` records and ends with every key
  // at `expected`; then it closes cleanly (a checkpoint) or not.
  auto restore = [&](uint64_t records, int64_t expected, bool clean) {
    auto task = std::make_shared<Task>(topology, application_id, directory);
    state::ChangelogReader reader(restore_client(application_id, "read_uncommitted"),
                                  restore_client(application_id, "read_uncommitted"), {}, [] {});
    reader.submit({task});
    REQUIRE(task->wait_restored(60s));
    CHECK(task->failure().empty());
    CHECK(reader.restored_records() == records);
    int wrong = 0;
    for (int key = 0; key < keys; ++key)
      if (task->count("key-" + std::to_string(key)) != expected) ++wrong;
    CHECK(wrong == 0);
    // The store, opened again as usual after a whole changelog went through
    // the vector memtable, iterates and takes writes.
    CHECK(task->state().restores_concurrently("counts"));
    CHECK(task->counts().all().to_vector().size() == static_cast<std::size_t>(keys));
    task->counts().put("written-after", expected);
    CHECK(task->count("written-after") == expected);
    task->counts().remove("written-after");
    if (clean) task->close_clean();
  };

  // 30,000 records: past the size from which a whole changelog is restored
  // through the vector memtable.
  produce_rounds(1, 6);
  restore(6 * keys, 6, true);
  produce_rounds(7, 8);
  restore(2 * keys, 8, false);
  std::filesystem::remove_all(directory.parent_path());
  delete_topic(changelog);
}
