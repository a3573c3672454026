// The embedded default of `rill run`: librdkafka's in-process mock cluster,
// which speaks the Kafka protocol on a local port and keeps everything in
// memory. For trying pipelines out; it has no compaction, no admin API and
// no durability.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace rill::cli {

class EmbeddedCluster {
 public:
  EmbeddedCluster();
  ~EmbeddedCluster();
  EmbeddedCluster(const EmbeddedCluster&) = delete;
  EmbeddedCluster& operator=(const EmbeddedCluster&) = delete;

  const std::string& bootstrap_servers() const { return bootstrap_; }
  void create_topic(const std::string& topic, int32_t partitions);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string bootstrap_;
};

}  // namespace rill::cli
