// The benchmark's record types as rill values, with serdes on simdjson (the
// same JSON parser as the raw librdkafka baseline), so that the comparison
// with raw librdkafka measures the framework rather than the JSON library.
// The workload "w1-json" runs the same logic on rill::serdes::json()
// (nlohmann::json) to show what the built-in JSON serde costs.
#pragma once

#include <cstdint>
#include <string>

#include "rill/json.h"
#include "rill/serde.h"

namespace bench::rill_workloads {

// An input value: {"user":"u123","amount":12.5,"category":"c7","ts":...,"seq":...,"pad":"..."}.
struct Purchase {
  std::string user;
  double amount = 0;
  std::string category;
  int64_t ts = 0;
};

// W1's output value: {"user":"u123","amount":12.5}.
struct Projection {
  std::string user;
  double amount = 0;
};

// Reads "user", "amount", "category" and "ts"; the rest of the value is skipped
// unparsed. Throws rill::SerdeError on a malformed value.
rill::SerdePtr<Purchase> purchase_serde();
rill::SerdePtr<Projection> projection_serde();

}  // namespace bench::rill_workloads
