#include "workloads.h"

#include <array>

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

// When keyed aggregates land, the other workloads are one function each here
// plus a row in the table below; benchmarks/run then runs and verifies them
// with no change. What each must write (see benchmarks/README.md):
//
// W2 "w2": count per key into a RocksDB store named "counts" with its
//   changelog; values need no parsing (serdes::bytes()):
//     builder.stream(context.input, consumed(rill::serdes::bytes(), context))
//         .group_by_key().count(<store "counts">).to_stream()
//         .to(context.output, rill::serdes::string(), rill::serdes::int64());
//
// W3 "w3": tumbling one-minute windows on the value's "ts" with grace
//   context.grace_ms, sum of amount per key; output key = key bytes + 8-byte
//   big-endian window start (Kafka Streams' TimeWindowedSerializer), value a
//   big-endian double (serdes::float64()):
//     builder.stream(context.input, consumed(purchase_serde(), context,
//                                            [](const Purchase& p) { return p.ts; }))
//         .group_by_key().windowed_by(<1 minute, grace>).aggregate(0.0, sum amount, <store "sums">)
//         .to_stream().to(context.output, <windowed string serde>, rill::serdes::float64());
//
// W4 "w4": the W2 function; benchmarks/run sets processing.guarantee=exactly_once_v2.
//
// W5 "w5-restore": the W2 function with Completion::kRestored; bench_rill
//   then stops when the runtime's restore listener has reported every
//   changelog partition done (see main.cpp).
constexpr std::array kWorkloads{
    Workload{"w1", "stateless: parse JSON, filter, project (simdjson serdes)",
             Completion::kProcessed, w1},
    Workload{"w1-json", "W1 on rill::serdes::json() (nlohmann::json)", Completion::kProcessed,
             w1_json},
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
