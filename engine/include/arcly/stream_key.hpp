// arcly::StreamKey — the `app/stream` name of a live stream.
//
// Contract: both parts are 1–64 characters of [A-Za-z0-9._-], neither is "." or
// "..", and the text form has exactly one '/'. Keys become file names later, so
// nothing that could escape a directory is accepted. Construction validates and
// throws Error{InvalidKey} with a message that quotes the offending text.
// Immutable, cheap to copy, hashable, ordered.
#pragma once

#include <compare>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace arcly {

class StreamKey {
 public:
  static constexpr std::size_t kMaxPartLength = 64;

  // Validates both parts; throws Error{InvalidKey}.
  StreamKey(std::string_view app, std::string_view stream);

  // Parses "app/stream"; throws Error{InvalidKey} quoting `text`.
  static StreamKey parse(std::string_view text);
  // Parses without throwing; on failure returns nullopt and, if given, the reason.
  static std::optional<StreamKey> try_parse(std::string_view text, std::string* why = nullptr);
  // Checks one part (app or stream); returns an empty string when valid, else the reason.
  static std::string check_part(std::string_view part);

  const std::string& app() const { return app_; }
  const std::string& stream() const { return stream_; }
  std::string str() const { return app_ + "/" + stream_; }

  friend bool operator==(const StreamKey&, const StreamKey&) = default;
  friend auto operator<=>(const StreamKey&, const StreamKey&) = default;

 private:
  std::string app_;
  std::string stream_;
};

}  // namespace arcly

template <>
struct std::hash<arcly::StreamKey> {
  std::size_t operator()(const arcly::StreamKey& key) const noexcept {
    return std::hash<std::string>{}(key.app()) * 31u ^ std::hash<std::string>{}(key.stream());
  }
};
