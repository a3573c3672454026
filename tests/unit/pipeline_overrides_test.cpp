// Settings given on the command line (`rill run --set key=value`) over a
// pipeline file's application section: they replace the file's, are checked
// as the file's are, and a mistake names the option, never a secret.
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>

#include "rill/config.h"
#include "rill/pipeline/declaration.h"
#include "rill/pipeline/pipeline.h"

using Catch::Matchers::Contains;
using rill::pipeline::Settings;

namespace {

const std::string kPipeline = R"(application:
  application.id: app
  bootstrap.servers: kafka-1:9092
  commit.interval.ms: 500
  sasl.password: file-secret
sources:
  in: {topic: input}
flows:
  - from: in
    steps:
      - to: output
)";

rill::pipeline::Pipeline load(const std::string& yaml, const Settings& overrides) {
  return rill::pipeline::load_text(
      yaml, "test.yaml", [](const std::string&) { return std::nullopt; }, overrides);
}

std::string error_of(const std::string& yaml, const Settings& overrides) {
  try {
    load(yaml, overrides);
  } catch (const rill::ConfigError& e) {
    return e.what();
  }
  FAIL("the settings were accepted");
  return "";
}

}  // namespace

TEST_CASE("settings from the command line replace the file's and add keys",
          "[unit][pipeline][overrides]") {
  const auto pipeline = load(
      kPipeline,
      {{"commit.interval.ms", "100"}, {"num.stream.threads", "2"}, {"commit.interval.ms", "200"}});
  // The last one given wins, as on any command line.
  CHECK(pipeline.config.get_duration(rill::config::kCommitIntervalMs).count() == 200);
  CHECK(pipeline.config.get_int(rill::config::kNumStreamThreads) == 2);
  CHECK(pipeline.config.get_string(rill::config::kBootstrapServers) == "kafka-1:9092");
  CHECK_FALSE(pipeline.embedded);
}

TEST_CASE("bootstrap.servers from the command line chooses between a cluster and embedded",
          "[unit][pipeline][overrides]") {
  CHECK(load(kPipeline, {{"bootstrap.servers", "embedded"}}).embedded);
  CHECK(load(kPipeline, {{"bootstrap.servers", ""}}).embedded);

  std::string without_cluster = kPipeline;
  without_cluster.erase(without_cluster.find("  bootstrap.servers"),
                        std::string("  bootstrap.servers: kafka-1:9092\n").size());
  REQUIRE(load(without_cluster, {}).embedded);
  const auto pointed = load(without_cluster, {{"bootstrap.servers", "127.0.0.1:9092"}});
  CHECK_FALSE(pointed.embedded);
  CHECK(pointed.config.get_string(rill::config::kBootstrapServers) == "127.0.0.1:9092");
}

TEST_CASE("a wrong setting from the command line names the option", "[unit][pipeline][overrides]") {
  CHECK_THAT(error_of(kPipeline, {{"commit.interval.ms", "soon"}}),
             Contains("--set commit.interval.ms=soon: "));
  const std::string misspelt = error_of(kPipeline, {{"comit.interval.ms", "100"}});
  // A misspelt key may be a secret's: its value is not shown.
  CHECK_THAT(misspelt, Contains("--set comit.interval.ms=*****: unknown configuration key "
                                "'comit.interval.ms'"));
  CHECK_THAT(misspelt, Contains("commit.interval.ms"));  // the suggestion
  // librdkafka's own properties are checked by librdkafka.
  CHECK_THAT(error_of(kPipeline, {{"consumer.fetch.wait.max.ms", "often"}}),
             Contains("--set consumer.fetch.wait.max.ms=often: "));
  CHECK(load(kPipeline, {{"consumer.fetch.wait.max.ms", "50"}})
            .config.client_properties("consumer")
            .at("fetch.wait.max.ms") == "50");
}

TEST_CASE("a secret given on the command line never shows in an error",
          "[unit][pipeline][overrides][secrets]") {
  const std::string error = error_of(kPipeline, {{"sasl.password", "hunter2"},
                                                 {"ssl.key.password", "hunter3"},
                                                 {"commit.interval.ms", "hunter2"}});
  CHECK_THAT(error, Contains("--set commit.interval.ms="));
  CHECK_THAT(error, !Contains("hunter2"));
  CHECK_THAT(error, !Contains("hunter3"));
  CHECK_THAT(error_of(kPipeline, {{"sasl.pasword", "hunter4"}}), !Contains("hunter4"));
}

TEST_CASE("durations are read one way, in files and on the command line",
          "[unit][pipeline][overrides]") {
  using rill::pipeline::parse_duration_ms;
  CHECK(parse_duration_ms("250") == 250);
  CHECK(parse_duration_ms("500ms") == 500);
  CHECK(parse_duration_ms("30s") == 30'000);
  CHECK(parse_duration_ms("5m") == 300'000);
  CHECK(parse_duration_ms("1h") == 3'600'000);
  CHECK(parse_duration_ms("2d") == 172'800'000);
  CHECK_THROWS_WITH(parse_duration_ms("10 s"),
                    "found '10 s', expected a duration such as 500ms, 30s, 5m, 1h or 1d");
  CHECK_THROWS_WITH(parse_duration_ms("s"), Contains("expected a duration such as"));
  CHECK_THROWS_WITH(parse_duration_ms("36501d"),
                    "found '36501d', expected a duration of at most 36500d (100 years)");
}
