#include "stream_id.hpp"

#include "arcly/error.hpp"

namespace arcly::ingest {

bool key_matches(std::string_view pattern, std::string_view key) {
  // Iterative glob with backtracking on the last '*'.
  std::size_t p = 0, k = 0, star = std::string_view::npos, mark = 0;
  while (k < key.size()) {
    // '*' first: a '*' in the pattern is a wildcard even where the key has a '*'.
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = k;
    } else if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == key[k])) {
      ++p;
      ++k;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      k = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

StreamIdRequest parse_stream_id(std::string_view sid) {
  StreamIdRequest req;
  req.mode = "publish";
  if (sid.empty()) return req;
  if (!sid.starts_with("#!::")) {
    req.key = StreamKey::parse(sid);
    return req;
  }
  std::string_view rest = sid.substr(4);
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view pair = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      throw Error(Errc::InvalidArgument, "streamid: expected key=value pairs after '#!::', got '" +
                                             std::string(pair) + "'");
    }
    const std::string_view k = pair.substr(0, eq), v = pair.substr(eq + 1);
    if (k == "r") {
      req.key = StreamKey::parse(v);
    } else if (k == "m") {
      req.mode = v;
    } else if (k == "u") {
      req.user = v;
    } else if (k == "token") {
      req.token = v;
    } else if (k == "start") {
      req.start = v;
    }
  }
  return req;
}

}  // namespace arcly::ingest
