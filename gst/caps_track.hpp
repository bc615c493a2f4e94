// GstCaps <-> arcly tracks.
//
// A track carries its caps faithfully: TrackInfo::description is the serialized
// caps, and the subscriber restores exactly those caps. On top of that the bridge
// understands H.264, H.265, AAC and Opus well enough to cache their decoder
// configuration so that a late joiner can decode at once:
// * config carried by the caps (codec_data: avc/hvc1, AAC; Opus streamheader):
//   the caps already hold it, the CONFIG frame payload is a copy for non-GStreamer
//   consumers;
// * in-band parameter sets (H.264/H.265 byte-stream): the SPS/PPS/VPS seen in the
//   newest keyframe become the CONFIG payload (Annex B), which the source pushes
//   as a HEADER buffer before the first keyframe it sends.
#pragma once

#include <gst/gst.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "arcly/bytes.hpp"
#include "arcly/media_frame.hpp"

namespace arcly::gst {

struct CapsDescription {
  MediaKind kind = MediaKind::Data;
  CodecId codec = CodecId::Unknown;
  bool inband_parameter_sets = false;  // H.264/H.265 byte-stream: params live in the stream
  Bytes config;                        // codec_data or first streamheader (copied), may be empty
};

// Never throws for valid caps; `caps` must be fixed.
CapsDescription describe_caps(const GstCaps* caps);

std::shared_ptr<const TrackInfo> track_info_from_caps(const GstCaps* caps, std::uint32_t track);

// Transfer full; null when the description is not parsable caps.
GstCaps* caps_from_track(const TrackInfo& info);

// True when the caps serialized in `description` carry no config of their own
// (no codec_data / streamheader), i.e. the CONFIG payload must go in-band.
bool needs_inband_config(const TrackInfo& info);

// The SPS/PPS (and VPS for H.265) NAL units of an Annex B access unit, each with a
// 4-byte start code, in stream order. Empty when there are none.
Bytes extract_parameter_sets(CodecId codec, std::span<const std::uint8_t> access_unit);

// True when an H.264/H.265 buffer holds only parameter sets, SEI or access unit
// delimiters and no picture (some RTP depayloaders emit those as a buffer of
// their own, at the timestamp of the keyframe that follows). `length_prefixed`:
// avc/hvc1 (4-byte NAL lengths) rather than Annex B byte-stream.
bool parameter_sets_only(CodecId codec, bool length_prefixed, std::span<const std::uint8_t> au);

// "video", "audio" or "data": the prefix of the source pad of a track.
std::string_view pad_prefix(MediaKind kind);

}  // namespace arcly::gst
