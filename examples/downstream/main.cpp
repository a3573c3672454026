// account_totals: the running balance of every account, from a topic of
// payments keyed by account whose values are amounts in cents ("1250",
// "-300"). Values that are not whole numbers are refused by the
// deserialization handler, like any malformed record.
//
//   account_totals bootstrap.servers=HOST:PORT [input=payments]
//                  [output=account-totals] [config.key=value...]
//
// Totals go to the output topic keyed by account, as 8-byte big-endian
// integers (Kafka's LongSerializer).
#include <charconv>
#include <iostream>
#include <string>

#include "rill/kafka_streams.h"
#include "rill/kgrouped_stream.h"
#include "rill/ktable.h"
#include "rill/streams_builder.h"
#include "rill/version.h"

namespace {

// Amounts as decimal text: what a shell or a web form writes.
rill::SerdePtr<int64_t> decimal_text() {
  return rill::serdes::from_functions<int64_t>(
      "decimal-text", [](const int64_t& value, std::string& out) { out += std::to_string(value); },
      [](rill::NullableBytes bytes) {
        int64_t value = 0;
        if (!bytes) throw rill::SerdeError("decimal-text: null amount");
        const char* end = bytes->data() + bytes->size();
        auto [ptr, ec] = std::from_chars(bytes->data(), end, value);
        if (ec != std::errc() || ptr != end)
          throw rill::SerdeError("decimal-text: '" + std::string(*bytes) + "' is not an amount");
        return value;
      });
}

}  // namespace

int main(int argc, char** argv) {
  rill::StreamsConfig config{{"application.id", "account-totals"}};
  std::string input = "payments", output = "account-totals";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto eq = arg.find('=');
    if (eq == std::string::npos) {
      std::cerr << "usage: account_totals bootstrap.servers=HOST:PORT [input=TOPIC] "
                   "[output=TOPIC] [config.key=value...]\n";
      return 2;
    }
    const std::string key = arg.substr(0, eq), value = arg.substr(eq + 1);
    if (key == "input")
      input = value;
    else if (key == "output")
      output = value;
    else
      config.set(key, value);
  }

  rill::StreamsBuilder builder;
  builder.stream(input, rill::serdes::string(), decimal_text())
      .group_by_key()
      .reduce([](int64_t total, int64_t amount) { return total + amount; },
              rill::Materialized<std::string, int64_t>::as("account-totals"))
      .to_stream()
      .to(output, rill::serdes::string(), rill::serdes::int64());

  try {
    std::cerr << "account_totals on rill " << RILL_VERSION_STRING << "\n";
    rill::KafkaStreams streams(builder.build(), config);
    streams.start();
    return rill::run_until_signal(streams);
  } catch (const std::exception& e) {
    std::cerr << "account_totals: " << e.what() << "\n";
    return 1;
  }
}
