// FLV tag bodies as RTMP carries them in audio (8) and video (9) messages:
// the few header bytes in front of the codec data (FLV 10.1 spec, annex E, and
// Enhanced RTMP v1 for HEVC).
//
// Video: legacy header (frame type, codec id 7 = AVC, 12 = HEVC as some
// encoders send it; AVC packet type; composition time) or the Enhanced RTMP
// header (IsExHeader bit, frame type, packet type, FourCC "hvc1"/"avc1").
// Audio: sound format 10 = AAC with its packet type; other formats are reported
// as such. AudioSpecificConfig gives the rate and channels for AAC caps.
//
// Throws ProtocolError for a body too short for the header it announces. Pure
// C++; fuzzed with the session.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "amf0.hpp"

namespace arcly::rtmp {

enum class VideoCodec { H264, H265, Other };

struct VideoTag {
  VideoCodec codec = VideoCodec::Other;
  bool keyframe = false;
  bool sequence_header = false;  // avcC / hvcC record follows
  bool end_of_sequence = false;
  std::int32_t composition_ms = 0;  // pts - dts
  std::size_t data_offset = 0;      // where the record or the NAL units start
};

enum class AudioCodec { AAC, MP3, Other };

struct AudioTag {
  AudioCodec codec = AudioCodec::Other;
  bool sequence_header = false;  // AudioSpecificConfig follows
  std::size_t data_offset = 0;
};

VideoTag parse_video_tag(std::span<const std::uint8_t> body);
AudioTag parse_audio_tag(std::span<const std::uint8_t> body);

struct AacConfig {
  int object_type = 0;
  int rate = 0;
  int channels = 0;
};
// Parses the first bytes of an AudioSpecificConfig; nullopt when it is too
// short or names a reserved sampling frequency index.
std::optional<AacConfig> parse_aac_config(std::span<const std::uint8_t> asc);

}  // namespace arcly::rtmp
