// Finds secret values in the text of a pipeline file and masks them in what
// errors show. A small scanner of YAML's line structure (keys, quotes, flow
// collections, indentation), enough to bound a value without parsing.
#include "secret_values.h"

#include <algorithm>

#include "rill/config.h"

namespace rill::pipeline {
namespace {

constexpr std::size_t kNone = std::string::npos;
// Shorter values are hidden on their own line only: elsewhere they would
// mask ordinary words and symbols.
constexpr std::size_t kShortestMaskedElsewhere = 3;

bool ends_flow_item(char c) {
  return c == ',' || c == '}' || c == ']';
}

// Just past the quote that closes the quoted scalar starting at `at`; kNone
// when it does not close on this line.
std::size_t closing_quote(const std::string& line, std::size_t at) {
  const char quote = line[at];
  for (std::size_t i = at + 1; i < line.size(); ++i) {
    if (quote == '"' && line[i] == '\\') {
      ++i;
    } else if (line[i] == quote) {
      if (quote == '\'' && i + 1 < line.size() && line[i + 1] == '\'') {
        ++i;  // '' inside single quotes
      } else {
        return i + 1;
      }
    }
  }
  return kNone;
}

// Just past the bracket that closes the flow collection starting at `at`;
// kNone when it does not close on this line.
std::size_t closing_bracket(const std::string& line, std::size_t at) {
  int depth = 0;
  for (std::size_t i = at; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '"' || c == '\'') {
      const std::size_t end = closing_quote(line, i);
      if (end == kNone) return kNone;
      i = end - 1;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if ((c == '}' || c == ']') && --depth == 0) {
      return i + 1;
    }
  }
  return kNone;
}

bool starts_comment(const std::string& line, std::size_t at) {
  return line[at] == '#' && (at == 0 || line[at - 1] == ' ');
}

// End of the value starting at `at`: a quoted scalar or a flow collection to
// its closing character (the end of the line when it goes on past it), a
// plain scalar to a comment or the end of the line, or in a flow collection
// to the next ',', '}' or ']'.
std::size_t value_end(const std::string& line, std::size_t at, bool in_flow) {
  if (at >= line.size() || starts_comment(line, at)) return at;
  std::size_t end = kNone;
  if (line[at] == '"' || line[at] == '\'')
    end = closing_quote(line, at);
  else if (line[at] == '{' || line[at] == '[')
    end = closing_bracket(line, at);
  else {
    end = at;
    while (end < line.size() && !(in_flow && ends_flow_item(line[end])) &&
           !starts_comment(line, end))
      ++end;
    while (end > at && line[end - 1] == ' ') --end;
  }
  return end == kNone ? line.size() : end;
}

}  // namespace

SecretValues::SecretValues(const std::vector<std::string>& lines)
    : lines_(lines), spans_(lines.size()) {
  int open_indent = -1;
  for (std::size_t i = 0; i < lines_.size(); ++i) scan_line(i, open_indent);
}

// `open_indent`: the column of the secret key whose value goes on over the
// following deeper lines; -1 when none.
void SecretValues::scan_line(std::size_t index, int& open_indent) {
  const std::string& line = lines_[index];
  const std::size_t indent = line.find_first_not_of(' ');
  if (indent == kNone) return;  // blank lines belong to a block scalar that goes on after them
  if (open_indent >= 0 && static_cast<int>(indent) > open_indent) {
    spans_[index].push_back({indent, line.size()});
    return;
  }
  open_indent = -1;
  int depth = 0;  // of flow collections
  std::size_t at = indent;
  while (at < line.size()) {
    const char c = line[at];
    if (starts_comment(line, at)) break;
    if (c == ' ' || c == ',' || (c == '-' && (at + 1 == line.size() || line[at + 1] == ' '))) {
      ++at;
      continue;
    }
    if (c == '{' || c == '[' || c == '}' || c == ']') {
      depth = std::max(0, depth + (c == '{' || c == '[' ? 1 : -1));
      ++at;
      continue;
    }
    // A key, or a scalar that is not one (a sequence item, a flow value).
    const std::size_t key_begin = at;
    std::string key;
    std::size_t colon = at;
    if (c == '"' || c == '\'') {
      const std::size_t end = closing_quote(line, at);
      if (end == kNone) break;
      key = line.substr(at + 1, end - at - 2);
      colon = end;
      while (colon < line.size() && line[colon] == ' ') ++colon;
    } else {
      while (colon < line.size() && !starts_comment(line, colon) &&
             !(depth > 0 && ends_flow_item(line[colon])) &&
             !(line[colon] == ':' && (colon + 1 == line.size() || line[colon + 1] == ' ' ||
                                      (depth > 0 && ends_flow_item(line[colon + 1])))))
        ++colon;
      key = line.substr(at, colon - at);
      while (!key.empty() && key.back() == ' ') key.pop_back();
    }
    if (colon >= line.size() || line[colon] != ':') {
      at = std::max(colon, key_begin + 1);
      continue;
    }
    std::size_t value_begin = colon + 1;
    while (value_begin < line.size() && line[value_begin] == ' ') ++value_begin;
    const std::size_t end = value_end(line, value_begin, depth > 0);
    if (is_secret_key(key)) {
      if (end > value_begin) {
        spans_[index].push_back({value_begin, end});
        std::string value = line.substr(value_begin, end - value_begin);
        const bool quoted = value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
                            value.back() == value.front();
        // A block scalar's header (|, >-) is no part of the value.
        if (value.front() != '|' && value.front() != '>')
          add(quoted ? value.substr(1, value.size() - 2) : value);
      }
      if (depth == 0) open_indent = static_cast<int>(key_begin);
      at = end;
    } else {
      // Into a flow collection, whose keys may be secret; over anything else.
      const bool collection =
          value_begin < line.size() && (line[value_begin] == '{' || line[value_begin] == '[');
      at = collection ? value_begin : end;
    }
    at = std::max(at, colon + 1);
  }
}

void SecretValues::add(const std::string& value) {
  if (value.size() < kShortestMaskedElsewhere ||
      std::find(values_.begin(), values_.end(), value) != values_.end())
    return;
  values_.push_back(value);
}

void SecretValues::hide_rest_of_line(int line, int column) {
  if (line < 1 || line > static_cast<int>(lines_.size()) || column < 1) return;
  const std::size_t index = static_cast<std::size_t>(line - 1);
  const std::size_t begin = static_cast<std::size_t>(column - 1);
  if (begin < lines_[index].size()) spans_[index].push_back({begin, lines_[index].size()});
}

ShownLine SecretValues::show_line(int line, int column) const {
  if (line < 1 || line > static_cast<int>(lines_.size())) return {};
  const std::size_t index = static_cast<std::size_t>(line - 1);
  const std::string& text = lines_[index];
  std::vector<Span> spans = spans_[index];
  for (const std::string& value : values_)
    for (std::size_t at = text.find(value); at != kNone; at = text.find(value, at + value.size()))
      spans.push_back({at, at + value.size()});
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin; });

  ShownLine shown{{}, column};
  bool placed = column < 1;
  const std::size_t target = placed ? 0 : static_cast<std::size_t>(column - 1);
  std::size_t from = 0;
  for (std::size_t i = 0; i < spans.size(); ++i) {
    Span span = spans[i];
    if (span.end <= from) continue;
    span.begin = std::max(span.begin, from);
    // Merge overlapping and touching spans into one mask.
    while (i + 1 < spans.size() && spans[i + 1].begin <= span.end)
      span.end = std::max(span.end, spans[++i].end);
    if (!placed && target < span.end) {
      shown.column =
          static_cast<int>(shown.text.size() + (std::min(target, span.begin) - from)) + 1;
      placed = true;
    }
    shown.text.append(text, from, span.begin - from);
    shown.text += kSecretMask;
    from = span.end;
  }
  if (!placed) shown.column = static_cast<int>(shown.text.size() + (target - from)) + 1;
  shown.text.append(text, from, kNone);
  return shown;
}

std::string SecretValues::mask(std::string message) const {
  std::vector<const std::string*> longest_first;
  for (const std::string& value : values_) longest_first.push_back(&value);
  std::sort(longest_first.begin(), longest_first.end(),
            [](const std::string* a, const std::string* b) { return a->size() > b->size(); });
  for (const std::string* value : longest_first)
    for (std::size_t at = message.find(*value); at != kNone;
         at = message.find(*value, at + kSecretMask.size()))
      message.replace(at, value->size(), kSecretMask);
  return message;
}

}  // namespace rill::pipeline
