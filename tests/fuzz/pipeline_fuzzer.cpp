// Fuzzes the YAML pipeline loader: loads arbitrary text as a pipeline file and
// describes what loads, as `rill validate` and `rill describe` do. A
// PipelineError is the expected outcome of bad input; any other exception or a
// sanitizer report is a finding.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "rill/pipeline/pipeline.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // A fixed environment, so that a run depends on its input only.
  const rill::pipeline::Environment environment =
      [](const std::string& name) -> std::optional<std::string> {
    if (name == "APP_NAME") return "fuzz-app";
    if (name == "BOOTSTRAP") return "localhost:9092";
    return std::nullopt;
  };
  try {
    const rill::pipeline::Pipeline pipeline =
        rill::pipeline::load_text(text, "fuzz.yaml", environment);
    pipeline.topology.describe();
    pipeline.topology.describe_dot();
    pipeline.topology.describe_mermaid();
  } catch (const rill::pipeline::PipelineError& e) {
    if (e.position().line < 0 || e.position().column < 0) std::abort();
    e.report();
  }
  return 0;
}
