// shop_orders: the orders of an event-sourced shop, enriched with the current
// row of their customer and of their product into shipping notices.
//
//   shop_orders bootstrap.servers=127.0.0.1:9092 [orders=shop-orders]
//       [customers=shop-customers] [products=shop-products]
//       [output=shipping-notices] [key=value...]
//
// Orders are JSON values {"order_id", "customer", "product", "qty"}; customers
// {"name", "city"} keyed by customer id; products {"name"} keyed by product
// id. Customers are a table: re-keyed by customer, the orders go through the
// topic "shop-orders-by-customer-repartition" to the task holding their
// customer's partition, so the customers topic and that topic must have the
// same partition count (rill creates the repartition topic so). Products are a
// global table: every instance holds them whole, and orders look them up
// where they are. Each notice is keyed by order id.
#include <iostream>
#include <optional>
#include <string>

#include "rill/global_ktable.h"
#include "rill/json.h"
#include "rill/kafka_streams.h"
#include "rill/ktable.h"
#include "rill/streams_builder.h"

namespace {

using Json = nlohmann::json;

std::string text_of(const Json& value, const char* field, const std::string& fallback) {
  const auto it = value.find(field);
  return it != value.end() && it->is_string() ? it->get<std::string>() : fallback;
}

}  // namespace

int main(int argc, char** argv) {
  rill::StreamsConfig config{{"application.id", "shop-orders"}};
  std::string orders = "shop-orders", customers = "shop-customers", products = "shop-products",
              output = "shipping-notices";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto eq = arg.find('=');
    if (eq == std::string::npos) {
      std::cerr << "usage: shop_orders bootstrap.servers=HOST:PORT [orders=TOPIC] "
                   "[customers=TOPIC] [products=TOPIC] [output=TOPIC] [config.key=value...]\n";
      return 2;
    }
    const std::string key = arg.substr(0, eq), value = arg.substr(eq + 1);
    if (key == "orders")
      orders = value;
    else if (key == "customers")
      customers = value;
    else if (key == "products")
      products = value;
    else if (key == "output")
      output = value;
    else
      config.set(key, value);
  }

  rill::StreamsBuilder builder;
  auto customer_rows = builder.table(customers, rill::serdes::string(), rill::serdes::json());
  auto catalogue = builder.global_table(products, rill::serdes::string(), rill::serdes::json());
  builder.stream(orders, rill::serdes::string(), rill::serdes::json())
      .select_key(
          [](const std::string&, const Json& order) { return text_of(order, "customer", ""); })
      .left_join(
          customer_rows,
          [](const Json& order, const std::optional<Json>& customer) {
            Json notice = order;
            if (customer) {
              notice["customer"] = text_of(*customer, "name", text_of(order, "customer", ""));
              notice["city"] = text_of(*customer, "city", "you");
            }
            return notice;
          },
          rill::Joined<std::string, Json>{"by-customer"})
      .left_join(
          catalogue,
          [](const std::string&, const Json& order) { return text_of(order, "product", ""); },
          [](const Json& order, const std::optional<Json>& product) {
            const std::string product_name =
                product ? text_of(*product, "name", "") : text_of(order, "product", "");
            return Json{{"order_id", order.value("order_id", Json())},
                        {"customer", order.value("customer", Json())},
                        {"message", "Your order of " + order.value("qty", Json(0)).dump() + " x " +
                                        product_name + " is on its way to " +
                                        text_of(order, "city", "you")}};
          },
          "with-product")
      .select_key(
          [](const std::string&, const Json& notice) { return text_of(notice, "order_id", ""); })
      .to(output, rill::serdes::string(), rill::serdes::json());

  try {
    rill::Topology topology = builder.build();
    std::cerr << topology.describe();
    rill::KafkaStreams streams(std::move(topology), config);
    streams.start();
    return rill::run_until_signal(streams);
  } catch (const std::exception& e) {
    std::cerr << "shop_orders: " << e.what() << "\n";
    return 1;
  }
}
