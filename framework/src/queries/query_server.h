// The query endpoint: an instance's stores over HTTP, as JSON, on the port of
// its application.server. A key that another instance holds is forwarded to
// that instance; a range asks every instance and merges their answers.
//
//   GET /v1/stores                                      the stores, and who answers
//   GET /v1/stores/{store}/keys/{key}                   a key's value
//   GET /v1/stores/{store}/range?from=&to=&limit=       keys in order (key-value stores)
//   GET /v1/stores/{store}/windows?key=&from=&to=       a key's windows (window stores)
//
// Answers name the instance that answered ("host") and whether the answer may
// be stale: with stale=true, keys and windows are read from a standby copy
// when the instance that holds them cannot answer. 400 for a bad key or parameter, 404 for an
// unknown store or key, 503 with Retry-After while a store cannot be read (a rebalance, a restore,
// an instance that does not answer). See docs/queries.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rill/queries.h"
#include "rill/state.h"

#include "metrics/http_server.h"

namespace rill::queries {

// What the endpoint asks of its instance.
struct QuerySource {
  internal::StoreQueries* stores = nullptr;
  // The topology's declaration of a store; nullptr for an unknown one.
  std::function<const StoreBuilder*(std::string_view store)> store;
  // A global store: every instance holds all of it, so none forwards.
  std::function<bool(std::string_view store)> is_global;
  std::function<std::vector<const StoreBuilder*>()> all_stores;
  std::function<std::optional<KeyQueryMetadata>(std::string_view store, std::string_view key)>
      metadata_for_key;
  std::function<std::vector<StreamsMetadata>(std::string_view store)> metadata_for_store;
  // The partition of a serialized key, as the producers place it.
  std::function<int32_t(std::string_view store, std::string_view key)> partition_of;
  // The sub-topology whose tasks hold the store, and how many there are.
  std::function<std::pair<int32_t, int32_t>(std::string_view store)> tasks_of;
  HostInfo self;
};

class QueryServer {
 public:
  // Listens on `bind_host` and the port of source.self; throws
  // std::runtime_error naming the address when it cannot.
  QueryServer(const std::string& bind_host, QuerySource source);
  ~QueryServer();
  QueryServer(const QueryServer&) = delete;
  QueryServer& operator=(const QueryServer&) = delete;

  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "a%20b" -> "a b" ('+' too, in a query string); nullopt for a bad escape.
std::optional<std::string> decode_url(std::string_view text, bool plus_is_space);
// Percent-escapes all but unreserved characters, for a path segment or a
// query parameter.
std::string encode_url(std::string_view text);

// The answer to a GET, as another instance or `rill query` receives it.
struct HttpAnswer {
  unsigned status = 0;
  std::string body;
  std::string retry_after;
};
// GET http://host:port`target`, bounded by `timeout`; nullopt, with `why`,
// when the instance cannot be reached or does not answer in time.
std::optional<HttpAnswer> http_get(const HostInfo& host, const std::string& target,
                                   std::chrono::milliseconds timeout, std::string& why);

}  // namespace rill::queries
