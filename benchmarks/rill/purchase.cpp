#include "purchase.h"

#include <charconv>
#include <cstdio>
#include <memory>

#include <simdjson.h>

namespace bench::rill_workloads {

namespace {

// Serdes are shared by every task, so each worker thread parses with its own
// parser and padded copy of the input.
struct ThreadParser {
  simdjson::ondemand::parser parser;
  std::string padded;

  // simdjson reads a few bytes past the end of its input, so it parses a
  // padded copy rather than the Kafka message itself.
  simdjson::simdjson_result<simdjson::ondemand::document> iterate(std::string_view bytes) {
    padded.assign(bytes.data(), bytes.size());
    padded.append(simdjson::SIMDJSON_PADDING, '\0');
    return parser.iterate(padded.data(), bytes.size(), padded.size());
  }
};

Purchase parse_purchase(rill::NullableBytes bytes) {
  if (!bytes) throw rill::SerdeError("purchase: null value");
  thread_local ThreadParser local;
  auto doc = local.iterate(*bytes);
  Purchase p;
  std::string_view user, category;
  // Fields in the order the producer writes them: On Demand finds each in one pass.
  if (doc["user"].get_string().get(user) != simdjson::SUCCESS ||
      doc["amount"].get_double().get(p.amount) != simdjson::SUCCESS ||
      doc["category"].get_string().get(category) != simdjson::SUCCESS ||
      doc["ts"].get_int64().get(p.ts) != simdjson::SUCCESS)
    throw rill::SerdeError("purchase: expected user, amount, category and ts");
  p.user = user;
  p.category = category;
  return p;
}

void append_json_string(std::string_view text, std::string& out) {
  out.push_back('"');
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
      out.append(escaped);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

template <class Number>
void append_number(Number value, std::string& out) {
  char text[32];
  auto end = std::to_chars(text, text + sizeof text, value).ptr;
  out.append(text, static_cast<std::size_t>(end - text));
}

// Serdes as classes rather than serdes::from_functions: FunctionSerde's
// constructor parameters shadow its member functions, which -Wshadow (part of
// rill_warnings) rejects in user code.
class PurchaseSerde final : public rill::Serde<Purchase> {
 public:
  bool serialize(const Purchase& p, std::string& out) const override {
    out.append("{\"user\":");
    append_json_string(p.user, out);
    out.append(",\"amount\":");
    append_number(p.amount, out);
    out.append(",\"category\":");
    append_json_string(p.category, out);
    out.append(",\"ts\":");
    append_number(p.ts, out);
    out.push_back('}');
    return true;
  }
  Purchase deserialize(rill::NullableBytes bytes) const override { return parse_purchase(bytes); }
  std::string_view name() const override { return "purchase-json"; }
};

class ProjectionSerde final : public rill::Serde<Projection> {
 public:
  bool serialize(const Projection& p, std::string& out) const override {
    out.append("{\"user\":");
    append_json_string(p.user, out);
    out.append(",\"amount\":");
    append_number(p.amount, out);
    out.push_back('}');
    return true;
  }
  Projection deserialize(rill::NullableBytes bytes) const override {
    if (!bytes) throw rill::SerdeError("projection: null value");
    thread_local ThreadParser local;
    auto doc = local.iterate(*bytes);
    Projection p;
    std::string_view user;
    if (doc["user"].get_string().get(user) != simdjson::SUCCESS ||
        doc["amount"].get_double().get(p.amount) != simdjson::SUCCESS)
      throw rill::SerdeError("projection: expected user and amount");
    p.user = user;
    return p;
  }
  std::string_view name() const override { return "projection-json"; }
};

class CustomerSerde final : public rill::Serde<Customer> {
 public:
  bool serialize(const Customer& c, std::string& out) const override {
    out.append("{\"name\":");
    append_json_string(c.name, out);
    out.append(",\"tier\":");
    append_json_string(c.tier, out);
    out.push_back('}');
    return true;
  }
  Customer deserialize(rill::NullableBytes bytes) const override {
    if (!bytes) throw rill::SerdeError("customer: null value");
    thread_local ThreadParser local;
    auto doc = local.iterate(*bytes);
    std::string_view name, tier;
    if (doc["name"].get_string().get(name) != simdjson::SUCCESS ||
        doc["tier"].get_string().get(tier) != simdjson::SUCCESS)
      throw rill::SerdeError("customer: expected name and tier");
    return {std::string(name), std::string(tier)};
  }
  std::string_view name() const override { return "customer-json"; }
};

class EnrichedSerde final : public rill::Serde<Enriched> {
 public:
  bool serialize(const Enriched& e, std::string& out) const override {
    out.append("{\"user\":");
    append_json_string(e.user, out);
    out.append(",\"amount\":");
    append_number(e.amount, out);
    out.append(",\"tier\":");
    append_json_string(e.tier, out);
    out.push_back('}');
    return true;
  }
  Enriched deserialize(rill::NullableBytes bytes) const override {
    if (!bytes) throw rill::SerdeError("enriched: null value");
    thread_local ThreadParser local;
    auto doc = local.iterate(*bytes);
    Enriched e;
    std::string_view user, tier;
    if (doc["user"].get_string().get(user) != simdjson::SUCCESS ||
        doc["amount"].get_double().get(e.amount) != simdjson::SUCCESS ||
        doc["tier"].get_string().get(tier) != simdjson::SUCCESS)
      throw rill::SerdeError("enriched: expected user, amount and tier");
    e.user = user;
    e.tier = tier;
    return e;
  }
  std::string_view name() const override { return "enriched-json"; }
};

class PaymentSerde final : public rill::Serde<Payment> {
 public:
  bool serialize(const Payment& p, std::string& out) const override {
    out.append("{\"order\":");
    append_json_string(p.order, out);
    out.append(",\"method\":");
    append_json_string(p.method, out);
    out.append(",\"ts\":");
    append_number(p.ts, out);
    out.push_back('}');
    return true;
  }
  Payment deserialize(rill::NullableBytes bytes) const override {
    if (!bytes) throw rill::SerdeError("payment: null value");
    thread_local ThreadParser local;
    auto doc = local.iterate(*bytes);
    Payment p;
    std::string_view order, method;
    if (doc["order"].get_string().get(order) != simdjson::SUCCESS ||
        doc["method"].get_string().get(method) != simdjson::SUCCESS ||
        doc["ts"].get_int64().get(p.ts) != simdjson::SUCCESS)
      throw rill::SerdeError("payment: expected order, method and ts");
    p.order = order;
    p.method = method;
    return p;
  }
  std::string_view name() const override { return "payment-json"; }
};

class PaidOrderSerde final : public rill::Serde<PaidOrder> {
 public:
  bool serialize(const PaidOrder& p, std::string& out) const override {
    out.append("{\"user\":");
    append_json_string(p.user, out);
    out.append(",\"amount\":");
    append_number(p.amount, out);
    out.append(",\"method\":");
    append_json_string(p.method, out);
    out.append(",\"delay_ms\":");
    append_number(p.delay_ms, out);
    out.push_back('}');
    return true;
  }
  PaidOrder deserialize(rill::NullableBytes bytes) const override {
    if (!bytes) throw rill::SerdeError("paid order: null value");
    thread_local ThreadParser local;
    auto doc = local.iterate(*bytes);
    PaidOrder p;
    std::string_view user, method;
    if (doc["user"].get_string().get(user) != simdjson::SUCCESS ||
        doc["amount"].get_double().get(p.amount) != simdjson::SUCCESS ||
        doc["method"].get_string().get(method) != simdjson::SUCCESS ||
        doc["delay_ms"].get_int64().get(p.delay_ms) != simdjson::SUCCESS)
      throw rill::SerdeError("paid order: expected user, amount, method and delay_ms");
    p.user = user;
    p.method = method;
    return p;
  }
  std::string_view name() const override { return "paid-order-json"; }
};

}  // namespace

rill::SerdePtr<Purchase> purchase_serde() {
  return std::make_shared<PurchaseSerde>();
}

rill::SerdePtr<Projection> projection_serde() {
  return std::make_shared<ProjectionSerde>();
}

rill::SerdePtr<Customer> customer_serde() {
  return std::make_shared<CustomerSerde>();
}

rill::SerdePtr<Enriched> enriched_serde() {
  return std::make_shared<EnrichedSerde>();
}

rill::SerdePtr<Payment> payment_serde() {
  return std::make_shared<PaymentSerde>();
}

rill::SerdePtr<PaidOrder> paid_order_serde() {
  return std::make_shared<PaidOrderSerde>();
}

}  // namespace bench::rill_workloads
