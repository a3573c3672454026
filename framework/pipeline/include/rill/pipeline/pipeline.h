// Pipelines described in YAML, loaded into a Topology built with the DSL and
// the shared operators: what the `rill` command runs.
//
//   rill::pipeline::Pipeline pipeline = rill::pipeline::load_file("orders.yaml");
//   rill::KafkaStreams streams(pipeline.topology, pipeline.config);
//
// Every mistake a user can make in the file throws PipelineError naming its
// file, line and column, what was found and what was expected; values of
// secret keys (rill::is_secret_key) show as ***** in it.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "rill/config.h"
#include "rill/pipeline/expression.h"
#include "rill/topology.h"

namespace rill::pipeline {

// A place in a pipeline file; line and column count from 1.
struct Position {
  std::string file;
  int line = 0;
  int column = 0;
};

class PipelineError : public std::runtime_error {
 public:
  // `source_line` is the text of the line, shown under the message with a
  // caret at `caret_column`: the position's column unless given, as in a line
  // whose secret values are masked.
  PipelineError(Position position, std::string message, std::string source_line = {},
                int caret_column = 0);
  const Position& position() const { return position_; }
  const std::string& message() const { return message_; }
  // "file:line:column: error: message", then the line and a caret.
  std::string report() const;

 private:
  Position position_;
  std::string message_;
  std::string source_line_;
  int caret_column_ = 0;
};

// Reads `${NAME}` and `${NAME:-default}`: the environment by default.
using Environment = std::function<std::optional<std::string>(const std::string& name)>;
Environment process_environment();

// A topic the pipeline reads or writes, with where the file names it.
struct TopicUse {
  std::string topic;
  Position position;
  bool source = false;
  // Partitions of a source topic the embedded cluster creates.
  int32_t partitions = 1;
};

// Sample records for a source's topic, produced by the `rill` command.
struct Generator {
  std::string topic;
  std::string source;
  // Records to produce; 0 produces until stopped.
  int64_t count = 0;
  int64_t interval_ms = 1000;
  std::optional<Expression> key;
  std::function<Json(const EvalContext&)> value;
  // How the key and value are written, as the source reads them.
  SerdePtr<Json> key_serde;
  SerdePtr<Json> value_serde;
};

struct Pipeline {
  StreamsConfig config;
  Topology topology;
  // No bootstrap.servers, or "embedded": run on an in-process cluster.
  bool embedded = false;
  std::vector<TopicUse> topics;
  std::vector<Generator> generators;
};

// Application settings that replace the file's, in order (`rill run --set
// key=value`). They are checked as the file's are; a mistake in one throws
// ConfigError naming it.
using Settings = std::vector<std::pair<std::string, std::string>>;

// The topic a `to` step writes, from the name the file gives; empty: that
// name. `rill replay` writes to "<topic>-as-of-<time>" instead.
using OutputTopics = std::function<std::string(const std::string& topic)>;

// Throws PipelineError.
Pipeline load_file(const std::string& path, const Environment& environment = process_environment(),
                   const Settings& overrides = {}, const OutputTopics& output_topics = {});
Pipeline load_text(const std::string& text, const std::string& file_name,
                   const Environment& environment = process_environment(),
                   const Settings& overrides = {}, const OutputTopics& output_topics = {});

// The serde of a record format (json, string, bytes, int64) over JSON values.
SerdePtr<Json> format_serde(std::string_view format);
// The serde a group_by's repartition topic and its aggregation's store use for
// keys in `format`: as format_serde, except that string refuses object and
// array keys, which only json can carry.
SerdePtr<Json> key_format_serde(std::string_view format);

}  // namespace rill::pipeline
