// A GStreamer application built only from the installed pkg-config file
// (arcly-gst-1.0): it registers a named engine of its own and runs arclysink and
// arclysrc in one pipeline against it. Exit 0 when frames flowed through the
// application's engine and out of arclysrc.
#include <gst/gst.h>

#include <arcly/engine.hpp>
#include <arcly/gst/engine_registry.hpp>
#include <atomic>
#include <cstdio>

static std::atomic<int> g_buffers{0};

static GstPadProbeReturn count(GstPad*, GstPadProbeInfo*, gpointer) {
  g_buffers.fetch_add(1);
  return GST_PAD_PROBE_OK;
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  auto engine = arcly::Engine::builder().accept_any_application().build();
  arcly::gst::register_engine("installed-app", engine);
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(
      "videotestsrc is-live=true num-buffers=90 ! video/x-raw,width=160,height=120,framerate=30/1 "
      "! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! h264parse "
      "! arclysink engine=installed-app stream=live/installed "
      "arclysrc engine=installed-app stream=live/installed wait=5000 ! fakesink name=out sync=false",
      &err);
  if (!pipeline) {
    std::fprintf(stderr, "cannot build the pipeline: %s\n", err ? err->message : "?");
    return 1;
  }
  GstElement* out = gst_bin_get_by_name(GST_BIN(pipeline), "out");
  GstPad* pad = gst_element_get_static_pad(out, "sink");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, count, nullptr, nullptr);
  gst_object_unref(pad);
  gst_object_unref(out);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstBus* bus = gst_element_get_bus(pipeline);
  bool seen_stream = false;
  for (int i = 0; i < 200 && g_buffers.load() < 30; ++i) {  // at most 20 s
    if (GstMessage* m = gst_bus_timed_pop_filtered(bus, 100 * GST_MSECOND, GST_MESSAGE_ERROR)) {
      GError* e = nullptr;
      gst_message_parse_error(m, &e, nullptr);
      std::fprintf(stderr, "error from %s: %s\n", GST_MESSAGE_SRC_NAME(m), e ? e->message : "?");
      return 1;
    }
    if (engine->find_stream(arcly::StreamKey("live", "installed"))) seen_stream = true;
  }
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(pipeline);
  std::printf("buffers through arclysrc: %d; stream seen in the application's engine: %s\n",
              g_buffers.load(), seen_stream ? "yes" : "no");
  arcly::gst::unregister_engine("installed-app");
  return g_buffers.load() >= 30 && seen_stream ? 0 : 1;
}
