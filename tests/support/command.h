// Runs a shell command for tests that check files with external tools
// (promtool), capturing what it prints.
#pragma once

#include <cstdio>
#include <string>

#include <sys/wait.h>

namespace rill::testing {

struct CommandResult {
  int exit_code = -1;
  // stdout and stderr together.
  std::string output;
};

inline CommandResult run_command(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  while (std::size_t n = fread(buffer, 1, sizeof(buffer), pipe)) result.output.append(buffer, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace rill::testing
