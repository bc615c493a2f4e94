// TrackPublisher — turns what one sink pad receives (caps, buffers) into the
// frames of one track: a CONFIG frame (with the caps as TrackInfo) per caps
// change, a fresh CONFIG frame when a byte-stream keyframe brings new in-band
// SPS/PPS/VPS, and one zero-copy media frame per buffer, carrying the
// buffer's metas (see buffer_frame.hpp). Not thread-safe: one
// pad's streaming thread owns it. Timestamps are converted by the caller.
#pragma once

#include <gst/gst.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "arcly/media_frame.hpp"
#include "caps_track.hpp"

namespace arcly::gst {

class TrackPublisher {
 public:
  explicit TrackPublisher(std::uint32_t track) : track_(track) {}

  std::uint32_t track() const { return track_; }
  bool has_caps() const { return info_ != nullptr; }
  const TrackInfo* info() const { return info_.get(); }

  // New caps: the CONFIG frame announcing them (pts = `pts`).
  MediaFrame on_caps(const GstCaps* caps, std::int64_t pts);

  // The config of the current caps again (pts = `pts`), for a new publish
  // instance of the same pad. Requires has_caps().
  MediaFrame current_config(std::int64_t pts) const { return make_config(pts); }

  // One buffer: a CONFIG frame first when in-band parameter sets changed, then
  // the media frame wrapping the buffer's memory. Keyframe = no DELTA_UNIT flag.
  std::vector<MediaFrame> on_buffer(GstBuffer* buffer, std::int64_t pts,
                                    std::optional<std::int64_t> dts, std::int64_t duration);

 private:
  MediaFrame make_config(std::int64_t pts) const;

  const std::uint32_t track_;
  std::shared_ptr<const TrackInfo> info_;
  CapsDescription desc_;
  Bytes params_;  // newest in-band parameter sets (byte-stream H.264/H.265)
};

}  // namespace arcly::gst
