// runtime::TaskManager with clients whose answers the test sets: what it
// commits, and what becomes of the tasks when a commit, an abort or a lookup
// of the committed offsets fails, or when the producer is fenced. The
// producers and the consumer whose queues tasks read are librdkafka handles
// that never connect: nothing here reaches a broker.
#include "runtime/task_manager.h"

#include <optional>
#include <thread>

#include <catch2/catch.hpp>

#include "rill/streams_builder.h"

#include "kafka/producer.h"
#include "metrics/registry.h"
#include "runtime/error_handling.h"
#include "support/scripted_clients.h"

using namespace rill;
using namespace std::chrono_literals;
using kafka::TopicPartition;
using kafka::TransactionError;
using rill::testing::ScriptedConsumer;
using rill::testing::ScriptedProducer;
using runtime::TaskManager;

namespace {

const TransactionError kAbortable{"6 message(s) timed out (requires epoch bump)", false, false};
const TransactionError kFenced{"Producer fenced by newer instance", false, true};

// Forwards to a scripted producer that the harness keeps, so the test reads
// its calls after the task manager dropped it (a fenced producer is).
class Forwarding final : public kafka::TransactionalProducer {
 public:
  explicit Forwarding(ScriptedProducer& to) : to_(to) {}
  kafka::TransactionResult init_transactions(std::chrono::milliseconds timeout) override {
    return to_.init_transactions(timeout);
  }
  kafka::TransactionResult begin_transaction() override { return to_.begin_transaction(); }
  kafka::TransactionResult send_offsets_to_transaction(
      const std::vector<TopicPartition>& offsets) override {
    return to_.send_offsets_to_transaction(offsets);
  }
  kafka::TransactionResult commit_transaction() override { return to_.commit_transaction(); }
  kafka::TransactionResult abort_transaction(std::chrono::milliseconds timeout) override {
    return to_.abort_transaction(timeout);
  }

 private:
  ScriptedProducer& to_;
};

kafka::KafkaPtr unconnected(rd_kafka_type_t type) {
  return kafka::make_client(type, kafka::make_conf({{"bootstrap.servers", "127.0.0.1:1"},
                                                    {"group.id", "task-manager-test"},
                                                    {"log_level", "0"}}));
}

Topology passing_through() {
  StreamsBuilder builder;
  builder.stream("orders", serdes::string(), serdes::string()).to("out");
  Topology topology = builder.build();
  topology.build();
  return topology;
}

// A task manager over scripted clients, with the instance around it.
struct Harness {
  explicit Harness(bool exactly_once)
      : config{{"application.id", "app"},
               {"bootstrap.servers", "127.0.0.1:1"},
               {"processing.guarantee", exactly_once ? "exactly_once_v2" : "at_least_once"}},
        errors(config),
        metrics("app", "app", false) {
    TaskManager::Settings settings;
    settings.application_id = "app";
    settings.exactly_once = exactly_once;
    settings.delivery_timeout = 1s;
    settings.call_timeout = 1s;
    settings.task_timeout = 300s;
    settings.metrics_enabled = false;
    TaskManager::Clients clients;
    clients.consumer = consumer_handle.get();
    clients.group = &group;
    clients.producer = unconnected(RD_KAFKA_PRODUCER);
    clients.make_producer = [this] {
      ++producers_made;
      return unconnected(RD_KAFKA_PRODUCER);
    };
    clients.transactional = [this](rd_kafka_t*) {
      transactional.push_back(std::make_unique<ScriptedProducer>());
      return std::make_unique<Forwarding>(*transactional.back());
    };
    TaskManager::Shared shared{topology, deliveries, errors, gate, counters, metrics, stopping};
    shared.schedule = [](const std::shared_ptr<runtime::ActiveTask>&) {};
    shared.before_create = [this](const TaskId& id) {
      if (id == refuse_to_create) throw std::runtime_error("task " + id.to_string() + " refused");
    };
    shared.fail_instance = [this](const std::string& message) { instance_error = message; };
    manager =
        std::make_unique<TaskManager>(std::move(settings), std::move(clients), std::move(shared));
    manager->start();
  }

  // The task of orders[partition], with its input processed up to `offset`.
  runtime::InputPartition& processed(int32_t partition, int64_t offset) {
    auto& task = manager->tasks().at(TaskId{0, partition});
    auto& input = *task->inputs().front();
    input.next_offset = offset;
    return input;
  }
  ScriptedProducer& transactions() { return *transactional.back(); }
  // A record for `topic` the cluster never acknowledges: the producer never
  // connects, so a commit's flush gives up after delivery_timeout.
  void hold_unacknowledged(const std::string& topic) {
    kafka::TopicPtr handle = kafka::open_topic(manager->producer(), topic);
    kafka::HeadersPtr no_headers;
    REQUIRE_FALSE(kafka::produce(manager->producer(), handle.get(), 0, "key", "unacknowledged", 0,
                                 no_headers, nullptr));
  }

  StreamsConfig config;
  Topology topology = passing_through();
  kafka::KafkaPtr consumer_handle = unconnected(RD_KAFKA_CONSUMER);
  ScriptedConsumer group;
  runtime::DeliveryTracker deliveries{runtime::DeliveryPolicy{}};
  runtime::ErrorHandling errors;
  runtime::TaskGate gate;
  runtime::TaskCounters counters;
  metrics::Registry metrics;
  std::atomic<bool> stopping{false};
  int producers_made = 0;
  std::vector<std::unique_ptr<ScriptedProducer>> transactional;
  std::string instance_error;
  // Creating this task throws, as a state directory still locked would.
  std::optional<TaskId> refuse_to_create;
  std::unique_ptr<TaskManager> manager;
};

const std::vector<TopicPartition> kTwoPartitions{{"orders", 0}, {"orders", 1}};

}  // namespace

TEST_CASE("at least once, a commit sends each partition's next offset to the group",
          "[unit][task-manager]") {
  Harness harness(false);
  harness.manager->assign(kTwoPartitions);
  CHECK(harness.manager->task_ids() == "0_0 0_1");
  CHECK(harness.counters.active_tasks.load() == 2);
  harness.processed(0, 5);
  // Partition 1's records are all processed and its consumer is past a
  // transaction marker: the position is committed, so lag can reach 0.
  harness.processed(1, 7);
  harness.group.fetch_positions = {{"orders", 1, 8}};

  REQUIRE(harness.manager->commit());
  REQUIRE(harness.group.commits.size() == 1);
  const std::vector<TopicPartition> committed = harness.group.commits[0];
  REQUIRE(committed.size() == 2);
  CHECK(committed[0].to_string() == "orders[0]");
  CHECK(committed[0].offset == 5);
  CHECK(committed[1].offset == 8);
  CHECK(harness.counters.commits.load() == 1);

  // Nothing new: nothing is sent again, and the commit still counts.
  REQUIRE(harness.manager->commit());
  CHECK(harness.group.commits.size() == 1);
}

TEST_CASE("a position past records no task processed is never committed", "[unit][task-manager]") {
  Harness harness(false);
  harness.manager->assign(kTwoPartitions);
  harness.processed(0, 5);
  // The consumer says it handed on records up to 40, but the task processed
  // up to 5: committing 41 would lose 6 to 40 if another instance took over.
  harness.group.fetch_positions = {{"orders", 0, 41}};
  REQUIRE(harness.manager->commit());
  REQUIRE(harness.group.commits.size() == 1);
  REQUIRE(harness.group.commits[0].size() == 1);
  CHECK(harness.group.commits[0][0].offset == 5);
}

TEST_CASE("a commit the group refuses is retried later and counts toward task.timeout.ms",
          "[unit][task-manager]") {
  Harness harness(false);
  harness.manager->assign(kTwoPartitions);
  harness.processed(0, 5);
  harness.group.commit_error = RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE;
  CHECK_FALSE(harness.manager->commit());
  CHECK(harness.counters.commits.load() == 0);
  const auto now = std::chrono::steady_clock::now();
  CHECK_FALSE(harness.manager->timed_out(now));
  const auto later = harness.manager->timed_out(now + 301s);
  REQUIRE(later);
  CHECK_THAT(*later,
             Catch::Contains("task.timeout.ms") && Catch::Contains("Coordinator not available"));
  // The tasks were not rewound: at least once, the same offsets go next time.
  CHECK(harness.manager->tasks().size() == 2);

  harness.group.commit_error.reset();
  REQUIRE(harness.manager->commit());
  REQUIRE(harness.group.commits.size() == 1);
  CHECK(harness.group.commits[0][0].offset == 5);
  CHECK_FALSE(harness.manager->timed_out(now + 301s));
}

TEST_CASE("exactly once, a commit puts the offsets in the transaction and begins the next",
          "[unit][task-manager]") {
  Harness harness(true);
  CHECK(harness.transactions().calls == std::vector<std::string>{"init", "begin"});
  harness.manager->assign(kTwoPartitions);
  harness.processed(1, 3);
  REQUIRE(harness.manager->commit());
  CHECK(harness.transactions().calls ==
        std::vector<std::string>{"init", "begin", "send_offsets", "commit", "begin"});
  REQUIRE(harness.transactions().offsets_sent.size() == 1);
  CHECK(harness.transactions().offsets_sent[0].offset == 3);
  CHECK(harness.group.commits.empty());
}

TEST_CASE("a transaction that cannot commit aborts and takes every task back to the last commit",
          "[unit][task-manager]") {
  Harness harness(true);
  harness.manager->assign(kTwoPartitions);
  const auto* before = harness.manager->tasks().at(TaskId{0, 0}).get();
  harness.processed(0, 9);
  harness.processed(1, 4);
  harness.group.committed_offsets = {{"orders", 0, 6}, {"orders", 1, 2}};
  harness.transactions().answers["commit"] = {kAbortable};

  CHECK_FALSE(harness.manager->commit());
  CHECK(harness.counters.aborted_transactions.load() == 1);
  CHECK(harness.transactions().calls ==
        std::vector<std::string>{"init", "begin", "send_offsets", "commit", "abort", "begin"});
  // The same producer goes on; the tasks are new, reading from the commit.
  CHECK(harness.producers_made == 0);
  REQUIRE(harness.manager->tasks().size() == 2);
  CHECK(harness.manager->tasks().at(TaskId{0, 0}).get() != before);
  CHECK_FALSE(harness.manager->recovery_pending());
  REQUIRE(harness.group.sought.size() == 2);
  CHECK(harness.group.sought[0].offset == 6);
  CHECK(harness.group.sought[1].offset == 2);
  CHECK(harness.manager->tasks().at(TaskId{0, 0})->inputs().front()->committed_offset == 6);
}

TEST_CASE(
    "after a failed transaction, a partition resumes where this instance's last commit took it "
    "when the group answers an older offset",
    "[unit][task-manager]") {
  Harness harness(true);
  harness.manager->assign(kTwoPartitions);
  harness.processed(0, 2255);
  harness.processed(1, 40);
  REQUIRE(harness.manager->commit());
  // The next transaction fails (the group no longer knows the member), and
  // the group answers offsets from before the commit that succeeded, as one
  // whose coordinator was cut off did: resuming there counted the records in
  // between twice.
  harness.processed(0, 2428);
  harness.transactions().answers["send_offsets"] = {
      TransactionError{"Broker: Unknown member", false, false}};
  harness.group.committed_offsets = {{"orders", 0, 2087}, {"orders", 1, 40}};
  CHECK_FALSE(harness.manager->commit());
  REQUIRE(harness.group.sought.size() == 2);
  CHECK(harness.group.sought[0].offset == 2255);
  CHECK(harness.group.sought[1].offset == 40);
  CHECK(harness.manager->tasks().at(TaskId{0, 0})->inputs().front()->committed_offset == 2255);

  // The same when the partitions are lost and assigned again.
  harness.manager->revoke(kTwoPartitions, true);
  harness.manager->assign(kTwoPartitions);
  const std::vector<TopicPartition> starts = harness.manager->start_positions(kTwoPartitions);
  REQUIRE(starts.size() == 2);
  CHECK(starts[0].offset == 2255);
  CHECK(starts[1].offset == 40);
  // A partition another owner took further starts where that owner's commit is.
  harness.group.committed_offsets = {{"orders", 0, 3000}, {"orders", 1, 41}};
  const std::vector<TopicPartition> later = harness.manager->start_positions(kTwoPartitions);
  CHECK(later[0].offset == 3000);
  CHECK(later[1].offset == 41);
}

TEST_CASE(
    "exactly once, a revocation that cannot commit aborts the transaction, which holds the "
    "closed task's outputs without its offsets",
    "[unit][task-manager]") {
  Harness harness(true);
  harness.manager->assign(kTwoPartitions);
  const auto* staying = harness.manager->tasks().at(TaskId{0, 1}).get();
  harness.processed(0, 9);
  harness.processed(1, 4);
  harness.group.committed_offsets = {{"orders", 1, 2}};
  harness.hold_unacknowledged("out");

  harness.manager->revoke({{"orders", 0}}, false);
  // Committed later with partition 1's offsets, the transaction would make
  // task 0_0's outputs and changelog writes visible while its offsets stay
  // where they were: the partition's next owner would process them again.
  CHECK(harness.transactions().calls ==
        std::vector<std::string>{"init", "begin", "abort", "begin"});
  CHECK(harness.counters.aborted_transactions.load() == 1);
  CHECK(harness.manager->task_ids() == "0_1");
  CHECK(harness.manager->tasks().at(TaskId{0, 1}).get() != staying);
  REQUIRE(harness.group.sought.size() == 1);
  CHECK(harness.group.sought[0].to_string() == "orders[1]");
  CHECK(harness.group.sought[0].offset == 2);
}

TEST_CASE(
    "at least once, a revocation that cannot commit lets the producer go with what it holds, and "
    "the other tasks go back to the last commit",
    "[unit][task-manager]") {
  Harness harness(false);
  harness.manager->assign(kTwoPartitions);
  const auto* staying = harness.manager->tasks().at(TaskId{0, 1}).get();
  harness.processed(0, 9);
  harness.processed(1, 4);
  harness.group.committed_offsets = {{"orders", 1, 2}};
  // A changelog write the cluster does not acknowledge in time: delivered
  // later, it would land after the writes of the partition's next owner.
  harness.hold_unacknowledged("app-changelog");

  harness.manager->revoke({{"orders", 0}}, false);
  CHECK(harness.group.commits.empty());
  CHECK(harness.producers_made == 1);
  // The new producer holds no message. rd_kafka_outq_len would also count the
  // error events of its failed connection attempts; a flush that does not wait
  // counts the messages alone.
  CHECK(rd_kafka_flush(harness.manager->producer(), 0) == RD_KAFKA_RESP_ERR_NO_ERROR);
  CHECK(harness.manager->task_ids() == "0_1");
  CHECK(harness.manager->tasks().at(TaskId{0, 1}).get() != staying);
  REQUIRE(harness.group.sought.size() == 1);
  CHECK(harness.group.sought[0].to_string() == "orders[1]");
  CHECK(harness.group.sought[0].offset == 2);
}

TEST_CASE("at least once, a revocation that commits keeps the producer and the other tasks",
          "[unit][task-manager]") {
  Harness harness(false);
  harness.manager->assign(kTwoPartitions);
  const auto* staying = harness.manager->tasks().at(TaskId{0, 1}).get();
  harness.processed(0, 9);
  harness.manager->revoke({{"orders", 0}}, false);
  REQUIRE(harness.group.commits.size() == 1);
  CHECK(harness.group.commits[0][0].offset == 9);
  CHECK(harness.producers_made == 0);
  CHECK(harness.manager->tasks().at(TaskId{0, 1}).get() == staying);
}

TEST_CASE("at least once, a lost assignment lets the producer go with what it holds",
          "[unit][task-manager]") {
  Harness harness(false);
  harness.manager->assign(kTwoPartitions);
  harness.processed(0, 9);
  harness.manager->revoke(kTwoPartitions, true);
  // Lost: another instance may own the partitions already, and nothing may
  // be committed for them.
  CHECK(harness.group.commits.empty());
  CHECK(harness.producers_made == 1);
  CHECK(harness.manager->tasks().empty());
  CHECK_FALSE(harness.manager->recovery_pending());
}

TEST_CASE("a fenced producer is replaced, with new transactions, and the tasks resume",
          "[unit][task-manager]") {
  Harness harness(true);
  harness.manager->assign(kTwoPartitions);
  harness.processed(0, 9);
  harness.group.committed_offsets = {{"orders", 0, 6}, {"orders", 1, 0}};
  harness.transactions().answers["send_offsets"] = {kFenced};

  CHECK_FALSE(harness.manager->commit());
  CHECK(harness.producers_made == 1);
  REQUIRE(harness.transactional.size() == 2);
  // The fenced producer cannot abort: it is dropped, not asked.
  CHECK(harness.transactional[0]->calls ==
        std::vector<std::string>{"init", "begin", "send_offsets"});
  CHECK(harness.transactions().calls == std::vector<std::string>{"init", "begin"});
  CHECK(harness.manager->tasks().size() == 2);
  CHECK_FALSE(harness.manager->recovery_pending());
  CHECK(harness.instance_error.empty());
}

TEST_CASE(
    "a failed lookup of the committed offsets keeps the tasks closed and retries, never "
    "reading from offset 0",
    "[unit][task-manager]") {
  Harness harness(false);
  harness.manager->assign(kTwoPartitions);
  harness.group.lookup_error = RD_KAFKA_RESP_ERR__TIMED_OUT;
  const auto rewound_at = std::chrono::steady_clock::now();
  harness.manager->rewind_all("a broker went away", false);
  CHECK(harness.manager->tasks().empty());
  CHECK(harness.manager->recovery_pending());
  CHECK(harness.group.sought.empty());
  // No commit while tasks wait to reopen.
  CHECK_FALSE(harness.manager->commit());

  // Partitions assigned meanwhile wait with the others.
  harness.manager->assign({{"orders", 2}});
  CHECK(harness.manager->tasks().empty());

  // Before the backoff is over nothing is tried; after it, the lookup works.
  harness.group.lookup_error.reset();
  harness.group.committed_offsets = {{"orders", 0, 11}, {"orders", 1, 12}, {"orders", 2, 13}};
  // Each partition has its input when it is sought: orders[2], assigned
  // meanwhile, has been fetched into the consumer's queue, and what the seek
  // fetched there before its task existed would be skipped.
  harness.group.on_seek = [&](const std::vector<TopicPartition>& positions) {
    for (const TopicPartition& tp : positions) {
      INFO(tp.to_string() << " sought before its task took its records");
      const auto task = harness.manager->tasks().find(TaskId{0, tp.partition});
      REQUIRE(task != harness.manager->tasks().end());
      CHECK(task->second->inputs().size() == 1);
    }
  };
  harness.manager->recover_when_due(rewound_at);
  CHECK(harness.manager->tasks().empty());
  harness.manager->recover_when_due(rewound_at + 10s);
  CHECK_FALSE(harness.manager->recovery_pending());
  CHECK(harness.manager->task_ids() == "0_0 0_1 0_2");
  REQUIRE(harness.group.sought.size() == 3);
  for (const TopicPartition& tp : harness.group.sought) CHECK(tp.offset > 10);
}

TEST_CASE(
    "exactly once, a resume that cannot create every task creates none, and the next attempt "
    "gives each partition one input",
    "[unit][task-manager]") {
  Harness harness(true);
  harness.manager->assign(kTwoPartitions);
  harness.processed(0, 9);
  harness.processed(1, 4);
  harness.group.committed_offsets = {{"orders", 0, 6}, {"orders", 1, 2}};
  harness.transactions().answers["commit"] = {kAbortable};
  harness.refuse_to_create = TaskId{0, 1};
  const auto failed_at = std::chrono::steady_clock::now();
  CHECK_FALSE(harness.manager->commit());
  // Task 0_0 was created before 0_1 failed: left running, it would process
  // records into the transaction that the next attempt aborts, with its
  // store keeping them.
  CHECK(harness.manager->tasks().empty());
  CHECK(harness.manager->recovery_pending());

  harness.refuse_to_create.reset();
  harness.manager->recover_when_due(failed_at + 10s);
  CHECK_FALSE(harness.manager->recovery_pending());
  REQUIRE(harness.manager->task_ids() == "0_0 0_1");
  for (const auto& [id, task] : harness.manager->tasks()) {
    CHECK(task->inputs().size() == 1);
    CHECK(task->inputs().front()->committed_offset == (id.partition == 0 ? 6 : 2));
  }
}

TEST_CASE(
    "exactly once, a commit whose next transaction cannot begin rewinds to what it just "
    "committed",
    "[unit][task-manager]") {
  Harness harness(true);
  harness.manager->assign(kTwoPartitions);
  harness.processed(0, 9);
  harness.processed(1, 4);
  harness.transactions().answers["begin"] = {kAbortable};
  harness.group.committed_offsets = {{"orders", 0, 9}, {"orders", 1, 4}};
  CHECK(harness.manager->commit());
  CHECK(harness.transactions().calls ==
        std::vector<std::string>{"init", "begin", "send_offsets", "commit", "begin", "begin"});
  REQUIRE(harness.transactions().offsets_sent.size() == 2);
  CHECK(harness.transactions().offsets_sent[0].offset == 9);
  CHECK(harness.transactions().offsets_sent[1].offset == 4);
  // The tasks start again from the commit, on inputs of their own (the
  // closed ones are gone: nothing may write to them).
  CHECK_FALSE(harness.manager->recovery_pending());
  REQUIRE(harness.manager->task_ids() == "0_0 0_1");
  for (const auto& [id, task] : harness.manager->tasks()) {
    REQUIRE(task->inputs().size() == 1);
    CHECK(task->inputs().front()->next_offset == -1);
    CHECK(task->inputs().front()->committed_offset == (id.partition == 0 ? 9 : 4));
  }
}

TEST_CASE("a task its records failed goes to the uncaught exception handler",
          "[unit][task-manager]") {
  Harness harness(false);
  harness.manager->assign(kTwoPartitions);
  const auto& failing = harness.manager->tasks().at(TaskId{0, 1});
  // A worker reports; the state changes on the polling thread, at its turn.
  std::thread([&] { failing->report_failure("task 0_1: bad record", false); }).join();
  failing->report_failure("task 0_1: a later failure", false);
  CHECK(failing->task_state() == runtime::TaskState::kRunning);
  harness.group.committed_offsets = {{"orders", 1, 4}};

  SECTION("replaced: the task alone starts again from its last commit") {
    const auto* untouched = harness.manager->tasks().at(TaskId{0, 0}).get();
    auto response = harness.manager->update(
        [](const std::exception&) { return KafkaStreams::ExceptionResponse::kReplaceThread; });
    CHECK_FALSE(response);
    CHECK(harness.counters.failed_tasks.load() == 1);
    CHECK(harness.manager->tasks().at(TaskId{0, 0}).get() == untouched);
    CHECK(harness.manager->tasks().at(TaskId{0, 1})->task_state() == runtime::TaskState::kRunning);
    REQUIRE(harness.group.sought.size() == 1);
    CHECK(harness.group.sought[0].offset == 4);
  }
  SECTION("shut down: the failure stops the instance") {
    auto response = harness.manager->update(nullptr);
    REQUIRE(response);
    CHECK(*response == "task 0_1: bad record");
  }
}

TEST_CASE(
    "a fault of the cluster that comes back after the tasks resumed, before a commit, waits "
    "longer each time, and tasks one fault failed resume together",
    "[unit][task-manager]") {
  Harness harness(false);
  harness.manager->assign(kTwoPartitions);
  harness.group.committed_offsets = {{"orders", 0, 3}, {"orders", 1, 5}};
  auto fail_both = [&] {
    for (const TaskId id : {TaskId{0, 0}, TaskId{0, 1}})
      harness.manager->tasks().at(id)->report_failure(
          "task " + id.to_string() + ": cannot produce to topic 'out': Unknown topic", true);
    CHECK_FALSE(harness.manager->update(nullptr));
  };

  // The first time, both tasks resume at once, in one recovery.
  fail_both();
  CHECK_FALSE(harness.manager->recovery_pending());
  CHECK(harness.counters.rewinds.load() == 1);
  CHECK(harness.group.sought.size() == 2);
  CHECK(harness.manager->tasks().size() == 2);

  // Resumed, they meet the same fault before any commit: the partitions wait.
  fail_both();
  CHECK(harness.counters.rewinds.load() == 2);
  CHECK(harness.manager->recovery_pending());
  CHECK(harness.manager->tasks().empty());
  harness.manager->recover_when_due(std::chrono::steady_clock::now());
  CHECK(harness.manager->recovery_pending());
  CHECK(harness.group.sought.size() == 2);
  // Their attempt comes once the wait is over.
  harness.manager->recover_when_due(std::chrono::steady_clock::now() + 1s);
  CHECK_FALSE(harness.manager->recovery_pending());
  CHECK(harness.group.sought.size() == 4);
  REQUIRE(harness.manager->tasks().size() == 2);

  // Each time it comes back, the wait doubles: a wait that was enough the
  // first time no longer is.
  fail_both();
  REQUIRE(harness.manager->recovery_pending());
  harness.manager->recover_when_due(std::chrono::steady_clock::now() + 150ms);
  CHECK(harness.manager->recovery_pending());
  harness.manager->recover_when_due(std::chrono::steady_clock::now() + 1s);
  CHECK_FALSE(harness.manager->recovery_pending());

  // A commit ends the episode: the next fault resumes at once again.
  harness.processed(0, 3);
  harness.processed(1, 5);
  REQUIRE(harness.manager->commit());
  fail_both();
  CHECK_FALSE(harness.manager->recovery_pending());
  CHECK(harness.counters.rewinds.load() == 4);
}
