// Text, Graphviz and Mermaid descriptions of a built topology.
#include <algorithm>
#include <map>
#include <sstream>

#include "rill/topology.h"

namespace rill {
namespace {

void require_built(const Topology& topology) {
  if (!topology.built()) throw TopologyError("describe() needs a built topology: call build()");
}

std::map<std::string, std::vector<std::string>> children_of(const Topology& topology) {
  std::map<std::string, std::vector<std::string>> children;
  for (const auto& node : topology.nodes())
    for (const auto& parent : node.parents) children[parent].push_back(node.name);
  return children;
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

std::string topic_list(const std::vector<TopicRef>& topics) {
  std::vector<std::string> names;
  for (const auto& topic : topics) names.push_back(topic.name);
  return "[" + join(names) + "]";
}

// Kafka Streams lists nodes, and the neighbours after "-->" and "<--", by
// descending count of paths from the node down (so parents come first), then by
// name. Following it keeps the texts comparable line by line.
class KafkaNodeOrder {
 public:
  KafkaNodeOrder(const Topology& topology,
                 const std::map<std::string, std::vector<std::string>>& children) {
    for (const auto& sub : topology.subtopologies()) {
      for (auto it = sub.nodes.rbegin(); it != sub.nodes.rend(); ++it) {
        std::size_t paths = 1;
        if (auto found = children.find(*it); found != children.end())
          for (const auto& child : found->second) paths += paths_.at(child);
        paths_[*it] = paths;
      }
    }
  }
  std::vector<std::string> sorted(std::vector<std::string> names) const {
    std::sort(names.begin(), names.end(), [this](const std::string& a, const std::string& b) {
      const std::size_t paths_a = paths_.at(a), paths_b = paths_.at(b);
      return paths_a != paths_b ? paths_a > paths_b : a < b;
    });
    return names;
  }

 private:
  std::map<std::string, std::size_t> paths_;
};

std::string arrow_list(const std::vector<std::string>& names) {
  return names.empty() ? "none" : join(names);
}

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Mermaid ids allow letters, digits and underscores only.
std::string mermaid_id(std::string_view prefix, const std::string& name) {
  std::string id(prefix);
  for (char c : name) id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return id;
}

}  // namespace

std::string Topology::describe() const {
  require_built(*this);
  auto children = children_of(*this);
  const KafkaNodeOrder order(*this, children);
  // Kafka Streams indents the first sub-topology by three spaces and the others
  // by two (a quirk of its toString); matching it lets the texts be diffed.
  std::ostringstream out;
  out << "Topologies:\n ";
  for (const auto& sub : subtopologies_) {
    out << "  Sub-topology: " << sub.id << "\n";
    for (const auto& name : order.sorted(sub.nodes)) {
      const Node& n = node(name);
      switch (n.kind) {
        case NodeKind::kSource:
          out << "    Source: " << n.name << " (topics: " << topic_list(n.topics) << ")\n";
          break;
        case NodeKind::kProcessor:
          out << "    Processor: " << n.name << " (stores: [" << join(n.stores) << "])\n";
          break;
        case NodeKind::kSink:
          out << "    Sink: " << n.name << " (topic: " << n.topics.at(0).name << ")\n";
          break;
      }
      if (n.kind != NodeKind::kSink)
        out << "      --> " << arrow_list(order.sorted(children[n.name])) << "\n";
      if (n.kind != NodeKind::kSource)
        out << "      <-- " << arrow_list(order.sorted(n.parents)) << "\n";
    }
    out << "\n";
  }
  // Kafka Streams' GlobalStore description: no blank line after it.
  for (const auto& global : global_stores_) {
    out << "  Sub-topology: " << global.id << " for global store (will not generate tasks)\n"
        << "    Source: " << global.source << " (topics: [" << global.topic.name << "])\n"
        << "      --> " << global.processor << "\n"
        << "    Processor: " << global.processor << " (stores: [" << global.store << "])\n"
        << "      --> none\n"
        << "      <-- " << global.source << "\n";
  }
  return out.str();
}

std::string Topology::describe_dot() const {
  require_built(*this);
  std::ostringstream out;
  out << "digraph topology {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n";
  std::map<std::string, bool> topics;
  for (const auto& sub : subtopologies_) {
    out << "  subgraph cluster_" << sub.id << " {\n    label=\"Sub-topology " << sub.id
        << "\";\n    style=rounded;\n";
    for (const auto& name : sub.nodes) {
      const Node& n = node(name);
      const char* shape = n.kind == NodeKind::kProcessor
                              ? "box"
                              : "box, style=\"rounded,filled\", fillcolor=\"#e8eef7\"";
      out << "    " << quoted(n.name) << " [shape=" << shape << "];\n";
      for (const auto& topic : n.topics) topics[topic.name] = topic.internal;
    }
    out << "  }\n";
  }
  for (const auto& global : global_stores_) {
    out << "  subgraph cluster_" << global.id << " {\n    label=\"Global store " << global.store
        << "\";\n    style=\"rounded,dashed\";\n";
    out << "    " << quoted(global.source) << " [shape=box, style=\"rounded,filled\", "
        << "fillcolor=\"#e8eef7\"];\n    " << quoted(global.processor) << " [shape=box];\n  }\n";
    topics[global.topic.name] = false;
  }
  for (const auto& [topic, internal] : topics)
    out << "  " << quoted("topic:" + topic) << " [label=" << quoted(topic) << ", shape=cylinder"
        << (internal ? ", style=dashed" : "") << "];\n";
  for (const Node& n : nodes_) {
    for (const auto& parent : n.parents)
      out << "  " << quoted(parent) << " -> " << quoted(n.name) << ";\n";
    for (const auto& topic : n.topics) {
      if (n.kind == NodeKind::kSource)
        out << "  " << quoted("topic:" + topic.name) << " -> " << quoted(n.name) << ";\n";
      else
        out << "  " << quoted(n.name) << " -> " << quoted("topic:" + topic.name) << ";\n";
    }
  }
  out << "}\n";
  return out.str();
}

std::string Topology::describe_mermaid() const {
  require_built(*this);
  std::ostringstream out;
  out << "flowchart LR\n";
  std::map<std::string, bool> topics;
  for (const auto& sub : subtopologies_) {
    out << "  subgraph sub" << sub.id << "[\"Sub-topology " << sub.id << "\"]\n";
    for (const auto& name : sub.nodes) {
      const Node& n = node(name);
      out << "    " << mermaid_id("n_", n.name) << "[\"" << n.name << "\"]\n";
      for (const auto& topic : n.topics) topics[topic.name] = topic.internal;
    }
    out << "  end\n";
  }
  for (const auto& global : global_stores_) {
    out << "  subgraph sub" << global.id << "[\"Global store " << global.store << "\"]\n"
        << "    " << mermaid_id("n_", global.source) << "[\"" << global.source << "\"]\n"
        << "    " << mermaid_id("n_", global.processor) << "[\"" << global.processor << "\"]\n"
        << "  end\n";
    topics[global.topic.name] = false;
  }
  for (const auto& [topic, internal] : topics)
    out << "  " << mermaid_id("t_", topic) << "[(\"" << topic << "\")]\n";
  for (const Node& n : nodes_) {
    for (const auto& parent : n.parents)
      out << "  " << mermaid_id("n_", parent) << " --> " << mermaid_id("n_", n.name) << "\n";
    for (const auto& topic : n.topics) {
      if (n.kind == NodeKind::kSource)
        out << "  " << mermaid_id("t_", topic.name) << " --> " << mermaid_id("n_", n.name) << "\n";
      else
        out << "  " << mermaid_id("n_", n.name) << " --> " << mermaid_id("t_", topic.name) << "\n";
    }
  }
  return out.str();
}

}  // namespace rill
