// Which allocator the process runs on, for `rill version` and the start-up
// log line: memory figures mean different things under tcmalloc and glibc.
#pragma once

#include <string>

namespace rill::runtime {

// The file name of the shared object that malloc resolves to in this process,
// such as "libtcmalloc_minimal.so.4" or "libc.so.6"; "unknown" when the
// dynamic linker cannot tell.
std::string allocator_library();

}  // namespace rill::runtime
