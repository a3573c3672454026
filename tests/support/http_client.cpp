#include "support/http_client.h"

#include <array>
#include <chrono>
#include <functional>
#include <sstream>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#pragma GCC diagnostic pop

namespace rill::testing {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

HttpResult http_get(int port, const std::string& path) {
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code error;
  stream.expires_after(std::chrono::seconds(10));
  stream.connect(
      tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)),
      error);
  if (error) return {};
  http::request<http::empty_body> request(http::verb::get, path, 11);
  request.set(http::field::host, "127.0.0.1");
  http::write(stream, request, error);
  if (error) return {};
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response, error);
  if (error && error != http::error::end_of_stream) return {};
  return {static_cast<int>(response.result_int()), response.body()};
}

std::string http_exchange(int port, const std::string& request) {
  boost::asio::io_context io;
  tcp::socket socket(io);
  beast::error_code error;
  socket.connect(
      tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)),
      error);
  if (error) return {};
  boost::asio::write(socket, boost::asio::buffer(request), error);
  if (error) return {};
  std::string response;
  std::array<char, 4096> chunk{};
  std::function<void()> read = [&] {
    socket.async_read_some(boost::asio::buffer(chunk), [&](beast::error_code e, std::size_t n) {
      response.append(chunk.data(), n);
      if (!e) read();
    });
  };
  read();
  io.run_for(std::chrono::seconds(10));
  return response;
}

namespace {

// Calls `sample(labels, value)` for every sample line of `metric`.
template <class F>
void for_each_sample(const std::string& exposition, const std::string& metric, F sample) {
  std::istringstream lines(exposition);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#' || line.compare(0, metric.size(), metric) != 0) continue;
    std::size_t at = metric.size();
    if (at >= line.size() || (line[at] != '{' && line[at] != ' ')) continue;
    std::map<std::string, std::string> labels;
    if (line[at] == '{') {
      ++at;
      while (at < line.size() && line[at] != '}') {
        std::size_t equals = line.find('=', at);
        std::string name = line.substr(at, equals - at);
        std::string value;
        std::size_t i = equals + 2;  // past ="
        for (; i < line.size() && line[i] != '"'; ++i) {
          if (line[i] == '\\' && i + 1 < line.size()) ++i;
          value += line[i];
        }
        labels[name] = value;
        at = i + 1;
        if (at < line.size() && line[at] == ',') ++at;
      }
      ++at;
    }
    sample(labels, std::stod(line.substr(at + 1)));
  }
}

bool matches(const std::map<std::string, std::string>& labels,
             const std::map<std::string, std::string>& wanted) {
  for (const auto& [name, value] : wanted) {
    auto it = labels.find(name);
    if (it == labels.end() || it->second != value) return false;
  }
  return true;
}

}  // namespace

double metric_sum(const std::string& exposition, const std::string& metric,
                  const std::map<std::string, std::string>& labels) {
  double sum = 0;
  bool found = false;
  for_each_sample(exposition, metric, [&](const auto& sample_labels, double value) {
    if (!matches(sample_labels, labels)) return;
    sum += value;
    found = true;
  });
  return found ? sum : -1;
}

int metric_count(const std::string& exposition, const std::string& metric,
                 const std::map<std::string, std::string>& labels) {
  int count = 0;
  for_each_sample(exposition, metric, [&](const auto& sample_labels, double) {
    if (matches(sample_labels, labels)) ++count;
  });
  return count;
}

}  // namespace rill::testing
