#include "url.hpp"

#include <cctype>
#include <charconv>

#include "arcly/error.hpp"

namespace arcly::ingest {
namespace {

std::string percent_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string host_port(const UrlParts& u) {
  std::string hp = u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
  if (u.port >= 0) hp += ":" + std::to_string(u.port);
  return hp;
}

// "passphrase=…", "password=…", "token=…" as URI query or streamid fields
// (srt://h:9000?passphrase=…, #!::r=live/cam,token=…): the value becomes ***.
std::string hide_secret_values(std::string text) {
  static constexpr std::string_view kSecretKeys[] = {"passphrase=", "password=", "token="};
  for (const std::string_view key : kSecretKeys) {
    std::size_t at = 0;
    while ((at = text.find(key, at)) != std::string::npos) {
      const bool starts_field =
          at == 0 || std::string_view("?&,:; \t").find(text[at - 1]) != std::string_view::npos;
      const std::size_t value = at + key.size();
      at = value;
      if (!starts_field) continue;
      const auto end = text.find_first_of("&,; \t\n\"'#", value);
      const std::size_t len = (end == std::string::npos ? text.size() : end) - value;
      if (len == 0) continue;
      text.replace(value, len, "***");
      at = value + 3;
    }
  }
  return text;
}

}  // namespace

std::string UrlParts::without_credentials() const {
  return scheme + "://" + host_port(*this) + rest;
}

std::string UrlParts::redacted() const {
  const bool secret = !user.empty() || !password.empty();
  return hide_secret_values(scheme + "://" + (secret ? "***@" : "") + host_port(*this) + rest);
}

UrlParts parse_url(std::string_view url) {
  const std::string shown = redact(url);
  auto bad = [&](const std::string& why) -> UrlParts {
    throw Error(Errc::InvalidArgument, "invalid URL '" + shown + "': " + why);
  };
  UrlParts u;
  const auto sep = url.find("://");
  if (sep == std::string_view::npos || sep == 0) return bad("expected scheme://host");
  for (char c : url.substr(0, sep)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return bad("bad scheme");
    }
    u.scheme += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  std::string_view rest = url.substr(sep + 3);
  const auto end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  u.rest = end == std::string_view::npos ? "" : std::string(rest.substr(end));
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view cred = authority.substr(0, at);
    authority = authority.substr(at + 1);
    const auto colon = cred.find(':');
    u.user = percent_decode(cred.substr(0, colon));
    if (colon != std::string_view::npos) u.password = percent_decode(cred.substr(colon + 1));
  }
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("unclosed '[' in host");
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("unexpected text after ']'");
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (!port.empty() || authority.ends_with(":")) {
    int p = -1;
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc() || ptr != port.data() + port.size() || p < 0 || p > 65535) {
      return bad("port must be a number from 0 to 65535");
    }
    u.port = p;
  }
  for (char c : u.host) {
    if (std::isspace(static_cast<unsigned char>(c))) return bad("space in host");
  }
  return u;
}

std::string redact(std::string_view text) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto sep = text.find("://", i);
    if (sep == std::string_view::npos) break;
    out.append(text.substr(i, sep + 3 - i));
    std::size_t j = sep + 3;
    // A password may hold spaces when a user typed it unencoded (rtspsrc takes it
    // so): the authority runs to the path, not to the next blank. Hiding too much
    // of a log line is the safe side of this guess.
    const auto end = text.find_first_of("/?#\n\"'", j);
    const std::string_view authority =
        text.substr(j, end == std::string_view::npos ? end : end - j);
    const auto at = authority.rfind('@');
    if (at != std::string_view::npos) {
      out.append("***@");
      j += at + 1;
    }
    i = j;
  }
  out.append(text.substr(std::min(i, text.size())));
  return hide_secret_values(std::move(out));
}

}  // namespace arcly::ingest
