// Capture-time sender reports — the RTCP SRs of an RTSP reader's media map RTP
// time to the frame's capture time as wall-clock NTP, not to the time it is sent.
//
// In 1.22 an SR pairs "now" (g_get_real_time, ntp-time-source=ntp) with the RTP
// time of "now", extrapolated from the last packet sent and its running time
// (rtpsource.c rtp_source_get_new_sr). So an RTP timestamp maps to the wall
// clock at which this media's pipeline plays the packet (plus the pipeline
// latency with rtcp-sync-send-time=TRUE, the default). arclysrc plays a frame
// later than its publisher did, by a constant per timeline: its latency, and the
// age of the frame it joined at (up to a GOP with start=keyframe).
//
// So, per RTP stream:
// * the media's rtpbin gets rtcp-sync-send-time=FALSE and ntp-time-source=ntp:
//   the packet's own running time, no latency added;
// * a probe on arclysrc's source pad keeps `shift` = this pipeline's clock time of
//   the newest frame minus its publisher time (the `timestamp/x-arcly-publisher`
//   meta: engine time, CLOCK_MONOTONIC, through a ClockBridge when the media's
//   clock is another one);
// * every SR the stream's RTPSession sends gets `shift` added to its RTP time
//   (on-sending-rtcp): the SR's NTP stays "now", so round-trip times from the
//   receivers' LSR/DLSR stay right, and RTP time T now maps to the wall clock at
//   which the publisher played the frame stamped T.
// A client with add-reference-timestamp-meta (rtspsrc) thus gets, as
// `timestamp/x-ntp`, the publisher's time of each frame on this host's wall
// clock (NTP epoch). A camera's own `timestamp/x-ntp` (RTSP ingest) is not used:
// it is in the camera's clock, which is often not synchronised.
//
// Threads: watch_capture_time() from arclysrc's streaming thread (pad-added);
// the probe runs there; the SR rewrite on the RTP session's RTCP thread. They
// share one relaxed atomic pair per stream (numbers read independently; an SR a
// frame late is as good).
#pragma once

#include <gst/gst.h>

namespace arcly::egress {

// Watches the frames arclysrc pushes on `track` and keeps their shift on
// `rtp_pad`, the ghost pad that gst-rtsp-server makes a stream of.
void watch_capture_time(GstPad* track, GstPad* rtp_pad);

// A GstRTSPMedia whose rtpbin reports capture time: set it as the factory's
// media gtype. Streams whose pad was not watched keep 1.22's behaviour.
GType capture_time_media_get_type();

}  // namespace arcly::egress
