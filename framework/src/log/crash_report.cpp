#include "log/crash_report.h"

#include <csignal>
#include <cstring>

#include <execinfo.h>
#include <unistd.h>

namespace rill::log {
namespace {

constexpr int kFatalSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
constexpr int kMaxFrames = 64;

void write_stderr(const char* text) {
  // Nothing to do about a failed write while crashing.
  [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, text, std::strlen(text));
}

// Runs in a signal handler: only async-signal-safe calls (write, backtrace
// once loaded, backtrace_symbols_fd), no allocation, no formatting library.
void on_fatal_signal(int signal) {
  char line[96] = "rill: fatal signal ";
  char number[12];
  int length = 0;
  for (int rest = signal; rest > 0 || length == 0; rest /= 10) number[length++] = '0' + rest % 10;
  std::size_t at = std::strlen(line);
  while (length > 0) line[at++] = number[--length];
  line[at] = '\0';
  write_stderr(line);
  write_stderr(" (");
  write_stderr(sigdescr_np(signal) != nullptr ? sigdescr_np(signal) : "unknown");
  write_stderr("); stack of the crashing thread:\n");
  void* frames[kMaxFrames];
  const int count = ::backtrace(frames, kMaxFrames);
  ::backtrace_symbols_fd(frames, count, STDERR_FILENO);
  // Die of the signal itself, as without the handler.
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

}  // namespace

void install_crash_report() {
  // backtrace() loads libgcc on its first call, which allocates: do that now,
  // not in the handler.
  void* warm_up[1];
  ::backtrace(warm_up, 1);
  struct sigaction action {};
  action.sa_handler = on_fatal_signal;
  sigemptyset(&action.sa_mask);
  // SA_RESETHAND: a second fault inside the handler ends the process at once.
  action.sa_flags = SA_RESETHAND;
  for (const int signal : kFatalSignals) sigaction(signal, &action, nullptr);
}

}  // namespace rill::log
