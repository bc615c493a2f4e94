// ReaderStart — where a network reader (RTSP ?start=, SRT streamid start=)
// begins, one vocabulary for both servers: "live-edge" (the cached keyframe,
// a catch-up, then live) or "keyframe" (the cached GOP at its spacing).
#pragma once

#include <optional>
#include <string_view>

namespace arcly::egress {

enum class ReaderStart { LiveEdge, Keyframe };

inline std::optional<ReaderStart> parse_reader_start(std::string_view value) {
  if (value == "live-edge") return ReaderStart::LiveEdge;
  if (value == "keyframe") return ReaderStart::Keyframe;
  return std::nullopt;
}

inline const char* reader_start_name(ReaderStart s) {
  return s == ReaderStart::Keyframe ? "keyframe" : "live-edge";
}

}  // namespace arcly::egress
