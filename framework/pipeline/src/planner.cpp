#include "planner.h"

#include <mutex>
#include <sstream>

#include "rill/pipeline/declaration.h"
#include "rill/windows.h"

#include "operator_table.h"
#include "suggest.h"

namespace rill::pipeline {
namespace {

EvalContext context_of(const Record<Json, Json>& r) {
  return EvalContext{r.key, r.value, r.timestamp, &r.headers};
}

template <class F>
using StepProcessor = internal::FunctionProcessor<Json, Json, Json, Json, F>;

// Adds a processor node after `in` running fn(record, context), as the DSL's
// stateless operations do, but with the whole record in view (timestamp and
// headers too).
template <class F>
Stream add_step(const Stream& in, std::string_view prefix, std::string name, bool repartition,
                F fn) {
  StreamsBuilder& builder = *in.builder();
  std::string node = builder.name_or_new(std::move(name), prefix);
  builder.topology().add_processor(node, [fn] { return std::make_unique<StepProcessor<F>>(fn); },
                                   {in.node_name()});
  return Stream(&builder, node, in.key_serde(), in.value_serde(), repartition);
}

void print_record(const Record<Json, Json>& r) {
  static std::mutex mutex;
  std::string line = r.key.is_string() ? r.key.get<std::string>() : r.key.dump();
  line += '\t';
  line += r.value.dump(-1, ' ', false, Json::error_handler_t::replace);
  line += '\n';
  std::lock_guard lock(mutex);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

Stream select_key(const Stream& in, const Expression& e, std::string name) {
  return add_step(
      in, "KSTREAM-KEY-SELECT", std::move(name), true,
      [e](const Record<Json, Json>& r, ProcessorContext<Json, Json>& ctx) {
        ctx.forward(Record<Json, Json>{e.evaluate(context_of(r)), r.value, r.timestamp, r.headers});
      });
}

}  // namespace

Planner::Planner(const Document& document, PipelineSpec spec)
    : document_(document), spec_(std::move(spec)) {}

Pipeline Planner::plan() {
  pipeline_.config = std::move(spec_.config);
  pipeline_.embedded = spec_.embedded;
  pipeline_.topics = std::move(spec_.topics);
  for (const SourceSpec& source : spec_.sources) plan_source(source);
  for (const FlowSpec& flow : spec_.flows) plan_flow(flow);
  try {
    pipeline_.topology = builder_.build();
  } catch (const std::exception& e) {
    document_.fail(spec_.mark, std::string("the topology cannot work: ") + e.what());
  }
  return std::move(pipeline_);
}

Expression Planner::expression(const YAML::Node& node, const Scope& scope) const {
  try {
    return Expression::compile(document_.scalar(node), scope);
  } catch (const ExpressionError& e) {
    document_.fail_in_scalar(node, e.offset(), std::string("bad expression: ") + e.what());
  }
}

Expression Planner::condition(const YAML::Node& node, const Scope& scope) const {
  Expression e = expression(node, scope);
  const ValueType type = e.type();
  if (type != ValueType::kBool && type != ValueType::kAny && type != ValueType::kNull)
    document_.fail_in_scalar(node, 0,
                             "found " + std::string(to_string(type)) + " expression '" + e.text() +
                                 "', expected a condition (true or false)");
  return e;
}

AggregateCall Planner::aggregation(const YAML::Node& node, const Scope& scope) const {
  AggregateCall call;
  try {
    call = compile_aggregate(document_.scalar(node), scope);
  } catch (const ExpressionError& e) {
    document_.fail_in_scalar(node, e.offset(), std::string("bad aggregation: ") + e.what());
  }
  return call;
}

Planner::Builder Planner::value_builder(const YAML::Node& node, const Scope& scope,
                                        std::set<std::string>* fields) const {
  if (node.IsScalar()) {
    Expression e = expression(node, scope);
    return [e](const EvalContext& c) { return e.evaluate(c); };
  }
  std::vector<std::pair<std::string, Builder>> parts;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->second.IsScalar() && !it->second.IsMap())
      document_.fail(it->second.Mark(), "field '" + it->first.Scalar() + "': found " +
                                            describe_node(it->second) +
                                            ", expected an expression or a mapping");
    parts.emplace_back(it->first.Scalar(), value_builder(it->second, scope));
    if (fields != nullptr) fields->insert(it->first.Scalar());
  }
  return [parts](const EvalContext& c) {
    Json object = Json::object();
    for (const auto& [name, build] : parts) object[name] = build(c);
    return object;
  };
}

TimestampExtractor<Json, Json> Planner::timestamp_extractor(const YAML::Node& node,
                                                            const Scope& scope) {
  const YAML::Node text = node.IsMap() ? node["expression"] : node;
  Expression e = expression(text, scope);
  if (e.type() != ValueType::kNumber && e.type() != ValueType::kAny)
    document_.fail_in_scalar(text, 0,
                             "found " + std::string(to_string(e.type())) +
                                 " expression, expected a time in ms since the epoch");
  std::optional<RecordError::Handling> handling;
  bool record_time = false;
  if (node.IsMap() && node["on_error"]) {
    const std::string on_error = document_.scalar(node["on_error"]);
    if (on_error == "record_time") record_time = true;
    if (on_error == "skip") handling = RecordError::Handling::kSkip;
    if (on_error == "fail") handling = RecordError::Handling::kFail;
    if (on_error == "dead_letter") {
      handling = RecordError::Handling::kDeadLetter;
      if (pipeline_.config.get_string(config::kDeadLetterTopic).empty())
        document_.fail(node["on_error"].Mark(),
                       "found on_error: dead_letter, expected '" +
                           std::string(config::kDeadLetterTopic) +
                           "' in application, the topic the records go to");
    }
  }
  return [e, handling, record_time](const Record<Json, Json>& r) {
    std::string error;
    try {
      const Json t = e.evaluate(context_of(r));
      if (t.is_null()) return r.timestamp;
      if (const std::optional<int64_t> ms = integer_value(t)) return *ms;
      error = "timestamp '" + e.text() + "' gave " + t.dump() +
              ", expected a number of ms within 64 bits";
    } catch (const EvalError& failed) {
      error = "timestamp '" + e.text() + "': " + failed.what();
    }
    if (record_time) return r.timestamp;
    if (handling) throw RecordError(*handling, error);
    throw EvalError(error);
  };
}

void Planner::plan_source(const SourceSpec& spec) {
  const std::string name = spec.name.Scalar();
  const YAML::Node& source = spec.node;
  const Fields& fields = spec.fields;
  const std::string topic = fields.text(document_, "topic");
  if (topic.empty())
    document_.fail(source["topic"].Mark(), "source '" + name +
                                               "': found an empty "
                                               "topic, expected a topic name");
  Scope scope;
  if (fields.has("fields")) {
    scope.value_fields.emplace();
    for (const YAML::Node& f : fields.at("fields")) scope.value_fields->insert(document_.scalar(f));
  }
  Consumed<Json, Json> consumed{format_serde(fields.text(document_, "key_format", "string")),
                                format_serde(fields.text(document_, "value_format", "json")),
                                {},
                                name};
  if (fields.has("timestamp"))
    consumed.timestamp_extractor = timestamp_extractor(fields.at("timestamp"), scope);
  const std::string type = fields.text(document_, "type", "stream");
  if (type == "global_table" && fields.has("timestamp"))
    document_.fail(fields.at("timestamp").Mark(),
                   "source '" + name + "': found a timestamp on a global_table, expected none (a " +
                       "global table keeps each key's latest value whatever its time)");
  if (type != "table" && fields.has("history"))
    document_.fail(fields.at("history").Mark(),
                   "source '" + name + "': found history on a " + type +
                       ", expected it on a table only (the versions of its rows)");
  if (fields.text(document_, "archive", "false") == "true") {
    if (type == "global_table")
      document_.fail(fields.at("archive").Mark(),
                     "source '" + name + "': found archive on a global_table, expected it on a " +
                         "stream or table (a global table keeps each key's latest value only)");
    if (pipeline_.config.get_string(config::kArchiveLocation).empty())
      document_.fail(fields.at("archive").Mark(),
                     "source '" + name + "': found archive: true, expected the application's " +
                         std::string(config::kArchiveLocation) + " to say where the archive is");
    const std::string listed = pipeline_.config.get_string(config::kArchiveTopics);
    pipeline_.config.set(std::string(config::kArchiveTopics),
                         listed.empty() ? topic : listed + "," + topic);
  }
  NamedStream named{{}, scope};
  try {
    if (type == "global_table") {
      global_tables_.emplace(name, builder_.global_table<Json, Json>(
                                       topic, consumed, Materialized<Json, Json>::as(name)));
    } else if (fields.has("history")) {
      // A versioned table has no stream of its own: a flow from it starts
      // with group_by, which reads the table.
      named.table = builder_.table<Json, Json>(
          topic, consumed,
          Materialized<Json, Json>::as_versioned(
              name, std::chrono::milliseconds(document_.parse_duration(fields.at("history")))));
    } else {
      named.stream = builder_.stream<Json, Json>(topic, consumed);
    }
    if (type == "table" && !named.table)
      named.table = named.stream.to_table({}, Materialized<Json, Json>::as(name));
  } catch (const std::exception& e) {
    document_.fail(spec.name.Mark(), "source '" + name + "': " + e.what());
  }
  if (type != "global_table") streams_.emplace(name, std::move(named));
  TopicUse use{topic, document_.position(source["topic"].Mark()), true};
  if (fields.has("partitions")) {
    // Kafka counts partitions in an int32.
    const int64_t partitions = document_.parse_integer(fields.at("partitions"));
    if (partitions < 1 || partitions > std::numeric_limits<int32_t>::max())
      document_.fail(fields.at("partitions").Mark(),
                     "found " + std::to_string(partitions) + " partitions, expected 1 to " +
                         std::to_string(std::numeric_limits<int32_t>::max()));
    use.partitions = static_cast<int32_t>(partitions);
  }
  pipeline_.topics.push_back(use);
  if (fields.has("generator")) plan_generator(name, topic, fields.at("generator"), consumed);
}

void Planner::plan_generator(const std::string& source, const std::string& topic,
                             const YAML::Node& node, const Consumed<Json, Json>& consumed) {
  Generator generator;
  generator.topic = topic;
  generator.source = source;
  Scope scope;
  scope.value_fields = std::set<std::string>{"n"};
  generator.value = value_builder(node["value"], scope);
  if (node["key"]) generator.key = expression(node["key"], scope);
  if (node["interval"]) generator.interval_ms = document_.parse_duration(node["interval"]);
  if (node["count"]) generator.count = document_.parse_integer(node["count"]);
  generator.key_serde = consumed.key_serde;
  generator.value_serde = consumed.value_serde;
  pipeline_.generators.push_back(std::move(generator));
}

const NamedStream& Planner::named_stream(const YAML::Node& node) const {
  const std::string name = document_.scalar(node);
  if (global_tables_.contains(name))
    document_.fail(node.Mark(),
                   "'" + name +
                       "' is a global table, expected a stream or a table: no flow starts "
                       "from a global table (a join step reads it)");
  auto it = streams_.find(name);
  if (it == streams_.end()) {
    std::vector<std::string_view> names;
    for (const auto& [known, stream] : streams_) names.push_back(known);
    document_.fail(node.Mark(),
                   "unknown stream '" + name +
                       "', expected a source, a branch route or an earlier flow's 'as': " +
                       list_names(names) + suggestion(name, names));
  }
  return it->second;
}

void Planner::define_stream(const YAML::Node& name_node, const std::string& name,
                            NamedStream stream) {
  if (!streams_.emplace(name, std::move(stream)).second)
    document_.fail(name_node.Mark(), "stream '" + name + "' is defined twice, expected a new name");
}

void Planner::plan_flow(const FlowSpec& flow) {
  const YAML::Node& from = flow.from;
  FlowState state;
  if (from.IsSequence()) {
    for (const YAML::Node& each : from)
      if (named_stream(each).table)
        document_.fail(each.Mark(), "'" + document_.scalar(each) +
                                        "' is a table, expected streams to merge (a table's flow "
                                        "starts from it alone)");
    const NamedStream& first = named_stream(from[0]);
    state.stream = first.stream;
    state.scope = first.scope;
    std::vector<YAML::Node> others;
    for (std::size_t i = 1; i < from.size(); ++i) others.push_back(from[i]);
    merge_into(state, others, "");
  } else {
    const NamedStream& named = named_stream(from);
    state.stream = named.stream;
    state.scope = named.scope;
    state.table = named.table;
  }
  for (const StepSpec& step : flow.steps) {
    const std::string_view op = step.op->declaration.name;
    if (state.ended)
      document_.fail(step.mark,
                     "found a step after 'branch', expected branch to end the flow "
                     "(read its routes with 'from' in another flow)");
    if (state.table && op != "group_by" && op != "to_postgres" && op != "join" && op != "to")
      document_.fail(step.mark, "found '" + std::string(op) + "' on table '" +
                                    document_.scalar(from) +
                                    "', expected group_by, join, to or to_postgres (a table's "
                                    "rows go on through group_by and aggregate, a foreign-key "
                                    "join, or as changes to a topic or into PostgreSQL)");
    if ((state.grouped || state.grouped_table) && op != "aggregate")
      document_.fail(step.mark,
                     "found '" + std::string(op) + "' after group_by, expected aggregate");
    try {
      (this->*step.op->apply)(state, step);
    } catch (const PipelineError&) {
      throw;
    } catch (const std::exception& e) {
      document_.fail(step.mark, std::string(op) + ": " + e.what());
    }
  }
  if (state.grouped || state.grouped_table)
    document_.fail(state.grouped_mark,
                   "group_by ends the flow, expected an aggregate step after it");
  if (state.table)
    document_.fail(from.Mark(), "the flow from table '" + document_.scalar(from) +
                                    "' ends with a table, expected group_by and aggregate, to "
                                    "or to_postgres");
  if (flow.as) {
    if (state.ended)
      document_.fail(flow.as.Mark(),
                     "a flow that ends with branch has no stream to name; its routes "
                     "are the streams");
    define_stream(flow.as, document_.scalar(flow.as), NamedStream{state.stream, state.scope});
  }
}

std::string Planner::step_name(const StepSpec& step) const {
  return step.text(document_, "name");
}

void Planner::merge_into(FlowState& state, const std::vector<YAML::Node>& others,
                         std::string name) {
  for (const YAML::Node& other : others) {
    const NamedStream& named = named_stream(other);
    state.stream = state.stream.merge(named.stream, others.size() == 1 ? name : std::string());
    if (state.scope.value_fields != named.scope.value_fields) state.scope = Scope{};
  }
}

void Planner::apply_filter(FlowState& state, const StepSpec& step) {
  Expression e = condition(step.at("if"), state.scope);
  state.stream =
      add_step(state.stream, "KSTREAM-FILTER", step_name(step), state.stream.repartition_required(),
               [e](const Record<Json, Json>& r, ProcessorContext<Json, Json>& ctx) {
                 if (e.test(context_of(r))) ctx.forward(r);
               });
}

void Planner::apply_map(FlowState& state, const StepSpec& step) {
  std::optional<Builder> value;
  std::optional<Expression> key;
  std::set<std::string> fields;
  Scope next = state.scope;
  if (step.has("value")) {
    value = value_builder(step.at("value"), state.scope, &fields);
    next.value_fields.reset();
    if (step.at("value").IsMap()) next.value_fields = fields;
  }
  if (step.has("key")) key = expression(step.at("key"), state.scope);
  state.stream = add_step(
      state.stream, "KSTREAM-MAP", step_name(step),
      key.has_value() || state.stream.repartition_required(),
      [value, key](const Record<Json, Json>& r, ProcessorContext<Json, Json>& ctx) {
        const EvalContext c = context_of(r);
        ctx.forward(Record<Json, Json>{key ? key->evaluate(c) : r.key,
                                       value ? (*value)(c) : r.value, r.timestamp, r.headers});
      });
  state.scope = next;
}

void Planner::apply_select_key(FlowState& state, const StepSpec& step) {
  state.stream = select_key(state.stream, expression(step.at("key"), state.scope), step_name(step));
}

void Planner::apply_merge(FlowState& state, const StepSpec& step) {
  const YAML::Node& streams = step.at("streams");
  std::vector<YAML::Node> others;
  if (streams.IsSequence())
    for (const YAML::Node& s : streams) others.push_back(s);
  else
    others.push_back(streams);
  merge_into(state, others, step_name(step));
}

void Planner::apply_join(FlowState& state, const StepSpec& step) {
  if (state.table) {
    join_tables(state, step);
    return;
  }
  const std::string name = step_name(step);
  const YAML::Node& with = step.at("with");
  const std::string other = document_.scalar(with);
  const std::string type = step.text(document_, "type", "inner");
  const bool left = type != "inner";
  std::optional<Expression> join_key;
  if (step.has("key")) {
    join_key = expression(step.at("key"), state.scope);
    if (join_key->reads_metadata())
      document_.fail_in_scalar(step.at("key"), 0,
                               "a join's key sees the record's key and value only, found a "
                               "reference to timestamp or headers");
  }
  std::set<std::string> fields;
  const Builder value = join_value(step, state.scope, fields);
  auto joiner = [value](const Json& key, const Json& record_value, const std::optional<Json>& row,
                        const RecordContext& record) {
    return value(
        EvalContext{key, record_value, record.timestamp, record.headers, row ? &*row : nullptr});
  };
  const auto global = global_tables_.find(other);
  const auto named = streams_.find(other);
  if (global == global_tables_.end() && named == streams_.end()) {
    std::vector<std::string_view> known;
    for (const auto& [candidate, stream] : streams_) known.push_back(candidate);
    for (const auto& [candidate, table] : global_tables_) known.push_back(candidate);
    document_.fail(with.Mark(), "unknown stream or table '" + other +
                                    "', expected a stream or a source of type table or "
                                    "global_table: " +
                                    (known.empty() ? std::string("(none)") : list_names(known)) +
                                    suggestion(other, known));
  }
  const bool with_stream = global == global_tables_.end() && !named->second.table;
  if (with_stream) {
    if (!step.has("window"))
      document_.fail(step.mark, "a join with stream '" + other +
                                    "' needs a window: how far apart in time two records may "
                                    "be, such as window: {difference: 10m}");
  } else {
    if (step.has("window"))
      document_.fail(step.at("window").Mark(),
                     "a window applies to a join with a stream; '" + other + "' is a " +
                         (global != global_tables_.end() ? "global table" : "table"));
    if (type == "outer")
      document_.fail(step.at("type").Mark(),
                     "an outer join needs a stream on both sides; '" + other + "' is a " +
                         (global != global_tables_.end() ? "global table" : "table") +
                         ", expected inner or left");
  }
  if (global != global_tables_.end()) {
    auto row_key = [join_key](const Json& key, const Json& record_value) {
      return join_key ? join_key->evaluate(EvalContext{key, record_value}) : key;
    };
    state.stream = left ? state.stream.left_join(global->second, row_key, joiner, name)
                        : state.stream.join(global->second, row_key, joiner, name);
  } else if (with_stream) {
    if (join_key && !join_key->is_key()) state.stream = select_key(state.stream, *join_key, {});
    const Stream& partner = named->second.stream;
    // A repartitioned side must land where the other stream's topic has its keys.
    StreamJoined<Json, Json, Json> joined{.name = name, .key_serde = partner.key_serde()};
    const JoinWindows windows = join_windows(step.at("window"));
    auto joined_value = [joiner](const Json& key, const std::optional<Json>& left_value,
                                 const std::optional<Json>& right_value,
                                 const RecordContext& record) {
      return joiner(key, left_value ? *left_value : Json(), right_value, record);
    };
    if (type == "outer")
      state.stream = state.stream.outer_join(partner, joined_value, windows, joined);
    else if (left)
      state.stream = state.stream.left_join(partner, joiner, windows, joined);
    else
      state.stream = state.stream.join(
          partner,
          [joiner](const Json& key, const Json& left_value, const Json& right_value,
                   const RecordContext& record) {
            return joiner(key, left_value, right_value, record);
          },
          windows, joined);
  } else {
    if (join_key && !join_key->is_key()) state.stream = select_key(state.stream, *join_key, {});
    // Repartitioned keys must land where the table's topic has them.
    const KTable<Json, Json>& table = *named->second.table;
    Joined<Json, Json> joined{name, table.key_serde(), nullptr};
    state.stream = left ? state.stream.left_join(table, joiner, joined)
                        : state.stream.join(table, joiner, joined);
  }
  state.scope = joined_scope(step, std::move(fields));
}

// The rows of a table flow look up the rows of another table whose keys their
// `key` expression gives: KTable's foreign-key join, or its primary-key join
// when that expression is the row's own key. The joined table goes on in the
// flow.
void Planner::join_tables(FlowState& state, const StepSpec& step) {
  const YAML::Node& with = step.at("with");
  const std::string other = document_.scalar(with);
  const auto named = streams_.find(other);
  if (named == streams_.end() || !named->second.table) {
    std::vector<std::string_view> known;
    for (const auto& [candidate, stream] : streams_)
      if (stream.table) known.push_back(candidate);
    document_.fail(with.Mark(), "unknown table '" + other +
                                    "', expected a source of type table (a table's rows join "
                                    "other tables' rows): " +
                                    (known.empty() ? std::string("(none)") : list_names(known)) +
                                    suggestion(other, known));
  }
  if (step.has("window"))
    document_.fail(
        step.at("window").Mark(),
        "a window applies to a join of streams; this flow and '" + other + "' are tables");
  if (!step.has("key"))
    document_.fail(step.mark, "a join of table rows with table '" + other +
                                  "' needs key: the foreign key, the key of the row of '" + other +
                                  "' that each row names, such as key: value.customer, or "
                                  "key: key to join rows of the same key");
  const std::string type = step.text(document_, "type", "inner");
  Expression foreign_key = expression(step.at("key"), state.scope);
  std::set<std::string> fields;
  const Builder value = join_value(step, state.scope, fields);
  const KTable<Json, Json>& table = *named->second.table;
  const std::string name = step_name(step);
  if (foreign_key.is_key()) {
    // Rows of the same key: the tables' primary-key join, co-partitioned.
    auto joiner = [value](const Json& key, const std::optional<Json>& row,
                          const std::optional<Json>& other_row) {
      return value(EvalContext{key, row ? *row : Json(), 0, {}, other_row ? &*other_row : nullptr});
    };
    state.table = type == "outer"  ? state.table->outer_join(table, joiner, {}, name)
                  : type == "left" ? state.table->left_join(table, joiner, {}, name)
                                   : state.table->join(table, joiner, {}, name);
    state.scope = joined_scope(step, std::move(fields));
    return;
  }
  if (type == "outer")
    document_.fail(step.at("type").Mark(),
                   "a foreign-key join is inner or left, found outer (key: key joins rows of "
                   "the same key, and may be outer)");
  if (foreign_key.reads_metadata())
    document_.fail_in_scalar(step.at("key"), 0,
                             "a foreign key sees the row's key and value only, found a reference "
                             "to timestamp or headers");
  auto extract = [foreign_key](const Json& key, const Json& row) -> std::optional<Json> {
    Json found = foreign_key.evaluate(EvalContext{key, row});
    if (found.is_null()) return std::nullopt;
    return found;
  };
  auto joiner = [value](const Json& key, const Json& row, const std::optional<Json>& other_row) {
    return value(EvalContext{key, row, 0, {}, other_row ? &*other_row : nullptr});
  };
  state.table = type == "left" ? state.table->left_join(table, extract, joiner, {}, name)
                               : state.table->join(table, extract, joiner, {}, name);
  state.scope = joined_scope(step, std::move(fields));
}

// A join's value: `left` and `right` are known in it. `fields` gets the
// fields of a value built as a mapping.
Planner::Builder Planner::join_value(const StepSpec& step, const Scope& scope,
                                     std::set<std::string>& fields) const {
  Scope sides = scope;
  sides.join_sides = true;
  return value_builder(step.at("value"), sides, &fields);
}

// What is known of the values after a join: the fields its value mapping built.
Scope Planner::joined_scope(const StepSpec& step, std::set<std::string> fields) const {
  Scope scope;
  if (step.at("value").IsMap()) scope.value_fields = std::move(fields);
  return scope;
}

JoinWindows Planner::join_windows(const YAML::Node& window) const {
  auto duration = [&](const char* field) -> std::optional<std::chrono::milliseconds> {
    if (!window[field]) return std::nullopt;
    return std::chrono::milliseconds(document_.parse_duration(window[field]));
  };
  const auto difference = duration("difference");
  const auto before = duration("before");
  const auto after = duration("after");
  if (!difference && !(before && after))
    document_.fail(window.Mark(), "a join window needs 'difference', or both 'before' and 'after'");
  JoinWindows windows = JoinWindows::of_time_difference_and_grace(
      difference.value_or(std::chrono::milliseconds(0)),
      duration("grace").value_or(std::chrono::milliseconds(0)));
  if (before) windows = windows.before(*before);
  if (after) windows = windows.after(*after);
  return windows;
}

void Planner::apply_group_by(FlowState& state, const StepSpec& step) {
  const std::string name = step_name(step);
  Expression e = expression(step.at("key"), state.scope);
  if (state.table) {
    // A row's change carries no time or headers of its own to group by.
    if (e.reads_metadata())
      document_.fail_in_scalar(step.at("key"), 0,
                               "a table's group_by sees a row's key and value only, found a "
                               "reference to timestamp or headers");
    state.grouped_table = state.table->group_by(
        [e](const Json& key, const Json& value) {
          return KeyValue<Json, Json>{e.evaluate(EvalContext{key, value, 0, nullptr}), value};
        },
        Grouped<Json, Json>{name, group_key_serde(step, e), serdes::json<Json>()});
    state.table.reset();
  } else {
    Stream keyed = e.is_key() ? state.stream : select_key(state.stream, e, {});
    state.group_name = name;
    state.grouped = keyed.group_by_key(
        Grouped<Json, Json>{name, group_key_serde(step, e), serdes::json<Json>()});
  }
  state.grouped_mark = step.mark;
}

// A table's changes, deletions as null values; after them the flow goes on
// with that stream.
void Planner::to_changes(FlowState& state, const std::string& name) {
  if (!state.table) return;
  std::string changes = name.empty() ? std::string() : name + "-changes";
  std::string values = name.empty() ? std::string() : name + "-values";
  state.stream = state.table->to_stream(std::move(changes))
                     .map_values([](const std::optional<Json>& v) { return v ? *v : Json(); },
                                 std::move(values));
  state.table.reset();
}

void Planner::apply_to(FlowState& state, const StepSpec& step) {
  to_changes(state, step_name(step));
  std::string topic = document_.scalar(step.at("topic"));
  if (topic.empty())
    document_.fail(step.at("topic").Mark(), "found an empty topic, expected a topic name");
  if (spec_.output_topics) topic = spec_.output_topics(topic);
  state.stream.to(topic,
                  Produced<Json, Json>{format_serde(step.text(document_, "key_format", "string")),
                                       format_serde(step.text(document_, "value_format", "json")),
                                       {},
                                       step_name(step)});
  pipeline_.topics.push_back(TopicUse{topic, document_.position(step.at("topic").Mark()), false});
}

void Planner::apply_to_postgres(FlowState& state, const StepSpec& step) {
  PostgresTable table;
  table.connection = document_.scalar(step.at("connection"));
  table.table = document_.scalar(step.at("table"));
  std::string name = step_name(step);
  if (name.empty()) name = table.table;
  using Columns = std::vector<std::pair<std::string, Expression>>;
  auto columns = [&](const char* field, std::vector<PostgresColumn>& declared) {
    Columns out;
    if (!step.has(field)) return out;
    for (const auto& entry : step.at(field)) {
      const YAML::Node& column = entry.second;
      declared.push_back({entry.first.as<std::string>(),
                          column["type"] ? document_.scalar(column["type"]) : "text"});
      out.emplace_back(declared.back().name, expression(column["value"], state.scope));
    }
    return out;
  };
  const Columns keys = columns("key_columns", table.key_columns);
  const Columns values = columns("columns", table.value_columns);
  table.create_table = step.text(document_, "create_table", "false") == "true";
  auto count = [&](const char* field, std::size_t& into) {
    if (!step.has(field)) return;
    const int64_t value = document_.parse_integer(step.at(field));
    if (value < 1)
      document_.fail(step.at(field).Mark(), "found " + std::string(field) + " " +
                                                std::to_string(value) + ", expected at least 1");
    into = static_cast<std::size_t>(value);
  };
  count("batch_size", table.batch_size);
  count("connections", table.connections);
  if (step.has("linger"))
    table.linger = std::chrono::milliseconds(document_.parse_duration(step.at("linger")));
  const std::string rejected = step.text(document_, "on_rejected", "dead_letter");
  table.rejected_rows = rejected == "fail"               ? RejectedRows::kFail
                        : rejected == "log_and_continue" ? RejectedRows::kLogAndContinue
                                                         : RejectedRows::kDeadLetter;
  TopicRef topic;
  try {
    topic = internal::declare_postgres_sink(builder_.topology(), name, std::move(table));
  } catch (const TopologyError& e) {
    document_.fail(step.mark, e.what());
  }
  to_changes(state, name);
  // Each record becomes its row: the key columns and the value columns as
  // JSON objects (sorted by name, so that a key's row always has the same
  // bytes and compaction keeps its last one); a null value deletes.
  const Stream rows = add_step(
      state.stream, "KSTREAM-MAP", name + "-rows", state.stream.repartition_required(),
      [keys, values](const Record<Json, Json>& r, ProcessorContext<Json, Json>& ctx) {
        const EvalContext c = context_of(r);
        Json key = Json::object();
        for (const auto& [column, e] : keys) key[column] = e.evaluate(c);
        Json value = nullptr;
        if (!r.value.is_null()) {
          value = Json::object();
          for (const auto& [column, e] : values) value[column] = e.evaluate(c);
        }
        ctx.forward(Record<Json, Json>{std::move(key), std::move(value), r.timestamp, r.headers});
      });
  builder_.topology().add_sink<Json, Json>(name + "-sink", topic, {rows.node_name()},
                                           format_serde("json"), format_serde("json"));
}

void Planner::apply_stdout(FlowState& state, const StepSpec& step) {
  const std::string name = step_name(step);
  state.stream = add_step(state.stream, "KSTREAM-PEEK", name.empty() ? "stdout" : name,
                          state.stream.repartition_required(),
                          [](const Record<Json, Json>& r, ProcessorContext<Json, Json>& ctx) {
                            print_record(r);
                            ctx.forward(r);
                          });
}

SerdePtr<Json> Planner::group_key_serde(const StepSpec& step, const Expression& key) const {
  const std::string format = step.text(document_, "key_format", "string");
  if (format == "string" && (key.type() == ValueType::kObject || key.type() == ValueType::kArray))
    document_.fail_in_scalar(
        step.at("key"), 0,
        "found " + std::string(to_string(key.type())) +
            " key, which key_format string cannot write; declare key_format: json");
  return key_format_serde(format);
}

void Planner::apply_flat_map(FlowState& state, const StepSpec& step) {
  const std::string name = step_name(step);
  if (step.has("explode") == step.has("split"))
    document_.fail(step.mark, std::string("flat_map: found ") +
                                  (step.has("explode") ? "both 'explode' and 'split'" : "neither") +
                                  ", expected exactly one of them");
  if (step.has("separator") && !step.has("split"))
    document_.fail(step.at("separator").Mark(),
                   "flat_map: 'separator' goes with 'split', found it "
                   "with 'explode'");
  const bool split = step.has("split");
  Expression e = expression(step.at(split ? "split" : "explode"), state.scope);
  const std::string separator = step.text(document_, "separator");
  state.stream = add_step(
      state.stream, "KSTREAM-FLATMAPVALUES", name, state.stream.repartition_required(),
      [e, split, separator](const Record<Json, Json>& r, ProcessorContext<Json, Json>& ctx) {
        const Json input = e.evaluate(context_of(r));
        if (input.is_null()) return;
        auto emit = [&](Json v) {
          ctx.forward(Record<Json, Json>{r.key, std::move(v), r.timestamp, r.headers});
        };
        if (!split) {
          if (!input.is_array())
            throw EvalError("flat_map explode '" + e.text() + "' gave " + input.dump() +
                            ", expected an array");
          for (const Json& element : input) emit(element);
          return;
        }
        if (!input.is_string())
          throw EvalError("flat_map split '" + e.text() + "' gave " + input.dump() +
                          ", expected a string");
        const std::string& s = input.get_ref<const std::string&>();
        if (separator.empty()) {
          std::istringstream words(s);
          for (std::string word; words >> word;) emit(word);
          return;
        }
        std::size_t start = 0;
        for (std::size_t at = s.find(separator); at != std::string::npos;
             at = s.find(separator, start)) {
          emit(s.substr(start, at - start));
          start = at + separator.size();
        }
        emit(s.substr(start));
      });
  state.scope = Scope{};
}

void Planner::apply_branch(FlowState& state, const StepSpec& step) {
  const std::string name = step_name(step);
  struct Route {
    std::string child;
    std::optional<Expression> condition;
  };
  auto routes = std::make_shared<std::vector<Route>>();
  const std::string split = builder_.name_or_new(name, "KSTREAM-BRANCH");
  std::vector<std::pair<YAML::Node, std::string>> outputs;
  const YAML::Node routes_node = step.at("routes");
  for (auto it = routes_node.begin(); it != routes_node.end(); ++it) {
    routes->push_back({split + "-" + it->first.Scalar(), condition(it->second, state.scope)});
    outputs.emplace_back(it->first, it->first.Scalar());
  }
  if (step.has("default")) {
    const std::string fallback = document_.scalar(step.at("default"));
    routes->push_back({split + "-" + fallback, std::nullopt});
    outputs.emplace_back(step.at("default"), fallback);
  }
  const std::shared_ptr<const std::vector<Route>> table = routes;
  Stream router =
      add_step(state.stream, "KSTREAM-BRANCH", split, state.stream.repartition_required(),
               [table](const Record<Json, Json>& r, ProcessorContext<Json, Json>& ctx) {
                 const EvalContext c = context_of(r);
                 for (const Route& route : *table) {
                   if (!route.condition || route.condition->test(c)) {
                     ctx.forward(r, route.child);
                     return;
                   }
                 }
               });
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    Stream branch = add_step(
        router, "", (*routes)[i].child, router.repartition_required(),
        [](const Record<Json, Json>& r, ProcessorContext<Json, Json>& ctx) { ctx.forward(r); });
    define_stream(outputs[i].first, outputs[i].second, NamedStream{branch, state.scope});
  }
  state.ended = true;
}

void Planner::apply_aggregate(FlowState& state, const StepSpec& step) {
  if (!state.grouped && !state.grouped_table)
    document_.fail(step.mark,
                   "found aggregate without a group_by before it, expected group_by first");
  const std::string name = step_name(step);
  if (step.has("value") == step.has("fields"))
    document_.fail(step.mark, std::string("aggregate: found ") +
                                  (step.has("value") ? "both 'value' and 'fields'"
                                                     : "neither 'value' "
                                                       "nor 'fields'") +
                                  ", expected exactly one of them");
  auto aggregations = std::make_shared<Aggregations>();
  Scope next;
  if (step.has("value")) {
    aggregations->single = true;
    aggregations->fields.emplace_back("value", aggregation(step.at("value"), state.scope));
  } else {
    next.value_fields.emplace();
    const YAML::Node fields = step.at("fields");
    for (auto it = fields.begin(); it != fields.end(); ++it) {
      aggregations->fields.emplace_back(it->first.Scalar(), aggregation(it->second, state.scope));
      next.value_fields->insert(it->first.Scalar());
    }
  }
  std::shared_ptr<const Aggregations> aggs = aggregations;
  auto initializer = [aggs] { return aggs->initial(); };
  auto aggregator = [aggs](const Json& key, const Json& value, const Json& aggregate,
                           const RecordContext& record) {
    return aggs->add(EvalContext{key, value, record.timestamp, record.headers}, aggregate);
  };
  Materialized<Json, Json> materialized;
  materialized.store_name = name;
  materialized.value_serde = serdes::json<Json>();
  // Queries show the aggregate's result, as the flow emits it, not its states.
  materialized.query_json = [aggs](std::string_view states) {
    return aggs->result(Json::parse(states)).dump();
  };
  auto results = [aggs](const KTable<Json, Json>& table) {
    return table.to_stream().map_values(
        [aggs](const std::optional<Json>& v) { return v ? aggs->result(*v) : Json(); });
  };

  if (state.grouped_table) {
    if (step.has("window"))
      document_.fail(
          step.at("window").Mark(),
          "found a window after a table's group_by, expected an aggregate over all time");
    for (const auto& [field, call] : aggregations->fields)
      if (!Aggregations::subtractable(call.function))
        document_.fail(step.at(aggregations->single ? "value" : "fields").Mark(),
                       "found " + std::string(to_string(call.function)) +
                           "() after a table's group_by, expected count(), sum(x) or avg(x), which "
                           "can take out a row that changed or left");
    auto subtractor = [aggs](const Json& key, const Json& value, const Json& aggregate,
                             const RecordContext& record) {
      return aggs->subtract(EvalContext{key, value, record.timestamp, record.headers}, aggregate);
    };
    state.stream =
        results(state.grouped_table->aggregate(initializer, aggregator, subtractor, materialized));
    state.grouped_table.reset();
  } else if (!step.has("window")) {
    state.stream = results(state.grouped->aggregate(initializer, aggregator, materialized));
  } else {
    const KGroupedStream<Json, Json>& grouped = *state.grouped;
    const YAML::Node window = step.at("window");
    const std::string type = document_.scalar(window["type"]);
    auto duration = [&](const char* field, bool needed) -> int64_t {
      const YAML::Node n = window[field];
      if (!n) {
        if (needed)
          document_.fail(window.Mark(), "missing field '" + std::string(field) + "' in " + type +
                                            " window, expected a duration such as 1m");
        return 0;
      }
      const int64_t ms = document_.parse_duration(n);
      if (needed && ms <= 0)
        document_.fail(n.Mark(),
                       "found " + std::to_string(ms) + " ms, expected a positive duration");
      return ms;
    };
    auto forbid = [&](const char* field) {
      if (window[field])
        document_.fail(window[field].Mark(),
                       "'" + std::string(field) + "' does not apply to " + type + " windows");
    };
    const auto grace = std::chrono::milliseconds(duration("grace", false));
    const bool final_only = window["emit"] && document_.scalar(window["emit"]) == "final";
    KTable<Windowed<Json>, Json> table;
    if (type == "tumbling" || type == "hopping") {
      forbid("gap");
      const auto size = std::chrono::milliseconds(duration("size", true));
      TimeWindows windows = TimeWindows::of_size_and_grace(size, grace);
      if (type == "hopping") {
        const int64_t advance = duration("advance", true);
        if (advance > size.count())
          document_.fail(window["advance"].Mark(), "found an advance of " +
                                                       std::to_string(advance) +
                                                       " ms, expected at most the size (" +
                                                       std::to_string(size.count()) + " ms)");
        windows = windows.advance_by(std::chrono::milliseconds(advance));
      } else {
        forbid("advance");
      }
      table = grouped.windowed_by(windows).aggregate(initializer, aggregator, materialized);
    } else if (type == "sliding") {
      forbid("gap");
      forbid("advance");
      table = grouped
                  .windowed_by(SlidingWindows::of_time_difference_and_grace(
                      std::chrono::milliseconds(duration("size", true)), grace))
                  .aggregate(initializer, aggregator, materialized);
    } else {
      forbid("size");
      forbid("advance");
      auto merger = [aggs](const Json&, const Json& a, const Json& b) { return aggs->merge(a, b); };
      table = grouped
                  .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
                      std::chrono::milliseconds(duration("gap", true)), grace))
                  .aggregate(initializer, aggregator, merger, materialized);
    }
    if (final_only)
      table = table.suppress(Suppressed::until_window_closes().with_name(
          name.empty() ? std::string() : name + "-final"));
    state.stream =
        table.to_stream().map([aggs](const Windowed<Json>& key, const std::optional<Json>& v) {
          return KeyValue<Json, Json>{
              Json{{"key", key.key}, {"start", key.window.start}, {"end", key.window.end}},
              v ? aggs->result(*v) : Json()};
        });
  }
  state.grouped.reset();
  state.scope = aggregations->single ? Scope{} : next;
}

}  // namespace rill::pipeline
