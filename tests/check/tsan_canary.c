/* A data race ThreadSanitizer must report: the proof that the plugin suites'
 * TSan set-up still sees races (test-only, TSan builds).
 *
 * The plugin suites run with tsan_glib_sync.c, G_SLICE=always-malloc and
 * ignore_noninstrumented_modules=1, each of which removes reports. A set-up that removed too much
 * would make every suite pass in silence. This program races where arcly's code runs: a counter
 * written on a GStreamer streaming thread (a GstTask of the GLib thread pool) and read by the
 * application thread, with no lock between them. tsan_canary.sh passes only if
 * TSan names this race.
 */
#include <gst/gst.h>

static int handoffs; /* deliberately unprotected */

static void on_handoff(GstElement* sink, GstBuffer* buffer, GstPad* pad, gpointer data) {
  (void)sink, (void)buffer, (void)pad, (void)data;
  handoffs = handoffs + 1; /* the racing write */
}

/* The racing read; not inlined, so that it is read every time round the loop. */
static __attribute__((noinline)) int read_handoffs(void) {
  return handoffs;
}

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  GError* error = NULL;
  GstElement* pipeline = gst_parse_launch(
      "fakesrc is-live=true num-buffers=-1 sizetype=fixed sizemax=16 ! "
      "fakesink name=sink signal-handoffs=true sync=false",
      &error);
  if (!pipeline) {
    g_printerr("tsan-canary: cannot build the pipeline: %s\n", error ? error->message : "?");
    return 2;
  }
  GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
  g_signal_connect(sink, "handoff", G_CALLBACK(on_handoff), NULL);
  gst_object_unref(sink);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  /* Bounded: the race is there from the first read after the first write. */
  for (int i = 0; i < 2000 && read_handoffs() < 1000; ++i) g_usleep(1000);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
  g_print("tsan-canary: %d handoffs seen\n", read_handoffs());
  return 0;
}
