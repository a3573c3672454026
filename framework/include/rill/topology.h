// A topology is the graph a rill application runs: source nodes read topics,
// processor nodes transform records, sink nodes write topics. Build one by hand
// here (the Processor API) or through StreamsBuilder (the DSL).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "rill/internal/node.h"
#include "rill/postgres.h"
#include "rill/processor.h"
#include "rill/serde.h"
#include "rill/state.h"

namespace rill {

// A topology that cannot run: the message names the node and what is wrong.
class TopologyError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

template <class K, class V>
using TimestampExtractor = internal::TimestampExtractor<K, V>;
template <class K, class V>
using Partitioner = internal::Partitioner<K, V>;

using TopicRef = internal::TopicRef;

class Topology {
 public:
  enum class NodeKind { kSource, kProcessor, kSink };

  struct Node {
    std::string name;
    NodeKind kind = NodeKind::kProcessor;
    std::vector<std::string> parents;
    // Topics a source reads, or the single topic a sink writes.
    std::vector<TopicRef> topics;
    // Partition count of the internal topic a sink writes; empty means the
    // partition count of the sub-topology that writes it.
    std::optional<int32_t> partitions;
    std::vector<std::string> stores;
    internal::TypeInfo key_in, value_in, key_out, value_out;
    // Set when a source or sink has no serde for its types: names what is missing.
    std::string missing_serde;
    std::function<std::unique_ptr<internal::ProcessorNode>()> factory;
    // The source or the update processor of a global store: run by the
    // global thread, never part of a sub-topology or a task.
    bool global = false;
  };

  // A global store (Kafka Streams' addGlobalStore): every instance holds all
  // of it, kept up to date from every partition of its topic by the source
  // and update processor named here. Tasks read it; only that processor writes.
  struct GlobalStore {
    // Numbered after the sub-topologies, so task ids do not depend on it.
    int32_t id = 0;
    std::string store;
    std::string source;
    std::string processor;
    TopicRef topic;
  };

  struct Subtopology {
    int32_t id = 0;
    // Node names, parents before children.
    std::vector<std::string> nodes;
    std::vector<TopicRef> source_topics;
    std::vector<TopicRef> sink_topics;
    // State stores its processors use; each task has its own instance of each.
    std::vector<std::string> stores;
  };

  // Adds a source node reading `topics`. K and V are inferred from the serdes,
  // or given explicitly when the default serdes fit: add_source<std::string, int64_t>(...).
  template <class K, class V>
  Topology& add_source(std::string name, std::vector<std::string> topics,
                       SerdePtr<K> key_serde = default_serde<K>(),
                       SerdePtr<V> value_serde = default_serde<V>(),
                       TimestampExtractor<K, V> extractor = {});

  // Adds a processor; `factory` returns std::unique_ptr<P> with P a Processor
  // (one instance per task). Input and output types come from P.
  template <class Factory>
  Topology& add_processor(std::string name, Factory factory, std::vector<std::string> parents);

  // Adds a sink node writing `topic`.
  template <class K, class V>
  Topology& add_sink(std::string name, TopicRef topic, std::vector<std::string> parents,
                     SerdePtr<K> key_serde = default_serde<K>(),
                     SerdePtr<V> value_serde = default_serde<V>(),
                     Partitioner<K, V> partitioner = {});

  // A PostgreSQL table kept from the rows on an internal topic, which a sink
  // node of the topology writes (KStream::to_postgres). Every instance runs
  // its writer; docs/read-models.md.
  struct PostgresSink {
    std::string name;
    TopicRef topic;
    PostgresTable table;
  };
  // Throws TopologyError naming the sink when its table is not declared whole.
  Topology& add_postgres_sink(PostgresSink sink);
  const std::vector<PostgresSink>& postgres_sinks() const { return postgres_sinks_; }

  // Adds a state store, connected to the named processors (more can be
  // connected later with connect_processor_and_stores).
  Topology& add_state_store(StoreBuilder store, std::vector<std::string> processors = {});
  Topology& connect_processor_and_stores(const std::string& processor,
                                         std::vector<std::string> stores);

  // Adds a global store, as Kafka Streams' addGlobalStore: the source
  // `source_name` reads every partition of `topic` on each instance and hands
  // its records to the processor `processor_name` (made by `factory`, which
  // returns std::unique_ptr<P> with P a Processor<K, V, ...>), which writes
  // the store. The topic is the store's changelog, so the store gets none.
  // Any processor reads it with context.state_store<...>(name) without being
  // connected to it; writes from a task are refused. Key-value stores only.
  template <class K, class V, class Factory>
  Topology& add_global_store(StoreBuilder store, std::string source_name, std::string topic,
                             SerdePtr<K> key_serde, SerdePtr<V> value_serde,
                             std::string processor_name, Factory factory);

  // Checks the whole graph (unknown parents, cycles, duplicate names, type
  // mismatches, missing serdes, sources and sinks without topics, stores that
  // are unknown or connected to nothing) and splits it into sub-topologies:
  // nodes joined by an edge or by a shared store are in the same one. Throws TopologyError naming
  // the first bad node. Idempotent; the runtime and the test driver call it.
  void build();
  bool built() const { return built_; }

  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<StoreBuilder>& stores() const { return stores_; }
  const StoreBuilder& store(std::string_view name) const;
  const Node& node(std::string_view name) const;
  // Available after build().
  const std::vector<Subtopology>& subtopologies() const { return subtopologies_; }
  // Ids are available after build().
  const std::vector<GlobalStore>& global_stores() const { return global_stores_; }
  bool is_global_store(std::string_view name) const;

  // The partition count of every topic the built application reads or
  // creates, given the counts of the topics that exist (at least its source
  // topics). A repartition topic not created yet takes the count of the
  // sub-topology that writes it; sources that meet in one stateful
  // sub-topology must be co-partitioned, so repartition topics among them take
  // the count of the others. A changelog has one partition per task. Throws
  // TopologyError naming the topics and their counts when such sources differ.
  std::map<std::string, int32_t> partition_counts(
      std::string_view application_id, const std::map<std::string, int32_t>& existing) const;
  // How many tasks a sub-topology runs: its largest source topic's count.
  static int32_t task_count(const Subtopology& sub, std::string_view application_id,
                            const std::map<std::string, int32_t>& counts);

  // Descriptions of the built topology: text in the layout of Kafka Streams'
  // TopologyDescription, Graphviz DOT, and a Mermaid flowchart.
  std::string describe() const;
  std::string describe_dot() const;
  std::string describe_mermaid() const;

  // Used by the DSL to add nodes it built itself and to adjust them after.
  Topology& add_node(Node node);
  Node& mutable_node(std::string_view name);

 private:
  void require_not_built() const;
  Topology& add_global_store(StoreBuilder store, Node source, Node processor);

  std::vector<Node> nodes_;
  std::vector<StoreBuilder> stores_;
  std::vector<Subtopology> subtopologies_;
  std::vector<GlobalStore> global_stores_;
  std::vector<PostgresSink> postgres_sinks_;
  bool built_ = false;
};

namespace internal {

template <class P>
struct ProcessorTypes {
  using KIn = typename P::KeyIn;
  using VIn = typename P::ValueIn;
  using KOut = typename P::KeyOut;
  using VOut = typename P::ValueOut;
};

template <class K, class V>
std::string missing_serde_message(const SerdePtr<K>& key_serde, const SerdePtr<V>& value_serde) {
  if (!key_serde) return "no key serde for type " + demangle(typeid(K));
  if (!value_serde) return "no value serde for type " + demangle(typeid(V));
  return {};
}

}  // namespace internal

template <class K, class V>
Topology& Topology::add_source(std::string name, std::vector<std::string> topics,
                               SerdePtr<K> key_serde, SerdePtr<V> value_serde,
                               TimestampExtractor<K, V> extractor) {
  Node node;
  node.name = name;
  node.kind = NodeKind::kSource;
  for (auto& topic : topics) node.topics.push_back({std::move(topic), false});
  node.key_out = internal::type_info_of<K>();
  node.value_out = internal::type_info_of<V>();
  node.missing_serde = internal::missing_serde_message(key_serde, value_serde);
  node.factory = [name, key_serde, value_serde, extractor] {
    return std::make_unique<internal::SourceNode<K, V>>(name, key_serde, value_serde, extractor);
  };
  return add_node(std::move(node));
}

template <class Factory>
Topology& Topology::add_processor(std::string name, Factory factory,
                                  std::vector<std::string> parents) {
  using P = typename std::invoke_result_t<Factory>::element_type;
  using Types = internal::ProcessorTypes<P>;
  Node node;
  node.name = name;
  node.kind = NodeKind::kProcessor;
  node.parents = std::move(parents);
  node.key_in = internal::type_info_of<typename Types::KIn>();
  node.value_in = internal::type_info_of<typename Types::VIn>();
  node.key_out = internal::type_info_of<typename Types::KOut>();
  node.value_out = internal::type_info_of<typename Types::VOut>();
  node.factory = [name, factory = std::move(factory)] {
    return std::make_unique<internal::UserProcessorNode<P>>(name, factory());
  };
  return add_node(std::move(node));
}

template <class K, class V>
Topology& Topology::add_sink(std::string name, TopicRef topic, std::vector<std::string> parents,
                             SerdePtr<K> key_serde, SerdePtr<V> value_serde,
                             Partitioner<K, V> partitioner) {
  Node node;
  node.name = name;
  node.kind = NodeKind::kSink;
  node.parents = std::move(parents);
  if (!topic.name.empty()) node.topics.push_back(topic);
  node.key_in = internal::type_info_of<K>();
  node.value_in = internal::type_info_of<V>();
  node.missing_serde = internal::missing_serde_message(key_serde, value_serde);
  node.factory = [name, topic, key_serde, value_serde, partitioner] {
    return std::make_unique<internal::SinkNode<K, V>>(name, topic, key_serde, value_serde,
                                                      partitioner);
  };
  return add_node(std::move(node));
}

template <class K, class V, class Factory>
Topology& Topology::add_global_store(StoreBuilder store, std::string source_name, std::string topic,
                                     SerdePtr<K> key_serde, SerdePtr<V> value_serde,
                                     std::string processor_name, Factory factory) {
  using P = typename std::invoke_result_t<Factory>::element_type;
  static_assert(std::is_same_v<typename P::KeyIn, K> && std::is_same_v<typename P::ValueIn, V>,
                "the global store's processor must take the records its source reads");
  Topology scratch;
  scratch.add_source<K, V>(source_name, {std::move(topic)}, std::move(key_serde),
                           std::move(value_serde));
  scratch.add_processor(processor_name, std::move(factory), {source_name});
  return add_global_store(std::move(store), std::move(scratch.nodes_.at(0)),
                          std::move(scratch.nodes_.at(1)));
}

}  // namespace rill
