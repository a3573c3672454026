// Global stores and GlobalKTable: the topology (no task, Kafka Streams'
// description), updates from the topic in the test driver, reads from a
// task's processor, tombstones, and writes refused to tasks.
#include <memory>
#include <optional>
#include <string>

#include <catch2/catch.hpp>

#include "rill/rill.h"
#include "rill/test_driver.h"

using namespace rill;
using Catch::Contains;

namespace {

using Row = ValueAndTimestamp<std::string>;
using GlobalStore = KeyValueStore<std::string, Row>;

// Looks each order's customer up in the global table and forwards the name.
class Lookup final : public Processor<std::string, std::string, std::string, std::string> {
 public:
  explicit Lookup(std::string store, bool write = false)
      : store_name_(std::move(store)), write_(write) {}
  void init(ProcessorContext<std::string, std::string>& context) override {
    context_ = &context;
    store_ = &context.state_store<GlobalStore>(store_name_);
  }
  void process(const Record<std::string, std::string>& record) override {
    if (write_) store_->put(record.value, Row{"written by a task", record.timestamp});
    auto row = store_->get(record.value);
    context_->forward({record.key, row ? row->value : "unknown", record.timestamp, {}});
  }

 private:
  std::string store_name_;
  bool write_;
  ProcessorContext<std::string, std::string>* context_ = nullptr;
  GlobalStore* store_ = nullptr;
};

Topology lookup_topology(bool in_memory, bool write = false) {
  StreamsBuilder builder;
  Materialized<std::string, std::string> materialized =
      Materialized<std::string, std::string>::as("customers");
  materialized.in_memory = in_memory;
  auto customers =
      builder.global_table("customers", serdes::string(), serdes::string(), materialized);
  builder.stream("orders", serdes::string(), serdes::string())
      .process([store = customers.queryable_store_name(), write] {
        return std::make_unique<Lookup>(store, write);
      })
      .to("named-orders", serdes::string(), serdes::string());
  return builder.build();
}

}  // namespace

TEST_CASE("a global table is a global store outside every sub-topology", "[unit][global]") {
  StreamsBuilder builder;
  auto table = builder.global_table("countries", serdes::string(), serdes::string());
  builder.stream("in", serdes::string(), serdes::string()).to("out");
  Topology topology = builder.build();

  CHECK(table.queryable_store_name() == "countries-STATE-STORE-0000000000");
  REQUIRE(topology.global_stores().size() == 1);
  const auto& global = topology.global_stores()[0];
  CHECK(global.store == "countries-STATE-STORE-0000000000");
  CHECK(global.source == "KSTREAM-SOURCE-0000000001");
  CHECK(global.processor == "KTABLE-SOURCE-0000000002");
  CHECK(global.id == 1);
  REQUIRE(topology.subtopologies().size() == 1);
  CHECK(topology.subtopologies()[0].stores.empty());
  // Its topic is its changelog: it has none of its own.
  CHECK_FALSE(topology.store(global.store).spec().logging_enabled);

  CHECK(topology.describe() ==
        "Topologies:\n"
        "   Sub-topology: 0\n"
        "    Source: KSTREAM-SOURCE-0000000003 (topics: [in])\n"
        "      --> KSTREAM-SINK-0000000004\n"
        "    Sink: KSTREAM-SINK-0000000004 (topic: out)\n"
        "      <-- KSTREAM-SOURCE-0000000003\n"
        "\n"
        "  Sub-topology: 1 for global store (will not generate tasks)\n"
        "    Source: KSTREAM-SOURCE-0000000001 (topics: [countries])\n"
        "      --> KTABLE-SOURCE-0000000002\n"
        "    Processor: KTABLE-SOURCE-0000000002 (stores: [countries-STATE-STORE-0000000000])\n"
        "      --> none\n"
        "      <-- KSTREAM-SOURCE-0000000001\n");
  CHECK_THAT(topology.describe_dot(), Contains("Global store countries-STATE-STORE-0000000000"));
  CHECK_THAT(topology.describe_mermaid(), Contains("t_countries --> n_KSTREAM_SOURCE_0000000001"));
}

TEST_CASE("a global store cannot be connected to a processor, nor its nodes to others",
          "[unit][global]") {
  StreamsBuilder builder;
  builder.global_table("countries", serdes::string(), serdes::string(),
                       Materialized<std::string, std::string>::as("countries"));
  builder.stream("in", serdes::string(), serdes::string())
      .to("out", Produced<std::string, std::string>{nullptr, nullptr, {}, "sink"});
  Topology& topology = builder.topology();
  topology.add_processor("p", [] { return std::make_unique<Lookup>("countries"); },
                         {"KSTREAM-SOURCE-0000000002"});
  CHECK_THROWS_WITH(topology.connect_processor_and_stores("p", {"countries"}),
                    Contains("readable by every processor without being connected"));
  topology.add_processor("q", [] { return std::make_unique<Lookup>("countries"); },
                         {"KSTREAM-SOURCE-0000000000"});
  CHECK_THROWS_WITH(topology.build(), Contains("a global store's source and processor connect "
                                               "to nothing else"));
}

TEST_CASE("the Processor API adds a global store with its own update processor", "[unit][global]") {
  // Keeps the latest value per key, upper-cased: a user's update processor.
  class Upper final : public Processor<std::string, std::string> {
   public:
    void init(ProcessorContext<std::string, std::string>& context) override {
      store_ = &context.state_store<KeyValueStore<std::string, std::string>>("upper");
    }
    void process(const Record<std::string, std::string>& record) override {
      std::string value = record.value;
      for (char& c : value) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      store_->put(record.key, value);
    }

   private:
    KeyValueStore<std::string, std::string>* store_ = nullptr;
  };
  Topology topology;
  topology.add_global_store(Stores::key_value<std::string, std::string>("upper").in_memory(),
                            "upper-source", "words", serdes::string(), serdes::string(),
                            "upper-processor", [] { return std::make_unique<Upper>(); });
  topology.add_source<std::string, std::string>("in", {"in"});
  topology.add_sink<std::string, std::string>("out", "out", {"in"});
  topology.build();
  CHECK_THAT(topology.describe(),
             Contains("Sub-topology: 1 for global store (will not generate tasks)\n"
                      "    Source: upper-source (topics: [words])\n"
                      "      --> upper-processor\n"
                      "    Processor: upper-processor (stores: [upper])\n"));

  TopologyTestDriver driver(std::move(topology));
  auto words = driver.create_input_topic("words", serdes::string(), serdes::string());
  words.pipe_input("a", "hello");
  auto& store = driver.get_key_value_store<std::string, std::string>("upper");
  CHECK(store.get("a") == "HELLO");
}

TEST_CASE("a task's processor reads the global table as its topic updates it", "[unit][global]") {
  const bool in_memory = GENERATE(false, true);
  CAPTURE(in_memory);
  TopologyTestDriver driver(lookup_topology(in_memory));
  auto customers = driver.create_input_topic("customers", serdes::string(), serdes::string());
  auto orders = driver.create_input_topic("orders", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("named-orders", serdes::string(), serdes::string());

  orders.pipe_input("o1", "c1");
  customers.pipe_input("c1", "Ada", 5);
  orders.pipe_input("o2", "c1");
  customers.pipe_input("c1", "Ada L.", 6);
  orders.pipe_input("o3", "c1");
  // A tombstone deletes the row.
  driver.pipe_raw("customers", CapturedRecord{std::string("c1"), std::nullopt, 7, {}, -1});
  orders.pipe_input("o4", "c1");

  CHECK(out.read_key_values_to_list() ==
        std::vector<KeyValue<std::string, std::string>>{
            {"o1", "unknown"}, {"o2", "Ada"}, {"o3", "Ada L."}, {"o4", "unknown"}});
  auto& store = driver.get_timestamped_key_value_store<std::string, std::string>("customers");
  CHECK_FALSE(store.get("c1"));
  customers.pipe_input("c2", "Grace", 9);
  CHECK(store.get("c2") == Row{"Grace", 9});
  if (in_memory) CHECK(store.approximate_num_entries() == 1);  // RocksDB's is an estimate
  CHECK(store.all().to_vector().size() == 1);
  // Global stores are never cached.
  CHECK(store.cached_entries() == 0);
}

TEST_CASE("a task cannot write a global store", "[unit][global]") {
  TopologyTestDriver driver(lookup_topology(false, true));
  auto orders = driver.create_input_topic("orders", serdes::string(), serdes::string());
  CHECK_THROWS_WITH(orders.pipe_input("o1", "c1"),
                    Contains("global store 'customers' is read-only for tasks"));
}

TEST_CASE("a corrupt record of a global topic goes to the deserialization handler",
          "[unit][global]") {
  auto topology = [] {
    StreamsBuilder builder;
    builder.global_table("counts", serdes::string(), serdes::int64(),
                         Materialized<std::string, int64_t>::as("counts"));
    builder.stream("in", serdes::string(), serdes::string()).to("out");
    return builder.build();
  };
  const CapturedRecord corrupt{std::string("a"), std::string("not 8 bytes"), 1, {}, -1};

  StreamsConfig continuing;
  continuing.set("deserialization.exception.handler", "log-and-continue");
  TopologyTestDriver driver(topology(), continuing);
  driver.pipe_raw("counts", corrupt);
  CHECK(driver.skipped_records() == 1);
  auto counts = driver.create_input_topic("counts", serdes::string(), serdes::int64());
  counts.pipe_input("a", 3);
  CHECK(driver.get_timestamped_key_value_store<std::string, int64_t>("counts").get("a")->value ==
        3);

  // The default, log-and-fail.
  TopologyTestDriver failing(topology());
  CHECK_THROWS_WITH(failing.pipe_raw("counts", corrupt), Contains("cannot deserialize value"));
}
