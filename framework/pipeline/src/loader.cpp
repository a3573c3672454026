// Loads a pipeline file: parses the YAML, checks every section and step
// against the declaration, compiles expressions, and builds the topology
// with the DSL and the shared operators. Every error names its place.
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "rill/pipeline/declaration.h"
#include "rill/pipeline/pipeline.h"
#include "rill/streams_builder.h"
#include "rill/windows.h"

#include "aggregations.h"
#include "kafka/handles.h"
#include "secret_values.h"
#include "suggest.h"

namespace rill::pipeline {

PipelineError::PipelineError(Position position, std::string message, std::string source_line,
                             int caret_column)
    : std::runtime_error(position.file + ":" + std::to_string(position.line) + ":" +
                         std::to_string(position.column) + ": " + message),
      position_(std::move(position)),
      message_(std::move(message)),
      source_line_(std::move(source_line)),
      caret_column_(caret_column > 0 ? caret_column : position_.column) {}

std::string PipelineError::report() const {
  std::string out = std::string(what()) + "\n";
  if (!source_line_.empty() && caret_column_ > 0) {
    out += "  " + source_line_ + "\n  ";
    for (int i = 1; i < caret_column_ && i <= static_cast<int>(source_line_.size()); ++i)
      out += source_line_[static_cast<std::size_t>(i - 1)] == '\t' ? '\t' : ' ';
    out += "^\n";
  }
  return out;
}

Environment process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

namespace {

using Stream = KStream<Json, Json>;

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string list_names(const std::vector<std::string_view>& names) {
  std::string out;
  for (std::string_view name : names) out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

std::string describe_node(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "nothing";
  }
}

// The fields given in a mapping (a source, a step), checked already against
// the declaration; absent and null fields are left out.
struct Fields {
  YAML::Mark mark;
  std::map<std::string, YAML::Node> fields;

  bool has(std::string_view name) const { return fields.contains(std::string(name)); }
  const YAML::Node& at(std::string_view name) const { return fields.at(std::string(name)); }
};

// A step's operator and its fields, from either form: a mapping of fields or
// the shorthand scalar.
struct Step : Fields {
  const OperatorSpec* op = nullptr;
};

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

struct NamedStream {
  Stream stream;
  Scope scope;
  // Sources of type table: the table read from the stream.
  std::optional<KTable<Json, Json>> table = std::nullopt;
};

using Builder = std::function<Json(const EvalContext&)>;

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

class Loader {
 public:
  Loader(std::string text, std::string file, const Environment& environment,
         const Settings& overrides)
      : text_(std::move(text)),
        file_(std::move(file)),
        environment_(environment),
        overrides_(overrides),
        lines_(split_lines(text_)),
        secrets_(lines_) {}

  Pipeline load() {
    YAML::Node root;
    try {
      root = YAML::Load(text_);
    } catch (const YAML::ParserException& e) {
      fail(e.mark, "invalid YAML: " + e.msg);
    }
    if (!root.IsMap())
      fail(root.Mark(), "found " + describe_node(root) +
                            ", expected a mapping with application, sources and flows");
    check_fields(root, document_fields(), "the pipeline");
    load_application(root["application"]);
    load_sources(root["sources"]);
    const YAML::Node flows = root["flows"];
    for (std::size_t i = 0; i < flows.size(); ++i) load_flow(flows[i]);
    try {
      pipeline_.topology = builder_.build();
    } catch (const std::exception& e) {
      fail(root.Mark(), std::string("the topology cannot work: ") + e.what());
    }
    return std::move(pipeline_);
  }

 private:
  // --- errors and positions -------------------------------------------------

  Position position(const YAML::Mark& mark) const {
    return Position{file_, mark.line + 1, mark.column + 1};
  }
  [[noreturn]] void fail_at(int line, int column, const std::string& message) const {
    const ShownLine shown = secrets_.show_line(line, column);
    throw PipelineError(Position{file_, line, column}, secrets_.mask(message), shown.text,
                        shown.column);
  }
  [[noreturn]] void fail(const YAML::Mark& mark, const std::string& message) const {
    if (mark.line < 0) fail_at(0, 0, message);
    fail_at(mark.line + 1, mark.column + 1, message);
  }
  // Where byte `offset` of a scalar's text is in the file: after the quote of
  // a quoted scalar, on the lines after the indicator of a block scalar.
  [[noreturn]] void fail_in_scalar(const YAML::Node& node, std::size_t offset,
                                   const std::string& message) const {
    const YAML::Mark mark = node.Mark();
    if (mark.line < 0 || mark.line >= static_cast<int>(lines_.size())) fail(mark, message);
    const std::string& line = lines_[static_cast<std::size_t>(mark.line)];
    const char first = static_cast<std::size_t>(mark.column) < line.size()
                           ? line[static_cast<std::size_t>(mark.column)]
                           : ' ';
    if (first == '|' || first == '>') {
      const std::string& value = node.Scalar();
      int row = mark.line + 1;
      std::size_t line_start = 0;
      for (std::size_t i = 0; i < offset && i < value.size(); ++i)
        if (value[i] == '\n') {
          ++row;
          line_start = i + 1;
        }
      int indent = 0;
      if (row < static_cast<int>(lines_.size()))
        for (char c : lines_[static_cast<std::size_t>(row)]) {
          if (c != ' ') break;
          ++indent;
        }
      fail_at(row + 1, indent + static_cast<int>(offset - line_start) + 1, message);
    }
    const int quote = (first == '"' || first == '\'') ? 1 : 0;
    fail_at(mark.line + 1, mark.column + 1 + quote + static_cast<int>(offset), message);
  }

  // --- scalars ---------------------------------------------------------------

  // The scalar's text with ${NAME} and ${NAME:-default} replaced.
  std::string scalar(const YAML::Node& node) const {
    const std::string& raw = node.Scalar();
    if (raw.find("${") == std::string::npos) return raw;
    std::string out;
    std::size_t i = 0;
    while (i < raw.size()) {
      const std::size_t start = raw.find("${", i);
      if (start == std::string::npos) {
        out += raw.substr(i);
        break;
      }
      out += raw.substr(i, start - i);
      const std::size_t end = raw.find('}', start);
      if (end == std::string::npos)
        fail_in_scalar(node, start,
                       "found an unterminated '${', expected ${NAME} or "
                       "${NAME:-default}");
      const std::string inside = raw.substr(start + 2, end - start - 2);
      const std::size_t dash = inside.find(":-");
      const std::string name = inside.substr(0, dash);
      if (name.empty())
        fail_in_scalar(node, start, "found '${}', expected ${NAME} or ${NAME:-default}");
      std::optional<std::string> value = environment_(name);
      if (!value || (value->empty() && dash != std::string::npos)) {
        if (dash == std::string::npos)
          fail_in_scalar(node, start,
                         "environment variable '" + name +
                             "' is not set, expected it set or a default: ${" + name +
                             ":-default}");
        value = inside.substr(dash + 2);
      }
      if (is_secret_key(name)) secrets_.add(*value);
      out += *value;
      i = end + 1;
    }
    return out;
  }

  std::string scalar_field(const Fields& step, std::string_view name,
                           std::string fallback = {}) const {
    return step.has(name) ? scalar(step.at(name)) : fallback;
  }

  static std::string kind_expected(const FieldSpec& field) {
    switch (field.type) {
      case FieldType::kString:
        return "a string";
      case FieldType::kInteger:
        return "an integer";
      case FieldType::kDuration:
        return "a duration such as 500ms, 30s, 5m, 1h or 1d";
      case FieldType::kEnum:
        return "one of " + list_names(field.allowed);
      case FieldType::kExpression:
        return "an expression";
      case FieldType::kCondition:
        return "a condition";
      case FieldType::kValueBuilder:
        return "an expression or a mapping of names to expressions";
      case FieldType::kAggregation:
        return "an aggregation such as count() or sum(value.amount)";
      case FieldType::kAggregations:
        return "a mapping of names to aggregations";
      case FieldType::kRoutes:
        return "a mapping of route names to conditions";
      case FieldType::kStreamNames:
        return "a stream name or a list of them";
      case FieldType::kStringList:
        return "a list of strings";
      case FieldType::kConfig:
        return "a mapping of configuration keys to values";
      case FieldType::kObject:
        for (const FieldSpec& nested : field.fields)
          if (!field.shorthand.empty() && nested.name == field.shorthand)
            return kind_expected(nested) + " or a mapping";
        return "a mapping";
      case FieldType::kNamedObjects:
        return "a mapping";
      case FieldType::kObjectList:
        return "a list of mappings";
      case FieldType::kSteps:
        return "a list of steps";
    }
    return "";
  }

  int64_t parse_duration(const YAML::Node& node) const {
    try {
      return parse_duration_ms(scalar(node));
    } catch (const std::invalid_argument& e) {
      fail(node.Mark(), e.what());
    }
  }

  int64_t parse_integer(const YAML::Node& node) const {
    const std::string text = scalar(node);
    std::size_t used = 0;
    int64_t value = 0;
    try {
      value = std::stoll(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != text.size())
      fail(node.Mark(), "found '" + text + "', expected an integer");
    return value;
  }

  // --- checking against the declaration ---------------------------------------

  // A name given twice in one mapping: YAML parsers keep one of them silently.
  void check_unique_keys(const YAML::Node& mapping, const std::string& where) const {
    std::set<std::string> seen;
    for (auto it = mapping.begin(); it != mapping.end(); ++it)
      if (it->first.IsScalar() && !seen.insert(it->first.Scalar()).second)
        fail(it->first.Mark(), "'" + it->first.Scalar() + "' appears twice in " + where);
  }

  void check_value(const YAML::Node& value, const FieldSpec& field, const std::string& where) {
    const std::string what = "'" + std::string(field.name) + "' in " + where;
    if (value.IsMap()) check_unique_keys(value, what);
    auto wrong = [&] {
      fail(value.Mark(),
           what + ": found " + describe_node(value) + ", expected " + kind_expected(field));
    };
    switch (field.type) {
      case FieldType::kString:
      case FieldType::kExpression:
      case FieldType::kCondition:
      case FieldType::kAggregation:
        if (!value.IsScalar()) wrong();
        break;
      case FieldType::kInteger:
        if (!value.IsScalar()) wrong();
        parse_integer(value);
        break;
      case FieldType::kDuration:
        if (!value.IsScalar()) wrong();
        parse_duration(value);
        break;
      case FieldType::kEnum: {
        if (!value.IsScalar()) wrong();
        const std::string text = scalar(value);
        if (std::find(field.allowed.begin(), field.allowed.end(), text) == field.allowed.end())
          fail(value.Mark(), what + ": found '" + text + "', expected one of " +
                                 list_names(field.allowed) + suggestion(text, field.allowed));
        break;
      }
      case FieldType::kValueBuilder:
        if (!value.IsScalar() && !value.IsMap()) wrong();
        break;
      case FieldType::kAggregations:
      case FieldType::kRoutes:
      case FieldType::kConfig:
        if (!value.IsMap() || value.size() == 0) wrong();
        for (auto it = value.begin(); it != value.end(); ++it)
          if (!it->second.IsScalar())
            fail(it->second.Mark(), "'" + it->first.Scalar() + "' in " + what + ": found " +
                                        describe_node(it->second) + ", expected a single value");
        break;
      case FieldType::kStreamNames:
        if (value.IsSequence()) {
          if (value.size() == 0) wrong();
          for (const YAML::Node& item : value)
            if (!item.IsScalar()) wrong();
        } else if (!value.IsScalar()) {
          wrong();
        }
        break;
      case FieldType::kStringList:
        if (!value.IsSequence()) wrong();
        for (const YAML::Node& item : value)
          if (!item.IsScalar()) wrong();
        break;
      case FieldType::kObject:
        if (value.IsScalar() && !field.shorthand.empty()) {
          for (const FieldSpec& nested : field.fields)
            if (nested.name == field.shorthand) check_value(value, nested, where);
          break;
        }
        if (!value.IsMap()) wrong();
        check_fields(value, field.fields, what);
        break;
      case FieldType::kNamedObjects:
        if (!value.IsMap() || value.size() == 0) wrong();
        for (auto it = value.begin(); it != value.end(); ++it) {
          if (!it->second.IsMap())
            fail(it->second.Mark(), "'" + it->first.Scalar() + "' in " + what + ": found " +
                                        describe_node(it->second) + ", expected a mapping");
          check_fields(it->second, field.fields, "'" + it->first.Scalar() + "'");
        }
        break;
      case FieldType::kObjectList:
        if (!value.IsSequence() || value.size() == 0) wrong();
        for (std::size_t i = 0; i < value.size(); ++i) {
          if (!value[i].IsMap())
            fail(value[i].Mark(), "item " + std::to_string(i + 1) + " of " + what + ": found " +
                                      describe_node(value[i]) + ", expected a mapping");
          check_fields(value[i], field.fields, "item " + std::to_string(i + 1) + " of " + what);
        }
        break;
      case FieldType::kSteps:
        if (!value.IsSequence() || value.size() == 0) wrong();
        break;
    }
  }

  // Unknown and repeated fields, missing required ones, and each value's kind.
  void check_fields(const YAML::Node& node, const std::vector<FieldSpec>& fields,
                    const std::string& where) {
    std::set<std::string> seen;
    std::vector<std::string_view> names;
    for (const FieldSpec& field : fields) names.push_back(field.name);
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->first.IsScalar())
        fail(it->first.Mark(), "found " + describe_node(it->first) + " as a field name in " +
                                   where + ", expected one of " + list_names(names));
      const std::string name = it->first.Scalar();
      if (!seen.insert(name).second)
        fail(it->first.Mark(), "field '" + name + "' appears twice in " + where);
      auto spec = std::find_if(fields.begin(), fields.end(),
                               [&](const FieldSpec& f) { return f.name == name; });
      if (spec == fields.end())
        fail(it->first.Mark(), "unknown field '" + name + "' in " + where + ", expected one of " +
                                   list_names(names) + suggestion(name, names));
      if (it->second.IsNull() && spec->required)
        fail(it->second.Mark(),
             "'" + name + "' in " + where + ": found nothing, expected " + kind_expected(*spec));
      if (!it->second.IsNull()) check_value(it->second, *spec, where);
    }
    for (const FieldSpec& field : fields)
      if (field.required && !seen.contains(std::string(field.name)))
        fail(node.Mark(), "missing field '" + std::string(field.name) + "' in " + where +
                              ", expected " + kind_expected(field));
  }

  // --- expressions -----------------------------------------------------------

  Expression expression(const YAML::Node& node, const Scope& scope) const {
    try {
      return Expression::compile(scalar(node), scope);
    } catch (const ExpressionError& e) {
      fail_in_scalar(node, e.offset(), std::string("bad expression: ") + e.what());
    }
  }

  Expression condition(const YAML::Node& node, const Scope& scope) const {
    Expression e = expression(node, scope);
    const ValueType type = e.type();
    if (type != ValueType::kBool && type != ValueType::kAny && type != ValueType::kNull)
      fail_in_scalar(node, 0,
                     "found " + std::string(to_string(type)) + " expression '" + e.text() +
                         "', expected a condition (true or false)");
    return e;
  }

  AggregateCall aggregation(const YAML::Node& node, const Scope& scope) const {
    AggregateCall call;
    try {
      call = compile_aggregate(scalar(node), scope);
    } catch (const ExpressionError& e) {
      fail_in_scalar(node, e.offset(), std::string("bad aggregation: ") + e.what());
    }
    return call;
  }

  // A value built from an expression or a mapping of them; `fields` gets the
  // top-level names of a mapping.
  Builder value_builder(const YAML::Node& node, const Scope& scope,
                        std::set<std::string>* fields = nullptr) const {
    if (node.IsScalar()) {
      Expression e = expression(node, scope);
      return [e](const EvalContext& c) { return e.evaluate(c); };
    }
    std::vector<std::pair<std::string, Builder>> parts;
    for (auto it = node.begin(); it != node.end(); ++it) {
      if (!it->second.IsScalar() && !it->second.IsMap())
        fail(it->second.Mark(), "field '" + it->first.Scalar() + "': found " +
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

  // --- sections --------------------------------------------------------------

  void load_application(const YAML::Node& node) {
    std::map<std::string, std::string> settings;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string key = it->first.Scalar();
      const std::string value = scalar(it->second);
      if (is_secret_key(key)) secrets_.add(value);
      if (!runs_embedded(key, value)) {
        if (is_declared_key(key)) {
          try {
            StreamsConfig::check_value(key, value);
          } catch (const ConfigError& e) {
            fail(it->second.Mark(), e.what());
          }
        } else {
          check_librdkafka_property(it->first, key, value, it->second);
        }
      }
      settings[key] = value;
      if (key == config::kDeadLetterTopic && !value.empty())
        pipeline_.topics.push_back(TopicUse{value, position(it->second.Mark()), false});
    }
    for (const auto& [key, value] : overrides_) {
      if (is_secret_key(key)) secrets_.add(value);
      check_override(key, value);
      if (key == config::kDeadLetterTopic) {
        // The file's dead-letter topic, if any, is no longer written.
        if (auto file_topic = settings.find(key); file_topic != settings.end())
          std::erase_if(pipeline_.topics, [&](const TopicUse& use) {
            return !use.source && use.topic == file_topic->second;
          });
        if (!value.empty())
          pipeline_.topics.push_back(TopicUse{value, Position{file_, 0, 0}, false});
      }
      settings[key] = value;
    }
    for (const auto& [key, value] : settings) {
      if (runs_embedded(key, value))
        pipeline_.embedded = true;
      else
        pipeline_.config.set(key, value);
    }
    if (!pipeline_.config.contains(config::kBootstrapServers)) pipeline_.embedded = true;
    StreamsConfig whole = pipeline_.config;
    if (pipeline_.embedded) whole.set(std::string(config::kBootstrapServers), "embedded");
    try {
      whole.validate();
    } catch (const ConfigError& e) {
      fail(node.Mark(), e.what());
    }
  }

  static bool runs_embedded(const std::string& key, const std::string& value) {
    return key == config::kBootstrapServers && (value.empty() || value == "embedded");
  }

  static bool is_declared_key(const std::string& key) {
    return std::any_of(config_keys().begin(), config_keys().end(),
                       [&](const ConfigKey& k) { return k.name == key; });
  }

  // A setting from the command line, checked as one in the file is; its
  // error names the option, with every secret value masked.
  void check_override(const std::string& key, const std::string& value) const {
    if (runs_embedded(key, value)) return;
    auto refuse = [&](bool show_value, const std::string& why) {
      throw ConfigError(
          secrets_.mask("--set " + key + "=" + (show_value ? value : "*****") + ": " + why));
    };
    if (is_declared_key(key)) {
      try {
        StreamsConfig::check_value(key, value);
      } catch (const ConfigError& e) {
        if (is_secret_key(key)) refuse(false, "invalid value");
        refuse(true, e.what());
      }
      return;
    }
    std::string error;
    const kafka::PropertyCheck result = check_client_property(key, value, error);
    // A misspelt secret key is no longer recognised as secret: its value is
    // not shown.
    if (result == kafka::PropertyCheck::kUnknown) refuse(false, unknown_key_message(key, ""));
    if (result == kafka::PropertyCheck::kInvalid)
      refuse(!is_secret_key(key), is_secret_key(key) ? std::string("invalid value") : error);
  }

  // How librdkafka takes a key rill does not read; its message in `error`.
  static kafka::PropertyCheck check_client_property(const std::string& key,
                                                    const std::string& value, std::string& error) {
    std::string property = key;
    for (std::string_view prefix : {"consumer.", "producer.", "admin."})
      if (property.starts_with(prefix)) property = property.substr(prefix.size());
    return kafka::check_property(property, value, error);
  }

  static std::string unknown_key_message(const std::string& key, const std::string& where) {
    std::vector<std::string_view> names;
    for (const ConfigKey& k : config_keys()) names.push_back(k.name);
    return "unknown configuration key '" + key + "'" + where +
           ", expected a key of docs/configuration.md or a librdkafka property" +
           suggestion(key, names);
  }

  // Keys rill does not read go to librdkafka, which must know them.
  void check_librdkafka_property(const YAML::Node& key_node, const std::string& key,
                                 const std::string& value, const YAML::Node& value_node) const {
    std::string error;
    const kafka::PropertyCheck result = check_client_property(key, value, error);
    if (result == kafka::PropertyCheck::kUnknown) {
      // A misspelt secret key is no longer recognised as secret: a value
      // the error is not about is not shown.
      const YAML::Mark mark = value_node.Mark();
      secrets_.hide_rest_of_line(mark.line + 1, mark.column + 1);
      secrets_.add(value);
      fail(key_node.Mark(), unknown_key_message(key, " in application"));
    }
    if (result == kafka::PropertyCheck::kInvalid)
      // librdkafka's message may quote the value.
      fail(value_node.Mark(), "configuration key '" + key + "': " +
                                  (is_secret_key(key) ? std::string("invalid value") : error));
  }

  // A source's `timestamp`: its expression, and what becomes of a record
  // whose expression fails.
  TimestampExtractor<Json, Json> timestamp_extractor(const YAML::Node& node, const Scope& scope) {
    const YAML::Node text = node.IsMap() ? node["expression"] : node;
    Expression e = expression(text, scope);
    if (e.type() != ValueType::kNumber && e.type() != ValueType::kAny)
      fail_in_scalar(text, 0,
                     "found " + std::string(to_string(e.type())) +
                         " expression, expected a time in ms since the epoch");
    std::optional<RecordError::Handling> handling;
    bool record_time = false;
    if (node.IsMap() && node["on_error"]) {
      const std::string on_error = scalar(node["on_error"]);
      if (on_error == "record_time") record_time = true;
      if (on_error == "skip") handling = RecordError::Handling::kSkip;
      if (on_error == "fail") handling = RecordError::Handling::kFail;
      if (on_error == "dead_letter") {
        handling = RecordError::Handling::kDeadLetter;
        if (pipeline_.config.get_string(config::kDeadLetterTopic).empty())
          fail(node["on_error"].Mark(), "found on_error: dead_letter, expected '" +
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

  void load_sources(const YAML::Node& node) {
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string name = it->first.Scalar();
      const YAML::Node source = it->second;
      const Fields fields = as_fields(source);
      const std::string topic = scalar_field(fields, "topic");
      if (topic.empty())
        fail(source["topic"].Mark(), "source '" + name +
                                         "': found an empty "
                                         "topic, expected a topic name");
      Scope scope;
      if (fields.has("fields")) {
        scope.value_fields.emplace();
        for (const YAML::Node& f : fields.at("fields")) scope.value_fields->insert(scalar(f));
      }
      Consumed<Json, Json> consumed{format_serde(scalar_field(fields, "key_format", "string")),
                                    format_serde(scalar_field(fields, "value_format", "json")),
                                    {},
                                    name};
      if (fields.has("timestamp"))
        consumed.timestamp_extractor = timestamp_extractor(fields.at("timestamp"), scope);
      const std::string type = scalar_field(fields, "type", "stream");
      if (type == "global_table" && fields.has("timestamp"))
        fail(fields.at("timestamp").Mark(),
             "source '" + name + "': found a timestamp on a global_table, expected none (a " +
                 "global table keeps each key's latest value whatever its time)");
      NamedStream named{{}, scope};
      try {
        if (type == "global_table") {
          builder_.global_table<Json, Json>(topic, consumed, Materialized<Json, Json>::as(name));
          global_tables_.insert(name);
        } else {
          named.stream = builder_.stream<Json, Json>(topic, consumed);
        }
        if (type == "table")
          named.table = named.stream.to_table({}, Materialized<Json, Json>::as(name));
      } catch (const std::exception& e) {
        fail(it->first.Mark(), "source '" + name + "': " + e.what());
      }
      if (type != "global_table") streams_.emplace(name, std::move(named));
      TopicUse use{topic, position(source["topic"].Mark()), true};
      if (fields.has("partitions")) {
        // Kafka counts partitions in an int32.
        const int64_t partitions = parse_integer(fields.at("partitions"));
        if (partitions < 1 || partitions > std::numeric_limits<int32_t>::max())
          fail(fields.at("partitions").Mark(),
               "found " + std::to_string(partitions) + " partitions, expected 1 to " +
                   std::to_string(std::numeric_limits<int32_t>::max()));
        use.partitions = static_cast<int32_t>(partitions);
      }
      pipeline_.topics.push_back(use);
      if (fields.has("generator")) load_generator(name, topic, fields.at("generator"), consumed);
    }
  }

  void load_generator(const std::string& source, const std::string& topic, const YAML::Node& node,
                      const Consumed<Json, Json>& consumed) {
    Generator generator;
    generator.topic = topic;
    generator.source = source;
    Scope scope;
    scope.value_fields = std::set<std::string>{"n"};
    generator.value = value_builder(node["value"], scope);
    if (node["key"]) generator.key = expression(node["key"], scope);
    if (node["interval"]) generator.interval_ms = parse_duration(node["interval"]);
    if (node["count"]) generator.count = parse_integer(node["count"]);
    generator.key_serde = consumed.key_serde;
    generator.value_serde = consumed.value_serde;
    pipeline_.generators.push_back(std::move(generator));
  }

  static Fields as_fields(const YAML::Node& node) {
    Fields result;
    result.mark = node.Mark();
    for (auto it = node.begin(); it != node.end(); ++it)
      if (!it->second.IsNull()) result.fields.emplace(it->first.Scalar(), it->second);
    return result;
  }

  // --- flows -----------------------------------------------------------------

  const NamedStream& named_stream(const YAML::Node& node) const {
    const std::string name = scalar(node);
    if (global_tables_.contains(name))
      fail(node.Mark(), "'" + name +
                            "' is a global table, expected a stream or a table: no flow starts "
                            "from a global table (joins, which read it, are not supported yet)");
    auto it = streams_.find(name);
    if (it == streams_.end()) {
      std::vector<std::string_view> names;
      for (const auto& [known, stream] : streams_) names.push_back(known);
      fail(node.Mark(), "unknown stream '" + name +
                            "', expected a source, a branch route or an earlier flow's 'as': " +
                            list_names(names) + suggestion(name, names));
    }
    return it->second;
  }

  void define_stream(const YAML::Node& name_node, const std::string& name, NamedStream stream) {
    if (!streams_.emplace(name, std::move(stream)).second)
      fail(name_node.Mark(), "stream '" + name + "' is defined twice, expected a new name");
  }

  void load_flow(const YAML::Node& flow) {
    const YAML::Node from = flow["from"];
    FlowState state;
    if (from.IsSequence()) {
      for (const YAML::Node& each : from)
        if (named_stream(each).table)
          fail(each.Mark(), "'" + scalar(each) +
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
    const YAML::Node steps = flow["steps"];
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const YAML::Node step_node = steps[i];
      if (state.ended)
        fail(step_node.Mark(),
             "found a step after 'branch', expected branch to end the flow "
             "(read its routes with 'from' in another flow)");
      Step step = parse_step(step_node);
      if (state.table && step.op->name != "group_by")
        fail(step.mark, "found '" + std::string(step.op->name) + "' on table '" + scalar(from) +
                            "', expected group_by (a table's rows go on through group_by "
                            "and aggregate)");
      if ((state.grouped || state.grouped_table) && step.op->name != "aggregate")
        fail(step.mark,
             "found '" + std::string(step.op->name) + "' after group_by, expected aggregate");
      try {
        apply(state, step);
      } catch (const PipelineError&) {
        throw;
      } catch (const std::exception& e) {
        fail(step.mark, std::string(step.op->name) + ": " + e.what());
      }
    }
    if (state.grouped || state.grouped_table)
      fail(state.grouped_mark, "group_by ends the flow, expected an aggregate step after it");
    if (state.table)
      fail(from.Mark(), "the flow from table '" + scalar(from) +
                            "' has no steps, expected group_by and aggregate");
    if (flow["as"]) {
      if (state.ended)
        fail(flow["as"].Mark(),
             "a flow that ends with branch has no stream to name; its routes "
             "are the streams");
      define_stream(flow["as"], scalar(flow["as"]), NamedStream{state.stream, state.scope});
    }
  }

  Step parse_step(const YAML::Node& node) {
    std::vector<std::string_view> names;
    for (const OperatorSpec& op : operators()) names.push_back(op.name);
    Step step;
    step.mark = node.Mark();
    YAML::Node name_node;
    YAML::Node args;
    if (node.IsScalar()) {
      name_node = node;
    } else if (node.IsMap() && node.size() == 1) {
      name_node = node.begin()->first;
      args = node.begin()->second;
    } else if (node.IsMap()) {
      std::string keys;
      for (auto it = node.begin(); it != node.end(); ++it)
        keys += (keys.empty() ? "" : ", ") + it->first.Scalar();
      fail(node.Mark(), "found a step with " + std::to_string(node.size()) + " operators (" + keys +
                            "), expected one operator per step");
    } else {
      fail(node.Mark(), "found " + describe_node(node) +
                            " as a step, expected an operator: " + list_names(names));
    }
    const std::string name = name_node.Scalar();
    step.op = find_operator(name);
    if (step.op == nullptr)
      fail(name_node.Mark(), "unknown operator '" + name + "', expected one of " +
                                 list_names(names) + suggestion(name, names));
    const std::string where = "'" + name + "'";
    const bool as_fields_mapping =
        args.IsMap() && (!shorthand_takes_mapping(*step.op) || looks_like_fields(*step.op, args));
    if (!args.IsDefined() || args.IsNull()) {
      for (const FieldSpec& field : step.op->fields)
        if (field.required)
          fail(name_node.Mark(), "missing field '" + std::string(field.name) + "' in " + where +
                                     ", expected " + kind_expected(field));
    } else if (as_fields_mapping) {
      check_fields(args, step.op->fields, where);
      for (auto it = args.begin(); it != args.end(); ++it)
        if (!it->second.IsNull()) step.fields.emplace(it->first.Scalar(), it->second);
    } else if (!step.op->shorthand.empty()) {
      for (const FieldSpec& field : step.op->fields) {
        if (field.name == step.op->shorthand) {
          check_value(args, field, where);
        } else if (field.required) {
          fail(args.Mark(), "missing field '" + std::string(field.name) + "' in " + where +
                                ", expected " + kind_expected(field));
        }
      }
      step.fields.emplace(std::string(step.op->shorthand), args);
    } else {
      fail(args.Mark(),
           where + ": found " + describe_node(args) + ", expected a mapping of its fields");
    }
    return step;
  }

  // `map: {user: value.user}` builds an object, whereas `map: {value: ...}`
  // names map's fields: a mapping is taken as fields when all its keys are.
  static bool shorthand_takes_mapping(const OperatorSpec& op) {
    for (const FieldSpec& field : op.fields)
      if (field.name == op.shorthand) return field.type == FieldType::kValueBuilder;
    return false;
  }
  static bool looks_like_fields(const OperatorSpec& op, const YAML::Node& args) {
    for (auto it = args.begin(); it != args.end(); ++it) {
      const std::string key = it->first.Scalar();
      if (std::none_of(op.fields.begin(), op.fields.end(),
                       [&](const FieldSpec& f) { return f.name == key; }))
        return false;
    }
    return true;
  }

  std::string step_name(const Step& step) const { return scalar_field(step, "name"); }

  void merge_into(FlowState& state, const std::vector<YAML::Node>& others, std::string name) {
    for (const YAML::Node& other : others) {
      const NamedStream& named = named_stream(other);
      state.stream = state.stream.merge(named.stream, others.size() == 1 ? name : std::string());
      if (state.scope.value_fields != named.scope.value_fields) state.scope = Scope{};
    }
  }

  void apply(FlowState& state, const Step& step) {
    const std::string_view op = step.op->name;
    const Scope& scope = state.scope;
    const std::string name = step_name(step);
    if (op == "filter") {
      Expression e = condition(step.at("if"), scope);
      state.stream =
          add_step(state.stream, "KSTREAM-FILTER", name, state.stream.repartition_required(),
                   [e](const Record<Json, Json>& r, ProcessorContext<Json, Json>& ctx) {
                     if (e.test(context_of(r))) ctx.forward(r);
                   });
    } else if (op == "map") {
      std::optional<Builder> value;
      std::optional<Expression> key;
      std::set<std::string> fields;
      Scope next = scope;
      if (step.has("value")) {
        value = value_builder(step.at("value"), scope, &fields);
        next.value_fields.reset();
        if (step.at("value").IsMap()) next.value_fields = fields;
      }
      if (step.has("key")) key = expression(step.at("key"), scope);
      state.stream = add_step(
          state.stream, "KSTREAM-MAP", name, key.has_value() || state.stream.repartition_required(),
          [value, key](const Record<Json, Json>& r, ProcessorContext<Json, Json>& ctx) {
            const EvalContext c = context_of(r);
            ctx.forward(Record<Json, Json>{key ? key->evaluate(c) : r.key,
                                           value ? (*value)(c) : r.value, r.timestamp, r.headers});
          });
      state.scope = next;
    } else if (op == "flat_map") {
      apply_flat_map(state, step, name);
    } else if (op == "select_key") {
      Expression e = expression(step.at("key"), scope);
      state.stream = select_key(state.stream, e, name);
    } else if (op == "branch") {
      apply_branch(state, step, name);
    } else if (op == "merge") {
      const YAML::Node streams = step.at("streams");
      std::vector<YAML::Node> others;
      if (streams.IsSequence())
        for (const YAML::Node& s : streams) others.push_back(s);
      else
        others.push_back(streams);
      merge_into(state, others, name);
    } else if (op == "group_by" && state.table) {
      Expression e = expression(step.at("key"), scope);
      // A row's change carries no time or headers of its own to group by.
      if (e.reads_metadata())
        fail_in_scalar(step.at("key"), 0,
                       "a table's group_by sees a row's key and value only, found a reference "
                       "to timestamp or headers");
      state.grouped_table = state.table->group_by(
          [e](const Json& key, const Json& value) {
            return KeyValue<Json, Json>{e.evaluate(EvalContext{key, value, 0, nullptr}), value};
          },
          Grouped<Json, Json>{name, group_key_serde(step, e), serdes::json<Json>()});
      state.table.reset();
      state.grouped_mark = step.mark;
    } else if (op == "group_by") {
      Expression e = expression(step.at("key"), scope);
      Stream keyed = e.is_key() ? state.stream : select_key(state.stream, e, {});
      state.group_name = name;
      state.grouped = keyed.group_by_key(
          Grouped<Json, Json>{name, group_key_serde(step, e), serdes::json<Json>()});
      state.grouped_mark = step.mark;
    } else if (op == "aggregate") {
      if (!state.grouped && !state.grouped_table)
        fail(step.mark, "found aggregate without a group_by before it, expected group_by first");
      apply_aggregate(state, step, name);
    } else if (op == "to") {
      const std::string topic = scalar(step.at("topic"));
      if (topic.empty())
        fail(step.at("topic").Mark(), "found an empty topic, expected a topic name");
      state.stream.to(topic,
                      Produced<Json, Json>{format_serde(scalar_field(step, "key_format", "string")),
                                           format_serde(scalar_field(step, "value_format", "json")),
                                           {},
                                           name});
      pipeline_.topics.push_back(TopicUse{topic, position(step.at("topic").Mark()), false});
    } else if (op == "stdout") {
      state.stream = add_step(state.stream, "KSTREAM-PEEK", name.empty() ? "stdout" : name,
                              state.stream.repartition_required(),
                              [](const Record<Json, Json>& r, ProcessorContext<Json, Json>& ctx) {
                                print_record(r);
                                ctx.forward(r);
                              });
    }
  }

  // The serde of a group_by's keys in its declared key format; an object or
  // array key needs json, which the expression's type may already tell.
  SerdePtr<Json> group_key_serde(const Step& step, const Expression& key) const {
    const std::string format = scalar_field(step, "key_format", "string");
    if (format == "string" && (key.type() == ValueType::kObject || key.type() == ValueType::kArray))
      fail_in_scalar(step.at("key"), 0,
                     "found " + std::string(to_string(key.type())) +
                         " key, which key_format string cannot write; declare key_format: json");
    return key_format_serde(format);
  }

  static void print_record(const Record<Json, Json>& r) {
    static std::mutex mutex;
    std::string line = r.key.is_string() ? r.key.get<std::string>() : r.key.dump();
    line += '\t';
    line += r.value.dump(-1, ' ', false, Json::error_handler_t::replace);
    line += '\n';
    std::lock_guard lock(mutex);
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
  }

  static Stream select_key(const Stream& in, const Expression& e, std::string name) {
    return add_step(in, "KSTREAM-KEY-SELECT", std::move(name), true,
                    [e](const Record<Json, Json>& r, ProcessorContext<Json, Json>& ctx) {
                      ctx.forward(Record<Json, Json>{e.evaluate(context_of(r)), r.value,
                                                     r.timestamp, r.headers});
                    });
  }

  void apply_flat_map(FlowState& state, const Step& step, const std::string& name) {
    if (step.has("explode") == step.has("split"))
      fail(step.mark, std::string("flat_map: found ") +
                          (step.has("explode") ? "both 'explode' and 'split'" : "neither") +
                          ", expected exactly one of them");
    if (step.has("separator") && !step.has("split"))
      fail(step.at("separator").Mark(),
           "flat_map: 'separator' goes with 'split', found it "
           "with 'explode'");
    const bool split = step.has("split");
    Expression e = expression(step.at(split ? "split" : "explode"), state.scope);
    const std::string separator = scalar_field(step, "separator");
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

  void apply_branch(FlowState& state, const Step& step, const std::string& name) {
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
      const std::string fallback = scalar(step.at("default"));
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

  void apply_aggregate(FlowState& state, const Step& step, const std::string& name) {
    if (step.has("value") == step.has("fields"))
      fail(step.mark, std::string("aggregate: found ") +
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
    auto results = [aggs](const KTable<Json, Json>& table) {
      return table.to_stream().map_values(
          [aggs](const std::optional<Json>& v) { return v ? aggs->result(*v) : Json(); });
    };

    if (state.grouped_table) {
      if (step.has("window"))
        fail(step.at("window").Mark(),
             "found a window after a table's group_by, expected an aggregate over all time");
      for (const auto& [field, call] : aggregations->fields)
        if (!Aggregations::subtractable(call.function))
          fail(step.at(aggregations->single ? "value" : "fields").Mark(),
               "found " + std::string(to_string(call.function)) +
                   "() after a table's group_by, expected count(), sum(x) or avg(x), which "
                   "can take out a row that changed or left");
      auto subtractor = [aggs](const Json& key, const Json& value, const Json& aggregate,
                               const RecordContext& record) {
        return aggs->subtract(EvalContext{key, value, record.timestamp, record.headers}, aggregate);
      };
      state.stream = results(
          state.grouped_table->aggregate(initializer, aggregator, subtractor, materialized));
      state.grouped_table.reset();
    } else if (!step.has("window")) {
      state.stream = results(state.grouped->aggregate(initializer, aggregator, materialized));
    } else {
      const KGroupedStream<Json, Json>& grouped = *state.grouped;
      const YAML::Node window = step.at("window");
      const std::string type = scalar(window["type"]);
      auto duration = [&](const char* field, bool needed) -> int64_t {
        const YAML::Node n = window[field];
        if (!n) {
          if (needed)
            fail(window.Mark(), "missing field '" + std::string(field) + "' in " + type +
                                    " window, expected a duration such as 1m");
          return 0;
        }
        const int64_t ms = parse_duration(n);
        if (needed && ms <= 0)
          fail(n.Mark(), "found " + std::to_string(ms) + " ms, expected a positive duration");
        return ms;
      };
      auto forbid = [&](const char* field) {
        if (window[field])
          fail(window[field].Mark(),
               "'" + std::string(field) + "' does not apply to " + type + " windows");
      };
      const auto grace = std::chrono::milliseconds(duration("grace", false));
      const bool final_only = window["emit"] && scalar(window["emit"]) == "final";
      KTable<Windowed<Json>, Json> table;
      if (type == "tumbling" || type == "hopping") {
        forbid("gap");
        const auto size = std::chrono::milliseconds(duration("size", true));
        TimeWindows windows = TimeWindows::of_size_and_grace(size, grace);
        if (type == "hopping") {
          const int64_t advance = duration("advance", true);
          if (advance > size.count())
            fail(window["advance"].Mark(), "found an advance of " + std::to_string(advance) +
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
        auto merger = [aggs](const Json&, const Json& a, const Json& b) {
          return aggs->merge(a, b);
        };
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

  std::string text_;
  std::string file_;
  const Environment& environment_;
  const Settings& overrides_;
  std::vector<std::string> lines_;
  // Learns secret values as they are read (${VAR} expansions), for the
  // errors that follow.
  mutable SecretValues secrets_;
  StreamsBuilder builder_;
  std::map<std::string, NamedStream> streams_;
  // Sources of type global_table: declared and loaded; no flow reads them yet.
  std::set<std::string> global_tables_;
  Pipeline pipeline_;
};

}  // namespace

Pipeline load_text(const std::string& text, const std::string& file_name,
                   const Environment& environment, const Settings& overrides) {
  try {
    return Loader(text, file_name, environment, overrides).load();
  } catch (const YAML::Exception& e) {
    // A YAML shape the checks above did not foresee: still one error, placed.
    throw PipelineError(Position{file_name, e.mark.line + 1, e.mark.column + 1},
                        "unexpected YAML: " + e.msg);
  }
}

Pipeline load_file(const std::string& path, const Environment& environment,
                   const Settings& overrides) {
  std::ifstream in(path);
  if (!in) throw PipelineError(Position{path, 0, 0}, "cannot read the file");
  std::stringstream text;
  text << in.rdbuf();
  return load_text(text.str(), path, environment, overrides);
}

}  // namespace rill::pipeline
