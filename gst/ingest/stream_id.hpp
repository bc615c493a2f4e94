// Who may publish what: the SRT streamid form ("#!::r=live/cam,m=publish,
// token=...", or a plain "live/cam") and the glob patterns of `allow=` and
// per-key tokens, shared by the SRT and RTMP workers. Pure C++ (engine only),
// fuzzed by fuzz/stream_id.cpp.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "arcly/stream_key.hpp"

namespace arcly::ingest {

// What a caller's streamid asks for.
struct StreamIdRequest {
  std::optional<StreamKey> key;
  std::string mode;  // "publish", "request", ... ("publish" when absent)
  std::string user;
  std::string token;
  std::string start;  // a reader's start= ("keyframe", "live-edge"; checked by the reader's server)
};
// Parses "#!::r=app/stream,m=publish,…" or "app/stream" or "" (no key). Throws
// arcly::Error{InvalidKey / InvalidArgument} naming what is wrong.
StreamIdRequest parse_stream_id(std::string_view streamid);
// Glob match of a key ("live/*", "cams/door?").
bool key_matches(std::string_view pattern, std::string_view key);

}  // namespace arcly::ingest
