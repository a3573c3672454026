// Broker faults on a 3-node cluster (replication factor 3, min.insync.replicas
// 2) while a keyed count runs under exactly_once_v2 and at_least_once side by
// side: a broker killed, a broker paused, a rolling restart, and instances
// killed in the middle of broker faults. Every key's final count must equal
// its inputs (exactly-once) or reach them (at-least-once), and no instance may
// exit by itself; the stall after each fault is reported, not asserted.
#include <catch2/catch.hpp>

#include "faults/fault_run.h"
#include "support/kafka_cluster.h"

using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

// Small enough for two cores shared with three brokers, large enough that
// every partition has records in flight at any moment.
constexpr int kKeys = 1000;
constexpr int kPerSecond = 1000;
constexpr int kInstances = 2;

}  // namespace

TEST_CASE("a broker SIGKILLed and started again 15 s later loses and duplicates nothing",
          "[faults][broker-kill]") {
  FaultRun run("broker-kill", kKeys, kPerSecond, kInstances);
  run.run_for(5s);
  run.kill_broker(2, 15s);
  run.run_for(15s);
  run.finish();
}

TEST_CASE("a broker paused (SIGSTOP) for 30 s loses and duplicates nothing",
          "[faults][broker-pause]") {
  FaultRun run("broker-pause", kKeys, kPerSecond, kInstances);
  run.run_for(5s);
  run.pause_broker(3, 30s);
  run.run_for(20s);
  run.finish();
}

TEST_CASE("a rolling restart of all three brokers loses and duplicates nothing",
          "[faults][rolling-restart]") {
  FaultRun run("rolling-restart", kKeys, kPerSecond, kInstances);
  run.run_for(5s);
  run.rolling_restart();
  run.run_for(10s);
  run.finish();
}

TEST_CASE("instances SIGKILLed while a broker is down or paused lose and duplicate nothing",
          "[faults][instance-kill]") {
  FaultRun run("instance-kill", kKeys, kPerSecond, kInstances);
  run.run_for(5s);
  wait_in_sync();
  run.fault("broker 1 SIGKILLed for 15.0 s, instance 0 of each application SIGKILLed 5 s in", [&] {
    cluster_command("kill-node 1");
    run.run_for(5s);
    for (auto& application : run.applications()) application.kill_instance(0);
    run.run_for(10s);
    cluster_command("start-node 1");
  });
  run.run_for(5s);
  wait_in_sync();
  run.fault("broker 2 paused for 20.0 s, instance 1 of each application SIGKILLed 5 s in", [&] {
    cluster_command("pause-node 2");
    run.run_for(5s);
    for (auto& application : run.applications()) application.kill_instance(1);
    run.run_for(15s);
    cluster_command("resume-node 2");
  });
  run.run_for(15s);
  run.finish();
}
