// An instance's membership of its consumer group: joining it, taking on and
// giving up partitions inside a rebalance, and how the group's members share
// its partitions.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <librdkafka/rdkafka.h>

#include "kafka/consumer.h"

namespace rill::kafka {

// Makes the consumer's queue the one where the client's events (errors,
// statistics) arrive too, so that one poll serves them all.
void redirect_events_to_consumer(rd_kafka_t* consumer);

// Leaves the group: revokes the assignment through the rebalance callback and
// commits nothing of its own. Returns librdkafka's error, if any.
rd_kafka_resp_err_t close_consumer(rd_kafka_t* consumer);

// Before close_consumer: unsubscribes, then polls (serving the rebalance
// callback, dropping any record) until nothing is assigned or `limit` passes.
// Under cooperative rebalancing librdkafka 2.0.2's close can wait out the
// session timeout when an assignment arrives during it (librdkafka #4527);
// with no subscription and nothing assigned, it does not.
void give_up_assignment(rd_kafka_t* consumer, std::chrono::milliseconds limit);

// Destroys a consumer without leaving its group (its assignment was already
// dropped, or it never joined one). librdkafka 2.0.2's destroy can wait
// forever for its group handler to end, its main thread spinning (seen now and
// then at exit under load); past `limit` the handle is left to the end of the
// process and false is returned.
bool destroy_unclosed(KafkaPtr consumer,
                      std::chrono::milliseconds limit = std::chrono::seconds(10));

// Runs `work` on a thread of its own and waits for it at most `limit`: true
// when it finished. Past the limit the thread is left to finish, or to the end
// of the process.
bool finish_within(std::chrono::milliseconds limit, std::function<void()> work);

// Fetches exactly `partitions` from their offsets, outside any group
// rebalance; an empty list stops fetching. Throws Error.
void assign(rd_kafka_t* consumer, const std::vector<TopicPartition>& partitions);

// The partitions the consumer fetches now; throws Error.
std::vector<TopicPartition> assignment(rd_kafka_t* consumer);

struct Watermarks {
  int64_t low = 0;
  int64_t high = 0;
};
// A partition's first and end offsets as the consumer's last fetch of it
// reported them (the end is the high watermark), without asking the broker;
// nullopt before the first fetch.
std::optional<Watermarks> fetched_watermarks(rd_kafka_t* consumer, const std::string& topic,
                                             int32_t partition);

// Joins the group for `topics`; throws Error.
void subscribe(rd_kafka_t* consumer, const std::vector<std::string>& topics);

// Inside a cooperative rebalance: adds `partitions` to the assignment, or
// removes them from it; throws Error.
void incremental_assign(rd_kafka_t* consumer, const std::vector<TopicPartition>& partitions);
void incremental_unassign(rd_kafka_t* consumer, const std::vector<TopicPartition>& partitions);

// Whether the partitions being revoked were lost (the group moved on without
// this member) rather than handed over.
bool assignment_lost(rd_kafka_t* consumer);

// The next record (or consumer error) of a consumer that polls its own queue
// (redirect_events_to_consumer), serving rebalance callbacks and client
// events meanwhile; nullptr when none came within `timeout`.
MessagePtr poll_record(rd_kafka_t* consumer, std::chrono::milliseconds timeout);

// Stops and restarts fetching of assigned partitions; the position stays.
void pause(rd_kafka_t* consumer, const std::vector<TopicPartition>& partitions);
void resume(rd_kafka_t* consumer, const std::vector<TopicPartition>& partitions);

// Commits `offsets` without waiting for the coordinator's answer: for offsets
// kept elsewhere and committed to the group only so that its lag shows.
void commit_async(rd_kafka_t* consumer, const std::vector<TopicPartition>& offsets);

// The member id the group coordinator gave this consumer ("" before it joined).
std::string member_id(rd_kafka_t* consumer);

struct MemberAssignment {
  std::string member_id;
  std::vector<TopicPartition> partitions;
  std::string client_id;
  std::string host;
};

// Every member of `group` with the partitions the group assigned it, or
// nullopt when the broker gives no answer within `timeout` or the group
// cannot be described.
std::optional<std::vector<MemberAssignment>> describe_group(rd_kafka_t* client,
                                                            const std::string& group,
                                                            std::chrono::milliseconds timeout);

}  // namespace rill::kafka
