// Read models in PostgreSQL: a table kept equal to a stream or a table of the
// topology, by key, exactly once.
//
// KStream::to_postgres and KTable::to_postgres turn each record into a row
// (key columns and value columns, as JSON objects) and write it to the
// internal topic "<application.id>-<sink name>-sink", compacted, in the
// topology's tasks. A sink writer on every instance reads that topic in its
// own consumer group ("<application.id>-<sink name>") and applies the rows
// in batches: upserts by key, deletes for tombstones. Each batch is one
// database transaction that also moves the offsets it covers in the table
// rill_sink_offsets, so after a crash or a rebalance the writer resumes
// where the database says, and no row is applied twice or lost, under either
// processing guarantee. A database that goes away pauses the writer, not the
// topology (docs/read-models.md).
#pragma once

#include <charconv>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace rill {

struct PostgresColumn {
  std::string name;
  // The SQL type, used when the sink creates the table ("text", "bigint",
  // "numeric(12,2)", "jsonb"...). Values are sent as text and cast to the
  // column's type by PostgreSQL.
  std::string type = "text";
};

// What happens to a row PostgreSQL rejects (a constraint or a type error).
enum class RejectedRows {
  // It goes to the dead-letter topic (errors.dead.letter.queue.topic.name, or
  // "<application.id>-<sink name>-dead-letters" when that is not set) with
  // the error and its origin in the headers; the other rows are written.
  kDeadLetter,
  // It is logged and skipped; the other rows are written.
  kLogAndContinue,
  // The instance stops with the error (the row's batch is not written).
  kFail,
};

// One table the sink keeps.
struct PostgresTable {
  // libpq connection string or URI ("postgresql://user@host:5432/db").
  std::string connection;
  // The table, optionally schema-qualified ("read.orders_by_customer"). Names
  // are quoted: they are used as written, case included.
  std::string table;
  // The primary key, which the upserts conflict on. At least one.
  std::vector<PostgresColumn> key_columns;
  // The other columns the rows set. None: the table only holds keys.
  std::vector<PostgresColumn> value_columns;
  // Creates the table with these columns and the key as primary key when it
  // does not exist. Default: the table must exist.
  bool create_table = false;
  // Rows per database transaction at most. Default: 1000.
  std::size_t batch_size = 1000;
  // How long the first row of a batch waits for others. Default: 100 ms.
  std::chrono::milliseconds linger{100};
  // Writers on each instance, each with its own connection and consumer and
  // its share of the sink topic's partitions: with more than one, the
  // database works on several batches at once (a replay catches up faster).
  // Default: 1.
  std::size_t connections = 1;
  RejectedRows rejected_rows = RejectedRows::kDeadLetter;
};

// The texts of a row's columns, in the order the columns are declared;
// std::nullopt is SQL NULL.
using PostgresValues = std::vector<std::optional<std::string>>;

namespace internal {

// A part of a row ("key" or "value") as the sink's topic holds it: a JSON
// object of column texts. Throws std::invalid_argument, naming the sink, when
// the values do not match the columns.
std::string postgres_row_json(const std::string& sink, const char* part,
                              const std::vector<PostgresColumn>& columns,
                              const PostgresValues& values);

// The text of a string, number or bool, as PostgreSQL reads it.
template <class T>
constexpr bool kHasPostgresText = std::is_same_v<T, std::string> || std::is_arithmetic_v<T>;

template <class T>
requires kHasPostgresText<T> std::string postgres_text(const T& value) {
  if constexpr (std::is_same_v<T, std::string>) {
    return value;
  } else if constexpr (std::is_same_v<T, bool>) {
    return value ? "true" : "false";
  } else {
    char buffer[64];
    const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
    return std::string(buffer, end);
  }
}

}  // namespace internal
}  // namespace rill
