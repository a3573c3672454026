#include "runtime/allocator.h"

#include <bit>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include <dlfcn.h>
#include <malloc.h>

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

namespace {

const std::string kAllocator = allocator_library();

// tcmalloc's extension functions, looked up rather than linked so that a
// build on the system allocator needs no gperftools; null unless malloc is
// tcmalloc's.
template <class Function>
Function tcmalloc_function(const char* name) {
  return kAllocator.starts_with("libtcmalloc") ? std::bit_cast<Function>(dlsym(RTLD_DEFAULT, name))
                                               : nullptr;
}

using NumericProperty = int (*)(const char*, std::size_t*);
using ReleaseToSystem = void (*)(std::size_t);
const NumericProperty tcmalloc_property =
    tcmalloc_function<NumericProperty>("MallocExtension_GetNumericProperty");
const ReleaseToSystem tcmalloc_release =
    tcmalloc_function<ReleaseToSystem>("MallocExtension_ReleaseToSystem");
const bool on_glibc = kAllocator.starts_with("libc.so");

std::optional<uint64_t> tcmalloc_value(const char* property) {
  std::size_t value = 0;
  if (tcmalloc_property == nullptr || tcmalloc_property(property, &value) == 0) return std::nullopt;
  return value;
}

}  // namespace

HeapMemory heap_memory() {
  HeapMemory heap;
  if (tcmalloc_property != nullptr) {
    const auto allocated = tcmalloc_value("generic.current_allocated_bytes");
    const auto heap_size = tcmalloc_value("generic.heap_size");
    const auto unmapped = tcmalloc_value("tcmalloc.pageheap_unmapped_bytes");
    if (allocated && heap_size && unmapped) {
      heap.known = true;
      heap.allocated_bytes = *allocated;
      // What the heap holds in memory (not given back) beyond what is in use.
      const uint64_t mapped = *heap_size - *unmapped;
      heap.free_bytes = mapped > *allocated ? mapped - *allocated : 0;
    }
    return heap;
  }
  if (!on_glibc) return heap;
  const struct mallinfo2 info = mallinfo2();
  heap.known = true;
  heap.allocated_bytes = info.uordblks + info.hblkhd;
  heap.free_bytes = info.fordblks;
  return heap;
}

uint64_t release_free_heap(uint64_t keep_bytes) {
  if (tcmalloc_release != nullptr) {
    // Only whole free pages can go back; small freed objects wait in caches.
    const uint64_t free_pages = tcmalloc_value("tcmalloc.pageheap_free_bytes").value_or(0);
    if (free_pages <= keep_bytes) return 0;
    const uint64_t unmapped = tcmalloc_value("tcmalloc.pageheap_unmapped_bytes").value_or(0);
    tcmalloc_release(free_pages - keep_bytes);
    const uint64_t now_unmapped = tcmalloc_value("tcmalloc.pageheap_unmapped_bytes").value_or(0);
    return now_unmapped > unmapped ? now_unmapped - unmapped : 0;
  }
  if (on_glibc && mallinfo2().fordblks > keep_bytes) malloc_trim(keep_bytes);
  return 0;
}

}  // namespace rill::runtime
