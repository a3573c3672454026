#include "support/s3_server.h"

#include <cstdlib>

#include <catch2/catch.hpp>

#include "support/command.h"
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

}  // namespace rill::testing
