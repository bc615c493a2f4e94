// Stream keys as users type them into element properties and URIs: parsing that
// fails with a message quoting the text and showing what a valid key looks like.
#pragma once

#include <string>
#include <string_view>

#include "arcly/error.hpp"
#include "arcly/stream_key.hpp"

namespace arcly::gst {

inline constexpr const char* kValidKeyHint =
    "a valid key looks like app/stream (e.g. live/cam): two parts of 1-64 characters "
    "from [A-Za-z0-9._-], neither \".\" nor \"..\"";

// Throws arcly::Error{InvalidKey}; `who` names the element ("arclysink").
inline StreamKey parse_stream_key(const std::string& text, std::string_view who) {
  if (text.empty())
    throw Error(Errc::InvalidKey, std::string(who) +
                                      ": no stream key set; set stream=app/stream "
                                      "(" +
                                      kValidKeyHint + ")");
  std::string why;
  if (auto key = StreamKey::try_parse(text, &why)) return *key;
  throw Error(Errc::InvalidKey, std::string(who) + ": invalid stream key \"" + text + "\": " + why +
                                    "; " + kValidKeyHint);
}

}  // namespace arcly::gst
