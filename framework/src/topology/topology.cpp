// Validation of a topology and its split into sub-topologies.
#include "rill/topology.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include <cxxabi.h>

namespace rill {
namespace {

std::string_view kind_name(Topology::NodeKind kind) {
  switch (kind) {
    case Topology::NodeKind::kSource:
      return "source";
    case Topology::NodeKind::kSink:
      return "sink";
    case Topology::NodeKind::kProcessor:
      return "processor";
  }
  return "node";
}

std::string describe_node(const Topology::Node& node) {
  return std::string(kind_name(node.kind)) + " '" + node.name + "'";
}

std::string record_type(const internal::TypeInfo& key, const internal::TypeInfo& value) {
  return "Record<" + key.name + ", " + value.name + ">";
}

// Union-find over node indexes: nodes joined by an edge share a sub-topology.
class Components {
 public:
  explicit Components(std::size_t size) : parent_(size) {
    std::iota(parent_.begin(), parent_.end(), std::size_t{0});
  }
  std::size_t find(std::size_t i) {
    while (parent_[i] != i) i = parent_[i] = parent_[parent_[i]];
    return i;
  }
  void join(std::size_t a, std::size_t b) { parent_[find(a)] = find(b); }

 private:
  std::vector<std::size_t> parent_;
};

}  // namespace

namespace internal {

std::string demangle(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  std::string result = status == 0 && name ? name.get() : type.name();
  // The full spelling of std::string helps nobody reading an error message.
  const std::string long_string =
      "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >";
  for (auto pos = result.find(long_string); pos != std::string::npos;
       pos = result.find(long_string, pos))
    result.replace(pos, long_string.size(), "std::string");
  return result;
}

}  // namespace internal

Topology& Topology::add_node(Node node) {
  require_not_built();
  if (node.name.empty()) throw TopologyError(std::string(kind_name(node.kind)) + " has no name");
  for (const Node& existing : nodes_)
    if (existing.name == node.name)
      throw TopologyError(describe_node(node) + ": the name is already used by " +
                          describe_node(existing));
  nodes_.push_back(std::move(node));
  return *this;
}

const Topology::Node& Topology::node(std::string_view name) const {
  for (const Node& node : nodes_)
    if (node.name == name) return node;
  throw TopologyError("no node named '" + std::string(name) + "'");
}

Topology::Node& Topology::mutable_node(std::string_view name) {
  require_not_built();
  return const_cast<Node&>(node(name));
}

Topology& Topology::add_postgres_sink(PostgresSink sink) {
  require_not_built();
  auto fail = [&](const std::string& what) {
    throw TopologyError("to_postgres '" + sink.name + "': " + what);
  };
  if (sink.name.empty()) throw TopologyError("to_postgres: the sink needs a name");
  for (const PostgresSink& existing : postgres_sinks_)
    if (existing.name == sink.name) fail("a PostgreSQL sink of that name exists already");
  const PostgresTable& table = sink.table;
  if (table.connection.empty()) fail("no connection string");
  if (table.table.empty()) fail("no table");
  if (table.key_columns.empty()) fail("no key column: the rows are upserted by key");
  if (table.batch_size == 0) fail("batch_size must be at least 1");
  if (table.connections == 0) fail("connections must be at least 1");
  std::set<std::string> names;
  for (const auto* columns : {&table.key_columns, &table.value_columns})
    for (const PostgresColumn& column : *columns) {
      if (column.name.empty()) fail("a column without a name");
      if (!names.insert(column.name).second) fail("column '" + column.name + "' appears twice");
      if (table.create_table && column.type.empty())
        fail("column '" + column.name + "' has no type, which create_table needs");
    }
  postgres_sinks_.push_back(std::move(sink));
  return *this;
}

Topology& Topology::add_state_store(StoreBuilder store, std::vector<std::string> processors) {
  require_not_built();
  for (const StoreBuilder& existing : stores_)
    if (existing.name() == store.name())
      throw TopologyError("state store '" + store.name() + "' is already added");
  const std::string name = store.name();
  stores_.push_back(std::move(store));
  for (const std::string& processor : processors) connect_processor_and_stores(processor, {name});
  return *this;
}

Topology& Topology::connect_processor_and_stores(const std::string& processor,
                                                 std::vector<std::string> stores) {
  Node& node = mutable_node(processor);
  if (node.kind != NodeKind::kProcessor)
    throw TopologyError(describe_node(node) + " cannot use state stores; only processors can");
  if (node.global)
    throw TopologyError(describe_node(node) + " updates a global store and uses no other store");
  for (const std::string& store : stores)
    if (is_global_store(store))
      throw TopologyError("global store '" + store + "' is readable by every processor without " +
                          "being connected; do not connect it to " + describe_node(node));
  for (std::string& store : stores)
    if (std::find(node.stores.begin(), node.stores.end(), store) == node.stores.end())
      node.stores.push_back(std::move(store));
  return *this;
}

Topology& Topology::add_global_store(StoreBuilder store, Node source, Node processor) {
  require_not_built();
  if (store.spec().kind != StoreKind::kKeyValue)
    throw TopologyError("global store '" + store.name() + "' must be a key-value store, not a " +
                        std::string(to_string(store.spec().kind)) + " store");
  if (source.topics.size() != 1)
    throw TopologyError("global store '" + store.name() + "' needs exactly one topic");
  // Its topic is its changelog: a changelog of its own would copy the topic.
  store.with_logging_disabled();
  GlobalStore global;
  global.store = store.name();
  global.source = source.name;
  global.processor = processor.name;
  global.topic = source.topics.front();
  source.global = true;
  processor.global = true;
  processor.stores.push_back(store.name());
  add_state_store(std::move(store));
  add_node(std::move(source));
  add_node(std::move(processor));
  global_stores_.push_back(std::move(global));
  return *this;
}

bool Topology::is_global_store(std::string_view name) const {
  return std::any_of(global_stores_.begin(), global_stores_.end(),
                     [&](const GlobalStore& global) { return global.store == name; });
}

const StoreBuilder& Topology::store(std::string_view name) const {
  for (const StoreBuilder& store : stores_)
    if (store.name() == name) return store;
  throw TopologyError("no state store named '" + std::string(name) + "'");
}

void Topology::require_not_built() const {
  if (built_) throw TopologyError("the topology is already built and cannot change");
}

void Topology::build() {
  if (built_) return;
  if (nodes_.empty()) throw TopologyError("the topology has no nodes");

  std::map<std::string, std::size_t, std::less<>> index;
  for (std::size_t i = 0; i < nodes_.size(); ++i) index.emplace(nodes_[i].name, i);

  std::map<std::string, std::string> topic_reader;
  std::vector<std::vector<std::size_t>> children(nodes_.size());
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    const Node& node = nodes_[i];
    const std::string what = describe_node(node);
    if (node.kind == NodeKind::kSource) {
      if (!node.parents.empty()) throw TopologyError(what + " cannot have parents");
      if (node.topics.empty()) throw TopologyError(what + " has no topics to read");
      for (const TopicRef& topic : node.topics) {
        if (topic.name.empty()) throw TopologyError(what + " has an empty topic name");
        auto [it, inserted] = topic_reader.emplace(topic.name, node.name);
        if (!inserted)
          throw TopologyError(what + " reads topic '" + topic.name + "', which source '" +
                              it->second + "' already reads");
      }
    } else {
      if (node.parents.empty()) throw TopologyError(what + " has no parent");
    }
    if (node.kind == NodeKind::kSink && (node.topics.size() != 1 || node.topics[0].name.empty()))
      throw TopologyError(what + " has no topic to write");
    if (!node.missing_serde.empty()) throw TopologyError(what + ": " + node.missing_serde);
    if (!node.factory) throw TopologyError(what + " has no processor factory");
    for (const std::string& store_name : node.stores) {
      bool known = std::any_of(stores_.begin(), stores_.end(), [&](const StoreBuilder& store) {
        return store.name() == store_name;
      });
      if (!known) throw TopologyError(what + " uses unknown state store '" + store_name + "'");
    }

    for (const std::string& parent_name : node.parents) {
      auto it = index.find(parent_name);
      if (it == index.end())
        throw TopologyError(what + " has unknown parent '" + parent_name + "'");
      const Node& parent = nodes_[it->second];
      if (parent.global != node.global)
        throw TopologyError(what + " has parent " + describe_node(parent) +
                            ", but a global store's source and processor connect to nothing else");
      if (parent.kind == NodeKind::kSink)
        throw TopologyError(what + " has parent " + describe_node(parent) +
                            ", but a sink cannot have children");
      if (!(parent.key_out == node.key_in) || !(parent.value_out == node.value_in))
        throw TopologyError(what + " takes " + record_type(node.key_in, node.value_in) +
                            " but its parent " + describe_node(parent) + " forwards " +
                            record_type(parent.key_out, parent.value_out));
      children[it->second].push_back(i);
    }
  }

  // Kahn's algorithm: what cannot be ordered lies on a cycle.
  std::vector<std::size_t> pending(nodes_.size());
  for (std::size_t i = 0; i < nodes_.size(); ++i) pending[i] = nodes_[i].parents.size();
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    if (pending[i] == 0) order.push_back(i);
  for (std::size_t next = 0; next < order.size(); ++next)
    for (std::size_t child : children[order[next]])
      if (--pending[child] == 0) order.push_back(child);
  if (order.size() != nodes_.size()) {
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (pending[i] != 0) throw TopologyError(describe_node(nodes_[i]) + " is part of a cycle");
  }

  Components components(nodes_.size());
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    for (const std::string& parent : nodes_[i].parents) components.join(i, index.at(parent));
  // Processors sharing a store must run in one task, so in one sub-topology.
  // Global stores belong to no task.
  std::map<std::string, std::size_t> first_user_of_store;
  for (std::size_t i = 0; i < nodes_.size(); ++i)
    for (const std::string& store : nodes_[i].stores) {
      auto [it, inserted] = first_user_of_store.emplace(store, i);
      if (!inserted) components.join(i, it->second);
    }
  for (const StoreBuilder& store : stores_)
    if (!first_user_of_store.contains(store.name()))
      throw TopologyError("state store '" + store.name() + "' is not connected to any processor");

  // Sub-topologies are numbered in the order their first node was added;
  // global stores after them.
  std::map<std::size_t, std::size_t> subtopology_of_root;
  std::vector<Subtopology> subtopologies;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i].global) continue;
    auto [it, inserted] = subtopology_of_root.emplace(components.find(i), subtopologies.size());
    if (inserted) {
      subtopologies.emplace_back();
      subtopologies.back().id = static_cast<int32_t>(subtopologies.size() - 1);
    }
  }
  for (std::size_t i : order) {
    if (nodes_[i].global) continue;
    Subtopology& sub = subtopologies[subtopology_of_root.at(components.find(i))];
    const Node& node = nodes_[i];
    sub.nodes.push_back(node.name);
    auto& topics = node.kind == NodeKind::kSource ? sub.source_topics : sub.sink_topics;
    if (node.kind != NodeKind::kProcessor)
      for (const TopicRef& topic : node.topics)
        if (std::find(topics.begin(), topics.end(), topic) == topics.end()) topics.push_back(topic);
    for (const std::string& store : node.stores)
      if (std::find(sub.stores.begin(), sub.stores.end(), store) == sub.stores.end())
        sub.stores.push_back(store);
  }
  for (const Subtopology& sub : subtopologies)
    if (sub.source_topics.empty())
      throw TopologyError("sub-topology " + std::to_string(sub.id) + " (with node '" +
                          sub.nodes.front() + "') has no source");

  for (std::size_t i = 0; i < global_stores_.size(); ++i)
    global_stores_[i].id = static_cast<int32_t>(subtopologies.size() + i);

  subtopologies_ = std::move(subtopologies);
  built_ = true;
}

}  // namespace rill
