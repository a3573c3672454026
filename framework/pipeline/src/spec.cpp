#include "spec.h"

#include <algorithm>
#include <set>

#include "rill/pipeline/declaration.h"

#include "kafka/handles.h"
#include "operator_table.h"
#include "suggest.h"

namespace rill::pipeline {
namespace {

class SpecReader {
 public:
  SpecReader(const Document& document, const Settings& overrides)
      : document_(document), overrides_(overrides) {}

  PipelineSpec read() {
    YAML::Node root;
    try {
      root = YAML::Load(document_.text());
    } catch (const YAML::ParserException& e) {
      document_.fail(e.mark, "invalid YAML: " + e.msg);
    }
    if (!root.IsMap())
      document_.fail(root.Mark(), "found " + describe_node(root) +
                                      ", expected a mapping with application, sources and flows");
    spec_.mark = root.Mark();
    check_fields(root, document_fields(), "the pipeline");
    load_application(root["application"]);
    const YAML::Node sources = root["sources"];
    for (auto it = sources.begin(); it != sources.end(); ++it)
      spec_.sources.push_back(SourceSpec{it->first, it->second, as_fields(it->second)});
    const YAML::Node flows = root["flows"];
    for (std::size_t i = 0; i < flows.size(); ++i) {
      const YAML::Node flow = flows[i];
      FlowSpec& read = spec_.flows.emplace_back(FlowSpec{flow["from"], {}, flow["as"]});
      const YAML::Node steps = flow["steps"];
      for (std::size_t j = 0; j < steps.size(); ++j) read.steps.push_back(parse_step(steps[j]));
    }
    return std::move(spec_);
  }

 private:
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
  // --- checking against the declaration ---------------------------------------

  // A name given twice in one mapping: YAML parsers keep one of them silently.
  void check_unique_keys(const YAML::Node& mapping, const std::string& where) const {
    std::set<std::string> seen;
    for (auto it = mapping.begin(); it != mapping.end(); ++it)
      if (it->first.IsScalar() && !seen.insert(it->first.Scalar()).second)
        document_.fail(it->first.Mark(), "'" + it->first.Scalar() + "' appears twice in " + where);
  }

  void check_value(const YAML::Node& value, const FieldSpec& field, const std::string& where) {
    const std::string what = "'" + std::string(field.name) + "' in " + where;
    if (value.IsMap()) check_unique_keys(value, what);
    auto wrong = [&] {
      document_.fail(value.Mark(), what + ": found " + describe_node(value) + ", expected " +
                                       kind_expected(field));
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
        document_.parse_integer(value);
        break;
      case FieldType::kDuration:
        if (!value.IsScalar()) wrong();
        document_.parse_duration(value);
        break;
      case FieldType::kEnum: {
        if (!value.IsScalar()) wrong();
        const std::string text = document_.scalar(value);
        if (std::find(field.allowed.begin(), field.allowed.end(), text) == field.allowed.end())
          document_.fail(value.Mark(), what + ": found '" + text + "', expected one of " +
                                           list_names(field.allowed) +
                                           suggestion(text, field.allowed));
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
            document_.fail(it->second.Mark(), "'" + it->first.Scalar() + "' in " + what +
                                                  ": found " + describe_node(it->second) +
                                                  ", expected a single value");
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
            document_.fail(it->second.Mark(), "'" + it->first.Scalar() + "' in " + what +
                                                  ": found " + describe_node(it->second) +
                                                  ", expected a mapping");
          check_fields(it->second, field.fields, "'" + it->first.Scalar() + "'");
        }
        break;
      case FieldType::kObjectList:
        if (!value.IsSequence() || value.size() == 0) wrong();
        for (std::size_t i = 0; i < value.size(); ++i) {
          if (!value[i].IsMap())
            document_.fail(value[i].Mark(), "item " + std::to_string(i + 1) + " of " + what +
                                                ": found " + describe_node(value[i]) +
                                                ", expected a mapping");
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
        document_.fail(it->first.Mark(), "found " + describe_node(it->first) +
                                             " as a field name in " + where + ", expected one of " +
                                             list_names(names));
      const std::string name = it->first.Scalar();
      if (!seen.insert(name).second)
        document_.fail(it->first.Mark(), "field '" + name + "' appears twice in " + where);
      auto spec = std::find_if(fields.begin(), fields.end(),
                               [&](const FieldSpec& f) { return f.name == name; });
      if (spec == fields.end())
        document_.fail(it->first.Mark(), "unknown field '" + name + "' in " + where +
                                             ", expected one of " + list_names(names) +
                                             suggestion(name, names));
      if (it->second.IsNull() && spec->required)
        document_.fail(it->second.Mark(), "'" + name + "' in " + where +
                                              ": found nothing, expected " + kind_expected(*spec));
      if (!it->second.IsNull()) check_value(it->second, *spec, where);
    }
    for (const FieldSpec& field : fields)
      if (field.required && !seen.contains(std::string(field.name)))
        document_.fail(node.Mark(), "missing field '" + std::string(field.name) + "' in " + where +
                                        ", expected " + kind_expected(field));
  }

  // --- the application section -----------------------------------------------

  void load_application(const YAML::Node& node) {
    std::map<std::string, std::string> settings;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const std::string key = it->first.Scalar();
      const std::string value = document_.scalar(it->second);
      if (is_secret_key(key)) document_.secrets().add(value);
      if (!runs_embedded(key, value)) {
        if (is_declared_key(key)) {
          try {
            StreamsConfig::check_value(key, value);
          } catch (const ConfigError& e) {
            document_.fail(it->second.Mark(), e.what());
          }
        } else {
          check_librdkafka_property(it->first, key, value, it->second);
        }
      }
      settings[key] = value;
      if (key == config::kDeadLetterTopic && !value.empty())
        spec_.topics.push_back(TopicUse{value, document_.position(it->second.Mark()), false});
    }
    for (const auto& [key, value] : overrides_) {
      if (is_secret_key(key)) document_.secrets().add(value);
      check_override(key, value);
      if (key == config::kDeadLetterTopic) {
        // The file's dead-letter topic, if any, is no longer written.
        if (auto file_topic = settings.find(key); file_topic != settings.end())
          std::erase_if(spec_.topics, [&](const TopicUse& use) {
            return !use.source && use.topic == file_topic->second;
          });
        if (!value.empty())
          spec_.topics.push_back(TopicUse{value, Position{document_.file(), 0, 0}, false});
      }
      settings[key] = value;
    }
    for (const auto& [key, value] : settings) {
      if (runs_embedded(key, value))
        spec_.embedded = true;
      else
        spec_.config.set(key, value);
    }
    if (!spec_.config.contains(config::kBootstrapServers)) spec_.embedded = true;
    StreamsConfig whole = spec_.config;
    if (spec_.embedded) whole.set(std::string(config::kBootstrapServers), "embedded");
    try {
      whole.validate();
    } catch (const ConfigError& e) {
      document_.fail(node.Mark(), e.what());
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
      throw ConfigError(document_.secrets().mask("--set " + key + "=" +
                                                 (show_value ? value : "*****") + ": " + why));
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
      document_.secrets().hide_rest_of_line(mark.line + 1, mark.column + 1);
      document_.secrets().add(value);
      document_.fail(key_node.Mark(), unknown_key_message(key, " in application"));
    }
    if (result == kafka::PropertyCheck::kInvalid)
      // librdkafka's message may quote the value.
      document_.fail(value_node.Mark(),
                     "configuration key '" + key +
                         "': " + (is_secret_key(key) ? std::string("invalid value") : error));
  }

  static Fields as_fields(const YAML::Node& node) {
    Fields result;
    result.mark = node.Mark();
    for (auto it = node.begin(); it != node.end(); ++it)
      if (!it->second.IsNull()) result.fields.emplace(it->first.Scalar(), it->second);
    return result;
  }

  // --- steps -----------------------------------------------------------------

  StepSpec parse_step(const YAML::Node& node) {
    std::vector<std::string_view> names;
    for (const Operator& op : operator_table()) names.push_back(op.declaration.name);
    StepSpec step;
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
      document_.fail(node.Mark(), "found a step with " + std::to_string(node.size()) +
                                      " operators (" + keys + "), expected one operator per step");
    } else {
      document_.fail(node.Mark(), "found " + describe_node(node) +
                                      " as a step, expected an operator: " + list_names(names));
    }
    const std::string name = name_node.Scalar();
    step.op = operator_named(name);
    if (step.op == nullptr)
      document_.fail(name_node.Mark(), "unknown operator '" + name + "', expected one of " +
                                           list_names(names) + suggestion(name, names));
    const OperatorSpec& declaration = step.op->declaration;
    const std::string where = "'" + name + "'";
    const bool as_fields_mapping = args.IsMap() && (!shorthand_takes_mapping(declaration) ||
                                                    looks_like_fields(declaration, args));
    if (!args.IsDefined() || args.IsNull()) {
      for (const FieldSpec& field : declaration.fields)
        if (field.required)
          document_.fail(name_node.Mark(), "missing field '" + std::string(field.name) + "' in " +
                                               where + ", expected " + kind_expected(field));
    } else if (as_fields_mapping) {
      check_fields(args, declaration.fields, where);
      for (auto it = args.begin(); it != args.end(); ++it)
        if (!it->second.IsNull()) step.fields.emplace(it->first.Scalar(), it->second);
    } else if (!declaration.shorthand.empty()) {
      for (const FieldSpec& field : declaration.fields) {
        if (field.name == declaration.shorthand) {
          check_value(args, field, where);
        } else if (field.required) {
          document_.fail(args.Mark(), "missing field '" + std::string(field.name) + "' in " +
                                          where + ", expected " + kind_expected(field));
        }
      }
      step.fields.emplace(std::string(declaration.shorthand), args);
    } else {
      document_.fail(args.Mark(), where + ": found " + describe_node(args) +
                                      ", expected a mapping of its fields");
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

  const Document& document_;
  const Settings& overrides_;
  PipelineSpec spec_;
};

}  // namespace

PipelineSpec read_spec(const Document& document, const Settings& overrides) {
  return SpecReader(document, overrides).read();
}

}  // namespace rill::pipeline
