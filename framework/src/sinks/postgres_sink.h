// The Kafka side of a PostgreSQL sink: for each of its connections, a thread
// with its own group consumer of the sink's topic, which batches the rows and
// hands them to a PostgresWriter, resuming each partition from the offset the
// database holds.
// Its faults stay its own: while the database is away, the partitions pause
// and the writer retries with backoff; the topology's tasks go on.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "rill/postgres.h"

#include "kafka/handles.h"
#include "metrics/registry.h"

namespace rill::sinks {

struct PostgresSinkSettings {
  std::string application_id;
  std::string sink;
  // The sink's topic, full name.
  std::string topic;
  PostgresTable table;
  std::string dead_letter_topic;
  // Client properties (bootstrap servers, security, client.id); the sink sets
  // its group and consumer behaviour itself.
  std::map<std::string, std::string> consumer_properties;
  std::map<std::string, std::string> producer_properties;
  // Makes a librdkafka configuration that logs through rill's log.
  std::function<kafka::ConfPtr(const std::map<std::string, std::string>&)> make_conf;
  // Stops the instance: a rejected row under RejectedRows::kFail.
  std::function<void(const std::string& reason)> fail;
  std::chrono::milliseconds max_backoff{10000};
};

class PostgresSink {
 public:
  explicit PostgresSink(PostgresSinkSettings settings);
  ~PostgresSink();
  PostgresSink(const PostgresSink&) = delete;
  PostgresSink& operator=(const PostgresSink&) = delete;

  // Starts the thread; throws ConfigError for client properties librdkafka refuses.
  void start();
  // Writes what it holds when the database takes it, leaves the group and
  // joins the thread.
  void stop();

  metrics::SinkValues status() const;

 private:
  class Loop;
  // One per connection (PostgresTable::connections), each a member of the
  // sink's consumer group.
  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<std::thread> threads_;
};

}  // namespace rill::sinks
