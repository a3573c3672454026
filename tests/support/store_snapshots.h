// What the snapshot tests share: a RocksDB store filled and checkpointed,
// its contents, and a byte flipped in an object.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "rill/state_options.h"

#include "state/rocksdb_key_value_store.h"

namespace rill::testing {

inline std::map<std::string, std::string> store_contents(const state::RocksDbKeyValueStore& store) {
  std::map<std::string, std::string> all;
  for (auto it = store.all(); it->valid(); it->next())
    all.emplace(std::string(it->key()), std::string(it->value()));
  return all;
}

// Writes `entries` keys with values tagged `version` into the RocksDB store
// "counts" in `store_dir`, checkpoints it into `into`/counts, and returns
// what the store holds.
inline std::map<std::string, std::string> filled_checkpoint(const std::filesystem::path& store_dir,
                                                            const std::filesystem::path& into,
                                                            int entries,
                                                            const std::string& version) {
  state::RocksDbKeyValueStore store("counts", store_dir, RocksDbOptions{}, nullptr);
  for (int i = 0; i < entries; ++i)
    store.put("key-" + std::to_string(i), version + "-" + std::to_string(i * 7));
  std::filesystem::create_directories(into);
  store.checkpoint_to(into / "counts");
  return store_contents(store);
}

// The contents of the store "counts" restored under `directory`.
inline std::map<std::string, std::string> restored_contents(
    const std::filesystem::path& directory) {
  const state::RocksDbKeyValueStore store("counts", directory / "counts", RocksDbOptions{},
                                          nullptr);
  return store_contents(store);
}

inline void flip_first_byte(const std::filesystem::path& file) {
  std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
  const char first = static_cast<char>(io.get());
  io.seekp(0);
  io.put(static_cast<char>(first ^ 0x5a));
}

}  // namespace rill::testing
