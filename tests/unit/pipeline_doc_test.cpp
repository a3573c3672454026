// docs/yaml-reference.md and the JSON Schema are rendered from the
// declaration of the pipeline format; these tests fail when the committed
// files differ, and check that the declaration, the reference and the schema
// name the same operators and fields.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "rill/pipeline/declaration.h"
#include "rill/pipeline/expression.h"

namespace {

std::string check_generated(const std::string& relative, const std::string& rendered) {
  const std::string path = std::string(RILL_SOURCE_DIR) + "/" + relative;
  if (std::getenv("RILL_UPDATE_DOCS") != nullptr) std::ofstream(path) << rendered;
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("docs/yaml-reference.md matches the declared pipeline format", "[unit][pipeline-doc]") {
  const std::string rendered = rill::pipeline::reference_markdown();
  INFO("regenerate with: RILL_UPDATE_DOCS=1 build/tests/rill_unit_tests \"[pipeline-doc]\"");
  CHECK(check_generated("docs/yaml-reference.md", rendered) == rendered);
  for (const auto& op : rill::pipeline::operators()) {
    CHECK(rendered.find("### " + std::string(op.name) + "\n") != std::string::npos);
    for (const auto& field : op.fields)
      CHECK(rendered.find("| `" + std::string(field.name) + "` |") != std::string::npos);
  }
  for (const auto& function : rill::pipeline::function_docs())
    CHECK(rendered.find(std::string(function.signature)) != std::string::npos);
}

TEST_CASE("the pipeline JSON Schema matches the declared pipeline format", "[unit][pipeline-doc]") {
  const std::string rendered = rill::pipeline::json_schema();
  INFO("regenerate with: RILL_UPDATE_DOCS=1 build/tests/rill_unit_tests \"[pipeline-doc]\"");
  CHECK(check_generated("config/schema/rill-pipeline.schema.json", rendered) == rendered);
  const nlohmann::json schema = nlohmann::json::parse(rendered);
  CHECK(schema["required"] == nlohmann::json::array({"application", "sources", "flows"}));
  std::set<std::string> step_operators;
  for (const auto& step : schema["$defs"]["step"]["oneOf"])
    if (step.contains("required")) step_operators.insert(step["required"][0].get<std::string>());
  std::set<std::string> declared;
  for (const auto& op : rill::pipeline::operators()) declared.insert(std::string(op.name));
  CHECK(step_operators == declared);
  CHECK(schema["$defs"]["application"]["properties"].contains("commit.interval.ms"));
}
