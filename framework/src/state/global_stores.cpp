#include "state/global_stores.h"

#include <mutex>
#include <utility>
#include <vector>

namespace rill::state {
namespace {

// The entries an iterator covered when it was opened.
class CopiedIterator final : public KeyValueBytesIterator {
 public:
  explicit CopiedIterator(std::vector<std::pair<std::string, std::string>> entries)
      : entries_(std::move(entries)) {}
  bool valid() const override { return next_ < entries_.size(); }
  void next() override { ++next_; }
  std::string_view key() const override { return entries_[next_].first; }
  std::string_view value() const override { return entries_[next_].second; }

 private:
  std::vector<std::pair<std::string, std::string>> entries_;
  std::size_t next_ = 0;
};

std::unique_ptr<KeyValueBytesIterator> copy_of(KeyValueBytesIterator& it) {
  std::vector<std::pair<std::string, std::string>> entries;
  for (; it.valid(); it.next()) entries.emplace_back(it.key(), it.value());
  return std::make_unique<CopiedIterator>(std::move(entries));
}

}  // namespace

SharedKeyValueStore::SharedKeyValueStore(std::unique_ptr<KeyValueBytesStore> inner)
    : name_(inner->name()), persistent_(inner->persistent()), inner_(std::move(inner)) {}

bool SharedKeyValueStore::is_open() const {
  std::shared_lock lock(mutex_);
  return inner_->is_open();
}

void SharedKeyValueStore::flush() {
  std::unique_lock lock(mutex_);
  inner_->flush();
}

void SharedKeyValueStore::close() {
  std::unique_lock lock(mutex_);
  inner_->close();
}

std::optional<std::string> SharedKeyValueStore::get(std::string_view key) const {
  std::shared_lock lock(mutex_);
  return inner_->get(key);
}

void SharedKeyValueStore::put(std::string_view key, std::string_view value) {
  std::unique_lock lock(mutex_);
  inner_->put(key, value);
}

std::optional<std::string> SharedKeyValueStore::put_if_absent(std::string_view key,
                                                              std::string_view value) {
  std::unique_lock lock(mutex_);
  return inner_->put_if_absent(key, value);
}

void SharedKeyValueStore::remove(std::string_view key) {
  std::unique_lock lock(mutex_);
  inner_->remove(key);
}

void SharedKeyValueStore::write_all(std::span<const BytesWrite> writes) {
  std::unique_lock lock(mutex_);
  inner_->write_all(writes);
}

void SharedKeyValueStore::remove_range(std::string_view from, std::string_view to_exclusive) {
  std::unique_lock lock(mutex_);
  inner_->remove_range(from, to_exclusive);
}

std::unique_ptr<KeyValueBytesIterator> SharedKeyValueStore::range(std::string_view from,
                                                                  std::string_view to) const {
  std::shared_lock lock(mutex_);
  return copy_of(*inner_->range(from, to));
}

std::unique_ptr<KeyValueBytesIterator> SharedKeyValueStore::prefix_scan(
    std::string_view prefix) const {
  std::shared_lock lock(mutex_);
  return copy_of(*inner_->prefix_scan(prefix));
}

std::unique_ptr<KeyValueBytesIterator> SharedKeyValueStore::all() const {
  std::shared_lock lock(mutex_);
  return copy_of(*inner_->all());
}

uint64_t SharedKeyValueStore::approximate_num_entries() const {
  std::shared_lock lock(mutex_);
  return inner_->approximate_num_entries();
}

void GlobalStoreView::require_writable() const {
  if (!writable_)
    throw StateStoreError("global store '" + std::string(name()) +
                          "' is read-only for tasks; only its global processor writes it, "
                          "from the records of its topic");
}

void GlobalStoreView::put(std::string_view key, std::string_view value) {
  require_writable();
  shared_.put(key, value);
}

std::optional<std::string> GlobalStoreView::put_if_absent(std::string_view key,
                                                          std::string_view value) {
  require_writable();
  return shared_.put_if_absent(key, value);
}

void GlobalStoreView::remove(std::string_view key) {
  require_writable();
  shared_.remove(key);
}

void GlobalStoreView::write_all(std::span<const BytesWrite> writes) {
  require_writable();
  shared_.write_all(writes);
}

void GlobalStoreView::remove_range(std::string_view from, std::string_view to_exclusive) {
  require_writable();
  shared_.remove_range(from, to_exclusive);
}

}  // namespace rill::state
