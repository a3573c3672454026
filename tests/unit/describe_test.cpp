// Topology descriptions: Kafka Streams' TopologyDescription text, Graphviz DOT
// and Mermaid.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <unistd.h>

#include "rill/streams_builder.h"
#include "rill/topology.h"

using namespace rill;
using Catch::Contains;

namespace {

// words -> select_key -> [by-word-repartition] -> map_values -> counts
Topology two_subtopologies() {
  StreamsBuilder builder;
  builder.stream("words", serdes::string(), serdes::string())
      .select_key([](const std::string&, const std::string& word) { return word; })
      .repartition({.name = "by-word"})
      .map_values([](const std::string& word) { return static_cast<int64_t>(word.size()); })
      .to("counts");
  return builder.build();
}

class Pass final : public Processor<std::string, std::string> {
 public:
  void process(const Record<std::string, std::string>&) override {}
};

std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (auto pos = text.find(part); pos != std::string::npos; pos = text.find(part, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("describe() writes Kafka Streams' TopologyDescription text", "[unit][describe]") {
  const std::string expected =
      "Topologies:\n"
      "   Sub-topology: 0\n"
      "    Source: KSTREAM-SOURCE-0000000000 (topics: [words])\n"
      "      --> KSTREAM-KEY-SELECT-0000000001\n"
      "    Processor: KSTREAM-KEY-SELECT-0000000001 (stores: [])\n"
      "      --> by-word-repartition-sink\n"
      "      <-- KSTREAM-SOURCE-0000000000\n"
      "    Sink: by-word-repartition-sink (topic: by-word-repartition)\n"
      "      <-- KSTREAM-KEY-SELECT-0000000001\n"
      "\n"
      "  Sub-topology: 1\n"
      "    Source: by-word-repartition-source (topics: [by-word-repartition])\n"
      "      --> KSTREAM-MAPVALUES-0000000002\n"
      "    Processor: KSTREAM-MAPVALUES-0000000002 (stores: [])\n"
      "      --> KSTREAM-SINK-0000000003\n"
      "      <-- by-word-repartition-source\n"
      "    Sink: KSTREAM-SINK-0000000003 (topic: counts)\n"
      "      <-- KSTREAM-MAPVALUES-0000000002\n"
      "\n";
  CHECK(two_subtopologies().describe() == expected);
}

TEST_CASE("describe() orders nodes as Kafka Streams does", "[unit][describe]") {
  // Kafka Streams sorts by the number of paths below a node, then by name; the
  // order nodes were added in does not matter.
  Topology topology;
  auto pass = [] { return std::make_unique<Pass>(); };
  topology.add_source<std::string, std::string>("src", {"in", "none"})
      .add_processor("a-short", pass, {"src"})
      .add_sink<std::string, std::string>("sink-short", "short", {"a-short"})
      .add_processor("b-long", pass, {"src"})
      .add_processor("b-long-2", pass, {"b-long"})
      .add_processor("both", pass, {"a-short", "b-long-2"})
      .add_sink<std::string, std::string>("sink-long", "long", {"b-long-2"});
  topology.build();
  CHECK(topology.describe() ==
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: src (topics: [in, none])\n"
        "      --> b-long, a-short\n"
        "    Processor: b-long (stores: [])\n"
        "      --> b-long-2\n"
        "      <-- src\n"
        "    Processor: a-short (stores: [])\n"
        "      --> both, sink-short\n"
        "      <-- src\n"
        "    Processor: b-long-2 (stores: [])\n"
        "      --> both, sink-long\n"
        "      <-- b-long\n"
        "    Processor: both (stores: [])\n"
        "      --> none\n"
        "      <-- a-short, b-long-2\n"
        "    Sink: sink-long (topic: long)\n"
        "      <-- b-long-2\n"
        "    Sink: sink-short (topic: short)\n"
        "      <-- a-short\n"
        "\n");
}

TEST_CASE("describe_dot() is a Graphviz digraph with a cluster per sub-topology",
          "[unit][describe]") {
  const std::string dot = two_subtopologies().describe_dot();
  CHECK(dot.starts_with("digraph topology {\n"));
  CHECK(dot.ends_with("}\n"));
  CHECK(count(dot, "{") == count(dot, "}"));
  CHECK(count(dot, "subgraph cluster_") == 2);
  CHECK_THAT(dot, Contains("subgraph cluster_0 {") && Contains("label=\"Sub-topology 0\"") &&
                      Contains("subgraph cluster_1 {") && Contains("label=\"Sub-topology 1\""));
  // Node edges, and topics as cylinders between sinks and sources.
  CHECK_THAT(dot,
             Contains("\"KSTREAM-SOURCE-0000000000\" -> \"KSTREAM-KEY-SELECT-0000000001\";") &&
                 Contains("\"topic:words\" -> \"KSTREAM-SOURCE-0000000000\";") &&
                 Contains("\"by-word-repartition-sink\" -> \"topic:by-word-repartition\";") &&
                 Contains("\"topic:by-word-repartition\" -> \"by-word-repartition-source\";") &&
                 Contains("\"KSTREAM-SINK-0000000003\" -> \"topic:counts\";"));
  CHECK_THAT(dot, Contains("\"topic:by-word-repartition\" [label=\"by-word-repartition\", "
                           "shape=cylinder, style=dashed];") &&
                      Contains("\"topic:counts\" [label=\"counts\", shape=cylinder];"));
  CHECK(count(dot, " -> ") == 8);

  const std::filesystem::path dot_binary = "/usr/bin/dot";
  if (std::filesystem::exists(dot_binary)) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("rill-describe-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "topology.dot") << dot;
    const std::string command = dot_binary.string() + " -Tsvg " + (dir / "topology.dot").string() +
                                " -o " + (dir / "topology.svg").string() + " 2>" +
                                (dir / "errors.txt").string();
    const int status = std::system(command.c_str());
    std::stringstream svg, errors;
    svg << std::ifstream(dir / "topology.svg").rdbuf();
    errors << std::ifstream(dir / "errors.txt").rdbuf();
    INFO("dot said: " << errors.str());
    CHECK(status == 0);
    CHECK(errors.str().empty());
    // Graphviz writes '-' as "&#45;" in SVG text.
    CHECK_THAT(svg.str(), Contains("<svg") && Contains("<title>cluster_1</title>") &&
                              Contains("KSTREAM&#45;MAPVALUES&#45;0000000002"));
    CHECK(count(svg.str(), "class=\"cluster\"") == 2);
    CHECK(count(svg.str(), "class=\"edge\"") == 8);
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("describe_mermaid() is a flowchart with a subgraph per sub-topology",
          "[unit][describe]") {
  const std::string mermaid = two_subtopologies().describe_mermaid();
  CHECK(mermaid.starts_with("flowchart LR\n"));
  CHECK_THAT(mermaid, Contains("  subgraph sub0[\"Sub-topology 0\"]\n") &&
                          Contains("  subgraph sub1[\"Sub-topology 1\"]\n"));
  CHECK(count(mermaid, "subgraph ") == 2);
  CHECK(count(mermaid, "\n  end\n") == 2);
  CHECK_THAT(mermaid,
             Contains("    n_KSTREAM_SOURCE_0000000000[\"KSTREAM-SOURCE-0000000000\"]\n") &&
                 Contains("  t_by_word_repartition[(\"by-word-repartition\")]\n") &&
                 Contains("  n_KSTREAM_SOURCE_0000000000 --> n_KSTREAM_KEY_SELECT_0000000001\n") &&
                 Contains("  t_words --> n_KSTREAM_SOURCE_0000000000\n") &&
                 Contains("  n_by_word_repartition_sink --> t_by_word_repartition\n") &&
                 Contains("  t_by_word_repartition --> n_by_word_repartition_source\n") &&
                 Contains("  n_KSTREAM_MAPVALUES_0000000002 --> n_KSTREAM_SINK_0000000003\n") &&
                 Contains("  n_KSTREAM_SINK_0000000003 --> t_counts\n"));
  CHECK(count(mermaid, " --> ") == 8);
}

TEST_CASE("descriptions need a built topology", "[unit][describe]") {
  Topology topology;
  topology.add_source<std::string, std::string>("src", {"none"});
  CHECK_THROWS_AS(topology.describe(), TopologyError);
  CHECK_THROWS_AS(topology.describe_dot(), TopologyError);
  CHECK_THROWS_WITH(topology.describe_mermaid(), Contains("build()"));
  topology.build();
  CHECK(topology.describe() ==
        "Topologies:\n   Sub-topology: 0\n    Source: src (topics: [none])\n      --> none\n\n");
}
