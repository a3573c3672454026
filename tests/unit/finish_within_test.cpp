// kafka::finish_within: a librdkafka call that can wait forever (a consumer's
// destroy in librdkafka 2.0.2) is waited for a bounded time.
#include <chrono>
#include <future>
#include <stdexcept>

#include <catch2/catch.hpp>

#include "kafka/group.h"

using namespace std::chrono_literals;

TEST_CASE("work that finishes in time is waited for", "[unit][handles]") {
  bool ran = false;
  CHECK(rill::kafka::finish_within(10s, [&ran] { ran = true; }));
  CHECK(ran);
  CHECK(rill::kafka::finish_within(10s, [] { throw std::runtime_error("failed"); }));
}

TEST_CASE("work that does not finish in time is left to finish on its own", "[unit][handles]") {
  auto release = std::make_shared<std::promise<void>>();
  std::shared_future<void> released = release->get_future().share();
  auto finished = std::make_shared<std::promise<void>>();
  std::future<void> done = finished->get_future();
  const auto started = std::chrono::steady_clock::now();
  CHECK_FALSE(rill::kafka::finish_within(50ms, [released, finished] {
    released.wait();
    finished->set_value();
  }));
  CHECK(std::chrono::steady_clock::now() - started >= 50ms);
  release->set_value();
  CHECK(done.wait_for(10s) == std::future_status::ready);
}
