// The client layer's requests against the real broker: what the runtime asks
// of the cluster outside the consumer group protocol.
#include <catch2/catch.hpp>

#include "kafka/handles.h"
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
