// libFuzzer target: the SRT streamid parser ("#!::r=...,m=...,u=...,token=...")
// and the key globs of allow= and tokens (input "PATTERN\nKEY").
#include <cstddef>
#include <cstdint>
#include <string>

#include "arcly/error.hpp"
#include "stream_id.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto req = arcly::ingest::parse_stream_id(text);
    if (req.mode.empty() && !text.starts_with("#!::")) __builtin_trap();
  } catch (const arcly::Error&) {
  }
  const auto nl = text.find('\n');
  if (nl != std::string_view::npos) {
    const auto pattern = text.substr(0, nl), key = text.substr(nl + 1);
    const bool m = arcly::ingest::key_matches(pattern, key);
    if (pattern == key && !m) __builtin_trap();                   // a pattern matches itself...
    if (!arcly::ingest::key_matches("*", key)) __builtin_trap();  // ... '*' matches all
    (void)m;
  }
  return 0;
}
