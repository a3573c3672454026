#include "runtime/allocator.h"

#include <cstdlib>
#include <filesystem>

#include <dlfcn.h>

namespace rill::runtime {

std::string allocator_library() {
  // The address of malloc as this program calls it: the dynamic linker's
  // choice among the libraries that define it, which is the allocator.
  void* (*const resolved)(std::size_t) = &std::malloc;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(resolved), &info) == 0 || info.dli_fname == nullptr) {
    return "unknown";
  }
  return std::filesystem::path(info.dli_fname).filename().string();
}

}  // namespace rill::runtime
