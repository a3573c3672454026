// The declaration of the pipeline format, and the reference and JSON Schema
// rendered from it.
#include "rill/pipeline/declaration.h"

#include <cctype>
#include <charconv>
#include <map>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "rill/config.h"
#include "rill/pipeline/expression.h"

#include "declaration_parts.h"

namespace rill::pipeline {
namespace {

using T = FieldType;

std::vector<FieldSpec> declare_document() {
  std::vector<FieldSpec> generator = {
      {"value", T::kValueBuilder, true,
       "The value of each record, built like `map`'s; `value.n` is the record's sequence "
       "number (0, 1, ...). `random(lo, hi)` and `pick(array)` vary it."},
      {"key", T::kExpression, false, "The key of each record. Default: null."},
      {"interval", T::kDuration, false, "Time between records.", {}, "1s"},
      {"count", T::kInteger, false, "Records to produce; 0: until stopped.", {}, "0"},
  };
  std::vector<FieldSpec> source = {
      {"topic", T::kString, true, "The Kafka topic."},
      {"key_format", T::kEnum, false, "How keys are read.", kFormats, "string"},
      {"value_format", T::kEnum, false, "How values are read.", kFormats, "json"},
      {"type",
       T::kEnum,
       false,
       "stream: every record is an event. table: the topic holds each key's latest value (a "
       "null value deletes the key), kept in a state store changelogged to "
       "`<application.id>-<source name>-changelog`; a flow from a table starts with "
       "`group_by`, and its `aggregate` follows rows as they change, move between groups and "
       "are deleted. global_table: as table, but every instance keeps the whole topic (all "
       "partitions) in a global store named after the source, restored before the "
       "instance processes anything and kept up to date; the topic is its changelog. No flow "
       "starts from a global table: a flow's join step reads it, as it reads a table.",
       {"stream", "table", "global_table"},
       "stream"},
      {"timestamp",
       T::kObject,
       false,
       "Event time, in ms since the epoch, from the record. An expression (`value.ts` or "
       "`parse_time(value.at, \"%Y-%m-%dT%H:%M:%S\")`) is short for `{expression: ...}`. "
       "It is computed as the record is read, before any step, so a filter cannot screen "
       "out records whose time is bad: `on_error` says what happens to them. Default: the "
       "record's timestamp.",
       {},
       {},
       {{"expression", T::kExpression, true, "The event time; null keeps the record's timestamp."},
        {"on_error",
         T::kEnum,
         false,
         "What happens to a record whose expression fails (a type error, a field of an "
         "array, a time that is not a number): `record_time` keeps the record with its "
         "Kafka timestamp, `skip` logs, counts and drops it, `dead_letter` sends it to "
         "`errors.dead.letter.queue.topic.name` (which must be set), `fail` stops the "
         "pipeline. Default: `processing.exception.handler` decides.",
         {"record_time", "skip", "dead_letter", "fail"}}},
       "expression"},
      {"history", T::kDuration, false,
       "A table only: keep every version of each row for this long of stream time, in a "
       "versioned store, so that a join step reads the row as it was at each record's "
       "time, not as it is when the record is processed; an update older than the table's "
       "latest row only fills in the history. Default: the latest row only."},
      {"fields", T::kStringList, false,
       "The value's fields. When given, a reference to another `value.<field>` is an error "
       "when the pipeline loads."},
      {"archive",
       T::kEnum,
       false,
       "A stream or table only: where retention deleted the topic's records, read them from "
       "the topic's archive at `archive.location` (written by `rill archive`) first, in "
       "offset order, then the topic from the archive's end, so that the source replays from "
       "the first event the topic ever held. The same as listing the topic in "
       "`archive.topics`.",
       {"true", "false"},
       "false"},
      {"partitions",
       T::kInteger,
       false,
       "Partitions of the topic when the embedded cluster creates it.",
       {},
       "1"},
      {"generator",
       T::kObject,
       false,
       "Produces sample records into the topic when the pipeline runs; for demos.",
       {},
       {},
       generator},
  };
  std::vector<FieldSpec> flow = {
      {"from", T::kStreamNames, true,
       "The stream the flow starts from: a source, a route of an earlier `branch`, or an "
       "earlier flow's `as`. A list merges several."},
      {"steps", T::kSteps, true, "The operators, applied in order."},
      {"as", T::kString, false, "Names the flow's resulting stream for later flows."},
  };
  return {
      {"application", T::kConfig, true,
       "The configuration: the keys of docs/configuration.md (`application.id` is required) "
       "and any librdkafka property. Without `bootstrap.servers`, or with `embedded`, `rill "
       "run` starts an in-process cluster that keeps nothing."},
      {"sources", T::kNamedObjects, true, "The streams read from Kafka, by name.", {}, {}, source},
      {"flows", T::kObjectList, true, "Chains of operators from a stream to sinks.", {}, {}, flow},
  };
}

std::string type_text(const FieldSpec& field) {
  switch (field.type) {
    case T::kString:
      return "string";
    case T::kInteger:
      return "integer";
    case T::kDuration:
      return "duration";
    case T::kEnum: {
      std::string values;
      for (std::string_view v : field.allowed)
        values += (values.empty() ? "" : " \\| ") + std::string(v);
      return values;
    }
    case T::kExpression:
      return "expression";
    case T::kCondition:
      return "condition";
    case T::kValueBuilder:
      return "expression or mapping";
    case T::kAggregations:
      return "mapping of aggregations";
    case T::kAggregation:
      return "aggregation";
    case T::kRoutes:
      return "mapping of conditions";
    case T::kStreamNames:
      return "stream name or list";
    case T::kStringList:
      return "list of strings";
    case T::kConfig:
      return "mapping of config keys";
    case T::kObject:
      if (!field.shorthand.empty())
        for (const FieldSpec& nested : field.fields)
          if (nested.name == field.shorthand) return type_text(nested) + " or mapping";
      return "mapping";
    case T::kNamedObjects:
      return "mapping of names to mappings";
    case T::kObjectList:
      return "list of mappings";
    case T::kSteps:
      return "list of steps";
  }
  return "";
}

void field_table(std::string& out, const std::vector<FieldSpec>& fields,
                 const std::string& prefix) {
  out += "| field | type | required | default | description |\n|---|---|---|---|---|\n";
  std::vector<std::pair<std::string, const FieldSpec*>> nested;
  for (const FieldSpec& field : fields) {
    out += "| `" + prefix + std::string(field.name) + "` | " + type_text(field) + " | " +
           (field.required ? "yes" : "no") + " | " +
           (field.default_value.empty() ? "" : "`" + std::string(field.default_value) + "`") +
           " | " + std::string(field.description) + " |\n";
    if (!field.fields.empty()) nested.emplace_back(prefix + std::string(field.name), &field);
  }
  for (const auto& [name, field] : nested) {
    out += "\nFields of `" + name + "`:\n\n";
    field_table(out, field->fields, "");
  }
}

nlohmann::json schema_of(const FieldSpec& field);

nlohmann::json object_schema(const std::vector<FieldSpec>& fields) {
  nlohmann::json schema = {{"type", "object"}, {"additionalProperties", false}};
  schema["properties"] = nlohmann::json::object();
  nlohmann::json required = nlohmann::json::array();
  for (const FieldSpec& field : fields) {
    schema["properties"][std::string(field.name)] = schema_of(field);
    if (field.required) required.push_back(std::string(field.name));
  }
  if (!required.empty()) schema["required"] = required;
  return schema;
}

nlohmann::json schema_of(const FieldSpec& field) {
  nlohmann::json schema;
  switch (field.type) {
    case T::kString:
    case T::kExpression:
    case T::kCondition:
    case T::kAggregation:
      schema = {{"type", "string"}};
      break;
    case T::kInteger:
      schema = {{"type", "integer"}};
      break;
    case T::kDuration:
      schema = {{"oneOf",
                 {{{"type", "integer"}, {"minimum", 0}, {"maximum", kMaxDurationMs}},
                  {{"type", "string"}, {"pattern", "^[0-9]+(ms|s|m|h|d)?$"}}}}};
      break;
    case T::kEnum: {
      nlohmann::json values = nlohmann::json::array();
      for (std::string_view v : field.allowed) {
        values.push_back(std::string(v));
        // YAML reads an unquoted true or false as a boolean.
        if (v == "true" || v == "false") values.push_back(v == "true");
      }
      schema = {{"enum", values}};
      break;
    }
    case T::kValueBuilder:
      schema = {{"$ref", "#/$defs/valueBuilder"}};
      break;
    case T::kAggregations:
    case T::kRoutes:
      schema = {{"type", "object"}, {"additionalProperties", {{"type", "string"}}}};
      break;
    case T::kStreamNames:
      schema = {
          {"oneOf", {{{"type", "string"}}, {{"type", "array"}, {"items", {{"type", "string"}}}}}}};
      break;
    case T::kStringList:
      schema = {{"type", "array"}, {"items", {{"type", "string"}}}};
      break;
    case T::kConfig:
      schema = {{"$ref", "#/$defs/application"}};
      break;
    case T::kObject:
      schema = object_schema(field.fields);
      for (const FieldSpec& nested : field.fields)
        if (!field.shorthand.empty() && nested.name == field.shorthand) {
          nlohmann::json scalar = schema_of(nested);
          scalar.erase("description");
          schema = {{"oneOf", {scalar, schema}}};
        }
      break;
    case T::kNamedObjects:
      schema = {{"type", "object"}, {"additionalProperties", object_schema(field.fields)}};
      break;
    case T::kObjectList:
      schema = {{"type", "array"}, {"items", object_schema(field.fields)}};
      break;
    case T::kSteps:
      schema = {{"type", "array"}, {"items", {{"$ref", "#/$defs/step"}}}};
      break;
  }
  schema["description"] = std::string(field.description);
  if (!field.default_value.empty()) schema["default"] = std::string(field.default_value);
  return schema;
}

}  // namespace

const std::vector<FieldSpec>& document_fields() {
  static const std::vector<FieldSpec> kFields = declare_document();
  return kFields;
}

int64_t parse_duration_ms(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0)
    ++digits;
  const std::string_view unit = text.substr(digits);
  static const std::map<std::string_view, int64_t> kUnits = {
      {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
  const auto it = kUnits.find(unit);
  if (digits == 0 || it == kUnits.end())
    throw std::invalid_argument("found '" + std::string(text) +
                                "', expected a duration such as 500ms, 30s, 5m, 1h or 1d");
  int64_t count = 0;
  if (std::from_chars(text.data(), text.data() + digits, count).ec != std::errc() ||
      count > kMaxDurationMs / it->second)
    throw std::invalid_argument("found '" + std::string(text) +
                                "', expected a duration of at most " +
                                std::to_string(kMaxDurationDays) + "d (100 years)");
  return count * it->second;
}

std::string reference_markdown() {
  std::string out =
      "# Pipeline reference\n\n"
      "A pipeline file describes a rill application in YAML: its configuration, the topics it\n"
      "reads, and flows of operators that end in sinks. `rill run FILE` runs it,\n"
      "`rill validate FILE` checks it, `rill describe FILE` prints its topology. This page is\n"
      "rendered from the declarations in `framework/pipeline/src/` (`declaration.cpp`, and\n"
      "`operator_table.cpp` for the operators), as is the JSON Schema\n"
      "`config/schema/rill-pipeline.schema.json` (point your editor at it); a unit\n"
      "test fails when they differ (`RILL_UPDATE_DOCS=1 build/tests/rill_unit_tests\n"
      "\"[pipeline-doc]\"` rewrites both).\n\n"
      "```yaml\n"
      "application:\n"
      "  application.id: word-count\n"
      "  bootstrap.servers: ${KAFKA_BOOTSTRAP:-embedded}\n"
      "sources:\n"
      "  lines: {topic: lines, value_format: string}\n"
      "flows:\n"
      "  - from: lines\n"
      "    steps:\n"
      "      - flat_map: {split: lower(value)}\n"
      "      - group_by: value\n"
      "      - aggregate: count()\n"
      "      - to: word-counts\n"
      "```\n\n"
      "`rill describe --format dot` draws the topology a pipeline becomes; for\n"
      "`config/pipelines/word-count.yaml` (`rill describe --format dot "
      "config/pipelines/word-count.yaml | dot -Tsvg`):\n\n"
      "![The topology of the word-count example](word-count-pipeline.svg)\n\n"
      "Grouping by a new key goes through a repartition topic, so the count runs in a second\n"
      "sub-topology, on a store changelogged to Kafka.\n\n"
      "`${NAME}` in any value is replaced by the environment variable NAME (an error when it\n"
      "is unset), `${NAME:-default}` by its value or the default. The values of secret keys\n"
      "(docs/configuration.md), and of variables with secret names such as `SASL_PASSWORD`,\n"
      "are never logged nor quoted in errors: they show as `*****`.\n\n"
      "A duration is a whole number with a unit, `500ms`, `30s`, `5m`, `1h` or `1d`, or a\n"
      "number of milliseconds; at most `" +
      std::to_string(kMaxDurationDays) +
      "d` (100 years).\n\n"
      "## Sections\n\n";
  field_table(out, document_fields(), "");
  out +=
      "\n## Formats\n\n"
      "- `json`: JSON text; null is a tombstone.\n"
      "- `string`: UTF-8 text as a string; written values that are not strings are written as\n"
      "  JSON text.\n"
      "- `bytes`: the raw bytes, as a string.\n"
      "- `int64`: 8 big-endian bytes (Kafka's LongSerializer), as a number.\n\n"
      "## Bad records\n\n"
      "A record that does not parse in its source's format goes to\n"
      "`deserialization.exception.handler`; one whose expression fails (a type error, a\n"
      "field of an array, a number beyond 64 bits) to `processing.exception.handler`. Both\n"
      "default to `log-and-fail`, as in Kafka Streams: the first such record stops the\n"
      "pipeline, which then stops at it again on every restart. A pipeline that reads data\n"
      "it does not control should set such records aside in a dead-letter topic, with\n"
      "headers naming the error, topic, partition and offset:\n\n"
      "```yaml\n"
      "application:\n"
      "  deserialization.exception.handler: dead-letter\n"
      "  processing.exception.handler: dead-letter\n"
      "  errors.dead.letter.queue.topic.name: orders-dead-letters\n"
      "```\n\n"
      "`log-and-continue` logs, counts and skips them instead. A source's `timestamp` is\n"
      "computed before any step, so no filter can screen out a record whose time is bad:\n"
      "its `on_error` chooses for those records alone (`record_time`, `skip`,\n"
      "`dead_letter`, `fail`). `rill validate` points here while a pipeline stops at the\n"
      "first bad record.\n\n"
      "## Steps\n\n"
      "Each step is a mapping with one operator; an operator with a shorthand field also\n"
      "takes that field's value directly (`- filter: value.ok`), and one with no required\n"
      "field may be written alone (`- stdout`).\n";
  for (const OperatorSpec& op : operators()) {
    out += "\n### " + std::string(op.name) + "\n\n" + std::string(op.description) + "\n";
    if (!op.shorthand.empty())
      out += "\nShorthand: `" + std::string(op.name) + ": <" + std::string(op.shorthand) + ">`.\n";
    out += "\n";
    field_table(out, op.fields, "");
    out += "\n```yaml\n" + std::string(op.example) + "\n```\n";
  }
  out +=
      "\n## Expressions\n\n"
      "Names: `key`, `value`, `timestamp` (event time, ms since the epoch) and `headers`\n"
      "(`headers.trace` is the last header `trace`, as a string); in a join's `value`, also\n"
      "`left` (the record's value) and `right` (the row joined to it). `value.user.id` reads\n"
      "nested fields, `value.items[0]` and `value[\"odd name\"]` index. A missing field, and\n"
      "a field of null, is null; a field of an array, a string or a number is an error (see\n"
      "Bad records), as the data is not what the pipeline expects: `value.items[0].id`\n"
      "reads into an array. Literals: numbers (`42`, `2.5`), strings (`\"a\"` or `'a'`),\n"
      "`true`, `false`, `null`, arrays (`[1, 2]`).\n\n"
      "Operators, loosest first: `??` (the left side unless it is null); `or` `||`; `and`\n"
      "`&&`; `not` `!`; `==` `!=`; `<` `<=` `>` `>=`; `+` `-`; `*` `/` `%`; unary `-`.\n"
      "Arithmetic on integers stays integral except `/`; `+` also joins two strings.\n"
      "Arithmetic and ordering with a null operand give null, and a condition that is null\n"
      "counts as false. Types known when the pipeline loads are checked then; a type error\n"
      "on a record sends that record to `processing.exception.handler`, and so does integer\n"
      "arithmetic whose result does not fit in 64 bits (`x % -1` is 0; `/` computes in\n"
      "floating point). Number literals must fit too: integers in 64 bits, others in a\n"
      "double.\n\n"
      "An expression nests at most " +
      std::to_string(kMaxExpressionDepth) +
      " levels deep: each pair of parentheses or brackets,\n"
      "each function call and each operator counts a level, including each link of a chain\n"
      "such as `a or b or c`. For a long list of alternatives, use `contains([...], x)`.\n\n"
      "| function | description |\n|---|---|\n";
  for (const FunctionDoc& f : function_docs())
    out += "| `" + std::string(f.signature) + "` | " + std::string(f.description) + " |\n";
  return out;
}

std::string json_schema() {
  nlohmann::json schema = object_schema(document_fields());
  schema["$schema"] = "https://json-schema.org/draft/2020-12/schema";
  schema["$id"] = "https://rill.invalid/schema/rill-pipeline.schema.json";
  schema["title"] = "rill pipeline";
  nlohmann::json application = {
      {"type", "object"},
      {"required", {"application.id"}},
      {"additionalProperties", {{"type", {"string", "number", "boolean"}}}}};
  application["properties"] = nlohmann::json::object();
  for (const ConfigKey& key : config_keys())
    application["properties"][std::string(key.name)] = {
        {"type", {"string", "number", "boolean"}}, {"description", std::string(key.description)}};
  nlohmann::json value_builder = {
      {"oneOf",
       {{{"type", "string"}},
        {{"type", "object"}, {"additionalProperties", {{"$ref", "#/$defs/valueBuilder"}}}}}}};
  nlohmann::json steps = nlohmann::json::array();
  for (const OperatorSpec& op : operators()) {
    nlohmann::json fields = object_schema(op.fields);
    nlohmann::json body = fields;
    if (!op.shorthand.empty()) {
      for (const FieldSpec& field : op.fields)
        if (field.name == op.shorthand) body = {{"oneOf", {schema_of(field), fields}}};
    }
    steps.push_back({{"type", "object"},
                     {"description", std::string(op.description)},
                     {"required", {std::string(op.name)}},
                     {"additionalProperties", false},
                     {"properties", {{std::string(op.name), body}}}});
    bool any_required = false;
    for (const FieldSpec& field : op.fields) any_required = any_required || field.required;
    if (!any_required) steps.push_back({{"const", std::string(op.name)}});
  }
  schema["$defs"] = {
      {"application", application}, {"valueBuilder", value_builder}, {"step", {{"oneOf", steps}}}};
  return schema.dump(2) + "\n";
}

}  // namespace rill::pipeline
