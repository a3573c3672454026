// When the changelog reader takes a restore for stalled (state/restore_watch.h):
// only after it read nothing for the whole limit, and never while it waits at
// its consumer's end.
#include "state/restore_watch.h"

#include <catch2/catch.hpp>

using rill::state::RestoreWatch;
using namespace std::chrono_literals;

TEST_CASE("a restore that reads nothing for the limit is stalled, and watched anew after",
          "[unit][restore]") {
  const auto start = RestoreWatch::Clock::now();
  RestoreWatch watch(start);
  CHECK_FALSE(watch.stalled(0, false, start, 30s));
  CHECK_FALSE(watch.stalled(0, false, start + 29s, 30s));
  CHECK(watch.stalled(0, false, start + 31s, 30s));
  // Assigned anew: another full limit before the next verdict.
  CHECK_FALSE(watch.stalled(0, false, start + 50s, 30s));
  CHECK(watch.stalled(0, false, start + 62s, 30s));
}

TEST_CASE("a restore that reads records is never stalled", "[unit][restore]") {
  const auto start = RestoreWatch::Clock::now();
  RestoreWatch watch(start);
  for (int second = 0; second <= 120; second += 20)
    CHECK_FALSE(watch.stalled(second * 100, false, start + std::chrono::seconds(second), 30s));
}

TEST_CASE("a restore waiting at its consumer's end is not stalled", "[unit][restore]") {
  const auto start = RestoreWatch::Clock::now();
  RestoreWatch watch(start);
  CHECK_FALSE(watch.stalled(500, true, start + 10s, 30s));
  CHECK_FALSE(watch.stalled(500, true, start + 100s, 30s));
  // Once the consumer reads on from there, silence counts again.
  CHECK_FALSE(watch.stalled(500, false, start + 101s, 30s));
  CHECK(watch.stalled(500, false, start + 132s, 30s));
}
