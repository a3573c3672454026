// A pipeline file as both phases of loading see it: where a YAML node is,
// errors that show its line with every secret masked, and scalars with
// ${NAME} expanded from the environment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "rill/pipeline/pipeline.h"

#include "secret_values.h"

namespace rill::pipeline {

class Document {
 public:
  Document(std::string text, std::string file, const Environment& environment);
  // The secret masks refer to the lines: a document stays where it is.
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

  const std::string& text() const { return text_; }
  const std::string& file() const { return file_; }
  Position position(const YAML::Mark& mark) const;

  [[noreturn]] void fail_at(int line, int column, const std::string& message) const;
  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& message) const;
  // Where byte `offset` of a scalar's text is in the file: after the quote of
  // a quoted scalar, on the lines after the indicator of a block scalar.
  [[noreturn]] void fail_in_scalar(const YAML::Node& node, std::size_t offset,
                                   const std::string& message) const;

  // The scalar's text with ${NAME} and ${NAME:-default} replaced. The values
  // of secret variables join the masks.
  std::string scalar(const YAML::Node& node) const;
  int64_t parse_duration(const YAML::Node& node) const;
  int64_t parse_integer(const YAML::Node& node) const;

  // Learns secret values as they are read, for the errors that follow.
  SecretValues& secrets() const { return secrets_; }

 private:
  std::string text_;
  std::string file_;
  const Environment& environment_;
  std::vector<std::string> lines_;
  mutable SecretValues secrets_;
};

// "a, b, c".
std::string list_names(const std::vector<std::string_view>& names);
// What a node is, as errors say what they found: 'text', a list, a mapping.
std::string describe_node(const YAML::Node& node);

}  // namespace rill::pipeline
