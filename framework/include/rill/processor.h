// The Processor API: user code that sees one record at a time, forwards records
// to its children, keeps state in stores and schedules punctuations.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "rill/record.h"

namespace rill::state {
class BytesStore;
}  // namespace rill::state

namespace rill {

// A task processes one partition of one sub-topology: "0_3" is sub-topology 0,
// partition 3.
struct TaskId {
  int32_t subtopology = 0;
  int32_t partition = 0;

  std::string to_string() const {
    return std::to_string(subtopology) + "_" + std::to_string(partition);
  }
  auto operator<=>(const TaskId&) const = default;
};

// What drives a punctuation: the task's stream time (the largest record
// timestamp it has seen, so it only moves when records arrive) or the clock.
enum class PunctuationType { kStreamTime, kWallClockTime };

// Returned by ProcessorContext::schedule; cancel() stops the punctuation.
class Cancellable {
 public:
  Cancellable() = default;
  explicit Cancellable(std::shared_ptr<bool> cancelled) : cancelled_(std::move(cancelled)) {}
  void cancel() {
    if (cancelled_) *cancelled_ = true;
  }

 private:
  std::shared_ptr<bool> cancelled_;
};

// A state store attached to processors. Key-value, window and session stores
// build on this; a processor reaches its stores through ProcessorContext.
class StateStore {
 public:
  virtual ~StateStore() = default;
  virtual std::string_view name() const = 0;
  // The serialized data under the typed store, for reads that do not know
  // its types (the query endpoint); nullptr for a store without any.
  virtual state::BytesStore* bytes() { return nullptr; }
  virtual void flush() {}
  virtual void close() {}
  // Reads the record cache answered, and reads that went past it to the
  // store, while the store had a cache; the metrics endpoint turns them into
  // the cache hit ratio. Safe to call from any thread.
  struct CacheCounts {
    uint64_t hits = 0;
    uint64_t misses = 0;
  };
  virtual CacheCounts cache_counts() const { return {}; }
};

// Everything a processor may ask of the task that runs it, apart from forwarding.
class ProcessingContext {
 public:
  virtual ~ProcessingContext() = default;

  virtual std::string_view application_id() const = 0;
  virtual TaskId task_id() const = 0;
  // Source topic, partition and offset of the record being processed; empty
  // inside a punctuation.
  virtual std::optional<RecordMetadata> record_metadata() const = 0;
  // The task's stream time: the largest timestamp seen so far, or -1.
  virtual int64_t current_stream_time() const = 0;
  // Wall-clock time in milliseconds (the test driver's mocked clock in tests).
  virtual int64_t current_system_time() const = 0;
  // Calls `punctuate(time)` every `interval` of stream time or wall-clock time.
  // Callbacks run on the task, never concurrently with process().
  virtual Cancellable schedule(std::chrono::milliseconds interval, PunctuationType type,
                               std::function<void(int64_t)> punctuate) = 0;
  // Asks for a commit as soon as possible, rather than at the next interval.
  virtual void commit() = 0;
  // The store of that name connected to this processor, or nullptr.
  virtual StateStore* get_state_store(std::string_view name) = 0;
  // Counts a record the processor drops on purpose, such as a record too late
  // for its window or one with a null key (Kafka Streams' dropped-records
  // metric). `reason` is a short constant, e.g. "expired window".
  virtual void record_dropped(std::string_view reason) = 0;

  template <class Store>
  Store& state_store(std::string_view name) {
    auto* store = dynamic_cast<Store*>(get_state_store(name));
    if (store == nullptr)
      throw std::logic_error("state store '" + std::string(name) +
                             "' is not connected to this processor or has another type");
    return *store;
  }
};

// The context of a processor whose output records are Record<KOut, VOut>.
template <class KOut, class VOut>
class ProcessorContext : public ProcessingContext {
 public:
  // Sends a record to every child.
  virtual void forward(const Record<KOut, VOut>& record) = 0;
  // Sends a record to the child of that name only.
  virtual void forward(const Record<KOut, VOut>& record, std::string_view child) = 0;
};

// A processor consumes Record<KIn, VIn> and may forward Record<KOut, VOut>.
// Each task gets its own instance, created by the factory given to the topology.
template <class KIn, class VIn, class KOut = KIn, class VOut = VIn>
class Processor {
 public:
  using KeyIn = KIn;
  using ValueIn = VIn;
  using KeyOut = KOut;
  using ValueOut = VOut;

  virtual ~Processor() = default;
  virtual void init(ProcessorContext<KOut, VOut>& context) { (void)context; }
  virtual void process(const Record<KIn, VIn>& record) = 0;
  virtual void close() {}
};

// Thrown, or reported, when a record cannot be processed; the configured
// processing exception handler decides what happens next.
class ProcessingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by a processor or a timestamp extractor that knows what must happen
// to its record, whatever the processing exception handler would choose: a
// YAML source's `timestamp: {on_error: dead_letter}`, for one.
class RecordError : public ProcessingError {
 public:
  enum class Handling {
    kSkip,        // log, count, and go on (log-and-continue)
    kDeadLetter,  // to errors.dead.letter.queue.topic.name, then go on
    kFail,        // stop the application (log-and-fail)
  };
  RecordError(Handling handling, const std::string& message)
      : ProcessingError(message), handling_(handling) {}
  Handling handling() const { return handling_; }

 private:
  Handling handling_;
};

}  // namespace rill
