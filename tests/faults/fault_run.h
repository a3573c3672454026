// The harness of the broker-fault tests. A run feeds keyed records at a steady
// rate into one input topic read by two applications side by side, the keyed
// count of tests/faults/keyed-count.yaml under exactly_once_v2 and under
// at_least_once, each on a few `rill run` instances, so that both guarantees
// live through the very same faults. The test injects faults (brokers killed,
// paused, restarted through scripts/kafka; instances killed) and the run keeps
// their timeline. At the end an independent read_committed reader checks every
// key's final count against the input, and the report gives, per fault and
// application, how long committed output stood still after it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/process.h"

namespace RdKafka {
class Conf;
class Producer;
}  // namespace RdKafka

namespace rill::testing {

// Produces records to `topic` from its own thread at a steady rate, keyed
// "key-0", "key-1", ... in turn, with the key as the value too; a broker fault
// delays acknowledgements, never the rate at which records are handed over.
class SteadyProducer {
 public:
  SteadyProducer(const std::string& topic, int keys, int per_second);
  ~SteadyProducer();
  SteadyProducer(const SteadyProducer&) = delete;
  SteadyProducer& operator=(const SteadyProducer&) = delete;

  // Stops producing and waits up to `timeout` for the acknowledgements.
  void stop(std::chrono::milliseconds timeout);
  int64_t sent() const { return sent_.load(); }
  int64_t acknowledged() const { return acknowledged_.load(); }
  // Why the input stopped flowing ("" when it did not).
  std::string error() const;
  // Failed deliveries and producers replaced after a fatal error ("" when
  // none). The test counts the input as the topic holds it, so they are
  // reported, not failures.
  std::string troubles() const;

 private:
  class Delivery;
  void run(const std::string& topic, int keys, int per_second);
  // A new producer in place of one in a fatal state; false when none can be made.
  bool replace_producer();

  std::unique_ptr<Delivery> delivery_;
  std::unique_ptr<RdKafka::Conf> conf_;
  std::unique_ptr<RdKafka::Producer> producer_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> sent_{0};
  std::atomic<int64_t> acknowledged_{0};
  mutable std::mutex error_mutex_;
  std::string error_;
  int64_t failed_deliveries_ = 0;
  std::string first_failed_delivery_;
  std::vector<std::string> replacements_;
  std::thread thread_;
};

// The instances of one application running keyed-count.yaml with `rill run`.
// An instance that exits by itself, or whose /healthz reports a state it only
// takes on its way out (PENDING_SHUTDOWN, ERROR) without being asked to stop,
// is noted and started again, as a supervisor with a liveness probe would.
class CountApplication {
 public:
  CountApplication(const std::string& guarantee, const std::string& input, int instances);
  CountApplication(CountApplication&&) = default;

  const std::string& guarantee() const { return guarantee_; }
  const std::string& output() const { return output_; }
  int instances() const { return static_cast<int>(instances_.size()); }

  // Notes and restarts every instance that exited or failed by itself.
  void supervise();
  // A crash and its restart: SIGKILL instance `index`, then start it again
  // with the same state directory.
  void kill_instance(int index);
  bool every_instance_holds_tasks();
  // One line per exit or failure of an instance on its own, with the end of
  // its log.
  const std::vector<std::string>& own_failures() const { return own_failures_; }
  // SIGTERM to every instance; their exit codes (nullopt: still running after
  // a minute).
  std::vector<std::optional<int>> stop();
  // The end of every instance's log, for failure messages.
  std::string log_tails(std::size_t bytes) const;
  // Why the counts do not settle: how far the output is readable and the
  // input and repartition topics committed, per partition, and each
  // instance's state and last complaints.
  std::string diagnosis();
  // Where the counts of `wrong` keys went wrong: how many of their records
  // the repartition topic still holds, where their committed output skips or
  // repeats a count (an update that escaped an abort, or a replay over state
  // that kept it), which output partition (counting task) falls short, and
  // each instance's last rewinds.
  // `began_ms` is the wall clock the times are given from.
  std::string miscount_diagnosis(const std::map<std::string, int64_t>& expected,
                                 const std::vector<std::string>& wrong, int64_t began_ms);
  // How often a key's count goes down in the store's changelog, with the
  // first few such steps (key, values, partition and offset, time after
  // `began_ms`). A restore resumes from a key's last changelog value and
  // only adds to it, so a step down is a write that landed after a later
  // owner's: a former owner's, which the next restore would take for the
  // count.
  std::pair<int64_t, std::string> changelog_steps_down(int64_t began_ms);

 private:
  ChildProcess start(int index);
  // The state instance `index` reports on /healthz ("" while it has no
  // endpoint yet or does not answer).
  std::string reported_state(std::size_t index);
  void note_failure(std::size_t index, const std::string& what);

  std::string guarantee_;
  std::string input_;
  std::string application_id_;
  std::string output_;
  std::vector<std::string> state_dirs_;
  std::vector<int> starts_;
  std::vector<std::optional<ChildProcess>> instances_;
  std::vector<int> metrics_ports_;  // 0 until read from the instance's log
  std::vector<std::string> own_failures_;
  std::chrono::steady_clock::time_point last_probe_;
  std::chrono::steady_clock::time_point began_ = std::chrono::steady_clock::now();
};

class FaultRun {
 public:
  // Creates the topics, starts the input (`per_second` records per second
  // over `keys` keys) and an application of `instances` instances per
  // guarantee; returns once every instance holds tasks and output flows.
  FaultRun(std::string scenario, int keys, int per_second, int instances);
  // Puts back any broker a failed test left down or paused.
  ~FaultRun();
  FaultRun(const FaultRun&) = delete;
  FaultRun& operator=(const FaultRun&) = delete;

  // Lets time pass while input flows, supervising the instances.
  void run_for(std::chrono::milliseconds duration);
  // Records `inject`, described by `what`, as one fault of the timeline.
  void fault(const std::string& what, const std::function<void()>& inject);

  // Faults of the timeline. A broker fault first waits until every replica is
  // in sync, so that it never takes the last in-sync copy of a partition.
  void kill_broker(int node, std::chrono::milliseconds down);
  void pause_broker(int node, std::chrono::milliseconds paused);
  // A graceful restart (SIGTERM, start, back in sync).
  void restart_broker(int node);
  // Every broker restarted in turn, each once the last one is back in sync.
  void rolling_restart();
  // SIGKILL and restart instance `index` of every application.
  void kill_instances(int index);

  std::vector<CountApplication>& applications() { return applications_; }

  // Stops the input, waits until the counts settle, stops the instances, then
  // checks every key's count and that no instance exited by itself, and
  // reports the stalls (Catch2 warnings and the report file).
  void finish();

 private:
  struct Fault {
    std::string what;
    int64_t start_ms = 0;  // wall clock, as the brokers' timestamps
    int64_t end_ms = 0;    // when the injection ended (the broker back...)
  };

  void report(const std::string& line);

  std::string scenario_;
  int keys_;
  std::string input_;
  std::vector<CountApplication> applications_;
  std::unique_ptr<SteadyProducer> producer_;
  std::vector<Fault> faults_;
  int64_t began_ms_ = 0;
};

}  // namespace rill::testing
