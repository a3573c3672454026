#include "support/kafka_cluster.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include "kafka/admin.h"
#include "support/command.h"

namespace rill::testing {
namespace {

std::unique_ptr<RdKafka::Conf> client_conf() {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  std::string error;
  if (conf->set("bootstrap.servers", bootstrap_servers(), error) != RdKafka::Conf::CONF_OK)
    FAIL(error);
  return conf;
}

void set(RdKafka::Conf& conf, const std::string& key, const std::string& value) {
  std::string error;
  if (conf.set(key, value, error) != RdKafka::Conf::CONF_OK) FAIL(key + ": " + error);
}

// The partition ids of an existing topic, asked through `client`.
std::vector<int32_t> partition_ids(RdKafka::Handle& client, const std::string& topic) {
  std::string error;
  std::unique_ptr<RdKafka::Topic> handle(RdKafka::Topic::create(&client, topic, nullptr, error));
  RdKafka::Metadata* raw = nullptr;
  REQUIRE(client.metadata(false, handle.get(), &raw, 10000) == RdKafka::ERR_NO_ERROR);
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  std::vector<int32_t> ids;
  for (const auto* partition : *metadata->topics()->at(0)->partitions())
    ids.push_back(partition->id());
  return ids;
}

std::string cluster_state_dir() {
  const char* dir = std::getenv("RILL_KAFKA_STATE_DIR");
  if (dir == nullptr || *dir == '\0')
    FAIL(
        "RILL_KAFKA_STATE_DIR is not set: these tests drive the cluster's nodes through "
        "scripts/kafka and need the state dir it was started with");
  return dir;
}

}  // namespace

std::string bootstrap_servers() {
  const char* bootstrap = std::getenv("RILL_KAFKA_BOOTSTRAP");
  if (bootstrap == nullptr || *bootstrap == '\0')
    FAIL(
        "RILL_KAFKA_BOOTSTRAP is not set: run the kafka tests through scripts/test, "
        "or start a broker with scripts/kafka start and export its address");
  return bootstrap;
}

int cluster_nodes() {
  const std::string dir = cluster_state_dir();
  int nodes = 0;
  std::ifstream(dir + "/nodes") >> nodes;
  if (nodes == 0) FAIL("no cluster runs from " << dir << " (scripts/kafka start)");
  return nodes;
}

void cluster_command(const std::string& arguments) {
  const std::string command = "RILL_KAFKA_STATE_DIR='" + cluster_state_dir() + "' " +
                              RILL_SOURCE_DIR + "/scripts/kafka " + arguments;
  const CommandResult result = run_command(command);
  INFO("scripts/kafka " << arguments << ":\n" << result.output);
  REQUIRE(result.exit_code == 0);
}

void restore_cluster() noexcept {
  const char* dir = std::getenv("RILL_KAFKA_STATE_DIR");
  if (dir == nullptr || *dir == '\0') return;
  int nodes = 0;
  std::ifstream(std::string(dir) + "/nodes") >> nodes;
  const std::string script =
      "RILL_KAFKA_STATE_DIR='" + std::string(dir) + "' " + RILL_SOURCE_DIR + "/scripts/kafka ";
  for (int node = 1; node <= nodes; ++node)
    run_command(script + "resume-node " + std::to_string(node));
  if (nodes > 0) run_command(script + "start --nodes " + std::to_string(nodes));
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string unique_name(const std::string& prefix) {
  static std::atomic<int> counter{0};
  static const auto run = std::random_device{}();
  return prefix + "-" + std::to_string(run % 1000000) + "-" + std::to_string(counter++);
}

void create_topic(const std::string& topic, int partitions,
                  const std::map<std::string, std::string>& configs) {
  auto conf = client_conf();
  std::string error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  REQUIRE(producer);
  rill::kafka::create_topics(producer->c_ptr(), {{topic, partitions, -1, configs}},
                             std::chrono::seconds(30));

  // The controller answers before every broker has the metadata, and a
  // client asks whichever broker it likes: wait until each one, asked alone,
  // shows every partition with a leader.
  const std::string servers = bootstrap_servers();
  for (std::size_t begin = 0; begin <= servers.size();) {
    const std::size_t end = std::min(servers.find(',', begin), servers.size());
    auto one_conf = client_conf();
    set(*one_conf, "bootstrap.servers", servers.substr(begin, end - begin));
    std::unique_ptr<RdKafka::Producer> asker(RdKafka::Producer::create(one_conf.get(), error));
    REQUIRE(asker);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (true) {
      std::unique_ptr<RdKafka::Topic> handle(
          RdKafka::Topic::create(asker.get(), topic, nullptr, error));
      RdKafka::Metadata* raw = nullptr;
      bool shown = false;
      if (asker->metadata(false, handle.get(), &raw, 5000) == RdKafka::ERR_NO_ERROR) {
        std::unique_ptr<RdKafka::Metadata> metadata(raw);
        const auto* topics = metadata->topics();
        if (!topics->empty() && topics->at(0)->err() == RdKafka::ERR_NO_ERROR &&
            static_cast<int>(topics->at(0)->partitions()->size()) == partitions) {
          shown = true;
          for (const auto* p : *topics->at(0)->partitions()) shown = shown && p->leader() >= 0;
        }
      }
      if (shown) break;
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    begin = end + 1;
  }
}

void delete_topic(const std::string& topic) {
  auto conf = client_conf();
  std::string error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  REQUIRE(producer);
  rill::kafka::delete_topics(producer->c_ptr(), {topic}, std::chrono::seconds(30));
}

void delete_topics_with_prefixes(const std::vector<std::string>& prefixes) {
  auto conf = client_conf();
  std::string error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  REQUIRE(producer);
  std::vector<std::string> doomed;
  for (const auto& [topic, partitions] :
       rill::kafka::topic_partitions(producer->c_ptr(), std::chrono::seconds(30)))
    for (const auto& prefix : prefixes)
      if (topic.starts_with(prefix)) {
        doomed.push_back(topic);
        break;
      }
  rill::kafka::delete_topics(producer->c_ptr(), doomed, std::chrono::seconds(30));
}

void wait_in_sync(std::chrono::seconds timeout) {
  auto conf = client_conf();
  std::string error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  REQUIRE(producer);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::string> lagging;
  while (true) {
    try {
      lagging =
          rill::kafka::under_replicated_partitions(producer->c_ptr(), std::chrono::seconds(10));
      if (lagging.empty()) return;
    } catch (const std::exception& e) {
      lagging = {e.what()};
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  std::string behind;
  for (std::size_t i = 0; i < lagging.size() && i < 20; ++i) behind += "\n  " + lagging[i];
  FAIL("partitions still under-replicated after " << timeout.count() << " s:" << behind);
}

void produce(const std::string& topic, const std::vector<TestRecord>& records) {
  auto conf = client_conf();
  set(*conf, "enable.idempotence", "true");
  set(*conf, "partitioner", "murmur2_random");
  // Tests of large records produce past the 1 MB default.
  set(*conf, "message.max.bytes", "8000000");
  std::string error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  REQUIRE(producer);
  for (const auto& record : records) {
    RdKafka::Headers* headers = RdKafka::Headers::create();
    for (const auto& [key, value] : record.headers) headers->add(key, value);
    while (true) {
      auto err = producer->produce(
          topic, record.partition < 0 ? RdKafka::Topic::PARTITION_UA : record.partition,
          RdKafka::Producer::RK_MSG_COPY,
          record.value ? const_cast<char*>(record.value->data()) : nullptr,
          record.value ? record.value->size() : 0, record.key ? record.key->data() : nullptr,
          record.key ? record.key->size() : 0, record.timestamp, headers, nullptr);
      if (err == RdKafka::ERR_NO_ERROR) break;
      REQUIRE(err == RdKafka::ERR__QUEUE_FULL);
      producer->poll(100);
    }
  }
  REQUIRE(producer->flush(60000) == RdKafka::ERR_NO_ERROR);
  REQUIRE(producer->outq_len() == 0);
}

namespace {

// A fresh, group-less consumer assigned every partition of `topic` from the
// beginning; `partitions` receives their number.
std::unique_ptr<RdKafka::KafkaConsumer> reader(const std::string& topic, bool read_committed,
                                               bool partition_eof, std::size_t& partitions) {
  auto conf = client_conf();
  set(*conf, "group.id", unique_name("rill-test-reader"));
  set(*conf, "enable.auto.commit", "false");
  set(*conf, "isolation.level", read_committed ? "read_committed" : "read_uncommitted");
  set(*conf, "enable.partition.eof", partition_eof ? "true" : "false");
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  REQUIRE(consumer);

  std::vector<RdKafka::TopicPartition*> assignment;
  for (int32_t id : partition_ids(*consumer, topic))
    assignment.push_back(
        RdKafka::TopicPartition::create(topic, id, RdKafka::Topic::OFFSET_BEGINNING));
  REQUIRE(!assignment.empty());
  partitions = assignment.size();
  REQUIRE(consumer->assign(assignment) == RdKafka::ERR_NO_ERROR);
  RdKafka::TopicPartition::destroy(assignment);
  return consumer;
}

TestRecord to_test_record(RdKafka::Message& message) {
  TestRecord record;
  if (message.key_pointer() != nullptr)
    record.key = std::string(static_cast<const char*>(message.key_pointer()), message.key_len());
  if (message.payload() != nullptr)
    record.value = std::string(static_cast<const char*>(message.payload()), message.len());
  record.partition = message.partition();
  record.offset = message.offset();
  record.timestamp = message.timestamp().timestamp;
  if (RdKafka::Headers* headers = message.headers())
    for (const auto& header : headers->get_all())
      record.headers.emplace_back(
          header.key(),
          header.value() ? std::string(header.value_string(), header.value_size()) : "");
  return record;
}

}  // namespace

std::vector<TestRecord> consume(const std::string& topic, std::size_t count,
                                std::chrono::milliseconds timeout, bool read_committed) {
  std::size_t partitions = 0;
  auto consumer = reader(topic, read_committed, false, partitions);
  std::vector<TestRecord> records;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (records.size() < count && std::chrono::steady_clock::now() < deadline) {
    std::unique_ptr<RdKafka::Message> message(consumer->consume(200));
    if (message->err() == RdKafka::ERR__TIMED_OUT || message->err() == RdKafka::ERR__PARTITION_EOF)
      continue;
    REQUIRE(message->err() == RdKafka::ERR_NO_ERROR);
    records.push_back(to_test_record(*message));
  }
  consumer->close();
  return records;
}

bool read_to_end(const std::string& topic, const std::function<void(const TestRecord&)>& on_record,
                 std::chrono::milliseconds timeout, std::vector<int64_t>* stable_ends) {
  std::size_t partitions = 0;
  auto consumer = reader(topic, true, true, partitions);
  if (stable_ends != nullptr) stable_ends->assign(partitions, -1);
  // A partition's end is reported once each time the reader catches up with it.
  std::set<int32_t> at_end;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (at_end.size() < partitions && std::chrono::steady_clock::now() < deadline) {
    std::unique_ptr<RdKafka::Message> message(consumer->consume(200));
    if (message->err() == RdKafka::ERR__TIMED_OUT) continue;
    if (message->err() == RdKafka::ERR__PARTITION_EOF) {
      at_end.insert(message->partition());
      if (stable_ends != nullptr && message->partition() < static_cast<int32_t>(partitions))
        (*stable_ends)[static_cast<std::size_t>(message->partition())] = message->offset();
      continue;
    }
    REQUIRE(message->err() == RdKafka::ERR_NO_ERROR);
    at_end.erase(message->partition());
    on_record(to_test_record(*message));
  }
  consumer->close();
  return at_end.size() == partitions;
}

namespace {

std::vector<std::pair<int64_t, int64_t>> watermarks_by_partition(const std::string& topic) {
  auto conf = client_conf();
  std::string error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  REQUIRE(producer);
  std::vector<std::pair<int64_t, int64_t>> watermarks;
  for (int32_t id : partition_ids(*producer, topic)) {
    int64_t low = 0, high = 0;
    REQUIRE(producer->query_watermark_offsets(topic, id, &low, &high, 10000) ==
            RdKafka::ERR_NO_ERROR);
    watermarks.emplace_back(low, high);
  }
  return watermarks;
}

}  // namespace

std::vector<int64_t> end_offsets_by_partition(const std::string& topic) {
  std::vector<int64_t> ends;
  for (const auto& [low, high] : watermarks_by_partition(topic)) ends.push_back(high);
  return ends;
}

std::vector<int64_t> start_offsets_by_partition(const std::string& topic) {
  std::vector<int64_t> starts;
  for (const auto& [low, high] : watermarks_by_partition(topic)) starts.push_back(low);
  return starts;
}

int64_t end_offsets(const std::string& topic) {
  const auto ends = end_offsets_by_partition(topic);
  return std::accumulate(ends.begin(), ends.end(), int64_t{0});
}

std::vector<int64_t> committed_offsets_by_partition(const std::string& group,
                                                    const std::string& topic) {
  auto conf = client_conf();
  set(*conf, "group.id", group);
  std::string error;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(
      RdKafka::KafkaConsumer::create(conf.get(), error));
  REQUIRE(consumer);
  std::vector<RdKafka::TopicPartition*> partitions;
  for (int32_t id : partition_ids(*consumer, topic))
    partitions.push_back(RdKafka::TopicPartition::create(topic, id));
  // Only reads the group's offsets: the consumer never joins it.
  const auto err = consumer->committed(partitions, 10000);
  std::vector<int64_t> offsets;
  for (auto* partition : partitions) {
    offsets.push_back(std::max<int64_t>(partition->offset(), 0));
    delete partition;
  }
  REQUIRE(err == RdKafka::ERR_NO_ERROR);
  consumer->close();
  return offsets;
}

int64_t committed_offsets(const std::string& group, const std::string& topic) {
  const auto offsets = committed_offsets_by_partition(group, topic);
  return std::accumulate(offsets.begin(), offsets.end(), int64_t{0});
}

std::map<std::string, std::string> topic_configs(const std::string& topic) {
  auto conf = client_conf();
  std::string error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  REQUIRE(producer);
  return rill::kafka::topic_configs(producer->c_ptr(), topic, std::chrono::seconds(10));
}

void delete_records_below(const std::string& topic, int32_t partition, int64_t offset) {
  const rill::kafka::KafkaPtr client = rill::kafka::make_client(
      RD_KAFKA_PRODUCER, rill::kafka::make_conf({{"bootstrap.servers", bootstrap_servers()}}));
  rill::kafka::RecordDeletion deletion(client.get());
  REQUIRE(deletion.start({{topic, partition, offset}}, std::chrono::seconds(10)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::optional<std::vector<rill::kafka::TopicPartition>> answer;
  while (!(answer = deletion.take_answer()) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(answer);
  REQUIRE(answer->size() == 1);
  REQUIRE(answer->front().error == RD_KAFKA_RESP_ERR_NO_ERROR);
  REQUIRE(answer->front().offset == offset);
}

}  // namespace rill::testing
