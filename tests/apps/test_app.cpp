// A rill application for multi-process tests. Its topology maps each input
// record (key k, value v) to "k|v" through a repartition by value, so every
// input shows in the output exactly once per time it was processed.
//
//   rill_test_app <topology> key=value...
//     topology "count":       source(s) -> group_by_key -> count -> sink, input=a or input=a,b
//     topology "echo":        source -> map_values -> sink
//     topology "repartition": source -> select_key(value) -> repartition -> map_values -> sink
//     topology "json":        like echo, but values are JSON objects {"id": ...} (others are
//     poison)
//     topology "join":        input=orders,customers: each order (keyed by customer) left-joined
//                             with the customers table, as "order|row" ("order|none" without)
//     topology "stream-join": input=orders,payments: each order left-joined with the payments
//                             of its key within 2 s, as "order|payment" ("order|none" once
//                             its window closed without one)
//     topology "fk-join":     input=orders,customers: a table of orders "customer|item"
//                             left-joined by foreign key with the customers table, as
//                             "item|row" ("item|none" without); deletions as tombstones
//   keys: input, output, and any StreamsConfig key.
#include <iostream>

#include "rill/json.h"
#include "rill/kafka_streams.h"
#include "rill/rill.h"

#include "support/count_topology.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: rill_test_app count|echo|repartition|json|join|stream-join|fk-join "
                 "key=value...\n";
    return 2;
  }
  std::string kind = argv[1];
  rill::StreamsConfig config;
  std::string input, output;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    auto eq = arg.find('=');
    if (eq == std::string::npos) {
      std::cerr << "expected key=value, got " << arg << "\n";
      return 2;
    }
    std::string key = arg.substr(0, eq), value = arg.substr(eq + 1);
    if (key == "input")
      input = value;
    else if (key == "output")
      output = value;
    else
      config.set(key, value);
  }

  rill::StreamsBuilder builder;
  if (kind == "count") {
    try {
      rill::KafkaStreams streams(rill::testing::count_topology(input, output), config);
      streams.start();
      return rill::run_until_signal(streams);
    } catch (const std::exception& e) {
      std::cerr << "rill_test_app: " << e.what() << "\n";
      return 1;
    }
  }
  if (kind == "join") {
    const std::string orders = input.substr(0, input.find(','));
    const std::string customers = input.substr(input.find(',') + 1);
    auto rows = builder.table(customers, rill::serdes::string(), rill::serdes::string());
    builder.stream(orders, rill::serdes::string(), rill::serdes::string())
        .left_join(rows,
                   [](const std::string& order, const std::optional<std::string>& row) {
                     return order + "|" + (row ? *row : std::string("none"));
                   })
        .to(output);
  } else if (kind == "stream-join") {
    const std::string orders = input.substr(0, input.find(','));
    const std::string payments = input.substr(input.find(',') + 1);
    builder.stream(orders, rill::serdes::string(), rill::serdes::string())
        .left_join(
            builder.stream(payments, rill::serdes::string(), rill::serdes::string()),
            [](const std::string& order, const std::optional<std::string>& payment) {
              return order + "|" + (payment ? *payment : std::string("none"));
            },
            rill::JoinWindows::of_time_difference_with_no_grace(std::chrono::seconds(2)))
        .to(output);
  } else if (kind == "fk-join") {
    const std::string orders = input.substr(0, input.find(','));
    const std::string customers = input.substr(input.find(',') + 1);
    auto rows = builder.table(customers, rill::serdes::string(), rill::serdes::string());
    builder.table(orders, rill::serdes::string(), rill::serdes::string())
        .left_join(
            rows, [](const std::string& order) { return order.substr(0, order.find('|')); },
            [](const std::string& order, const std::optional<std::string>& row) {
              return order.substr(order.find('|') + 1) + "|" + row.value_or("none");
            })
        .to_stream()
        .to(output, rill::serdes::string(), rill::serdes::nullable(rill::serdes::string()));
  } else if (kind == "json") {
    builder.stream(input, rill::serdes::string(), rill::serdes::json())
        .map_values([](const std::string& key, const nlohmann::json& value) {
          return key + "|" + value.at("id").get<std::string>();
        })
        .to(output);
  } else {
    auto stream = builder.stream(input, rill::serdes::string(), rill::serdes::string());
    if (kind == "repartition")
      stream = stream.select_key([](const std::string&, const std::string& v) { return v; })
                   .repartition({"by-value"});
    stream
        .map_values(
            [](const std::string& key, const std::string& value) { return key + "|" + value; })
        .to(output);
  }
  try {
    rill::KafkaStreams streams(builder.build(), config);
    streams.start();
    return rill::run_until_signal(streams);
  } catch (const std::exception& e) {
    std::cerr << "rill_test_app: " << e.what() << "\n";
    return 1;
  }
}
