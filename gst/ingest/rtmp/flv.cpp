#include "flv.hpp"

#include <string>

namespace arcly::rtmp {

namespace {
void need(std::span<const std::uint8_t> b, std::size_t n, const char* what) {
  if (b.size() < n) {
    throw ProtocolError(std::string(what) + " tag of " + std::to_string(b.size()) +
                        " bytes is shorter than its header (" + std::to_string(n) + ")");
  }
}
std::int32_t si24(std::span<const std::uint8_t> b, std::size_t at) {
  std::int32_t v = b[at] << 16 | b[at + 1] << 8 | b[at + 2];
  if (v & 0x800000) v -= 0x1000000;
  return v;
}
constexpr std::uint32_t fourcc(char a, char b, char c, char d) {
  return static_cast<std::uint32_t>(a) << 24 | static_cast<std::uint32_t>(b) << 16 |
         static_cast<std::uint32_t>(c) << 8 | static_cast<std::uint32_t>(d);
}
}  // namespace

VideoTag parse_video_tag(std::span<const std::uint8_t> b) {
  need(b, 1, "video");
  VideoTag t;
  if (b[0] & 0x80) {  // Enhanced RTMP
    need(b, 5, "enhanced video");
    const int frame_type = (b[0] >> 4) & 0x07;
    const int packet_type = b[0] & 0x0f;
    const std::uint32_t cc = static_cast<std::uint32_t>(b[1]) << 24 |
                             static_cast<std::uint32_t>(b[2]) << 16 |
                             static_cast<std::uint32_t>(b[3]) << 8 | b[4];
    t.keyframe = frame_type == 1;
    t.codec = cc == fourcc('h', 'v', 'c', '1')   ? VideoCodec::H265
              : cc == fourcc('a', 'v', 'c', '1') ? VideoCodec::H264
                                                 : VideoCodec::Other;
    t.data_offset = 5;
    switch (packet_type) {
      case 0:  // SequenceStart
        t.sequence_header = true;
        break;
      case 1:  // CodedFrames: a composition time for avc1/hvc1
        if (t.codec != VideoCodec::Other) {
          need(b, 8, "enhanced video");
          t.composition_ms = si24(b, 5);
          t.data_offset = 8;
        }
        break;
      case 2:  // SequenceEnd
        t.end_of_sequence = true;
        break;
      case 3:  // CodedFramesX: composition time 0
        break;
      default:  // metadata, MPEG-2 TS sequence start, ...: not media
        t.codec = VideoCodec::Other;
        break;
    }
    return t;
  }
  const int frame_type = b[0] >> 4;
  const int codec_id = b[0] & 0x0f;
  t.keyframe = frame_type == 1;
  if (codec_id != 7 && codec_id != 12) {
    t.codec = VideoCodec::Other;
    t.data_offset = 1;
    return t;
  }
  need(b, 5, codec_id == 7 ? "AVC video" : "HEVC video");
  t.codec = codec_id == 7 ? VideoCodec::H264 : VideoCodec::H265;
  t.sequence_header = b[1] == 0;
  t.end_of_sequence = b[1] == 2;
  t.composition_ms = si24(b, 2);
  t.data_offset = 5;
  return t;
}

AudioTag parse_audio_tag(std::span<const std::uint8_t> b) {
  need(b, 1, "audio");
  AudioTag t;
  const int format = b[0] >> 4;
  if (format == 10) {
    need(b, 2, "AAC audio");
    t.codec = AudioCodec::AAC;
    t.sequence_header = b[1] == 0;
    t.data_offset = 2;
  } else {
    t.codec = format == 2 ? AudioCodec::MP3 : AudioCodec::Other;
    t.data_offset = 1;
  }
  return t;
}

std::optional<AacConfig> parse_aac_config(std::span<const std::uint8_t> asc) {
  static const int kRates[] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                               22050, 16000, 12000, 11025, 8000,  7350};
  if (asc.size() < 2) return std::nullopt;
  // 5 bits object type, 4 bits frequency index (15: 24-bit explicit), 4 bits channels.
  std::uint64_t bits = 0;
  for (std::size_t i = 0; i < 8; ++i) bits = bits << 8 | (i < asc.size() ? asc[i] : 0);
  AacConfig c;
  c.object_type = static_cast<int>(bits >> 59);
  const int index = static_cast<int>((bits >> 55) & 0x0f);
  if (index == 15) {
    if (asc.size() < 5) return std::nullopt;
    c.rate = static_cast<int>((bits >> 31) & 0xffffff);
    c.channels = static_cast<int>((bits >> 27) & 0x0f);
  } else if (index < 13) {
    c.rate = kRates[index];
    c.channels = static_cast<int>((bits >> 51) & 0x0f);
  } else {
    return std::nullopt;
  }
  if (c.object_type == 31 || c.rate == 0) return std::nullopt;  // escape codes: not handled
  return c;
}

}  // namespace arcly::rtmp
