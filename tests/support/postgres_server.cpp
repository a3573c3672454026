#include "support/postgres_server.h"

#include <cstdlib>

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include "support/command.h"

namespace rill::testing {

std::string postgres_url() {
  const char* url = std::getenv("RILL_POSTGRES_URL");
  if (url == nullptr || *url == '\0')
    FAIL("RILL_POSTGRES_URL is not set: run the tests with scripts/test, which starts PostgreSQL");
  return url;
}

SqlRows sql(const std::string& statement) {
  pqxx::connection connection(postgres_url());
  pqxx::work work(connection);
  const pqxx::result result = work.exec(statement);
  work.commit();
  SqlRows rows;
  for (const auto& row : result) {
    auto& out = rows.emplace_back();
    for (const auto& field : row)
      out.push_back(field.is_null() ? std::nullopt : std::optional<std::string>(field.c_str()));
  }
  return rows;
}

std::map<std::string, std::string> sql_map(const std::string& query) {
  std::map<std::string, std::string> out;
  for (const auto& row : sql(query)) out[row.at(0).value_or("NULL")] = row.at(1).value_or("NULL");
  return out;
}

void postgres_command(const std::string& command) {
  const char* state = std::getenv("RILL_POSTGRES_STATE_DIR");
  if (state == nullptr || *state == '\0')
    FAIL("RILL_POSTGRES_STATE_DIR is not set: run the tests with scripts/test");
  const CommandResult result =
      run_command(std::string(RILL_SOURCE_DIR) + "/scripts/postgres " + command);
  INFO(result.output);
  REQUIRE(result.exit_code == 0);
}

}  // namespace rill::testing
