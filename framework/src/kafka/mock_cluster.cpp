#include "kafka/mock_cluster.h"

#include <stdexcept>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

namespace rill::kafka {

struct MockCluster::Impl {
  // The mock cluster lives inside a client handle, which must outlive it.
  rd_kafka_t* handle = nullptr;
  rd_kafka_mock_cluster_t* cluster = nullptr;
  ~Impl() {
    if (cluster != nullptr) rd_kafka_mock_cluster_destroy(cluster);
    if (handle != nullptr) rd_kafka_destroy(handle);
  }
};

MockCluster::MockCluster(int brokers) : impl_(std::make_unique<Impl>()) {
  char error[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "log_level", "3", error, sizeof error);
  impl_->handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
  if (impl_->handle == nullptr) throw std::runtime_error(std::string("mock cluster: ") + error);
  impl_->cluster = rd_kafka_mock_cluster_new(impl_->handle, brokers);
  if (impl_->cluster == nullptr) throw std::runtime_error("mock cluster: cannot start");
  bootstrap_ = rd_kafka_mock_cluster_bootstraps(impl_->cluster);
}

MockCluster::~MockCluster() = default;

void MockCluster::create_topic(const std::string& topic, int32_t partitions) {
  const rd_kafka_resp_err_t err =
      rd_kafka_mock_topic_create(impl_->cluster, topic.c_str(), partitions, 1);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
    throw std::runtime_error("mock cluster: cannot create topic '" + topic +
                             "': " + rd_kafka_err2str(err));
}

}  // namespace rill::kafka
