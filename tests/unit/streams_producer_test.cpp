// runtime::StreamsProducer against a producer whose answers the test sets:
// which transactional calls it makes, what it retries, and what it reports
// when a transaction cannot commit or abort.
#include "runtime/streams_producer.h"

#include <deque>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/scripted_clients.h"

using namespace rill;
using kafka::TransactionError;
using kafka::TransactionResult;
using rill::testing::ScriptedProducer;
using runtime::StreamsProducer;
using namespace std::chrono_literals;

namespace {

const TransactionError kTimedOut{"Local: Timed out", true, false};
const TransactionError kAbortable{"6 message(s) timed out (requires epoch bump)", false, false};
const TransactionError kFenced{"Producer fenced by newer instance", false, true};

struct Started {
  ScriptedProducer* producer;
  StreamsProducer transactions;
};

Started started() {
  auto scripted = std::make_unique<ScriptedProducer>();
  ScriptedProducer* producer = scripted.get();
  StreamsProducer transactions(std::move(scripted), 0ms);
  transactions.init(1s);
  transactions.begin();
  producer->calls.clear();
  return {producer, std::move(transactions)};
}

const std::vector<kafka::TopicPartition> kOffsets{{"orders", 0, 42}, {"orders", 1, 7}};

}  // namespace

TEST_CASE("a commit sends the offsets, commits and begins the next transaction",
          "[unit][streams-producer]") {
  auto [producer, transactions] = started();
  const auto result = transactions.commit(kOffsets, true);
  CHECK(result.committed);
  CHECK_FALSE(result.rewind_reason);
  CHECK(producer->calls == std::vector<std::string>{"send_offsets", "commit", "begin"});
  CHECK(producer->offsets_sent.size() == 2);
  CHECK(transactions.transaction_open());

  // Closing: the last commit begins nothing.
  producer->calls.clear();
  CHECK(transactions.commit({}, false).committed);
  CHECK(producer->calls == std::vector<std::string>{"commit"});
  CHECK_FALSE(transactions.transaction_open());
}

TEST_CASE("calls librdkafka calls retriable are made again", "[unit][streams-producer]") {
  auto [producer, transactions] = started();
  producer->answers["send_offsets"] = {kTimedOut};
  producer->answers["commit"] = {kTimedOut, kTimedOut};
  CHECK(transactions.commit(kOffsets, true).committed);
  CHECK(producer->calls == std::vector<std::string>{"send_offsets", "send_offsets", "commit",
                                                    "commit", "commit", "begin"});
}

TEST_CASE("a transaction that cannot commit is reported for a rewind, then aborted",
          "[unit][streams-producer]") {
  auto [producer, transactions] = started();
  producer->answers["commit"] = {kAbortable};
  const auto result = transactions.commit(kOffsets, true);
  CHECK_FALSE(result.committed);
  REQUIRE(result.rewind_reason);
  CHECK_THAT(*result.rewind_reason, Catch::Contains("the transaction did not commit") &&
                                        Catch::Contains("requires epoch bump"));
  CHECK_FALSE(result.replace_producer);
  CHECK(transactions.transaction_open());
  CHECK(transactions.abort(1s) == StreamsProducer::AbortResult::kAborted);
  CHECK_FALSE(transactions.transaction_open());
}

TEST_CASE("a fenced producer is reported for replacement, and cannot abort",
          "[unit][streams-producer]") {
  auto [producer, transactions] = started();
  producer->answers["send_offsets"] = {kFenced};
  const auto result = transactions.commit(kOffsets, true);
  CHECK_FALSE(result.committed);
  CHECK(result.replace_producer);
  CHECK(producer->calls == std::vector<std::string>{"send_offsets"});
  producer->answers["abort"] = {kFenced};
  CHECK(transactions.abort(1s) == StreamsProducer::AbortResult::kReplaceProducer);
}

TEST_CASE("a committed transaction whose successor cannot begin asks for a rewind",
          "[unit][streams-producer]") {
  auto [producer, transactions] = started();
  producer->answers["begin"] = {kFenced};
  const auto result = transactions.commit(kOffsets, true);
  CHECK(result.committed);
  REQUIRE(result.rewind_reason);
  CHECK_THAT(*result.rewind_reason, Catch::StartsWith("cannot begin a transaction"));
  CHECK(result.replace_producer);
  CHECK_FALSE(transactions.transaction_open());
}

TEST_CASE("an abort that times out is an error to try again, and init retries, then names the call",
          "[unit][streams-producer]") {
  auto [producer, transactions] = started();
  producer->answers["abort"] = {kTimedOut};
  CHECK_THROWS_WITH(transactions.abort(1s),
                    Catch::StartsWith("cannot abort the transaction: Local: Timed out"));
  CHECK(transactions.transaction_open());

  auto scripted = std::make_unique<ScriptedProducer>();
  scripted->answers["init"] =
      std::deque<TransactionResult>(StreamsProducer::kMaxAttempts, kTimedOut);
  ScriptedProducer& never_ready = *scripted;
  StreamsProducer fresh(std::move(scripted), 0ms);
  CHECK_THROWS_WITH(fresh.init(1s), Catch::StartsWith("cannot initialize transactions"));
  CHECK(never_ready.calls.size() == static_cast<std::size_t>(StreamsProducer::kMaxAttempts));
  CHECK_FALSE(fresh.ready());
}
