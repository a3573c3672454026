#include "state/memtable_entries.h"

#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string_view>

#include <rocksdb/slice.h>

namespace rill::state {
namespace {

// An internal key's sequence number and type, which RocksDB writes little-endian.
uint64_t footer_of(const char* footer) {
  uint64_t value = 0;
  for (std::size_t byte = kInternalKeyFooter; byte > 0; --byte)
    value = (value << 8) | static_cast<unsigned char>(footer[byte - 1]);
  return value;
}

// How many of their first `limit` bytes `a` and `b` share.
std::size_t shared_size(std::string_view a, std::string_view b, std::size_t limit) {
  limit = std::min({limit, a.size(), b.size()});
  std::size_t same = 0;
  while (same < limit && a[same] == b[same]) ++same;
  return same;
}

// The 16 bytes of `user_key` after its first `skip`, as two big-endian
// integers, zeros past its end. Keys whose heads differ are in the order of
// their heads: a key that ends within them is a prefix of the other up to
// there, and so the lesser.
std::array<uint64_t, 2> head_after(std::string_view user_key, std::size_t skip) {
  std::array<unsigned char, 16> bytes{};
  const std::size_t size = std::min(bytes.size(), user_key.size() - skip);
  std::memcpy(bytes.data(), user_key.data() + skip, size);
  std::array<uint64_t, 2> head{};
  for (std::size_t i = 0; i < bytes.size(); ++i) head[i / 8] = (head[i / 8] << 8) | bytes[i];
  return head;
}

}  // namespace

// Each entry is decoded once. The keys of a memtable share their first bytes
// (a window store's segment ids differ in the last), so each entry also
// carries the 16 bytes after the prefix all keys share, as two integers: most
// comparisons end there, where comparing the keys' bytes took most of a sort.
void sort_bytewise(MemtableEntries& entries) {
  struct Decoded {
    std::array<uint64_t, 2> head;
    std::string_view user_key;
    uint64_t footer;
    const char* entry;
  };
  std::vector<Decoded> decoded;
  decoded.reserve(entries.size());
  // How many first bytes all keys share.
  std::size_t shared = std::numeric_limits<std::size_t>::max();
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (i + kPrefetchAhead < entries.size()) __builtin_prefetch(entries[i + kPrefetchAhead]);
    const rocksdb::Slice internal = rocksdb::GetLengthPrefixedSlice(entries[i]);
    const std::size_t key_size = internal.size() - kInternalKeyFooter;
    decoded.push_back({{},
                       std::string_view(internal.data(), key_size),
                       footer_of(internal.data() + key_size),
                       entries[i]});
    shared = shared_size(decoded.front().user_key, decoded.back().user_key, shared);
  }
  for (std::size_t i = 0; i < decoded.size(); ++i) {
    if (i + kPrefetchAhead < decoded.size())
      __builtin_prefetch(decoded[i + kPrefetchAhead].user_key.data());
    decoded[i].head = head_after(decoded[i].user_key, shared);
  }
  std::sort(decoded.begin(), decoded.end(), [](const Decoded& a, const Decoded& b) {
    // Compared one integer at a time: std::array's operators call memcmp.
    if (a.head[0] != b.head[0]) return a.head[0] < b.head[0];
    if (a.head[1] != b.head[1]) return a.head[1] < b.head[1];
    const int order = a.user_key.compare(b.user_key);
    return order != 0 ? order < 0 : a.footer > b.footer;
  });
  for (std::size_t i = 0; i < decoded.size(); ++i) entries[i] = decoded[i].entry;
}

}  // namespace rill::state
