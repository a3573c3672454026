// Every operator a flow's step may use, each in one entry: its declaration
// (fields and documentation, from which the reference and the JSON Schema
// are rendered and against which steps are checked) and the planner's
// method that adds it to the topology. Adding an operator is adding an entry.
#pragma once

#include <string_view>
#include <vector>

#include "rill/pipeline/declaration.h"

namespace rill::pipeline {

class Planner;
struct FlowState;
struct StepSpec;

struct Operator {
  OperatorSpec declaration;
  void (Planner::*apply)(FlowState& state, const StepSpec& step);
};

// In the order of the reference.
const std::vector<Operator>& operator_table();
const Operator* operator_named(std::string_view name);

}  // namespace rill::pipeline
