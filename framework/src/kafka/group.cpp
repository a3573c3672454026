#include "kafka/group.h"

#include <exception>
#include <future>
#include <memory>
#include <thread>
#include <utility>

#include "kafka/handles.h"

namespace rill::kafka {

void redirect_events_to_consumer(rd_kafka_t* consumer) {
  rd_kafka_poll_set_consumer(consumer);
}

rd_kafka_resp_err_t close_consumer(rd_kafka_t* consumer) {
  return rd_kafka_consumer_close(consumer);
}

void give_up_assignment(rd_kafka_t* consumer, std::chrono::milliseconds limit) {
  if (rd_kafka_unsubscribe(consumer) != RD_KAFKA_RESP_ERR_NO_ERROR) return;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!assignment(consumer).empty() && std::chrono::steady_clock::now() < deadline)
    poll_record(consumer, std::chrono::milliseconds(100));
}

bool destroy_unclosed(KafkaPtr consumer, std::chrono::milliseconds limit) {
  if (!consumer) return true;
  return finish_within(limit, [handle = consumer.release()] {
    rd_kafka_destroy_flags(handle, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
  });
}

bool finish_within(std::chrono::milliseconds limit, std::function<void()> work) {
  auto finished = std::make_shared<std::promise<void>>();
  std::future<void> done = finished->get_future();
  std::thread([work = std::move(work), finished] {
    try {
      work();
      finished->set_value();
    } catch (...) {
      finished->set_exception(std::current_exception());
    }
  }).detach();
  return done.wait_for(limit) == std::future_status::ready;
}

std::vector<TopicPartition> assignment(rd_kafka_t* consumer) {
  rd_kafka_topic_partition_list_t* list = nullptr;
  if (rd_kafka_resp_err_t err = rd_kafka_assignment(consumer, &list))
    throw Error(err, "cannot read the assignment");
  const PartitionListPtr owned(list);
  return from_list(*owned);
}

void assign(rd_kafka_t* consumer, const std::vector<TopicPartition>& partitions) {
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
  if (partitions.empty()) {
    err = rd_kafka_assign(consumer, nullptr);
  } else {
    PartitionListPtr list = to_list(partitions);
    err = rd_kafka_assign(consumer, list.get());
  }
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) throw Error(err, "cannot assign partitions");
}

std::optional<Watermarks> fetched_watermarks(rd_kafka_t* consumer, const std::string& topic,
                                             int32_t partition) {
  Watermarks marks;
  if (rd_kafka_get_watermark_offsets(consumer, topic.c_str(), partition, &marks.low, &marks.high) !=
          RD_KAFKA_RESP_ERR_NO_ERROR ||
      marks.low < 0 || marks.high < 0)
    return std::nullopt;
  return marks;
}

MessagePtr poll_record(rd_kafka_t* consumer, std::chrono::milliseconds timeout) {
  return MessagePtr(rd_kafka_consumer_poll(consumer, static_cast<int>(timeout.count())));
}

void pause(rd_kafka_t* consumer, const std::vector<TopicPartition>& partitions) {
  if (partitions.empty()) return;
  if (rd_kafka_resp_err_t err = rd_kafka_pause_partitions(consumer, to_list(partitions).get()))
    throw Error(err, "cannot pause partitions");
}

void resume(rd_kafka_t* consumer, const std::vector<TopicPartition>& partitions) {
  if (partitions.empty()) return;
  if (rd_kafka_resp_err_t err = rd_kafka_resume_partitions(consumer, to_list(partitions).get()))
    throw Error(err, "cannot resume partitions");
}

void commit_async(rd_kafka_t* consumer, const std::vector<TopicPartition>& offsets) {
  if (offsets.empty()) return;
  // The answer is not awaited: an error only delays what the group's lag shows.
  [[maybe_unused]] const rd_kafka_resp_err_t err =
      rd_kafka_commit(consumer, to_list(offsets).get(), 1);
}

void subscribe(rd_kafka_t* consumer, const std::vector<std::string>& topics) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
  for (const std::string& topic : topics)
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (const rd_kafka_resp_err_t err = rd_kafka_subscribe(consumer, list.get());
      err != RD_KAFKA_RESP_ERR_NO_ERROR)
    throw Error(err, "cannot subscribe");
}

void incremental_assign(rd_kafka_t* consumer, const std::vector<TopicPartition>& partitions) {
  if (ErrorPtr error{rd_kafka_incremental_assign(consumer, to_list(partitions).get())})
    throw Error(error, "cannot assign partitions");
}

void incremental_unassign(rd_kafka_t* consumer, const std::vector<TopicPartition>& partitions) {
  if (ErrorPtr error{rd_kafka_incremental_unassign(consumer, to_list(partitions).get())})
    throw Error(error, "cannot unassign partitions");
}

bool assignment_lost(rd_kafka_t* consumer) {
  return rd_kafka_assignment_lost(consumer) != 0;
}

std::string member_id(rd_kafka_t* consumer) {
  char* id = rd_kafka_memberid(consumer);
  std::string result = id != nullptr ? id : "";
  rd_kafka_mem_free(consumer, id);
  return result;
}

std::optional<std::vector<MemberAssignment>> describe_group(rd_kafka_t* client,
                                                            const std::string& group,
                                                            std::chrono::milliseconds timeout) {
  const char* name = group.c_str();
  QueuePtr queue(rd_kafka_queue_new(client));
  rd_kafka_DescribeConsumerGroups(client, &name, 1, nullptr, queue.get());
  EventPtr event(rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count())));
  if (!event || rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR)
    return std::nullopt;
  const auto* result = rd_kafka_event_DescribeConsumerGroups_result(event.get());
  size_t count = 0;
  const auto** groups =
      result != nullptr ? rd_kafka_DescribeConsumerGroups_result_groups(result, &count) : nullptr;
  if (count != 1 || rd_kafka_ConsumerGroupDescription_error(groups[0]) != nullptr)
    return std::nullopt;
  std::vector<MemberAssignment> members;
  for (size_t i = 0; i < rd_kafka_ConsumerGroupDescription_member_count(groups[0]); ++i) {
    const auto* member = rd_kafka_ConsumerGroupDescription_member(groups[0], i);
    MemberAssignment assignment{rd_kafka_MemberDescription_consumer_id(member),
                                {},
                                rd_kafka_MemberDescription_client_id(member),
                                rd_kafka_MemberDescription_host(member)};
    const auto* partitions =
        rd_kafka_MemberAssignment_partitions(rd_kafka_MemberDescription_assignment(member));
    for (int j = 0; partitions != nullptr && j < partitions->cnt; ++j)
      assignment.partitions.push_back({partitions->elems[j].topic, partitions->elems[j].partition});
    members.push_back(std::move(assignment));
  }
  return members;
}

}  // namespace rill::kafka
