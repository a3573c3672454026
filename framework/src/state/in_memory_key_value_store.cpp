// The in-memory key-value byte store.
#include "state/in_memory_key_value_store.h"

#include <algorithm>
#include <utility>

namespace rill::state {

// Copies the current entry, so that key() and value() stay valid whatever the
// store does until next(); next() steps on in the map, or, after an erase,
// finds the first key after the copied one.
class InMemoryKeyValueStore::Iterator final : public KeyValueBytesIterator {
 public:
  Iterator(const InMemoryKeyValueStore& store, Map::const_iterator first,
           std::optional<std::string> to_exclusive)
      : store_(&store),
        erasures_(store.erasures_),
        position_(first),
        to_exclusive_(std::move(to_exclusive)) {
    store_->iterators_.push_back(this);
    settle();
  }
  ~Iterator() override {
    if (store_ != nullptr) std::erase(store_->iterators_, this);
  }
  Iterator(const Iterator&) = delete;
  Iterator& operator=(const Iterator&) = delete;

  bool valid() const override { return valid_; }
  void next() override {
    if (!valid_) return;
    if (store_ == nullptr) {
      valid_ = false;
      return;
    }
    if (store_->erasures_ != erasures_) {
      erasures_ = store_->erasures_;
      position_ = store_->map_.upper_bound(std::string_view(key_));
    } else {
      ++position_;
    }
    settle();
  }
  std::string_view key() const override { return key_; }
  std::string_view value() const override { return value_; }

  void detach() {
    store_ = nullptr;
    valid_ = false;
  }

 private:
  void settle() {
    valid_ = position_ != store_->map_.end() &&
             (!to_exclusive_ || compare_bytes(position_->first, *to_exclusive_) < 0);
    if (valid_) {
      key_.assign(position_->first);
      value_.assign(position_->second);
    }
  }

  const InMemoryKeyValueStore* store_;
  uint64_t erasures_;
  Map::const_iterator position_;
  std::optional<std::string> to_exclusive_;
  bool valid_ = false;
  std::string key_;
  std::string value_;
};

InMemoryKeyValueStore::InMemoryKeyValueStore(std::string name) : name_(std::move(name)) {}

InMemoryKeyValueStore::~InMemoryKeyValueStore() {
  close();
}

void InMemoryKeyValueStore::close() {
  for (Iterator* iterator : iterators_) iterator->detach();
  iterators_.clear();
  map_.clear();
  ++erasures_;
  open_ = false;
}

void InMemoryKeyValueStore::check_open() const {
  if (!open_) throw StateStoreError("state store '" + name_ + "' is closed");
}

std::optional<std::string> InMemoryKeyValueStore::get(std::string_view key) const {
  check_open();
  auto it = map_.find(key);
  if (it == map_.end()) return std::nullopt;
  return it->second;
}

void InMemoryKeyValueStore::put(std::string_view key, std::string_view value) {
  check_open();
  auto it = map_.lower_bound(key);
  if (it != map_.end() && it->first == key)
    it->second.assign(value);
  else
    map_.emplace_hint(it, key, value);
}

std::optional<std::string> InMemoryKeyValueStore::put_if_absent(std::string_view key,
                                                                std::string_view value) {
  check_open();
  auto it = map_.lower_bound(key);
  if (it != map_.end() && it->first == key) return it->second;
  map_.emplace_hint(it, key, value);
  return std::nullopt;
}

void InMemoryKeyValueStore::remove(std::string_view key) {
  check_open();
  auto it = map_.find(key);
  if (it == map_.end()) return;
  map_.erase(it);
  ++erasures_;
}

void InMemoryKeyValueStore::write_all(std::span<const BytesWrite> writes) {
  for (const BytesWrite& write : writes) {
    if (write.value)
      put(write.key, *write.value);
    else
      remove(write.key);
  }
}

void InMemoryKeyValueStore::remove_range(std::string_view from, std::string_view to_exclusive) {
  check_open();
  if (compare_bytes(from, to_exclusive) >= 0) return;
  map_.erase(map_.lower_bound(from), map_.lower_bound(to_exclusive));
  ++erasures_;
}

std::unique_ptr<KeyValueBytesIterator> InMemoryKeyValueStore::scan(
    std::string_view from, std::optional<std::string> to_exclusive) const {
  check_open();
  return std::make_unique<Iterator>(*this, map_.lower_bound(from), std::move(to_exclusive));
}

std::unique_ptr<KeyValueBytesIterator> InMemoryKeyValueStore::range(std::string_view from,
                                                                    std::string_view to) const {
  // from > to gives an empty iterator: no key is >= from and <= to.
  if (compare_bytes(from, to) > 0) return scan(from, std::string(from));
  return scan(from, key_successor(to));
}

std::unique_ptr<KeyValueBytesIterator> InMemoryKeyValueStore::prefix_scan(
    std::string_view prefix) const {
  return scan(prefix, prefix_successor(prefix));
}

std::unique_ptr<KeyValueBytesIterator> InMemoryKeyValueStore::all() const {
  return scan({}, std::nullopt);
}

uint64_t InMemoryKeyValueStore::approximate_num_entries() const {
  check_open();
  return map_.size();
}

}  // namespace rill::state
