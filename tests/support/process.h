// Child processes for multi-instance tests: spawn a binary, signal it, wait for
// it, read what it wrote to stderr. The destructor kills what is still running.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace rill::testing {

class ChildProcess {
 public:
  // Starts `argv[0]` with arguments; stderr and stdout go to `log_file`. The
  // child has the test's environment with `environment` added over it.
  ChildProcess(std::vector<std::string> argv, std::string log_file,
               const std::map<std::string, std::string>& environment = {});
  ~ChildProcess();
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  void signal(int signal);
  // The exit code (128 + signal when killed), or nullopt after the timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();
  std::string log() const;
  // The last `bytes` of the log, for failure messages.
  std::string log_tail(std::size_t bytes = 4000) const;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_file_;
};

// Path of a binary built next to the test executable (tests/apps/...).
std::string test_binary(const std::string& name);

}  // namespace rill::testing
