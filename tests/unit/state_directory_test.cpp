// The task directory lock: two instances sharing a state.dir never open the
// same task's stores at once.
#include <filesystem>

#include <catch2/catch.hpp>

#include "rill/rill.h"

#include "runtime/state_manager.h"
#include "support/count_topology.h"

using namespace rill;

TEST_CASE("a task directory is locked while its stores are open", "[unit][state]") {
  Topology topology = testing::processor_count_topology("in", "out");
  topology.build();
  const auto& sub = topology.subtopologies().at(0);
  const auto directory = std::filesystem::temp_directory_path() / "rill-lock-test" / "0_0";
  std::filesystem::remove_all(directory.parent_path());

  runtime::StateManager first(topology, sub, TaskId{0, 0}, "app", directory, nullptr);
  first.open(
      nullptr, [] { return int64_t{0}; }, nullptr);
  REQUIRE(first.get("counts") != nullptr);

  runtime::StateManager second(topology, sub, TaskId{0, 0}, "app", directory, nullptr);
  CHECK_THROWS_WITH(
      second.open(
          nullptr, [] { return int64_t{0}; }, nullptr),
      Catch::Contains("is locked by another instance") && Catch::Contains(directory.string()));

  first.close(true);  // releases the lock and leaves a checkpoint
  CHECK(std::filesystem::exists(directory / ".checkpoint"));
  runtime::StateManager third(topology, sub, TaskId{0, 0}, "app", directory, nullptr);
  third.open(
      nullptr, [] { return int64_t{0}; }, nullptr);
  CHECK(third.get("counts") != nullptr);
  third.close(false);
  std::filesystem::remove_all(directory.parent_path());
}
