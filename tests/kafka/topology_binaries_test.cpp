// Topology binaries as users build them: topologies/word_count and
// topologies/shop_orders from this tree, and examples/downstream built by its
// own CMake project against rill installed into a temporary prefix
// (find_package(rill)). Each runs against the broker and its output is read
// back by an independent consumer.
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>

#include <catch2/catch.hpp>

#include "rill/version.h"

#include "support/command.h"
#include "support/kafka_cluster.h"
#include "support/process.h"
#include "support/temp_dir.h"

using namespace rill::testing;
using namespace std::chrono_literals;

namespace {

using Totals = std::map<std::string, int64_t>;

int64_t from_be64(const std::string& bytes) {
  REQUIRE(bytes.size() == 8);
  uint64_t value = 0;
  for (unsigned char c : bytes) value = (value << 8) | c;
  return static_cast<int64_t>(value);
}

// Reads `topic` until its last value per key is `expected`, or the timeout.
Totals totals_until(const std::string& topic, const Totals& expected,
                    std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Totals totals;
  while (true) {
    totals.clear();
    for (const auto& r : consume(topic, 100000, 2s))
      if (r.key && r.value) totals[*r.key] = from_be64(*r.value);
    if (totals == expected || std::chrono::steady_clock::now() > deadline) return totals;
  }
}

// Runs a topology binary that takes key=value arguments, as word_count and
// account_totals do, until its output shows `expected`; then stops it with
// SIGTERM and checks it exits cleanly.
void run_until_totals(const std::string& binary, const std::string& name,
                      const std::vector<TestRecord>& input, const Totals& expected) {
  const std::string in = unique_name(name + "-in"), out = unique_name(name + "-out");
  create_topic(in, 2);
  create_topic(out, 2);
  TempDir state;
  const std::string log = (std::filesystem::temp_directory_path() / (in + ".log")).string();
  ChildProcess app(
      {binary, "bootstrap.servers=" + bootstrap_servers(), "input=" + in, "output=" + out,
       "application.id=" + in, "state.dir=" + state.path().string(), "commit.interval.ms=200"},
      log);
  produce(in, input);
  const Totals totals = totals_until(out, expected, 120s);
  INFO(app.log_tail());
  CHECK(totals == expected);
  app.signal(SIGTERM);
  CHECK(app.wait(60s) == 0);
}

std::string quoted(const std::string& path) {
  return "'" + path + "'";
}

}  // namespace

TEST_CASE("topologies/word_count counts the words of a topic on the broker", "[kafka][install]") {
  std::vector<TestRecord> lines;
  for (const char* line : {"the quick brown fox", "The lazy dog", "a fox, a dog: the end"})
    lines.push_back(TestRecord{std::nullopt, std::string(line), -1, -1, now_ms(), {}});
  const Totals expected = {{"the", 3},  {"quick", 1}, {"brown", 1}, {"fox", 2},
                           {"lazy", 1}, {"dog", 2},   {"a", 2},     {"end", 1}};
  run_until_totals(std::string(RILL_BINARY_DIR) + "/topologies/word_count", "word-count", lines,
                   expected);
}

TEST_CASE("topologies/shop_orders enriches orders from a table and a global table on the broker",
          "[kafka][install][join]") {
  const std::string orders = unique_name("shop-orders"), customers = unique_name("shop-customers"),
                    products = unique_name("shop-products"), notices = unique_name("shop-notices");
  // Two partitions each: the orders, re-keyed by customer, are repartitioned
  // onto the customers' partitions.
  for (const auto& topic : {orders, customers, products, notices}) create_topic(topic, 2);
  produce(customers, {{"ada", R"({"name":"Ada","city":"Paris"})", -1, -1, now_ms(), {}},
                      {"bob", R"({"name":"Bob","city":"Oslo"})", -1, -1, now_ms(), {}}});
  produce(products, {{"tea", R"({"name":"Green tea"})", -1, -1, now_ms(), {}}});
  TempDir state;
  const std::string log = (std::filesystem::temp_directory_path() / (orders + ".log")).string();
  ChildProcess app(
      {std::string(RILL_BINARY_DIR) + "/topologies/shop_orders",
       "bootstrap.servers=" + bootstrap_servers(), "orders=" + orders, "customers=" + customers,
       "products=" + products, "output=" + notices, "application.id=" + orders,
       "state.dir=" + state.path().string(), "commit.interval.ms=200"},
      log);
  produce(orders, {{"o-1",
                    R"({"order_id":"o-1","customer":"ada","product":"tea","qty":3})",
                    -1,
                    -1,
                    now_ms(),
                    {}},
                   {"o-2",
                    R"({"order_id":"o-2","customer":"bob","product":"jam","qty":1})",
                    -1,
                    -1,
                    now_ms(),
                    {}},
                   {"o-3",
                    R"({"order_id":"o-3","customer":"cy","product":"tea","qty":2})",
                    -1,
                    -1,
                    now_ms(),
                    {}}});
  std::map<std::string, std::string> notice_by_order;
  for (const auto& record : consume(notices, 3, 120s))
    notice_by_order[record.key.value_or("<null>")] = record.value.value_or("<null>");
  INFO(app.log_tail());
  // bob's product and cy's row are missing: a left join goes on without them.
  CHECK(notice_by_order ==
        std::map<std::string, std::string>{
            {"o-1", R"({"customer":"Ada","message":"Your order of 3 x Green tea is on its way )"
                    R"(to Paris","order_id":"o-1"})"},
            {"o-2", R"({"customer":"Bob","message":"Your order of 1 x jam is on its way to )"
                    R"(Oslo","order_id":"o-2"})"},
            {"o-3", R"({"customer":"cy","message":"Your order of 2 x Green tea is on its way )"
                    R"(to you","order_id":"o-3"})"}});
  app.signal(SIGTERM);
  CHECK(app.wait(60s) == 0);
}

TEST_CASE("a topology binary builds with find_package(rill) against an installed rill and runs",
          "[kafka][install]") {
  TempDir work;
  const std::string prefix = work.path().string() + "/prefix";
  const std::string build = work.path().string() + "/build";
  const CommandResult installed = run_command("cmake --install " + quoted(RILL_BINARY_DIR) +
                                              " --strip --prefix " + quoted(prefix));
  INFO(installed.output);
  REQUIRE(installed.exit_code == 0);
  CHECK(std::filesystem::exists(prefix + "/include/rill/version.h"));
  CHECK(std::filesystem::exists(prefix + "/bin/rill"));
  const CommandResult pkg_config = run_command(
      "PKG_CONFIG_PATH=" + quoted(prefix + "/lib/pkgconfig") +
      " pkg-config --modversion rill && PKG_CONFIG_PATH=" + quoted(prefix + "/lib/pkgconfig") +
      " pkg-config --cflags rill");
  INFO(pkg_config.output);
  CHECK(pkg_config.exit_code == 0);
  CHECK_THAT(pkg_config.output, Catch::Matchers::StartsWith(RILL_VERSION_STRING "\n"));
  CHECK_THAT(pkg_config.output, Catch::Matchers::Contains("/include"));

  const CommandResult configured =
      run_command("cmake -S " + quoted(std::string(RILL_SOURCE_DIR) + "/examples/downstream") +
                  " -B " + quoted(build) + " -DCMAKE_PREFIX_PATH=" + quoted(prefix) +
                  " -DCMAKE_CXX_COMPILER=" + quoted(RILL_CXX_COMPILER) +
                  " '-DCMAKE_CXX_FLAGS=" + RILL_DOWNSTREAM_FLAGS +
                  "' '-DCMAKE_EXE_LINKER_FLAGS=" + RILL_DOWNSTREAM_FLAGS + "'");
  INFO(configured.output);
  REQUIRE(configured.exit_code == 0);
  const CommandResult built = run_command("cmake --build " + quoted(build) + " -j 2");
  INFO(built.output);
  REQUIRE(built.exit_code == 0);
#ifdef RILL_WITH_TCMALLOC
  // The allocator rill was built with comes along to the programs that link it.
  const CommandResult linked = run_command("ldd " + quoted(build + "/account_totals"));
  INFO(linked.output);
  CHECK_THAT(linked.output, Catch::Matchers::Contains("libtcmalloc_minimal.so"));
  const CommandResult pkg_config_libs = run_command(
      "PKG_CONFIG_PATH=" + quoted(prefix + "/lib/pkgconfig") + " pkg-config --libs rill");
  CHECK_THAT(pkg_config_libs.output, Catch::Matchers::Contains("-ltcmalloc_minimal"));
#endif

  auto payment = [](const std::string& account, const std::string& cents) {
    return TestRecord{account, cents, -1, -1, now_ms(), {}};
  };
  run_until_totals(build + "/account_totals", "account-totals",
                   {payment("alice", "1250"), payment("bob", "300"), payment("alice", "-250"),
                    payment("carol", "99"), payment("bob", "700")},
                   {{"alice", 1000}, {"bob", 1000}, {"carol", 99}});
}
