#include "support/s3_server.h"

#include <cstdlib>

#include <catch2/catch.hpp>

#include "support/command.h"
#include "support/eventually.h"
#include "support/ports.h"
#include "support/temp_dir.h"

namespace rill::testing {

std::string s3_endpoint() {
  const char* endpoint = std::getenv("RILL_S3_ENDPOINT");
  if (endpoint == nullptr || *endpoint == '\0')
    FAIL("RILL_S3_ENDPOINT is not set: run the tests with scripts/test, which starts an S3 server");
  return endpoint;
}

namespace {

CommandResult curl(const std::string& arguments) {
  return run_command("curl -s -S -f --aws-sigv4 aws:amz:us-east-1:s3 --user " +
                     std::string(kS3AccessKey) + ":" + kS3SecretKey + " " + arguments);
}

}  // namespace

void create_bucket(const std::string& bucket) {
  const CommandResult result = curl("-X PUT '" + s3_endpoint() + "/" + bucket + "'");
  if (result.exit_code != 0) FAIL("cannot create bucket " << bucket << ": " << result.output);
}

void put_object(const std::string& bucket, const std::string& key, const std::string& body) {
  const std::string file = write_temp_file("rill-s3-object", body);
  const CommandResult result =
      curl("-X PUT --data-binary @" + file + " '" + s3_endpoint() + "/" + bucket + "/" + key + "'");
  if (result.exit_code != 0) FAIL("cannot put " << bucket << "/" << key << ": " << result.output);
}

std::string get_object(const std::string& bucket, const std::string& key) {
  const CommandResult result = curl("'" + s3_endpoint() + "/" + bucket + "/" + key + "'");
  if (result.exit_code != 0) FAIL("cannot get " << bucket << "/" << key << ": " << result.output);
  return result.output;
}

namespace {

// The text of <tag>...</tag> in an answer, or "".
std::string xml_text(const std::string& xml, const std::string& tag) {
  const std::size_t begin = xml.find("<" + tag + ">");
  if (begin == std::string::npos) return "";
  const std::size_t from = begin + tag.size() + 2;
  return xml.substr(from, xml.find("</" + tag + ">", from) - from);
}

}  // namespace

AuthenticatingS3Server::AuthenticatingS3Server() {
  const std::string server = std::string(RILL_SOURCE_DIR) + "/.cache/s3/venv/bin/moto_server";
  const int port = free_port();
  endpoint_ = "http://127.0.0.1:" + std::to_string(port);
  server_.emplace(std::vector<std::string>{server, "-H", "127.0.0.1", "-p", std::to_string(port)},
                  write_temp_file("rill-s3-authenticating.log", ""));
  REQUIRE(eventually(
      [&] {
        return run_command("curl -s -f -o /dev/null " + endpoint_ + "/moto-api/").exit_code == 0;
      },
      std::chrono::seconds(60)));
  // While it still takes any signature: a user, its key, a policy allowing
  // everything, and the bucket; then it checks signatures.
  const std::string iam =
      "curl -s -S -f --aws-sigv4 aws:amz:us-east-1:iam --user setup:setup -X POST " + endpoint_ +
      "/ --data-urlencode Version=2010-05-08 ";
  REQUIRE(run_command(iam + "--data-urlencode Action=CreateUser --data-urlencode UserName=rill")
              .exit_code == 0);
  const CommandResult key =
      run_command(iam + "--data-urlencode Action=CreateAccessKey --data-urlencode UserName=rill");
  REQUIRE(key.exit_code == 0);
  access_key_ = xml_text(key.output, "AccessKeyId");
  secret_key_ = xml_text(key.output, "SecretAccessKey");
  REQUIRE(!access_key_.empty());
  REQUIRE(!secret_key_.empty());
  REQUIRE(run_command(iam + "--data-urlencode Action=PutUserPolicy --data-urlencode UserName=rill "
                            "--data-urlencode PolicyName=all --data-urlencode 'PolicyDocument="
                            "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\","
                            "\"Action\":\"*\",\"Resource\":\"*\"}]}'")
              .exit_code == 0);
  REQUIRE(run_command("curl -s -S -f --aws-sigv4 aws:amz:us-east-1:s3 --user setup:setup -X PUT " +
                      endpoint_ + "/" + bucket_)
              .exit_code == 0);
  REQUIRE(run_command("curl -s -S -f -X POST -H 'Content-Type: text/plain' --data-binary 0 " +
                      endpoint_ + "/moto-api/reset-auth")
              .exit_code == 0);
}

}  // namespace rill::testing
