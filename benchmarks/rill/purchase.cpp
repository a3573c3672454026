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

}  // namespace

rill::SerdePtr<Purchase> purchase_serde() {
  return std::make_shared<PurchaseSerde>();
}

rill::SerdePtr<Projection> projection_serde() {
  return std::make_shared<ProjectionSerde>();
}

}  // namespace bench::rill_workloads
