// The example pipelines in config/pipelines, loaded as users run them (with
// the defaults of their ${...} settings) and fed fixed records through the
// test driver: each one's outputs are checked.
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/pipeline/pipeline.h"
#include "rill/test_driver.h"

using rill::pipeline::Json;

namespace {

std::string example(const std::string& name) {
  return std::string(RILL_SOURCE_DIR) + "/config/pipelines/" + name;
}

rill::pipeline::Pipeline load_example(const std::string& name) {
  return rill::pipeline::load_file(example(name),
                                   [](const std::string&) { return std::optional<std::string>(); });
}

struct Driver {
  explicit Driver(const std::string& name)
      : pipeline(load_example(name)), driver(pipeline.topology, config(pipeline.config)) {}
  static rill::StreamsConfig config(rill::StreamsConfig c) {
    c.set("statestore.cache.max.bytes", "0");
    return c;
  }
  void pipe(const std::string& topic, std::optional<std::string> key, std::string value,
            int64_t timestamp = 1000) {
    rill::CapturedRecord record;
    record.key = std::move(key);
    record.value = std::move(value);
    record.timestamp = timestamp;
    driver.pipe_raw(topic, record);
  }
  // The last value per key, as a compacted topic keeps it.
  std::map<std::string, std::string> table(const std::string& topic) {
    std::map<std::string, std::string> rows;
    while (auto r = driver.read_raw(topic)) rows[r->key.value_or("")] = r->value.value_or("");
    return rows;
  }
  std::vector<std::pair<std::string, std::string>> records(const std::string& topic) {
    std::vector<std::pair<std::string, std::string>> out;
    while (auto r = driver.read_raw(topic))
      out.emplace_back(r->key.value_or("<null>"), r->value.value_or("<null>"));
    return out;
  }
  rill::pipeline::Pipeline pipeline;
  rill::TopologyTestDriver driver;
};

std::string be64(int64_t v) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((static_cast<uint64_t>(v) >> shift) & 0xff));
  return out;
}

}  // namespace

TEST_CASE("every example pipeline loads and says what it does in its first line",
          "[unit][examples]") {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator(example(""))) {
    INFO(entry.path());
    ++count;
    CHECK_NOTHROW(load_example(entry.path().filename().string()));
    std::ifstream in(entry.path());
    std::string first_line;
    std::getline(in, first_line);
    CHECK_THAT(first_line, Catch::StartsWith("# "));
    CHECK(load_example(entry.path().filename().string()).embedded);
  }
  CHECK(count == 5);
}

TEST_CASE("the word-count example counts words", "[unit][examples]") {
  Driver d("word-count.yaml");
  d.pipe("lines", std::nullopt, "The log is the log");
  CHECK(d.table("word-counts") ==
        std::map<std::string, std::string>{{"the", be64(2)}, {"log", be64(2)}, {"is", be64(1)}});
}

TEST_CASE("the shop-orders example keeps stock per product and notifies shipping",
          "[unit][examples]") {
  Driver d("shop-orders.yaml");
  // Ada has a row and bob not yet; jam is not in the catalogue.
  d.pipe("shop-customers", "ada", R"({"name":"Ada","city":"Paris"})");
  d.pipe("shop-products", "tea", R"({"name":"Green tea"})");
  d.pipe("shop-events", std::nullopt, R"({"type":"restocked","product":"tea","qty":2})");
  d.pipe("shop-events", std::nullopt,
         R"({"type":"order_placed","order_id":"o-1","customer":"ada","product":"tea","qty":3})");
  d.pipe("shop-events", std::nullopt,
         R"({"type":"order_placed","order_id":"o-2","customer":"bob","product":"jam","qty":1})");
  d.pipe("shop-events", std::nullopt, R"({"type":"price_changed","product":"tea"})");
  CHECK(d.table("inventory") ==
        std::map<std::string, std::string>{{"tea", R"({"events":2,"stock":17})"},
                                           {"jam", R"({"events":1,"stock":-1})"}});
  CHECK(d.records("shipping-notifications") ==
        std::vector<std::pair<std::string, std::string>>{
            {"o-1", R"({"customer":"Ada","message":"Your order of 3 x Green tea is on its way to )"
                    R"(Paris","order_id":"o-1"})"},
            {"o-2", R"({"customer":"bob","message":"Your order of 1 x jam is on its way to you",)"
                    R"("order_id":"o-2"})"}});
}

TEST_CASE("the page-views example counts views per user and minute, late ones too",
          "[unit][examples]") {
  Driver d("page-views.yaml");
  auto view = [&](const std::string& user, const std::string& page, int64_t at) {
    d.pipe("page-views", std::nullopt,
           R"({"user":")" + user + R"(","page":")" + page + R"(","viewed_at":)" +
               std::to_string(at) + "}");
  };
  view("ada", "/", 1000);
  view("ada", "/docs", 20000);
  view("bob", "/", 59000);
  view("ada", "/docs", 75000);  // the next minute
  view("ada", "/blog", 50000);  // 25 s late, within the grace period
  CHECK(d.records("page-views-per-minute").empty());
  view("bob", "/", 95000);  // stream time passes 60 s + 30 s: the first minute closes
  CHECK(d.records("page-views-per-minute") ==
        std::vector<std::pair<std::string, std::string>>{
            {R"({"end":60000,"key":"ada","start":0})", R"({"pages":3,"views":3})"},
            {R"({"end":60000,"key":"bob","start":0})", R"({"pages":1,"views":1})"}});
}

TEST_CASE("the payments-router example routes by amount and dead-letters malformed records",
          "[unit][examples]") {
  Driver d("payments-router.yaml");
  d.pipe("incoming-payments", "1", R"({"id":1,"amount":5000})");
  d.pipe("incoming-payments", "2", R"({"id":2,"amount":20})");
  d.pipe("incoming-payments", "3", "{broken");
  d.pipe("incoming-payments", "4", R"({"id":4,"amount":"lots"})");
  CHECK(d.records("large-payments") ==
        std::vector<std::pair<std::string, std::string>>{{"1", R"({"amount":5000,"id":1})"}});
  CHECK(d.records("payments") ==
        std::vector<std::pair<std::string, std::string>>{{"2", R"({"amount":20,"id":2})"}});
  CHECK(d.records("payments-dead-letters") ==
        std::vector<std::pair<std::string, std::string>>{{"3", "{broken"},
                                                         {"4", R"({"id":4,"amount":"lots"})"}});
  CHECK(d.driver.dead_lettered_records() == 2);
}

TEST_CASE("the order-payments example reports each order paid, or unpaid once its window closed",
          "[unit][examples]") {
  Driver d("order-payments.yaml");
  constexpr int64_t kMinute = 60'000;
  d.pipe("orders", "o-1", R"({"order_id":"o-1","amount":30})", 0);
  d.pipe("orders", "o-2", R"({"order_id":"o-2","amount":12})", 0);
  d.pipe("payments", "o-1", R"({"method":"card"})", 2 * kMinute);
  d.pipe("payments", "o-9", R"({"method":"card"})", 3 * kMinute);  // no such order
  using Records = std::vector<std::pair<std::string, std::string>>;
  CHECK(d.records("order-status") ==
        Records{{"o-1", R"({"amount":30,"method":"card","order_id":"o-1","paid":true})"}});
  // o-2's window closes 10 + 1 minutes after it: the next record past that
  // reports it.
  d.pipe("orders", "o-3", R"({"order_id":"o-3","amount":5})", 11 * kMinute);
  CHECK(d.records("order-status").empty());
  d.pipe("orders", "o-4", R"({"order_id":"o-4","amount":5})", 11 * kMinute + 1);
  CHECK(d.records("order-status") ==
        Records{{"o-2", R"({"amount":12,"method":null,"order_id":"o-2","paid":false})"}});
}
