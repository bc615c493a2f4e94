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

namespace {

// One publisher-timestamp meta per buffer: a publisher that re-publishes an
// arcly stream carried one along with its other metas; ours replaces it.
void set_publisher_ts(GstBuffer* buffer, GstClockTime ts) {
  gpointer state = nullptr;
  while (GstMeta* m = gst_buffer_iterate_meta_filtered(buffer, &state,
                                                       GST_REFERENCE_TIMESTAMP_META_API_TYPE)) {
    auto* r = reinterpret_cast<GstReferenceTimestampMeta*>(m);
    if (gst_caps_is_equal(r->reference, publisher_meta_caps())) {
      r->timestamp = ts;
      r->duration = GST_CLOCK_TIME_NONE;
      return;
    }
  }
  gst_buffer_add_reference_timestamp_meta(buffer, publisher_meta_caps(), ts, GST_CLOCK_TIME_NONE);
}

}  // namespace

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

  GstBuffer* buffer = buffer_from_frame(frame);
  GST_BUFFER_PTS(buffer) = pts;
  GST_BUFFER_DTS(buffer) = dts;
  if (f.duration > 0) GST_BUFFER_DURATION(buffer) = static_cast<GstClockTime>(f.duration);
  if (!f.is_keyframe()) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  if (any(f.flags & FrameFlags::Corrupt)) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_CORRUPTED);
  if (any(f.flags & FrameFlags::Header)) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_HEADER);
  if (live_edge && f.pts < tl.edge() && !edge_segment_after_)
    GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DECODE_ONLY);
  copy_carried_metas(f, buffer);  // the publisher's metas
  set_publisher_ts(buffer, static_cast<GstClockTime>(f.pts));
  // A gap or restart at the publisher (a camera that reconnected in grace) is a
  // discontinuity here too: parsers and muxers must not join across it.
  if (discont_ || f.is_discont()) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DISCONT);
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
    push_segment(tl.segment_from(tl.edge()));
  }
  return result;
}

void TrackOutput::push_segment(const GstSegment& segment) {
  segment_ = segment;
  have_segment_ = true;
  gst_pad_push_event(pad_, gst_event_new_segment(&segment));
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
