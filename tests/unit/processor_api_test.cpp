// The Processor API on a hand-built Topology: the processor lifecycle,
// forwarding, record metadata, punctuations and commit requests.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/processor.h"
#include "rill/test_driver.h"
#include "rill/topology.h"

#include "runtime/stream_task.h"

using namespace rill;
using namespace std::chrono_literals;
using Catch::Contains;

namespace {

using StringKV = KeyValue<std::string, std::string>;

struct SeenMetadata {
  std::string topic;
  int32_t partition;
  int64_t offset;
  bool operator==(const SeenMetadata&) const = default;
};

// What a RoutingProcessor saw, kept outside it because the task owns the processor.
struct Probe {
  int inits = 0;
  int closes = 0;
  std::vector<std::string> values;
  std::vector<SeenMetadata> metadata;
  std::vector<std::string> task_ids;
  std::string application_id;
};

// Forwards each record to all children, then a marked copy to "named-sink" only.
class RoutingProcessor final : public Processor<std::string, std::string> {
 public:
  explicit RoutingProcessor(std::shared_ptr<Probe> probe) : probe_(std::move(probe)) {}

  void init(ProcessorContext<std::string, std::string>& context) override {
    context_ = &context;
    ++probe_->inits;
    probe_->application_id = std::string(context.application_id());
    probe_->task_ids.push_back(context.task_id().to_string());
  }
  void process(const Record<std::string, std::string>& record) override {
    probe_->values.push_back(record.value);
    if (auto metadata = context_->record_metadata())
      probe_->metadata.push_back(
          {std::string(metadata->topic), metadata->partition, metadata->offset});
    if (record.value == "commit") context_->commit();
    context_->forward(record);
    context_->forward(record.with_value(record.value + "@named"), "named-sink");
    if (record.value == "lost") context_->forward(record, "no-such-child");
  }
  void close() override { ++probe_->closes; }

 private:
  std::shared_ptr<Probe> probe_;
  ProcessorContext<std::string, std::string>* context_ = nullptr;
};

Topology routing_topology(const std::shared_ptr<Probe>& probe) {
  Topology topology;
  topology.add_source<std::string, std::string>("src", {"in"})
      .add_processor("route", [probe] { return std::make_unique<RoutingProcessor>(probe); },
                     {"src"})
      .add_sink<std::string, std::string>("all-sink", "all", {"route"})
      .add_sink<std::string, std::string>("named-sink", "named", {"route"});
  return topology;
}

}  // namespace

TEST_CASE("a processor is initialized, sees every record and is closed", "[unit][processor]") {
  auto probe = std::make_shared<Probe>();
  {
    TopologyTestDriver driver(routing_topology(probe), StreamsConfig{{"application.id", "app-1"}});
    CHECK(probe->inits == 1);
    CHECK(probe->application_id == "app-1");
    CHECK(probe->task_ids == std::vector<std::string>{"0_0"});
    auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
    in.pipe_input("k", "a");
    in.pipe_input("k", "b");
    CHECK(probe->values == std::vector<std::string>{"a", "b"});
    CHECK(probe->closes == 0);
  }
  CHECK(probe->closes == 1);
  CHECK(probe->inits == 1);
}

TEST_CASE("forward() reaches all children, or only the named one", "[unit][processor]") {
  auto probe = std::make_shared<Probe>();
  TopologyTestDriver driver(routing_topology(probe));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto all = driver.create_output_topic("all", serdes::string(), serdes::string());
  auto named = driver.create_output_topic("named", serdes::string(), serdes::string());
  Headers headers;
  headers.add("h", "1");
  in.pipe_input("k", "x", 500, headers);

  auto record = all.read_record();
  CHECK(record.value == "x");
  CHECK(record.timestamp == 500);
  CHECK(record.headers == headers);
  CHECK(all.is_empty());
  CHECK(named.read_key_values_to_list() == std::vector<StringKV>{{"k", "x"}, {"k", "x@named"}});
}

TEST_CASE("forward() to a child that does not exist names the processor and child",
          "[unit][processor]") {
  auto probe = std::make_shared<Probe>();
  TopologyTestDriver driver(routing_topology(probe));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  CHECK_THROWS_WITH(in.pipe_input("k", "lost"),
                    Catch::Contains("processor 'route' has no child named 'no-such-child'"));
}

TEST_CASE("record_metadata() gives the source topic, partition and offset", "[unit][processor]") {
  auto probe = std::make_shared<Probe>();
  TopologyTestDriver driver(routing_topology(probe));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  in.pipe_input("k", "a");
  in.pipe_input("k", "b");
  in.pipe_input("k", "c");
  CHECK(probe->metadata == std::vector<SeenMetadata>{{"in", 0, 0}, {"in", 0, 1}, {"in", 0, 2}});
}

TEST_CASE("each sub-topology runs in its own task", "[unit][processor]") {
  auto probe = std::make_shared<Probe>();
  Topology topology = routing_topology(probe);
  topology.add_source<std::string, std::string>("src-2", {"in-2"})
      .add_processor("route-2", [probe] { return std::make_unique<RoutingProcessor>(probe); },
                     {"src-2"});
  TopologyTestDriver driver(std::move(topology));
  std::sort(probe->task_ids.begin(), probe->task_ids.end());
  CHECK(probe->task_ids == std::vector<std::string>{"0_0", "1_0"});
}

namespace {

struct Ticks {
  std::vector<int64_t> stream;
  std::vector<int64_t> wall;
  bool metadata_in_punctuation = false;
  std::vector<int64_t> stream_time_seen;
};

// Schedules a stream-time punctuation every 10 ms and a wall-clock one every
// 100 ms; both forward a record. A record with value "cancel" cancels the
// stream-time one.
class TickingProcessor final : public Processor<std::string, std::string, std::string, int64_t> {
 public:
  explicit TickingProcessor(std::shared_ptr<Ticks> ticks) : ticks_(std::move(ticks)) {}

  void init(ProcessorContext<std::string, int64_t>& context) override {
    context_ = &context;
    stream_ = context.schedule(10ms, PunctuationType::kStreamTime, [this](int64_t time) {
      ticks_->stream.push_back(time);
      ticks_->metadata_in_punctuation |= context_->record_metadata().has_value();
      context_->forward({"stream", time, time, {}});
    });
    context.schedule(100ms, PunctuationType::kWallClockTime, [this](int64_t time) {
      ticks_->wall.push_back(time);
      CHECK(context_->current_system_time() == time);
      context_->forward({"wall", time, time, {}});
    });
  }
  void process(const Record<std::string, std::string>& record) override {
    ticks_->stream_time_seen.push_back(context_->current_stream_time());
    if (record.value == "cancel") stream_.cancel();
  }

 private:
  std::shared_ptr<Ticks> ticks_;
  ProcessorContext<std::string, int64_t>* context_ = nullptr;
  Cancellable stream_;
};

Topology ticking_topology(const std::shared_ptr<Ticks>& ticks) {
  Topology topology;
  topology.add_source<std::string, std::string>("src", {"in"})
      .add_processor("tick", [ticks] { return std::make_unique<TickingProcessor>(ticks); }, {"src"})
      .add_sink<std::string, int64_t>("sink", "ticks", {"tick"});
  return topology;
}

}  // namespace

TEST_CASE("stream-time punctuations follow record timestamps", "[unit][processor][punctuation]") {
  auto ticks = std::make_shared<Ticks>();
  TopologyTestDriver driver(ticking_topology(ticks));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  auto out = driver.create_output_topic("ticks", serdes::string(), serdes::int64());
  CHECK(ticks->stream.empty());

  in.pipe_input("k", "v", 1000);  // the first record fires it
  CHECK(ticks->stream == std::vector<int64_t>{1000});
  in.pipe_input("k", "v", 1005);
  CHECK(ticks->stream == std::vector<int64_t>{1000});
  in.pipe_input("k", "v", 1010);  // one interval later
  CHECK(ticks->stream == std::vector<int64_t>{1000, 1010});
  in.pipe_input("k", "v", 1003);  // late: stream time does not go back
  in.pipe_input("k", "v", 1019);
  CHECK(ticks->stream == std::vector<int64_t>{1000, 1010});
  in.pipe_input("k", "v", 1020);
  CHECK(ticks->stream == std::vector<int64_t>{1000, 1010, 1020});
  in.pipe_input("k", "v", 1075);  // a jump of several intervals fires once
  CHECK(ticks->stream == std::vector<int64_t>{1000, 1010, 1020, 1075});
  in.pipe_input("k", "v", 1079);  // the schedule stays on its 10 ms grid: next at 1080
  CHECK(ticks->stream.size() == 4);
  in.pipe_input("k", "v", 1080);
  CHECK(ticks->stream == std::vector<int64_t>{1000, 1010, 1020, 1075, 1080});

  CHECK(ticks->stream_time_seen ==
        std::vector<int64_t>{1000, 1005, 1010, 1010, 1019, 1020, 1075, 1079, 1080});
  CHECK_FALSE(ticks->metadata_in_punctuation);
  CHECK(ticks->wall.empty());
  auto records = out.read_records_to_list();
  REQUIRE(records.size() == 5);
  CHECK(records[3].key == "stream");
  CHECK(records[3].value == 1075);
  CHECK(records[3].timestamp == 1075);
}

TEST_CASE("wall-clock punctuations follow the driver's clock", "[unit][processor][punctuation]") {
  auto ticks = std::make_shared<Ticks>();
  TopologyTestDriver driver(ticking_topology(ticks), {}, 5000);
  auto out = driver.create_output_topic("ticks", serdes::string(), serdes::int64());

  driver.advance_wall_clock_time(99ms);
  CHECK(ticks->wall.empty());
  driver.advance_wall_clock_time(1ms);
  CHECK(ticks->wall == std::vector<int64_t>{5100});
  driver.advance_wall_clock_time(350ms);  // several intervals fire once
  CHECK(ticks->wall == std::vector<int64_t>{5100, 5450});
  driver.advance_wall_clock_time(50ms);  // back on the 100 ms grid: 5500
  CHECK(ticks->wall == std::vector<int64_t>{5100, 5450, 5500});
  CHECK(driver.wall_clock_time() == 5500);
  CHECK(ticks->stream.empty());

  CHECK(out.read_key_values_to_list() == std::vector<KeyValue<std::string, int64_t>>{
                                             {"wall", 5100}, {"wall", 5450}, {"wall", 5500}});
}

TEST_CASE("a cancelled punctuation does not fire again", "[unit][processor][punctuation]") {
  auto ticks = std::make_shared<Ticks>();
  TopologyTestDriver driver(ticking_topology(ticks));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  in.pipe_input("k", "v", 0);
  in.pipe_input("k", "v", 10);
  CHECK(ticks->stream == std::vector<int64_t>{0, 10});
  in.pipe_input("k", "cancel", 15);
  in.pipe_input("k", "v", 20);
  in.pipe_input("k", "v", 100);
  CHECK(ticks->stream == std::vector<int64_t>{0, 10});
  // The wall-clock punctuation of the same processor is unaffected.
  driver.advance_wall_clock_time(100ms);
  CHECK(ticks->wall == std::vector<int64_t>{100});
}

TEST_CASE("a punctuation scheduled while records flow fires before one due later",
          "[unit][processor][punctuation]") {
  // A 100 ms punctuation from init; a record "add" schedules a 5 ms one, due
  // long before the first's next time.
  struct Adding final : Processor<std::string, std::string> {
    explicit Adding(std::shared_ptr<std::vector<std::string>> into) : fired(std::move(into)) {}
    void init(ProcessorContext<std::string, std::string>& context) override {
      context_ = &context;
      context.schedule(100ms, PunctuationType::kStreamTime, [this](int64_t time) {
        this->fired->push_back("slow " + std::to_string(time));
      });
    }
    void process(const Record<std::string, std::string>& record) override {
      if (record.value != "add") return;
      context_->schedule(5ms, PunctuationType::kStreamTime, [this](int64_t time) {
        this->fired->push_back("fast " + std::to_string(time));
      });
    }
    std::shared_ptr<std::vector<std::string>> fired;
    ProcessorContext<std::string, std::string>* context_ = nullptr;
  };
  auto fired = std::make_shared<std::vector<std::string>>();
  Topology topology;
  topology.add_source<std::string, std::string>("src", {"in"})
      .add_processor("adding", [fired] { return std::make_unique<Adding>(fired); }, {"src"});
  TopologyTestDriver driver(std::move(topology));
  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  in.pipe_input("k", "v", 1000);
  in.pipe_input("k", "add", 1001);  // fires at once, then every 5 ms
  in.pipe_input("k", "v", 1003);
  in.pipe_input("k", "v", 1006);
  in.pipe_input("k", "v", 1100);
  CHECK(*fired ==
        std::vector<std::string>{"slow 1000", "fast 1001", "fast 1006", "slow 1100", "fast 1100"});
}

TEST_CASE("a punctuation interval below 1 ms is refused", "[unit][processor][punctuation]") {
  struct Bad final : Processor<std::string, std::string> {
    void init(ProcessorContext<std::string, std::string>& context) override {
      context.schedule(0ms, PunctuationType::kStreamTime, [](int64_t) {});
    }
    void process(const Record<std::string, std::string>&) override {}
  };
  Topology topology;
  topology.add_source<std::string, std::string>("src", {"in"})
      .add_processor("bad", [] { return std::make_unique<Bad>(); }, {"src"});
  CHECK_THROWS_WITH(TopologyTestDriver(std::move(topology)), Catch::Contains("at least 1 ms"));
}

namespace {

class NullCollector final : public internal::RecordCollector {
 public:
  int register_topic(const std::string&) override { return 0; }
  int32_t partition_count(int) override { return 1; }
  void send(int, int32_t, NullableBytes, NullableBytes, int64_t, const Headers&) override {
    ++sent;
  }
  void send_changelog(int, int32_t, NullableBytes, NullableBytes, int64_t,
                      std::atomic<int64_t>*) override {
    ++sent;
  }
  std::atomic<int64_t>& acknowledged_offset(int, int32_t) override { return acknowledged; }
  std::atomic<int64_t> acknowledged{-1};
  int sent = 0;
};

}  // namespace

TEST_CASE("commit() asks the task for a commit once", "[unit][processor]") {
  auto probe = std::make_shared<Probe>();
  SECTION("through the driver, processing goes on") {
    TopologyTestDriver driver(routing_topology(probe));
    auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
    auto all = driver.create_output_topic("all", serdes::string(), serdes::string());
    in.pipe_input("k", "commit");
    in.pipe_input("k", "after");
    CHECK(all.read_key_values_to_list() == std::vector<StringKV>{{"k", "commit"}, {"k", "after"}});
  }
  SECTION("the task records the request") {
    Topology topology = routing_topology(probe);
    topology.build();
    StreamsConfig config;
    runtime::ErrorHandling errors(config);
    NullCollector collector;
    runtime::StreamTask task(topology, TaskId{0, 0}, "app", collector, errors,
                             [] { return int64_t{0}; });
    task.init();
    internal::SourceNodeBase* source = task.source_for("in");
    REQUIRE(source != nullptr);
    internal::RawRecord raw;
    raw.key = "k";
    raw.value = "plain";
    raw.metadata = {"in", 0, 0};
    task.process(*source, raw);
    CHECK_FALSE(task.take_commit_request());
    raw.value = "commit";
    raw.metadata.offset = 1;
    task.process(*source, raw);
    CHECK(task.take_commit_request());
    CHECK_FALSE(task.take_commit_request());
    CHECK(task.processed() == 2);
    CHECK(collector.sent == 6);
  }
}

TEST_CASE("the driver refuses input for topics the topology does not read", "[unit][processor]") {
  auto probe = std::make_shared<Probe>();
  TopologyTestDriver driver(routing_topology(probe));
  auto wrong = driver.create_input_topic("elsewhere", serdes::string(), serdes::string());
  CHECK_THROWS_WITH(wrong.pipe_input("k", "v"), "the topology does not read topic 'elsewhere'");
  auto all = driver.create_output_topic("all", serdes::string(), serdes::string());
  CHECK_THROWS_WITH(all.read_record(), Contains("no record in output topic 'all'"));
  CHECK(probe->values.empty());

  auto in = driver.create_input_topic("in", serdes::string(), serdes::string());
  in.pipe_key_values({{"a", "1"}, {"b", "2"}, {"a", "3"}}, 10);
  CHECK(all.read_key_values_to_map() == std::map<std::string, std::string>{{"a", "3"}, {"b", "2"}});
}
