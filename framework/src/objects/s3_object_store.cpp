#include "objects/s3_object_store.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>

#include <curl/curl.h>

namespace rill::objects {
namespace {

namespace fs = std::filesystem;

// Whether libcurl's global state is set up: once, before any handle.
void init_curl() {
  static const bool initialized = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)initialized;
}

using CurlHandle = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;

std::string escaped(CURL* curl, std::string_view text) {
  char* out = curl_easy_escape(curl, text.data(), static_cast<int>(text.size()));
  std::string result(out == nullptr ? "" : out);
  curl_free(out);
  return result;
}

// A key as a URL path: each '/'-separated part percent-encoded.
std::string path_of(CURL* curl, const std::string& key) {
  std::string path;
  std::size_t begin = 0;
  while (true) {
    const std::size_t slash = key.find('/', begin);
    path += escaped(curl, std::string_view(key).substr(begin, slash - begin));
    if (slash == std::string::npos) break;
    path += '/';
    begin = slash + 1;
  }
  return path;
}

std::string xml_unescaped(std::string_view text) {
  static constexpr std::pair<std::string_view, char> kEntities[] = {
      {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    bool replaced = false;
    if (text[i] == '&')
      for (const auto& [entity, c] : kEntities)
        if (text.substr(i).starts_with(entity)) {
          out.push_back(c);
          i += entity.size() - 1;
          replaced = true;
          break;
        }
    if (!replaced) out.push_back(text[i]);
  }
  return out;
}

// The text of every <tag>...</tag> in `xml`, in order. S3's answers are flat
// enough for this: the tags read here never nest in themselves.
std::vector<std::string> xml_values(std::string_view xml, std::string_view tag) {
  const std::string open = "<" + std::string(tag) + ">", close = "</" + std::string(tag) + ">";
  std::vector<std::string> values;
  for (std::size_t at = xml.find(open); at != std::string_view::npos; at = xml.find(open, at)) {
    const std::size_t begin = at + open.size();
    const std::size_t end = xml.find(close, begin);
    if (end == std::string_view::npos) break;
    values.push_back(xml_unescaped(xml.substr(begin, end - begin)));
    at = end + close.size();
  }
  return values;
}

std::optional<std::string> xml_value(std::string_view xml, std::string_view tag) {
  auto values = xml_values(xml, tag);
  if (values.empty()) return std::nullopt;
  return std::move(values.front());
}

struct FileCloser {
  void operator()(FILE* file) const {
    if (file != nullptr) std::fclose(file);
  }
};
using File = std::unique_ptr<FILE, FileCloser>;

// Where a response body goes: into the file for a success, else into the
// text (an error's XML).
struct Sink {
  CURL* curl = nullptr;
  FILE* file = nullptr;
  std::string* text = nullptr;
  bool failed_write = false;
};

size_t write_body(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  long status = 0;
  curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &status);
  const size_t bytes = size * count;
  if (sink->file != nullptr && status >= 200 && status < 300) {
    if (std::fwrite(data, 1, bytes, sink->file) != bytes) {
      sink->failed_write = true;
      return 0;
    }
    return bytes;
  }
  sink->text->append(data, bytes);
  return bytes;
}

struct Source {
  std::string_view text;
};

size_t read_text(char* buffer, size_t size, size_t count, void* user) {
  auto* source = static_cast<Source*>(user);
  const size_t bytes = std::min(size * count, source->text.size());
  std::copy_n(source->text.data(), bytes, buffer);
  source->text.remove_prefix(bytes);
  return bytes;
}

}  // namespace

struct S3ObjectStore::Response {
  long status = 0;
  std::string body;
};

S3ObjectStore::S3ObjectStore(S3Location location) : location_(std::move(location)) {
  init_curl();
  while (location_.endpoint.ends_with('/')) location_.endpoint.pop_back();
}

std::string S3ObjectStore::address(const std::string& key) const {
  return "s3://" + location_.bucket + "/" + key + " (at " + location_.endpoint + ")";
}

S3ObjectStore::Response S3ObjectStore::request(const char* method, const std::string& key,
                                               const std::string& query, Body upload,
                                               std::string_view text, const fs::path& file,
                                               Body download, const fs::path& into) const {
  CurlHandle curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) throw ObjectStoreError("cannot start a request for " + address(key));
  CURL* handle = curl.get();
  std::string url = location_.endpoint + "/" + escaped(handle, location_.bucket);
  if (!key.empty()) url += "/" + path_of(handle, key);
  if (!query.empty()) url += "?" + query;
  const std::string signing = "aws:amz:" + location_.region + ":s3";
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(handle, CURLOPT_URL, url.c_str());
  curl_easy_setopt(handle, CURLOPT_AWS_SIGV4, signing.c_str());
  curl_easy_setopt(handle, CURLOPT_USERNAME, location_.access_key.c_str());
  curl_easy_setopt(handle, CURLOPT_PASSWORD, location_.secret_key.c_str());
  curl_easy_setopt(handle, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, 10'000L);
  // A transfer that moves nothing for 30 s has failed; a large one may be slow.
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME, 30L);
  // The body is not part of the signature: files are streamed, and each
  // one's SHA-256 is in the snapshot's manifest.
  curl_slist* headers = curl_slist_append(nullptr, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
  const std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> header_list(
      headers, &curl_slist_free_all);
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers);
  if (std::string_view(method) != "GET" && std::string_view(method) != "PUT")
    curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, method);

  Source source{text};
  File input;
  if (upload == Body::kText) {
    curl_easy_setopt(handle, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(handle, CURLOPT_READFUNCTION, &read_text);
    curl_easy_setopt(handle, CURLOPT_READDATA, &source);
    curl_easy_setopt(handle, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(text.size()));
  } else if (upload == Body::kFile) {
    input.reset(std::fopen(file.c_str(), "rb"));
    if (!input) throw ObjectStoreError("cannot read " + file.string() + " for " + address(key));
    curl_easy_setopt(handle, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(handle, CURLOPT_READDATA, input.get());
    curl_easy_setopt(handle, CURLOPT_INFILESIZE_LARGE,
                     static_cast<curl_off_t>(fs::file_size(file)));
  }
  Response response;
  File output;
  if (download == Body::kFile) {
    output.reset(std::fopen(into.c_str(), "wb"));
    if (!output) throw ObjectStoreError("cannot write " + into.string() + " for " + address(key));
  }
  Sink sink{handle, output.get(), &response.body, false};
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, &write_body);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &sink);

  const CURLcode code = curl_easy_perform(handle);
  if (sink.failed_write) throw ObjectStoreError("cannot write " + into.string());
  if (code != CURLE_OK)
    throw ObjectStoreError(std::string(method) + " " + address(key) + " failed: " +
                           (error[0] != '\0' ? std::string(error) : curl_easy_strerror(code)));
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &response.status);
  if (output && std::fflush(output.get()) != 0)
    throw ObjectStoreError("cannot write " + into.string());
  if (response.status >= 200 && response.status < 300) return response;

  const std::string s3_code = xml_value(response.body, "Code").value_or("");
  const std::string message = xml_value(response.body, "Message").value_or(response.body);
  if (s3_code == "NoSuchBucket")
    throw ObjectStoreError("no bucket '" + location_.bucket + "' at " + location_.endpoint +
                           " (for " + address(key) + ")");
  if (response.status == 404) throw ObjectStoreError("no object " + address(key));
  if (response.status == 403)
    throw ObjectStoreError("access to " + address(key) + " denied (" + s3_code + ": " + message +
                           "): check the access key and secret");
  throw ObjectStoreError(std::string(method) + " " + address(key) + " answered " +
                         std::to_string(response.status) + (s3_code.empty() ? "" : " " + s3_code) +
                         ": " + message);
}

void S3ObjectStore::put_file(const std::string& key, const fs::path& file) {
  request("PUT", key, "", Body::kFile, {}, file, Body::kNone, {});
}

void S3ObjectStore::put_text(const std::string& key, std::string_view text) {
  request("PUT", key, "", Body::kText, text, {}, Body::kNone, {});
}

void S3ObjectStore::get_file(const std::string& key, const fs::path& file) {
  request("GET", key, "", Body::kNone, {}, {}, Body::kFile, file);
}

std::string S3ObjectStore::get_text(const std::string& key) {
  return request("GET", key, "", Body::kNone, {}, {}, Body::kText, {}).body;
}

std::vector<std::string> S3ObjectStore::list(const std::string& prefix) {
  CurlHandle curl(curl_easy_init(), &curl_easy_cleanup);
  std::vector<std::string> keys;
  std::string token;
  while (true) {
    // Parameters in name order, each value encoded: the canonical query
    // string the signature covers.
    std::string query;
    if (!token.empty()) query += "continuation-token=" + escaped(curl.get(), token) + "&";
    query += "list-type=2&prefix=" + escaped(curl.get(), prefix);
    Response response;
    try {
      response = request("GET", "", query, Body::kNone, {}, {}, Body::kText, {});
    } catch (const ObjectStoreError& e) {
      // The request names the bucket: say which objects were asked for.
      throw ObjectStoreError("cannot list " + address(prefix) + "*: " + e.what());
    }
    for (std::string& key : xml_values(response.body, "Key")) keys.push_back(std::move(key));
    if (xml_value(response.body, "IsTruncated").value_or("false") != "true") break;
    token = xml_value(response.body, "NextContinuationToken").value_or("");
    if (token.empty()) break;
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

void S3ObjectStore::remove(const std::string& key) {
  request("DELETE", key, "", Body::kNone, {}, {}, Body::kText, {});
}

}  // namespace rill::objects
