#include "metrics/http_server.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <thread>

#include <fcntl.h>

// GCC sees a possible null thread_info in Asio's reactor once it is inlined
// here; the pointer is set on every thread that runs the io_context.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
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

// The pause after a failed accept, doubled on each failure in a row up to
// kMaxAcceptBackoff: when descriptors run out, the pending connection stays
// in the backlog and accepting again at once would only fail again.
constexpr auto kFirstAcceptBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxAcceptBackoff = std::chrono::milliseconds(1000);
// How long a connection whose request body went unread may take to close
// after the answer: closing with unread bytes would reset it and could lose
// the answer on the way.
constexpr auto kLingerTimeout = std::chrono::milliseconds(1000);

// Asio opens sockets without FD_CLOEXEC.
void close_on_exec(int fd) {
  const int flags = fcntl(fd, F_GETFD);
  if (flags >= 0) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

// Counts a connection as open while it lives, and tells the server when it
// closes.
class ConnectionSlot {
 public:
  explicit ConnectionSlot(std::function<void()> on_close) : on_close_(std::move(on_close)) {}
  ~ConnectionSlot() { on_close_(); }
  ConnectionSlot(const ConnectionSlot&) = delete;
  ConnectionSlot& operator=(const ConnectionSlot&) = delete;

 private:
  std::function<void()> on_close_;
};

// One connection: read a request's headers, answer, close.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const HttpServer::Handler& handler, std::chrono::milliseconds timeout,
          asio::thread_pool* handlers, std::function<void()> on_close)
      : slot_(std::move(on_close)),
        stream_(std::move(socket)),
        handler_(handler),
        timeout_(timeout),
        handlers_(handlers) {}

  void start() {
    stream_.expires_after(timeout_);
    http::async_read_header(stream_, buffer_, parser_,
                            [self = shared_from_this()](beast::error_code error, std::size_t) {
                              if (!error) self->answer();
                            });
  }

 private:
  void answer() {
    const auto& request = parser_.get();
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      response_.set(http::field::allow, "GET, HEAD");
      write({405, "text/plain; charset=utf-8", "method not allowed, expected GET or HEAD\n", {}});
      return;
    }
    if (handlers_ == nullptr) {
      write(handle());
      return;
    }
    // The handler may wait: on a thread of the pool, then back to this one.
    asio::post(*handlers_, [self = shared_from_this()] {
      HttpResponse answer = self->handle();
      asio::post(self->stream_.get_executor(),
                 [self, answer = std::move(answer)]() mutable { self->write(std::move(answer)); });
    });
  }

  HttpResponse handle() {
    const std::string_view target(parser_.get().target().data(), parser_.get().target().size());
    const std::size_t mark = target.find('?');
    HttpRequest request{target.substr(0, mark), mark == std::string_view::npos
                                                    ? std::string_view()
                                                    : target.substr(mark + 1)};
    try {
      return handler_(request);
    } catch (const std::exception& e) {
      return {500, "text/plain; charset=utf-8", std::string(e.what()) + "\n", {}};
    }
  }

  void write(HttpResponse answer) {
    const auto& request = parser_.get();
    const bool head = request.method() == http::verb::head;
    for (auto& [field, value] : answer.headers) response_.set(field, value);
    response_.version(request.version());
    response_.result(answer.status);
    response_.set(http::field::content_type, answer.content_type);
    response_.keep_alive(false);
    // HEAD: the headers GET would get, Content-Length included, and no body.
    const std::size_t length = answer.body.size();
    if (!head) response_.body() = std::move(answer.body);
    response_.content_length(length);
    stream_.expires_after(timeout_);
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code error, std::size_t) {
                        if (error) return;
                        beast::error_code ignored;
                        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                        if (!self->parser_.is_done()) self->drain();
                      });
  }

  // Reads and drops what the client still sends (a request body) until it
  // closes, for at most kLingerTimeout.
  void drain() {
    stream_.expires_after(std::min<std::chrono::milliseconds>(timeout_, kLingerTimeout));
    stream_.async_read_some(asio::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code error, std::size_t) {
                              if (!error) self->drain();
                            });
  }

  // First, so that the connection counts as open until its socket is closed.
  ConnectionSlot slot_;
  beast::tcp_stream stream_;
  const HttpServer::Handler& handler_;
  std::chrono::milliseconds timeout_;
  asio::thread_pool* handlers_;
  beast::flat_buffer buffer_;
  http::request_parser<http::empty_body> parser_;
  http::response<http::string_body> response_;
  std::array<char, 4096> scratch_{};
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
  Impl(const std::string& host, uint16_t port, Handler handler_in, HttpServerLimits limits_in)
      : handler(std::move(handler_in)), limits(limits_in), acceptor(io), backoff_timer(io) {
    tcp::endpoint endpoint(asio::ip::make_address(host), port);
    boost::system::error_code error;
    acceptor.open(endpoint.protocol(), error);
    // A process the application starts must not inherit the listening socket:
    // it would keep the port taken after the server closed.
    if (!error) close_on_exec(acceptor.native_handle());
    if (!error) acceptor.set_option(asio::socket_base::reuse_address(true), error);
    if (!error) acceptor.bind(endpoint, error);
    if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
    if (error)
      throw std::runtime_error("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                               error.message());
    if (limits.handler_threads > 0)
      handlers = std::make_unique<asio::thread_pool>(limits.handler_threads);
    accept();
    thread = std::thread([this] { io.run(); });
  }

  ~Impl() {
    io.stop();
    if (thread.joinable()) thread.join();
    // No session hands the pool new work now. Handlers under way finish, and
    // the pool goes before `io`: what it still held would reach into sockets
    // of `io`. What handlers post back to `io` goes with it.
    if (handlers) {
      handlers->join();
      handlers.reset();
    }
    // Sessions still queued are destroyed with `io`, after the acceptor.
    stopped = true;
  }

  // Runs on the server's thread only, as everything below.
  void accept() {
    if (open_connections.load(std::memory_order_relaxed) >= limits.max_connections) {
      accept_paused = true;  // resumed by connection_closed()
      return;
    }
    acceptor.async_accept([this](beast::error_code error, tcp::socket socket) {
      if (error == asio::error::operation_aborted) return;
      if (error) {
        accept_failed(error);
        return;
      }
      close_on_exec(socket.native_handle());
      if (backoff.count() > 0) log::get().info("metrics endpoint: accepting connections again");
      backoff = {};
      const int open = open_connections.fetch_add(1, std::memory_order_relaxed) + 1;
      if (open > peak_connections.load(std::memory_order_relaxed))
        peak_connections.store(open, std::memory_order_relaxed);
      std::make_shared<Session>(std::move(socket), handler, limits.request_timeout, handlers.get(),
                                [this] { connection_closed(); })
          ->start();
      accept();
    });
  }

  void accept_failed(const beast::error_code& error) {
    accept_errors.fetch_add(1, std::memory_order_relaxed);
    if (backoff.count() == 0)
      log::get().warn("metrics endpoint: cannot accept a connection ({}), retrying in up to {} ms",
                      error.message(), kMaxAcceptBackoff.count());
    backoff = backoff.count() == 0 ? kFirstAcceptBackoff : std::min(backoff * 2, kMaxAcceptBackoff);
    backoff_timer.expires_after(backoff);
    backoff_timer.async_wait([this](beast::error_code wait_error) {
      if (!wait_error) accept();
    });
  }

  void connection_closed() {
    open_connections.fetch_sub(1, std::memory_order_relaxed);
    if (accept_paused && !stopped) {
      accept_paused = false;
      accept();
    }
  }

  // Declared before `io`: sessions destroyed with it still report here.
  Handler handler;
  HttpServerLimits limits;
  std::atomic<uint64_t> accept_errors{0};
  std::atomic<int> open_connections{0};
  std::atomic<int> peak_connections{0};
  bool accept_paused = false;
  bool stopped = false;
  std::chrono::milliseconds backoff{0};

  std::unique_ptr<asio::thread_pool> handlers;
  asio::io_context io;
  tcp::acceptor acceptor;
  asio::steady_timer backoff_timer;
  std::thread thread;
};

HttpServer::HttpServer(const std::string& host, uint16_t port, Handler handler,
                       HttpServerLimits limits)
    : impl_(std::make_unique<Impl>(host, port, std::move(handler), limits)) {}

HttpServer::~HttpServer() = default;

uint16_t HttpServer::port() const {
  return impl_->acceptor.local_endpoint().port();
}

HttpServer::Stats HttpServer::stats() const {
  return Stats{impl_->accept_errors.load(std::memory_order_relaxed),
               impl_->open_connections.load(std::memory_order_relaxed),
               impl_->peak_connections.load(std::memory_order_relaxed)};
}

}  // namespace rill::metrics
