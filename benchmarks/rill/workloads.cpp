#include "workloads.h"

#include <array>
#include <chrono>

#include "purchase.h"

namespace bench::rill_workloads {

namespace {

// The source every workload starts from. The timestamp extractor notes when
// the first record arrived (for records/s from first input to last output);
// `event_time` chooses the value's "ts" over the Kafka timestamp.
template <class V>
rill::Consumed<std::string, V> consumed(rill::SerdePtr<V> value_serde, const Context& context,
                                        int64_t (*event_time)(const V&) = nullptr) {
  FirstRecord* first = context.first_record;
  return {rill::serdes::string(), std::move(value_serde),
          [first, event_time](const rill::Record<std::string, V>& record) {
            first->mark();
            return event_time != nullptr ? event_time(record.value) : record.timestamp;
          }};
}

// W1: parse, keep amount >= 50, project user and amount, under the same key.
void w1(rill::StreamsBuilder& builder, const Context& context) {
  builder.stream(context.input, consumed(purchase_serde(), context))
      .filter([](const Purchase& p) { return p.amount >= kW1MinAmount; }, "w1-filter")
      .map_values(
          [](const Purchase& p) {
            return Projection{p.user, p.amount};
          },
          "w1-project")
      .to(context.output, rill::serdes::string(), projection_serde());
}

// W1 on the built-in JSON serde (nlohmann::json values).
void w1_json(rill::StreamsBuilder& builder, const Context& context) {
  builder.stream(context.input, consumed(rill::serdes::json(), context))
      .filter([](const nlohmann::json& v) { return v.at("amount").get<double>() >= kW1MinAmount; },
              "w1-filter")
      .map_values(
          [](const nlohmann::json& v) {
            return nlohmann::json{{"user", v.at("user")}, {"amount", v.at("amount")}};
          },
          "w1-project")
      .to(context.output);
}

// W2 (and W4, W5): records per key in a RocksDB store with a changelog. The
// values are counted, never parsed, so they stay bytes.
void w2(rill::StreamsBuilder& builder, const Context& context) {
  builder.stream(context.input, consumed(rill::serdes::bytes(), context))
      .group_by_key()
      .count(rill::Materialized<std::string, int64_t>::as("counts"))
      .to_stream()
      .to(context.output, rill::serdes::string(), rill::serdes::int64());
}

int64_t event_time(const Purchase& p) {
  return p.ts;
}

// W3: sum of amount per key and tumbling minute of the value's "ts". The key
// serde of the windowed table writes the key then the window start as 8
// big-endian bytes, as Kafka Streams' TimeWindowedSerializer does.
void w3(rill::StreamsBuilder& builder, const Context& context) {
  builder.stream(context.input, consumed(purchase_serde(), context, event_time))
      .group_by_key()
      .windowed_by(rill::TimeWindows::of_size_and_grace(
          std::chrono::minutes(1), std::chrono::milliseconds(context.grace_ms)))
      .aggregate([] { return 0.0; }, [](const Purchase& p, double sum) { return sum + p.amount; },
                 rill::Materialized<std::string, double>::as("sums"))
      .to_stream()
      .to(context.output);
}

// W6: each purchase enriched with its user's customer tier from a table (a
// RocksDB store with a changelog, read from the second input), inner join.
// Every customer is timestamped before every purchase, so each purchase finds
// its row.
void w6(rill::StreamsBuilder& builder, const Context& context) {
  auto customers = builder.table(context.second_input, consumed(customer_serde(), context),
                                 rill::Materialized<std::string, Customer>::as("customers"));
  builder.stream(context.input, consumed(purchase_serde(), context))
      .join(
          customers,
          [](const Purchase& p, const Customer& c) {
            return Enriched{p.user, p.amount, c.tier};
          },
          rill::Joined<std::string, Purchase>{.name = "w6-join"})
      .to(context.output, rill::serdes::string(), enriched_serde());
}

// W7: orders (keyed by order id, timestamped with their "ts") joined with the
// payments of the same order within one minute of each other, inner join, on
// the Kafka timestamps of both.
void w7(rill::StreamsBuilder& builder, const Context& context) {
  auto payments = builder.stream(context.second_input, consumed(payment_serde(), context));
  builder.stream(context.input, consumed(purchase_serde(), context))
      .join(
          payments,
          [](const Purchase& order, const Payment& payment) {
            return PaidOrder{order.user, order.amount, payment.method, payment.ts - order.ts};
          },
          rill::JoinWindows::of_time_difference_with_no_grace(std::chrono::minutes(1)),
          rill::StreamJoined<std::string, Purchase, Payment>{.name = "w7-join",
                                                             .store_name = "w7-join"})
      .to(context.output, rill::serdes::string(), paid_order_serde());
}

// W4 is w2 run with processing.guarantee=exactly_once_v2 (benchmarks/run
// passes --guarantee). W5's restore is w2 with Completion::kRestored: bench_rill
// stops once the restore listener has reported every changelog partition done.
constexpr std::array kWorkloads{
    Workload{"w1", "stateless: parse JSON, filter, project (simdjson serdes)",
             Completion::kProcessed, w1},
    Workload{"w1-json", "W1 on rill::serdes::json() (nlohmann::json)", Completion::kProcessed,
             w1_json},
    Workload{"w2", "keyed count over a RocksDB store with a changelog", Completion::kProcessed, w2},
    Workload{"w3", "tumbling one-minute event-time sum per key", Completion::kProcessed, w3},
    Workload{"w4", "W2 under exactly_once_v2", Completion::kProcessed, w2},
    Workload{"w5-restore", "W2's store restored from its changelog", Completion::kRestored, w2},
    Workload{"w6", "stream-table join: purchases enriched from a table of customers",
             Completion::kProcessed, w6},
    Workload{"w7", "stream-stream join: orders and payments within one minute",
             Completion::kProcessed, w7},
};

}  // namespace

std::span<const Workload> workloads() {
  return kWorkloads;
}

const Workload* find_workload(std::string_view name) {
  for (const Workload& workload : kWorkloads)
    if (workload.name == name) return &workload;
  return nullptr;
}

}  // namespace bench::rill_workloads
