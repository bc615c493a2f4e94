// TrackOutput (see track_output.hpp).
#include "track_output.hpp"

#include "buffer_frame.hpp"
#include "caps_track.hpp"
#include "gst_ptr.hpp"

namespace arcly::gst {

GstCaps* publisher_meta_caps() {
  static GstCaps* caps = gst_caps_new_empty_simple("timestamp/x-arcly-publisher");
  return caps;
}

TrackOutput::TrackOutput(GstPad* pad, const TrackInfo& info, GstCaps* caps,
                         const std::string& stream_id, guint group_id)
    : pad_(GST_PAD(gst_object_ref_sink(pad))),
      track_(info.track),
      kind_(info.kind),
      caps_desc_(info.description),
      inband_config_(needs_inband_config(info)) {
  gst_pad_use_fixed_caps(pad_);
  gst_pad_set_active(pad_, TRUE);
  GstEvent* start = gst_event_new_stream_start(stream_id.c_str());
  gst_event_set_group_id(start, group_id);
  gst_event_set_stream_flags(
      start, kind_ == MediaKind::Data ? GST_STREAM_FLAG_SPARSE : GST_STREAM_FLAG_NONE);
  gst_pad_push_event(pad_, start);
  gst_pad_push_event(pad_, gst_event_new_caps(caps));
}

TrackOutput::~TrackOutput() {
  gst_object_unref(pad_);
}

void TrackOutput::on_config(const MediaFrame& config) {
  if (config.info && config.info->description != caps_desc_) {
    caps_desc_ = config.info->description;
    caps_pending_ = true;
    inband_config_ = needs_inband_config(*config.info);
  }
  if (inband_config_ && !config.payload.empty()) pending_header_ = config.payload;
}

void TrackOutput::restart() {
  first_after_start_ = true;
  discont_ = true;
}

TrackOutput::Pushed TrackOutput::push(const FrameRef& frame, const Timeline& tl, bool live_edge) {
  const MediaFrame& f = *frame;
  Pushed result;
  const GstClockTime pts = tl.out(f.pts);
  if (!GST_CLOCK_TIME_IS_VALID(pts)) return result;  // far before the anchor
  GstClockTime dts = f.dts ? tl.out(*f.dts) : GST_CLOCK_TIME_NONE;
  // Decode timestamps must not go backwards on a pad.
  if (GST_CLOCK_TIME_IS_VALID(dts) && GST_CLOCK_TIME_IS_VALID(last_dts_) && dts < last_dts_)
    dts = last_dts_;

  if (caps_pending_) {
    TrackInfo info;
    info.description = caps_desc_;
    CapsPtr caps(caps_from_track(info));
    if (caps) gst_pad_push_event(pad_, gst_event_new_caps(caps.get()));
    caps_pending_ = false;
  }
  if (first_after_start_) {
    first_after_start_ = false;
    if (live_edge && kind_ == MediaKind::Video && f.pts < tl.edge()) {
      // Show this (key)frame at once, then clip up to the live edge.
      const GstSegment s = tl.segment_from(f.pts);
      gst_pad_push_event(pad_, gst_event_new_segment(&s));
      edge_segment_after_ = true;
    } else {
      const GstSegment s = tl.segment_from(live_edge ? tl.edge() : tl.anchor());
      gst_pad_push_event(pad_, gst_event_new_segment(&s));
    }
  }

  GstBuffer* buffer = buffer_from_frame(frame);
  GST_BUFFER_PTS(buffer) = pts;
  GST_BUFFER_DTS(buffer) = dts;
  if (f.duration > 0) GST_BUFFER_DURATION(buffer) = static_cast<GstClockTime>(f.duration);
  if (!f.is_keyframe()) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  if (any(f.flags & FrameFlags::Corrupt)) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_CORRUPTED);
  if (any(f.flags & FrameFlags::Header)) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_HEADER);
  if (live_edge && f.pts < tl.edge() && !edge_segment_after_)
    GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DECODE_ONLY);
  gst_buffer_add_reference_timestamp_meta(buffer, publisher_meta_caps(),
                                          static_cast<GstClockTime>(f.pts), GST_CLOCK_TIME_NONE);
  if (discont_) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DISCONT);
  discont_ = false;

  if (!pending_header_.empty() && f.is_keyframe()) {
    // In-band parameter sets go in front of the keyframe, in the same access unit
    // (what a byte-stream keyframe looks like anyway); the payload stays zero-copy.
    GstBuffer* header = buffer_from_bytes(pending_header_);
    pending_header_ = {};
    gst_buffer_prepend_memory(buffer, gst_buffer_get_memory(header, 0));
    gst_buffer_unref(header);
  }
  if (GST_CLOCK_TIME_IS_VALID(dts)) last_dts_ = dts;

  result.flow = gst_pad_push(pad_, buffer);
  result.pts = pts;
  if (edge_segment_after_) {
    edge_segment_after_ = false;
    const GstSegment s = tl.segment_from(tl.edge());
    gst_pad_push_event(pad_, gst_event_new_segment(&s));
  }
  return result;
}

bool TrackOutput::push_eos() {
  return gst_pad_push_event(pad_, gst_event_new_eos());
}

}  // namespace arcly::gst
