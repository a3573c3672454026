#include "metrics/http_server.h"

#include <charconv>
#include <chrono>
#include <thread>

// GCC sees a possible null thread_info in Asio's reactor once it is inlined
// here; the pointer is set on every thread that runs the io_context.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#pragma GCC diagnostic pop

#include "rill/config.h"

#include "log/log.h"

namespace rill::metrics {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kRequestTimeout = std::chrono::seconds(10);

// One connection: read a request, answer it, close.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServer::Handler& handler)
      : stream_(std::move(socket)), handler_(handler) {}

  void start() {
    stream_.expires_after(kRequestTimeout);
    http::async_read(stream_, buffer_, request_,
                     [self = shared_from_this()](beast::error_code error, std::size_t) {
                       if (!error) self->answer();
                     });
  }

 private:
  void answer() {
    HttpResponse answer;
    if (request_.method() != http::verb::get && request_.method() != http::verb::head) {
      answer = {405, "text/plain; charset=utf-8", "only GET\n"};
    } else {
      std::string_view target(request_.target().data(), request_.target().size());
      try {
        answer = handler_(target.substr(0, target.find('?')));
      } catch (const std::exception& e) {
        answer = {500, "text/plain; charset=utf-8", std::string(e.what()) + "\n"};
      }
    }
    response_.version(request_.version());
    response_.result(answer.status);
    response_.set(http::field::content_type, answer.content_type);
    response_.keep_alive(false);
    if (request_.method() != http::verb::head) response_.body() = std::move(answer.body);
    response_.prepare_payload();
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code, std::size_t) {
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                      });
  }

  beast::tcp_stream stream_;
  const HttpServer::Handler& handler_;
  beast::flat_buffer buffer_;
  http::request<http::empty_body> request_;
  http::response<http::string_body> response_;
};

}  // namespace

std::pair<std::string, uint16_t> parse_listen_address(std::string_view key,
                                                      std::string_view address) {
  std::string_view host = "127.0.0.1";
  std::string_view port = address;
  if (auto colon = address.rfind(':'); colon != std::string_view::npos) {
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    // [::1]:9464
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    if (host.empty()) host = "127.0.0.1";
  }
  unsigned value = 0;
  auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  boost::system::error_code address_error;
  asio::ip::make_address(std::string(host), address_error);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() || value > 65535 ||
      address_error)
    throw ConfigError("config '" + std::string(key) + "': invalid value '" + std::string(address) +
                      "', expected host:port or a port (an IP address; port 0 picks a free one)");
  return {std::string(host), static_cast<uint16_t>(value)};
}

struct HttpServer::Impl {
  Impl(const std::string& host, uint16_t port, Handler handler_in)
      : handler(std::move(handler_in)), acceptor(io) {
    tcp::endpoint endpoint(asio::ip::make_address(host), port);
    boost::system::error_code error;
    acceptor.open(endpoint.protocol(), error);
    if (!error) acceptor.set_option(asio::socket_base::reuse_address(true), error);
    if (!error) acceptor.bind(endpoint, error);
    if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
    if (error)
      throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                               error.message());
    accept();
    thread = std::thread([this] { io.run(); });
  }

  ~Impl() {
    io.stop();
    if (thread.joinable()) thread.join();
  }

  void accept() {
    acceptor.async_accept([this](beast::error_code error, tcp::socket socket) {
      if (error == asio::error::operation_aborted) return;
      if (!error) std::make_shared<Session>(std::move(socket), handler)->start();
      accept();
    });
  }

  Handler handler;
  asio::io_context io;
  tcp::acceptor acceptor;
  std::thread thread;
};

HttpServer::HttpServer(const std::string& host, uint16_t port, Handler handler)
    : impl_(std::make_unique<Impl>(host, port, std::move(handler))) {}

HttpServer::~HttpServer() = default;

uint16_t HttpServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

}  // namespace rill::metrics
