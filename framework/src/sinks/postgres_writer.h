// The database side of a PostgreSQL sink: one connection, the table's
// statements, and the offsets table that makes each batch apply exactly once.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "rill/postgres.h"

namespace rill::sinks {

// The database cannot take the batch now (connection lost, server shutting
// down, a deadlock, or a missing table or column): the writer must connect
// again, and the offsets table tells what of the batch was written (a commit
// whose answer was lost may have been).
class DatabaseUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A row as the sink topic holds it: the texts of the key columns, then of the
// value columns (nullopt: SQL NULL); no value columns for a deletion.
struct SinkRow {
  std::vector<std::optional<std::string>> columns;
  bool deletion = false;
  int32_t partition = 0;
  int64_t offset = 0;
};

struct SinkBatch {
  std::vector<SinkRow> rows;
  // Per partition: the offset the database holds now (what this writer read
  // or last wrote) and the one the batch moves it to.
  struct Offsets {
    int64_t expected = -1;
    int64_t next = -1;
  };
  std::map<int32_t, Offsets> offsets;
};

class PostgresWriter {
 public:
  PostgresWriter(PostgresTable table, std::string application_id, std::string sink,
                 std::string topic);
  ~PostgresWriter();
  PostgresWriter(const PostgresWriter&) = delete;
  PostgresWriter& operator=(const PostgresWriter&) = delete;

  // Connects, creates the offsets table (and the sink's table when asked),
  // checks that the table has every column, and prepares the statements.
  // Throws DatabaseUnavailable, naming the table and what is wrong.
  void connect();
  void disconnect();

  // Makes sure each partition has its row in the offsets table and returns
  // the offset it holds: the next one to apply, -1 when none was applied.
  std::map<int32_t, int64_t> claim(const std::vector<int32_t>& partitions);

  enum class Outcome {
    kWritten,
    // Another writer moved an offset of the batch first (a rebalance left two
    // owners for a moment): nothing was written; claim again.
    kStale,
  };
  // Called for a row the database rejects, with its error, before the batch
  // commits without it. Throwing aborts the batch.
  using RejectedHandler = std::function<void(const SinkRow& row, const std::string& error)>;

  // Applies the batch in one transaction: the last row of each key wins;
  // deletions delete, other rows upsert; the offsets move from `expected`
  // to `next`. When the database rejects a row, the batch is applied again
  // one row at a time and `rejected` hears of each row it refuses.
  Outcome write(const SinkBatch& batch, const RejectedHandler& rejected);

  // The table and the sink, for messages.
  const std::string& describe() const { return description_; }

 private:
  struct Connection;

  // Array literals of the rows' columns: the key columns of the deletions,
  // then every column of the upserts.
  struct ColumnArrays {
    std::vector<std::string> texts;
    bool deletions = false;
    bool upserts = false;
  };
  ColumnArrays column_arrays(const std::vector<const SinkRow*>& rows) const;

  // The batch in one statement.
  Outcome apply(const SinkBatch& batch, const std::vector<const SinkRow*>& rows);
  // The batch one row at a time, each in a savepoint: the rows the database
  // rejects are left out and handed to `rejected`.
  Outcome apply_row_by_row(const SinkBatch& batch, const std::vector<const SinkRow*>& rows,
                           const RejectedHandler& rejected);

  PostgresTable table_;
  std::string application_id_;
  std::string sink_;
  std::string topic_;
  std::string description_;
  std::unique_ptr<Connection> connection_;
};

// The last row of each key of `rows`, in the order of those last rows.
std::vector<const SinkRow*> last_row_per_key(const std::vector<SinkRow>& rows,
                                             std::size_t key_columns);

}  // namespace rill::sinks
