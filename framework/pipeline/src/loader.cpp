// Loads a pipeline file in two phases: its YAML read and checked against the
// declaration into a PipelineSpec (spec.h), then the topology planned from
// that (planner.h). Every error names its place.
#include <fstream>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "rill/pipeline/pipeline.h"

#include "document.h"
#include "planner.h"
#include "spec.h"

namespace rill::pipeline {

PipelineError::PipelineError(Position position, std::string message, std::string source_line,
                             int caret_column)
    : std::runtime_error(position.file + ":" + std::to_string(position.line) + ":" +
                         std::to_string(position.column) + ": " + message),
      position_(std::move(position)),
      message_(std::move(message)),
      source_line_(std::move(source_line)),
      caret_column_(caret_column > 0 ? caret_column : position_.column) {}

std::string PipelineError::report() const {
  std::string out = std::string(what()) + "\n";
  if (!source_line_.empty() && caret_column_ > 0) {
    out += "  " + source_line_ + "\n  ";
    for (int i = 1; i < caret_column_ && i <= static_cast<int>(source_line_.size()); ++i)
      out += source_line_[static_cast<std::size_t>(i - 1)] == '\t' ? '\t' : ' ';
    out += "^\n";
  }
  return out;
}

Environment process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

Pipeline load_text(const std::string& text, const std::string& file_name,
                   const Environment& environment, const Settings& overrides,
                   const OutputTopics& output_topics) {
  try {
    const Document document(text, file_name, environment);
    PipelineSpec spec = read_spec(document, overrides);
    spec.output_topics = output_topics;
    return Planner(document, std::move(spec)).plan();
  } catch (const YAML::Exception& e) {
    // A YAML shape the checks did not foresee: still one error, placed.
    throw PipelineError(Position{file_name, e.mark.line + 1, e.mark.column + 1},
                        "unexpected YAML: " + e.msg);
  }
}

Pipeline load_file(const std::string& path, const Environment& environment,
                   const Settings& overrides, const OutputTopics& output_topics) {
  std::ifstream in(path);
  if (!in) throw PipelineError(Position{path, 0, 0}, "cannot read the file");
  std::stringstream text;
  text << in.rdbuf();
  return load_text(text.str(), path, environment, overrides, output_topics);
}

}  // namespace rill::pipeline
