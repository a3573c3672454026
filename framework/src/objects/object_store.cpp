#include "objects/object_store.h"

#include <algorithm>
#include <fstream>
#include <random>
#include <system_error>

#include <fmt/format.h>
#include <openssl/evp.h>
// Header-only: xxHash's functions compile into this file, with no library to
// link into rill or into the programs that link rill.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "rill/config.h"

#include "objects/s3_object_store.h"

namespace rill::objects {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPartial = ".partial-";

// Writes `write(out)` to `target` aside first, then renames it into place.
template <class Write>
void write_whole(const fs::path& target, const std::string& address, Write write) {
  std::error_code error;
  fs::create_directories(target.parent_path(), error);
  if (error)
    throw ObjectStoreError("cannot write " + address + ": " + target.parent_path().string() + ": " +
                           error.message());
  const fs::path aside = target.string() + std::string(kPartial) + random_hex();
  if (!write(aside)) {
    fs::remove(aside, error);
    throw ObjectStoreError("cannot write " + address);
  }
  fs::rename(aside, target, error);
  if (error) {
    fs::remove(aside, error);
    throw ObjectStoreError("cannot write " + address + ": " + error.message());
  }
}

using DigestContext = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

DigestContext start_sha256() {
  DigestContext context(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1)
    throw ObjectStoreError("cannot start a SHA-256 digest");
  return context;
}

std::string finish_sha256(EVP_MD_CTX* context) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(context, digest, &length);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

}  // namespace

bool contained(std::string_view path) {
  if (path.empty()) return false;
  const fs::path relative(path);
  if (relative.is_absolute() || relative.has_root_name()) return false;
  return std::none_of(relative.begin(), relative.end(),
                      [](const fs::path& part) { return part == ".." || part == "."; });
}

std::string random_hex() {
  std::random_device device;
  const uint64_t value = (uint64_t{device()} << 32) ^ device();
  return fmt::format("{:016x}", value);
}

// ---- the local directory ---------------------------------------------------

DirectoryObjectStore::DirectoryObjectStore(fs::path root) : root_(std::move(root)) {}

fs::path DirectoryObjectStore::path_of(const std::string& key) const {
  if (!contained(key))
    throw ObjectStoreError("object key '" + key + "' leaves the snapshot directory " +
                           root_.string());
  return root_ / key;
}

std::string DirectoryObjectStore::address(const std::string& key) const {
  return "file://" + (root_ / key).string();
}

void DirectoryObjectStore::put_file(const std::string& key, const fs::path& file) {
  write_whole(path_of(key), address(key), [&](const fs::path& aside) {
    std::error_code error;
    return fs::copy_file(file, aside, fs::copy_options::overwrite_existing, error) && !error;
  });
}

void DirectoryObjectStore::put_text(const std::string& key, std::string_view text) {
  write_whole(path_of(key), address(key), [&](const fs::path& aside) {
    std::ofstream out(aside, std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    return static_cast<bool>(out);
  });
}

void DirectoryObjectStore::get_file(const std::string& key, const fs::path& file) {
  const fs::path source = path_of(key);
  std::error_code error;
  if (!fs::is_regular_file(source, error)) throw ObjectStoreError("no object " + address(key));
  fs::copy_file(source, file, fs::copy_options::overwrite_existing, error);
  if (error)
    throw ObjectStoreError("cannot read " + address(key) + " into " + file.string() + ": " +
                           error.message());
}

void DirectoryObjectStore::get_unchanging_file(const std::string& key, const fs::path& file) {
  std::error_code error;
  fs::remove(file, error);
  fs::create_hard_link(path_of(key), file, error);
  if (error) get_file(key, file);  // another file system, or no object (named there)
}

std::string DirectoryObjectStore::get_text(const std::string& key) {
  const fs::path path = path_of(key);
  std::error_code error;
  const auto size = fs::file_size(path, error);
  std::ifstream in(path, std::ios::binary);
  if (error || !in) throw ObjectStoreError("no object " + address(key));
  std::string text(size, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(size)))
    throw ObjectStoreError("cannot read " + address(key));
  return text;
}

std::vector<std::string> DirectoryObjectStore::list(const std::string& prefix) {
  // Walk the deepest directory the prefix names whole.
  const std::size_t slash = prefix.rfind('/');
  const std::string directory = slash == std::string::npos ? "" : prefix.substr(0, slash);
  const fs::path start = directory.empty() ? root_ : path_of(directory);
  std::vector<std::string> keys;
  std::error_code error;
  if (!fs::is_directory(start, error)) return keys;
  for (auto it = fs::recursive_directory_iterator(start, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (!it->is_regular_file()) continue;
    std::string key = it->path().lexically_relative(root_).generic_string();
    if (key.find(kPartial) != std::string::npos) continue;  // a write under way
    if (key.starts_with(prefix)) keys.push_back(std::move(key));
  }
  if (error) throw ObjectStoreError("cannot list " + address(prefix) + ": " + error.message());
  std::sort(keys.begin(), keys.end());
  return keys;
}

void DirectoryObjectStore::remove(const std::string& key) {
  fs::path path = path_of(key);
  std::error_code error;
  fs::remove(path, error);
  if (error) throw ObjectStoreError("cannot remove " + address(key) + ": " + error.message());
  // Empty folders go with their last object.
  for (path = path.parent_path(); path != root_ && path.has_relative_path();
       path = path.parent_path())
    if (!fs::remove(path, error) || error) break;
}

namespace {

// Hands a file's bytes to `consume(data, size)`, a megabyte at a time.
template <class Consume>
void read_in_chunks(const fs::path& file, Consume consume) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw ObjectStoreError("cannot read " + file.string());
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() > 0) consume(buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) throw ObjectStoreError("cannot read " + file.string());
}

}  // namespace

std::string file_sha256(const fs::path& file) {
  const DigestContext context = start_sha256();
  read_in_chunks(file, [&](const char* data, std::size_t size) {
    EVP_DigestUpdate(context.get(), data, size);
  });
  return finish_sha256(context.get());
}

std::string file_xxh3_128(const fs::path& file) {
  const std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(),
                                                                       &XXH3_freeState);
  if (!state || XXH3_128bits_reset(state.get()) != XXH_OK)
    throw ObjectStoreError("cannot start an XXH3 hash");
  read_in_chunks(file, [&](const char* data, std::size_t size) {
    XXH3_128bits_update(state.get(), data, size);
  });
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(state.get()));
  std::string hex;
  hex.reserve(2 * sizeof(canonical.digest));
  for (unsigned char byte : canonical.digest) hex += fmt::format("{:02x}", byte);
  return hex;
}

std::string sha256_of(std::string_view bytes) {
  const DigestContext context = start_sha256();
  EVP_DigestUpdate(context.get(), bytes.data(), bytes.size());
  return finish_sha256(context.get());
}

// ---- locations -----------------------------------------------------------------

std::string ObjectLocation::key(std::string_view path) const {
  return prefix.empty() ? std::string(path) : prefix + "/" + std::string(path);
}

ObjectLocation open_location(const std::string& location, const StreamsConfig& config,
                             std::string_view setting) {
  ObjectLocation opened;
  if (location.starts_with("s3://")) {
    const std::string path = location.substr(5);
    const std::size_t slash = path.find('/');
    S3Location s3;
    s3.bucket = path.substr(0, slash);
    if (s3.bucket.empty())
      throw std::invalid_argument(std::string(setting) + " '" + location +
                                  "' names no bucket: s3://bucket[/prefix]");
    s3.region = config.get_string(config::kS3Region);
    s3.endpoint = config.get_string(config::kS3Endpoint);
    if (s3.endpoint.empty()) s3.endpoint = "https://s3." + s3.region + ".amazonaws.com";
    s3.access_key = config.get_string(config::kS3AccessKey);
    s3.secret_key = config.get_string(config::kS3SecretKey);
    opened.store = std::make_unique<S3ObjectStore>(std::move(s3));
    if (slash != std::string::npos) opened.prefix = path.substr(slash + 1);
  } else {
    opened.store = std::make_unique<DirectoryObjectStore>(
        location.starts_with("file://") ? location.substr(7) : location);
  }
  while (opened.prefix.ends_with('/')) opened.prefix.pop_back();
  return opened;
}

}  // namespace rill::objects
