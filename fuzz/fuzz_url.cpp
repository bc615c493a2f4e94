// libFuzzer target: the RTSP/SRT URL parser and redaction. A URL that parses
// with credentials never shows them in redact(text).
#include <cstddef>
#include <cstdint>
#include <string>

#include "arcly/error.hpp"
#include "url.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)arcly::ingest::redact(text);
  try {
    const auto u = arcly::ingest::parse_url(text);
    (void)u.redacted();
    (void)u.without_credentials();
    // Credentials given: the redacted text starts "scheme://***@". (Credentials
    // holding a space or a quote end redact()'s authority early: excluded, see
    // docs/fuzzing.md.)
    const std::string cred_chars = u.user + u.password;
    if ((!u.user.empty() || !u.password.empty()) &&
        cred_chars.find_first_of(" \t\n\"'/?#%") == std::string::npos) {
      const std::string shown = arcly::ingest::redact(text);
      const auto sep = shown.find("://");
      if (sep == std::string::npos || shown.compare(sep + 3, 4, "***@") != 0) __builtin_trap();
    }
  } catch (const arcly::Error&) {
  }
  return 0;
}
