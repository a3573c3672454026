#include "document.h"

#include <sstream>
#include <stdexcept>

#include "rill/config.h"
#include "rill/pipeline/declaration.h"

namespace rill::pipeline {
namespace {

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace

Document::Document(std::string text, std::string file, const Environment& environment)
    : text_(std::move(text)),
      file_(std::move(file)),
      environment_(environment),
      lines_(split_lines(text_)),
      secrets_(lines_) {}

Position Document::position(const YAML::Mark& mark) const {
  return Position{file_, mark.line + 1, mark.column + 1};
}

void Document::fail_at(int line, int column, const std::string& message) const {
  const ShownLine shown = secrets_.show_line(line, column);
  throw PipelineError(Position{file_, line, column}, secrets_.mask(message), shown.text,
                      shown.column);
}

void Document::fail(const YAML::Mark& mark, const std::string& message) const {
  if (mark.line < 0) fail_at(0, 0, message);
  fail_at(mark.line + 1, mark.column + 1, message);
}

void Document::fail_in_scalar(const YAML::Node& node, std::size_t offset,
                              const std::string& message) const {
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0 || mark.line >= static_cast<int>(lines_.size())) fail(mark, message);
  const std::string& line = lines_[static_cast<std::size_t>(mark.line)];
  const char first = static_cast<std::size_t>(mark.column) < line.size()
                         ? line[static_cast<std::size_t>(mark.column)]
                         : ' ';
  if (first == '|' || first == '>') {
    const std::string& value = node.Scalar();
    int row = mark.line + 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < offset && i < value.size(); ++i)
      if (value[i] == '\n') {
        ++row;
        line_start = i + 1;
      }
    int indent = 0;
    if (row < static_cast<int>(lines_.size()))
      for (char c : lines_[static_cast<std::size_t>(row)]) {
        if (c != ' ') break;
        ++indent;
      }
    fail_at(row + 1, indent + static_cast<int>(offset - line_start) + 1, message);
  }
  const int quote = (first == '"' || first == '\'') ? 1 : 0;
  fail_at(mark.line + 1, mark.column + 1 + quote + static_cast<int>(offset), message);
}

std::string Document::scalar(const YAML::Node& node) const {
  const std::string& raw = node.Scalar();
  if (raw.find("${") == std::string::npos) return raw;
  std::string out;
  std::size_t i = 0;
  while (i < raw.size()) {
    const std::size_t start = raw.find("${", i);
    if (start == std::string::npos) {
      out += raw.substr(i);
      break;
    }
    out += raw.substr(i, start - i);
    const std::size_t end = raw.find('}', start);
    if (end == std::string::npos)
      fail_in_scalar(node, start,
                     "found an unterminated '${', expected ${NAME} or "
                     "${NAME:-default}");
    const std::string inside = raw.substr(start + 2, end - start - 2);
    const std::size_t dash = inside.find(":-");
    const std::string name = inside.substr(0, dash);
    if (name.empty())
      fail_in_scalar(node, start, "found '${}', expected ${NAME} or ${NAME:-default}");
    std::optional<std::string> value = environment_(name);
    if (!value || (value->empty() && dash != std::string::npos)) {
      if (dash == std::string::npos)
        fail_in_scalar(node, start,
                       "environment variable '" + name +
                           "' is not set, expected it set or a default: ${" + name + ":-default}");
      value = inside.substr(dash + 2);
    }
    if (is_secret_key(name)) secrets_.add(*value);
    out += *value;
    i = end + 1;
  }
  return out;
}

int64_t Document::parse_duration(const YAML::Node& node) const {
  try {
    return parse_duration_ms(scalar(node));
  } catch (const std::invalid_argument& e) {
    fail(node.Mark(), e.what());
  }
}

int64_t Document::parse_integer(const YAML::Node& node) const {
  const std::string text = scalar(node);
  std::size_t used = 0;
  int64_t value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size())
    fail(node.Mark(), "found '" + text + "', expected an integer");
  return value;
}

std::string list_names(const std::vector<std::string_view>& names) {
  std::string out;
  for (std::string_view name : names) out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

std::string describe_node(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    case YAML::NodeType::Sequence:
      return node.size() == 0 ? "an empty list" : "a list";
    case YAML::NodeType::Map:
      return node.size() == 0 ? "an empty mapping" : "a mapping";
    default:
      return "nothing";
  }
}

}  // namespace rill::pipeline
