// librdkafka's in-process mock cluster, which speaks the Kafka protocol on a
// local port and keeps everything in memory: the embedded default of `rill
// run`, for trying pipelines out. It has no compaction, no admin API and no
// durability.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace rill::kafka {

class MockCluster {
 public:
  explicit MockCluster(int brokers = 1);
  ~MockCluster();
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  const std::string& bootstrap_servers() const { return bootstrap_; }
  void create_topic(const std::string& topic, int32_t partitions);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string bootstrap_;
};

}  // namespace rill::kafka
