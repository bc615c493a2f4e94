// Timeline — maps publisher timestamps onto a subscriber's running time.
//
// A (re)start picks: `anchor` (publisher ts of the first frame sent, the cached
// keyframe), `edge` (publisher ts of the live edge: the newest cached frame in
// live-edge mode, else the anchor), and `base` (the subscriber running time at
// which `edge` plays). Output pts are publisher ts shifted by a constant, so the
// spacing is the publisher's and A/V stay in sync; segments whose base is `base`
// turn them into running time:
//   segment_from(edge)   -> rt(edge) = base; frames before it are clipped
//                           (decoded, not shown — the live-edge catch-up);
//   segment_from(anchor) -> rt(anchor) = base; everything plays at its spacing.
// `floor` keeps output pts increasing across publisher restarts (persist).
#pragma once

#include <gst/gst.h>

#include <algorithm>
#include <cstdint>

namespace arcly::gst {

class Timeline {
 public:
  // Room below the anchor for slightly earlier audio or DTS before the keyframe.
  static constexpr GstClockTime kHeadroom = 10 * GST_SECOND;

  void start(std::int64_t anchor, std::int64_t edge, GstClockTime base, GstClockTime floor) {
    anchor_ = anchor;
    edge_ = std::max(edge, anchor);
    base_ = base;
    zero_ = floor + kHeadroom;
    started_ = true;
  }
  bool started() const { return started_; }
  void reset() { started_ = false; }

  std::int64_t anchor() const { return anchor_; }
  std::int64_t edge() const { return edge_; }
  GstClockTime base() const { return base_; }

  // Output timestamp of a publisher timestamp; NONE when it would be negative.
  GstClockTime out(std::int64_t ts) const {
    const std::int64_t v = ts - anchor_ + static_cast<std::int64_t>(zero_);
    return v < 0 ? GST_CLOCK_TIME_NONE : static_cast<GstClockTime>(v);
  }

  // A TIME segment starting at publisher ts `from`, running time `base` there.
  GstSegment segment_from(std::int64_t from) const {
    GstSegment s;
    gst_segment_init(&s, GST_FORMAT_TIME);
    const GstClockTime start = out(from);
    s.start = start;
    s.position = start;
    s.time = start >= zero_ ? start - zero_ : 0;  // stream time 0 at the anchor
    s.base = base_;
    return s;
  }

 private:
  std::int64_t anchor_ = 0;
  std::int64_t edge_ = 0;
  GstClockTime base_ = 0;
  GstClockTime zero_ = kHeadroom;
  bool started_ = false;
};

}  // namespace arcly::gst
