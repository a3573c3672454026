// word_count: counts words in the lines of a topic, the "hello world" of stream
// processing. Copy this file to start a rill application of your own.
//
//   word_count bootstrap.servers=127.0.0.1:9092 [input=lines] [output=word-counts] [key=value...]
//
// Lines are split into lower-case words; the stream is re-keyed by word and
// repartitioned, so each word is counted by exactly one task; every count
// update goes to the output topic as (word, count) with an int64 value.
#include <cctype>
#include <iostream>
#include <map>

#include "rill/kafka_streams.h"
#include "rill/rill.h"

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

// Counts per word in the task's memory. Counts restart when a partition moves
// to another instance; a changelogged store (count() in the DSL) keeps them.
class WordCounter : public rill::Processor<std::string, std::string, std::string, int64_t> {
 public:
  void init(rill::ProcessorContext<std::string, int64_t>& context) override { context_ = &context; }
  void process(const rill::Record<std::string, std::string>& record) override {
    int64_t count = ++counts_[record.key];
    context_->forward({record.key, count, record.timestamp, {}});
  }

 private:
  rill::ProcessorContext<std::string, int64_t>* context_ = nullptr;
  std::map<std::string, int64_t> counts_;
};

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
      .select_key([](const std::string&, const std::string& word) { return word; }, "by-word")
      .repartition({"words"})
      .process([] { return std::make_unique<WordCounter>(); }, "count")
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
