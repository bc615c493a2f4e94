// libFuzzer target: AMF0 decoding; whatever decodes re-encodes to bytes that
// decode to the same number of values of the same types.
#include <cstddef>
#include <cstdint>

#include "amf0.hpp"

using namespace arcly::rtmp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<AmfValue> values;
  try {
    values = decode_all(std::span(data, size));
  } catch (const ProtocolError&) {
    return 0;
  }
  std::vector<std::uint8_t> again;
  for (const auto& v : values) encode(v, again);
  const auto back = decode_all(again);  // must not throw
  if (back.size() != values.size()) __builtin_trap();
  for (std::size_t i = 0; i < back.size(); ++i) {
    const bool string_kind = values[i].is_string() && back[i].is_string();
    if (back[i].type != values[i].type && !string_kind) __builtin_trap();
  }
  return 0;
}
