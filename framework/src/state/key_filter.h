// A Bloom filter over the record keys written to one time segment, so that a
// lookup of a key the segment never held costs no RocksDB read: a join looks
// up every record's key in the other side's segments, and mostly finds it in
// one of them, or in none.
//
// The filter grows with its segment, which is not sized in advance: when a
// layer has taken as many keys as it was sized for, a layer twice its size
// takes the next ones, and a lookup asks every layer. Each layer is a blocked
// Bloom filter (all of a key's bits in one 64-byte block) at 10 bits per key,
// about 1% false positives per layer. Keys are never taken out: a removed key
// costs a read that finds nothing, as without the filter.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace rill::state {

class KeyFilter {
 public:
  using Hash = uint64_t;

  static Hash hash(std::string_view key) { return std::hash<std::string_view>{}(key); }

  // A filter first sized for `expected_keys` (at least kMinKeys).
  explicit KeyFilter(std::size_t expected_keys) { add_layer(std::max(expected_keys, kMinKeys)); }

  // Adds a key not yet (as far as the filter knows) in it, and returns true;
  // false when the filter may hold it already, which leaves it unchanged.
  bool add(Hash hash) {
    if (may_contain(hash)) return false;
    if (layers_.back().keys == layers_.back().capacity) add_layer(2 * layers_.back().capacity);
    Layer& layer = layers_.back();
    Block& block = layer.blocks[layer.block_of(hash)];
    for_each_bit(hash, [&block](unsigned bit) { block[bit / 64] |= uint64_t{1} << (bit % 64); });
    ++layer.keys;
    ++keys_;
    return true;
  }

  // False only when the key was never added.
  bool may_contain(Hash hash) const {
    for (const Layer& layer : layers_) {
      const Block& block = layer.blocks[layer.block_of(hash)];
      bool all = true;
      for_each_bit(hash, [&](unsigned bit) {
        all = all && (block[bit / 64] & (uint64_t{1} << (bit % 64))) != 0;
      });
      if (all) return true;
    }
    return false;
  }

  // The keys added (each counted once, as far as the filter could tell).
  std::size_t keys() const { return keys_; }

  static constexpr std::size_t kMinKeys = 1024;

 private:
  static constexpr unsigned kBitsPerKey = 10;
  static constexpr unsigned kProbes = 6;
  static constexpr unsigned kBlockBits = 512;
  using Block = std::array<uint64_t, kBlockBits / 64>;

  struct Layer {
    std::vector<Block> blocks;
    std::size_t capacity = 0;
    std::size_t keys = 0;
    // The high half of the hash picks the block, the low half the bits in it.
    std::size_t block_of(Hash hash) const {
      return static_cast<std::size_t>(((hash >> 32) * blocks.size()) >> 32);
    }
  };

  void add_layer(std::size_t capacity) {
    Layer layer;
    layer.capacity = capacity;
    layer.blocks.resize((capacity * kBitsPerKey + kBlockBits - 1) / kBlockBits);
    layers_.push_back(std::move(layer));
  }

  template <class F>
  static void for_each_bit(Hash hash, F&& f) {
    auto bits = static_cast<uint32_t>(hash);
    const uint32_t step = (bits >> 17) | (bits << 15);
    for (unsigned i = 0; i < kProbes; ++i) {
      f(bits % kBlockBits);
      bits += step;
    }
  }

  std::vector<Layer> layers_;
  std::size_t keys_ = 0;
};

}  // namespace rill::state
