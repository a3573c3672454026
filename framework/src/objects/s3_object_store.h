// Snapshots in an S3-compatible bucket (AWS S3, MinIO, moto...), over
// libcurl, which signs every request with AWS Signature Version 4 itself
// (CURLOPT_AWS_SIGV4). Objects are addressed path-style:
// <endpoint>/<bucket>/<key>.
#pragma once

#include <string>

#include "objects/object_store.h"

namespace rill::objects {

struct S3Location {
  std::string endpoint;  // http(s)://host:port
  std::string bucket;
  std::string region = "us-east-1";
  std::string access_key;
  std::string secret_key;
};

class S3ObjectStore final : public ObjectStore {
 public:
  explicit S3ObjectStore(S3Location location);

  void put_file(const std::string& key, const std::filesystem::path& file) override;
  void put_text(const std::string& key, std::string_view text) override;
  void get_file(const std::string& key, const std::filesystem::path& file) override;
  std::string get_text(const std::string& key) override;
  std::vector<std::string> list(const std::string& prefix) override;
  void remove(const std::string& key) override;
  std::string address(const std::string& key) const override;

 private:
  struct Response;
  enum class Body { kNone, kText, kFile };
  // One signed request; throws ObjectStoreError naming `key` when the
  // endpoint cannot be reached or answers with an error status.
  Response request(const char* method, const std::string& key, const std::string& query,
                   Body upload, std::string_view text, const std::filesystem::path& file,
                   Body download, const std::filesystem::path& into) const;

  S3Location location_;
};

}  // namespace rill::objects
