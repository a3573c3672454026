#include "runtime/error_handling.h"

#include "log/log.h"

namespace rill::runtime {
namespace {

NullableBytes first_bytes(NullableBytes bytes) {
  if (bytes && bytes->size() > dead_letter_header::kTruncatedBytes)
    return bytes->substr(0, dead_letter_header::kTruncatedBytes);
  return bytes;
}

std::string where(const internal::RawRecord& record) {
  return "topic " + std::string(record.metadata.topic) + ", partition " +
         std::to_string(record.metadata.partition) + ", offset " +
         std::to_string(record.metadata.offset);
}

}  // namespace

ErrorHandling::ErrorHandling(const StreamsConfig& config)
    : dead_letter_topic_(config.get_string(config::kDeadLetterTopic)) {
  auto action = [](const std::string& name) {
    if (name == "log-and-continue") return Action::kContinue;
    if (name == "dead-letter") return Action::kDeadLetter;
    return Action::kFail;
  };
  deserialization_ = action(config.get_string(config::kDeserializationHandler));
  processing_ = action(config.get_string(config::kProcessingHandler));
}

void ErrorHandling::handle(ErrorKind kind, const internal::RawRecord& record,
                           std::string_view exception_type, const std::string& error,
                           internal::RecordCollector& collector, int dead_letter_topic,
                           std::optional<RecordError::Handling> chosen) {
  Action action = kind == ErrorKind::kDeserialization ? deserialization_ : processing_;
  const char* what = kind == ErrorKind::kDeserialization ? "deserialization" : "processing";
  if (chosen) {
    switch (*chosen) {
      case RecordError::Handling::kSkip:
        action = Action::kContinue;
        dead_letter_topic = -1;  // skipped, as chosen, even with a dead-letter topic
        break;
      case RecordError::Handling::kDeadLetter:
        action = Action::kDeadLetter;
        if (dead_letter_topic < 0)
          throw FatalError(std::string(what) + " error at " + where(record) + ": " + error +
                           "; the record is to be dead-lettered, but '" +
                           std::string(config::kDeadLetterTopic) + "' is not set");
        break;
      case RecordError::Handling::kFail:
        action = Action::kFail;
        break;
    }
  }
  if (dead_letter_topic >= 0) {
    Headers headers;
    if (record.headers != nullptr) headers = *record.headers;
    headers.add(dead_letter_header::kException, std::string(exception_type));
    headers.add(dead_letter_header::kMessage, error);
    headers.add(dead_letter_header::kTopic, std::string(record.metadata.topic));
    headers.add(dead_letter_header::kPartition, std::to_string(record.metadata.partition));
    headers.add(dead_letter_header::kOffset, std::to_string(record.metadata.offset));
    if (dead_letter(record, std::move(headers), collector, dead_letter_topic)) {
      counts_.dead_lettered.fetch_add(1, std::memory_order_relaxed);
      log::get().warn("{} error at {}: {}; record sent to dead-letter topic {}", what,
                      where(record), error, dead_letter_topic_);
    } else if (action != Action::kFail) {
      counts_.skipped.fetch_add(1, std::memory_order_relaxed);
      log::get().error(
          "{} error at {}: {}; the dead-letter topic {} refused even the record's first bytes "
          "and headers; record skipped",
          what, where(record), error, dead_letter_topic_);
    }
  }
  if (action == Action::kFail)
    throw FatalError(std::string(what) + " error at " + where(record) + ": " + error);
  if (dead_letter_topic < 0) {
    counts_.skipped.fetch_add(1, std::memory_order_relaxed);
    log::get().warn("{} error at {}: {}; record skipped (log-and-continue)", what, where(record),
                    error);
  }
}

bool ErrorHandling::dead_letter(const internal::RawRecord& record, Headers headers,
                                internal::RecordCollector& collector, int dead_letter_topic) {
  try {
    collector.send(dead_letter_topic, -1, record.key, record.value, record.timestamp, headers);
    return true;
  } catch (const RecordTooLargeError&) {
  }
  // Skipping it would loop no more than failing would, but lose where the
  // record was: what identifies it still goes to the topic.
  headers.add(dead_letter_header::kTruncated, std::string("true"));
  headers.add(dead_letter_header::kKeySize, std::to_string(record.key ? record.key->size() : 0));
  headers.add(dead_letter_header::kValueSize,
              std::to_string(record.value ? record.value->size() : 0));
  try {
    collector.send(dead_letter_topic, -1, first_bytes(record.key), first_bytes(record.value),
                   record.timestamp, headers);
    counts_.dead_lettered_truncated.fetch_add(1, std::memory_order_relaxed);
    return true;
  } catch (const RecordTooLargeError&) {
    return false;  // the record's own headers are too large
  }
}

}  // namespace rill::runtime
