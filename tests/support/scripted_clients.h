// Clients whose answers a test sets, for the runtime's logic that decides on
// them (where to resume, what to commit, when to replace the producer), as
// Kafka Streams tests its task manager with a MockConsumer and MockProducer.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "kafka/consumer.h"
#include "kafka/producer.h"

namespace rill::testing {

class ScriptedConsumer final : public kafka::Consumer {
 public:
  // What committed() answers: an error for the whole request, or offsets.
  std::optional<rd_kafka_resp_err_t> lookup_error;
  std::vector<kafka::TopicPartition> committed_offsets;
  std::optional<rd_kafka_resp_err_t> seek_error;
  // Every seek asked for.
  std::vector<kafka::TopicPartition> sought;
  // Called with each seek's positions as it is asked for.
  std::function<void(const std::vector<kafka::TopicPartition>&)> on_seek;

  // What commit() answers: an error, or nothing (the offsets join `commits`).
  std::optional<rd_kafka_resp_err_t> commit_error;
  std::vector<std::vector<kafka::TopicPartition>> commits;
  // What position() answers for a partition; others come back without an offset.
  std::vector<kafka::TopicPartition> fetch_positions;

  std::vector<kafka::TopicPartition> committed(std::vector<kafka::TopicPartition> partitions,
                                               std::chrono::milliseconds) override {
    if (lookup_error) throw kafka::Error(*lookup_error, "cannot read the committed offsets");
    if (committed_offsets.empty()) {
      // Nothing set: every partition has its last commit among `commits`, or none.
      for (kafka::TopicPartition& tp : partitions) tp.offset = last_commit(tp);
      return partitions;
    }
    REQUIRE(partitions.size() == committed_offsets.size());
    return committed_offsets;
  }
  std::vector<kafka::TopicPartition> seek(std::vector<kafka::TopicPartition> positions) override {
    sought.insert(sought.end(), positions.begin(), positions.end());
    if (on_seek) on_seek(positions);
    if (seek_error)
      for (kafka::TopicPartition& tp : positions) tp.error = *seek_error;
    return positions;
  }
  void commit(const std::vector<kafka::TopicPartition>& offsets) override {
    if (commit_error) throw kafka::Error(*commit_error, "committing offsets failed");
    commits.push_back(offsets);
  }
  std::vector<kafka::TopicPartition> position(
      std::vector<kafka::TopicPartition> partitions) override {
    for (kafka::TopicPartition& tp : partitions)
      for (const kafka::TopicPartition& known : fetch_positions)
        if (known.topic == tp.topic && known.partition == tp.partition) tp.offset = known.offset;
    return partitions;
  }

 private:
  int64_t last_commit(const kafka::TopicPartition& tp) const {
    int64_t offset = RD_KAFKA_OFFSET_INVALID;
    for (const auto& commit : commits)
      for (const kafka::TopicPartition& committed : commit)
        if (committed.topic == tp.topic && committed.partition == tp.partition)
          offset = committed.offset;
    return offset;
  }
};

class ScriptedProducer final : public kafka::TransactionalProducer {
 public:
  // Answers per call, in order; a call with none left succeeds.
  std::map<std::string, std::deque<kafka::TransactionResult>> answers;
  std::vector<std::string> calls;
  std::vector<kafka::TopicPartition> offsets_sent;

  kafka::TransactionResult init_transactions(std::chrono::milliseconds) override {
    return answer("init");
  }
  kafka::TransactionResult begin_transaction() override { return answer("begin"); }
  kafka::TransactionResult send_offsets_to_transaction(
      const std::vector<kafka::TopicPartition>& offsets) override {
    offsets_sent = offsets;
    return answer("send_offsets");
  }
  kafka::TransactionResult commit_transaction() override { return answer("commit"); }
  kafka::TransactionResult abort_transaction(std::chrono::milliseconds) override {
    return answer("abort");
  }

 private:
  kafka::TransactionResult answer(const std::string& call) {
    calls.push_back(call);
    auto& queue = answers[call];
    if (queue.empty()) return std::nullopt;
    kafka::TransactionResult result = queue.front();
    queue.pop_front();
    return result;
  }
};

}  // namespace rill::testing
