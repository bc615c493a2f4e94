// TrackOutput — one track of a subscription on one source pad: the counterpart
// of TrackPublisher. It announces the track (sticky STREAM_START with the
// subscriber's group id, then CAPS), turns the track's CONFIG frames into caps
// changes or an in-band header, and each media frame into a GstBuffer on the
// subscriber's Timeline:
// * the buffer is the frame's one shared GstBuffer (shared_buffer.hpp: the
//   publisher's memory, read-only, zero-copy, its metas and the publisher's
//   timestamp as a reference-timestamp meta with caps
//   `timestamp/x-arcly-publisher`), pushed by reference; the subscriber's
//   re-timing is in its SEGMENT events only. A shallow copy is pushed instead
//   where this subscriber's buffer differs: DISCONT after a (re)start or a lag,
//   DECODE_ONLY catch-up, in-band parameter sets in front of the next keyframe
//   (in the same buffer), a DTS held back so it does not go backwards;
// * after a (re)start of the timeline: a SEGMENT first and DISCONT. In
//   live-edge mode the first video keyframe gets a segment that shows it, the
//   catch-up frames up to the edge are DECODE_ONLY and clipped by a second
//   segment starting at the edge (decoded, not shown);
// * decode timestamps never go backwards within a timeline; a new timeline
//   (switch, next publisher) comes with a segment later in running time;
// * a codec change (or a track that comes back after EOS) starts a new stream
//   on the pad: STREAM_START (a new stream id, same group), CAPS, SEGMENT — what
//   a parser needs to reset; a caps change within a codec only sends CAPS.
// Not thread-safe: the subscriber's streaming thread owns it. The pad's query
// and event functions are the element's business, not this class's.
#pragma once

#include <gst/gst.h>

#include <cstdint>
#include <string>

#include "arcly/frame_ref.hpp"
#include "arcly/media_frame.hpp"
#include "shared_buffer.hpp"
#include "timeline.hpp"

namespace arcly::gst {

class TrackOutput {
 public:
  // Takes a reference to `pad` (sinking a floating one), activates it and
  // pushes STREAM_START (`stream_id`, `group_id`) and `caps` as sticky events,
  // so they are in place before the pad is added to an element.
  TrackOutput(GstPad* pad, const TrackInfo& info, GstCaps* caps, const std::string& stream_id,
              guint group_id);
  ~TrackOutput();
  TrackOutput(const TrackOutput&) = delete;
  TrackOutput& operator=(const TrackOutput&) = delete;

  GstPad* pad() const { return pad_; }
  std::uint32_t track() const { return track_; }
  MediaKind kind() const { return kind_; }

  // A CONFIG frame of this track: new caps (pushed before the next buffer)
  // when the description changed; in-band parameter sets kept for the next
  // keyframe.
  void on_config(const MediaFrame& config);

  // A GAP event in the current segment (nothing to show from `pts` for
  // `duration`); only once the track has a segment of the current timeline.
  void push_gap(GstClockTime pts, GstClockTime duration);

  // Ends the track's stream (EOS); a later config starts a new stream.
  bool push_eos();
  bool ended() const { return ended_; }

  // A new timeline starts: segment(s) and DISCONT before the next buffer.
  void restart();
  // The timeline's running time moved by `delta` ns (a drifting clock): the
  // current segment again, shifted, if this track has one of the current
  // timeline.
  void shift_running_time(std::int64_t delta);
  // The next buffer follows a gap (lag, skipped frames): DISCONT.
  void mark_discont() { discont_ = true; }

  struct Pushed {
    GstFlowReturn flow = GST_FLOW_OK;
    GstClockTime pts = GST_CLOCK_TIME_NONE;  // NONE: nothing pushed (before the timeline)
  };
  // Pushes one media frame of this track. `live_edge`: the timeline clips the
  // catch-up up to its edge (see above).
  Pushed push(const FrameRef& frame, const Timeline& timeline, bool live_edge);

 private:
  void push_segment(const GstSegment& segment);

  GstPad* pad_;
  const std::uint32_t track_;
  const MediaKind kind_;
  const std::string stream_id_;
  const guint group_id_;
  unsigned stream_serial_ = 0;
  bool stream_start_pending_ = false;  // a new stream before the next buffer
  bool ended_ = false;                 // EOS pushed
  bool have_segment_ = false;
  GstSegment segment_;  // the last segment pushed
  std::string caps_desc_;
  bool caps_pending_ = false;   // new caps to push before the next buffer
  bool inband_config_ = false;  // config payload goes in front of the keyframe
  Bytes pending_header_;
  bool discont_ = true;
  bool first_after_start_ = true;  // segment(s) still to send for the current timeline
  bool edge_segment_after_ = false;
  GstClockTime last_dts_ = GST_CLOCK_TIME_NONE;  // in the current timeline
};

}  // namespace arcly::gst
