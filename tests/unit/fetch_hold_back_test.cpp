// When the reader of a consumer's queue wakes librdkafka's fetcher
// (kafka/fetch_hold_back.h).
#include "kafka/fetch_hold_back.h"

#include <chrono>

#include <catch2/catch.hpp>

#include "kafka/handles.h"

using rill::kafka::FetchHoldBack;
using Change = FetchHoldBack::Change;

TEST_CASE("a queue that reached the bound before a read is held back", "[fetch-hold-back]") {
  FetchHoldBack hold_back(100);
  // The fetch brought the queue to 101; the read took 5 of them at once.
  CHECK(hold_back.observe(96, 5) == Change::kHeldBack);
  CHECK(hold_back.held_back());
  CHECK(hold_back.observe(51, 45) == Change::kNone);
  CHECK(hold_back.observe(50, 1) == Change::kDrained);
  CHECK_FALSE(hold_back.held_back());
}

TEST_CASE("a queue that stayed under the bound is never held back", "[fetch-hold-back]") {
  FetchHoldBack hold_back(100);
  CHECK(hold_back.observe(60, 39) == Change::kNone);
  CHECK(hold_back.observe(0, 60) == Change::kNone);
  CHECK_FALSE(hold_back.held_back());
}

TEST_CASE("a fetch waker sends its wake-ups without holding up the thread that asks",
          "[fetch-hold-back]") {
  // No broker listens here: each watermark query waits for its timeout.
  rill::kafka::KafkaPtr consumer = rill::kafka::make_client(
      RD_KAFKA_CONSUMER, rill::kafka::make_conf({{"bootstrap.servers", "127.0.0.1:1"},
                                                 {"group.id", "fetch-waker-test"},
                                                 {"socket.timeout.ms", "1000"},
                                                 {"log_level", "0"}}));
  const auto blocking_start = std::chrono::steady_clock::now();
  rill::kafka::wake_fetcher(consumer.get(), "orders", 0);
  const auto round_trip = std::chrono::steady_clock::now() - blocking_start;
  REQUIRE(round_trip >= std::chrono::milliseconds(500));

  rill::kafka::FetchWaker waker(consumer.get());
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 4; ++i) waker.wake("orders", i % 2);
  CHECK(std::chrono::steady_clock::now() - start < round_trip / 2);
  waker.stop();
}
