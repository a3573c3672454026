// Fuzzes the serdes with the bytes a topic, a changelog or a store may hand
// them: the first input byte picks a serde (and whether the bytes are null),
// the rest is what it reads. A SerdeError is the expected outcome of bad
// bytes. What reads must write back and read again as the same value, and as
// the same bytes where the format has one encoding per value; a mismatch, any
// other exception or a sanitizer report is a finding.
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rill/json.h"
#include "rill/pipeline/pipeline.h"
#include "rill/serde.h"
#include "rill/value_and_timestamp.h"
#include "rill/windows.h"

namespace {

using rill::NullableBytes;
using rill::SerdePtr;
using rill::pipeline::Json;
namespace serdes = rill::serdes;

enum class Encoding {
  // One encoding per value: writing what was read gives the same bytes.
  kCanonical,
  // Several texts for one value (JSON spacing): only the value must survive.
  kValueOnly,
};

template <class T>
bool same(const T& a, const T& b) {
  if constexpr (std::is_same_v<T, double>)
    return std::bit_cast<uint64_t>(a) == std::bit_cast<uint64_t>(b);  // NaN payloads too
  else
    return a == b;
}

template <class T>
void check_round_trip(const SerdePtr<T>& serde, NullableBytes bytes, Encoding encoding) {
  std::optional<T> value;
  try {
    value.emplace(serde->deserialize(bytes));
  } catch (const rill::SerdeError&) {
    return;
  }
  std::string written;
  if (!serde->serialize(*value, written)) return;  // written as null (a tombstone)
  if (encoding == Encoding::kCanonical && bytes && written != *bytes) std::abort();
  if (!same(serde->deserialize(written), *value)) std::abort();
}

using Check = std::function<void(NullableBytes)>;

template <class T>
Check check(SerdePtr<T> serde, Encoding encoding = Encoding::kCanonical) {
  return [serde = std::move(serde), encoding](NullableBytes bytes) {
    check_round_trip(serde, bytes, encoding);
  };
}

const std::vector<Check>& checks() {
  using std::chrono::milliseconds;
  static const std::vector<Check> all = {
      check(serdes::string()),
      check(serdes::bytes()),
      check(serdes::int32()),
      check(serdes::int64()),
      check(serdes::float64()),
      check(serdes::json<Json>(), Encoding::kValueOnly),
      check(serdes::nullable(serdes::int64())),
      check(serdes::nullable(serdes::json<Json>()), Encoding::kValueOnly),
      check(serdes::time_windowed(serdes::string())),
      check(serdes::time_windowed(serdes::string(), milliseconds(60000))),
      check(serdes::time_windowed(serdes::int64(), milliseconds(1))),
      check(serdes::time_windowed(serdes::json<Json>()), Encoding::kValueOnly),
      check(serdes::session_windowed(serdes::string())),
      check(serdes::session_windowed(serdes::int32())),
      check(serdes::session_windowed(serdes::json<Json>()), Encoding::kValueOnly),
      check(serdes::value_and_timestamp(serdes::string())),
      check(serdes::value_and_timestamp(serdes::int64())),
      check(serdes::value_and_timestamp(serdes::json<Json>()), Encoding::kValueOnly),
      // The record formats of pipelines.
      check(rill::pipeline::format_serde("json"), Encoding::kValueOnly),
      check(rill::pipeline::format_serde("string")),
      check(rill::pipeline::format_serde("bytes")),
      check(rill::pipeline::format_serde("int64")),
  };
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto& all = checks();
  const uint8_t selector = data[0];
  const Check& run = all[(selector >> 1) % all.size()];
  const std::string_view payload(reinterpret_cast<const char*>(data + 1), size - 1);
  run((selector & 1) ? NullableBytes() : NullableBytes(payload));
  return 0;
}
