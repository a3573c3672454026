// docs/configuration.md is rendered from the one declaration of the config keys.
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "rill/config.h"

TEST_CASE("docs/configuration.md matches the declared config keys", "[unit][config-doc]") {
  const std::string path = std::string(RILL_SOURCE_DIR) + "/docs/configuration.md";
  const std::string rendered = rill::config_reference_markdown();
  if (std::getenv("RILL_UPDATE_DOCS") != nullptr) std::ofstream(path) << rendered;
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  INFO("regenerate with: RILL_UPDATE_DOCS=1 build/tests/rill_unit_tests \"[config-doc]\"");
  CHECK(text.str() == rendered);
  for (const auto& key : rill::config_keys())
    CHECK(rendered.find("`" + std::string(key.name) + "`") != std::string::npos);
}
