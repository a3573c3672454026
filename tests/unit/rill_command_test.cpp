// The `rill` command without a broker: exit codes, the one-error report of a
// bad pipeline, help and version, topology pictures that Graphviz renders,
// and secrets kept out of everything it prints.
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>
#include <sys/wait.h>

namespace {

struct Result {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

Result shell(const std::string& command) {
  Result result;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buffer{};
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe))
    result.output.append(buffer.data(), n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

Result rill(const std::string& arguments) {
  return shell(std::string(RILL_CLI) + " " + arguments);
}

std::string write_file(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / name;
  std::ofstream(path) << text;
  return path.string();
}

std::string example(const std::string& name) {
  return std::string(RILL_SOURCE_DIR) + "/config/pipelines/" + name;
}

}  // namespace

TEST_CASE("rill validate reports one error with its position and exits with 2",
          "[unit][rill-command]") {
  const std::string file = write_file("rill-command-bad.yaml", R"(application:
  application.id: app
sources:
  in: {topic: input}
flows:
  - from: in
    steps:
      - filter: value.amount >
)");
  const Result result = rill("validate " + file);
  CHECK(result.exit_code == 2);
  CHECK(result.output == file +
                             ":8:31: bad expression: expected a value, a name or '(', found the "
                             "end of the expression\n"
                             "        - filter: value.amount >\n"
                             "                                ^\n");
}

TEST_CASE("rill validate accepts every example and names its topics", "[unit][rill-command]") {
  const Result result = rill("validate " + example("word-count.yaml"));
  CHECK(result.exit_code == 0);
  CHECK(result.output == example("word-count.yaml") +
                             ": ok, 2 sub-topologies, 1 state stores, reads lines, writes "
                             "word-counts\n" +
                             example("word-count.yaml") +
                             ": note: the first record that does not parse or whose expression "
                             "fails stops the pipeline (log-and-fail); to set such records "
                             "aside in a dead-letter topic, see \"Bad records\" in "
                             "docs/yaml-reference.md\n");
  // A pipeline that sets bad records aside gets no such note.
  const Result routed = rill("validate " + example("payments-router.yaml"));
  CHECK(routed.exit_code == 0);
  CHECK_THAT(routed.output, !Catch::Contains("note:"));
}

TEST_CASE("rill reports a missing or unreadable file and bad arguments with exit code 2",
          "[unit][rill-command]") {
  const Result missing = rill("validate /nonexistent/pipeline.yaml");
  CHECK(missing.exit_code == 2);
  CHECK_THAT(missing.output, Catch::Contains("/nonexistent/pipeline.yaml:0:0: cannot read"));
  CHECK(rill("describe " + example("word-count.yaml") + " --format png").exit_code == 2);
  CHECK(rill("frobnicate").exit_code == 2);
  CHECK(rill("").exit_code == 2);
}

TEST_CASE("rill run refuses wrong options with exit code 2, naming the option",
          "[unit][rill-command]") {
  const std::string file = example("word-count.yaml");
  const Result misspelt = rill("run " + file + " --set comit.interval.ms=100");
  CHECK(misspelt.exit_code == 2);
  CHECK_THAT(misspelt.output,
             Catch::Contains("--set comit.interval.ms=*****: unknown configuration key"));
  const Result bad_value = rill("run " + file + " --set commit.interval.ms=soon");
  CHECK(bad_value.exit_code == 2);
  CHECK_THAT(bad_value.output, Catch::Contains("--set commit.interval.ms=soon: "));
  const Result no_value = rill("run " + file + " --set commit.interval.ms");
  CHECK(no_value.exit_code == 2);
  CHECK_THAT(no_value.output, Catch::Contains("--set commit.interval.ms: expected KEY=VALUE"));
  const Result bad_duration = rill("run " + file + " --until-idle soon");
  CHECK(bad_duration.exit_code == 2);
  CHECK_THAT(bad_duration.output,
             Catch::Contains("--until-idle: found 'soon', expected a duration such as 500ms"));
  CHECK(rill("run " + file + " --metrics-port 70000").exit_code == 2);
  CHECK(rill("run " + file + " --log-level chatty").exit_code == 2);
}

TEST_CASE("rill run --for closes after that long and sums up what it processed",
          "[unit][rill-command]") {
  // The embedded cluster, fed by the example's generator.
  const Result result =
      rill("run " + example("word-count.yaml") + " --for 8s --metrics-port 0 --log-level info");
  INFO(result.output);
  CHECK(result.exit_code == 0);
  CHECK_THAT(result.output, Catch::Contains("ran for 8000 ms; closing"));
  CHECK_THAT(result.output, Catch::Contains("metrics and probes on http://127.0.0.1:"));
  CHECK_THAT(result.output, Catch::Contains("rill: processed "));
  CHECK_THAT(result.output, !Catch::Contains("rill: processed 0 records"));
}

TEST_CASE("rill has help on each command and a version", "[unit][rill-command]") {
  for (const std::string command : {"", "run ", "validate ", "describe ", "version "}) {
    const Result help = rill(command + "--help");
    INFO(command);
    CHECK(help.exit_code == 0);
    CHECK_THAT(help.output, Catch::Contains("Usage"));
  }
  CHECK_THAT(rill("describe --help").output, Catch::Contains("mermaid"));
  const Result version = rill("version");
  CHECK(version.exit_code == 0);
  CHECK_THAT(version.output, Catch::StartsWith("rill 0."));
#ifdef RILL_WITH_TCMALLOC
  // Built with RILL_ALLOCATOR=tcmalloc, the rill command allocates through it.
  CHECK_THAT(version.output, Catch::Contains("malloc from libtcmalloc_minimal.so"));
#else
  CHECK_THAT(version.output, Catch::Contains("malloc from "));
#endif
}

TEST_CASE("rill describe draws the topology as text, Graphviz and Mermaid",
          "[unit][rill-command]") {
  const Result text = rill("describe " + example("shop-orders.yaml"));
  CHECK(text.exit_code == 0);
  CHECK_THAT(text.output, Catch::Contains("Sub-topology: 1") && Catch::Contains("Source: events"));
  const Result mermaid = rill("describe --format mermaid " + example("shop-orders.yaml"));
  CHECK(mermaid.exit_code == 0);
  CHECK_THAT(mermaid.output, Catch::StartsWith("flowchart"));
  const Result svg = shell(std::string(RILL_CLI) + " describe --format dot " +
                           example("shop-orders.yaml") + " | dot -Tsvg");
  CHECK(svg.exit_code == 0);
  // Graphviz escapes the dashes of node names.
  CHECK_THAT(svg.output, Catch::Contains("<svg") && Catch::Contains("stock&#45;repartition") &&
                             Catch::Contains("</svg>"));
}

TEST_CASE("rill never prints a secret, even in an error", "[unit][rill-command]") {
  const std::string file = write_file("rill-command-secret.yaml", R"(application:
  application.id: app
  sasl.password: ${RILL_TEST_SECRET}
  security.protocol: ${RILL_TEST_PROTOCOL}
sources:
  in: {topic: input}
flows:
  - from: in
    steps: [stdout]
)");
  const std::string secret = "s3cret-value-x";
  const Result bad = shell("RILL_TEST_SECRET=" + secret + " RILL_TEST_PROTOCOL=carrier-pigeon " +
                           RILL_CLI + " validate " + file);
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.output, Catch::Contains(":4:22: configuration key 'security.protocol'"));
  CHECK(bad.output.find(secret) == std::string::npos);
  const Result good = shell("RILL_TEST_SECRET=" + secret + " RILL_TEST_PROTOCOL=plaintext " +
                            RILL_CLI + " describe " + file);
  CHECK(good.exit_code == 0);
  CHECK(good.output.find(secret) == std::string::npos);
}
