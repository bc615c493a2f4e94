// TsCatchUp — arclysrc's live-edge start made into one continuous MPEG-TS
// timeline, for an SRT reader.
//
// With start=live-edge, arclysrc sends the cached keyframe under a segment that
// shows it, the GOP frames up to the live edge as DECODE_ONLY under a second
// segment that clips them, then live frames (RTP readers get exactly that). A
// TS has no segments and no decode-only frames, and 1.22's mpegtsmux stalls on
// the segment change. So a pad probe per track (on arclysrc's source pads,
// before the parsers) rewrites the timestamps into running time plus a constant
// and lets one segment through:
// * the anchor keyframe plays kSqueeze before the edge;
// * the catch-up video frames are squeezed between it and the edge (at most
//   kSqueeze for the whole GOP, at their own spacing when shorter): a TS decoder
//   decodes them at once and is at the live edge kSqueeze after the keyframe;
// * catch-up audio (DECODE_ONLY) is dropped: it would play as a burst;
// * everything from the edge on keeps its running time: the publisher's spacing.
// Decode timestamps never go backwards on a track.
// Threads: the probes run on arclysrc's one streaming thread; the object must
// outlive the pipeline's pads (the reader owns both).
#pragma once

#include <gst/gst.h>

#include <map>

namespace arcly::egress {

class TsCatchUp {
 public:
  static constexpr GstClockTime kSqueeze = 100 * GST_MSECOND;
  // Added to every running time: room for the anchor (kSqueeze before the edge)
  // and for decode timestamps before it.
  static constexpr GstClockTime kOffset = GST_SECOND;

  // Installs the probe on one of arclysrc's source pads.
  void watch(GstPad* pad, bool video);

 private:
  struct Track {
    bool video = false;
    GstSegment segment{};
    bool have_segment = false;
    bool segment_sent = false;
    bool anchor_pending = false;  // the next buffer is the timeline's first keyframe
    bool squeezing = false;       // [from, edge) is the catch-up
    GstClockTime from = 0, edge = 0, base = 0;
    GstClockTime last_dts = GST_CLOCK_TIME_NONE;
  };
  static GstPadProbeReturn on_data(GstPad* pad, GstPadProbeInfo* info, gpointer self);
  GstPadProbeReturn on_segment(Track& t, GstPadProbeInfo* info, const GstSegment& s);
  GstPadProbeReturn on_buffer(Track& t, GstPadProbeInfo* info);
  GstClockTime map(const Track& t, GstClockTime ts, bool anchor) const;

  std::map<GstPad*, Track> tracks_;  // streaming thread only, after watch()
};

}  // namespace arcly::egress
