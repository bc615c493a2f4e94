// Capture-time sender reports: the shift probe, the SR rewrite and the media
// subclass that wires them (contract in capture_time_reports.hpp).
#include "capture_time_reports.hpp"

#include <gst/rtp/gstrtcpbuffer.h>
#include <gst/rtsp-server/rtsp-server.h>

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>

#include "engine_time.hpp"
#include "shared_buffer.hpp"  // publisher_meta_caps

GST_DEBUG_CATEGORY_STATIC(arcly_capture_debug);
#define GST_CAT_DEFAULT arcly_capture_debug

namespace arcly::egress {

namespace {

constexpr std::int64_t kUnknown = std::numeric_limits<std::int64_t>::min();
constexpr const char* kShiftKey = "arcly-capture-shift";

// One RTP stream's shift. `segment`, `bridge` and the probe's reads: arclysrc's
// streaming thread only; `shift_ns`, `clock_rate`: any thread.
struct StreamShift {
  std::atomic<std::int64_t> shift_ns{kUnknown};
  std::atomic<int> clock_rate{0};
  std::atomic<bool> connected{false};
  GstSegment segment;
  gst::ClockBridge bridge;
  StreamShift() { gst_segment_init(&segment, GST_FORMAT_UNDEFINED); }
};
using ShiftPtr = std::shared_ptr<StreamShift>;

void free_shift_ptr(gpointer p, GClosure* = nullptr) {
  delete static_cast<ShiftPtr*>(p);
}

GstPadProbeReturn note_shift(GstPad* pad, GstPadProbeInfo* info, gpointer data) {
  auto& s = **static_cast<ShiftPtr*>(data);
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(event) == GST_EVENT_SEGMENT) gst_event_copy_segment(event, &s.segment);
    return GST_PAD_PROBE_OK;
  }
  GstBuffer* buffer = GST_PAD_PROBE_INFO_BUFFER(info);
  if (!buffer || s.segment.format != GST_FORMAT_TIME) return GST_PAD_PROBE_OK;
  GstReferenceTimestampMeta* meta =
      gst_buffer_get_reference_timestamp_meta(buffer, gst::publisher_meta_caps());
  if (!meta || !GST_CLOCK_TIME_IS_VALID(meta->timestamp)) return GST_PAD_PROBE_OK;
  // Catch-up frames before the live edge are clipped (no running time): the
  // RTP session maps what it sends from the edge on.
  const GstClockTime running =
      gst_segment_to_running_time(&s.segment, GST_FORMAT_TIME, GST_BUFFER_PTS(buffer));
  if (!GST_CLOCK_TIME_IS_VALID(running)) return GST_PAD_PROBE_OK;
  GstElement* element = GST_PAD_PARENT(pad) ? GST_ELEMENT(GST_PAD_PARENT(pad)) : nullptr;
  GstClock* clock = element ? gst_element_get_clock(element) : nullptr;
  if (!clock) return GST_PAD_PROBE_OK;
  const auto base = static_cast<std::int64_t>(gst_element_get_base_time(element));
  const std::int64_t engine_minus_clock = s.bridge.offset(clock);
  gst_object_unref(clock);
  const std::int64_t played = base + static_cast<std::int64_t>(running) + engine_minus_clock;
  s.shift_ns.store(played - static_cast<std::int64_t>(meta->timestamp), std::memory_order_relaxed);
  return GST_PAD_PROBE_OK;
}

// RTPSession::on-sending-rtcp (the session's RTCP thread): the SR's RTP time
// moves forward by the shift, so that it is the RTP time of the frame the
// publisher played at the SR's NTP time.
gboolean shift_sender_reports(GObject*, GstBuffer* buffer, gboolean, gpointer data) {
  const StreamShift& s = **static_cast<ShiftPtr*>(data);
  const std::int64_t shift = s.shift_ns.load(std::memory_order_relaxed);
  const int rate = s.clock_rate.load(std::memory_order_relaxed);
  if (shift == kUnknown || rate <= 0 || !gst_buffer_is_writable(buffer)) return FALSE;
  const auto ticks = static_cast<std::int64_t>(gst_util_uint64_scale_int(
      static_cast<guint64>(shift < 0 ? -shift : shift), rate, GST_SECOND));
  GstRTCPBuffer rtcp = GST_RTCP_BUFFER_INIT;
  if (!gst_rtcp_buffer_map(buffer, GST_MAP_READWRITE, &rtcp)) return FALSE;
  GstRTCPPacket packet;
  for (gboolean more = gst_rtcp_buffer_get_first_packet(&rtcp, &packet); more;
       more = gst_rtcp_packet_move_to_next(&packet)) {
    if (gst_rtcp_packet_get_type(&packet) != GST_RTCP_TYPE_SR) continue;
    guint32 ssrc = 0, rtptime = 0, packets = 0, octets = 0;
    guint64 ntptime = 0;
    gst_rtcp_packet_sr_get_sender_info(&packet, &ssrc, &ntptime, &rtptime, &packets, &octets);
    if (ntptime == 0) continue;  // timestamp-sender-reports=false: no mapping to move
    // RTP time wraps modulo 2^32.
    rtptime =
        shift < 0 ? rtptime - static_cast<guint32>(ticks) : rtptime + static_cast<guint32>(ticks);
    gst_rtcp_packet_sr_set_sender_info(&packet, ssrc, ntptime, rtptime, packets, octets);
    GST_LOG("SR of SSRC %08x: RTP time moved by %" G_GINT64_FORMAT " ms of publisher time", ssrc,
            shift / GST_MSECOND);
  }
  gst_rtcp_buffer_unmap(&rtcp);
  return FALSE;  // nothing added: whether to suppress stays the session's choice
}

// --- the media --------------------------------------------------------------

struct ArclyCaptureTimeMedia {
  GstRTSPMedia parent;
};
struct ArclyCaptureTimeMediaClass {
  GstRTSPMediaClass parent_class;
};
G_DEFINE_TYPE(ArclyCaptureTimeMedia, arcly_capture_time_media, GST_TYPE_RTSP_MEDIA)

gboolean media_setup_rtpbin(GstRTSPMedia* media, GstElement* rtpbin) {
  auto* parent = GST_RTSP_MEDIA_CLASS(arcly_capture_time_media_parent_class);
  if (parent->setup_rtpbin && !parent->setup_rtpbin(media, rtpbin)) return FALSE;
  g_object_set(rtpbin, "rtcp-sync-send-time", FALSE, nullptr);
  gst_util_set_object_arg(G_OBJECT(rtpbin), "ntp-time-source", "ntp");
  return TRUE;
}

// The shift kept on `pad` or on the pad it ghosts (gst-rtsp-media ghosts our
// ghost pad once more on the media's element).
ShiftPtr* shift_of(GstPad* pad) {
  GstPad* at = pad ? GST_PAD(gst_object_ref(pad)) : nullptr;
  while (at) {
    if (auto* held = static_cast<ShiftPtr*>(g_object_get_data(G_OBJECT(at), kShiftKey))) {
      gst_object_unref(at);
      return held;  // alive while the stream's pads are
    }
    GstPad* next = GST_IS_GHOST_PAD(at) ? gst_ghost_pad_get_target(GST_GHOST_PAD(at)) : nullptr;
    gst_object_unref(at);
    at = next;
  }
  return nullptr;
}

// Every stream has its RTP session once the media is prepared, and none has
// sent RTP yet (a live media's streams stay blocked until PLAY), so no SR.
void media_prepared(GstRTSPMedia* media) {
  auto* parent = GST_RTSP_MEDIA_CLASS(arcly_capture_time_media_parent_class);
  if (parent->prepared) parent->prepared(media);
  const guint n = gst_rtsp_media_n_streams(media);
  for (guint i = 0; i < n; ++i) {
    GstRTSPStream* stream = gst_rtsp_media_get_stream(media, i);
    GstPad* pad = stream ? gst_rtsp_stream_get_srcpad(stream) : nullptr;
    ShiftPtr* held = shift_of(pad);
    GObject* session = held ? gst_rtsp_stream_get_rtpsession(stream) : nullptr;
    if (session && !(*held)->connected.exchange(true)) {
      gint rate = 0;
      if (GstCaps* caps = gst_rtsp_stream_get_caps(stream)) {
        if (!gst_caps_is_empty(caps))
          gst_structure_get_int(gst_caps_get_structure(caps, 0), "clock-rate", &rate);
        gst_caps_unref(caps);
      }
      (*held)->clock_rate.store(rate, std::memory_order_relaxed);
      if (rate <= 0) GST_WARNING_OBJECT(media, "stream %u: no clock-rate: SRs keep send time", i);
      GST_DEBUG_OBJECT(media, "stream %u: SRs carry the publisher's time (clock-rate %d)", i, rate);
      g_signal_connect_data(session, "on-sending-rtcp", G_CALLBACK(shift_sender_reports),
                            new ShiftPtr(*held), free_shift_ptr, GConnectFlags(0));
    }
    if (session) g_object_unref(session);
    if (pad) gst_object_unref(pad);
  }
}

void arcly_capture_time_media_class_init(ArclyCaptureTimeMediaClass* klass) {
  auto* media = GST_RTSP_MEDIA_CLASS(klass);
  media->setup_rtpbin = media_setup_rtpbin;
  media->prepared = media_prepared;
}
void arcly_capture_time_media_init(ArclyCaptureTimeMedia*) {}

}  // namespace

void watch_capture_time(GstPad* track, GstPad* rtp_pad) {
  static std::once_flag once;
  std::call_once(once, [] {
    GST_DEBUG_CATEGORY_INIT(arcly_capture_debug, "arclyegress", 0, "arcly network egress");
  });
  auto shift = std::make_shared<StreamShift>();
  g_object_set_data_full(G_OBJECT(rtp_pad), kShiftKey, new ShiftPtr(shift),
                         [](gpointer p) { free_shift_ptr(p); });
  gst_pad_add_probe(
      track,
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
      note_shift, new ShiftPtr(shift), [](gpointer p) { free_shift_ptr(p); });
}

GType capture_time_media_get_type() {
  return arcly_capture_time_media_get_type();
}

}  // namespace arcly::egress
