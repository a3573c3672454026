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

// W6's table row: {"name":"customer-123","tier":"gold"}.
struct Customer {
  std::string name;
  std::string tier;
};

// W6's output value: {"user":"u123","amount":12.5,"tier":"gold"}.
struct Enriched {
  std::string user;
  double amount = 0;
  std::string tier;
};

// W7's second input: {"order":"o123","method":"card","ts":...}.
struct Payment {
  std::string order;
  std::string method;
  int64_t ts = 0;
};

// W7's output value: {"user":"u123","amount":12.5,"method":"card","delay_ms":1234}.
struct PaidOrder {
  std::string user;
  double amount = 0;
  std::string method;
  int64_t delay_ms = 0;
};

// Reads "user", "amount", "category" and "ts"; the rest of the value is skipped
// unparsed. Throws rill::SerdeError on a malformed value.
rill::SerdePtr<Purchase> purchase_serde();
rill::SerdePtr<Projection> projection_serde();
rill::SerdePtr<Customer> customer_serde();
rill::SerdePtr<Enriched> enriched_serde();
rill::SerdePtr<Payment> payment_serde();
rill::SerdePtr<PaidOrder> paid_order_serde();

}  // namespace bench::rill_workloads
