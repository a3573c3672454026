// A small HTTP/1.1 server for the metrics endpoint, the health probes and the
// query endpoint, on a thread of its own. Each GET or HEAD gets a fresh answer from `handler` and
// the connection is closed after it, which is all Prometheus and Kubernetes
// probes need; other methods get 405. It stays bounded under pressure: a cap
// on open connections, a deadline per request, and a growing pause between
// failed accepts (no descriptors left) instead of a busy loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rill::metrics {

struct HttpRequest {
  std::string_view path;
  // What follows '?' in the target, undecoded; empty when there is none.
  std::string_view query;
};

struct HttpResponse {
  HttpResponse(unsigned status_in = 200, std::string content_type_in = "text/plain; charset=utf-8",
               std::string body_in = {},
               std::vector<std::pair<std::string, std::string>> headers_in = {})
      : status(status_in),
        content_type(std::move(content_type_in)),
        body(std::move(body_in)),
        headers(std::move(headers_in)) {}

  unsigned status;
  std::string content_type;
  std::string body;
  // Further header fields, such as Retry-After.
  std::vector<std::pair<std::string, std::string>> headers;
};

// "host:port" or a port alone (bound to 127.0.0.1). Port 0 picks a free port.
// Throws ConfigError naming `key` when the address does not parse.
std::pair<std::string, uint16_t> parse_listen_address(std::string_view key,
                                                      std::string_view address);

struct HttpServerLimits {
  // Connections open at once. Further ones wait in the listen backlog until
  // one closes rather than being accepted and refused with 503: accepting
  // would take a file descriptor per connection, the very resource a flood
  // exhausts, while the backlog costs none and serves them in arrival order.
  // Default: 64.
  int max_connections = 64;
  // How long a connection may take to send its request line and headers, and
  // the answer to be written; idle connections are closed after it, so they
  // cannot hold the connection slots for ever. Default: 10 s.
  std::chrono::milliseconds request_timeout{10000};
  // Threads that run the handler, for handlers that wait (on other servers,
  // on tasks); 0 runs it on the server's thread. Default: 0.
  int handler_threads = 0;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest& request)>;

  // What the server has seen, for tests and diagnostics.
  struct Stats {
    // accept() calls that failed (EMFILE, ENFILE, ...).
    uint64_t accept_errors = 0;
    int open_connections = 0;
    // The most connections that were ever open at once.
    int peak_connections = 0;
  };

  // Listens at once; throws std::runtime_error naming the address when it
  // cannot bind.
  HttpServer(const std::string& host, uint16_t port, Handler handler, HttpServerLimits limits = {});
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  Stats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rill::metrics
