// GstCaps <-> tracks and codec config extraction (see caps_track.hpp).
#include "caps_track.hpp"

#include <cstring>
#include <vector>

#include "gst_ptr.hpp"

namespace arcly::gst {
namespace {

Bytes copy_buffer(GstBuffer* buffer) {
  GstMapInfo map;
  if (!gst_buffer_map(buffer, &map, GST_MAP_READ)) return {};
  Bytes out = Bytes::copy_from(map.data, map.size);
  gst_buffer_unmap(buffer, &map);
  return out;
}

Bytes structure_config(const GstStructure* s) {
  if (const GValue* v = gst_structure_get_value(s, "codec_data"); v && GST_VALUE_HOLDS_BUFFER(v))
    return copy_buffer(gst_value_get_buffer(v));
  if (const GValue* v = gst_structure_get_value(s, "streamheader");
      v && GST_VALUE_HOLDS_ARRAY(v) && gst_value_array_get_size(v) > 0) {
    const GValue* first = gst_value_array_get_value(v, 0);
    if (GST_VALUE_HOLDS_BUFFER(first)) return copy_buffer(gst_value_get_buffer(first));
  }
  return {};
}

bool has_config_field(const GstStructure* s) {
  return gst_structure_has_field(s, "codec_data") || gst_structure_has_field(s, "streamheader");
}

// Finds Annex B start codes; calls `fn(nal_begin, nal_end)` for each NAL unit.
template <class Fn>
void for_each_nal(std::span<const std::uint8_t> au, Fn&& fn) {
  const std::size_t n = au.size();
  std::size_t i = 0;
  auto next_start = [&](std::size_t from) -> std::size_t {
    for (std::size_t k = from; k + 3 <= n; ++k)
      if (au[k] == 0 && au[k + 1] == 0 && au[k + 2] == 1) return k;
    return n;
  };
  i = next_start(0);
  while (i < n) {
    const std::size_t begin = i + 3;
    std::size_t end = next_start(begin);
    const std::size_t next = end;
    // A 4-byte start code's leading zero belongs to the next start code.
    while (end > begin && au[end - 1] == 0 && end != n) --end;
    if (end > begin) fn(begin, end);
    i = next;
  }
}

}  // namespace

CapsDescription describe_caps(const GstCaps* caps) {
  CapsDescription d;
  if (!caps || gst_caps_is_empty(caps) || gst_caps_is_any(caps)) return d;
  const GstStructure* s = gst_caps_get_structure(caps, 0);
  const std::string_view name = gst_structure_get_name(s);

  if (name.starts_with("video/") || name.starts_with("image/"))
    d.kind = MediaKind::Video;
  else if (name.starts_with("audio/"))
    d.kind = MediaKind::Audio;
  else
    d.kind = MediaKind::Data;

  if (name == "video/x-h264" || name == "video/x-h265") {
    d.codec = name == "video/x-h264" ? CodecId::H264 : CodecId::H265;
    const char* format = gst_structure_get_string(s, "stream-format");
    // No stream-format and no codec_data means Annex B (what parsers assume too).
    d.inband_parameter_sets = format ? std::strcmp(format, "byte-stream") == 0
                                     : !gst_structure_has_field(s, "codec_data");
  } else if (name == "video/x-vp8") {
    d.codec = CodecId::VP8;
  } else if (name == "video/x-vp9") {
    d.codec = CodecId::VP9;
  } else if (name == "video/x-av1") {
    d.codec = CodecId::AV1;
  } else if (name == "audio/mpeg") {
    int version = 0;
    gst_structure_get_int(s, "mpegversion", &version);
    d.codec = (version == 2 || version == 4) ? CodecId::AAC
              : version == 1                 ? CodecId::MP3
                                             : CodecId::Other;
  } else if (name == "audio/x-opus") {
    d.codec = CodecId::Opus;
  } else if (name == "audio/x-alaw") {
    d.codec = CodecId::PCMA;
  } else if (name == "audio/x-mulaw") {
    d.codec = CodecId::PCMU;
  } else if (name == "video/x-raw" || name == "audio/x-raw") {
    d.codec = CodecId::Raw;
  } else {
    d.codec = CodecId::Other;
  }
  d.config = structure_config(s);
  return d;
}

std::shared_ptr<const TrackInfo> track_info_from_caps(const GstCaps* caps, std::uint32_t track) {
  const CapsDescription d = describe_caps(caps);
  auto info = std::make_shared<TrackInfo>();
  info->track = track;
  info->kind = d.kind;
  info->codec = d.codec;
  gchar* text = gst_caps_to_string(caps);
  info->description = text ? text : "";
  g_free(text);
  return info;
}

GstCaps* caps_from_track(const TrackInfo& info) {
  if (info.description.empty()) return nullptr;
  GstCaps* caps = gst_caps_from_string(info.description.c_str());
  if (caps && gst_caps_is_empty(caps)) {
    gst_caps_unref(caps);
    return nullptr;
  }
  return caps;
}

bool needs_inband_config(const TrackInfo& info) {
  if (info.codec != CodecId::H264 && info.codec != CodecId::H265) return false;
  CapsPtr caps(caps_from_track(info));
  if (!caps || gst_caps_get_size(caps.get()) == 0) return true;
  return !has_config_field(gst_caps_get_structure(caps.get(), 0));
}

Bytes extract_parameter_sets(CodecId codec, std::span<const std::uint8_t> au) {
  if (codec != CodecId::H264 && codec != CodecId::H265) return {};
  std::vector<std::uint8_t> out;
  for_each_nal(au, [&](std::size_t begin, std::size_t end) {
    const std::uint8_t header = au[begin];
    bool keep = false;
    if (codec == CodecId::H264) {
      const int type = header & 0x1f;
      keep = type == 7 || type == 8;  // SPS, PPS
    } else {
      const int type = (header >> 1) & 0x3f;
      keep = type == 32 || type == 33 || type == 34;  // VPS, SPS, PPS
    }
    if (!keep) return;
    static constexpr std::uint8_t kStart[] = {0, 0, 0, 1};
    out.insert(out.end(), std::begin(kStart), std::end(kStart));
    out.insert(out.end(), au.begin() + static_cast<std::ptrdiff_t>(begin),
               au.begin() + static_cast<std::ptrdiff_t>(end));
  });
  if (out.empty()) return {};
  return Bytes::from_vector(std::move(out));
}

bool parameter_sets_only(CodecId codec, bool length_prefixed, std::span<const std::uint8_t> au) {
  if (codec != CodecId::H264 && codec != CodecId::H265) return false;
  bool any = false, picture = false;
  auto visit = [&](std::size_t begin, std::size_t end) {
    if (begin >= end) return;
    any = true;
    const std::uint8_t header = au[begin];
    if (codec == CodecId::H264) {
      const int type = header & 0x1f;  // 6 SEI, 7 SPS, 8 PPS, 9 AUD
      picture = picture || !(type == 6 || type == 7 || type == 8 || type == 9);
    } else {
      const int type = (header >> 1) & 0x3f;  // 32-34 VPS/SPS/PPS, 35 AUD, 39/40 SEI
      picture = picture || (!(type >= 32 && type <= 35) && type != 39 && type != 40);
    }
  };
  if (length_prefixed) {
    std::size_t i = 0;
    while (i + 4 <= au.size()) {
      const std::size_t len = (std::size_t{au[i]} << 24) | (std::size_t{au[i + 1]} << 16) |
                              (std::size_t{au[i + 2]} << 8) | au[i + 3];
      if (len == 0 || i + 4 + len > au.size()) return false;  // not 4-byte lengths: be safe
      visit(i + 4, i + 4 + len);
      i += 4 + len;
    }
    if (i != au.size()) return false;
  } else {
    for_each_nal(au, visit);
  }
  return any && !picture;
}

std::string_view pad_prefix(MediaKind kind) {
  switch (kind) {
    case MediaKind::Video:
      return "video";
    case MediaKind::Audio:
      return "audio";
    case MediaKind::Data:
      break;
  }
  return "data";
}

}  // namespace arcly::gst
