// Keyed counts for tests of state: each record adds one to its key's count,
// and count updates go to the output topic as (key, int64). One is built with
// the Processor API and a changelogged store, one with the DSL.
#pragma once

#include <algorithm>
#include <memory>
#include <optional>
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

// The same count in the DSL: group_by_key().count() into the store "counts",
// of one topic or of several merged ("a,b": a sub-topology with two sources).
inline Topology count_topology(const std::string& inputs, const std::string& output) {
  StreamsBuilder builder;
  std::optional<KStream<std::string, std::string>> merged;
  for (std::size_t from = 0; from <= inputs.size();) {
    const std::size_t comma = std::min(inputs.find(',', from), inputs.size());
    auto stream =
        builder.stream(inputs.substr(from, comma - from), serdes::string(), serdes::string());
    merged = merged ? merged->merge(stream) : stream;
    from = comma + 1;
  }
  merged->group_by_key()
      .count(Materialized<std::string, int64_t>::as("counts"))
      .to_stream()
      .to(output, serdes::string(), serdes::int64());
  return builder.build();
}

inline Topology processor_count_topology(const std::string& input, const std::string& output,
                                         const std::string& store = "counts",
                                         bool in_memory = false) {
  StoreBuilder counts = Stores::key_value(store, serdes::string(), serdes::int64());
  if (in_memory) counts.in_memory();
  Topology topology;
  topology.add_source<std::string, std::string>("source", {input})
      .add_processor("count", [store] { return std::make_unique<CountProcessor>(store); },
                     {"source"})
      .add_state_store(counts, {"count"})
      .add_sink<std::string, int64_t>("sink", output, {"count"});
  return topology;
}

}  // namespace rill::testing
