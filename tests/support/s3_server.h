// The real S3-compatible server that scripts/test starts (scripts/s3): its
// endpoint, and buckets and objects handled through curl, a client that is
// not rill's.
#pragma once

#include <string>

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

}  // namespace rill::testing
