// libFuzzer target: the host's config loader (GKeyFile text → Config), the file
// operators write and the HTTP API's schema shares. Whatever the text, load_text()
// returns a Config or throws arcly::Error naming the problems; and a secret the
// text sets (token=, read-token=, passphrase=, user.NAME=) never shows in the
// problems or in `arcly check`'s summary (unless it is arcly's own wording: a
// "secret" such as "attern(s), 1 token(s" is found in the summary whatever it is).
#include <gst/gst.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "arcly/error.hpp"
#include "config.hpp"

namespace {

std::string trim(std::string s) {
  const auto a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return {};
  const auto b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}

// Values of secret keys that are long and occur once in the text, so finding
// them in an output can only mean the output quoted the secret.
std::vector<std::string> secrets_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    const auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    const std::string key = trim(line.substr(0, eq));
    const std::string value = trim(line.substr(eq + 1));
    const bool secret =
        key == "token" || key == "read-token" || key == "passphrase" || key.rfind("user.", 0) == 0;
    if (!secret || value.size() < 10) continue;
    if (text.find(value) != text.rfind(value)) continue;
    out.push_back(value);
  }
  return out;
}

// What `arcly check` would show for `text`: the summary, or the problems.
std::string shown_for(const std::string& text) {
  try {
    return arcly::host::explain(arcly::host::load_text(text, "fuzz.conf", "/nonexistent"));
  } catch (const arcly::Error& e) {
    return e.what();
  }
}

// A secret found in what is shown is a leak only if it is not arcly's own wording:
// with the secret's value replaced by other characters, it must vanish.
void expect_no_secret(const std::string& text, const std::string& shown,
                      const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) {
    if (shown.find(s) == std::string::npos) continue;
    std::string other = text;
    for (auto at = other.find(s); at != std::string::npos; at = other.find(s, at + s.size()))
      other.replace(at, s.size(), std::string(s.size(), '\x01'));
    if (shown_for(other).find(s) == std::string::npos) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  gst_init(nullptr, nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto secrets = secrets_of(text);
  expect_no_secret(text, shown_for(text), secrets);
  return 0;
}
