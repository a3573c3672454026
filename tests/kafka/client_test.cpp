// The client layer's requests against the real broker: what the runtime asks
// of the cluster outside the consumer group protocol.
#include <chrono>
#include <set>

#include <catch2/catch.hpp>

#include "kafka/group.h"
#include "kafka/handles.h"
#include "kafka/records.h"
#include "support/kafka_cluster.h"

using namespace rill::testing;
using Catch::Matchers::Contains;

TEST_CASE("watermarks of many partitions come back in order", "[kafka][client]") {
  const std::string first = unique_name("watermarks-a");
  const std::string second = unique_name("watermarks-b");
  create_topic(first, 3);
  create_topic(second, 2);
  // Partition p of `first` gets p + 1 records, partition p of `second` 10 * (p + 1).
  std::vector<TestRecord> records;
  for (int32_t p = 0; p < 3; ++p)
    for (int32_t i = 0; i <= p; ++i) records.push_back({"k", "v", p, -1, now_ms(), {}});
  produce(first, records);
  records.clear();
  for (int32_t p = 0; p < 2; ++p)
    for (int32_t i = 0; i < 10 * (p + 1); ++i) records.push_back({"k", "v", p, -1, now_ms(), {}});
  produce(second, records);

  auto client = rill::kafka::make_client(
      RD_KAFKA_CONSUMER,
      rill::kafka::make_conf({{"bootstrap.servers", bootstrap_servers()}, {"group.id", first}}));
  const auto offsets = rill::kafka::watermarks(
      client.get(), {{second, 1}, {first, 0}, {first, 2}, {second, 0}}, std::chrono::seconds(30));
  using Offsets = std::vector<std::pair<int64_t, int64_t>>;
  CHECK(offsets == Offsets{{0, 20}, {0, 1}, {0, 3}, {0, 10}});
  CHECK(rill::kafka::watermarks(client.get(), {}, std::chrono::seconds(1)).empty());

  // A partition that does not exist is named once the retries run out.
  CHECK_THROWS_WITH(
      rill::kafka::watermarks(client.get(), {{first, 1}, {first, 7}}, std::chrono::seconds(2)),
      Contains(first + "[7]"));
  delete_topic(first);
  delete_topic(second);
}

TEST_CASE("a subscribed consumer finds itself and its partitions in its group's description",
          "[kafka][client]") {
  const std::string topic = unique_name("group-described");
  create_topic(topic, 3);
  const std::map<std::string, std::string> properties = {{"bootstrap.servers", bootstrap_servers()},
                                                         {"group.id", topic}};
  auto consumer = rill::kafka::make_client(RD_KAFKA_CONSUMER, rill::kafka::make_conf(properties));
  rill::kafka::redirect_events_to_consumer(consumer.get());
  auto events = rill::kafka::MessageQueue::of_consumer(consumer.get());
  CHECK(rill::kafka::member_id(consumer.get()).empty());
  rill::kafka::subscribe(consumer.get(), {topic});

  // Joined once the group has handed it every partition.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  auto assigned = [&] { return rill::kafka::assignment(consumer.get()).size() == 3; };
  rd_kafka_message_t* event = nullptr;
  while (!assigned() && std::chrono::steady_clock::now() < deadline)
    if (events.take(&event, 1, 100) == 1) rill::kafka::MessagePtr discarded(event);
  REQUIRE(assigned());
  const std::string me = rill::kafka::member_id(consumer.get());
  CHECK_FALSE(me.empty());

  auto admin = rill::kafka::make_client(
      RD_KAFKA_PRODUCER, rill::kafka::make_conf({{"bootstrap.servers", bootstrap_servers()}}));
  const auto members = rill::kafka::describe_group(admin.get(), topic, std::chrono::seconds(30));
  REQUIRE(members.has_value());
  REQUIRE(members->size() == 1);
  CHECK(members->front().member_id == me);
  std::set<int32_t> partitions;
  for (const auto& tp : members->front().partitions) {
    CHECK(tp.topic == topic);
    partitions.insert(tp.partition);
  }
  CHECK(partitions == std::set<int32_t>{0, 1, 2});

  rill::kafka::close_consumer(consumer.get());
  delete_topic(topic);
}
