// Damaged pipeline files: every example with a character removed or inserted
// at many places must either load or give one PipelineError naming a place in
// the file, never another exception or a crash.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "rill/pipeline/pipeline.h"

TEST_CASE("damaged example pipelines load or give one placed error", "[unit][pipeline-errors]") {
  const auto no_environment = [](const std::string&) { return std::optional<std::string>(); };
  int errors = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(RILL_SOURCE_DIR) + "/config/pipelines")) {
    std::ifstream in(entry.path());
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();
    const int lines = static_cast<int>(std::count(text.begin(), text.end(), '\n')) + 1;
    for (std::size_t at = 0; at < text.size(); at += 3) {
      for (const std::string& damage : {std::string(), std::string(":"), std::string("["),
                                        std::string("- "), std::string("'"), std::string("\n  ")}) {
        std::string damaged = text;
        if (damage.empty())
          damaged.erase(at, 1);
        else
          damaged.insert(at, damage);
        try {
          rill::pipeline::load_text(damaged, "damaged.yaml", no_environment);
        } catch (const rill::pipeline::PipelineError& e) {
          ++errors;
          INFO(entry.path().filename().string()
               << " at " << at << " with '" << damage << "': " << e.what());
          CHECK(e.position().line >= 1);
          CHECK(e.position().line <= lines + 2);
          CHECK(e.position().column >= 1);
        } catch (const std::exception& e) {
          FAIL_CHECK(entry.path().filename().string()
                     << " at " << at << " with '" << damage << "': " << e.what());
        }
      }
    }
  }
  CHECK(errors > 1000);
}
