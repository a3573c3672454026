// A keyed count built with the Processor API and a changelogged store, for
// tests of state in the runtime: each record adds one to its key's count, and
// every count update goes to the output topic as (key, int64).
#pragma once

#include <memory>
#include <string>

#include "rill/rill.h"

namespace rill::testing {

class CountProcessor : public Processor<std::string, std::string, std::string, int64_t> {
 public:
  explicit CountProcessor(std::string store) : store_name_(std::move(store)) {}
  void init(ProcessorContext<std::string, int64_t>& context) override {
    store_ = &context.state_store<KeyValueStore<std::string, int64_t>>(store_name_);
    store_->set_flush_listener(
        [&context](const std::string& key, const std::optional<int64_t>& count, int64_t time) {
          if (count) context.forward({key, *count, time, {}});
        });
  }
  void process(const Record<std::string, std::string>& record) override {
    store_->put(record.key, store_->get(record.key).value_or(0) + 1, record.timestamp);
  }

 private:
  std::string store_name_;
  KeyValueStore<std::string, int64_t>* store_ = nullptr;
};

inline Topology count_topology(const std::string& input, const std::string& output,
                               const std::string& store = "counts") {
  Topology topology;
  topology.add_source<std::string, std::string>("source", {input})
      .add_processor("count", [store] { return std::make_unique<CountProcessor>(store); },
                     {"source"})
      .add_state_store(Stores::key_value(store, serdes::string(), serdes::int64()), {"count"})
      .add_sink<std::string, int64_t>("sink", output, {"count"});
  return topology;
}

}  // namespace rill::testing
