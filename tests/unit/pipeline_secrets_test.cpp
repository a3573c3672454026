// Secret values never show in pipeline errors or config logs: each case is a
// pipeline whose error falls on, or comes from, the line of a password, and
// the report must still name file:line:column without the password in it.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/config.h"
#include "rill/pipeline/pipeline.h"

using Catch::Contains;
using Catch::StartsWith;

namespace {

constexpr const char* kSecret = "hunter2";

struct SecretCase {
  const char* what;
  std::string yaml;
  std::map<std::string, std::string> variables;
  int line;
  // Where the column must be, as the 1-based offset of this text in the line.
  std::string at;
  std::string message;
};

const std::string kTail =
    "sources:\n"
    "  in: {topic: input}\n"
    "flows:\n"
    "  - from: in\n"
    "    steps: [stdout]\n";

const std::vector<SecretCase> kCases = {
    {"invalid YAML on the password's line",
     "application:\n  application.id: app\n  sasl.password: hunter2: oops\n" + kTail,
     {},
     3,
     ": oops",
     "invalid YAML"},
    {"text after the quoted password",
     "application:\n  application.id: app\n  sasl.password: \"hunter2\" oops\n" + kTail,
     {},
     3,
     "oops",
     "invalid YAML"},
    {"a misspelt password key",
     "application:\n  application.id: app\n  sasl.pasword: hunter2\n" + kTail,
     {},
     3,
     "sasl.pasword",
     "unknown configuration key 'sasl.pasword'"},
    {"an unset variable inside the password",
     "application:\n  application.id: app\n  sasl.password: hunter2${SUFFIX}\n" + kTail,
     {},
     3,
     "${SUFFIX}",
     "environment variable 'SUFFIX' is not set"},
    {"a value librdkafka rejects on the password's line",
     "application: {application.id: app, security.protocol: bogus, sasl.password: hunter2}\n" +
         kTail,
     {},
     1,
     "bogus",
     "configuration key 'security.protocol'"},
    {"a secret variable expanded into a value librdkafka rejects",
     "application:\n  application.id: app\n  security.protocol: ${SASL_PASSWORD}\n" + kTail,
     {{"SASL_PASSWORD", kSecret}},
     3,
     "${SASL_PASSWORD}",
     "configuration key 'security.protocol'"},
    {"a password from a variable, quoted by a later error",
     "application:\n  application.id: app\n  sasl.password: ${PW}\n"
     "  security.protocol: ${PW}\n" +
         kTail,
     {{"PW", kSecret}},
     4,
     "${PW}",
     "configuration key 'security.protocol'"},
    {"an unset variable in a multi-line JAAS config",
     "application:\n  application.id: app\n  sasl.jaas.config: |\n"
     "    org.apache.kafka.common.security.plain.PlainLoginModule required\n"
     "    username=\"user\" password=\"hunter2\" extra=\"${UNSET}\";\n" +
         kTail,
     {},
     5,
     "${UNSET}",
     "environment variable 'UNSET' is not set"},
};

rill::pipeline::Environment environment(std::map<std::string, std::string> variables) {
  return [variables](const std::string& name) -> std::optional<std::string> {
    auto it = variables.find(name);
    if (it == variables.end()) return std::nullopt;
    return it->second;
  };
}

std::string line_of(const std::string& text, int line) {
  std::size_t begin = 0;
  for (int i = 1; i < line; ++i) begin = text.find('\n', begin) + 1;
  return text.substr(begin, text.find('\n', begin) - begin);
}

}  // namespace

TEST_CASE("pipeline errors never show a secret value, and still name the place",
          "[unit][pipeline-errors][secrets]") {
  for (const SecretCase& c : kCases) {
    INFO(c.what << "\n" << c.yaml);
    try {
      rill::pipeline::load_text(c.yaml, "secrets.yaml", environment(c.variables));
      FAIL_CHECK("loaded without an error");
    } catch (const rill::pipeline::PipelineError& e) {
      const std::string report = e.report();
      INFO(report);
      CHECK_THAT(report, !Contains(kSecret));
      CHECK_THAT(std::string(e.what()), !Contains(kSecret));
      CHECK_THAT(e.message(), Contains(c.message) && !Contains(kSecret));
      // Masked, not merely absent: the secret was in the line or the message.
      CHECK_THAT(report, Contains(std::string(rill::kSecretMask)));
      CHECK(e.position().file == "secrets.yaml");
      CHECK(e.position().line == c.line);
      const int column = static_cast<int>(line_of(c.yaml, c.line).find(c.at)) + 1;
      CHECK(e.position().column == column);
      CHECK_THAT(report, StartsWith("secrets.yaml:" + std::to_string(c.line) + ":" +
                                    std::to_string(column) + ": "));
    }
  }
}

TEST_CASE("the caret stays on the masked value", "[unit][pipeline-errors][secrets]") {
  try {
    rill::pipeline::load_text(
        "application:\n  application.id: app\n  sasl.password: hunter2${SUFFIX}\n" + kTail,
        "secrets.yaml", environment({}));
    FAIL("loaded");
  } catch (const rill::pipeline::PipelineError& e) {
    CHECK(e.report() ==
          "secrets.yaml:3:25: environment variable 'SUFFIX' is not set, expected it set or a "
          "default: ${SUFFIX:-default}\n"
          "    sasl.password: *****\n"
          "                   ^\n");
  }
  // A mask before the column moves the caret with the text after it.
  const std::string line =
      "application: {sasl.password: hunter2, application.id: app, security.protocol: bogus}";
  try {
    rill::pipeline::load_text(line + "\n" + kTail, "secrets.yaml", environment({}));
    FAIL("loaded");
  } catch (const rill::pipeline::PipelineError& e) {
    const std::string shown =
        "application: {sasl.password: *****, application.id: app, security.protocol: bogus}";
    CHECK(e.position().column == static_cast<int>(line.find("bogus")) + 1);
    CHECK(e.report() == std::string(e.what()) + "\n  " + shown + "\n  " +
                            std::string(shown.find("bogus"), ' ') + "^\n");
  }
}

TEST_CASE("one rule tells secret keys, for config keys and variable names alike",
          "[unit][secrets]") {
  for (const char* key :
       {"sasl.password", "ssl.key.password", "ssl.keystore.password", "ssl.key.pem",
        "sasl.jaas.config", "sasl.oauthbearer.client.secret", "sasl.oauthbearer.config",
        "basic.auth.user.info", "schema.registry.basic.auth.user.info", "producer.sasl.password",
        "api.token", "aws.credentials", "SASL_PASSWORD", "KAFKA_API_TOKEN", "SSL_KEY_PEM"}) {
    INFO(key);
    CHECK(rill::is_secret_key(key));
  }
  for (const char* key : {"bootstrap.servers", "security.protocol", "sasl.mechanism",
                          "sasl.username", "application.id", "ssl.ca.location", "HOME"}) {
    INFO(key);
    CHECK_FALSE(rill::is_secret_key(key));
  }
  const rill::StreamsConfig config{{"application.id", "app"},
                                   {"ssl.key.pem", "-----BEGIN PRIVATE KEY-----"},
                                   {"basic.auth.user.info", "user:hunter2"},
                                   {"sasl.oauthbearer.config", "clientSecret=hunter2"}};
  const std::string logged = config.to_log_string();
  CHECK_THAT(logged, !Contains(kSecret) && !Contains("PRIVATE KEY"));
  CHECK_THAT(logged, Contains("ssl.key.pem=*****") && Contains("application.id=app"));
}
