// What happens to a record that cannot be deserialized or processed, or whose
// output the broker rejects: the configured handler logs it and then continues,
// dead-letters it, or fails the application. Nothing is dropped without a count.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "rill/config.h"
#include "rill/internal/node.h"
#include "rill/processor.h"

namespace rill::runtime {

// Ends the application: a handler chose to fail, or an error cannot be handled.
class FatalError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The cluster, not the record, stopped the task: an output timed out, the
// transaction must abort, the producer is unusable (Kafka Streams'
// TaskCorruptedException). No error handler sees it: the runtime takes every
// task back to the last commit and tries again, and fails only after
// task.timeout.ms without a commit.
class TaskCorruptedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An output larger than the producer or the topic takes: the record's fault,
// so it goes to the record's error handler.
class RecordTooLargeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ErrorKind { kDeserialization, kProcessing };

// Headers a dead-lettered record carries, named as Kafka Streams names them.
namespace dead_letter_header {
inline constexpr const char* kException = "__streams.errors.exception";
inline constexpr const char* kMessage = "__streams.errors.message";
inline constexpr const char* kTopic = "__streams.errors.topic";
inline constexpr const char* kPartition = "__streams.errors.partition";
inline constexpr const char* kOffset = "__streams.errors.offset";
// When the record is too large for the dead-letter topic, its first
// kTruncatedBytes bytes of key and value go there, with their original sizes.
inline constexpr const char* kTruncated = "__rill.errors.truncated";
inline constexpr const char* kKeySize = "__rill.errors.key.size";
inline constexpr const char* kValueSize = "__rill.errors.value.size";
inline constexpr std::size_t kTruncatedBytes = 64 * 1024;
}  // namespace dead_letter_header

struct ErrorCounts {
  std::atomic<uint64_t> skipped{0};
  std::atomic<uint64_t> dead_lettered{0};
  // Dead-lettered without the whole record, which the topic would not take.
  std::atomic<uint64_t> dead_lettered_truncated{0};
};

class ErrorHandling {
 public:
  explicit ErrorHandling(const StreamsConfig& config);

  // Applies the handler for `kind`, or `chosen` when the failing code chose
  // (RecordError), to a record that failed with `error`. Returns to continue
  // with the next record; throws FatalError to stop.
  void handle(ErrorKind kind, const internal::RawRecord& record, std::string_view exception_type,
              const std::string& error, internal::RecordCollector& collector, int dead_letter_topic,
              std::optional<RecordError::Handling> chosen = {});

  bool has_dead_letter_topic() const { return !dead_letter_topic_.empty(); }
  const std::string& dead_letter_topic() const { return dead_letter_topic_; }
  const ErrorCounts& counts() const { return counts_; }

 private:
  enum class Action { kContinue, kFail, kDeadLetter };
  // Sends the record to the dead-letter topic, cut to its first bytes when
  // the topic refuses it whole. Returns false when even that is refused.
  bool dead_letter(const internal::RawRecord& record, Headers headers,
                   internal::RecordCollector& collector, int dead_letter_topic);

  Action deserialization_;
  Action processing_;
  std::string dead_letter_topic_;
  ErrorCounts counts_;
};

}  // namespace rill::runtime
