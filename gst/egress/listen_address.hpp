// Listen addresses as operators write them in a config: "HOST:PORT", ":PORT"
// (every interface), "[v6addr]:PORT". Shared by the RTSP and SRT servers.
#pragma once

#include <string>
#include <string_view>

namespace arcly::egress {

struct ListenAddress {
  std::string host;  // empty = every interface
  int port = 0;      // 0 = any free port
  std::string str() const;
};

// Throws arcly::Error{InvalidArgument} quoting `text` and saying what is expected.
ListenAddress parse_listen_address(std::string_view text);

}  // namespace arcly::egress
