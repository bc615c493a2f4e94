// libFuzzer target: stream keys. A key that parses prints as text that parses
// to the same key; one that does not says why.
#include <cstddef>
#include <cstdint>
#include <string>

#include "arcly/error.hpp"
#include "arcly/stream_key.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::string why;
  auto key = arcly::StreamKey::try_parse(text, &why);
  if (!key) {
    if (why.empty()) __builtin_trap();
    try {
      arcly::StreamKey::parse(text);
      __builtin_trap();  // try_parse and parse disagree
    } catch (const arcly::Error&) {
    }
    return 0;
  }
  if (arcly::StreamKey::parse(key->str()) != *key) __builtin_trap();
  return 0;
}
