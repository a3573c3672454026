// On a fatal signal (a crash), writes the signal and the crashing thread's
// stack to stderr before the process dies as it would have: the same signal,
// the same exit code, a core dump where the system keeps them. An operator
// then has more to report than "exited with code 139".
#pragma once

namespace rill::log {

// Installs the handler for SIGSEGV, SIGBUS, SIGFPE, SIGILL and SIGABRT. Safe to
// call more than once.
void install_crash_report();

}  // namespace rill::log
