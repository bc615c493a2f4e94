#include "arcly/media_frame.hpp"

namespace arcly {

std::string_view media_kind_name(MediaKind kind) {
  switch (kind) {
    case MediaKind::Video:
      return "video";
    case MediaKind::Audio:
      return "audio";
    case MediaKind::Data:
      return "data";
  }
  return "data";
}

std::string_view codec_name(CodecId codec) {
  switch (codec) {
    case CodecId::Unknown:
      return "unknown";
    case CodecId::H264:
      return "h264";
    case CodecId::H265:
      return "h265";
    case CodecId::VP8:
      return "vp8";
    case CodecId::VP9:
      return "vp9";
    case CodecId::AV1:
      return "av1";
    case CodecId::AAC:
      return "aac";
    case CodecId::Opus:
      return "opus";
    case CodecId::PCMA:
      return "pcma";
    case CodecId::PCMU:
      return "pcmu";
    case CodecId::MP3:
      return "mp3";
    case CodecId::Raw:
      return "raw";
    case CodecId::Other:
      return "other";
  }
  return "unknown";
}

MediaFrame MediaFrame::video(std::int64_t pts, std::optional<std::int64_t> dts, Bytes payload,
                             CodecId codec, bool keyframe, std::uint32_t track) {
  MediaFrame f;
  f.kind = MediaKind::Video;
  f.codec = codec;
  f.track = track;
  f.pts = pts;
  f.dts = dts;
  f.payload = std::move(payload);
  if (keyframe) f.flags |= FrameFlags::Keyframe;
  return f;
}

MediaFrame MediaFrame::audio(std::int64_t pts, Bytes payload, CodecId codec, std::uint32_t track) {
  MediaFrame f;
  f.kind = MediaKind::Audio;
  f.codec = codec;
  f.track = track;
  f.pts = pts;
  f.payload = std::move(payload);
  f.flags = FrameFlags::Keyframe;
  return f;
}

MediaFrame MediaFrame::config(MediaKind kind, CodecId codec, std::uint32_t track, Bytes payload,
                              std::shared_ptr<const TrackInfo> info) {
  MediaFrame f;
  f.kind = kind;
  f.codec = codec;
  f.track = track;
  f.payload = std::move(payload);
  f.flags = FrameFlags::Config;
  f.info = std::move(info);
  return f;
}

}  // namespace arcly
