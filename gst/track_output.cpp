// TrackOutput (see track_output.hpp).
#include "track_output.hpp"

#include "buffer_frame.hpp"
#include "caps_track.hpp"
#include "gst_ptr.hpp"
#include "shared_buffer.hpp"

namespace arcly::gst {

TrackOutput::TrackOutput(GstPad* pad, const TrackInfo& info, GstCaps* caps,
                         const std::string& stream_id, guint group_id)
    : pad_(GST_PAD(gst_object_ref_sink(pad))),
      track_(info.track),
      kind_(info.kind),
      stream_id_(stream_id),
      group_id_(group_id),
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

// The media type of serialized caps ("video/x-h264"), "" if unparsable.
std::string media_type(const std::string& description) {
  CapsPtr caps(gst_caps_from_string(description.c_str()));
  if (!caps || gst_caps_get_size(caps.get()) == 0) return {};
  return gst_structure_get_name(gst_caps_get_structure(caps.get(), 0));
}

void TrackOutput::on_config(const MediaFrame& config) {
  if (ended_) {  // the track is back: a new stream on the pad
    stream_start_pending_ = true;
    ended_ = false;
  }
  if (config.info && config.info->description != caps_desc_) {
    if (media_type(config.info->description) != media_type(caps_desc_))
      stream_start_pending_ = true;  // another codec: a new stream for the parsers
    caps_desc_ = config.info->description;
    caps_pending_ = true;
    inband_config_ = needs_inband_config(*config.info);
  }
  if (inband_config_ && !config.payload.empty()) pending_header_ = config.payload;
}

void TrackOutput::restart() {
  first_after_start_ = true;
  discont_ = true;
  last_dts_ = GST_CLOCK_TIME_NONE;  // the next timeline has its own segment
}

TrackOutput::Pushed TrackOutput::push(const FrameRef& frame, const Timeline& tl, bool live_edge) {
  const MediaFrame& f = *frame;
  Pushed result;
  if (!tl.sends(f.pts)) return result;  // far before the anchor

  bool new_stream = false;
  if (stream_start_pending_) {
    new_stream = true;
    const std::string id = stream_id_ + "/" + std::to_string(++stream_serial_);
    GstEvent* start = gst_event_new_stream_start(id.c_str());
    gst_event_set_group_id(start, group_id_);
    gst_event_set_stream_flags(
        start, kind_ == MediaKind::Data ? GST_STREAM_FLAG_SPARSE : GST_STREAM_FLAG_NONE);
    gst_pad_push_event(pad_, start);
    stream_start_pending_ = false;
    ended_ = false;
    caps_pending_ = true;
    discont_ = true;
  }
  // A new stream needs its segment again, unless the timeline restarts anyway.
  const bool resend_segment = new_stream && !first_after_start_ && have_segment_;
  if (caps_pending_) {
    TrackInfo info;
    info.description = caps_desc_;
    CapsPtr caps(caps_from_track(info));
    if (caps) gst_pad_push_event(pad_, gst_event_new_caps(caps.get()));
    caps_pending_ = false;
  }
  if (resend_segment) push_segment(segment_);
  if (first_after_start_) {
    first_after_start_ = false;
    if (live_edge && kind_ == MediaKind::Video && f.pts < tl.edge()) {
      // Show this (key)frame at once, then clip up to the live edge.
      push_segment(tl.segment_from(f.pts));
      edge_segment_after_ = true;
    } else {
      push_segment(tl.segment_from(live_edge ? tl.edge() : tl.anchor()));
    }
  }

  // Steady state: a reference to the frame's one shared buffer; the re-timing
  // is all in the segment. What differs for this subscriber alone goes on a
  // shallow copy (memory shared, metas copied): see shared_buffer.hpp.
  GstBuffer* shared = shared_buffer(frame);
  const GstClockTime pts = GST_BUFFER_PTS(shared);
  GstClockTime dts = GST_BUFFER_DTS(shared);
  // Decode timestamps must not go backwards on a pad. Within one timeline the
  // shared timestamps are one publisher's; a new timeline (another publisher,
  // lower timestamps maybe) comes with its own segment, later in running time.
  const bool clamp_dts =
      GST_CLOCK_TIME_IS_VALID(dts) && GST_CLOCK_TIME_IS_VALID(last_dts_) && dts < last_dts_;
  if (clamp_dts) dts = last_dts_;
  const bool decode_only = live_edge && f.pts < tl.edge() && !edge_segment_after_;
  const bool discont = discont_ && !f.is_discont();  // the publisher's DISCONT is shared
  const bool header = !pending_header_.empty() && f.is_keyframe();
  discont_ = false;

  GstBuffer* buffer = nullptr;
  if (!clamp_dts && !decode_only && !discont && !header) {
    buffer = gst_buffer_ref(shared);
  } else {
    buffer = gst_buffer_copy(shared);
    if (clamp_dts) GST_BUFFER_DTS(buffer) = dts;
    if (decode_only) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DECODE_ONLY);
    if (discont) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DISCONT);
    if (header) {
      // In-band parameter sets go in front of the keyframe, in the same access
      // unit (what a byte-stream keyframe looks like anyway); zero-copy.
      GstBuffer* h = buffer_from_bytes(pending_header_);
      pending_header_ = {};
      gst_buffer_prepend_memory(buffer, gst_buffer_get_memory(h, 0));
      gst_buffer_unref(h);
    }
  }
  if (GST_CLOCK_TIME_IS_VALID(dts)) last_dts_ = dts;

  result.flow = gst_pad_push(pad_, buffer);
  result.pts = pts;
  if (edge_segment_after_) {
    edge_segment_after_ = false;
    push_segment(tl.segment_from(tl.edge()));
  }
  return result;
}

void TrackOutput::push_segment(const GstSegment& segment) {
  segment_ = segment;
  have_segment_ = true;
  gst_pad_push_event(pad_, gst_event_new_segment(&segment));
}

void TrackOutput::shift_running_time(std::int64_t delta) {
  if (ended_ || !have_segment_ || first_after_start_) return;
  GstSegment segment = segment_;
  if (gst_segment_offset_running_time(&segment, GST_FORMAT_TIME, delta)) push_segment(segment);
}

void TrackOutput::push_gap(GstClockTime pts, GstClockTime duration) {
  if (ended_ || !have_segment_ || first_after_start_) return;
  gst_pad_push_event(pad_, gst_event_new_gap(pts, duration));
}

bool TrackOutput::push_eos() {
  if (ended_) return true;
  ended_ = true;
  return gst_pad_push_event(pad_, gst_event_new_eos());
}

}  // namespace arcly::gst
