// Test helpers for the real PostgreSQL server that scripts/test starts
// (scripts/postgres): its URL, SQL through an independent client, and
// crashing or stopping it under a running sink.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace rill::testing {

// The server's URL from RILL_POSTGRES_URL; fails the test when unset.
std::string postgres_url();

// Runs one SQL statement (or several separated by ';') and returns the rows
// of the last one, each column as text (std::nullopt for NULL).
using SqlRows = std::vector<std::vector<std::optional<std::string>>>;
SqlRows sql(const std::string& statement);

// The rows of `query` as a map from the first column to the second.
std::map<std::string, std::string> sql_map(const std::string& query);

// Runs scripts/postgres with `command` ("restart", "kill", "start") on the
// server of RILL_POSTGRES_STATE_DIR; fails the test, with what it printed,
// when it fails.
void postgres_command(const std::string& command);

}  // namespace rill::testing
