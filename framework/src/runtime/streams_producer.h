// The transactions of an instance under exactly-once, as Kafka Streams'
// StreamsProducer: one producer per consumer (KIP-447) whose transactions
// begin, carry the group's offsets, commit or abort here. It retries what
// librdkafka says may succeed and reports what happened; what becomes of the
// tasks (a rewind to the last commit, a new producer) is for its caller.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kafka/producer.h"

namespace rill::runtime {

class StreamsProducer {
 public:
  // `retry_backoff` grows with each attempt of a call librdkafka calls
  // retriable, up to kMaxAttempts.
  explicit StreamsProducer(
      std::unique_ptr<kafka::TransactionalProducer> producer,
      std::chrono::milliseconds retry_backoff = std::chrono::milliseconds(100));

  static constexpr int kMaxAttempts = 10;

  // Makes the producer's transactions start anew: earlier ones of its
  // transactional.id, left open by a crash, are aborted. After a timeout the
  // next call resumes where this one left off. Throws naming the call.
  void init(std::chrono::milliseconds timeout);
  // Throws naming the call.
  void begin();

  struct CommitResult {
    bool committed = false;
    // Set when the tasks must go back to the last commit: the transaction did
    // not commit, or the next one could not begin.
    std::optional<std::string> rewind_reason;
    // With a rewind: the producer is fenced or failed; only a new one goes on.
    bool replace_producer = false;
  };
  // Commits the open transaction (beginning one if none is open) with
  // `offsets`, then begins the next one when `begin_next`.
  CommitResult commit(const std::vector<kafka::TopicPartition>& offsets, bool begin_next);

  enum class AbortResult { kAborted, kReplaceProducer };
  // Aborts the open transaction. kReplaceProducer when the producer cannot
  // (fenced or failed). Throws naming the call on other errors: try again.
  AbortResult abort(std::chrono::milliseconds timeout);

  bool ready() const { return ready_; }
  bool transaction_open() const { return open_; }

 private:
  template <class Call>
  kafka::TransactionResult retrying(Call call);

  std::unique_ptr<kafka::TransactionalProducer> producer_;
  std::chrono::milliseconds retry_backoff_;
  bool ready_ = false;
  bool open_ = false;
};

}  // namespace rill::runtime
