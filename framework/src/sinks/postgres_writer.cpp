#include "sinks/postgres_writer.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <pqxx/pqxx>

namespace rill::sinks {
namespace {

constexpr const char* kOffsetsTable = "rill_sink_offsets";
constexpr const char* kUpsert = "rill_upsert";
constexpr const char* kDelete = "rill_delete";
constexpr const char* kBatch = "rill_batch";

// SQLSTATE classes of errors that are the row's fault: data exceptions (22:
// a value the column's type refuses) and integrity constraint violations
// (23: CHECK, NOT NULL, foreign keys). Anything else is the database's or the
// configuration's, and no row should be blamed for it.
bool rejects_the_row(const std::string& sqlstate) {
  return sqlstate.starts_with("22") || sqlstate.starts_with("23");
}

// An array literal of texts, which PostgreSQL parses as text[] and the
// statements cast element by element to each column's type.
std::string array_literal(const std::vector<const std::optional<std::string>*>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    if (!*values[i]) {
      out += "NULL";
      continue;
    }
    out += '"';
    for (char c : **values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

template <class T>
std::string number_array(const std::vector<T>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  out += '}';
  return out;
}

std::string joined(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) out += separator;
    out += parts[i];
  }
  return out;
}

}  // namespace

struct PostgresWriter::Connection {
  explicit Connection(const std::string& options) : db(options) {}
  pqxx::connection db;
  std::string quoted_table;
  std::size_t columns = 0;
};

PostgresWriter::PostgresWriter(PostgresTable table, std::string application_id, std::string sink,
                               std::string topic)
    : table_(std::move(table)),
      application_id_(std::move(application_id)),
      sink_(std::move(sink)),
      topic_(std::move(topic)),
      description_("PostgreSQL table '" + table_.table + "' of sink '" + sink_ + "'") {}

PostgresWriter::~PostgresWriter() = default;

void PostgresWriter::disconnect() {
  connection_.reset();
}

void PostgresWriter::connect() {
  disconnect();
  std::unique_ptr<Connection> c;
  try {
    c = std::make_unique<Connection>(table_.connection);
  } catch (const std::exception& e) {
    throw DatabaseUnavailable("cannot connect for the " + description_ + ": " + e.what());
  }
  try {
    // Quoted names: as written, case included ("a.b" is schema a, table b).
    std::vector<std::string> parts;
    for (std::size_t begin = 0;;) {
      const std::size_t dot = table_.table.find('.', begin);
      parts.push_back(c->db.quote_name(table_.table.substr(begin, dot - begin)));
      if (dot == std::string::npos) break;
      begin = dot + 1;
    }
    c->quoted_table = joined(parts, ".");

    std::vector<const PostgresColumn*> columns;
    for (const auto& column : table_.key_columns) columns.push_back(&column);
    for (const auto& column : table_.value_columns) columns.push_back(&column);
    c->columns = columns.size();

    pqxx::work setup(c->db);
    // Named in pg_stat_activity, unless the connection string names it.
    setup.exec_params(
        "SELECT set_config('application_name', $1, false) "
        "WHERE current_setting('application_name') = ''",
        "rill " + application_id_ + " " + sink_);
    setup.exec(std::string("CREATE TABLE IF NOT EXISTS ") + kOffsetsTable +
               " (application_id text NOT NULL, sink text NOT NULL, topic text NOT NULL,"
               " partition integer NOT NULL, next_offset bigint NOT NULL,"
               " updated_at timestamptz NOT NULL DEFAULT now(),"
               " PRIMARY KEY (application_id, sink, topic, partition))");
    if (table_.create_table) {
      std::vector<std::string> definitions, keys;
      for (const auto& column : table_.key_columns) {
        definitions.push_back(c->db.quote_name(column.name) + " " + column.type + " NOT NULL");
        keys.push_back(c->db.quote_name(column.name));
      }
      for (const auto& column : table_.value_columns)
        definitions.push_back(c->db.quote_name(column.name) + " " + column.type);
      setup.exec("CREATE TABLE IF NOT EXISTS " + c->quoted_table + " (" +
                 joined(definitions, ", ") + ", PRIMARY KEY (" + joined(keys, ", ") + "))");
    }
    // The columns' types as the table declares them: the statements cast
    // the texts they get to those.
    const pqxx::result found = setup.exec_params(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
        c->quoted_table);
    if (found.empty())
      throw DatabaseUnavailable("the " + description_ +
                                " does not exist; create it, or set create_table");
    std::unordered_map<std::string, std::string> types;
    for (const auto& row : found) types[row[0].as<std::string>()] = row[1].as<std::string>();
    std::vector<std::string> missing;
    for (const auto* column : columns)
      if (!types.contains(column->name)) missing.push_back("'" + column->name + "'");
    if (!missing.empty())
      throw DatabaseUnavailable("the " + description_ + " has no column " + joined(missing, ", "));
    setup.commit();

    std::vector<std::string> names, array_types, casts, updates, key_names, key_matches;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      const std::string name = c->db.quote_name(columns[i]->name);
      const std::string field = "u.c" + std::to_string(i);
      names.push_back(name);
      // An array of the column's type, whose elements PostgreSQL reads
      // straight from their texts; a column that is an array itself gets a
      // text[] and a cast, since unnest would flatten an array of arrays.
      const std::string& type = types.at(columns[i]->name);
      const bool array_column = type.ends_with("]");
      array_types.push_back((array_column ? "text" : type) + "[]");
      casts.push_back(field + (array_column ? "::" + type : ""));
      if (i < table_.key_columns.size()) {
        key_names.push_back(name);
        key_matches.push_back("t." + name + " = " + casts.back());
      } else {
        updates.push_back(name + " = EXCLUDED." + name);
      }
    }
    // The first `count` columns as rows u(c0, c1, ...), from array
    // parameters numbered from `first`.
    auto unnest = [&](std::size_t first, std::size_t count) {
      std::vector<std::string> arrays, fields;
      for (std::size_t i = 0; i < count; ++i) {
        arrays.push_back("$" + std::to_string(first + i) + "::" + array_types[i]);
        fields.push_back("c" + std::to_string(i));
      }
      return "unnest(" + joined(arrays, ", ") + ") AS u(" + joined(fields, ", ") + ")";
    };
    // Fenced: inside the batch statement, writing only when its fence holds.
    auto upsert = [&](std::size_t first, bool fenced) {
      return "INSERT INTO " + c->quoted_table + " (" + joined(names, ", ") + ") SELECT " +
             joined(casts, ", ") + " FROM " + unnest(first, columns.size()) +
             (fenced ? ", fence WHERE fence.current" : "") + " ON CONFLICT (" +
             joined(key_names, ", ") + ") " +
             (updates.empty() ? "DO NOTHING" : "DO UPDATE SET " + joined(updates, ", "));
    };
    auto remove = [&](std::size_t first, bool fenced) {
      return "DELETE FROM " + c->quoted_table + " t USING " +
             unnest(first, table_.key_columns.size()) +
             (fenced ? ", fence WHERE fence.current AND " : " WHERE ") +
             joined(key_matches, " AND ");
    };
    // A whole batch in one statement, so one round trip and its own
    // transaction: lock the batch's offset rows, and only when each holds
    // what this writer expects, move them and write the rows. A second
    // writer of a partition waits at the lock, then finds the offset moved
    // and writes nothing. $1-$6: application, sink, topic, partitions,
    // expected and next offsets; then the key columns of the deletions, then
    // every column of the upserts.
    const std::string batch =
        std::string(
            "WITH locked AS (SELECT o.partition, o.next_offset = m.expected AS matches"
            " FROM ") +
        kOffsetsTable +
        " o JOIN unnest($4::integer[], $5::bigint[]) AS m(p, expected) ON o.partition = m.p"
        " WHERE o.application_id = $1 AND o.sink = $2 AND o.topic = $3 FOR UPDATE OF o),"
        " fence AS (SELECT count(*) FILTER (WHERE matches) = cardinality($4::integer[]) AS"
        " current FROM locked),"
        " moved AS (UPDATE " +
        kOffsetsTable +
        " o SET next_offset = m.next, updated_at = now() FROM unnest($4::integer[],"
        " $6::bigint[]) AS m(p, next), fence WHERE fence.current AND o.application_id = $1"
        " AND o.sink = $2 AND o.topic = $3 AND o.partition = m.p),"
        " deleted AS (" +
        remove(7, true) + "), upserted AS (" + upsert(7 + table_.key_columns.size(), true) +
        ") SELECT current FROM fence";
    // Preparing checks them: a key that is not the table's primary key or a
    // unique index fails here, not at the first batch.
    c->db.prepare(kUpsert, upsert(1, false));
    c->db.prepare(kDelete, remove(1, false));
    c->db.prepare(kBatch, batch);
    pqxx::work check(c->db);
    std::vector<std::string> empty(columns.size(), "{}");
    check.exec_prepared(kUpsert, pqxx::prepare::make_dynamic_params(empty));
    check.abort();
  } catch (const DatabaseUnavailable&) {
    throw;
  } catch (const std::exception& e) {
    throw DatabaseUnavailable("the " + description_ + ": " + e.what());
  }
  connection_ = std::move(c);
}

std::map<int32_t, int64_t> PostgresWriter::claim(const std::vector<int32_t>& partitions) {
  if (!connection_) connect();
  std::map<int32_t, int64_t> offsets;
  if (partitions.empty()) return offsets;
  try {
    pqxx::work work(connection_->db);
    const std::string list = number_array(partitions);
    work.exec_params(std::string("INSERT INTO ") + kOffsetsTable +
                         " (application_id, sink, topic, partition, next_offset)"
                         " SELECT $1, $2, $3, p, -1 FROM unnest($4::integer[]) AS p"
                         " ON CONFLICT DO NOTHING",
                     application_id_, sink_, topic_, list);
    const pqxx::result rows =
        work.exec_params(std::string("SELECT partition, next_offset FROM ") + kOffsetsTable +
                             " WHERE application_id = $1 AND sink = $2 AND topic = $3"
                             " AND partition = ANY($4::integer[])",
                         application_id_, sink_, topic_, list);
    for (const auto& row : rows) offsets[row[0].as<int32_t>()] = row[1].as<int64_t>();
    work.commit();
  } catch (const std::exception& e) {
    disconnect();
    throw DatabaseUnavailable("cannot read the offsets of the " + description_ + ": " + e.what());
  }
  return offsets;
}

std::vector<const SinkRow*> last_row_per_key(const std::vector<SinkRow>& rows,
                                             std::size_t key_columns) {
  // A key as one string: each column's length (or -1 for NULL) then its text.
  std::unordered_map<std::string, std::size_t> last;
  std::vector<std::string> keys(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    std::string& key = keys[i];
    for (std::size_t c = 0; c < key_columns && c < rows[i].columns.size(); ++c) {
      const auto& value = rows[i].columns[c];
      key += value ? std::to_string(value->size()) + ":" + *value : "-1:";
    }
    last[key] = i;
  }
  std::vector<const SinkRow*> out;
  for (std::size_t i = 0; i < rows.size(); ++i)
    if (last.at(keys[i]) == i) out.push_back(&rows[i]);
  return out;
}

PostgresWriter::Outcome PostgresWriter::write(const SinkBatch& batch,
                                              const RejectedHandler& rejected) {
  if (!connection_) connect();
  const std::vector<const SinkRow*> rows = last_row_per_key(batch.rows, table_.key_columns.size());
  try {
    try {
      return apply(batch, rows);
    } catch (const pqxx::sql_error& e) {
      if (!rejects_the_row(e.sqlstate())) throw;
    }
    // A row was refused: again, one row at a time, to find which.
    return apply_row_by_row(batch, rows, rejected);
  } catch (const pqxx::in_doubt_error& e) {
    disconnect();
    throw DatabaseUnavailable("the commit to the " + description_ + " is in doubt: " + e.what());
  } catch (const pqxx::failure& e) {
    disconnect();
    throw DatabaseUnavailable("cannot write to the " + description_ + ": " + e.what());
  }
}

PostgresWriter::ColumnArrays PostgresWriter::column_arrays(
    const std::vector<const SinkRow*>& rows) const {
  static const std::optional<std::string> kNull;
  std::vector<std::vector<const std::optional<std::string>*>> deletes(table_.key_columns.size()),
      upserts(connection_->columns);
  for (const SinkRow* row : rows) {
    auto& target = row->deletion ? deletes : upserts;
    for (std::size_t c = 0; c < target.size(); ++c)
      target[c].push_back(c < row->columns.size() ? &row->columns[c] : &kNull);
  }
  ColumnArrays arrays;
  arrays.deletions = !deletes.empty() && !deletes.front().empty();
  arrays.upserts = !upserts.empty() && !upserts.front().empty();
  for (const auto& column : deletes) arrays.texts.push_back(array_literal(column));
  for (const auto& column : upserts) arrays.texts.push_back(array_literal(column));
  return arrays;
}

PostgresWriter::Outcome PostgresWriter::apply(const SinkBatch& batch,
                                              const std::vector<const SinkRow*>& rows) {
  std::vector<int32_t> partitions;
  std::vector<int64_t> expected, next;
  for (const auto& [partition, offsets] : batch.offsets) {
    partitions.push_back(partition);
    expected.push_back(offsets.expected);
    next.push_back(offsets.next);
  }
  std::vector<std::string> params{
      application_id_,   sink_, topic_, number_array(partitions), number_array(expected),
      number_array(next)};
  for (std::string& array : column_arrays(rows).texts) params.push_back(std::move(array));
  pqxx::nontransaction statement(connection_->db);
  const pqxx::result current =
      statement.exec_prepared(kBatch, pqxx::prepare::make_dynamic_params(params));
  return current[0][0].as<bool>() ? Outcome::kWritten : Outcome::kStale;
}

PostgresWriter::Outcome PostgresWriter::apply_row_by_row(const SinkBatch& batch,
                                                         const std::vector<const SinkRow*>& rows,
                                                         const RejectedHandler& rejected) {
  pqxx::work work(connection_->db);
  std::vector<int32_t> partitions;
  std::vector<int64_t> next;
  for (const auto& [partition, offsets] : batch.offsets) {
    partitions.push_back(partition);
    next.push_back(offsets.next);
  }
  // The offsets' rows, locked until the commit: a second writer of the same
  // partitions waits here, then finds its expected offsets moved.
  const pqxx::result held =
      work.exec_params(std::string("SELECT partition, next_offset FROM ") + kOffsetsTable +
                           " WHERE application_id = $1 AND sink = $2 AND topic = $3"
                           " AND partition = ANY($4::integer[]) FOR UPDATE",
                       application_id_, sink_, topic_, number_array(partitions));
  std::map<int32_t, int64_t> found;
  for (const auto& row : held) found[row[0].as<int32_t>()] = row[1].as<int64_t>();
  for (const auto& [partition, offsets] : batch.offsets) {
    auto it = found.find(partition);
    if (it == found.end() || it->second != offsets.expected) return Outcome::kStale;
  }
  const std::size_t key_columns = table_.key_columns.size();
  for (const SinkRow* row : rows) {
    const ColumnArrays arrays = column_arrays({row});
    // Savepoints by hand: libpqxx 6's subtransaction leaves the transaction
    // aborted after a failed statement.
    work.exec("SAVEPOINT rill_row");
    try {
      if (arrays.deletions)
        work.exec_prepared(kDelete,
                           pqxx::prepare::make_dynamic_params(
                               arrays.texts.begin(),
                               arrays.texts.begin() + static_cast<std::ptrdiff_t>(key_columns)));
      if (arrays.upserts)
        work.exec_prepared(kUpsert,
                           pqxx::prepare::make_dynamic_params(
                               arrays.texts.begin() + static_cast<std::ptrdiff_t>(key_columns),
                               arrays.texts.end()));
      work.exec("RELEASE SAVEPOINT rill_row");
    } catch (const pqxx::sql_error& e) {
      if (!rejects_the_row(e.sqlstate())) throw;
      work.exec("ROLLBACK TO SAVEPOINT rill_row");
      std::string error = e.what();
      while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
      rejected(*row, "SQLSTATE " + e.sqlstate() + ": " + error);
    }
  }
  work.exec_params(std::string("UPDATE ") + kOffsetsTable +
                       " o SET next_offset = u.next, updated_at = now()"
                       " FROM unnest($4::integer[], $5::bigint[]) AS u(p, next)"
                       " WHERE o.application_id = $1 AND o.sink = $2 AND o.topic = $3"
                       " AND o.partition = u.p",
                   application_id_, sink_, topic_, number_array(partitions), number_array(next));
  work.commit();
  return Outcome::kWritten;
}

}  // namespace rill::sinks
