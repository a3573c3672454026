// Waiting for a condition instead of sleeping for a guess.
#pragma once

#include <chrono>
#include <thread>

namespace rill::testing {

// Checks `condition` every `every` until it holds or `timeout` has passed;
// returns whether it held.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = std::chrono::seconds(60),
                std::chrono::milliseconds every = std::chrono::milliseconds(50)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return condition();
    std::this_thread::sleep_for(every);
  }
  return true;
}

}  // namespace rill::testing
