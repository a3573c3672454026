// The metrics endpoint's HTTP server under pressure and against the methods
// it does not serve: no busy loop when file descriptors run out, a bounded
// number of connections that idle clients cannot hold for ever, 405 with
// Allow for methods other than GET and HEAD, and HEAD without a body.
#include "metrics/http_server.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#pragma GCC diagnostic pop

#include <catch2/catch.hpp>

#include "support/eventually.h"
#include "support/http_client.h"

using Catch::Contains;
using Catch::EndsWith;
using Catch::StartsWith;
using rill::metrics::HttpRequest;
using rill::metrics::HttpResponse;
using rill::metrics::HttpServer;
using rill::metrics::HttpServerLimits;
using tcp = boost::asio::ip::tcp;
using namespace std::chrono_literals;
using rill::testing::eventually;

namespace {

const std::string kGetHealth = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

HttpServer::Handler health(std::atomic<int>* calls = nullptr) {
  return [calls](const HttpRequest& request) {
    if (calls != nullptr) ++*calls;
    if (request.path == "/healthz")
      return HttpResponse{200, "text/plain; charset=utf-8", "RUNNING\n"};
    return HttpResponse{404, "text/plain; charset=utf-8", "not found\n"};
  };
}

// Takes every file descriptor the process may open (RLIMIT_NOFILE lowered to
// keep the count small, then dup() until EMFILE), and gives them back.
class DescriptorsExhausted {
 public:
  DescriptorsExhausted() {
    REQUIRE(getrlimit(RLIMIT_NOFILE, &saved_) == 0);
    rlimit lowered = saved_;
    lowered.rlim_cur = std::min<rlim_t>(saved_.rlim_cur, 4096);
    REQUIRE(setrlimit(RLIMIT_NOFILE, &lowered) == 0);
    const int null_device = ::open("/dev/null", O_RDONLY);
    if (null_device >= 0) {
      taken_.push_back(null_device);
      for (int fd = ::dup(null_device); fd >= 0; fd = ::dup(null_device)) taken_.push_back(fd);
    }
    exhausted_ = errno == EMFILE;
  }
  ~DescriptorsExhausted() { release(); }
  DescriptorsExhausted(const DescriptorsExhausted&) = delete;
  DescriptorsExhausted& operator=(const DescriptorsExhausted&) = delete;

  bool exhausted() const { return exhausted_; }
  void release() {
    for (int fd : taken_) ::close(fd);
    taken_.clear();
    setrlimit(RLIMIT_NOFILE, &saved_);
  }

 private:
  rlimit saved_{};
  std::vector<int> taken_;
  bool exhausted_ = false;
};

}  // namespace

TEST_CASE("the endpoint pauses accepting when descriptors run out, then serves again",
          "[unit][http]") {
  HttpServer server("127.0.0.1", 0, health());
  const tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), server.port());
  // The client's socket and its io_context take their descriptors first.
  boost::asio::io_context io;
  tcp::socket client(io);
  client.open(tcp::v4());
  std::string response;
  {
    DescriptorsExhausted descriptors;
    REQUIRE(descriptors.exhausted());
    // The kernel completes the connection into the backlog; accepting it
    // needs a descriptor the server cannot get.
    client.connect(endpoint);
    boost::asio::write(client, boost::asio::buffer(kGetHealth));
    REQUIRE(eventually([&] { return server.stats().accept_errors >= 1; }, 5s, 5ms));

    // A busy loop fails thousands of times a second; pausing 100 ms, then
    // 200, 400, 800 fails at most four times in a second.
    const uint64_t errors_before = server.stats().accept_errors;
    std::this_thread::sleep_for(1s);  // the interval measured, not a wait for an event
    const uint64_t errors = server.stats().accept_errors - errors_before;
    CHECK(errors <= 6);
    CHECK(server.stats().open_connections == 0);
  }
  // Descriptors back: the next try accepts the waiting connection.
  boost::system::error_code error;
  boost::asio::async_read(client, boost::asio::dynamic_buffer(response),
                          [&](boost::system::error_code e, std::size_t) { error = e; });
  io.run_for(10s);
  CHECK(error == boost::asio::error::eof);
  CHECK_THAT(response, StartsWith("HTTP/1.1 200") && EndsWith("RUNNING\n"));
  CHECK(rill::testing::http_get(server.port(), "/healthz").status == 200);
}

TEST_CASE("idle connections past the cap do not starve a request", "[unit][http]") {
  const HttpServerLimits limits{4, 300ms};
  HttpServer server("127.0.0.1", 0, health(), limits);
  const tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"), server.port());
  boost::asio::io_context io;
  // Three times the cap, connected and silent for the whole test.
  std::vector<tcp::socket> idle;
  for (int i = 0; i < 3 * limits.max_connections; ++i) {
    idle.emplace_back(io);
    idle.back().connect(endpoint);
  }
  REQUIRE(eventually([&] { return server.stats().open_connections == limits.max_connections; }, 5s,
                     5ms));

  const auto start = std::chrono::steady_clock::now();
  const std::string response = rill::testing::http_exchange(server.port(), kGetHealth);
  const auto waited = std::chrono::steady_clock::now() - start;
  CHECK_THAT(response, StartsWith("HTTP/1.1 200") && EndsWith("RUNNING\n"));
  // Served once the idle connections ahead of it timed out, three rounds of
  // 300 ms, well before http_exchange gives up after 10 s.
  CHECK(waited < 5s);
  CHECK(server.stats().peak_connections == limits.max_connections);
}

TEST_CASE("methods other than GET and HEAD get 405 with Allow", "[unit][http]") {
  std::atomic<int> calls = 0;
  HttpServer server("127.0.0.1", 0, health(&calls));
  const std::string with_body = rill::testing::http_exchange(
      server.port(),
      "POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
      "Content-Length: 11\r\n\r\nhello world");
  CHECK_THAT(with_body, StartsWith("HTTP/1.1 405 Method Not Allowed\r\n") &&
                            Contains("\r\nAllow: GET, HEAD\r\n"));
  const std::string without_body = rill::testing::http_exchange(
      server.port(), "DELETE /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK_THAT(without_body, StartsWith("HTTP/1.1 405 Method Not Allowed\r\n") &&
                               Contains("\r\nAllow: GET, HEAD\r\n"));
  CHECK(calls == 0);
  CHECK(rill::testing::http_get(server.port(), "/healthz").status == 200);
}

TEST_CASE("HEAD gets GET's headers and no body", "[unit][http]") {
  HttpServer server("127.0.0.1", 0, health());
  const std::string get = rill::testing::http_exchange(server.port(), kGetHealth);
  const std::string head = rill::testing::http_exchange(
      server.port(), "HEAD /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  CHECK_THAT(get, StartsWith("HTTP/1.1 200") && Contains("\r\nContent-Length: 8\r\n") &&
                      EndsWith("\r\n\r\nRUNNING\n"));
  CHECK_THAT(head, StartsWith("HTTP/1.1 200") && Contains("\r\nContent-Length: 8\r\n") &&
                       EndsWith("\r\n\r\n"));
  CHECK(head == get.substr(0, get.size() - std::string("RUNNING\n").size()));
}
