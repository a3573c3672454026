// The aggregations of `aggregate` over JSON values. The aggregate a store
// keeps is an array with one state per aggregation (avg keeps its sum and
// count, count_distinct the values seen); the result emitted is computed
// from it.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "rill/pipeline/expression.h"

namespace rill::pipeline {

struct Aggregations {
  std::vector<std::pair<std::string, AggregateCall>> fields;
  // `value: count()` rather than `fields:`: the result is the one value.
  bool single = false;

  Json initial() const;
  Json add(const EvalContext& record, const Json& state) const;
  // Regrouped tables: takes out a row that `add` added before.
  Json subtract(const EvalContext& record, const Json& state) const;
  // Whether the function can take a row out again (count, sum, avg).
  static bool subtractable(AggregateFunction function);
  // Session windows: combines the states of two sessions.
  Json merge(const Json& state, const Json& other) const;
  Json result(const Json& state) const;
};

}  // namespace rill::pipeline
