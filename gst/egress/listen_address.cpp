#include "listen_address.hpp"

#include <charconv>

#include "arcly/error.hpp"

namespace arcly::egress {

std::string ListenAddress::str() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

ListenAddress parse_listen_address(std::string_view text) {
  const auto bad = [&](const char* why) {
    return Error(Errc::InvalidArgument, "listen address '" + std::string(text) + "': " + why +
                                            " (expected HOST:PORT, :PORT or [IPv6]:PORT)");
  };
  ListenAddress a;
  std::string_view port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw bad("unterminated [IPv6] host");
    a.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) throw bad("no port");
    a.host = std::string(text.substr(0, colon));
    if (a.host.find(':') != std::string::npos) throw bad("an IPv6 host must be in brackets");
    port = text.substr(colon + 1);
  }
  int value = -1;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value < 0 ||
      value > 65535)
    throw bad("the port must be a number from 0 to 65535");
  a.port = value;
  return a;
}

}  // namespace arcly::egress
