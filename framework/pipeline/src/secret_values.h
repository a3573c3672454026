// Keeps secret values out of pipeline errors: finds them in the text of a
// pipeline file and masks them in the line and the message an error shows.
// It reads the text, not parsed YAML, so that a file that does not parse is
// covered too. Which keys are secret is rill::is_secret_key's rule.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace rill::pipeline {

// A line of the file as an error shows it: secrets masked, and the caret's
// column moved with the text.
struct ShownLine {
  std::string text;
  int column = 0;
};

class SecretValues {
 public:
  // Finds the value of every secret key: from after "key:" to the end of the
  // line (to the next ',' or '}' in a flow mapping), then every following
  // line indented deeper than the key (block scalars, multi-line values,
  // mappings under the key). `lines` must outlive this object.
  explicit SecretValues(const std::vector<std::string>& lines);

  // Hides `value` wherever it appears in a shown line or a message: the value
  // of a secret environment variable or key, or one the error is not about.
  // Values under 3 characters are left to the masks of their own line, as
  // they would mask ordinary words of messages.
  void add(const std::string& value);
  // Hides line `line` (from 1) from `column` on.
  void hide_rest_of_line(int line, int column);

  // Line `line` (from 1) with secrets masked; `column` moves to the same
  // character, or to the start of the mask over it. Empty text for a line
  // outside the file.
  ShownLine show_line(int line, int column) const;
  // `message` with every added value masked.
  std::string mask(std::string message) const;

 private:
  // Byte columns [begin, end) of a line, from 0.
  struct Span {
    std::size_t begin = 0;
    std::size_t end = 0;
  };
  void scan_line(std::size_t line, int& open_indent);

  const std::vector<std::string>& lines_;
  std::vector<std::vector<Span>> spans_;
  std::vector<std::string> values_;
};

}  // namespace rill::pipeline
