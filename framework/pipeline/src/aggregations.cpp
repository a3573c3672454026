#include "aggregations.h"

namespace rill::pipeline {
namespace {

// a + b, or a - b when `minus`.
Json plus(const Json& a, const Json& b, bool minus = false) {
  if (!a.is_number() || !b.is_number()) throw EvalError("sum() expects numbers, found " + b.dump());
  const std::optional<int64_t> x = exact_integer(a);
  const std::optional<int64_t> y = x ? exact_integer(b) : std::nullopt;
  if (!y) return minus ? a.get<double>() - b.get<double>() : a.get<double>() + b.get<double>();
  int64_t r = 0;
  if (minus ? __builtin_sub_overflow(*x, *y, &r) : __builtin_add_overflow(*x, *y, &r))
    throw EvalError("sum(): integer overflow");
  return r;
}

void require_orderable(const Json& a, const Json& b, std::string_view function) {
  const bool ok = (a.is_number() && b.is_number()) || (a.is_string() && b.is_string());
  if (!ok)
    throw EvalError(std::string(function) + "() compares numbers or strings, found " + a.dump() +
                    " and " + b.dump());
}

Json fold(AggregateFunction function, const Json& state, const Json& v) {
  switch (function) {
    case AggregateFunction::kCount:
      return state.get<int64_t>() + 1;
    case AggregateFunction::kSum:
      return v.is_null() ? state : plus(state, v);
    case AggregateFunction::kMin:
    case AggregateFunction::kMax: {
      if (v.is_null()) return state;
      if (state.is_null()) return v;
      const bool min = function == AggregateFunction::kMin;
      require_orderable(state, v, min ? "min" : "max");
      return (min ? v < state : state < v) ? v : state;
    }
    case AggregateFunction::kAvg:
      if (v.is_null()) return state;
      if (!v.is_number()) throw EvalError("avg() expects numbers, found " + v.dump());
      return Json::array({state[0].get<double>() + v.get<double>(), state[1].get<int64_t>() + 1});
    case AggregateFunction::kFirst:
      return state.is_null() ? v : state;
    case AggregateFunction::kLast:
      return v.is_null() ? state : v;
    case AggregateFunction::kCountDistinct: {
      if (v.is_null()) return state;
      Json next = state;
      next[v.dump()] = true;
      return next;
    }
  }
  return state;
}

// Takes v, which fold() added before, out of the state.
Json unfold(AggregateFunction function, const Json& state, const Json& v) {
  switch (function) {
    case AggregateFunction::kCount:
      return state.get<int64_t>() - 1;
    case AggregateFunction::kSum:
      return v.is_null() ? state : plus(state, v, true);
    case AggregateFunction::kAvg:
      if (v.is_null()) return state;
      if (!v.is_number()) throw EvalError("avg() expects numbers, found " + v.dump());
      return Json::array({state[0].get<double>() - v.get<double>(), state[1].get<int64_t>() - 1});
    default:
      throw EvalError(std::string(to_string(function)) + "() cannot take a value out");
  }
}

Json combine(AggregateFunction function, const Json& a, const Json& b) {
  switch (function) {
    case AggregateFunction::kCount:
    case AggregateFunction::kSum:
      return plus(a, b);
    case AggregateFunction::kMin:
    case AggregateFunction::kMax:
    case AggregateFunction::kLast:
      return fold(function, a, b);
    case AggregateFunction::kFirst:
      return a.is_null() ? b : a;
    case AggregateFunction::kAvg:
      return Json::array(
          {a[0].get<double>() + b[0].get<double>(), a[1].get<int64_t>() + b[1].get<int64_t>()});
    case AggregateFunction::kCountDistinct: {
      Json merged = a;
      merged.update(b);
      return merged;
    }
  }
  return a;
}

}  // namespace

Json Aggregations::initial() const {
  Json states = Json::array();
  for (const auto& [name, call] : fields) {
    switch (call.function) {
      case AggregateFunction::kCount:
      case AggregateFunction::kSum:
        states.push_back(0);
        break;
      case AggregateFunction::kAvg:
        states.push_back(Json::array({0.0, 0}));
        break;
      case AggregateFunction::kCountDistinct:
        states.push_back(Json::object());
        break;
      default:
        states.push_back(nullptr);
        break;
    }
  }
  return states;
}

namespace {

// Applies step(function, state, argument's value) to each aggregation's state.
template <class Step>
Json each_state(const std::vector<std::pair<std::string, AggregateCall>>& fields,
                const EvalContext& record, const Json& state, Step step) {
  Json next = Json::array();
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const AggregateCall& call = fields[i].second;
    const Json v = call.argument ? call.argument->evaluate(record) : Json();
    next.push_back(step(call.function, state[i], v));
  }
  return next;
}

}  // namespace

Json Aggregations::add(const EvalContext& record, const Json& state) const {
  return each_state(fields, record, state, fold);
}

Json Aggregations::subtract(const EvalContext& record, const Json& state) const {
  return each_state(fields, record, state, unfold);
}

bool Aggregations::subtractable(AggregateFunction function) {
  return function == AggregateFunction::kCount || function == AggregateFunction::kSum ||
         function == AggregateFunction::kAvg;
}

Json Aggregations::merge(const Json& state, const Json& other) const {
  Json merged = Json::array();
  for (std::size_t i = 0; i < fields.size(); ++i)
    merged.push_back(combine(fields[i].second.function, state[i], other[i]));
  return merged;
}

Json Aggregations::result(const Json& state) const {
  auto final_value = [&](std::size_t i) -> Json {
    const Json& s = state[i];
    switch (fields[i].second.function) {
      case AggregateFunction::kAvg:
        if (s[1].get<int64_t>() == 0) return nullptr;
        return s[0].get<double>() / static_cast<double>(s[1].get<int64_t>());
      case AggregateFunction::kCountDistinct:
        return static_cast<int64_t>(s.size());
      default:
        return s;
    }
  };
  if (single) return final_value(0);
  Json object = Json::object();
  for (std::size_t i = 0; i < fields.size(); ++i) object[fields[i].first] = final_value(i);
  return object;
}

}  // namespace rill::pipeline
