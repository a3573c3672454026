// Object stores: where snapshots of state and the archive of events live.
#pragma once

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace rill {
class StreamsConfig;
}

namespace rill::objects {

// An object store could not be read or written; the message names the
// object and the store.
class ObjectStoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Where snapshots and the archive go: an S3-compatible bucket, or a local
// directory. Keys are '/'-separated paths.
class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  virtual void put_file(const std::string& key, const std::filesystem::path& file) = 0;
  virtual void put_text(const std::string& key, std::string_view text) = 0;
  virtual void get_file(const std::string& key, const std::filesystem::path& file) = 0;
  // As get_file, for a file that no one changes once written (a RocksDB
  // SST): a store on the same file system may share the object's bytes
  // rather than copy them.
  virtual void get_unchanging_file(const std::string& key, const std::filesystem::path& file) {
    get_file(key, file);
  }
  virtual std::string get_text(const std::string& key) = 0;
  // Every key that starts with `prefix`, in byte order.
  virtual std::vector<std::string> list(const std::string& prefix) = 0;
  virtual void remove(const std::string& key) = 0;
  // The object's address, for messages: file:///... or s3://bucket/key.
  virtual std::string address(const std::string& key) const = 0;
};

// Objects as files under a root directory, the zero-setup default. An object
// appears whole or not at all (written aside, then renamed).
class DirectoryObjectStore final : public ObjectStore {
 public:
  explicit DirectoryObjectStore(std::filesystem::path root);

  void put_file(const std::string& key, const std::filesystem::path& file) override;
  void put_text(const std::string& key, std::string_view text) override;
  void get_file(const std::string& key, const std::filesystem::path& file) override;
  // A hard link when the file system allows one, else a copy.
  void get_unchanging_file(const std::string& key, const std::filesystem::path& file) override;
  std::string get_text(const std::string& key) override;
  std::vector<std::string> list(const std::string& prefix) override;
  void remove(const std::string& key) override;
  std::string address(const std::string& key) const override;

 private:
  std::filesystem::path path_of(const std::string& key) const;

  std::filesystem::path root_;
};

// Whether a relative path stays inside its root: no "..", no root, not empty.
bool contained(std::string_view path);
// 16 random hex digits, for names no other writer picks.
std::string random_hex();

// The SHA-256 of a file's bytes, in hex.
std::string file_sha256(const std::filesystem::path& file);
// The XXH3 128-bit hash of a file's bytes, in hex (canonical, big-endian):
// corruption and truncation show as surely as with SHA-256, at memory speed.
std::string file_xxh3_128(const std::filesystem::path& file);
// The SHA-256 of bytes in memory, in hex.
std::string sha256_of(std::string_view bytes);

// A location and the object store it names: "s3://bucket[/prefix]" (with the
// s3.* settings of `config`), or a directory ("file:///path" or a path).
struct ObjectLocation {
  std::unique_ptr<ObjectStore> store;
  // The keys' common beginning, without a trailing '/' ("" for none).
  std::string prefix;

  // `prefix`/`path`, or `path` when there is no prefix.
  std::string key(std::string_view path) const;
};
// Throws std::invalid_argument naming `setting` when `location` names no
// bucket.
ObjectLocation open_location(const std::string& location, const StreamsConfig& config,
                             std::string_view setting);

}  // namespace rill::objects
