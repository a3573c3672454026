// Proves the test harness: a real broker is reachable, topics can be created,
// and every record produced comes back.
#include <set>

#include <catch2/catch.hpp>

#include "support/kafka_cluster.h"

using namespace rill::testing;

TEST_CASE("the real broker round-trips every record", "[kafka][harness]") {
  const std::string topic = unique_name("harness");
  create_topic(topic, 3);

  std::vector<TestRecord> sent;
  for (int i = 0; i < 3000; ++i)
    sent.push_back({"key-" + std::to_string(i % 97),
                    "value-" + std::to_string(i),
                    -1,
                    -1,
                    now_ms() + i,
                    {{"n", std::to_string(i)}}});
  produce(topic, sent);

  auto received = consume(topic, sent.size(), std::chrono::seconds(60));
  REQUIRE(received.size() == sent.size());

  std::set<std::string> values;
  std::set<int32_t> partitions;
  for (const auto& record : received) {
    values.insert(*record.value);
    partitions.insert(record.partition);
    REQUIRE(record.headers.size() == 1);
    CHECK(*record.value == "value-" + record.headers[0].second);
  }
  CHECK(values.size() == sent.size());
  CHECK(partitions == std::set<int32_t>{0, 1, 2});
  delete_topic(topic);
}
