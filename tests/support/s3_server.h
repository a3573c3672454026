// The real S3-compatible server that scripts/test starts (scripts/s3): its
// endpoint, and buckets and objects handled through curl, a client that is
// not rill's.
#pragma once

#include <optional>
#include <string>

#include "support/process.h"

namespace rill::testing {

// The credentials the tests sign with: the test server takes any.
inline constexpr const char* kS3AccessKey = "rill-test";
inline constexpr const char* kS3SecretKey = "rill-test-secret";

// The server's endpoint from RILL_S3_ENDPOINT; fails the test when unset.
std::string s3_endpoint();

// Creates `bucket` (PUT /bucket); fails the test when the server refuses.
void create_bucket(const std::string& bucket);

// PUT /bucket/key with `body`, or the object's bytes; through curl.
void put_object(const std::string& bucket, const std::string& key, const std::string& body);
std::string get_object(const std::string& bucket, const std::string& key);

// An S3 server of the test's own (moto, as scripts/s3 installs it) that
// checks every request's signature: it knows one access key, allowed
// everything, and holds one bucket. The shared server takes any credentials.
class AuthenticatingS3Server {
 public:
  AuthenticatingS3Server();
  const std::string& endpoint() const { return endpoint_; }
  const std::string& access_key() const { return access_key_; }
  const std::string& secret_key() const { return secret_key_; }
  const std::string& bucket() const { return bucket_; }

 private:
  std::optional<ChildProcess> server_;  // killed with the object
  std::string endpoint_, access_key_, secret_key_, bucket_ = "guarded";
};

}  // namespace rill::testing
