// The first phase of loading a pipeline: its YAML read and checked against
// the declaration (every section and field known and of its declared kind,
// every step one known operator, the application's settings valid), with no
// topology built yet. Names, expressions and the topology are the planner's.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "rill/config.h"
#include "rill/pipeline/pipeline.h"

#include "document.h"

namespace rill::pipeline {

struct Operator;

// The fields given in a mapping (a source, a step), checked already against
// the declaration; absent and null fields are left out.
struct Fields {
  YAML::Mark mark;
  std::map<std::string, YAML::Node> fields;

  bool has(std::string_view name) const { return fields.contains(std::string(name)); }
  const YAML::Node& at(std::string_view name) const { return fields.at(std::string(name)); }
  // The field's text (see Document::scalar), or `fallback` when absent.
  std::string text(const Document& document, std::string_view name,
                   std::string fallback = {}) const {
    return has(name) ? document.scalar(at(name)) : fallback;
  }
};

// A step's operator and its fields, from either form: a mapping of fields or
// the shorthand scalar.
struct StepSpec : Fields {
  const Operator* op = nullptr;
};

struct SourceSpec {
  YAML::Node name;
  YAML::Node node;
  Fields fields;
};

struct FlowSpec {
  // A stream name, or a list of them to merge.
  YAML::Node from;
  std::vector<StepSpec> steps;
  // Absent when the flow's stream is not named.
  YAML::Node as;
};

struct PipelineSpec {
  YAML::Mark mark;
  // The application's settings with the overrides applied.
  StreamsConfig config;
  bool embedded = false;
  // Topics the settings name (the dead-letter topic).
  std::vector<TopicUse> topics;
  std::vector<SourceSpec> sources;
  std::vector<FlowSpec> flows;
  // Renames the topics `to` steps write (see load_file).
  OutputTopics output_topics;
};

// Throws PipelineError naming the first mistake and its place; ConfigError
// for a mistake in `overrides`.
PipelineSpec read_spec(const Document& document, const Settings& overrides);

}  // namespace rill::pipeline
