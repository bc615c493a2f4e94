// Timeline — maps publisher timestamps onto a subscriber's running time.
//
// Buffers carry timestamps every subscriber shares (the one GstBuffer per frame,
// see shared_buffer.hpp): publisher ts + kSharedOffset, the same for everyone. A
// subscriber's re-timing lives only in its SEGMENT events, so steady-state
// buffers need no per-subscriber copy.
//
// A (re)start picks: `anchor` (publisher ts of the first frame sent, the cached
// keyframe), `edge` (publisher ts of the live edge: the newest cached frame in
// live-edge mode, else the anchor), and `base` (the subscriber running time at
// which `edge` plays). Output pts are shared ts, so the spacing is the
// publisher's and A/V stay in sync; segments whose base is `base` turn them into
// running time:
//   segment_from(edge)   -> rt(edge) = base; frames before it are clipped
//                           (decoded, not shown — the live-edge catch-up);
//   segment_from(anchor) -> rt(anchor) = base; everything plays at its spacing.
// Across publisher restarts and switches the output pts may go back (another
// publisher's clock); the new segment's base keeps the running time going on.
#pragma once

#include <gst/gst.h>

#include <algorithm>
#include <cstdint>

namespace arcly::gst {

class Timeline {
 public:
  // Frames further than this before the anchor are not sent (stale leftovers).
  static constexpr GstClockTime kHeadroom = 10 * GST_SECOND;
  // Added to publisher ts for the shared buffers' timestamps, so slightly
  // negative publisher ts (a test source, audio before a first keyframe at 0)
  // still give valid GstClockTimes. Publisher ts are clock times in practice.
  static constexpr std::int64_t kSharedOffset = 3600 * static_cast<std::int64_t>(GST_SECOND);

  // The shared output timestamp of a publisher timestamp; NONE when negative.
  static GstClockTime shared(std::int64_t ts) {
    const std::int64_t v = ts + kSharedOffset;
    return v < 0 ? GST_CLOCK_TIME_NONE : static_cast<GstClockTime>(v);
  }

  void start(std::int64_t anchor, std::int64_t edge, GstClockTime base) {
    anchor_ = anchor;
    edge_ = std::max(edge, anchor);
    base_ = base;
    shift_ = 0;
    started_ = true;
  }
  bool started() const { return started_; }
  // Moves the running time of everything from here on by `shift` ns in all
  // since start() (following a drifting clock); segments made after it carry
  // it (gst_segment_offset_running_time: the base, or the segment's offset
  // where the base is too small for a negative shift).
  void set_shift(std::int64_t shift) { shift_ = shift; }
  std::int64_t shift() const { return shift_; }
  void reset() { started_ = false; }

  std::int64_t anchor() const { return anchor_; }
  std::int64_t edge() const { return edge_; }
  // The running time of the edge (the anchor without live edge), shift included.
  GstClockTime base() const {
    const std::int64_t b = static_cast<std::int64_t>(base_) + shift_;
    return b > 0 ? static_cast<GstClockTime>(b) : 0;
  }

  // Whether a frame at publisher ts `ts` is sent at all (not far before the anchor).
  bool sends(std::int64_t ts) const {
    return ts >= anchor_ - static_cast<std::int64_t>(kHeadroom) &&
           GST_CLOCK_TIME_IS_VALID(shared(ts));
  }

  // Output timestamp of a publisher timestamp (see shared()).
  GstClockTime out(std::int64_t ts) const { return shared(ts); }

  // A TIME segment starting at publisher ts `from`, running time `base` there.
  GstSegment segment_from(std::int64_t from) const {
    GstSegment s;
    gst_segment_init(&s, GST_FORMAT_TIME);
    const GstClockTime start = out(from);
    s.start = start;
    s.position = start;
    s.time = from >= anchor_ ? static_cast<GstClockTime>(from - anchor_) : 0;  // 0 at the anchor
    s.base = base_;
    if (shift_ != 0) gst_segment_offset_running_time(&s, GST_FORMAT_TIME, shift_);
    return s;
  }

 private:
  std::int64_t anchor_ = 0;
  std::int64_t edge_ = 0;
  GstClockTime base_ = 0;
  std::int64_t shift_ = 0;
  bool started_ = false;
};

}  // namespace arcly::gst
