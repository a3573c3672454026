// The benchmark workloads as rill topologies, one function each, in a table
// that bench_rill and benchmarks/run read: a workload in the table is run and
// compared, one that is not is reported as "not yet available". Adding one is
// a function and a table row in workloads.cpp.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "rill/rill.h"

#include "common/bench.h"

namespace bench::rill_workloads {

struct Context {
  std::string input;
  // The joins' second input: W6's customers, W7's payments.
  std::string second_input;
  std::string output;
  // Marked by the source of every workload when the first record arrives.
  FirstRecord* first_record = nullptr;
  // W3: how late a record may be and still count in its window.
  int64_t grace_ms = 10'000;
};

// When a run is over.
enum class Completion {
  // Every expected input record, of every input topic, has been processed
  // (W1-W4, W6, W7).
  kProcessed,
  // The stores are restored from their changelogs (W5).
  kRestored,
};

struct Workload {
  std::string_view name;
  std::string_view description;
  Completion completion;
  void (*build)(rill::StreamsBuilder& builder, const Context& context);
};

std::span<const Workload> workloads();
const Workload* find_workload(std::string_view name);

}  // namespace bench::rill_workloads
