// Whole pipelines with real encoders: late joiners decode at once (config +
// keyframe first), live-edge vs keyframe start, audio+video, Opus, EOS
// propagation, persist across a publisher restart, a lagging subscriber, the
// arcly:// URI through uridecodebin, and a late-joined MP4 recording.
#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>
#include <gst/pbutils/pbutils.h>
#include <gst/video/video.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "arcly/engine.hpp"
#include "engine_registry.hpp"
#include "helpers.hpp"

namespace {

bool has_sps(GstBuffer* b) {
  GstMapInfo m;
  if (!gst_buffer_map(b, &m, GST_MAP_READ)) return false;
  bool found = false;
  for (gsize i = 0; i + 4 < m.size; ++i)
    if (m.data[i] == 0 && m.data[i + 1] == 0 && m.data[i + 2] == 1 && (m.data[i + 3] & 0x1f) == 7)
      found = true;
  gst_buffer_unmap(b, &m);
  return found;
}

GstClockTime running_time(GstSample* s) {
  const GstSegment* seg = gst_sample_get_segment(s);
  return gst_segment_to_running_time(seg, GST_FORMAT_TIME,
                                     GST_BUFFER_PTS(gst_sample_get_buffer(s)));
}

}  // namespace

GST_START_TEST(test_late_joiner_gets_config_and_keyframe) {
  GstElement* pub = th::launch(th::h264_camera(30) + "! arclysink name=pub stream=live/late");
  th::play(pub);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 40);  // a keyframe at 30 plus a few frames

  GstElement* raw = th::launch("arclysrc stream=live/late ! appsink name=out sync=false");
  th::play(raw);
  GstSample* s = th::pull(th::by_name(raw, "out"));
  fail_unless(s != nullptr);
  GstBuffer* b = gst_sample_get_buffer(s);
  // Config (SPS/PPS) + keyframe in one access unit.
  fail_unless(has_sps(b), "first buffer holds no SPS");
  fail_if(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT), "first buffer is not a keyframe");
  fail_unless(gst_buffer_n_memory(b) == 2, "config not sent in front of the keyframe");
  fail_unless(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT));
  gst_sample_unref(s);
  th::stop(raw);

  GstElement* dec = th::launch(
      "arclysrc stream=live/late ! h264parse ! avdec_h264 output-corrupt=false ! "
      "appsink name=out sync=false");
  th::play(dec);
  for (int i = 0; i < 5; ++i) {
    s = th::pull(th::by_name(dec, "out"));
    fail_unless(s != nullptr, "decoded frame %d missing", i);
    fail_unless(th::publisher_ts(gst_sample_get_buffer(s)) != GST_CLOCK_TIME_NONE);
    gst_sample_unref(s);
  }
  th::assert_no_error(dec);
  th::stop(dec);
  th::stop(pub);
}
GST_END_TEST;

// live-edge: the keyframe is the first picture, the next one is the live edge
// (cached frames decoded but clipped). keyframe: every cached frame is shown.
GST_START_TEST(test_start_modes) {
  GstElement* pub = th::launch(th::h264_camera(600) + "! arclysink name=pub stream=live/modes");
  th::play(pub);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 30);

  for (const char* mode : {"live-edge", "keyframe"}) {
    GstElement* sub =
        th::launch(std::string("arclysrc start=") + mode +
                   " stream=live/modes ! h264parse ! avdec_h264 output-corrupt=false ! "
                   "appsink name=out sync=false");
    th::play(sub);
    GstSample* a = th::pull(th::by_name(sub, "out"));
    GstSample* b = th::pull(th::by_name(sub, "out"));
    fail_unless(a && b);
    const GstClockTime ta = th::publisher_ts(gst_sample_get_buffer(a));
    const GstClockTime tb = th::publisher_ts(gst_sample_get_buffer(b));
    fail_unless(GST_CLOCK_TIME_IS_VALID(ta) && GST_CLOCK_TIME_IS_VALID(tb) && tb > ta);
    if (std::strcmp(mode, "live-edge") == 0) {
      // >= 25 cached frames were skipped over, yet no running time was lost.
      fail_unless(tb - ta >= 25 * 33 * GST_MSECOND,
                  "no jump to the live edge (%" GST_TIME_FORMAT ")", GST_TIME_ARGS(tb - ta));
      fail_unless(running_time(b) >= running_time(a));
      fail_unless(running_time(b) - running_time(a) < 100 * GST_MSECOND);
    } else {
      fail_unless(tb - ta < 100 * GST_MSECOND, "keyframe mode skipped frames");
      fail_unless(running_time(b) - running_time(a) ==
                  GST_BUFFER_PTS(gst_sample_get_buffer(b)) -
                      GST_BUFFER_PTS(gst_sample_get_buffer(a)));
    }
    gst_sample_unref(a);
    gst_sample_unref(b);
    th::assert_no_error(sub);
    th::stop(sub);
  }
  th::stop(pub);
}
GST_END_TEST;

GST_START_TEST(test_audio_video) {
  GstElement* pub = th::launch("arclysink name=pub stream=live/av " + th::h264_camera(30) +
                               "! pub. audiotestsrc is-live=true ! avenc_aac ! pub.");
  th::play(pub);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 60);

  GstElement* raw = th::launch(
      "arclysrc name=s stream=live/av s.video_0 ! queue ! appsink name=v sync=false "
      "s.audio_0 ! queue ! appsink name=a sync=false");
  th::play(raw);
  GstSample* v = th::pull(th::by_name(raw, "v"));
  GstSample* a = th::pull(th::by_name(raw, "a"));
  fail_unless(v && a);
  fail_unless(has_sps(gst_sample_get_buffer(v)));
  fail_if(GST_BUFFER_FLAG_IS_SET(gst_sample_get_buffer(v), GST_BUFFER_FLAG_DELTA_UNIT));
  fail_if(GST_BUFFER_FLAG_IS_SET(gst_sample_get_buffer(a), GST_BUFFER_FLAG_DELTA_UNIT));
  const GstStructure* as = gst_caps_get_structure(gst_sample_get_caps(a), 0);
  fail_unless(gst_structure_has_name(as, "audio/mpeg") &&
              gst_structure_has_field(as, "codec_data"));
  gst_sample_unref(v);
  gst_sample_unref(a);
  // `keyframes` counts video keyframes: after ~0.85 s of AAC (40 frames, each a
  // sync point) at most the cached one and the next GOPs' (30-frame GOP) are in it.
  for (int i = 0; i < 40; ++i) {
    GstSample* more = th::pull(th::by_name(raw, "a"));
    fail_unless(more != nullptr);
    gst_sample_unref(more);
  }
  GstStructure* stats = nullptr;
  g_object_get(th::by_name(raw, "s"), "stats", &stats, nullptr);
  guint64 keyframes = 0, frames = 0;
  fail_unless(gst_structure_get_uint64(stats, "keyframes", &keyframes) &&
              gst_structure_get_uint64(stats, "frames", &frames));
  gst_structure_free(stats);
  fail_unless(keyframes >= 1 && keyframes <= 4,
              "%" G_GUINT64_FORMAT " keyframes in %" G_GUINT64_FORMAT " frames", keyframes, frames);
  th::stop(raw);

  GstElement* sub = th::launch(
      "arclysrc name=s stream=live/av "
      "s.video_0 ! queue ! h264parse ! avdec_h264 output-corrupt=false ! appsink name=v sync=false "
      "s.audio_0 ! queue ! aacparse ! avdec_aac ! appsink name=a sync=false");
  th::play(sub);
  GstSample* v1 = th::pull(th::by_name(sub, "v"));
  GstSample* v2 = th::pull(th::by_name(sub, "v"));
  GstSample* a1 = th::pull(th::by_name(sub, "a"));
  fail_unless(v1 && v2 && a1);
  // In sync: the first audio plays where the live video edge plays.
  const GstClockTime rv = running_time(v2), ra = running_time(a1);
  const GstClockTime diff = rv > ra ? rv - ra : ra - rv;
  fail_unless(diff < 150 * GST_MSECOND, "A/V apart by %" GST_TIME_FORMAT, GST_TIME_ARGS(diff));
  gst_sample_unref(v1);
  gst_sample_unref(v2);
  gst_sample_unref(a1);
  th::assert_no_error(sub);
  th::stop(sub);
  th::stop(pub);
}
GST_END_TEST;

GST_START_TEST(test_opus) {
  GstElement* pub =
      th::launch("audiotestsrc is-live=true ! opusenc ! arclysink name=pub stream=live/opus");
  th::play(pub);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 10);
  GstElement* sub = th::launch("arclysrc stream=live/opus ! opusdec ! appsink name=out sync=false");
  th::play(sub);
  for (int i = 0; i < 5; ++i) {
    GstSample* s = th::pull(th::by_name(sub, "out"));
    fail_unless(s != nullptr);
    gst_sample_unref(s);
  }
  th::assert_no_error(sub);
  th::stop(sub);
  th::stop(pub);
}
GST_END_TEST;

GST_START_TEST(test_eos_propagation) {
  GstElement* sub =
      th::launch("arclysrc stream=live/eos wait=-1 ! h264parse ! avdec_h264 ! fakesink");
  th::play(sub);
  GstElement* pub = th::launch(th::h264_camera(15, 30) + "! arclysink stream=live/eos");
  th::play(pub);
  GstMessage* m =
      th::wait_message(pub, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS, "publisher: %s",
              th::error_text(m).c_str());
  gst_message_unref(m);
  m = th::wait_message(sub, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS, "subscriber: %s",
              th::error_text(m).c_str());
  gst_message_unref(m);
  th::stop(pub);
  th::stop(sub);
}
GST_END_TEST;

GST_START_TEST(test_persist_across_publisher_restart) {
  GstElement* sub = th::launch(
      "arclysrc name=src stream=live/blip persist=true wait=-1 ! h264parse ! "
      "avdec_h264 output-corrupt=false ! appsink name=out sync=false");
  th::play(sub);
  GstElement* out = th::by_name(sub, "out");
  GstElement* src = th::by_name(sub, "src");

  GstElement* pub = th::launch(th::h264_camera(15) + "! arclysink stream=live/blip");
  th::play(pub);
  const guint64 before = th::wait_stat(src, "frames", 15);
  th::stop(pub);  // the camera blips

  // The new camera has another resolution: new caps must reach the decoder.
  pub = th::launch(
      "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! "
      "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! arclysink "
      "stream=live/blip");
  th::play(pub);
  th::wait_stat(src, "publishers", 2);
  th::wait_stat(src, "frames", before + 15);
  bool saw_new_caps = false;
  for (int i = 0; i < 200 && !saw_new_caps; ++i) {
    GstSample* s = th::pull(out);
    fail_unless(s != nullptr, "subscriber stopped after the restart");
    gint width = 0;
    gst_structure_get_int(gst_caps_get_structure(gst_sample_get_caps(s), 0), "width", &width);
    saw_new_caps = width == 320;
    gst_sample_unref(s);
  }
  fail_unless(saw_new_caps);
  GstMessage* m =
      th::wait_message(sub, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR), 0);
  fail_unless(m == nullptr, "persist subscriber ended: %s", th::error_text(m).c_str());
  th::stop(pub);
  th::stop(sub);
}
GST_END_TEST;

namespace {
struct Gate {
  GMutex mutex;
  GCond cond;
  bool open = false;
  bool reached = false;
};

GstPadProbeReturn hold_first(GstPad*, GstPadProbeInfo*, gpointer data) {
  auto* g = static_cast<Gate*>(data);
  g_mutex_lock(&g->mutex);
  g->reached = true;
  g_cond_broadcast(&g->cond);
  while (!g->open) g_cond_wait(&g->cond, &g->mutex);
  g_mutex_unlock(&g->mutex);
  return GST_PAD_PROBE_OK;
}
}  // namespace

GST_START_TEST(test_lagging_subscriber) {
  // A tiny ring so that a blocked subscriber is overrun quickly.
  auto engine = arcly::Engine::builder()
                    .accept_any_application(arcly::AppSpec().gop_cache(16).ring(32))
                    .build();
  arcly::gst::register_engine("tiny", engine);
  GstElement* pub = th::launch(
      "appsrc name=src is-live=true format=time caps=video/x-arcly-test ! "
      "arclysink name=pub engine=tiny stream=live/lag");
  th::play(pub);
  GstElement* sub = th::launch(
      "arclysrc name=s engine=tiny stream=live/lag start=next-keyframe ! "
      "fakesink name=fs sync=false");
  GstPad* pad = gst_element_get_static_pad(th::by_name(sub, "fs"), "sink");
  Gate gate;
  g_mutex_init(&gate.mutex);
  g_cond_init(&gate.cond);
  gulong probe = gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, hold_first, &gate, nullptr);
  th::play(sub);
  th::wait_stat(th::by_name(pub, "pub"), "subscribers", 1);

  GstAppSrc* appsrc = GST_APP_SRC(th::by_name(pub, "src"));
  auto push = [&](int i) {
    GstBuffer* b = gst_buffer_new_allocate(nullptr, 64, nullptr);
    GST_BUFFER_PTS(b) = static_cast<GstClockTime>(i) * 10 * GST_MSECOND;
    if (i % 8 != 0) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
    fail_unless_equals_int(gst_app_src_push_buffer(appsrc, b), GST_FLOW_OK);
  };
  push(0);
  g_mutex_lock(&gate.mutex);  // the subscriber now holds frame 0 downstream
  while (!gate.reached) g_cond_wait(&gate.cond, &gate.mutex);
  g_mutex_unlock(&gate.mutex);
  for (int i = 1; i < 200; ++i) push(i);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 200);

  g_mutex_lock(&gate.mutex);
  gate.open = true;
  g_cond_broadcast(&gate.cond);
  g_mutex_unlock(&gate.mutex);

  GstMessage* m =
      th::wait_message(sub, static_cast<GstMessageType>(GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR));
  fail_unless(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_ELEMENT, "%s", th::error_text(m).c_str());
  const GstStructure* st = gst_message_get_structure(m);
  fail_unless(gst_structure_has_name(st, "arcly-lagged"));
  guint64 dropped = 0;
  fail_unless(gst_structure_get_uint64(st, "dropped", &dropped) && dropped > 0);
  gst_message_unref(m);
  th::wait_stat(th::by_name(sub, "s"), "dropped", 1);
  th::wait_stat(th::by_name(sub, "s"), "lag-events", 1);

  gst_pad_remove_probe(pad, probe);
  gst_object_unref(pad);
  th::stop(sub);
  th::stop(pub);
  g_mutex_clear(&gate.mutex);
  g_cond_clear(&gate.cond);
  arcly::gst::unregister_engine("tiny");
}
GST_END_TEST;

GST_START_TEST(test_uri_playback) {
  GstElement* pub = th::launch(th::h264_camera(30) + "! arclysink name=pub stream=live/uri");
  th::play(pub);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 5);
  GstElement* sub = th::launch("uridecodebin uri=arcly://live/uri ! appsink name=out sync=false");
  th::play(sub);
  for (int i = 0; i < 5; ++i) {
    GstSample* s = th::pull(th::by_name(sub, "out"));
    fail_unless(s != nullptr);
    fail_unless(
        gst_structure_has_name(gst_caps_get_structure(gst_sample_get_caps(s), 0), "video/x-raw"));
    gst_sample_unref(s);
  }
  th::assert_no_error(sub);
  th::stop(sub);

  GstElement* play = th::launch(
      "playbin uri=arcly://live/uri video-sink=\"fakesink name=vs\" audio-sink=fakesink");
  th::play(play);
  GstElement* vs = nullptr;
  g_object_get(play, "video-sink", &vs, nullptr);
  const gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
  GstSample* last = nullptr;
  while (!last && g_get_monotonic_time() < deadline) {
    g_object_get(vs, "last-sample", &last, nullptr);
    if (!last) g_usleep(10000);
  }
  fail_unless(last != nullptr, "playbin showed nothing");
  gst_sample_unref(last);
  gst_object_unref(vs);
  th::stop(play);
  th::stop(pub);
}
GST_END_TEST;

GST_START_TEST(test_mp4_recording_with_pre_event_footage) {
  const char* dir = g_getenv("ARCLY_TEST_OUTDIR");
  gchar* path = g_build_filename(dir ? dir : ".", "late-join.mp4", nullptr);
  GstElement* pub = th::launch(th::h264_camera(30) + "! arclysink name=pub stream=live/rec");
  th::play(pub);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 50);  // keyframe at 30 + ~20 frames cached

  GstElement* rec =
      th::launch(std::string("arclysrc name=src stream=live/rec start=keyframe ! h264parse ! "
                             "mp4mux ! filesink location=") +
                 path);
  th::play(rec);
  const guint64 got = th::wait_stat(th::by_name(rec, "src"), "frames", 30);
  fail_unless(got >= 15);
  gst_element_send_event(pub, gst_event_new_eos());
  GstMessage* m =
      th::wait_message(rec, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS, "recorder: %s",
              th::error_text(m).c_str());
  gst_message_unref(m);
  guint64 recorded = 0;
  GstStructure* st = nullptr;
  g_object_get(th::by_name(rec, "src"), "stats", &st, nullptr);
  gst_structure_get_uint64(st, "frames", &recorded);
  gst_structure_free(st);
  th::stop(rec);
  th::stop(pub);

  GError* err = nullptr;
  GstDiscoverer* d = gst_discoverer_new(10 * GST_SECOND, &err);
  fail_unless(d != nullptr);
  gchar* uri = gst_filename_to_uri(path, nullptr);
  GstDiscovererInfo* info = gst_discoverer_discover_uri(d, uri, &err);
  fail_unless(info && gst_discoverer_info_get_result(info) == GST_DISCOVERER_OK, "%s",
              err ? err->message : "discoverer failed");
  GList* videos = gst_discoverer_info_get_video_streams(info);
  fail_unless(g_list_length(videos) == 1);
  const GstClockTime duration = gst_discoverer_info_get_duration(info);
  // Every recorded frame is in the file, the pre-event GOP included (>= 20 frames).
  fail_unless(duration >= (recorded - 2) * 33 * GST_MSECOND,
              "duration %" GST_TIME_FORMAT " for %" G_GUINT64_FORMAT " frames",
              GST_TIME_ARGS(duration), recorded);
  gst_discoverer_stream_info_list_free(videos);
  g_object_unref(info);
  g_object_unref(d);
  g_free(uri);
  g_free(path);
}
GST_END_TEST;

// A paused subscriber resumes on a fresh timeline: DISCONT, running time still
// increasing, frames keep coming.
GST_START_TEST(test_pause_resume) {
  GstElement* pub = th::launch(th::h264_camera(15) + "! arclysink name=pub stream=live/pause");
  th::play(pub);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 5);
  GstElement* sub = th::launch("arclysrc stream=live/pause ! appsink name=out sync=false");
  th::play(sub);
  GstElement* out = th::by_name(sub, "out");
  GstSample* s = th::pull(out);
  fail_unless(s != nullptr);
  const GstClockTime rt_before = running_time(s);
  gst_sample_unref(s);
  fail_unless(gst_element_set_state(sub, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 40);  // the publisher goes on meanwhile
  th::play(sub);
  bool discont = false;
  for (int i = 0; i < 60 && !discont; ++i) {
    s = th::pull(out);
    fail_unless(s != nullptr, "no data after resuming");
    discont = GST_BUFFER_FLAG_IS_SET(gst_sample_get_buffer(s), GST_BUFFER_FLAG_DISCONT);
    fail_unless(running_time(s) >= rt_before);
    gst_sample_unref(s);
  }
  fail_unless(discont, "no DISCONT after resuming");
  th::assert_no_error(sub);
  th::stop(sub);
  th::stop(pub);
}
GST_END_TEST;

// A live source pushes nothing in PAUSED and resumes at the live edge: after a
// pause of two seconds the output jumps to the publisher's present (DISCONT, a
// keyframe first) instead of playing on from where it stopped, two seconds
// behind live for ever. A sync=true sink on the real clock.
GST_START_TEST(test_pause_resumes_at_live_edge) {
  GstElement* pub = th::launch(th::h264_camera(10) + "! arclysink name=pub stream=live/pz");
  th::play(pub);
  GstElement* pubsink = th::by_name(pub, "pub");
  th::wait_stat(pubsink, "frames", 5);
  GstElement* sub = th::launch("arclysrc stream=live/pz ! appsink name=out sync=true");
  th::play(sub);
  GstElement* out = th::by_name(sub, "out");
  GstClockTime last_ts = 0, last_rt = 0;
  for (int i = 0; i < 10; ++i) {
    GstSample* s = th::pull(out);
    fail_unless(s != nullptr);
    last_ts = th::publisher_ts(gst_sample_get_buffer(s));
    last_rt = running_time(s);
    gst_sample_unref(s);
  }
  fail_unless(gst_element_set_state(sub, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  // Two seconds of the publisher's stream go by (60 frames at 30 fps).
  GstStructure* st = nullptr;
  g_object_get(pubsink, "stats", &st, nullptr);
  guint64 published = 0;
  gst_structure_get_uint64(st, "frames", &published);
  gst_structure_free(st);
  th::wait_stat(pubsink, "frames", published + 60);
  th::play(sub);

  // The sample that was prerolling may come first; within a few samples the
  // output must be at the live edge (a keyframe at most one GOP, 333 ms, old).
  bool jumped = false;
  for (int i = 0; i < 8 && !jumped; ++i) {
    GstSample* s = th::pull(out);
    fail_unless(s != nullptr, "no data after resuming");
    GstBuffer* b = gst_sample_get_buffer(s);
    const GstClockTime ts = th::publisher_ts(b);
    fail_unless(running_time(s) >= last_rt, "running time went backwards after the pause");
    if (ts >= last_ts + 1500 * GST_MSECOND) {
      jumped = true;
      fail_unless(GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DISCONT), "no DISCONT at the jump");
    }
    last_rt = running_time(s);
    gst_sample_unref(s);
  }
  fail_unless(jumped, "the output resumed where it paused, behind live by the pause");
  th::assert_no_error(sub);
  th::stop(sub);
  th::stop(pub);
}
GST_END_TEST;

// PLAYING -> PAUSED -> PLAYING before the first publisher changes nothing: the
// stream then starts with one DISCONT and no re-anchoring after it.
GST_START_TEST(test_pause_before_first_publisher) {
  GstElement* sub = th::launch("arclysrc stream=live/pfirst ! appsink name=out sync=false");
  th::play(sub);
  fail_unless(gst_element_set_state(sub, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  th::play(sub);
  GstElement* pub = th::launch(th::h264_camera(15) + "! arclysink stream=live/pfirst");
  th::play(pub);
  GstElement* out = th::by_name(sub, "out");
  int disconts = 0;
  for (int i = 0; i < 30; ++i) {
    GstSample* s = th::pull(out);
    fail_unless(s != nullptr);
    if (GST_BUFFER_FLAG_IS_SET(gst_sample_get_buffer(s), GST_BUFFER_FLAG_DISCONT)) ++disconts;
    gst_sample_unref(s);
  }
  fail_unless_equals_int(disconts, 1);
  th::stop(pub);
  th::stop(sub);
}
GST_END_TEST;

// EOS sent to arclysrc ends every pad from the streaming thread: a two-track
// MP4 recording is finalized and playable. (The publisher ends with EOS on both
// of its pads at once, the arclysink `eos` race TSan found.)
GST_START_TEST(test_eos_event_finalizes_two_track_recording) {
  const char* dir = g_getenv("ARCLY_TEST_OUTDIR");
  gchar* path = g_build_filename(dir ? dir : ".", "eos-av.mp4", nullptr);
  GstElement* pub = th::launch(th::h264_camera(30) +
                               "! arclysink name=pub stream=live/eosav "
                               "audiotestsrc is-live=true ! avenc_aac ! pub.");
  th::play(pub);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 20);
  GstElement* rec = th::launch(
      std::string("arclysrc name=src stream=live/eosav start=keyframe "
                  "src.video_0 ! queue ! h264parse ! mp4mux name=mux ! filesink location=") +
      path + " src.audio_0 ! queue ! aacparse ! mux.");
  th::play(rec);
  GstElement* src = th::by_name(rec, "src");
  th::wait_stat(src, "frames", 150);  // video and audio frames: about two seconds
  fail_unless(gst_element_send_event(src, gst_event_new_eos()));
  GstMessage* m =
      th::wait_message(rec, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS, "recorder not finalized: %s",
              m ? th::error_text(m).c_str() : "no EOS");
  gst_message_unref(m);
  th::stop(rec);

  gst_element_send_event(pub, gst_event_new_eos());
  m = th::wait_message(pub, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS, "publisher: %s",
              th::error_text(m).c_str());
  gst_message_unref(m);
  th::stop(pub);

  GError* err = nullptr;
  GstDiscoverer* d = gst_discoverer_new(10 * GST_SECOND, &err);
  fail_unless(d != nullptr);
  gchar* uri = gst_filename_to_uri(path, nullptr);
  GstDiscovererInfo* info = gst_discoverer_discover_uri(d, uri, &err);
  fail_unless(info && gst_discoverer_info_get_result(info) == GST_DISCOVERER_OK, "%s",
              err ? err->message : "discoverer failed");
  GList* videos = gst_discoverer_info_get_video_streams(info);
  GList* audios = gst_discoverer_info_get_audio_streams(info);
  fail_unless_equals_int(g_list_length(videos), 1);
  fail_unless_equals_int(g_list_length(audios), 1);
  fail_unless(gst_discoverer_info_get_duration(info) >= GST_SECOND);
  gst_discoverer_stream_info_list_free(videos);
  gst_discoverer_stream_info_list_free(audios);
  g_object_unref(info);
  g_object_unref(d);
  g_free(uri);
  g_free(path);
}
GST_END_TEST;

// A camera whose audio starts after its first video keyframe (an SRT caller's
// AAC caps follow the video through the ingest): a recorder that joined on the
// cached keyframe exposes both pads, and its splitmuxsink file (as the host's
// recorder writes) holds both streams.
GST_START_TEST(test_late_audio_track_is_recorded) {
  const char* dir = g_getenv("ARCLY_TEST_OUTDIR");
  gchar* location = g_build_filename(dir ? dir : ".", "late-audio-%02d.mp4", nullptr);
  gchar* first = g_build_filename(dir ? dir : ".", "late-audio-00.mp4", nullptr);
  g_unlink(first);
  GstElement* pub = th::launch(th::h264_camera(30) +
                               "! arclysink name=pub stream=live/lateav "
                               "audiotestsrc name=asrc is-live=true ! avenc_aac ! pub.");
  GstElement* asrc = th::by_name(pub, "asrc");
  gst_element_set_locked_state(asrc, TRUE);  // the audio starts later
  th::play(pub);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 5);  // the first keyframe is cached

  GstElement* rec =
      th::launch(std::string("arclysrc name=src stream=live/lateav start=keyframe "
                             "src.video_0 ! queue ! h264parse ! splitmuxsink name=mux muxer=mp4mux "
                             "max-size-time=60000000000 location=") +
                 location + " src.audio_0 ! queue ! aacparse ! mux.audio_%u");
  GstElement* src = th::by_name(rec, "src");
  th::play(rec);
  th::wait_stat(src, "frames", 3);  // recording video from the cached keyframe on
  gst_element_set_locked_state(asrc, FALSE);
  fail_unless(gst_element_sync_state_with_parent(asrc));

  GstPad* audio = nullptr;
  const gint64 until = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
  while (!(audio = gst_element_get_static_pad(src, "audio_0")) && g_get_monotonic_time() < until)
    g_usleep(5000);
  fail_unless(audio != nullptr, "the late audio track got no pad");
  gst_object_unref(audio);
  th::wait_stat(src, "frames", 120);  // video and audio: about a second and a half
  fail_unless(gst_element_send_event(src, gst_event_new_eos()));
  GstMessage* m =
      th::wait_message(rec, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS, "recorder not finalized: %s",
              m ? th::error_text(m).c_str() : "no EOS");
  gst_message_unref(m);
  th::stop(rec);
  th::stop(pub);

  GError* err = nullptr;
  GstDiscoverer* d = gst_discoverer_new(10 * GST_SECOND, &err);
  fail_unless(d != nullptr);
  gchar* uri = gst_filename_to_uri(first, nullptr);
  GstDiscovererInfo* info = gst_discoverer_discover_uri(d, uri, &err);
  fail_unless(info && gst_discoverer_info_get_result(info) == GST_DISCOVERER_OK, "%s",
              err ? err->message : "discoverer failed");
  GList* videos = gst_discoverer_info_get_video_streams(info);
  GList* audios = gst_discoverer_info_get_audio_streams(info);
  fail_unless_equals_int(g_list_length(videos), 1);
  fail_unless_equals_int(g_list_length(audios), 1);
  gst_discoverer_stream_info_list_free(videos);
  gst_discoverer_stream_info_list_free(audios);
  g_object_unref(info);
  g_object_unref(d);
  g_free(uri);
  g_free(first);
  g_free(location);
}
GST_END_TEST;

namespace {

// A live camera of one solid colour (videotestsrc pattern), `gop` frames per keyframe.
std::string colour_camera(const char* pattern, int width, int height, int gop, const char* key) {
  return std::string("videotestsrc is-live=true pattern=") + pattern +
         " ! video/x-raw,width=" + std::to_string(width) + ",height=" + std::to_string(height) +
         ",framerate=30/1 ! x264enc tune=zerolatency speed-preset=ultrafast bframes=0 "
         "key-int-max=" +
         std::to_string(gop) + " ! arclysink name=pub stream=" + key;
}

// The colour of a decoded RGB picture's centre: 'r', 'b', or '?' (grey,
// garbage, anything else).
char colour_of(GstSample* sample) {
  GstVideoInfo info;
  fail_unless(gst_video_info_from_caps(&info, gst_sample_get_caps(sample)));
  GstVideoFrame frame;
  fail_unless(gst_video_frame_map(&frame, &info, gst_sample_get_buffer(sample), GST_MAP_READ));
  const auto* row = static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, 0)) +
                    GST_VIDEO_FRAME_PLANE_STRIDE(&frame, 0) * (info.height / 2);
  const guint8* px = row + 3 * (info.width / 2);
  const int r = px[0], g = px[1], b = px[2];
  gst_video_frame_unmap(&frame);
  if (r > 200 && g < 60 && b < 60) return 'r';
  if (b > 200 && r < 60 && g < 60) return 'b';
  return '?';
}

// Pulls decoded pictures until one of colour `want` (at most `limit`); every
// picture on the way must be `was` or `want`, running time never going back.
int pull_until(GstElement* appsink, char was, char want, GstClockTime* last_rt, int limit) {
  for (int i = 0; i < limit; ++i) {
    GstSample* s = th::pull(appsink, 10);
    fail_unless(s != nullptr, "no picture (after %d)", i);
    const GstClockTime rt = running_time(s);
    fail_unless(
        GST_CLOCK_TIME_IS_VALID(rt) && (!GST_CLOCK_TIME_IS_VALID(*last_rt) || rt >= *last_rt),
        "running time went back: %" GST_TIME_FORMAT " after %" GST_TIME_FORMAT, GST_TIME_ARGS(rt),
        GST_TIME_ARGS(*last_rt));
    *last_rt = rt;
    const char c = colour_of(s);
    gst_sample_unref(s);
    fail_unless(c == was || c == want, "picture %d is neither '%c' nor '%c' but '%c'", i, was, want,
                c);
    if (c == want) return i;
  }
  ck_abort_msg("no '%c' picture within %d pictures", want, limit);
  return -1;
}

}  // namespace

// Fast channel change: `stream` (and the URI) switch a playing arclysrc between
// two live streams of different size. Each publisher sends one keyframe in 20 s,
// so only the instant start (the cached keyframe and a decode-only catch-up)
// can show the new stream: waiting for its next keyframe would show nothing.
// The decoder gets a clean picture of the new stream (never grey or garbage),
// the running time continues, there is no EOS, and arcly-switched is posted.
GST_START_TEST(test_switch_streams_while_playing) {
  GstElement* red = th::launch(colour_camera("red", 160, 120, 600, "live/red"));
  GstElement* blue = th::launch(colour_camera("blue", 320, 240, 600, "live/blue"));
  th::play(red);
  th::play(blue);
  th::wait_stat(th::by_name(red, "pub"), "frames", 10);
  th::wait_stat(th::by_name(blue, "pub"), "frames", 10);

  GstElement* sub = th::launch(
      "arclysrc name=src stream=live/red ! h264parse ! avdec_h264 ! videoconvert ! "
      "video/x-raw,format=RGB ! appsink name=out sync=false");
  GstElement* src = th::by_name(sub, "src");
  GstElement* out = th::by_name(sub, "out");
  th::play(sub);
  GstClockTime rt = GST_CLOCK_TIME_NONE;
  pull_until(out, 'r', 'r', &rt, 1);

  g_object_set(src, "stream", "live/blue", nullptr);
  pull_until(out, 'r', 'b', &rt, 150);
  GstMessage* m = th::wait_message(sub, GST_MESSAGE_ELEMENT, 10);
  fail_unless(m != nullptr, "no arcly-switched message");
  const GstStructure* st = gst_message_get_structure(m);
  fail_unless(gst_structure_has_name(st, "arcly-switched"), "%s", gst_structure_get_name(st));
  fail_unless_equals_string(gst_structure_get_string(st, "from"), "live/red");
  fail_unless_equals_string(gst_structure_get_string(st, "to"), "live/blue");
  gst_message_unref(m);

  // Back through the URI handler; the other settings stay as they are.
  GError* err = nullptr;
  fail_unless(gst_uri_handler_set_uri(GST_URI_HANDLER(src), "arcly://live/red", &err), "%s",
              err ? err->message : "");
  pull_until(out, 'b', 'r', &rt, 150);
  gchar* key = nullptr;
  g_object_get(src, "stream", &key, nullptr);
  fail_unless_equals_string(key, "live/red");
  g_free(key);
  // A URI that changes what only READY may change is refused, the key kept.
  fail_if(gst_uri_handler_set_uri(GST_URI_HANDLER(src), "arcly://live/blue?latency=99", &err));
  fail_unless(err && std::strstr(err->message, "latency"), "%s", err ? err->message : "");
  g_clear_error(&err);
  // An invalid key: a warning, the source plays on.
  g_object_set(src, "stream", "not a key", nullptr);
  m = th::wait_message(sub, GST_MESSAGE_WARNING, 10);
  fail_unless(m != nullptr, "no warning for an invalid key");
  GError* warning = nullptr;
  gst_message_parse_warning(m, &warning, nullptr);
  fail_unless(std::strstr(warning->message, "\"not a key\"") &&
                  std::strstr(warning->message, "still playing live/red"),
              "%s", warning->message);
  g_clear_error(&warning);
  gst_message_unref(m);
  pull_until(out, 'r', 'r', &rt, 5);

  fail_if(gst_app_sink_is_eos(GST_APP_SINK(out)), "EOS on a switch");
  th::assert_no_error(sub);
  th::stop(sub);
  th::stop(red);
  th::stop(blue);
}
GST_END_TEST;

// start=keyframe preroll=MS reaches back into an engine's cache window.
GST_START_TEST(test_keyframe_preroll_window) {
  auto engine = arcly::Engine::builder()
                    .accept_any_application(arcly::AppSpec().window(std::chrono::seconds(10)))
                    .build();
  arcly::gst::register_engine("window", engine);
  GstElement* pub =
      th::launch(th::h264_camera(15) + "! arclysink name=pub engine=window stream=live/win");
  th::play(pub);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 75);  // 2.5 s, a keyframe every 0.5 s
  GstClockTime first[2] = {};
  const char* prerolls[2] = {"0", "1500"};
  for (int i = 0; i < 2; ++i) {
    GstElement* sub =
        th::launch(std::string("arclysrc engine=window stream=live/win start=keyframe preroll=") +
                   prerolls[i] + " ! appsink name=out sync=false");
    th::play(sub);
    GstSample* s = th::pull(th::by_name(sub, "out"));
    fail_unless(s != nullptr);
    first[i] = th::publisher_ts(gst_sample_get_buffer(s));
    fail_if(GST_BUFFER_FLAG_IS_SET(gst_sample_get_buffer(s), GST_BUFFER_FLAG_DELTA_UNIT));
    gst_sample_unref(s);
    th::stop(sub);
  }
  fail_unless(first[1] + GST_SECOND <= first[0],
              "preroll did not reach back (%" GST_TIME_FORMAT ")",
              GST_TIME_ARGS(first[0] - first[1]));
  th::stop(pub);
  arcly::gst::unregister_engine("window");
}
GST_END_TEST;

// Leaving PAUSED (here: stopping the publisher) ends the publish too.
GST_START_TEST(test_publisher_stop_sends_eos) {
  GstElement* pub = th::launch(th::h264_camera(15) + "! arclysink name=pub stream=live/stop");
  th::play(pub);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 5);
  GstElement* sub = th::launch("arclysrc name=src stream=live/stop ! fakesink sync=false");
  th::play(sub);
  th::wait_stat(th::by_name(sub, "src"), "frames", 5);
  th::stop(pub);
  GstMessage* m =
      th::wait_message(sub, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  fail_unless(m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS, "subscriber: %s",
              th::error_text(m).c_str());
  gst_message_unref(m);
  th::stop(sub);
}
GST_END_TEST;

// H.265 byte-stream: VPS/SPS/PPS cached and sent before the keyframe.
GST_START_TEST(test_h265_late_joiner) {
  GstElement* pub = th::launch(
      "videotestsrc is-live=true ! video/x-raw,width=160,height=128,framerate=30/1 ! "
      "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! "
      "video/x-h265,stream-format=byte-stream ! arclysink name=pub stream=live/hevc");
  th::play(pub);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 20);
  GstElement* sub = th::launch(
      "arclysrc stream=live/hevc ! h265parse ! avdec_h265 ! appsink name=out sync=false");
  th::play(sub);
  for (int i = 0; i < 3; ++i) {
    GstSample* s = th::pull(th::by_name(sub, "out"));
    fail_unless(s != nullptr);
    gst_sample_unref(s);
  }
  th::assert_no_error(sub);
  th::stop(sub);
  th::stop(pub);
}
GST_END_TEST;

namespace {

// An appsrc publisher of test frames: 10 ms apart, a keyframe every `gop`.
void push_test_frame(GstAppSrc* appsrc, int i, int gop = 8) {
  GstBuffer* b = gst_buffer_new_allocate(nullptr, 64, nullptr);
  GST_BUFFER_PTS(b) = static_cast<GstClockTime>(i) * 10 * GST_MSECOND;
  if (i % gop != 0) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
  fail_unless_equals_int(gst_app_src_push_buffer(appsrc, b), GST_FLOW_OK);
}

// Pops element messages (failing on an error) until one named `name`.
GstStructure* wait_element_message(GstElement* pipeline, const char* name, double seconds = 20) {
  const gint64 deadline = g_get_monotonic_time() + static_cast<gint64>(seconds * G_USEC_PER_SEC);
  while (g_get_monotonic_time() < deadline) {
    GstMessage* m = th::wait_message(
        pipeline, static_cast<GstMessageType>(GST_MESSAGE_ELEMENT | GST_MESSAGE_ERROR), 0.2);
    if (!m) continue;
    fail_unless(GST_MESSAGE_TYPE(m) == GST_MESSAGE_ELEMENT, "error: %s", th::error_text(m).c_str());
    const GstStructure* st = gst_message_get_structure(m);
    if (st && gst_structure_has_name(st, name)) {
      GstStructure* copy = gst_structure_copy(st);
      gst_message_unref(m);
      return copy;
    }
    gst_message_unref(m);
  }
  ck_abort_msg("no %s message", name);
  return nullptr;
}

// Holds the first buffer until the gate opens, then records every buffer's
// flags and publisher timestamp.
struct Recorder {
  Gate gate;
  std::vector<std::pair<GstBufferFlags, GstClockTime>> seen;  // under gate.mutex
};

GstPadProbeReturn hold_first_then_record(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* r = static_cast<Recorder*>(data);
  GstBuffer* b = GST_PAD_PROBE_INFO_BUFFER(info);
  g_mutex_lock(&r->gate.mutex);
  r->seen.emplace_back(static_cast<GstBufferFlags>(GST_BUFFER_FLAGS(b)), th::publisher_ts(b));
  r->gate.reached = true;
  g_cond_broadcast(&r->gate.cond);
  while (!r->gate.open) g_cond_wait(&r->gate.cond, &r->gate.mutex);
  g_mutex_unlock(&r->gate.mutex);
  return GST_PAD_PROBE_OK;
}

}  // namespace

// max-lag: a subscriber whose downstream blocks falls behind the publisher by
// more than max-lag; on the next frame it skips to the newest cached keyframe
// (DISCONT), posts arcly-max-lag, and plays on from there. (The ring is large:
// the engine's own overrun resync does not happen here.)
GST_START_TEST(test_max_lag_resyncs_at_newest_keyframe) {
  auto engine =
      arcly::Engine::builder().accept_any_application(arcly::AppSpec().ring(4096)).build();
  arcly::gst::register_engine("maxlag", engine);
  GstElement* pub = th::launch(
      "appsrc name=src is-live=true format=time caps=video/x-arcly-test ! "
      "arclysink name=pub engine=maxlag stream=live/maxlag");
  th::play(pub);
  GstElement* sub = th::launch(
      "arclysrc name=s engine=maxlag stream=live/maxlag start=next-keyframe max-lag=300 ! "
      "fakesink name=fs sync=false async=false");
  GstElement* src = th::by_name(sub, "s");
  GstPad* pad = gst_element_get_static_pad(th::by_name(sub, "fs"), "sink");
  Recorder rec;
  g_mutex_init(&rec.gate.mutex);
  g_cond_init(&rec.gate.cond);
  gulong probe =
      gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, hold_first_then_record, &rec, nullptr);
  th::play(sub);
  th::wait_stat(th::by_name(pub, "pub"), "subscribers", 1);

  GstAppSrc* appsrc = GST_APP_SRC(th::by_name(pub, "src"));
  push_test_frame(appsrc, 0);
  g_mutex_lock(&rec.gate.mutex);  // the subscriber now holds frame 0 downstream
  while (!rec.gate.reached) g_cond_wait(&rec.gate.cond, &rec.gate.mutex);
  g_mutex_unlock(&rec.gate.mutex);
  for (int i = 1; i < 200; ++i) push_test_frame(appsrc, i);  // 2 s ahead
  th::wait_stat(th::by_name(pub, "pub"), "frames", 200);

  g_mutex_lock(&rec.gate.mutex);
  rec.gate.open = true;
  g_cond_broadcast(&rec.gate.cond);
  g_mutex_unlock(&rec.gate.mutex);

  GstStructure* st = wait_element_message(sub, "arcly-max-lag");
  guint64 lag = 0, max_lag = 0, skipped = 0;
  fail_unless(gst_structure_get_uint64(st, "lag", &lag) &&
              gst_structure_get_uint64(st, "max-lag", &max_lag) &&
              gst_structure_get_uint64(st, "skipped-frames", &skipped));
  gst_structure_free(st);
  fail_unless_equals_uint64(max_lag, 300 * GST_MSECOND);
  fail_unless(lag > max_lag, "lag %" G_GUINT64_FORMAT, lag);
  fail_unless(skipped >= 100, "skipped %" G_GUINT64_FORMAT, skipped);
  th::wait_stat(src, "lag-resyncs", 1);
  th::wait_stat(src, "frames", 2);

  // The frame after the held one is the newest keyframe (frame 192), DISCONT.
  g_mutex_lock(&rec.gate.mutex);
  fail_unless(rec.seen.size() >= 2);
  const auto [flags0, ts0] = rec.seen[0];
  const auto [flags1, ts1] = rec.seen[1];
  g_mutex_unlock(&rec.gate.mutex);
  fail_unless(GST_CLOCK_TIME_IS_VALID(ts0) && GST_CLOCK_TIME_IS_VALID(ts1));
  fail_unless_equals_uint64(ts1 - ts0, 1920 * GST_MSECOND);
  fail_unless((flags1 & GST_BUFFER_FLAG_DISCONT) != 0, "no DISCONT after the resync");
  fail_unless((flags1 & GST_BUFFER_FLAG_DELTA_UNIT) == 0, "the resync did not start at a keyframe");

  // It plays on, close to live: no second resync. (The count is taken before
  // the 20 frames go in: taken after, a fast subscriber had already counted most
  // of them and 10 more never came — a flake seen under TSan.)
  const guint64 frames = th::wait_stat(src, "frames", 2);
  for (int i = 200; i < 220; ++i) push_test_frame(appsrc, i);
  th::wait_stat(src, "frames", frames + 10);
  GstStructure* stats = nullptr;
  g_object_get(src, "stats", &stats, nullptr);
  guint64 resyncs = 0, now_lag = 0, publishers = 0;
  gst_structure_get_uint64(stats, "lag-resyncs", &resyncs);
  gst_structure_get_uint64(stats, "publishers", &publishers);
  gst_structure_get_uint64(stats, "lag", &now_lag);
  gst_structure_free(stats);
  fail_unless_equals_uint64(resyncs, 1);
  fail_unless_equals_uint64(publishers, 1);  // the same publish, joined again
  fail_unless(now_lag <= max_lag, "still %" G_GUINT64_FORMAT " behind", now_lag);
  th::assert_no_error(sub);

  gst_pad_remove_probe(pad, probe);
  gst_object_unref(pad);
  th::stop(sub);
  th::stop(pub);
  g_mutex_clear(&rec.gate.mutex);
  g_cond_clear(&rec.gate.cond);
  arcly::gst::unregister_engine("maxlag");
}
GST_END_TEST;

// An upstream force-key-unit at arclysrc reaches the publisher's encoder: a
// keyframe long before the GOP's own (key-int-max 1000), and ten requests in a
// row (one per frame, within arclysink's key-unit-interval) give one keyframe.
GST_START_TEST(test_force_key_unit_reaches_encoder) {
  GstElement* pub = th::launch(
      "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! "
      "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=1000 bframes=0 "
      "option-string=scenecut=0 ! arclysink name=pub stream=live/fku key-unit-interval=5000");
  th::play(pub);
  GstElement* sub =
      th::launch("arclysrc name=src stream=live/fku ! appsink name=out sync=false max-buffers=0");
  GstElement* src = th::by_name(sub, "src");
  GstElement* out = th::by_name(sub, "out");
  th::play(sub);
  auto pull_keyframe = [&]() {
    GstSample* s = th::pull(out);
    fail_unless(s != nullptr, "no sample");
    const bool key = !GST_BUFFER_FLAG_IS_SET(gst_sample_get_buffer(s), GST_BUFFER_FLAG_DELTA_UNIT);
    gst_sample_unref(s);
    return key;
  };
  fail_unless(pull_keyframe(), "the first frame is not the keyframe");
  int keyframes = 0;
  for (int i = 0; i < 5; ++i) keyframes += pull_keyframe();
  fail_unless_equals_int(keyframes, 0);

  GstPad* sinkpad = gst_element_get_static_pad(out, "sink");
  int requests = 0, frames = 0;
  // Ten requests, one per frame received, then up to 60 frames more.
  while (frames < 70) {
    if (requests < 10) {
      fail_unless(gst_pad_push_event(sinkpad, gst_video_event_new_upstream_force_key_unit(
                                                  GST_CLOCK_TIME_NONE, TRUE, ++requests)),
                  "force-key-unit refused");
    }
    keyframes += pull_keyframe();
    ++frames;
  }
  gst_object_unref(sinkpad);
  fail_unless_equals_int(keyframes, 1);

  GstStructure* st = nullptr;
  g_object_get(th::by_name(pub, "pub"), "stats", &st, nullptr);
  guint64 forced = 0, asked = 0;
  gst_structure_get_uint64(st, "key-units-forced", &forced);
  gst_structure_get_uint64(st, "key-unit-requests", &asked);
  gst_structure_free(st);
  fail_unless_equals_uint64(forced, 1);
  fail_unless_equals_uint64(asked, 10);
  th::wait_stat(src, "key-unit-requests", 10);
  th::assert_no_error(sub);
  th::stop(sub);
  th::stop(pub);
}
GST_END_TEST;

// The publisher's upstream latency (appsrc min-latency here) is published on
// the stream; arclysrc answers LATENCY with its own latency plus it.
GST_START_TEST(test_latency_includes_publisher_upstream) {
  GstElement* pub = th::launch(
      "appsrc name=src is-live=true format=time min-latency=150000000 "
      "caps=video/x-arcly-test ! arclysink name=pub stream=live/latency");
  th::play(pub);
  GstElement* sub = th::launch(
      "arclysrc name=s stream=live/latency latency=30 ! fakesink name=fs sync=false async=false");
  GstElement* src = th::by_name(sub, "s");
  th::play(sub);
  GstAppSrc* appsrc = GST_APP_SRC(th::by_name(pub, "src"));
  for (int i = 0; i < 10; ++i) push_test_frame(appsrc, i);
  th::wait_stat(th::by_name(pub, "pub"), "upstream-latency", 150 * GST_MSECOND);
  th::wait_stat(src, "frames", 1);
  gint64 upstream = -1;
  for (int i = 0; i < 400 && upstream != static_cast<gint64>(150 * GST_MSECOND); ++i) {
    GstStructure* st = nullptr;
    g_object_get(src, "stats", &st, nullptr);
    gst_structure_get_int64(st, "upstream-latency", &upstream);
    gst_structure_free(st);
    if (upstream != static_cast<gint64>(150 * GST_MSECOND)) {
      push_test_frame(appsrc, 10 + i);
      g_usleep(5000);
    }
  }
  fail_unless_equals_int64(upstream, static_cast<gint64>(150 * GST_MSECOND));

  GstPad* sinkpad = gst_element_get_static_pad(th::by_name(sub, "fs"), "sink");
  GstQuery* q = gst_query_new_latency();
  fail_unless(gst_pad_peer_query(sinkpad, q));
  gboolean live = FALSE;
  GstClockTime min = 0, max = 0;
  gst_query_parse_latency(q, &live, &min, &max);
  gst_query_unref(q);
  gst_object_unref(sinkpad);
  fail_unless(live);
  fail_unless_equals_uint64(min, 180 * GST_MSECOND);
  th::assert_no_error(sub);
  th::stop(sub);
  th::stop(pub);
}
GST_END_TEST;

// persist: the application hears when the publisher goes away and comes back.
GST_START_TEST(test_persist_publisher_lost_and_regained_messages) {
  GstElement* sub = th::launch(
      "arclysrc name=s stream=live/comeback persist=true ! fakesink sync=false async=false");
  GstElement* src = th::by_name(sub, "s");
  th::play(sub);
  const std::string pub_line =
      "appsrc name=src is-live=true format=time caps=video/x-arcly-test ! "
      "arclysink name=pub stream=live/comeback";
  GstElement* pub = th::launch(pub_line);
  th::play(pub);
  for (int i = 0; i < 10; ++i) push_test_frame(GST_APP_SRC(th::by_name(pub, "src")), i);
  th::wait_stat(src, "frames", 1);
  th::stop(pub);

  GstStructure* st = wait_element_message(sub, "arcly-publisher-lost");
  fail_unless_equals_string(gst_structure_get_string(st, "stream"), "live/comeback");
  gst_structure_free(st);

  pub = th::launch(pub_line);
  th::play(pub);
  for (int i = 0; i < 10; ++i) push_test_frame(GST_APP_SRC(th::by_name(pub, "src")), i);
  st = wait_element_message(sub, "arcly-publisher-regained");
  fail_unless_equals_string(gst_structure_get_string(st, "stream"), "live/comeback");
  guint64 publishers = 0;
  fail_unless(gst_structure_get_uint64(st, "publishers", &publishers));
  fail_unless_equals_uint64(publishers, 2);
  gst_structure_free(st);
  th::stop(pub);
  th::stop(sub);
}
GST_END_TEST;

// --- Clocks: publisher timestamps are engine time, the subscriber follows its
// own clock's drift from it (gst/engine_time.hpp, subscriber_driver.hpp).

// A GstSystemClock running num/denom times as fast as the monotonic clock: a
// stand-in for an audio device's clock, exaggerated so minutes of real drift
// happen in seconds.
namespace {

GstClock* drifting_clock(guint64 num, guint64 denom) {
  auto* clock = GST_CLOCK(
      g_object_new(GST_TYPE_SYSTEM_CLOCK, "clock-type", GST_CLOCK_TYPE_MONOTONIC, nullptr));
  gst_object_ref_sink(clock);
  const GstClockTime now = gst_clock_get_internal_time(clock);
  gst_clock_set_calibration(clock, now, now, num, denom);
  return clock;
}

// Per buffer reaching the sink: its running time minus the sink pipeline's
// running time now. Constant while the subscriber's running time keeps pace
// with its clock; a drift the subscriber does not follow makes it grow or
// shrink by the drift.
struct Headroom {
  GMutex mutex;
  GCond cond;
  GstSegment segment;
  GstElement* sink = nullptr;
  std::vector<gint64> samples;
};

GstPadProbeReturn headroom_probe(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* h = static_cast<Headroom*>(data);
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent* e = GST_PAD_PROBE_INFO_EVENT(info);
    if (GST_EVENT_TYPE(e) == GST_EVENT_SEGMENT) gst_event_copy_segment(e, &h->segment);
    return GST_PAD_PROBE_OK;
  }
  GstBuffer* b = GST_PAD_PROBE_INFO_BUFFER(info);
  if (GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DECODE_ONLY)) return GST_PAD_PROBE_OK;
  GstClock* clock = gst_element_get_clock(h->sink);
  if (!clock) return GST_PAD_PROBE_OK;
  const auto now =
      static_cast<gint64>(gst_clock_get_time(clock) - gst_element_get_base_time(h->sink));
  gst_object_unref(clock);
  const auto rt = static_cast<gint64>(
      gst_segment_to_running_time(&h->segment, GST_FORMAT_TIME, GST_BUFFER_PTS(b)));
  g_mutex_lock(&h->mutex);
  h->samples.push_back(rt - now);
  g_cond_signal(&h->cond);
  g_mutex_unlock(&h->mutex);
  return GST_PAD_PROBE_OK;
}

struct DriftRun {
  gint64 early = 0;  // best headroom over frames 10..39 (ns)
  gint64 late = 0;   // best headroom over the last 30 frames
  guint64 corrections = 0;
};

// A 30 fps live publisher on `pub_clock` and a subscriber on `sub_clock` (null:
// the default system clock), measured over 100 frames (3.3 s of stream).
DriftRun run_with_clocks(const char* key, GstClock* pub_clock, GstClock* sub_clock) {
  constexpr std::size_t kFrames = 100;
  GstElement* pub =
      th::launch(std::string("videotestsrc is-live=true pattern=black ! "
                             "video/x-raw,width=16,height=16,framerate=30/1 ! arclysink stream=") +
                 key);
  if (pub_clock) gst_pipeline_use_clock(GST_PIPELINE(pub), pub_clock);
  th::play(pub);
  GstElement* sub = th::launch(std::string("arclysrc name=s stream=") + key +
                               " ! fakesink name=fs sync=false async=false");
  if (sub_clock) gst_pipeline_use_clock(GST_PIPELINE(sub), sub_clock);
  Headroom h;
  g_mutex_init(&h.mutex);
  g_cond_init(&h.cond);
  gst_segment_init(&h.segment, GST_FORMAT_TIME);
  h.sink = th::by_name(sub, "fs");
  th::probe_sink_pad(sub, "fs", headroom_probe, &h);
  th::play(sub);

  const gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
  g_mutex_lock(&h.mutex);
  while (h.samples.size() < kFrames)
    if (!g_cond_wait_until(&h.cond, &h.mutex, deadline)) break;
  std::vector<gint64> samples = h.samples;
  g_mutex_unlock(&h.mutex);
  fail_unless(samples.size() >= kFrames, "only %zu frames arrived", samples.size());

  DriftRun r;
  r.early = *std::max_element(samples.begin() + 10, samples.begin() + 40);
  r.late = *std::max_element(samples.end() - 30, samples.end());
  GstStructure* st = nullptr;
  g_object_get(th::by_name(sub, "s"), "stats", &st, nullptr);
  gst_structure_get_uint64(st, "clock-corrections", &r.corrections);
  gst_structure_free(st);
  th::assert_no_error(sub);
  th::assert_no_error(pub);
  th::stop(sub);
  th::stop(pub);
  g_mutex_clear(&h.mutex);
  g_cond_clear(&h.cond);
  return r;
}

// 2 % is 40 ms between the two windows (60 frames apart): more than the default latency.
constexpr gint64 kDriftBound = 15 * GST_MSECOND;

}  // namespace

// The publisher's clock runs 2 % fast (its camera's frames come 2 % more
// often): its timestamps are translated to engine time, so a subscriber on the
// system clock keeps a constant distance to live — and, on that clock, never
// moves its running time.
GST_START_TEST(test_publisher_clock_drift_is_translated_to_engine_time) {
  GstClock* fast = drifting_clock(102, 100);
  const DriftRun r = run_with_clocks("live/drift-pub", fast, nullptr);
  gst_object_unref(fast);
  GST_INFO("publisher drift: headroom %" G_GINT64_FORMAT " -> %" G_GINT64_FORMAT " ns", r.early,
           r.late);
  fail_unless(std::abs(r.late - r.early) < kDriftBound,
              "headroom moved from %.1f to %.1f ms: the publisher's drift reached the subscriber",
              static_cast<double>(r.early) / 1e6, static_cast<double>(r.late) / 1e6);
  fail_unless_equals_uint64(r.corrections, 0);
}
GST_END_TEST;

// The subscriber's clock runs 2 % fast or slow: the running time follows it,
// so buffers neither fall late (eating the latency) nor pile up early.
GST_START_TEST(test_subscriber_follows_its_clock_drift) {
  for (const guint64 num : {102, 98}) {
    GstClock* drifting = drifting_clock(num, 100);
    const DriftRun r =
        run_with_clocks(num > 100 ? "live/drift-fast" : "live/drift-slow", nullptr, drifting);
    gst_object_unref(drifting);
    fail_unless(std::abs(r.late - r.early) < kDriftBound,
                "clock at %" G_GUINT64_FORMAT " %%: headroom moved from %.1f to %.1f ms", num,
                static_cast<double>(r.early) / 1e6, static_cast<double>(r.late) / 1e6);
    fail_unless(r.corrections > 0, "clock at %" G_GUINT64_FORMAT " %%: no correction", num);
  }
}
GST_END_TEST;

// --- Dispatched mode (`dispatch`, gst/dispatcher.hpp) ---

namespace {

bool stat_bool(GstElement* e, const char* field) {
  GstStructure* st = nullptr;
  g_object_get(e, "stats", &st, nullptr);
  gboolean v = FALSE;
  fail_unless(st && gst_structure_get_boolean(st, field, &v), "no stats field %s", field);
  gst_structure_free(st);
  return v;
}

guint64 stat_u64(GstElement* e, const char* field) {
  GstStructure* st = nullptr;
  g_object_get(e, "stats", &st, nullptr);
  guint64 v = 0;
  fail_unless(st && gst_structure_get_uint64(st, field, &v), "no stats field %s", field);
  gst_structure_free(st);
  return v;
}

// Waits (bounded) until the element's `dispatched` stat is `want`.
void wait_dispatched(GstElement* e, bool want, double seconds = 20) {
  const gint64 deadline = g_get_monotonic_time() + static_cast<gint64>(seconds * G_USEC_PER_SEC);
  while (stat_bool(e, "dispatched") != want) {
    fail_unless(g_get_monotonic_time() < deadline, "%s: dispatched stayed %d", GST_OBJECT_NAME(e),
                !want);
    g_usleep(5000);
  }
}

int thread_count() {
  GDir* dir = g_dir_open("/proc/self/task", 0, nullptr);
  fail_unless(dir != nullptr);
  int n = 0;
  while (g_dir_read_name(dir)) ++n;
  g_dir_close(dir);
  return n;
}

// A pad probe that, once armed, holds the next buffer until released.
struct BlockProbe {
  GMutex lock;
  GCond cond;
  bool armed = false, entered = false, released = false;
  BlockProbe() {
    g_mutex_init(&lock);
    g_cond_init(&cond);
  }
  ~BlockProbe() {
    g_mutex_clear(&lock);
    g_cond_clear(&cond);
  }
  static GstPadProbeReturn probe(GstPad*, GstPadProbeInfo*, gpointer data) {
    auto* g = static_cast<BlockProbe*>(data);
    g_mutex_lock(&g->lock);
    if (g->armed && !g->released) {
      g->entered = true;
      g_cond_broadcast(&g->cond);
      while (!g->released) g_cond_wait(&g->cond, &g->lock);
    }
    g_mutex_unlock(&g->lock);
    return GST_PAD_PROBE_OK;
  }
  void set(bool BlockProbe::*flag) {
    g_mutex_lock(&lock);
    this->*flag = true;
    g_cond_broadcast(&cond);
    g_mutex_unlock(&lock);
  }
  bool wait_entered(double seconds) {
    const gint64 deadline = g_get_monotonic_time() + static_cast<gint64>(seconds * G_USEC_PER_SEC);
    g_mutex_lock(&lock);
    while (!entered && g_cond_wait_until(&cond, &lock, deadline)) {
    }
    const bool in = entered;
    g_mutex_unlock(&lock);
    return in;
  }
};

}  // namespace

// Dispatched subscribers are served by the engine's few dispatcher threads:
// every one receives, reports `dispatched`, and their streaming threads go
// away (the process has far fewer threads than subscribers).
GST_START_TEST(test_dispatched_subscribers_share_threads) {
  GstElement* pub =
      th::launch(th::h264_camera(15) + "! arclysink name=pub engine=dsp stream=live/dsp");
  th::play(pub);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 5);
  const int before = thread_count();
  constexpr int kSubs = 24;
  std::vector<GstElement*> subs;
  for (int i = 0; i < kSubs; ++i) {
    GstElement* s = th::launch(
        "arclysrc name=src engine=dsp stream=live/dsp dispatch=true ! fakesink sync=false");
    th::play(s);
    subs.push_back(s);
  }
  for (GstElement* s : subs) wait_dispatched(th::by_name(s, "src"), true);
  std::vector<guint64> frames;
  for (GstElement* s : subs) frames.push_back(stat_u64(th::by_name(s, "src"), "frames"));
  for (std::size_t i = 0; i < subs.size(); ++i) {
    GstElement* src = th::by_name(subs[i], "src");
    th::wait_stat(src, "frames", frames[i] + 15);
    fail_unless(stat_u64(src, "dispatch-handoffs") >= 1);
  }
  // The elements' task threads went back to GLib's pool, which keeps few idle
  // threads; the dispatcher adds one per core plus a watchdog.
  const int bound = before + 4 + static_cast<int>(g_get_num_processors());
  const gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
  while (thread_count() > bound && g_get_monotonic_time() < deadline) {
    g_thread_pool_stop_unused_threads();  // idle pool threads would linger for seconds
    g_usleep(10000);
  }
  fail_unless(thread_count() <= bound, "%d threads for %d dispatched subscribers (%d before)",
              thread_count(), kSubs, before);
  for (GstElement* s : subs) {
    th::assert_no_error(s);
    th::stop(s);
  }
  th::stop(pub);
}
GST_END_TEST;

// A dispatched subscriber whose downstream blocks (a probe holding a buffer)
// does not stall the others, not even those on its dispatcher thread: they
// keep receiving while it is held; once released it goes on, on its own
// streaming thread (`dispatch-blocked`).
GST_START_TEST(test_dispatched_blocked_subscriber_does_not_stall_others) {
  GstElement* pub =
      th::launch(th::h264_camera(15) + "! arclysink name=pub engine=dblk stream=live/dblk");
  th::play(pub);
  th::wait_stat(th::by_name(pub, "pub"), "frames", 5);
  BlockProbe gate;
  GstElement* held = th::launch(
      "arclysrc name=src engine=dblk stream=live/dblk dispatch=true ! fakesink name=sink "
      "sync=false");
  {
    GstPad* pad = gst_element_get_static_pad(th::by_name(held, "sink"), "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, BlockProbe::probe, &gate, nullptr);
    gst_object_unref(pad);
  }
  th::play(held);
  GstElement* held_src = th::by_name(held, "src");
  // Two others per dispatcher thread: whatever the placement, some share the held one's.
  const int others = 2 * static_cast<int>(g_get_num_processors());
  std::vector<GstElement*> subs;
  for (int i = 0; i < others; ++i) {
    GstElement* s = th::launch(
        "arclysrc name=src engine=dblk stream=live/dblk dispatch=true ! fakesink sync=false");
    th::play(s);
    subs.push_back(s);
  }
  wait_dispatched(held_src, true);
  for (GstElement* s : subs) wait_dispatched(th::by_name(s, "src"), true);

  gate.set(&BlockProbe::armed);
  fail_unless(gate.wait_entered(20), "the held subscriber pushed nothing");
  fail_unless_equals_uint64(stat_u64(held_src, "dispatch-blocked"), 0);
  const guint64 held_frames = stat_u64(held_src, "frames");
  std::vector<guint64> frames;
  for (GstElement* s : subs) frames.push_back(stat_u64(th::by_name(s, "src"), "frames"));
  for (std::size_t i = 0; i < subs.size(); ++i)
    th::wait_stat(th::by_name(subs[i], "src"), "frames", frames[i] + 30);
  // Still held: nothing more came out of it.
  fail_unless(stat_u64(held_src, "frames") <= held_frames + 1);

  gate.set(&BlockProbe::released);
  th::wait_stat(held_src, "dispatch-blocked", 1);
  th::wait_stat(held_src, "frames", held_frames + 15);
  fail_if(stat_bool(held_src, "dispatched"), "a blocking subscriber was dispatched again");
  for (GstElement* s : subs) {
    th::assert_no_error(s);
    th::stop(s);
  }
  th::assert_no_error(held);
  th::stop(held);
  th::stop(pub);
}
GST_END_TEST;

static Suite* arcly_pipelines_suite() {
  Suite* s = suite_create("arcly-pipelines");
  TCase* tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_late_joiner_gets_config_and_keyframe);
  tcase_add_test(tc, test_start_modes);
  tcase_add_test(tc, test_audio_video);
  tcase_add_test(tc, test_opus);
  tcase_add_test(tc, test_eos_propagation);
  tcase_add_test(tc, test_persist_across_publisher_restart);
  tcase_add_test(tc, test_lagging_subscriber);
  tcase_add_test(tc, test_uri_playback);
  tcase_add_test(tc, test_mp4_recording_with_pre_event_footage);
  tcase_add_test(tc, test_pause_resume);
  tcase_add_test(tc, test_pause_resumes_at_live_edge);
  tcase_add_test(tc, test_pause_before_first_publisher);
  tcase_add_test(tc, test_eos_event_finalizes_two_track_recording);
  tcase_add_test(tc, test_late_audio_track_is_recorded);
  tcase_add_test(tc, test_switch_streams_while_playing);
  tcase_add_test(tc, test_keyframe_preroll_window);
  tcase_add_test(tc, test_publisher_stop_sends_eos);
  tcase_add_test(tc, test_h265_late_joiner);
  tcase_add_test(tc, test_max_lag_resyncs_at_newest_keyframe);
  tcase_add_test(tc, test_force_key_unit_reaches_encoder);
  tcase_add_test(tc, test_latency_includes_publisher_upstream);
  tcase_add_test(tc, test_persist_publisher_lost_and_regained_messages);
  tcase_add_test(tc, test_publisher_clock_drift_is_translated_to_engine_time);
  tcase_add_test(tc, test_subscriber_follows_its_clock_drift);
  tcase_add_test(tc, test_dispatched_subscribers_share_threads);
  tcase_add_test(tc, test_dispatched_blocked_subscriber_does_not_stall_others);
  return s;
}

GST_CHECK_MAIN(arcly_pipelines)
