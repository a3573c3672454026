// A blocking HTTP GET for tests of the metrics endpoint and probes, a raw
// exchange for what GET does not show (other methods, HEAD), and a reader of
// the Prometheus text format they scrape.
#pragma once

#include <map>
#include <string>

namespace rill::testing {

struct HttpResult {
  int status = 0;  // 0: no answer (connection refused, timeout)
  std::string body;
};

// GET http://127.0.0.1:`port``path`.
HttpResult http_get(int port, const std::string& path);

// Sends `request` as it is to 127.0.0.1:`port` and returns every byte the
// server sent until it closed the connection, or until 10 s have passed.
std::string http_exchange(int port, const std::string& request);

// The sum of every sample of `metric` whose labels include all of `labels`;
// -1 when there is no such sample.
double metric_sum(const std::string& exposition, const std::string& metric,
                  const std::map<std::string, std::string>& labels = {});

// The number of samples of `metric` whose labels include all of `labels`.
int metric_count(const std::string& exposition, const std::string& metric,
                 const std::map<std::string, std::string>& labels = {});

}  // namespace rill::testing
