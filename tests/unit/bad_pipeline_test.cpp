// Bad pipelines, as data: each case is a pipeline file with one mistake, the
// line and column the error must name, and a fragment of its message. The
// loader must report exactly one error there, never crash.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "rill/pipeline/pipeline.h"

namespace {

struct BadPipeline {
  const char* what;
  std::string yaml;
  int line;
  int column;
  std::string message;
};

// Lines 1-6 of most cases; the mistake comes after.
const std::string kHead =
    "application:\n"           // 1
    "  application.id: app\n"  // 2
    "sources:\n"               // 3
    "  in: {topic: input}\n"   // 4
    "flows:\n"                 // 5
    "  - from: in\n";          // 6

std::string with_steps(const std::string& steps) {
  return kHead + "    steps:\n" + steps;
}

const std::vector<BadPipeline> kCases = {
    {"flow from a global table",
     "application: {application.id: app}\nsources:\n  g: {topic: g, type: global_table}\nflows:\n"
     "  - from: g\n    steps: [stdout]\n",
     5, 11, "'g' is a global table, expected a stream or a table"},
    {"timestamp on a global table",
     "application: {application.id: app}\nsources:\n  g:\n    topic: g\n    type: global_table\n"
     "    timestamp: value.ts\n  in: {topic: in}\nflows:\n  - from: in\n    steps: [stdout]\n",
     6, 16, "found a timestamp on a global_table"},
    {"history on a stream",
     "application: {application.id: app}\nsources:\n  in:\n    topic: in\n    history: 1d\n"
     "flows:\n  - from: in\n    steps: [stdout]\n",
     5, 14, "found history on a stream, expected it on a table only"},
    {"step other than group_by on a table",
     "application: {application.id: app}\nsources:\n  t: {topic: t, type: table}\nflows:\n"
     "  - from: t\n    steps: [stdout]\n",
     6, 13, "found 'stdout' on table 't', expected group_by"},
    {"aggregation that cannot subtract after a table's group_by",
     "application: {application.id: app}\nsources:\n  t: {topic: t, type: table}\nflows:\n"
     "  - from: t\n    steps:\n      - group_by: value.g\n      - aggregate: max(value.x)\n",
     8, 20, "found max() after a table's group_by, expected count(), sum(x) or avg(x)"},
    {"window after a table's group_by",
     "application: {application.id: app}\nsources:\n  t: {topic: t, type: table}\nflows:\n"
     "  - from: t\n    steps:\n      - group_by: value.g\n      - aggregate:\n"
     "          value: count()\n          window: {type: tumbling, size: 1m}\n",
     10, 19, "found a window after a table's group_by"},
    {"partition count beyond Kafka's int32",
     "application: {application.id: app}\nsources:\n  in: {topic: t, partitions: 4294967297}\n"
     "flows:\n  - from: in\n    steps: [stdout]\n",
     3, 30, "found 4294967297 partitions, expected 1 to 2147483647"},
    {"no partitions",
     "application: {application.id: app}\nsources:\n  in: {topic: t, partitions: 0}\n"
     "flows:\n  - from: in\n    steps: [stdout]\n",
     3, 30, "found 0 partitions, expected 1 to 2147483647"},
    {"invalid YAML", "application: {application.id: app\nsources: x\n", 2, 8, "invalid YAML"},
    {"not a mapping", "- just\n- a list\n", 1, 1, "found a list, expected a mapping"},
    {"unknown top-level section", kHead + "    steps: [stdout]\nsinks: {}\n", 8, 1,
     "unknown field 'sinks' in the pipeline"},
    {"missing sources",
     "application: {application.id: app}\nflows:\n  - from: in\n    steps: [stdout]\n", 1, 1,
     "missing field 'sources'"},
    {"missing application.id",
     "application:\n  num.stream.threads: 2\nsources:\n  in: {topic: t}\nflows:\n  - from: in\n"
     "    steps: [stdout]\n",
     2, 3, "config 'application.id' is required"},
    {"config value of the wrong type",
     "application:\n  application.id: app\n  num.stream.threads: many\nsources:\n  in: {topic: "
     "t}\nflows:\n  - from: in\n    steps: [stdout]\n",
     3, 23, "config 'num.stream.threads': invalid value 'many', expected an integer"},
    {"misspelt config key",
     "application:\n  application.id: app\n  comit.interval.ms: 100\nsources:\n  in: {topic: "
     "t}\nflows:\n  - from: in\n    steps: [stdout]\n",
     3, 3, "did you mean 'commit.interval.ms'?"},
    {"bad enum config value",
     "application:\n  application.id: app\n  processing.guarantee: exactly_once\nsources:\n  in: "
     "{topic: t}\nflows:\n  - from: in\n    steps: [stdout]\n",
     3, 25, "expected one of at_least_once exactly_once_v2"},
    {"dead-letter handler without a topic",
     "application:\n  application.id: app\n  deserialization.exception.handler: "
     "dead-letter\nsources:\n  in: {topic: t}\nflows:\n  - from: in\n    steps: [stdout]\n",
     2, 3, "errors.dead.letter.queue.topic.name' is required"},
    {"dead_letter timestamps without a topic",
     "application: {application.id: app}\nsources:\n  in:\n    topic: t\n    timestamp: "
     "{expression: value.at, on_error: dead_letter}\nflows:\n  - from: in\n    steps: [stdout]\n",
     5, 49, "expected 'errors.dead.letter.queue.topic.name' in application"},
    {"unknown timestamp on_error",
     "application: {application.id: app}\nsources:\n  in:\n    topic: t\n    timestamp: "
     "{expression: value.at, on_error: dead_leter}\nflows:\n  - from: in\n    steps: [stdout]\n",
     5, 49, "did you mean 'dead_letter'?"},
    {"timestamp mapping without its expression",
     "application: {application.id: app}\nsources:\n  in:\n    topic: t\n    timestamp: "
     "{on_error: skip}\nflows:\n  - from: in\n    steps: [stdout]\n",
     5, 16, "missing field 'expression'"},
    {"source without a topic",
     "application: {application.id: app}\nsources:\n  in: {value_format: json}\nflows:\n  - "
     "from: in\n    steps: [stdout]\n",
     3, 7, "missing field 'topic' in 'in'"},
    {"unknown source field",
     "application: {application.id: app}\nsources:\n  in: {topic: t, formt: json}\nflows:\n  - "
     "from: in\n    steps: [stdout]\n",
     3, 18, "unknown field 'formt' in 'in'"},
    {"unknown value format",
     "application: {application.id: app}\nsources:\n  in: {topic: t, value_format: avro}\nflows:\n"
     "  - from: in\n    steps: [stdout]\n",
     3, 32, "found 'avro', expected one of json, string, bytes, int64"},
    {"source that is not a mapping",
     "application: {application.id: app}\nsources:\n  in: input\nflows:\n  - from: in\n    "
     "steps: [stdout]\n",
     3, 7, "found 'input', expected a mapping"},
    {"unknown stream in from",
     "application: {application.id: app}\nsources:\n  in: {topic: t}\nflows:\n  - from: inn\n"
     "    steps: [stdout]\n",
     5, 11,
     "unknown stream 'inn', expected a source, a branch route or an earlier flow's 'as': in; did "
     "you mean 'in'?"},
    {"flow without steps", kHead, 6, 5, "missing field 'steps'"},
    {"steps that are not a list", kHead + "    steps: stdout\n", 7, 12, "expected a list of steps"},
    {"unknown operator", with_steps("      - fliter: value.x > 1\n"), 8, 9,
     "unknown operator 'fliter'"},
    {"two operators in one step", with_steps("      - filter: value.x > 1\n        map: value\n"),
     8, 9, "expected one operator per step"},
    {"unknown operator field", with_steps("      - to: {topic: out, format: json}\n"), 8, 26,
     "unknown field 'format' in 'to'"},
    {"missing topic of to", with_steps("      - to: {value_format: json}\n"), 8, 13,
     "missing field 'topic' in 'to'"},
    {"wrong field type", with_steps("      - to: {topic: [a, b]}\n"), 8, 21,
     "found a list, expected a string"},
    {"bad expression", with_steps("      - filter: value.amount >\n"), 8, 31,
     "bad expression: expected a value"},
    {"expression nested too deeply",
     with_steps("      - filter: " + std::string(10000, '(') + "true\n"), 8, 17 + 255,
     "bad expression: the expression nests more than 256 levels deep"},
    {"expression with a long chain of operators",
     with_steps("      - filter: true" +
                [] {
                  std::string chain;
                  for (int i = 0; i < 100000; ++i) chain += " and true";
                  return chain;
                }() +
                "\n"),
     8, 22 + 9 * 255, "nests more than 256 levels deep"},
    {"number literal beyond a double", with_steps("      - filter: value.x > 1e999\n"), 8, 27,
     "bad expression: number 1e999 is out of the range of 64-bit floating-point numbers"},
    {"integer literal beyond 64 bits",
     with_steps("      - filter: value.x > 99999999999999999999\n"), 8, 27,
     "bad expression: number 99999999999999999999 does not fit in 64 bits"},
    {"bad expression in quotes", with_steps("      - filter: \"value.x == 'a\"\n"), 8, 29,
     "unterminated string"},
    {"assignment instead of comparison", with_steps("      - filter: value.x = 1\n"), 8, 25,
     "expected '==' to compare"},
    {"unknown name in an expression", with_steps("      - map: {user: usr.id}\n"), 8, 21,
     "unknown name 'usr'"},
    {"unknown function", with_steps("      - map: {user: lowercase(value.user)}\n"), 8, 21,
     "unknown function 'lowercase'"},
    {"filter that is not a condition", with_steps("      - filter: value.amount * 2\n"), 8, 17,
     "expected a condition"},
    {"type error known at load time", with_steps("      - filter: lower(value.a) > 3\n"), 8, 32,
     "compares two numbers or two strings, found a string and a number"},
    {"unknown field reference",
     "application: {application.id: app}\nsources:\n  in: {topic: t, fields: [user, amount]}\n"
     "flows:\n  - from: in\n    steps:\n      - filter: value.amout > 1\n",
     7, 23, "unknown field 'value.amout', expected one of: amount, user"},
    {"unknown field after a map",
     with_steps("      - map: {total: value.a + value.b}\n      - filter: value.totl > 1\n"), 9, 23,
     "unknown field 'value.totl', expected one of: total"},
    {"aggregate without group_by", with_steps("      - aggregate: count()\n"), 8, 9,
     "found aggregate without a group_by"},
    {"group_by without aggregate", with_steps("      - group_by: value.user\n      - stdout\n"), 9,
     9, "found 'stdout' after group_by, expected aggregate"},
    {"group_by at the end", with_steps("      - group_by: value.user\n"), 8, 9,
     "expected an aggregate step after it"},
    {"unknown aggregation",
     with_steps("      - group_by: key\n      - aggregate: {value: total(value.x)}\n"), 9, 28,
     "found 'total', expected an aggregation"},
    {"aggregation with a bad argument",
     with_steps("      - group_by: key\n      - aggregate: {value: sum(value.x +)}\n"), 9, 41,
     "bad aggregation"},
    {"table group_by reading the timestamp",
     "application: {application.id: app}\nsources:\n  rows: {topic: t, type: table}\nflows:\n"
     "  - from: rows\n    steps:\n      - group_by: timestamp\n      - aggregate: {value: "
     "count()}\n      - stdout\n",
     7, 19, "a table's group_by sees a row's key and value only"},
    {"aggregate with value and fields",
     with_steps(
         "      - group_by: key\n      - aggregate: {value: count(), fields: {n: count()}}\n"),
     9, 9, "expected exactly one of them"},
    {"unknown window type",
     with_steps("      - group_by: key\n      - aggregate:\n          value: count()\n"
                "          window: {type: rolling, size: 1m}\n"),
     11, 26, "found 'rolling', expected one of tumbling, hopping, sliding, session"},
    {"bad duration",
     with_steps("      - group_by: key\n      - aggregate:\n          value: count()\n"
                "          window: {type: tumbling, size: 1 minute}\n"),
     11, 42, "found '1 minute', expected a duration"},
    {"duration whose milliseconds overflow 64 bits",
     with_steps("      - group_by: key\n      - aggregate:\n          value: count()\n"
                "          window: {type: tumbling, size: 213503982335d}\n"),
     11, 42, "found '213503982335d', expected a duration of at most 36500d (100 years)"},
    {"duration beyond 64 bits",
     with_steps("      - group_by: key\n      - aggregate:\n          value: count()\n"
                "          window: {type: tumbling, size: 1m, grace: 99999999999999999999ms}\n"),
     11, 53, "expected a duration of at most 36500d"},
    {"duration beyond the largest",
     with_steps("      - group_by: key\n      - aggregate:\n          value: count()\n"
                "          window: {type: session, gap: 36501d}\n"),
     11, 40, "found '36501d', expected a duration of at most 36500d"},
    {"generator interval beyond the largest duration",
     "application: {application.id: app}\nsources:\n  in:\n    topic: t\n    generator:\n"
     "      value: value.n\n      interval: 876001h\nflows:\n  - from: in\n    steps: [stdout]\n",
     7, 17, "found '876001h', expected a duration of at most 36500d"},
    {"tumbling window without size",
     with_steps("      - group_by: key\n      - aggregate:\n          value: count()\n"
                "          window: {type: tumbling}\n"),
     11, 19, "missing field 'size' in tumbling window"},
    {"hopping advance larger than the size",
     with_steps("      - group_by: key\n      - aggregate:\n          value: count()\n"
                "          window: {type: hopping, size: 1m, advance: 2m}\n"),
     11, 54, "expected at most the size"},
    {"session window with a size",
     with_steps("      - group_by: key\n      - aggregate:\n          value: count()\n"
                "          window: {type: session, gap: 1m, size: 5m}\n"),
     11, 50, "'size' does not apply to session windows"},
    {"step after branch",
     with_steps("      - branch: {routes: {a: value.x > 1}}\n      - stdout\n"), 9, 9,
     "found a step after 'branch'"},
    {"route name used twice", with_steps("      - branch: {routes: {in: value.x > 1}}\n"), 8, 27,
     "stream 'in' is defined twice"},
    {"flat_map with both explode and split",
     with_steps("      - flat_map: {explode: value.items, split: value.text}\n"), 8, 9,
     "found both 'explode' and 'split'"},
    {"unset environment variable",
     "application:\n  application.id: ${APP_NAME}\nsources:\n  in: {topic: t}\nflows:\n  - from: "
     "in\n    steps: [stdout]\n",
     2, 19, "environment variable 'APP_NAME' is not set"},
    {"duplicate field", with_steps("      - to: {topic: a, topic: b}\n"), 8, 24,
     "field 'topic' appears twice"},
    {"expression in a block scalar",
     with_steps("      - filter: |\n          value.a > 1 and\n          value.b >\n"), 10, 20,
     "expected a value"},
    {"operator given a list", with_steps("      - filter: [value.a]\n"), 8, 17,
     "found a list, expected a condition"},
    {"aggregation named twice",
     with_steps("      - group_by: key\n      - aggregate:\n          fields: {n: count(), n: "
                "sum(value.x)}\n"),
     10, 32, "'n' appears twice in 'fields' in 'aggregate'"},
    {"source named twice",
     "application: {application.id: app}\nsources:\n  in: {topic: a}\n  in: {topic: b}\n"
     "flows:\n  - from: in\n    steps: [stdout]\n",
     4, 3, "'in' appears twice in 'sources'"},
    {"timestamp that is not a number",
     "application: {application.id: app}\nsources:\n  in: {topic: a, timestamp: lower(value.at)}"
     "\nflows:\n  - from: in\n    steps: [stdout]\n",
     3, 29, "expected a time in ms since the epoch"},
    {"operator without its required field", with_steps("      - branch\n"), 8, 9,
     "missing field 'routes' in 'branch'"},
    {"merge of an unknown stream", with_steps("      - merge: [others]\n"), 8, 17,
     "unknown stream 'others'"},
    {"join with an unknown stream", with_steps("      - join: {with: clients, value: right}\n"), 8,
     22,
     "unknown stream or table 'clients', expected a stream or a source of type table or "
     "global_table: in"},
    {"join with a stream without a window", with_steps("      - join: {with: in, value: right}\n"),
     8, 9, "a join with stream 'in' needs a window"},
    {"join with a table given a window",
     "application: {application.id: app}\nsources:\n  in: {topic: input}\n"
     "  t: {topic: t, type: table}\nflows:\n  - from: in\n    steps:\n"
     "      - join: {with: t, window: {difference: 1m}, value: right}\n",
     8, 33, "a window applies to a join with a stream; 't' is a table"},
    {"outer join with a table",
     "application: {application.id: app}\nsources:\n  in: {topic: input}\n"
     "  t: {topic: t, type: table}\nflows:\n  - from: in\n    steps:\n"
     "      - join: {with: t, type: outer, value: right}\n",
     8, 31, "an outer join needs a stream on both sides; 't' is a table"},
    {"foreign-key join without its foreign key",
     "application: {application.id: app}\nsources:\n  o: {topic: o, type: table}\n"
     "  t: {topic: t, type: table}\nflows:\n  - from: o\n    steps:\n"
     "      - join: {with: t, value: right}\n      - to: out\n",
     8, 9,
     "a join of table rows with table 't' needs key: the foreign key, the key of the row of 't' "
     "that each row names, such as key: value.customer, or key: key to join rows of the same "
     "key"},
    {"foreign-key join with a stream",
     "application: {application.id: app}\nsources:\n  o: {topic: o, type: table}\n"
     "  s: {topic: s}\nflows:\n  - from: o\n    steps:\n"
     "      - join: {with: s, key: value.s, value: right}\n      - to: out\n",
     8, 22, "unknown table 's', expected a source of type table"},
    {"outer foreign-key join",
     "application: {application.id: app}\nsources:\n  o: {topic: o, type: table}\n"
     "  t: {topic: t, type: table}\nflows:\n  - from: o\n    steps:\n"
     "      - join: {with: t, key: value.t, type: outer, value: right}\n      - to: out\n",
     8, 45, "a foreign-key join is inner or left, found outer"},
    {"join window without a difference",
     with_steps("      - join: {with: in, window: {before: 1m}, value: right}\n"), 8, 34,
     "a join window needs 'difference', or both 'before' and 'after'"},
    {"join without its value", with_steps("      - join: {with: in}\n"), 8, 15,
     "missing field 'value' in 'join'"},
    {"the joined row outside a join", with_steps("      - map: right.name\n"), 8, 14,
     "'right' is known only in a join's value"},
    {"join key reading the time",
     "application: {application.id: app}\nsources:\n  in: {topic: input}\n"
     "  t: {topic: t, type: table}\nflows:\n  - from: in\n    steps:\n"
     "      - join: {with: t, key: timestamp, value: right}\n",
     8, 30, "a join's key sees the record's key and value only"},
    {"to_postgres without a key column",
     with_steps("      - to_postgres:\n          connection: x\n          table: t\n"
                "          key_columns: {}\n"),
     11, 24, "'key_columns' in 'to_postgres': found an empty mapping, expected a mapping"},
    {"to_postgres with no connections",
     with_steps("      - to_postgres:\n          connection: x\n          table: t\n"
                "          key_columns: {id: {value: key}}\n          connections: 0\n"),
     12, 24, "found connections 0, expected at least 1"},
};

}  // namespace

TEST_CASE("bad pipelines give one error naming the place and what was expected",
          "[unit][pipeline-errors]") {
  REQUIRE(kCases.size() >= 30);
  for (const BadPipeline& bad : kCases) {
    INFO(bad.what << "\n" << bad.yaml);
    try {
      rill::pipeline::load_text(bad.yaml, "bad.yaml",
                                [](const std::string&) { return std::optional<std::string>(); });
      FAIL_CHECK("loaded without an error");
    } catch (const rill::pipeline::PipelineError& e) {
      INFO(e.report());
      CHECK(e.position().file == "bad.yaml");
      CHECK(e.position().line == bad.line);
      CHECK(e.position().column == bad.column);
      CHECK_THAT(e.message(), Catch::Contains(bad.message));
      CHECK_THAT(std::string(e.what()), Catch::StartsWith("bad.yaml:" + std::to_string(bad.line) +
                                                          ":" + std::to_string(bad.column) + ": "));
    }
  }
}

TEST_CASE("a pipeline error shows the line with a caret under the column",
          "[unit][pipeline-errors]") {
  try {
    rill::pipeline::load_text(with_steps("      - filter: value.amount >\n"), "orders.yaml",
                              rill::pipeline::process_environment());
    FAIL("loaded");
  } catch (const rill::pipeline::PipelineError& e) {
    CHECK(e.report() ==
          "orders.yaml:8:31: bad expression: expected a value, a name or '(', found the end of "
          "the expression\n"
          "        - filter: value.amount >\n"
          "                                ^\n");
  }
}

TEST_CASE("the whole file is checked against the declaration before any stream or expression is",
          "[unit][pipeline-errors]") {
  // The first flow reads a stream no one defines; the second misspells an
  // operator. Checking the file's shape is a phase of its own, so the
  // misspelling is the error, wherever it is.
  const std::string yaml = kHead +
                           "    steps: [stdout]\n"           // 7
                           "  - from: nowhere\n"             // 8
                           "    steps: [stdout]\n"           // 9
                           "  - from: in\n"                  // 10
                           "    steps:\n"                    // 11
                           "      - filtre: value.n > 1\n";  // 12
  try {
    rill::pipeline::load_text(yaml, "bad.yaml",
                              [](const std::string&) { return std::optional<std::string>(); });
    FAIL("loaded");
  } catch (const rill::pipeline::PipelineError& e) {
    CHECK(e.position().line == 12);
    CHECK(e.position().column == 9);
    CHECK_THAT(e.message(), Catch::StartsWith("unknown operator 'filtre'"));
  }
}
