// The second phase of loading a pipeline: builds the topology from a checked
// PipelineSpec with the DSL and the shared operators. It resolves stream
// names, compiles expressions against what each stream's values are known to
// hold, and applies each step through its operator's entry (operator_table.h).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "rill/global_ktable.h"
#include "rill/ktable.h"
#include "rill/pipeline/expression.h"
#include "rill/pipeline/pipeline.h"
#include "rill/streams_builder.h"

#include "aggregations.h"
#include "document.h"
#include "spec.h"

namespace rill::pipeline {

using Stream = KStream<Json, Json>;

// The state of a flow as its steps are applied.
struct FlowState {
  Stream stream;
  Scope scope;
  // A flow from a table source, until its group_by.
  std::optional<KTable<Json, Json>> table;
  std::optional<KGroupedStream<Json, Json>> grouped;
  std::optional<KGroupedTable<Json, Json>> grouped_table;
  YAML::Mark grouped_mark;
  std::string group_name;
  bool ended = false;
};

// A stream a flow may start from: a source, a branch route, a flow's `as`.
struct NamedStream {
  Stream stream;
  Scope scope;
  // Sources of type table: the table read from the stream.
  std::optional<KTable<Json, Json>> table = std::nullopt;
};

class Planner {
 public:
  Planner(const Document& document, PipelineSpec spec);

  Pipeline plan();

  // The operators, each named by its entry in operator_table().
  void apply_filter(FlowState& state, const StepSpec& step);
  void apply_map(FlowState& state, const StepSpec& step);
  void apply_flat_map(FlowState& state, const StepSpec& step);
  void apply_select_key(FlowState& state, const StepSpec& step);
  void apply_branch(FlowState& state, const StepSpec& step);
  void apply_merge(FlowState& state, const StepSpec& step);
  void apply_join(FlowState& state, const StepSpec& step);
  // A join in a flow from a table: a foreign-key join with another table.
  void join_tables(FlowState& state, const StepSpec& step);
  // A flow's table goes on as its stream of changes, deletions as nulls.
  void to_changes(FlowState& state, const std::string& name);
  void apply_group_by(FlowState& state, const StepSpec& step);
  void apply_aggregate(FlowState& state, const StepSpec& step);
  void apply_to(FlowState& state, const StepSpec& step);
  void apply_to_postgres(FlowState& state, const StepSpec& step);
  void apply_stdout(FlowState& state, const StepSpec& step);

 private:
  using Builder = std::function<Json(const EvalContext&)>;

  Expression expression(const YAML::Node& node, const Scope& scope) const;
  Expression condition(const YAML::Node& node, const Scope& scope) const;
  AggregateCall aggregation(const YAML::Node& node, const Scope& scope) const;
  // A value built from an expression or a mapping of them; `fields` gets the
  // top-level names of a mapping.
  Builder value_builder(const YAML::Node& node, const Scope& scope,
                        std::set<std::string>* fields = nullptr) const;

  // A source's `timestamp`: its expression, and what becomes of a record
  // whose expression fails.
  TimestampExtractor<Json, Json> timestamp_extractor(const YAML::Node& node, const Scope& scope);
  void plan_source(const SourceSpec& source);
  void plan_generator(const std::string& source, const std::string& topic, const YAML::Node& node,
                      const Consumed<Json, Json>& consumed);

  const NamedStream& named_stream(const YAML::Node& node) const;
  void define_stream(const YAML::Node& name_node, const std::string& name, NamedStream stream);
  void plan_flow(const FlowSpec& flow);
  void merge_into(FlowState& state, const std::vector<YAML::Node>& others, std::string name);
  std::string step_name(const StepSpec& step) const;
  // A join step's `window`: difference (or before and after) and grace.
  JoinWindows join_windows(const YAML::Node& window) const;
  Builder join_value(const StepSpec& step, const Scope& scope, std::set<std::string>& fields) const;
  Scope joined_scope(const StepSpec& step, std::set<std::string> fields) const;
  // The serde of a group_by's keys in its declared key format; an object or
  // array key needs json, which the expression's type may already tell.
  SerdePtr<Json> group_key_serde(const StepSpec& step, const Expression& key) const;

  const Document& document_;
  PipelineSpec spec_;
  StreamsBuilder builder_;
  std::map<std::string, NamedStream> streams_;
  // Sources of type global_table, which only join steps read.
  std::map<std::string, GlobalKTable<Json, Json>> global_tables_;
  Pipeline pipeline_;
};

}  // namespace rill::pipeline
