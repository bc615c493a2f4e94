// Shared helpers of the plugin tests: pipelines from launch lines, bounded waits
// for bus messages and appsink samples. Every wait has a generous deadline and
// fails the test instead of hanging; nothing asserts on elapsed time.
#pragma once

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/check/gstcheck.h>
#include <gst/gst.h>

#include <string>

namespace th {

inline GstElement* launch(const std::string& line) {
  GError* error = nullptr;
  GstElement* p = gst_parse_launch(line.c_str(), &error);
  if (error) {
    ck_abort_msg("cannot build '%s': %s", line.c_str(), error->message);
  }
  fail_unless(p != nullptr);
  return p;
}

inline GstElement* by_name(GstElement* bin, const char* name) {
  GstElement* e = gst_bin_get_by_name(GST_BIN(bin), name);
  fail_unless(e != nullptr, "no element named %s", name);
  gst_object_unref(e);  // the bin keeps it alive
  return e;
}

// Sets a state and waits (bounded) for it; returns the final result.
inline GstStateChangeReturn set_state(GstElement* e, GstState state) {
  GstStateChangeReturn r = gst_element_set_state(e, state);
  if (r == GST_STATE_CHANGE_ASYNC) r = gst_element_get_state(e, nullptr, nullptr, 10 * GST_SECOND);
  return r;
}

// Live pipelines complete PLAYING only once data flows: do not wait for it.
inline void play(GstElement* pipeline) {
  GstStateChangeReturn r = gst_element_set_state(pipeline, GST_STATE_PLAYING);
  fail_unless(r != GST_STATE_CHANGE_FAILURE, "pipeline did not start");
}

inline void stop(GstElement* pipeline) {
  fail_unless(set_state(pipeline, GST_STATE_NULL) == GST_STATE_CHANGE_SUCCESS);
  gst_object_unref(pipeline);
}

// Pops the first message of `types` within `seconds`; null on timeout.
inline GstMessage* wait_message(GstElement* pipeline, GstMessageType types, double seconds = 20) {
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* m =
      gst_bus_timed_pop_filtered(bus, static_cast<GstClockTime>(seconds * GST_SECOND), types);
  gst_object_unref(bus);
  return m;
}

// The text of an ERROR message (or "" if `m` is not one).
inline std::string error_text(GstMessage* m) {
  if (!m || GST_MESSAGE_TYPE(m) != GST_MESSAGE_ERROR) return {};
  GError* err = nullptr;
  gchar* dbg = nullptr;
  gst_message_parse_error(m, &err, &dbg);
  std::string s = err ? err->message : "";
  g_clear_error(&err);
  g_free(dbg);
  return s;
}

// Fails if an error is pending on the pipeline's bus.
inline void assert_no_error(GstElement* pipeline) {
  GstMessage* m = wait_message(pipeline, GST_MESSAGE_ERROR, 0);
  if (m) {
    std::string text = error_text(m);
    gst_message_unref(m);
    ck_abort_msg("unexpected error: %s", text.c_str());
  }
}

inline GstSample* pull(GstElement* appsink, double seconds = 20) {
  return gst_app_sink_try_pull_sample(GST_APP_SINK(appsink),
                                      static_cast<GstClockTime>(seconds * GST_SECOND));
}

// Waits until an element's `stats` structure has `field` >= `at_least`.
inline guint64 wait_stat(GstElement* e, const char* field, guint64 at_least, double seconds = 20) {
  const gint64 deadline = g_get_monotonic_time() + static_cast<gint64>(seconds * G_USEC_PER_SEC);
  guint64 v = 0;
  while (g_get_monotonic_time() < deadline) {
    GstStructure* s = nullptr;
    g_object_get(e, "stats", &s, nullptr);
    if (s) {
      if (!gst_structure_get_uint64(s, field, &v)) {
        guint u = 0;
        if (gst_structure_get_uint(s, field, &u)) v = u;
      }
      gst_structure_free(s);
    }
    if (v >= at_least) return v;
    g_usleep(5000);
  }
  ck_abort_msg("stats field %s stayed at %" G_GUINT64_FORMAT " < %" G_GUINT64_FORMAT, field, v,
               at_least);
  return v;
}

// Calls `probe` for every buffer and downstream event reaching the sink pad of
// the element `name` in `bin`.
inline void probe_sink_pad(GstElement* bin, const char* name, GstPadProbeCallback probe,
                           gpointer data) {
  GstPad* pad = gst_element_get_static_pad(by_name(bin, name), "sink");
  fail_unless(pad != nullptr, "%s has no sink pad", name);
  gst_pad_add_probe(
      pad,
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
      probe, data, nullptr);
  gst_object_unref(pad);
}

inline const char* kPublisherMeta = "timestamp/x-arcly-publisher";

// The publisher timestamp carried by a buffer, or NONE.
inline GstClockTime publisher_ts(GstBuffer* b) {
  GstCaps* caps = gst_caps_new_empty_simple(kPublisherMeta);
  GstReferenceTimestampMeta* m = gst_buffer_get_reference_timestamp_meta(b, caps);
  gst_caps_unref(caps);
  return m ? m->timestamp : GST_CLOCK_TIME_NONE;
}

// A small live H.264 camera: 160x120 at 30 fps, a keyframe every `gop` frames.
inline std::string h264_camera(int gop, int num_buffers = -1) {
  return "videotestsrc is-live=true num-buffers=" + std::to_string(num_buffers) +
         " ! video/x-raw,width=160,height=120,framerate=30/1 ! x264enc tune=zerolatency "
         "speed-preset=ultrafast key-int-max=" +
         std::to_string(gop) + " bframes=0 ";
}

}  // namespace th
