// A small HTTP/1.1 server for the metrics endpoint and the health probes, on
// a thread of its own. Each request gets a fresh answer from `handler` and
// the connection is closed after it, which is all Prometheus and Kubernetes
// probes need.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace rill::metrics {

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// "host:port" or a port alone (bound to 127.0.0.1). Port 0 picks a free port.
// Throws ConfigError naming `key` when the address does not parse.
std::pair<std::string, uint16_t> parse_listen_address(std::string_view key,
                                                      std::string_view address);

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(std::string_view path)>;

  // Listens at once; throws std::runtime_error naming the address when it
  // cannot bind.
  HttpServer(const std::string& host, uint16_t port, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rill::metrics
