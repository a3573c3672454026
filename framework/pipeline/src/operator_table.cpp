#include "operator_table.h"

#include "declaration_parts.h"
#include "planner.h"

namespace rill::pipeline {

using T = FieldType;

namespace {

// A column of a to_postgres step: its value and its SQL type.
std::vector<FieldSpec> postgres_column_fields() {
  return {{"value", T::kExpression, true, "The column's value: `key`, `value.orders`..."},
          {"type",
           T::kString,
           false,
           "The SQL type, for create_table; values are sent as text and cast to the column's "
           "type.",
           {},
           "text"}};
}

}  // namespace

const std::vector<Operator>& operator_table() {
  static const std::vector<Operator> kTable = {
      {.declaration = {"filter",
                       "Keeps the records for which the condition is true (null counts as false).",
                       "if",
                       {{"if", T::kCondition, true, "The condition."},
                        name_field("Names the processor node.")},
                       "- filter: value.amount > 100 and value.currency == \"EUR\""},
       .apply = &Planner::apply_filter},
      {.declaration =
           {"map",
            "Builds a new value, and optionally a new key, from expressions. A mapping builds an "
            "object; nested mappings build nested objects. `map: {user: value.u}` is short for "
            "`map: {value: {user: value.u}}`: a mapping whose keys are all fields of map (value, "
            "key, name) sets those fields instead.",
            "value",
            {{"value", T::kValueBuilder, false, "The new value. Default: the value unchanged."},
             {"key", T::kExpression, false,
              "The new key. Changing it makes a later group_by repartition."},
             name_field("Names the processor node.")},
            "- map:\n    value:\n      user: value.user.id\n      cents: value.amount * 100"},
       .apply = &Planner::apply_map},
      {.declaration =
           {"flat_map",
            "One record per element of an array (`explode`) or per part of a string (`split`), "
            "with the key unchanged.",
            "explode",
            {{"explode", T::kExpression, false,
              "An expression giving an array; null gives no record."},
             {"split", T::kExpression, false,
              "An expression giving a string, split by `separator`."},
             {"separator", T::kString, false,
              "What `split` splits on. Default: runs of white space, empty parts dropped."},
             name_field("Names the processor node.")},
            "- flat_map: {split: lower(value)}"},
       .apply = &Planner::apply_flat_map},
      {.declaration = {"select_key",
                       "Sets the key from an expression; a later group_by on `key` repartitions.",
                       "key",
                       {{"key", T::kExpression, true, "The new key."},
                        name_field("Names the processor node.")},
                       "- select_key: value.user.id"},
       .apply = &Planner::apply_select_key},
      {.declaration =
           {"branch",
            "Routes each record to the first route whose condition is true; each route becomes a "
            "stream later flows read with `from`. Ends the flow.",
            "",
            {{"routes", T::kRoutes, true, "Route names and their conditions, tried in order."},
             {"default", T::kString, false,
              "The stream of records no route takes. Default: none, such records are dropped."},
             name_field("Names the split node.")},
            "- branch:\n    routes:\n      large: value.amount >= 1000\n    default: small"},
       .apply = &Planner::apply_branch},
      {.declaration = {"merge",
                       "Interleaves the records of other streams into this one.",
                       "streams",
                       {{"streams", T::kStreamNames, true,
                         "The streams to merge in (sources or routes)."},
                        name_field("Names the merge node.")},
                       "- merge: [web-orders, shop-orders]"},
       .apply = &Planner::apply_merge},
      {.declaration =
           {"join",
            "Joins each record with the records of another stream within a time window, or "
            "with the current row of a table or a global table, as Kafka Streams' joins; the "
            "value becomes `value`. With a stream, each pair of records with the same key whose "
            "times are within the window goes on, at the later time; both streams are kept in "
            "window stores for the window and its grace period, and left and outer joins emit a "
            "record that found no partner once its window has closed. With a table, the record "
            "keeps its key and time, and updates of the table emit nothing. A stream or a table "
            "must be co-partitioned with this stream (the same partition count; a stream goes "
            "through `<application.id>-<name>-repartition` first when its key changed, or "
            "`<name>-left-repartition` in a stream-stream join); a global table is held whole "
            "by every instance and needs neither. Records with a null value are dropped and "
            "counted, and so are records without a join key in an inner join. In a flow from a "
            "table, `join` joins the rows with another table's, and the flow goes on with the "
            "joined table, which follows updates and deletions of both tables. `key: key` joins "
            "rows of the same key (Kafka Streams' KTable-KTable join; the tables must be "
            "co-partitioned). Any other `key` is a foreign-key join (Kafka Streams' KIP-213): it "
            "gives, from each row, the key of the other table's row it names, and the joined "
            "row follows changes of the foreign key too. The tables need no co-partitioning: "
            "the join talks to the other table's partitions through "
            "`<application.id>-<name>-subscription-registration-topic` and "
            "`-subscription-response-topic`.",
            "",
            {{"with", T::kString, true,
              "The stream (a source or a route), or the source of type table or global_table, "
              "to join with; in a flow from a table, a source of type table."},
             {"type",
              T::kEnum,
              false,
              "inner: a record goes on only when it finds a partner or row; left: every record "
              "goes on, with `right` null when it finds none; outer (streams, and tables joined "
              "with key: key): the other side's records or rows too, with `left` null.",
              {"inner", "left", "outer"},
              "inner"},
             {"window",
              T::kObject,
              false,
              "Joining a stream (and only then): how far apart in time two records may be, as "
              "Kafka Streams' JoinWindows. A record at t joins the other stream's records from "
              "t - before to t + after.",
              {},
              {},
              {{"difference", T::kDuration, false, "Sets both before and after."},
               {"before", T::kDuration, false, "How much earlier the other record may be."},
               {"after", T::kDuration, false, "How much later the other record may be."},
               {"grace",
                T::kDuration,
                false,
                "How long after its window a record still joins, and a record without a partner "
                "waits before a left or outer join emits it.",
                {},
                "0"}}},
             {"key", T::kExpression, false,
              "The join key, from the record's key and value. With a stream or a table, a key "
              "other than `key` becomes the record's key (as select_key does) and the stream is "
              "repartitioned; with a global table, the key of the row to look up. Default: "
              "`key`. In a flow from a table (required there): `key` to join rows of the same "
              "key, or the foreign key, the key of the other table's row that each row names; "
              "null names none."},
             {"value", T::kValueBuilder, true,
              "The joined value, built like map's: `left` is the record's value (as `value`), "
              "`right` the other stream's record or the table's row (null when a left join finds "
              "none; `left` is null for the other stream's records an outer join emits "
              "alone)."},
             name_field("Names the join's nodes, and the repartition topic when there is one.")},
            "- join:\n    with: customers\n    type: left\n    value:\n      order: left\n"
            "      customer: right.name\n"
            "- join:\n    with: payments\n    window: {difference: 10m, grace: 1m}\n"
            "    value: {order: left, paid: right.amount}\n"
            "# in a flow from a table of orders: each order with its customer's row\n"
            "- join:\n    with: customers\n    key: value.customer\n    type: left\n"
            "    value: {order: left, customer: right}\n"
            "# in a flow from a table of accounts: each account with its limit, if any\n"
            "- join:\n    with: limits\n    key: key\n    type: outer\n"
            "    value: {balance: left.balance, limit: right.limit}"},
       .apply = &Planner::apply_join},
      {.declaration =
           {"group_by",
            "Groups records by a key for the `aggregate` step that must follow. Grouping by an "
            "expression other than `key` goes through the repartition topic "
            "`<application.id>-<name>-repartition`. Grouping a table's rows always does: each "
            "change of a row carries its old and its new value, so the aggregate takes the old "
            "value out of its group and adds the new one to its group.",
            "key",
            {{"key", T::kExpression, true, "The grouping key; `key` keeps the record's key."},
             {"key_format", T::kEnum, false,
              "How the repartition topic and the store write the key. string writes a string as "
              "its plain bytes, as Kafka's StringSerializer does, so the key lands on the "
              "partition other Kafka clients pick for it and joins with their topics; a number "
              "becomes its text. json keeps numbers, objects and arrays as they are.",
              kFormats, "string"},
             name_field("Names the repartition topic. Default: the aggregation's store name.")},
            "- group_by: value.user.id"},
       .apply = &Planner::apply_group_by},
      {.declaration =
           {"aggregate",
            "Aggregates the grouped records per key, over all time or per window, in a state store "
            "changelogged to `<application.id>-<name>-changelog`. Emits the key's new result for "
            "each record (folded by the record cache between commits), or with `emit: final` one "
            "result per window once it closes. A windowed result's key is "
            "`{\"key\": ..., \"start\": ms, \"end\": ms}`.",
            "value",
            {{"value", T::kAggregation, false,
              "One aggregation; the result is its value: `count()`, `sum(x)`, `min(x)`, `max(x)`, "
              "`avg(x)`, `first(x)`, `last(x)`, `count_distinct(x)`; `x` reads the record's key, "
              "value, timestamp and headers (`max(timestamp)`). Nulls are skipped. After a "
              "table's group_by: `count()`, `sum(x)` and `avg(x)`, which can take a row out."},
             {"fields", T::kAggregations, false,
              "Several aggregations; the result is an object with these fields."},
             {"window",
              T::kObject,
              false,
              "Aggregates per window of event time.",
              {},
              {},
              {{"type",
                T::kEnum,
                true,
                "The kind of window.",
                {"tumbling", "hopping", "sliding", "session"}},
               {"size", T::kDuration, false,
                "Window size (tumbling, hopping), or the time difference of sliding windows."},
               {"advance", T::kDuration, false, "How far hopping windows move (at most the size)."},
               {"gap", T::kDuration, false,
                "The inactivity gap that ends a session. A session ends at its last record's time; "
                "a record that merges sessions deletes them downstream (a null value for each "
                "old session's key) before the merged result."},
               {"grace",
                T::kDuration,
                false,
                "How long after its end a window still takes late records. Sessions, as in Kafka "
                "Streams, close at end + gap + grace. Dropped late records are counted and logged "
                "(docs/state.md).",
                {},
                "0"},
               {"emit",
                T::kEnum,
                false,
                "changes: every update of a window's result; final: one result when it closes.",
                {"changes", "final"},
                "changes"}}},
             {"name", T::kString, false,
              "Names the state store (and so its changelog topic). Default: generated."}},
            "- aggregate:\n    window: {type: tumbling, size: 1m, grace: 10s, emit: final}\n"
            "    fields:\n      views: count()\n      pages: count_distinct(value.page)"},
       .apply = &Planner::apply_aggregate},
      {.declaration =
           {"to",
            "Writes the stream to a Kafka topic; the stream goes on for further steps. In a flow "
            "from a table, writes the table's changes, a deletion as a null value (a "
            "tombstone), and the flow goes on with that stream.",
            "topic",
            {{"topic", T::kString, true, "The topic."},
             {"key_format", T::kEnum, false, "How keys are written.", kFormats, "string"},
             {"value_format", T::kEnum, false, "How values are written.", kFormats, "json"},
             name_field("Names the sink node.")},
            "- to: {topic: large-orders, value_format: json}"},
       .apply = &Planner::apply_to},
      {.declaration =
           {"to_postgres",
            "Keeps a PostgreSQL table equal to the stream, by key, exactly once: each record "
            "upserts its key's row, a record with a null value (a table's deletion) deletes it. "
            "The rows go through the compacted topic `<application.id>-<name>-sink` to a writer "
            "on every instance, which commits each batch with the offsets it covers in the table "
            "`rill_sink_offsets` (docs/read-models.md).",
            "",
            {{"connection", T::kString, true,
              "libpq connection string or URI, usually from the environment: "
              "`${DATABASE_URL}`."},
             {"table", T::kString, true,
              "The table, optionally schema-qualified; used as written, case included."},
             {"key_columns",
              T::kNamedObjects,
              true,
              "The primary key's columns, by name.",
              {},
              {},
              postgres_column_fields()},
             {"columns",
              T::kNamedObjects,
              false,
              "The other columns, by name.",
              {},
              {},
              postgres_column_fields()},
             {"create_table",
              T::kEnum,
              false,
              "true: creates the table, with the key columns as primary key, when it is missing.",
              {"true", "false"},
              "false"},
             {"batch_size",
              T::kInteger,
              false,
              "Rows per database transaction at most.",
              {},
              "1000"},
             {"linger",
              T::kDuration,
              false,
              "How long a batch's first row waits for others.",
              {},
              "100ms"},
             {"connections",
              T::kInteger,
              false,
              "Writers on each instance, each with its own connection and share of the "
              "partitions: more than one lets the database write several batches at once.",
              {},
              "1"},
             {"on_rejected",
              T::kEnum,
              false,
              "A row PostgreSQL refuses (a constraint or type error): `dead_letter` sends it to "
              "`errors.dead.letter.queue.topic.name` (else `<application.id>-<name>-dead-letters`)"
              " with the error in its headers, `log_and_continue` logs and skips it, `fail` stops "
              "the instance.",
              {"dead_letter", "log_and_continue", "fail"},
              "dead_letter"},
             name_field("Names the sink: its topic, consumer group and offsets. Default: the "
                        "table's name.")},
            "- to_postgres:\n    connection: ${DATABASE_URL}\n    table: orders_by_customer\n"
            "    create_table: true\n    key_columns:\n      customer: {value: key}\n"
            "    columns:\n      orders: {value: value.orders, type: bigint}"},
       .apply = &Planner::apply_to_postgres},
      {.declaration =
           {"stdout",
            "Prints each record as `key<TAB>value` (value as JSON) on standard output, for trying "
            "pipelines out; the stream goes on.",
            "",
            {name_field("Names the processor node.")},
            "- stdout"},
       .apply = &Planner::apply_stdout},
  };
  return kTable;
}

const Operator* operator_named(std::string_view name) {
  for (const Operator& op : operator_table())
    if (op.declaration.name == name) return &op;
  return nullptr;
}

const std::vector<OperatorSpec>& operators() {
  static const std::vector<OperatorSpec> kDeclarations = [] {
    std::vector<OperatorSpec> declarations;
    for (const Operator& op : operator_table()) declarations.push_back(op.declaration);
    return declarations;
  }();
  return kDeclarations;
}

}  // namespace rill::pipeline
