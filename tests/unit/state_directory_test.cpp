// The locks of state directories: two instances sharing a state.dir never
// open the same task's stores at once, nor take the same process id.
#include "state/state_directory.h"

#include <filesystem>

#include <catch2/catch.hpp>
#include <unistd.h>

#include "rill/rill.h"

#include "state/state_manager.h"
#include "support/count_topology.h"

using namespace rill;

TEST_CASE("a task directory is locked while its stores are open", "[unit][state]") {
  Topology topology = testing::processor_count_topology("in", "out");
  topology.build();
  const auto& sub = topology.subtopologies().at(0);
  const auto directory = std::filesystem::temp_directory_path() / "rill-lock-test" / "0_0";
  std::filesystem::remove_all(directory.parent_path());

  state::StateManager first(topology, sub, TaskId{0, 0}, "app", directory, nullptr);
  first.open(
      nullptr, [] { return int64_t{0}; }, nullptr);
  REQUIRE(first.get("counts") != nullptr);

  state::StateManager second(topology, sub, TaskId{0, 0}, "app", directory, nullptr);
  CHECK_THROWS_WITH(
      second.open(
          nullptr, [] { return int64_t{0}; }, nullptr),
      Catch::Contains("is locked by another instance") && Catch::Contains(directory.string()));

  first.close(true);  // releases the lock and leaves a checkpoint
  CHECK(std::filesystem::exists(directory / ".checkpoint"));
  state::StateManager third(topology, sub, TaskId{0, 0}, "app", directory, nullptr);
  third.open(
      nullptr, [] { return int64_t{0}; }, nullptr);
  CHECK(third.get("counts") != nullptr);
  third.close(false);
  std::filesystem::remove_all(directory.parent_path());
}

TEST_CASE(
    "an instance keeps its process id across restarts, and a second one sharing the "
    "directory takes another",
    "[unit][state]") {
  const auto directory = std::filesystem::temp_directory_path() / "rill-process-id-test";
  std::filesystem::remove_all(directory);
  const state::ProcessId first = state::claim_process_id(directory);
  REQUIRE(first.lock_fd >= 0);
  CHECK(first.id.size() == 32);
  const state::ProcessId second = state::claim_process_id(directory);
  CHECK(second.lock_fd == -1);
  CHECK(second.id != first.id);
  ::close(first.lock_fd);
  const state::ProcessId restarted = state::claim_process_id(directory);
  REQUIRE(restarted.lock_fd >= 0);
  CHECK(restarted.id == first.id);
  ::close(restarted.lock_fd);
  std::filesystem::remove_all(directory);
}
