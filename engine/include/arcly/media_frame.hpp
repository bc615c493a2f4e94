// arcly::MediaFrame — one access unit (or config record) of one track.
//
// Contract:
// - Timestamps are nanoseconds on the publisher's clock; `dts` is optional,
//   `duration` is 0 when unknown.
// - The payload is immutable ref-counted Bytes: copying a frame never copies media.
// - A CONFIG frame carries what a decoder needs before the first keyframe of its
//   track (SPS/PPS, codec_data, ...) and may carry a TrackInfo: the track's full
//   description (for GStreamer, its caps). The GOP cache keeps the newest config
//   per track so that a late joiner can decode at once.
// - Frames are values; once published they are shared read-only by every subscriber.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "arcly/bytes.hpp"

namespace arcly {

enum class MediaKind : std::uint8_t { Video, Audio, Data };

enum class CodecId : std::uint8_t {
  Unknown,
  H264,
  H265,
  VP8,
  VP9,
  AV1,
  AAC,
  Opus,
  PCMA,
  PCMU,
  MP3,
  Raw,
  Other,
};

std::string_view media_kind_name(MediaKind kind);
std::string_view codec_name(CodecId codec);

enum class FrameFlags : std::uint32_t {
  None = 0,
  Keyframe = 1u << 0,  // decodable on its own (IDR, audio frame, ...)
  Config = 1u << 1,    // codec configuration, cached per track
  Discont = 1u << 2,   // a gap or restart precedes this frame
  Corrupt = 1u << 3,   // the publisher knows the payload is damaged
  Header = 1u << 4,    // stream header (e.g. in-band parameter sets inside a keyframe)
};

constexpr FrameFlags operator|(FrameFlags a, FrameFlags b) {
  return static_cast<FrameFlags>(static_cast<std::uint32_t>(a) | static_cast<std::uint32_t>(b));
}
constexpr FrameFlags operator&(FrameFlags a, FrameFlags b) {
  return static_cast<FrameFlags>(static_cast<std::uint32_t>(a) & static_cast<std::uint32_t>(b));
}
constexpr FrameFlags operator~(FrameFlags a) {
  return static_cast<FrameFlags>(~static_cast<std::uint32_t>(a));
}
constexpr FrameFlags& operator|=(FrameFlags& a, FrameFlags b) {
  return a = a | b;
}
constexpr FrameFlags& operator&=(FrameFlags& a, FrameFlags b) {
  return a = a & b;
}
constexpr bool any(FrameFlags f) {
  return static_cast<std::uint32_t>(f) != 0;
}

// Describes one track of a stream. `description` is opaque to the engine (the
// GStreamer bridge stores serialized caps there).
struct TrackInfo {
  std::uint32_t track = 0;
  MediaKind kind = MediaKind::Video;
  CodecId codec = CodecId::Unknown;
  std::string description;
};

struct MediaFrame {
  MediaKind kind = MediaKind::Video;
  CodecId codec = CodecId::Unknown;
  std::uint32_t track = 0;
  std::int64_t pts = 0;             // ns
  std::optional<std::int64_t> dts;  // ns
  std::int64_t duration = 0;        // ns, 0 = unknown
  FrameFlags flags = FrameFlags::None;
  Bytes payload;
  std::shared_ptr<const TrackInfo> info;  // usually only on CONFIG frames

  static MediaFrame video(std::int64_t pts, std::optional<std::int64_t> dts, Bytes payload,
                          CodecId codec, bool keyframe, std::uint32_t track = 0);
  static MediaFrame audio(std::int64_t pts, Bytes payload, CodecId codec, std::uint32_t track = 1);
  static MediaFrame config(MediaKind kind, CodecId codec, std::uint32_t track, Bytes payload,
                           std::shared_ptr<const TrackInfo> info = nullptr);

  bool is_keyframe() const { return any(flags & FrameFlags::Keyframe); }
  bool is_config() const { return any(flags & FrameFlags::Config); }
  bool is_discont() const { return any(flags & FrameFlags::Discont); }
  std::int64_t decode_ts() const { return dts.value_or(pts); }
};

}  // namespace arcly
