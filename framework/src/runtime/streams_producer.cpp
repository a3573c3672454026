#include "runtime/streams_producer.h"

#include <stdexcept>
#include <thread>

namespace rill::runtime {
namespace {

[[noreturn]] void throw_failed(const char* doing, const kafka::TransactionError& error) {
  throw std::runtime_error(std::string("cannot ") + doing + ": " + error.message);
}

}  // namespace

StreamsProducer::StreamsProducer(std::unique_ptr<kafka::TransactionalProducer> producer,
                                 std::chrono::milliseconds retry_backoff)
    : producer_(std::move(producer)), retry_backoff_(retry_backoff) {}

template <class Call>
kafka::TransactionResult StreamsProducer::retrying(Call call) {
  for (int attempt = 1;; ++attempt) {
    kafka::TransactionResult error = call();
    if (!error || !error->retriable || attempt == kMaxAttempts) return error;
    std::this_thread::sleep_for(retry_backoff_ * attempt);
  }
}

void StreamsProducer::init(std::chrono::milliseconds timeout) {
  if (auto error = retrying([&] { return producer_->init_transactions(timeout); }))
    throw_failed("initialize transactions", *error);
  ready_ = true;
}

void StreamsProducer::begin() {
  if (auto error = producer_->begin_transaction()) throw_failed("begin a transaction", *error);
  open_ = true;
}

StreamsProducer::CommitResult StreamsProducer::commit(
    const std::vector<kafka::TopicPartition>& offsets, bool begin_next) {
  kafka::TransactionResult error;
  if (!open_) error = producer_->begin_transaction();
  if (!error) open_ = true;
  if (!error && !offsets.empty())
    error = retrying([&] { return producer_->send_offsets_to_transaction(offsets); });
  if (!error) error = retrying([&] { return producer_->commit_transaction(); });
  if (error) return {false, "the transaction did not commit: " + error->message, error->fatal};
  open_ = false;
  if (!begin_next) return {true, std::nullopt, false};
  if (auto begin_error = producer_->begin_transaction())
    return {true, "cannot begin a transaction: " + begin_error->message, begin_error->fatal};
  open_ = true;
  return {true, std::nullopt, false};
}

StreamsProducer::AbortResult StreamsProducer::abort(std::chrono::milliseconds timeout) {
  if (auto error = producer_->abort_transaction(timeout)) {
    if (error->fatal) return AbortResult::kReplaceProducer;
    throw_failed("abort the transaction", *error);
  }
  open_ = false;
  return AbortResult::kAborted;
}

}  // namespace rill::runtime
