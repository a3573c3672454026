// When the reader of a consumer's queue wakes librdkafka's fetcher
// (kafka/fetch_hold_back.h).
#include "kafka/fetch_hold_back.h"

#include <catch2/catch.hpp>

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
