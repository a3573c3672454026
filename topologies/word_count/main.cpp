// word_count: counts words in the lines of a topic, the "hello world" of stream
// processing. Copy this file to start a rill application of your own.
//
//   word_count bootstrap.servers=127.0.0.1:9092 [input=lines] [output=word-counts] [key=value...]
//
// Lines are split into lower-case words; grouping by word repartitions the
// stream (topic "word-count-words-repartition"), so each word is counted by one
// task, in a RocksDB store changelogged to "word-count-word-counts-changelog".
// Count updates go to the output topic as (word, count) with an int64 value,
// folded by the record cache between commits.
#include <cctype>
#include <iostream>

// Only the headers it uses, not the umbrella rill/rill.h: it compiles faster.
#include "rill/kafka_streams.h"
#include "rill/kgrouped_stream.h"
#include "rill/ktable.h"
#include "rill/streams_builder.h"

namespace {

std::vector<std::string> words_of(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  for (char c : line + " ") {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  return words;
}

}  // namespace

int main(int argc, char** argv) {
  rill::StreamsConfig config{{"application.id", "word-count"}};
  std::string input = "lines", output = "word-counts";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto eq = arg.find('=');
    if (eq == std::string::npos) {
      std::cerr << "usage: word_count bootstrap.servers=HOST:PORT [input=TOPIC] [output=TOPIC] "
                   "[config.key=value...]\n";
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
  builder.stream(input, rill::serdes::string(), rill::serdes::string())
      .flat_map_values(words_of, "split-words")
      .group_by([](const std::string&, const std::string& word) { return word; },
                rill::Grouped<std::string, std::string>{"words"})
      .count(rill::Materialized<std::string, int64_t>::as("word-counts"))
      .to_stream()
      .to(output, rill::serdes::string(), rill::serdes::int64());

  try {
    rill::Topology topology = builder.build();
    std::cerr << topology.describe();
    rill::KafkaStreams streams(std::move(topology), config);
    streams.start();
    return rill::run_until_signal(streams);
  } catch (const std::exception& e) {
    std::cerr << "word_count: " << e.what() << "\n";
    return 1;
  }
}
