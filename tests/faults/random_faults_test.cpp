// The faults of broker_faults_test.cpp in a random order with random targets
// and durations, drawn from a seed: the same seed gives the same schedule.
// RILL_FAULT_SEED sets the seed (default 1) and RILL_FAULT_MINUTES the length
// of the schedule (default 1, brief for CI); scripts/faults runs it at length.
#include <cstdlib>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "faults/fault_run.h"
#include "support/kafka_cluster.h"

using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

struct Step {
  enum class Kind { kBrokerKill, kBrokerPause, kBrokerRestart, kInstanceKill } kind;
  int target = 0;                       // broker node (1-3) or instance index
  std::chrono::milliseconds length{0};  // how long a broker stays down or paused
  std::chrono::milliseconds then{0};    // quiet time after the step
};

unsigned seed_from_environment() {
  const char* text = std::getenv("RILL_FAULT_SEED");
  return text != nullptr && *text != '\0' ? static_cast<unsigned>(std::stoul(text)) : 1u;
}

std::chrono::milliseconds length_from_environment() {
  const char* text = std::getenv("RILL_FAULT_MINUTES");
  const double minutes = text != nullptr && *text != '\0' ? std::stod(text) : 1.0;
  return std::chrono::milliseconds(static_cast<int64_t>(minutes * 60000));
}

// Steps until their planned time (lengths and quiet times; a restart counted
// as 20 s) fills `length`. At most one broker is out at a time: with
// min.insync.replicas 2, two would stop every write, which is an outage, not
// a fault to ride through.
std::vector<Step> schedule(unsigned seed, std::chrono::milliseconds length, int instances) {
  std::mt19937 random(seed);
  auto between = [&](int low, int high) {
    return std::uniform_int_distribution<int>(low, high)(random);
  };
  std::vector<Step> steps;
  std::chrono::milliseconds planned{0};
  while (planned < length) {
    Step step{};
    switch (between(0, 3)) {
      case 0:
        step = {Step::Kind::kBrokerKill, between(1, 3), std::chrono::seconds(between(5, 20))};
        break;
      case 1:
        step = {Step::Kind::kBrokerPause, between(1, 3), std::chrono::seconds(between(5, 30))};
        break;
      case 2:
        step = {Step::Kind::kBrokerRestart, between(1, 3), 20s};
        break;
      default:
        step = {Step::Kind::kInstanceKill, between(0, instances - 1), 0ms};
        break;
    }
    step.then = std::chrono::seconds(between(3, 10));
    planned += step.length + step.then;
    steps.push_back(step);
  }
  return steps;
}

}  // namespace

TEST_CASE("a seeded random schedule of broker and instance faults loses and duplicates nothing",
          "[faults][random]") {
  const unsigned seed = seed_from_environment();
  const auto length = length_from_environment();
  constexpr int kInstances = 2;
  const auto steps = schedule(seed, length, kInstances);
  WARN("fault schedule: seed " << seed << " (RILL_FAULT_SEED), " << steps.size() << " faults over "
                               << length.count() / 1000 << " s planned (RILL_FAULT_MINUTES)");

  FaultRun run("random-" + std::to_string(seed), 1000, 1000, kInstances);
  run.run_for(5s);
  for (const auto& step : steps) {
    switch (step.kind) {
      case Step::Kind::kBrokerKill:
        run.kill_broker(step.target, step.length);
        break;
      case Step::Kind::kBrokerPause:
        run.pause_broker(step.target, step.length);
        break;
      case Step::Kind::kBrokerRestart:
        run.restart_broker(step.target);
        break;
      case Step::Kind::kInstanceKill:
        run.kill_instances(step.target);
        break;
    }
    run.run_for(step.then);
  }
  run.run_for(10s);
  run.finish();
}
