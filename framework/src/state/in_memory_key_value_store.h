// A key-value byte store in a std::map, ordered by unsigned bytes. Rebuilt from
// its changelog after a restart.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rill/internal/bytes_store.h"

#include "state/key_layout.h"

namespace rill::state {

class InMemoryKeyValueStore final : public KeyValueBytesStore {
 public:
  explicit InMemoryKeyValueStore(std::string name);
  ~InMemoryKeyValueStore() override;
  InMemoryKeyValueStore(const InMemoryKeyValueStore&) = delete;
  InMemoryKeyValueStore& operator=(const InMemoryKeyValueStore&) = delete;

  std::string_view name() const override { return name_; }
  bool persistent() const override { return false; }
  bool is_open() const override { return open_; }
  void flush() override {}
  void close() override;

  std::optional<std::string> get(std::string_view key) const override;
  void put(std::string_view key, std::string_view value) override;
  std::optional<std::string> put_if_absent(std::string_view key, std::string_view value) override;
  void remove(std::string_view key) override;
  void write_all(std::span<const BytesWrite> writes) override;
  void remove_range(std::string_view from, std::string_view to_exclusive) override;

  std::unique_ptr<KeyValueBytesIterator> range(std::string_view from,
                                               std::string_view to) const override;
  std::unique_ptr<KeyValueBytesIterator> prefix_scan(std::string_view prefix) const override;
  std::unique_ptr<KeyValueBytesIterator> all() const override;
  uint64_t approximate_num_entries() const override;

 private:
  using Map = std::map<std::string, std::string, BytesLess>;
  class Iterator;

  void check_open() const;
  std::unique_ptr<KeyValueBytesIterator> scan(std::string_view from,
                                              std::optional<std::string> to_exclusive) const;

  std::string name_;
  Map map_;
  bool open_ = true;
  // Bumped by every erase. An open iterator that sees it changed finds its
  // place again by key, since the entry it stood on may be gone.
  uint64_t erasures_ = 0;
  // Open iterators, detached on close() so that they never read a freed map.
  mutable std::vector<Iterator*> iterators_;
};

}  // namespace rill::state
