// Which allocator the process runs on, for `rill version` and the start-up
// log line: memory figures mean different things under tcmalloc and glibc.
// And what its heap holds, for the metrics: freed memory an allocator keeps
// stays resident, so a process's RSS is its peak use more than its current one.
#pragma once

#include <cstdint>
#include <string>

namespace rill::runtime {

// The file name of the shared object that malloc resolves to in this process,
// such as "libtcmalloc_minimal.so.4" or "libc.so.6"; "unknown" when the
// dynamic linker cannot tell.
std::string allocator_library();

struct HeapMemory {
  // False under an allocator that reports neither way (a sanitizer's).
  bool known = false;
  // Handed out by malloc and not yet freed.
  uint64_t allocated_bytes = 0;
  // Freed, and kept by the allocator for reuse rather than given back to the
  // system: tcmalloc's page heap and caches, glibc's arenas.
  uint64_t free_bytes = 0;
};

// The heap as tcmalloc (through its MallocExtension, when malloc resolves to
// it) or glibc (mallinfo2) reports it; unknown under any other allocator. Takes the allocator's
// locks: for a metrics scrape, not for the hot path.
HeapMemory heap_memory();

// Gives the heap's free memory beyond `keep_bytes` back to the system, so
// that RSS follows what is in use after a burst instead of staying at its
// peak; returns the bytes given back (0 under glibc, whose malloc_trim does
// not tell). Takes the allocator's locks and makes system calls: call it
// now and then, off the hot path.
uint64_t release_free_heap(uint64_t keep_bytes);

}  // namespace rill::runtime
