#include "arcly/stream_key.hpp"

#include "arcly/error.hpp"

namespace arcly {
namespace {

bool allowed(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

[[noreturn]] void reject(std::string_view text, const std::string& why) {
  throw Error(Errc::InvalidKey, "invalid stream key '" + std::string(text) + "': " + why +
                                    " (a key is app/stream, each 1-64 characters of "
                                    "A-Z a-z 0-9 . _ -, not '.' or '..')");
}

}  // namespace

std::string StreamKey::check_part(std::string_view part) {
  if (part.empty()) return "empty part";
  if (part.size() > kMaxPartLength) return "part longer than 64 characters";
  if (part == "." || part == "..") return "'" + std::string(part) + "' is not allowed";
  for (char c : part) {
    if (!allowed(c)) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u >= 0x7f) return "control or non-ASCII character";
      return std::string("character '") + c + "' is not allowed";
    }
  }
  return {};
}

StreamKey::StreamKey(std::string_view app, std::string_view stream) {
  const std::string text = std::string(app) + "/" + std::string(stream);
  if (auto why = check_part(app); !why.empty()) reject(text, "application: " + why);
  if (auto why = check_part(stream); !why.empty()) reject(text, "stream: " + why);
  app_ = app;
  stream_ = stream;
}

StreamKey StreamKey::parse(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) reject(text, "missing '/' between app and stream");
  if (text.find('/', slash + 1) != std::string_view::npos) reject(text, "more than one '/'");
  const auto app = text.substr(0, slash);
  const auto stream = text.substr(slash + 1);
  if (auto why = check_part(app); !why.empty()) reject(text, "application: " + why);
  if (auto why = check_part(stream); !why.empty()) reject(text, "stream: " + why);
  return StreamKey(app, stream);
}

std::optional<StreamKey> StreamKey::try_parse(std::string_view text, std::string* why) {
  try {
    return parse(text);
  } catch (const Error& e) {
    if (why) *why = e.what();
    return std::nullopt;
  }
}

}  // namespace arcly
