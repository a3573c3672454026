#include "queries/query_server.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <utility>

// As in metrics/http_server.cpp: GCC sees a possible null thread_info in
// Asio's reactor once it is inlined here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#pragma GCC diagnostic pop
#include <nlohmann/json.hpp>

#include "log/log.h"

namespace rill::queries {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Json = nlohmann::json;
using metrics::HttpRequest;
using metrics::HttpResponse;

constexpr std::size_t kDefaultLimit = 1000;
constexpr std::size_t kMaxLimit = 100'000;
// How long a forwarded request may take: less than the caller's own request
// timeout, so that the caller hears why rather than nothing.
constexpr auto kForwardTimeout = std::chrono::milliseconds(8000);
constexpr std::string_view kJsonType = "application/json";

HttpResponse json_answer(unsigned status, const Json& body) {
  return {status,
          std::string(kJsonType),
          body.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n",
          {}};
}

HttpResponse error(unsigned status, const std::string& message) {
  return json_answer(status, Json{{"error", message}});
}

// 503: try again, as the store will be readable again once the rebalance or
// restore is over.
HttpResponse unavailable(const std::string& message) {
  HttpResponse answer = error(503, message);
  answer.headers.emplace_back("Retry-After", "1");
  return answer;
}

Json rendered(const internal::QueryText& text) {
  using Kind = internal::QueryText::Kind;
  switch (text.kind) {
    case Kind::kString:
      return text.text;
    case Kind::kNumber:
    case Kind::kJson:
      return Json::parse(text.text, nullptr, false);
    case Kind::kBytes:
      // JSON serdes write JSON text: show it as JSON, anything else as a string.
      if (Json::accept(text.text)) return Json::parse(text.text);
      return text.text;
  }
  return nullptr;
}

std::string hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    out.push_back(kDigits[byte >> 4]);
    out.push_back(kDigits[byte & 0xf]);
  }
  return out;
}

// The parameters of a query string, decoded; nullopt for a bad escape.
std::optional<std::map<std::string, std::string>> parameters(std::string_view query) {
  std::map<std::string, std::string> out;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const std::size_t eq = pair.find('=');
    auto name = decode_url(pair.substr(0, eq), true);
    auto value = decode_url(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!name || !value) return std::nullopt;
    out[*name] = *value;
  }
  return out;
}

struct BadRequest : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

int64_t time_parameter(const std::map<std::string, std::string>& params, const std::string& name,
                       int64_t otherwise) {
  const auto found = params.find(name);
  if (found == params.end() || found->second.empty()) return otherwise;
  int64_t value = 0;
  const auto [end, failed] =
      std::from_chars(found->second.data(), found->second.data() + found->second.size(), value);
  if (failed != std::errc() || end != found->second.data() + found->second.size() || value < 0)
    throw BadRequest("'" + name + "' must be a time in milliseconds since the epoch, got '" +
                     found->second + "'");
  return value;
}

std::size_t limit_parameter(const std::map<std::string, std::string>& params) {
  const auto found = params.find("limit");
  if (found == params.end()) return kDefaultLimit;
  std::size_t value = 0;
  const auto [end, failed] =
      std::from_chars(found->second.data(), found->second.data() + found->second.size(), value);
  if (failed != std::errc() || end != found->second.data() + found->second.size() || value == 0 ||
      value > kMaxLimit)
    throw BadRequest("'limit' must be a number from 1 to " + std::to_string(kMaxLimit) + ", got '" +
                     found->second + "'");
  return value;
}

// Whether a request reads only this instance's copies (a request forwarded
// here), and whether standby copies may answer (stale=true).
struct Reading {
  bool local = false;
  bool stale = false;
  StoreQueryOptions options(int32_t partition) const { return {stale, partition}; }
};

bool stale_parameter(const std::map<std::string, std::string>& params) {
  const auto found = params.find("stale");
  if (found == params.end() || found->second == "false") return false;
  if (found->second.empty() || found->second == "true") return true;
  throw BadRequest("'stale' must be true or false, got '" + found->second + "'");
}

HttpResponse relayed(const HttpAnswer& answer) {
  HttpResponse response{answer.status, std::string(kJsonType), answer.body, {}};
  if (!answer.retry_after.empty()) response.headers.emplace_back("Retry-After", answer.retry_after);
  return response;
}

}  // namespace

std::optional<std::string> decode_url(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      unsigned value = 0;
      const auto [end, failed] =
          std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
      if (failed != std::errc() || end != text.data() + i + 3) return std::nullopt;
      out.push_back(static_cast<char>(value));
      i += 2;
    } else if (plus_is_space && text[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string encode_url(std::string_view text) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kDigits[byte >> 4]);
      out.push_back(kDigits[byte & 0xf]);
    }
  }
  return out;
}

std::optional<HttpAnswer> http_get(const HostInfo& host, const std::string& target,
                                   std::chrono::milliseconds timeout, std::string& why) {
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(timeout);
    stream.connect(resolver.resolve(host.host, std::to_string(host.port)));
    http::request<http::empty_body> request(http::verb::get, target, 11);
    request.set(http::field::host, host.to_string());
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    http::read(stream, buffer, parser);
    const auto& response = parser.get();
    HttpAnswer answer{response.result_int(), response.body(), ""};
    if (auto retry = response.find(http::field::retry_after); retry != response.end())
      answer.retry_after = std::string(retry->value());
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    return answer;
  } catch (const std::exception& e) {
    why = e.what();
    return std::nullopt;
  }
}

struct QueryServer::Impl {
  Impl(const std::string& bind_host, QuerySource source_in)
      : source(std::move(source_in)),
        server(
            bind_host, static_cast<uint16_t>(source.self.port),
            [this](const HttpRequest& request) { return handle(request); },
            metrics::HttpServerLimits{64, std::chrono::milliseconds(10'000), 4}) {}

  HttpResponse handle(const HttpRequest& request) {
    try {
      const auto params = parameters(request.query);
      if (!params) return error(400, "a bad %-escape in the query string");
      constexpr std::string_view kPrefix = "/v1/stores";
      if (request.path == kPrefix || request.path == "/v1/stores/") return list_stores();
      if (!request.path.starts_with("/v1/stores/"))
        return error(404, "no route " + std::string(request.path) +
                              "; try /v1/stores, /v1/stores/{store}/keys/{key}, "
                              "/v1/stores/{store}/range or /v1/stores/{store}/windows");
      std::string_view rest = request.path.substr(kPrefix.size() + 1);
      const std::size_t slash = rest.find('/');
      const auto store_name = decode_url(rest.substr(0, slash), false);
      if (!store_name) return error(400, "a bad %-escape in the store name");
      const StoreBuilder* store = source.store(*store_name);
      if (store == nullptr || store->codec() == nullptr) return unknown_store(*store_name);
      const std::string_view route =
          slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
      const Reading reading{params->contains("local"), stale_parameter(*params)};
      if (route.starts_with("keys/")) {
        const auto key = decode_url(route.substr(5), false);
        if (!key) return error(400, "a bad %-escape in the key");
        return key_value(*store, *key, reading);
      }
      if (route == "range") {
        // A range merges every partition's active copy; standbys stand in for
        // single keys only.
        if (reading.stale) throw BadRequest("stale=true reads keys and windows, not ranges");
        return range(*store, *params, reading.local);
      }
      if (route == "windows") return windows(*store, *params, reading);
      return error(404, "no route " + std::string(request.path) + "; a store has keys/{key}, " +
                            "range and windows");
    } catch (const BadRequest& e) {
      return error(400, e.what());
    } catch (const StoreUnavailableError& e) {
      return unavailable(e.what());
    }
  }

  HttpResponse unknown_store(const std::string& name) {
    std::string names;
    for (const StoreBuilder* store : source.all_stores())
      names += (names.empty() ? "" : ", ") + store->name();
    return error(404, "no store '" + name + "' to query; the stores: " +
                          (names.empty() ? std::string("(none)") : names));
  }

  HttpResponse list_stores() {
    Json stores = Json::array();
    for (const StoreBuilder* store : source.all_stores())
      stores.push_back({{"name", store->name()}, {"kind", to_string(store->spec().kind)}});
    return json_answer(200, {{"host", source.self.to_string()}, {"stores", stores}});
  }

  std::string key_bytes(const StoreBuilder& store, const std::string& text) {
    try {
      return store.codec()->key_from_text(text);
    } catch (const std::exception& e) {
      throw BadRequest("key '" + text + "' of store '" + store.name() + "': " + e.what());
    }
  }

  // The answer of the instance that holds `key`, asked with `target` (a
  // "local" request); nullopt when this instance is to answer. With stale
  // reads, when the active instance cannot answer, a standby copy does: this
  // instance's, or another's asked with `target` + "&stale=true".
  std::optional<HttpResponse> at_owner(const StoreBuilder& store, std::string_view key,
                                       const std::string& target, bool stale) {
    const auto owner = source.metadata_for_key(store.name(), key);
    if (!owner && !stale)
      return unavailable(
          "the partition of this key has no owner now (the group is rebalancing "
          "or not seen yet)");
    if (!owner) return std::nullopt;  // a standby copy here may answer
    if (owner->active_host == source.self) return std::nullopt;
    std::string why;
    const auto answer = http_get(owner->active_host, target, kForwardTimeout, why);
    if (answer && (answer->status != 503 || !stale)) return relayed(*answer);
    const std::string active_failed = "the instance holding this key (" +
                                      owner->active_host.to_string() + ") " +
                                      (answer ? "cannot answer now" : "did not answer: " + why);
    if (!stale) return unavailable(active_failed);
    for (const HostInfo& standby : owner->standby_hosts) {
      if (standby == source.self) return std::nullopt;
      const auto copy = http_get(standby, target + "&stale=true", kForwardTimeout, why);
      if (copy && copy->status != 503) return relayed(*copy);
    }
    return unavailable(active_failed + ", and no standby copy answered");
  }

  HttpResponse key_value(const StoreBuilder& store, const std::string& key_text,
                         const Reading& reading) {
    if (store.spec().kind != StoreKind::kKeyValue || store.spec().versioned)
      throw BadRequest("store '" + store.name() + "' is a " +
                       std::string(to_string(store.spec().kind)) +
                       " store; read a window store's keys with /windows?key=");
    const std::string key = key_bytes(store, key_text);
    const bool global = source.is_global(store.name());
    if (!reading.local && !global) {
      if (auto forwarded = at_owner(
              store, key,
              "/v1/stores/" + encode_url(store.name()) + "/keys/" + encode_url(key_text) + "?local",
              reading.stale))
        return *forwarded;
    }
    // Only the task of the key's partition: another would not have the key,
    // and an instance without that task has to say so rather than "absent".
    std::optional<std::string> value;
    const bool stale = source.stores->for_each_task_store(
        store.name(),
        [&](StateStore& task_store) {
          if (auto* bytes = dynamic_cast<state::KeyValueBytesStore*>(task_store.bytes()))
            value = bytes->get(key);
        },
        reading.options(global ? -1 : source.partition_of(store.name(), key)));
    if (!value) return error(404, "no value for key '" + key_text + "' in '" + store.name() + "'");
    return json_answer(200, {{"store", store.name()},
                             {"key", rendered(store.codec()->key_text(key))},
                             {"value", rendered(store.codec()->value_text(*value))},
                             {"host", source.self.to_string()},
                             {"stale", stale}});
  }

  // Key order across instances: each instance's entries carry their
  // serialized key in hex, which orders as the bytes do.
  HttpResponse range(const StoreBuilder& store, const std::map<std::string, std::string>& params,
                     bool local) {
    if (store.spec().kind != StoreKind::kKeyValue || store.spec().versioned)
      throw BadRequest("store '" + store.name() + "' is a " +
                       std::string(to_string(store.spec().kind)) +
                       " store; ranges are of key-value stores");
    const std::size_t limit = limit_parameter(params);
    std::optional<std::string> from, to;
    if (auto found = params.find("from"); found != params.end())
      from = key_bytes(store, found->second);
    if (auto found = params.find("to"); found != params.end()) to = key_bytes(store, found->second);
    std::vector<std::pair<std::string, Json>> entries;  // (hex key, entry)
    if (local || source.is_global(store.name())) {
      entries = local_range(store, from, to, limit);
    } else {
      // Every partition must have an instance that answers: a range with a
      // partition missing would be a part of the data.
      const auto holders = source.metadata_for_store(store.name());
      // Plain variables, not a structured binding: lambdas capture them (Clang 14).
      const std::pair<int32_t, int32_t> tasks = source.tasks_of(store.name());
      const int32_t subtopology = tasks.first, partitions = tasks.second;
      auto holds = [subtopology](const StreamsMetadata& holder) {
        return std::any_of(
            holder.active_tasks.begin(), holder.active_tasks.end(),
            [subtopology](const TaskId& task) { return task.subtopology == subtopology; });
      };
      std::set<int32_t> covered;
      for (const auto& holder : holders)
        for (const TaskId& task : holder.active_tasks)
          if (task.subtopology == subtopology) covered.insert(task.partition);
      if (static_cast<int32_t>(covered.size()) < partitions)
        return unavailable("not every partition of '" + store.name() +
                           "' has an instance that answers queries now (a rebalance, or an "
                           "instance without application.server)");
      for (const auto& holder : holders) {
        if (!holds(holder)) continue;
        if (holder.host == source.self) {
          auto mine = local_range(store, from, to, limit);
          std::move(mine.begin(), mine.end(), std::back_inserter(entries));
          continue;
        }
        std::string target = "/v1/stores/" + encode_url(store.name()) +
                             "/range?local&limit=" + std::to_string(limit);
        if (auto found = params.find("from"); found != params.end())
          target += "&from=" + encode_url(found->second);
        if (auto found = params.find("to"); found != params.end())
          target += "&to=" + encode_url(found->second);
        std::string why;
        const auto answer = http_get(holder.host, target, kForwardTimeout, why);
        if (!answer)
          return unavailable("instance " + holder.host.to_string() + " did not answer: " + why);
        if (answer->status != 200) return relayed(*answer);
        const Json body = Json::parse(answer->body, nullptr, false);
        if (!body.is_object() || !body.contains("entries"))
          return unavailable("instance " + holder.host.to_string() + " gave no entries");
        for (const Json& entry : body["entries"])
          entries.emplace_back(entry.value("order", ""), entry);
      }
      std::stable_sort(entries.begin(), entries.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      if (entries.size() > limit) entries.resize(limit);
    }
    Json list = Json::array();
    for (auto& [order, entry] : entries) {
      if (!local) entry.erase("order");
      list.push_back(std::move(entry));
    }
    return json_answer(200, {{"store", store.name()},
                             {"entries", std::move(list)},
                             {"host", source.self.to_string()},
                             {"stale", false}});
  }

  std::vector<std::pair<std::string, Json>> local_range(const StoreBuilder& store,
                                                        const std::optional<std::string>& from,
                                                        const std::optional<std::string>& to,
                                                        std::size_t limit) {
    std::mutex mutex;
    std::vector<std::pair<std::string, std::string>> raw;
    source.stores->for_each_task_store(store.name(), [&](StateStore& task_store) {
      auto* bytes = dynamic_cast<state::KeyValueBytesStore*>(task_store.bytes());
      if (bytes == nullptr) return;
      // A range without `to` reads on from the start of the store: the
      // byte store's ranges have two ends.
      std::unique_ptr<state::KeyValueBytesIterator> it =
          to ? bytes->range(from.value_or(std::string()), *to) : bytes->all();
      std::vector<std::pair<std::string, std::string>> mine;
      for (; it->valid() && mine.size() < limit; it->next()) {
        if (from && !to && it->key() < std::string_view(*from)) continue;
        mine.emplace_back(std::string(it->key()), std::string(it->value()));
      }
      std::lock_guard lock(mutex);
      std::move(mine.begin(), mine.end(), std::back_inserter(raw));
    });
    std::stable_sort(raw.begin(), raw.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    if (raw.size() > limit) raw.resize(limit);
    std::vector<std::pair<std::string, Json>> entries;
    for (const auto& [key, value] : raw) {
      const std::string order = hex(key);
      entries.emplace_back(order, Json{{"key", rendered(store.codec()->key_text(key))},
                                       {"value", rendered(store.codec()->value_text(value))},
                                       {"order", order}});
    }
    return entries;
  }

  HttpResponse windows(const StoreBuilder& store, const std::map<std::string, std::string>& params,
                       const Reading& reading) {
    if (store.spec().kind != StoreKind::kWindow)
      throw BadRequest("store '" + store.name() + "' is a " +
                       std::string(to_string(store.spec().kind)) +
                       " store; /windows reads window stores");
    const auto key_param = params.find("key");
    if (key_param == params.end()) throw BadRequest("/windows needs key=");
    const int64_t from = time_parameter(params, "from", 0);
    const int64_t to = time_parameter(params, "to", std::numeric_limits<int64_t>::max());
    const std::string key = key_bytes(store, key_param->second);
    if (!reading.local) {
      std::string target = "/v1/stores/" + encode_url(store.name()) +
                           "/windows?local&key=" + encode_url(key_param->second);
      if (params.contains("from")) target += "&from=" + std::to_string(from);
      if (params.contains("to")) target += "&to=" + std::to_string(to);
      if (auto forwarded = at_owner(store, key, target, reading.stale)) return *forwarded;
    }
    std::vector<std::pair<int64_t, std::string>> found;  // by start, as the store reads them
    const bool stale = source.stores->for_each_task_store(
        store.name(),
        [&](StateStore& task_store) {
          auto* bytes = dynamic_cast<state::WindowBytesStore*>(task_store.bytes());
          if (bytes == nullptr) return;
          for (auto it = bytes->fetch(key, from, to); it->valid(); it->next())
            found.emplace_back(it->window_start(), std::string(it->value()));
        },
        reading.options(source.partition_of(store.name(), key)));
    const int64_t size = store.spec().window_size.count();
    Json list = Json::array();
    for (const auto& [start, value] : found)
      list.push_back({{"start", start},
                      {"end", internal::window_end(start, size)},
                      {"value", rendered(store.codec()->value_text(value))}});
    return json_answer(200, {{"store", store.name()},
                             {"key", rendered(store.codec()->key_text(key))},
                             {"windows", std::move(list)},
                             {"host", source.self.to_string()},
                             {"stale", stale}});
  }

  QuerySource source;
  metrics::HttpServer server;
};

QueryServer::QueryServer(const std::string& bind_host, QuerySource source)
    : impl_(std::make_unique<Impl>(bind_host, std::move(source))) {}

QueryServer::~QueryServer() = default;

uint16_t QueryServer::port() const {
  return impl_->server.port();
}

}  // namespace rill::queries
