// Pieces every benchmark program shares: "--name value" arguments, clocks,
// CPU time, the one JSON line each program prints, the workload definitions
// that every system must agree on, and the order-independent digests that
// prove two outputs equal without sorting them.
#pragma once

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

namespace bench {

// ---- the workloads, as every system implements them -------------------------
//
// Input: key "u<N>", value {"user":"u<N>","amount":D.CC,"category":"c<N>",
// "ts":<event ms>,"seq":<N>,"pad":"x..."} of 150 bytes.
// W1: keep amount >= 50, write {"user":...,"amount":...} under the same key.
// W2: count records per key; output key string, value 8-byte big-endian long.
// W3: sum amount per key per tumbling minute of "ts"; output key = key bytes +
//     8-byte big-endian window start, value 8-byte big-endian double.
// W6: join each input record with its user's row in a table of customers
//     (key "u<N>", value {"name":"customer-<N>","tier":"<tier>"}), loaded with
//     timestamps before any input record; output under the same key
//     {"user":...,"amount":...,"tier":...}.
// W7: orders keyed by order id "o<seq>" (the input's value, timestamped with
//     its "ts") joined with payments of the same key (value
//     {"order":"o<seq>","method":"<method>","ts":<ms>}) whose timestamps are
//     within kJoinWindowMs of each other, inner join; output under the order
//     id {"user":...,"amount":...,"method":...,"delay_ms":<payment ts - order ts>}.
inline constexpr double kW1MinAmount = 50.0;
inline constexpr int64_t kWindowMs = 60'000;
inline constexpr int64_t kJoinWindowMs = 60'000;

// ---- time --------------------------------------------------------------------

inline int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// User plus system CPU seconds of the whole process.
inline double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// The wall-clock time and CPU time when the first input record arrived. Set
// once, from whichever thread sees it first; reading it costs one relaxed load.
class FirstRecord {
 public:
  void mark() {
    if (ms_.load(std::memory_order_relaxed) != 0) return;
    int64_t expected = 0;
    double cpu = cpu_seconds();
    if (ms_.compare_exchange_strong(expected, now_ms())) cpu_.store(cpu);
  }
  int64_t ms() const { return ms_.load(); }
  double cpu() const { return cpu_.load(); }

 private:
  std::atomic<int64_t> ms_{0};
  std::atomic<double> cpu_{0};
};

// ---- arguments ----------------------------------------------------------------

// "--name value" pairs; flags without a value are not used.
class Args {
 public:
  Args(int argc, char** argv, int first = 1) {
    for (int i = first; i < argc; ++i) {
      std::string name = argv[i];
      if (name.rfind("--", 0) != 0 || i + 1 >= argc)
        throw std::invalid_argument("expected --name value, got '" + name + "'");
      values_[name.substr(2)] = argv[++i];
    }
  }
  bool has(const std::string& name) const { return values_.contains(name); }
  std::string str(const std::string& name, std::string fallback = {}) const {
    auto it = values_.find(name);
    if (it != values_.end()) return it->second;
    if (fallback.empty()) throw std::invalid_argument("missing --" + name);
    return fallback;
  }
  std::string optional(const std::string& name) const {
    auto it = values_.find(name);
    return it == values_.end() ? std::string() : it->second;
  }
  int64_t num(const std::string& name, int64_t fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : std::stoll(it->second);
  }
  int64_t num(const std::string& name) const { return std::stoll(str(name)); }

 private:
  std::map<std::string, std::string> values_;
};

// ---- output ---------------------------------------------------------------------

// Builds the one JSON object a program prints on stdout.
class JsonLine {
 public:
  JsonLine& add(std::string_view key, std::string_view value) {
    field(key);
    out_ += '"';
    for (char c : value) {
      if (c == '"' || c == '\\') out_ += '\\';
      out_ += c;
    }
    out_ += '"';
    return *this;
  }
  JsonLine& add(std::string_view key, const char* value) {
    return add(key, std::string_view(value));
  }
  JsonLine& add(std::string_view key, int64_t value) {
    field(key);
    out_ += std::to_string(value);
    return *this;
  }
  JsonLine& add(std::string_view key, uint64_t value) {
    field(key);
    out_ += std::to_string(value);
    return *this;
  }
  JsonLine& add(std::string_view key, int value) { return add(key, static_cast<int64_t>(value)); }
  JsonLine& add(std::string_view key, double value) {
    field(key);
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.6f", std::isfinite(value) ? value : 0.0);
    out_ += buffer;
    return *this;
  }
  JsonLine& add(std::string_view key, bool value) {
    field(key);
    out_ += value ? "true" : "false";
    return *this;
  }
  JsonLine& raw(std::string_view key, std::string_view json) {
    field(key);
    out_ += json;
    return *this;
  }
  std::string str() const { return out_ + "}"; }
  void print() const { std::cout << str() << std::endl; }

 private:
  void field(std::string_view key) {
    out_ += out_.size() > 1 ? "," : "";
    out_ += '"';
    out_ += key;
    out_ += "\":";
  }
  std::string out_ = "{";
};

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

// Several instances of one application (the scale-out runs) share a
// directory where each keeps its count of processed records, so that every
// instance can stop once the group as a whole has processed the input, without
// knowing which partitions it was given.
class GroupProgress {
 public:
  explicit GroupProgress(std::string dir)
      : dir_(std::move(dir)), mine_(dir_ + "/" + std::to_string(::getpid())) {
    std::filesystem::create_directories(dir_);
  }

  // Publishes this instance's count (write and rename, so readers never see
  // half a number) and returns the group's.
  uint64_t update(uint64_t processed) {
    if (processed != published_) {
      write_file(mine_ + ".tmp", std::to_string(processed));
      std::filesystem::rename(mine_ + ".tmp", mine_);
      published_ = processed;
    }
    uint64_t total = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      if (entry.path().extension() == ".tmp") continue;
      std::ifstream in(entry.path());
      uint64_t count = 0;
      if (in >> count) total += count;
    }
    return total;
  }

 private:
  std::string dir_;
  std::string mine_;
  uint64_t published_ = ~uint64_t{0};
};

// ---- digests -------------------------------------------------------------------

// 64-bit FNV-1a, then a finalizer so that sums of hashes spread well.
inline uint64_t hash64(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return h;
}

// A multiset digest: the sum of the hashes of canonical lines, so the order in
// which records arrive does not matter and a duplicate changes it.
struct Digest {
  uint64_t sum = 0;
  uint64_t count = 0;
  void add(std::string_view canonical) {
    sum += hash64(canonical);
    ++count;
  }
  std::string hex() const {
    char buffer[17];
    std::snprintf(buffer, sizeof buffer, "%016llx", static_cast<unsigned long long>(sum));
    return buffer;
  }
};

// Canonical lines. Amounts are compared in cents, so "12.50", 12.5 and a
// double sum of cents compare equal.
inline int64_t to_cents(double amount) {
  return std::llround(amount * 100.0);
}
inline std::string w1_line(std::string_view key, std::string_view user, int64_t cents) {
  return "w1|" + std::string(key) + "|" + std::string(user) + "|" + std::to_string(cents);
}
inline std::string w2_line(std::string_view key, int64_t count) {
  return "w2|" + std::string(key) + "|" + std::to_string(count);
}
inline std::string w3_line(std::string_view key, int64_t window_start, int64_t cents) {
  return "w3|" + std::string(key) + "|" + std::to_string(window_start) + "|" +
         std::to_string(cents);
}

inline std::string w6_line(std::string_view key, std::string_view user, int64_t cents,
                           std::string_view tier) {
  return "w6|" + std::string(key) + "|" + std::string(user) + "|" + std::to_string(cents) + "|" +
         std::string(tier);
}
inline std::string w7_line(std::string_view key, std::string_view user, int64_t cents,
                           std::string_view method, int64_t delay_ms) {
  return "w7|" + std::string(key) + "|" + std::string(user) + "|" + std::to_string(cents) + "|" +
         std::string(method) + "|" + std::to_string(delay_ms);
}

// Big-endian fixed-width numbers, as Kafka's LongSerializer and DoubleSerializer.
inline int64_t read_be64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return static_cast<int64_t>(v);
}
inline double read_be_double(const char* p) {
  int64_t bits = read_be64(p);
  double d;
  static_assert(sizeof d == sizeof bits);
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

}  // namespace bench
