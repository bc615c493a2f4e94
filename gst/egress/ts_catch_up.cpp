#include "ts_catch_up.hpp"

#include <algorithm>
#include <utility>

namespace arcly::egress {

void TsCatchUp::watch(GstPad* pad, bool video) {
  tracks_[pad].video = video;
  gst_pad_add_probe(
      pad,
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
      &TsCatchUp::on_data, this, nullptr);
}

GstPadProbeReturn TsCatchUp::on_data(GstPad* pad, GstPadProbeInfo* info, gpointer self) {
  auto* me = static_cast<TsCatchUp*>(self);
  auto it = me->tracks_.find(pad);
  if (it == me->tracks_.end()) return GST_PAD_PROBE_OK;
  Track& t = it->second;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) return me->on_buffer(t, info);
  GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
  if (GST_EVENT_TYPE(event) == GST_EVENT_SEGMENT) {
    const GstSegment* s = nullptr;
    gst_event_parse_segment(event, &s);
    return me->on_segment(t, info, *s);
  }
  if (GST_EVENT_TYPE(event) == GST_EVENT_GAP && t.have_segment) {
    GstClockTime ts = 0, duration = GST_CLOCK_TIME_NONE;
    gst_event_parse_gap(event, &ts, &duration);
    const GstClockTime out = me->map(t, ts, false);
    if (!GST_CLOCK_TIME_IS_VALID(out)) return GST_PAD_PROBE_DROP;
    gst_event_unref(event);
    GST_PAD_PROBE_INFO_DATA(info) = gst_event_new_gap(out, duration);
  }
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn TsCatchUp::on_segment(Track& t, GstPadProbeInfo* info, const GstSegment& s) {
  if (t.have_segment && t.video && !t.anchor_pending && s.base == t.segment.base &&
      s.start > t.segment.start) {
    // The live-edge pair: the anchor's segment, then the one that clips up to the edge.
    t.squeezing = true;
    t.from = t.segment.start;
    t.edge = s.start;
    t.base = s.base;
  } else if (!t.have_segment || s.base != t.segment.base) {
    t.squeezing = false;  // a timeline (re)start
    t.anchor_pending = t.video;
  }
  t.segment = s;
  t.have_segment = true;
  if (t.segment_sent) return GST_PAD_PROBE_DROP;
  // One segment for good: running time = buffer time from here on.
  t.segment_sent = true;
  GstSegment zero;
  gst_segment_init(&zero, GST_FORMAT_TIME);
  gst_event_unref(GST_PAD_PROBE_INFO_EVENT(info));
  GST_PAD_PROBE_INFO_DATA(info) = gst_event_new_segment(&zero);
  return GST_PAD_PROBE_OK;
}

GstClockTime TsCatchUp::map(const Track& t, GstClockTime ts, bool anchor) const {
  if (!GST_CLOCK_TIME_IS_VALID(ts)) return ts;
  const auto signed_ts = static_cast<gint64>(ts);
  gint64 out = 0;
  if (t.squeezing && ts < t.edge) {
    const auto from = static_cast<gint64>(t.from);
    const auto squeeze = static_cast<gint64>(kSqueeze);
    const gint64 start = static_cast<gint64>(t.base + kOffset) - squeeze;
    if (signed_ts < from) {
      out = start + (signed_ts - from);
    } else {
      const gint64 span = std::max<gint64>(static_cast<gint64>(t.edge) - from, squeeze);
      out = start + (signed_ts - from) * squeeze / span;
    }
  } else {
    out = signed_ts - static_cast<gint64>(t.segment.start) + static_cast<gint64>(t.segment.base) +
          static_cast<gint64>(kOffset) - (anchor ? static_cast<gint64>(kSqueeze) : 0);
  }
  return out < 0 ? GST_CLOCK_TIME_NONE : static_cast<GstClockTime>(out);
}

GstPadProbeReturn TsCatchUp::on_buffer(Track& t, GstPadProbeInfo* info) {
  GstBuffer* in = GST_PAD_PROBE_INFO_BUFFER(info);
  if (!t.have_segment) return GST_PAD_PROBE_OK;
  const bool decode_only = GST_BUFFER_FLAG_IS_SET(in, GST_BUFFER_FLAG_DECODE_ONLY);
  if (decode_only && !t.video) return GST_PAD_PROBE_DROP;
  const bool anchor = std::exchange(t.anchor_pending, false);
  GstBuffer* b = gst_buffer_make_writable(in);
  GST_PAD_PROBE_INFO_DATA(info) = b;
  GST_BUFFER_PTS(b) = map(t, GST_BUFFER_PTS(b), anchor);
  GstClockTime dts = map(t, GST_BUFFER_DTS(b), anchor);
  if (GST_CLOCK_TIME_IS_VALID(dts) && GST_CLOCK_TIME_IS_VALID(t.last_dts))
    dts = std::max(dts, t.last_dts);
  if (GST_CLOCK_TIME_IS_VALID(dts)) t.last_dts = dts;
  GST_BUFFER_DTS(b) = dts;
  GST_BUFFER_FLAG_UNSET(b, GST_BUFFER_FLAG_DECODE_ONLY);
  return GST_PAD_PROBE_OK;
}

}  // namespace arcly::egress
