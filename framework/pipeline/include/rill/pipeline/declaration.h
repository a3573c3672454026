// The one declaration of the pipeline format: its sections, the operators
// and every field with its type and meaning. The loader validates against
// it, and docs/yaml-reference.md and the JSON Schema
// (config/schema/rill-pipeline.schema.json) are rendered from it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rill::pipeline {

// The longest duration a pipeline may give: far beyond any window or interval,
// and far enough from the 64-bit limit that windows can add durations to
// timestamps and to each other.
inline constexpr int64_t kMaxDurationDays = 36500;  // 100 years
inline constexpr int64_t kMaxDurationMs = kMaxDurationDays * 86'400'000;

// A kDuration as pipelines and the `rill` command's options write it: digits,
// then ms, s, m, h, d or nothing (milliseconds). Throws std::invalid_argument
// saying what was found and what was expected.
int64_t parse_duration_ms(std::string_view text);

enum class FieldType {
  kString,
  kInteger,
  // 500ms, 30s, 5m, 1h, 1d, or a number of milliseconds; at most kMaxDurationDays.
  kDuration,
  // One of FieldSpec::allowed.
  kEnum,
  // An expression giving a value.
  kExpression,
  // An expression giving a boolean.
  kCondition,
  // An expression, or a mapping of names to values built the same way: an object.
  kValueBuilder,
  // A mapping of names to aggregations: `total: sum(value.amount)`.
  kAggregations,
  // An aggregation: `count()`, `sum(value.amount)`.
  kAggregation,
  // A mapping of names to conditions.
  kRoutes,
  // A stream name, or a list of them.
  kStreamNames,
  kStringList,
  // Configuration keys and values (docs/configuration.md, plus librdkafka's).
  kConfig,
  // A mapping with the fields of FieldSpec::fields.
  kObject,
  // A mapping of names to objects with the fields of FieldSpec::fields.
  kNamedObjects,
  // A list of objects with the fields of FieldSpec::fields.
  kObjectList,
  // A list of steps, each one operator (see operators()).
  kSteps,
};

struct FieldSpec {
  std::string_view name;
  FieldType type;
  bool required;
  std::string_view description;
  std::vector<std::string_view> allowed = {};
  std::string_view default_value = {};
  std::vector<FieldSpec> fields = {};
  // kObject: the field of `fields` a scalar sets (`timestamp: value.ts` is
  // `timestamp: {expression: value.ts}`); empty when a scalar is refused.
  std::string_view shorthand = {};
};

struct OperatorSpec {
  std::string_view name;
  std::string_view description;
  // The field a scalar sets: `filter: value.amount > 10` is
  // `filter: {if: value.amount > 10}`. Empty when the operator takes none.
  std::string_view shorthand;
  std::vector<FieldSpec> fields;
  std::string_view example;
};

// The top-level sections of a pipeline file.
const std::vector<FieldSpec>& document_fields();
// Every operator a step may use, in the order of the reference.
const std::vector<OperatorSpec>& operators();

// docs/yaml-reference.md.
std::string reference_markdown();
// config/schema/rill-pipeline.schema.json.
std::string json_schema();

}  // namespace rill::pipeline
