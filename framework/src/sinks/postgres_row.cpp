#include <stdexcept>

#include <nlohmann/json.hpp>

#include "rill/postgres.h"

namespace rill::internal {

std::string postgres_row_json(const std::string& sink, const char* part,
                              const std::vector<PostgresColumn>& columns,
                              const PostgresValues& values) {
  if (values.size() != columns.size())
    throw std::invalid_argument("to_postgres '" + sink + "': " + std::to_string(values.size()) +
                                " " + part + " column values for " +
                                std::to_string(columns.size()) + " " + part + " columns");
  nlohmann::json row = nlohmann::json::object();
  for (std::size_t i = 0; i < columns.size(); ++i)
    row[columns[i].name] = values[i] ? nlohmann::json(*values[i]) : nlohmann::json(nullptr);
  return row.dump();
}

}  // namespace rill::internal
