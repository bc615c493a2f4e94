// arclysink / arclysrc contracts that need no encoder: key validation, publish
// slot, wait=0, prompt unblocking, zero copy, timestamps, caps changes, named
// engines, the URI handler and the documentation of every property.
#include <gst/check/gstharness.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "arcly/engine.hpp"
#include "arcly/subscription.hpp"
#include "caps_track.hpp"
#include "engine_registry.hpp"
#include "helpers.hpp"
#include "timeline.hpp"
#include "track_output.hpp"
#include "track_publisher.hpp"

namespace {

// A pipeline holding one element; returns the error text of a failed state change.
std::string failed_state_change(const std::string& line, GstState target) {
  GstElement* p = th::launch(line);
  GstStateChangeReturn r = gst_element_set_state(p, target);
  fail_unless(r == GST_STATE_CHANGE_FAILURE, "'%s' should fail to reach %s", line.c_str(),
              gst_element_state_get_name(target));
  GstMessage* m = th::wait_message(p, GST_MESSAGE_ERROR, 5);
  fail_unless(m != nullptr, "no error message for '%s'", line.c_str());
  std::string text = th::error_text(m);
  gst_message_unref(m);
  th::stop(p);
  return text;
}

bool contains(const std::string& s, const char* what) {
  return s.find(what) != std::string::npos;
}

}  // namespace

GST_START_TEST(test_bad_key) {
  std::string t =
      failed_state_change("fakesrc ! arclysink stream=\"live/bad key\"", GST_STATE_READY);
  fail_unless(contains(t, "\"live/bad key\"") && contains(t, "app/stream"), "message: %s",
              t.c_str());
  t = failed_state_change("fakesrc ! arclysink", GST_STATE_READY);
  fail_unless(contains(t, "no stream key") && contains(t, "app/stream"), "message: %s", t.c_str());
  t = failed_state_change("arclysrc stream=nokey ! fakesink", GST_STATE_READY);
  fail_unless(contains(t, "\"nokey\"") && contains(t, "live/cam"), "message: %s", t.c_str());
}
GST_END_TEST;

GST_START_TEST(test_not_published_wait0) {
  std::string t =
      failed_state_change("arclysrc stream=live/nobody wait=0 ! fakesink", GST_STATE_PAUSED);
  fail_unless(contains(t, "stream live/nobody is not being published"), "message: %s", t.c_str());
}
GST_END_TEST;

GST_START_TEST(test_wait_timeout) {
  GstElement* p = th::launch("arclysrc stream=live/late-never wait=50 ! fakesink");
  th::play(p);
  GstMessage* m = th::wait_message(p, GST_MESSAGE_ERROR, 10);
  fail_unless(m != nullptr);
  std::string t = th::error_text(m);
  gst_message_unref(m);
  fail_unless(contains(t, "live/late-never") && contains(t, "not being published"), "message: %s",
              t.c_str());
  th::stop(p);
}
GST_END_TEST;

GST_START_TEST(test_duplicate_publisher) {
  GstElement* first = th::launch("appsrc is-live=true format=time ! arclysink stream=live/dup");
  fail_unless(th::set_state(first, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  std::string t = failed_state_change("appsrc is-live=true format=time ! arclysink stream=live/dup",
                                      GST_STATE_PAUSED);
  fail_unless(contains(t, "live/dup") && contains(t, "already"), "message: %s", t.c_str());
  th::stop(first);
  // Leaving PAUSED released the slot: a new publisher may claim it.
  GstElement* again = th::launch("appsrc is-live=true format=time ! arclysink stream=live/dup");
  fail_unless(th::set_state(again, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  th::stop(again);
}
GST_END_TEST;

GST_START_TEST(test_unblocks_while_waiting) {
  // Waiting forever for a stream, then waiting for a frame: both must let go at once.
  GstElement* p = th::launch("arclysrc stream=live/forever wait=-1 ! fakesink");
  th::play(p);
  th::stop(p);  // would hang (test timeout) if the task ignored the stop

  GstElement* pub = th::launch(
      "appsrc is-live=true format=time caps=video/x-test ! arclysink name=pub stream=live/idle");
  th::play(pub);
  GstElement* sub = th::launch("arclysrc stream=live/idle ! fakesink");
  th::play(sub);
  th::wait_stat(th::by_name(pub, "pub"), "subscribers", 1);
  th::stop(sub);
  th::stop(pub);
}
GST_END_TEST;

namespace {

struct HarnessPublisher {
  GstHarness* h;
  GstElement* sink;
  HarnessPublisher(const char* engine, const char* key, const char* caps) {
    sink = gst_element_factory_make("arclysink", nullptr);
    g_object_set(sink, "engine", engine, "stream", key, nullptr);
    h = gst_harness_new_with_element(sink, "sink_%u", nullptr);
    gst_harness_play(h);
    gst_harness_set_src_caps_str(h, caps);
  }
  ~HarnessPublisher() {
    gst_harness_teardown(h);
    gst_object_unref(sink);
  }
};

GstBuffer* keyframe(std::size_t size, GstClockTime pts) {
  GstBuffer* b = gst_buffer_new_allocate(nullptr, size, nullptr);
  gst_buffer_memset(b, 0, 0x5a, size);
  GST_BUFFER_PTS(b) = pts;
  return b;
}

}  // namespace

GST_START_TEST(test_zero_copy) {
  HarnessPublisher pub("zero-copy", "live/zc", "video/x-arcly-test");
  GstElement* sub = th::launch(
      "arclysrc engine=zero-copy stream=live/zc start=keyframe ! appsink name=out sync=false");
  th::play(sub);

  GstBuffer* in = keyframe(4096, 0);
  GstMapInfo in_map;
  fail_unless(gst_buffer_map(in, &in_map, GST_MAP_READ));
  const guint8* publisher_bytes = in_map.data;
  gst_buffer_unmap(in, &in_map);
  fail_unless_equals_int(gst_harness_push(pub.h, in), GST_FLOW_OK);

  GstSample* s = th::pull(th::by_name(sub, "out"));
  fail_unless(s != nullptr);
  GstBuffer* out = gst_sample_get_buffer(s);
  GstMapInfo out_map;
  fail_unless(gst_buffer_map(out, &out_map, GST_MAP_READ));
  fail_unless_equals_int(out_map.size, 4096);
  fail_unless(out_map.data == publisher_bytes, "the subscriber's payload is a copy");
  gst_buffer_unmap(out, &out_map);
  // Read-only: nobody downstream may scribble on the publisher's memory.
  fail_unless(
      gst_memory_is_writable(gst_buffer_peek_memory(out, 0)) == FALSE ||
      GST_MINI_OBJECT_FLAG_IS_SET(gst_buffer_peek_memory(out, 0), GST_MEMORY_FLAG_READONLY));
  fail_unless(th::publisher_ts(out) != GST_CLOCK_TIME_NONE, "no publisher timestamp meta");
  gst_sample_unref(s);
  th::stop(sub);
}
GST_END_TEST;

// The publisher's metas reach the subscriber (as through a tee): here an NTP
// reference timestamp such as rtspsrc adds from RTCP sender reports; the
// publisher-timestamp meta stays one per buffer.
GST_START_TEST(test_metas_kept) {
  HarnessPublisher pub("metas", "live/metas", "video/x-arcly-test");
  GstElement* sub = th::launch(
      "arclysrc engine=metas stream=live/metas start=keyframe ! appsink name=out sync=false");
  th::play(sub);
  th::wait_stat(pub.sink, "subscribers", 1);
  GstBuffer* in = keyframe(64, 0);
  GstCaps* ntp = gst_caps_new_empty_simple("timestamp/x-ntp");
  gst_buffer_add_reference_timestamp_meta(in, ntp, 3900000000 * GST_SECOND, GST_CLOCK_TIME_NONE);
  // A stale publisher meta from an upstream arcly stream is replaced, not doubled.
  GstCaps* stale = gst_caps_new_empty_simple(th::kPublisherMeta);
  gst_buffer_add_reference_timestamp_meta(in, stale, 1, GST_CLOCK_TIME_NONE);
  gst_caps_unref(stale);
  fail_unless_equals_int(gst_harness_push(pub.h, in), GST_FLOW_OK);
  GstSample* s = th::pull(th::by_name(sub, "out"));
  fail_unless(s != nullptr);
  GstBuffer* out = gst_sample_get_buffer(s);
  GstReferenceTimestampMeta* m = gst_buffer_get_reference_timestamp_meta(out, ntp);
  fail_unless(m != nullptr, "the publisher's x-ntp meta was lost");
  fail_unless_equals_uint64(m->timestamp, 3900000000 * GST_SECOND);
  int publisher_metas = 0;
  gpointer state = nullptr;
  while (GstMeta* meta =
             gst_buffer_iterate_meta_filtered(out, &state, GST_REFERENCE_TIMESTAMP_META_API_TYPE)) {
    auto* r = reinterpret_cast<GstReferenceTimestampMeta*>(meta);
    GstStructure* st = gst_caps_get_structure(r->reference, 0);
    if (gst_structure_has_name(st, th::kPublisherMeta)) {
      ++publisher_metas;
      fail_if(r->timestamp == 1, "the stale publisher timestamp survived");
    }
  }
  fail_unless_equals_int(publisher_metas, 1);
  gst_caps_unref(ntp);
  gst_sample_unref(s);
  th::stop(sub);
}
GST_END_TEST;

namespace {

GstPadProbeReturn count_stream_starts(GstPad*, GstPadProbeInfo* info, gpointer data) {
  if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_STREAM_START)
    g_atomic_int_inc(static_cast<gint*>(data));
  return GST_PAD_PROBE_OK;
}

gint stream_starts_on(GstElement* appsink, gint* counter) {
  GstPad* pad = gst_element_get_static_pad(appsink, "sink");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, count_stream_starts, counter,
                    nullptr);
  gst_object_unref(pad);
  return 0;
}

GstBuffer* frame_at(GstClockTime pts) {
  return keyframe(16, pts);
}

}  // namespace

// persist: a new publisher with another codec on the same track starts a new
// stream on the pad (STREAM_START before the new caps: parsers reset); a caps
// change within a codec does not.
GST_START_TEST(test_codec_change_starts_new_stream) {
  GstElement* sub = th::launch(
      "arclysrc engine=codec stream=live/codec persist=true start=keyframe ! "
      "appsink name=out sync=false");
  gint starts = 0;
  stream_starts_on(th::by_name(sub, "out"), &starts);
  th::play(sub);
  GstElement* out = th::by_name(sub, "out");
  {
    HarnessPublisher a("codec", "live/codec", "video/x-arcly-a,width=1");
    fail_unless_equals_int(gst_harness_push(a.h, frame_at(0)), GST_FLOW_OK);
    GstSample* s = th::pull(out);
    fail_unless(s != nullptr);
    gst_sample_unref(s);
    gst_harness_set_src_caps_str(a.h, "video/x-arcly-a,width=2");  // same codec
    fail_unless_equals_int(gst_harness_push(a.h, frame_at(40 * GST_MSECOND)), GST_FLOW_OK);
    s = th::pull(out);
    fail_unless(s != nullptr);
    gst_sample_unref(s);
    fail_unless_equals_int(g_atomic_int_get(&starts), 1);
  }  // publisher A ends
  HarnessPublisher b("codec", "live/codec", "video/x-arcly-b");
  fail_unless_equals_int(gst_harness_push(b.h, frame_at(0)), GST_FLOW_OK);
  GstSample* s = th::pull(out);
  fail_unless(s != nullptr, "nothing after the codec change");
  fail_unless(
      gst_structure_has_name(gst_caps_get_structure(gst_sample_get_caps(s), 0), "video/x-arcly-b"));
  gst_sample_unref(s);
  fail_unless_equals_int(g_atomic_int_get(&starts), 2);
  th::assert_no_error(sub);
  th::stop(sub);
}
GST_END_TEST;

// persist: a track the next publisher does not have gets EOS (a muxer would
// wait for it for ever); the pad set is announced once: a track first seen
// after no-more-pads is ignored with a warning, no pad appears after it.
GST_START_TEST(test_vanished_and_late_tracks) {
  GstElement* sub = th::launch(
      "arclysrc name=src engine=tracks stream=live/tracks persist=true start=keyframe "
      "src.video_0 ! queue ! appsink name=v sync=false  "
      "src.audio_0 ! queue ! appsink name=a sync=false");
  th::play(sub);
  GstElement* v = th::by_name(sub, "v");
  GstElement* a = th::by_name(sub, "a");
  {
    GstElement* sink = gst_element_factory_make("arclysink", nullptr);
    g_object_set(sink, "engine", "tracks", "stream", "live/tracks", nullptr);
    GstHarness* hv = gst_harness_new_with_element(sink, "sink_%u", nullptr);
    GstHarness* ha = gst_harness_new_with_element(sink, "sink_%u", nullptr);
    gst_harness_play(hv);
    gst_harness_play(ha);
    gst_harness_set_src_caps_str(hv, "video/x-arcly-test");
    gst_harness_set_src_caps_str(ha, "audio/x-arcly-test");
    for (int i = 0; i < 3; ++i) {
      fail_unless_equals_int(gst_harness_push(hv, frame_at(i * 500 * GST_MSECOND)), GST_FLOW_OK);
      fail_unless_equals_int(gst_harness_push(ha, frame_at(i * 500 * GST_MSECOND)), GST_FLOW_OK);
    }
    GstSample* s = th::pull(a);
    fail_unless(s != nullptr, "no audio from the first publisher");
    gst_sample_unref(s);
    gst_harness_teardown(ha);
    gst_harness_teardown(hv);
    gst_object_unref(sink);
  }
  // The next publisher has video only; a second of its stream makes that final.
  GstElement* sink = gst_element_factory_make("arclysink", nullptr);
  g_object_set(sink, "engine", "tracks", "stream", "live/tracks", nullptr);
  GstHarness* hv = gst_harness_new_with_element(sink, "sink_%u", nullptr);
  gst_harness_play(hv);
  gst_harness_set_src_caps_str(hv, "video/x-arcly-test");
  for (int i = 0; i < 4; ++i)
    fail_unless_equals_int(gst_harness_push(hv, frame_at(i * 500 * GST_MSECOND)), GST_FLOW_OK);
  while (GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(a), 10 * GST_SECOND))
    gst_sample_unref(s);
  fail_unless(gst_app_sink_is_eos(GST_APP_SINK(a)), "the vanished audio track got no EOS");
  fail_if(gst_app_sink_is_eos(GST_APP_SINK(v)));

  // A track that was never announced appears: ignored, with a warning.
  GstHarness* hd = gst_harness_new_with_element(sink, "sink_5", nullptr);
  gst_harness_play(hd);
  gst_harness_set_src_caps_str(hd, "application/x-arcly-data");
  fail_unless_equals_int(gst_harness_push(hd, frame_at(2 * GST_SECOND)), GST_FLOW_OK);
  fail_unless_equals_int(gst_harness_push(hv, frame_at(2 * GST_SECOND)), GST_FLOW_OK);
  GstMessage* m = th::wait_message(sub, GST_MESSAGE_WARNING, 10);
  fail_unless(m != nullptr, "no warning about the late track");
  GError* err = nullptr;
  gst_message_parse_warning(m, &err, nullptr);
  fail_unless(std::strstr(err->message, "live/tracks") && std::strstr(err->message, "new track"),
              "%s", err->message);
  g_clear_error(&err);
  gst_message_unref(m);
  GstPad* late = gst_element_get_static_pad(th::by_name(sub, "src"), "data_0");
  fail_unless(late == nullptr, "a pad was added after no-more-pads");
  gst_harness_teardown(hd);
  gst_harness_teardown(hv);
  gst_object_unref(sink);
  th::stop(sub);
}
GST_END_TEST;

namespace {

void note_no_more_pads(GstElement*, gpointer flag) {
  g_atomic_int_set(static_cast<gint*>(flag), 1);
}

bool wait_flag(gint* flag, double seconds = 10) {
  const gint64 until = g_get_monotonic_time() + static_cast<gint64>(seconds * G_USEC_PER_SEC);
  while (!g_atomic_int_get(flag) && g_get_monotonic_time() < until) g_usleep(2000);
  return g_atomic_int_get(flag) != 0;
}

void assert_no_warning(GstElement* pipeline) {
  GstBus* bus = gst_element_get_bus(pipeline);
  GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING);
  gst_object_unref(bus);
  if (!m) return;
  const std::string text = th::error_text(m);
  gst_message_unref(m);
  ck_abort_msg("unexpected warning: %s", text.c_str());
}

}  // namespace

// A publisher whose audio caps follow its first video keyframe (as an SRT or
// RTSP camera's do through the ingest): a subscriber that joined on that cached
// keyframe still gets the audio pad. no-more-pads waits for the publisher's
// track set, which arclysink declares once both of its pads have caps.
GST_START_TEST(test_track_announced_after_keyframe_gets_a_pad) {
  GstElement* sink = gst_element_factory_make("arclysink", nullptr);
  g_object_set(sink, "engine", "lateaudio", "stream", "live/lateaudio", nullptr);
  GstHarness* hv = gst_harness_new_with_element(sink, "sink_%u", nullptr);
  GstHarness* ha = gst_harness_new_with_element(sink, "sink_%u", nullptr);
  gst_harness_play(hv);
  gst_harness_play(ha);
  gst_harness_set_src_caps_str(hv, "video/x-arcly-test");
  fail_unless_equals_int(gst_harness_push(hv, frame_at(0)), GST_FLOW_OK);  // cached keyframe

  GstElement* sub = th::launch(
      "arclysrc name=src engine=lateaudio stream=live/lateaudio start=keyframe "
      "src.video_0 ! queue ! appsink name=v sync=false async=false  "
      "src.audio_0 ! queue ! appsink name=a sync=false async=false");
  gint no_more_pads = 0;
  g_signal_connect(th::by_name(sub, "src"), "no-more-pads", G_CALLBACK(note_no_more_pads),
                   &no_more_pads);
  th::play(sub);
  GstSample* s = th::pull(th::by_name(sub, "v"));
  fail_unless(s != nullptr, "no video");
  gst_sample_unref(s);
  fail_if(g_atomic_int_get(&no_more_pads), "no-more-pads before the publisher's audio track");

  gst_harness_set_src_caps_str(ha, "audio/x-arcly-test");
  fail_unless_equals_int(gst_harness_push(ha, frame_at(40 * GST_MSECOND)), GST_FLOW_OK);
  fail_unless_equals_int(gst_harness_push(hv, frame_at(40 * GST_MSECOND)), GST_FLOW_OK);
  s = th::pull(th::by_name(sub, "a"), 10);
  fail_unless(s != nullptr, "the audio track announced after the keyframe got no pad");
  gst_sample_unref(s);
  // Both tracks declared and seen: the pad set is final long before a second
  // of stream time has passed.
  fail_unless(wait_flag(&no_more_pads), "no no-more-pads after the declared track set");
  assert_no_warning(sub);
  th::assert_no_error(sub);
  th::stop(sub);
  gst_harness_teardown(ha);
  gst_harness_teardown(hv);
  gst_object_unref(sink);
}
GST_END_TEST;

// A publisher that never declares its track set (the engine API alone): a
// track announced within a second of stream time after the join gets its pad;
// no-more-pads comes once that second has passed.
GST_START_TEST(test_undeclared_track_set_waits_a_second) {
  auto engine = arcly::gst::engine_for("undeclared");
  arcly::StreamHandle stream = engine->start_publish(arcly::StreamKey::parse("live/undeclared"));
  arcly::gst::TrackPublisher video(0), audio(1);
  auto publish = [&](arcly::gst::TrackPublisher& t, GstClockTime pts) {
    GstBuffer* b = frame_at(pts);
    for (auto& f : t.on_buffer(b, static_cast<std::int64_t>(pts), std::nullopt, 0))
      stream->publish_frame(std::move(f));
    gst_buffer_unref(b);
  };
  GstCaps* vcaps = gst_caps_from_string("video/x-arcly-test");
  GstCaps* acaps = gst_caps_from_string("audio/x-arcly-test");
  stream->publish_frame(video.on_caps(vcaps, 0));
  publish(video, 0);

  GstElement* sub = th::launch(
      "arclysrc name=src engine=undeclared stream=live/undeclared start=keyframe "
      "src.video_0 ! queue ! appsink name=v sync=false async=false  "
      "src.audio_0 ! queue ! appsink name=a sync=false async=false");
  gint no_more_pads = 0;
  g_signal_connect(th::by_name(sub, "src"), "no-more-pads", G_CALLBACK(note_no_more_pads),
                   &no_more_pads);
  th::play(sub);
  GstSample* s = th::pull(th::by_name(sub, "v"));
  fail_unless(s != nullptr, "no video");
  gst_sample_unref(s);

  stream->publish_frame(audio.on_caps(acaps, 500 * GST_MSECOND));
  publish(audio, 500 * GST_MSECOND);
  publish(video, 500 * GST_MSECOND);
  s = th::pull(th::by_name(sub, "a"), 10);
  fail_unless(s != nullptr, "the audio track announced after the keyframe got no pad");
  gst_sample_unref(s);
  fail_if(g_atomic_int_get(&no_more_pads), "no-more-pads inside the second of stream time");
  publish(video, 1100 * GST_MSECOND);
  fail_unless(wait_flag(&no_more_pads), "no no-more-pads a second after the join");
  assert_no_warning(sub);
  th::stop(sub);
  gst_caps_unref(vcaps);
  gst_caps_unref(acaps);
  engine->end_publish(stream);
}
GST_END_TEST;

namespace {

struct GapWatch {
  GMutex mutex;
  GstClockTime last_buffer_pts = 0;
  GstClockTime last_gap_end = 0;
  int gaps = 0;
  bool misordered = false;
};

GstPadProbeReturn watch_gaps(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* w = static_cast<GapWatch*>(data);
  g_mutex_lock(&w->mutex);
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    w->last_buffer_pts = GST_BUFFER_PTS(GST_PAD_PROBE_INFO_BUFFER(info));
  } else if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_GAP) {
    GstClockTime ts = 0, duration = 0;
    gst_event_parse_gap(GST_PAD_PROBE_INFO_EVENT(info), &ts, &duration);
    if (ts < w->last_buffer_pts || ts < w->last_gap_end) w->misordered = true;
    w->last_gap_end = ts + duration;
    ++w->gaps;
  }
  g_mutex_unlock(&w->mutex);
  return GST_PAD_PROBE_OK;
}

}  // namespace

// persist, between publishers: GAP events carry the running time on (after
// the last buffer, never backwards), so aggregators and muxers do not stall.
GST_START_TEST(test_gaps_while_waiting) {
  GstElement* sub = th::launch(
      "arclysrc engine=gaps stream=live/gaps persist=true start=keyframe ! "
      "appsink name=out sync=false");
  GapWatch w;
  g_mutex_init(&w.mutex);
  th::probe_sink_pad(sub, "out", watch_gaps, &w);
  th::play(sub);
  {
    HarnessPublisher pub("gaps", "live/gaps", "video/x-arcly-test");
    fail_unless_equals_int(gst_harness_push(pub.h, frame_at(0)), GST_FLOW_OK);
    GstSample* s = th::pull(th::by_name(sub, "out"));
    fail_unless(s != nullptr);
    gst_sample_unref(s);
  }  // the publisher ends; the subscriber waits for the next one
  const gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
  int gaps = 0;
  while (gaps < 3 && g_get_monotonic_time() < deadline) {
    g_usleep(10000);
    g_mutex_lock(&w.mutex);
    gaps = w.gaps;
    g_mutex_unlock(&w.mutex);
  }
  fail_unless(gaps >= 3, "no GAP events while waiting for the next publisher");
  g_mutex_lock(&w.mutex);
  fail_if(w.misordered, "a GAP went backwards");
  g_mutex_unlock(&w.mutex);
  th::assert_no_error(sub);
  th::stop(sub);
  g_mutex_clear(&w.mutex);
}
GST_END_TEST;

GST_START_TEST(test_timestamps_and_caps_change) {
  HarnessPublisher pub("ts", "live/ts", "video/x-arcly-test,width=1");
  GstElement* sub =
      th::launch("arclysrc engine=ts stream=live/ts start=keyframe ! appsink name=out sync=false");
  th::play(sub);
  GstElement* out = th::by_name(sub, "out");
  GstElement* sub2 = th::launch(
      "arclysrc engine=ts stream=live/ts start=next-keyframe ! appsink name=out sync=false");
  th::play(sub2);
  th::wait_stat(pub.sink, "subscribers", 2);

  // No timestamp: stamped from the running time.
  GstBuffer* b = keyframe(16, 0);
  GST_BUFFER_PTS(b) = GST_CLOCK_TIME_NONE;
  fail_unless_equals_int(gst_harness_push(pub.h, b), GST_FLOW_OK);
  GstSample* s = th::pull(out);
  fail_unless(s != nullptr);
  GstBuffer* first = gst_sample_get_buffer(s);
  fail_unless(GST_BUFFER_PTS_IS_VALID(first));
  fail_unless(GST_BUFFER_FLAG_IS_SET(first, GST_BUFFER_FLAG_DISCONT));
  const GstClockTime first_pts = GST_BUFFER_PTS(first);
  GstStructure* st = gst_caps_get_structure(gst_sample_get_caps(s), 0);
  gint width = 0;
  fail_unless(gst_structure_get_int(st, "width", &width) && width == 1);
  gst_sample_unref(s);

  // Caps change mid-stream reaches the subscriber; spacing is kept.
  gst_harness_set_src_caps_str(pub.h, "video/x-arcly-test,width=2");
  b = keyframe(16, 40 * GST_MSECOND);
  fail_unless_equals_int(gst_harness_push(pub.h, b), GST_FLOW_OK);
  b = keyframe(16, 80 * GST_MSECOND);
  GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
  fail_unless_equals_int(gst_harness_push(pub.h, b), GST_FLOW_OK);
  s = th::pull(out);
  fail_unless(s != nullptr);
  st = gst_caps_get_structure(gst_sample_get_caps(s), 0);
  fail_unless(gst_structure_get_int(st, "width", &width) && width == 2, "caps change lost");
  const GstClockTime second_pts = GST_BUFFER_PTS(gst_sample_get_buffer(s));
  fail_unless(second_pts > first_pts);
  gst_sample_unref(s);
  s = th::pull(out);
  fail_unless(s != nullptr);
  GstBuffer* third = gst_sample_get_buffer(s);
  fail_unless(GST_BUFFER_FLAG_IS_SET(third, GST_BUFFER_FLAG_DELTA_UNIT));
  fail_unless_equals_uint64(GST_BUFFER_PTS(third) - second_pts, 40 * GST_MSECOND);
  fail_unless_equals_uint64(th::publisher_ts(third) - th::publisher_ts(gst_sample_get_buffer(s)),
                            0);
  gst_sample_unref(s);

  // The publisher's stats count what it published.
  GstStructure* stats = nullptr;
  g_object_get(pub.sink, "stats", &stats, nullptr);
  guint64 frames = 0;
  guint subscribers = 0;
  fail_unless(gst_structure_get_uint64(stats, "frames", &frames) && frames >= 3);
  fail_unless(gst_structure_get_uint(stats, "subscribers", &subscribers) && subscribers == 2);
  fail_unless(gst_structure_has_field(stats, "bitrate") && gst_structure_has_field(stats, "fps") &&
              gst_structure_has_field(stats, "keyframes") &&
              gst_structure_has_field(stats, "bytes"));
  gst_structure_free(stats);
  // The other subscriber saw the caps change too.
  bool width2 = false;
  while (!width2) {
    GstSample* other = th::pull(th::by_name(sub2, "out"));
    fail_unless(other != nullptr, "second subscriber never saw the new caps");
    width2 = gst_structure_get_int(gst_caps_get_structure(gst_sample_get_caps(other), 0), "width",
                                   &width) &&
             width == 2;
    gst_sample_unref(other);
  }
  th::stop(sub2);
  th::stop(sub);
}
GST_END_TEST;

GST_START_TEST(test_non_time_segment_refused) {
  GstElement* p =
      th::launch("appsrc name=src format=bytes caps=video/x-test ! arclysink stream=live/bytes");
  th::play(p);
  GstBuffer* b = gst_buffer_new_allocate(nullptr, 8, nullptr);
  gst_app_src_push_buffer(GST_APP_SRC(th::by_name(p, "src")), b);
  GstMessage* m = th::wait_message(p, GST_MESSAGE_ERROR, 10);
  fail_unless(m != nullptr);
  std::string t = th::error_text(m);
  gst_message_unref(m);
  fail_unless(contains(t, "TIME") && contains(t, "live/bytes"), "message: %s", t.c_str());
  th::stop(p);
}
GST_END_TEST;

GST_START_TEST(test_latency_query) {
  GstElement* pub = th::launch(
      "appsrc name=src is-live=true format=time caps=video/x-test ! arclysink stream=live/lat");
  th::play(pub);
  GstElement* sub = th::launch("arclysrc name=src stream=live/lat latency=40 ! fakesink");
  th::play(sub);
  GstPad* pad = nullptr;
  // The pad appears once the first config arrives: push caps by sending a buffer.
  GstBuffer* b = gst_buffer_new_allocate(nullptr, 8, nullptr);
  GST_BUFFER_PTS(b) = 0;
  gst_app_src_push_buffer(GST_APP_SRC(th::by_name(pub, "src")), b);
  const gint64 deadline = g_get_monotonic_time() + 20 * G_USEC_PER_SEC;
  while (!(pad = gst_element_get_static_pad(th::by_name(sub, "src"), "video_0")) &&
         g_get_monotonic_time() < deadline)
    g_usleep(5000);
  fail_unless(pad != nullptr, "no video_0 pad");
  GstQuery* q = gst_query_new_latency();
  fail_unless(gst_pad_query(pad, q));
  gboolean live = FALSE;
  GstClockTime min = 0, max = 0;
  gst_query_parse_latency(q, &live, &min, &max);
  fail_unless(live);
  fail_unless_equals_uint64(min, 40 * GST_MSECOND);
  gst_query_unref(q);
  gst_object_unref(pad);
  gboolean is_live = FALSE;
  g_object_get(th::by_name(sub, "src"), "is-live", &is_live, nullptr);
  fail_unless(is_live);
  th::stop(sub);
  th::stop(pub);
}
GST_END_TEST;

GST_START_TEST(test_named_engines) {
  // Only the "studio" application, nothing else.
  auto engine =
      arcly::Engine::builder().application(arcly::AppSpec("studio").publishers(1)).build();
  arcly::gst::register_engine("studio", engine);
  fail_unless(arcly::gst::find_engine("studio") == engine);

  std::string t = failed_state_change(
      "appsrc format=time ! arclysink engine=studio stream=live/cam", GST_STATE_PAUSED);
  fail_unless(contains(t, "live"), "message: %s", t.c_str());

  GstElement* pub = th::launch("appsrc format=time ! arclysink engine=studio stream=studio/cam");
  fail_unless(th::set_state(pub, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  fail_unless(engine->find_stream(arcly::StreamKey("studio", "cam")) != nullptr,
              "the element did not use the registered engine");
  // Another engine does not see it.
  failed_state_change("arclysrc stream=studio/cam wait=0 ! fakesink", GST_STATE_PAUSED);
  GstElement* sub = th::launch("arclysrc engine=studio stream=studio/cam wait=0 ! fakesink");
  fail_unless(th::set_state(sub, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  th::stop(sub);
  th::stop(pub);
  fail_unless(engine->find_stream(arcly::StreamKey("studio", "cam")) == nullptr);
  fail_unless(arcly::gst::unregister_engine("studio"));
}
GST_END_TEST;

GST_START_TEST(test_uri_handler) {
  GError* err = nullptr;
  GstElement* e = gst_element_make_from_uri(
      GST_URI_SRC, "arcly://live/cam?engine=studio&start=keyframe&persist=1", nullptr, &err);
  fail_unless(e != nullptr && err == nullptr);
  gchar* stream = nullptr;
  gchar* engine = nullptr;
  gint start = -1;
  gboolean persist = FALSE;
  g_object_get(e, "stream", &stream, "engine", &engine, "start", &start, "persist", &persist,
               nullptr);
  fail_unless_equals_string(stream, "live/cam");
  fail_unless_equals_string(engine, "studio");
  fail_unless_equals_int(start, 1);
  fail_unless(persist);
  gchar* uri = gst_uri_handler_get_uri(GST_URI_HANDLER(e));
  fail_unless_equals_string(uri, "arcly://live/cam?engine=studio&start=keyframe&persist=1");
  g_free(uri);
  g_free(stream);
  g_free(engine);
  fail_if(gst_uri_handler_set_uri(GST_URI_HANDLER(e), "arcly://live/bad..key/x", &err));
  fail_unless(err != nullptr);
  g_clear_error(&err);
  gst_object_unref(e);
}
GST_END_TEST;

namespace {

struct SrcProps {
  std::string stream, engine;
  gint wait = 0, start = 0;
  gboolean persist = FALSE;
  guint latency = 0, preroll = 0, max_lag = 0;
  gboolean dispatch = FALSE;
  bool operator==(const SrcProps&) const = default;
};

SrcProps src_props(GstElement* e) {
  SrcProps p;
  gchar* stream = nullptr;
  gchar* engine = nullptr;
  g_object_get(e, "stream", &stream, "engine", &engine, "wait", &p.wait, "start", &p.start,
               "persist", &p.persist, "latency", &p.latency, "preroll", &p.preroll, "max-lag",
               &p.max_lag, "dispatch", &p.dispatch, nullptr);
  p.stream = stream ? stream : "";
  p.engine = engine ? engine : "";
  g_free(stream);
  g_free(engine);
  return p;
}

void count_notify(GObject*, GParamSpec*, gpointer data) {
  ++*static_cast<int*>(data);
}

}  // namespace

// Every setting travels in the URI and comes back; set_uri checks ranges, keys
// and the state, notifies, and leaves the settings a URI does not name alone.
GST_START_TEST(test_uri_round_trip) {
  GstElement* a = gst_element_factory_make("arclysrc", nullptr);
  g_object_set(a, "stream", "live/rt", "engine", "my engine&co", "wait", 250, "persist", TRUE,
               "latency", 80, "preroll", 1500, "max-lag", 2500, nullptr);
  gst_util_set_object_arg(G_OBJECT(a), "start", "keyframe");
  // `dispatch` away from its default (ARCLY_SRC_DISPATCH may have turned it on).
  gboolean dispatch = FALSE;
  g_object_get(a, "dispatch", &dispatch, nullptr);
  g_object_set(a, "dispatch", !dispatch, nullptr);
  gchar* uri = gst_uri_handler_get_uri(GST_URI_HANDLER(a));
  for (const char* key : {"wait=250", "start=keyframe", "persist=1", "latency=80", "preroll=1500",
                          "max-lag=2500", dispatch ? "dispatch=0" : "dispatch=1"})
    fail_unless(std::strstr(uri, key) != nullptr, "%s missing from %s", key, uri);
  GError* err = nullptr;
  GstElement* b = gst_element_make_from_uri(GST_URI_SRC, uri, nullptr, &err);
  fail_unless(b != nullptr, "%s", err ? err->message : "no element");
  fail_unless(src_props(a) == src_props(b), "settings did not round-trip through %s", uri);
  gchar* again = gst_uri_handler_get_uri(GST_URI_HANDLER(b));
  fail_unless_equals_string(again, uri);
  g_free(again);
  g_free(uri);

  // A URI naming only some keys changes only those, and notifies them.
  int latency_notes = 0, stream_notes = 0, wait_notes = 0;
  g_signal_connect(b, "notify::latency", G_CALLBACK(count_notify), &latency_notes);
  g_signal_connect(b, "notify::stream", G_CALLBACK(count_notify), &stream_notes);
  g_signal_connect(b, "notify::wait", G_CALLBACK(count_notify), &wait_notes);
  fail_unless(gst_uri_handler_set_uri(GST_URI_HANDLER(b), "arcly://live/other?latency=5", &err));
  SrcProps want = src_props(a);
  want.stream = "live/other";
  want.latency = 5;
  fail_unless(src_props(b) == want, "set_uri touched settings the URI does not name");
  fail_unless_equals_int(latency_notes, 1);
  fail_unless_equals_int(stream_notes, 1);
  fail_unless_equals_int(wait_notes, 0);

  // Out of range, malformed, unknown: refused with the reason, nothing changed.
  for (const char* bad :
       {"arcly://live/x?latency=999999", "arcly://live/x?wait=-2", "arcly://live/x?wait=soon",
        "arcly://live/x?start=middle", "arcly://live/x?persist=maybe", "arcly://live/x?colour=red",
        "arcly://live/x?engine=", "arcly://live/x?max-lag=-1", "arcly://live/x?max-lag=4000000",
        "arcly://live/x?dispatch=sometimes"}) {
    fail_if(gst_uri_handler_set_uri(GST_URI_HANDLER(b), bad, &err), "%s accepted", bad);
    fail_unless(err && std::strstr(err->message, bad) != nullptr, "%s: %s", bad,
                err ? err->message : "no error");
    g_clear_error(&err);
  }
  fail_unless(src_props(b) == want, "a refused URI changed settings");

  // While streaming only the key may change (a switch); the rest is
  // snapshotted at READY->PAUSED.
  GstElement* pipeline = gst_pipeline_new(nullptr);
  GstElement* sink = gst_element_factory_make("fakesink", nullptr);
  gst_bin_add_many(GST_BIN(pipeline), b, sink, nullptr);
  g_object_set(b, "wait", -1, nullptr);
  fail_unless(gst_element_set_state(pipeline, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  fail_if(gst_uri_handler_set_uri(GST_URI_HANDLER(b), "arcly://live/third?latency=6", &err));
  fail_unless(err && err->code == GST_URI_ERROR_BAD_STATE && std::strstr(err->message, "latency"),
              "%s", err ? err->message : "no error");
  g_clear_error(&err);
  gchar* stream = nullptr;
  g_object_get(b, "stream", &stream, nullptr);
  fail_unless_equals_string(stream, "live/other");
  g_free(stream);
  fail_unless(gst_uri_handler_set_uri(GST_URI_HANDLER(b), "arcly://live/third?latency=5", &err),
              "%s", err ? err->message : "");
  g_object_get(b, "stream", &stream, nullptr);
  fail_unless_equals_string(stream, "live/third");
  g_free(stream);
  th::stop(pipeline);
  gst_object_unref(a);
}
GST_END_TEST;

// GST_PARAM_MUTABLE_READY is enforced: in PAUSED the value stays (`stream`,
// GST_PARAM_MUTABLE_PLAYING on arclysrc, switches instead).
GST_START_TEST(test_ready_properties_enforced) {
  GstElement* pub = th::launch("appsrc format=time ! arclysink name=pub stream=live/mut");
  GstElement* sub = th::launch("arclysrc name=src stream=live/mut latency=40 ! fakesink");
  fail_unless(th::set_state(pub, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  fail_unless(th::set_state(sub, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE);
  g_object_set(th::by_name(pub, "pub"), "stream", "live/changed", "engine", "other", nullptr);
  g_object_set(th::by_name(sub, "src"), "stream", "live/changed", "latency", 90, nullptr);
  gchar* key = nullptr;
  gchar* engine = nullptr;
  g_object_get(th::by_name(pub, "pub"), "stream", &key, "engine", &engine, nullptr);
  fail_unless_equals_string(key, "live/mut");
  fail_unless_equals_string(engine, "default");
  g_free(key);
  g_free(engine);
  guint latency = 0;
  g_object_get(th::by_name(sub, "src"), "stream", &key, "latency", &latency, nullptr);
  fail_unless_equals_string(key, "live/changed");
  fail_unless_equals_int(latency, 40);
  g_free(key);
  // Back in READY they may change again.
  fail_unless(th::set_state(sub, GST_STATE_READY) == GST_STATE_CHANGE_SUCCESS);
  g_object_set(th::by_name(sub, "src"), "latency", 90, nullptr);
  g_object_get(th::by_name(sub, "src"), "latency", &latency, nullptr);
  fail_unless_equals_int(latency, 90);
  th::stop(sub);
  th::stop(pub);
}
GST_END_TEST;

namespace {

// A subscriber on the engine itself: what arclysink really published.
struct EngineTap {
  std::optional<arcly::Subscription> sub;
  EngineTap(const char* engine, const char* key) {
    auto e = arcly::gst::engine_for(engine);
    auto stream = e->get_stream(arcly::StreamKey::parse(key));
    sub.emplace(stream->subscribe(arcly::SubscribeOptions{}));
  }
  // Media frames (configs skipped) readable now.
  std::vector<arcly::FrameRef> media() {
    std::vector<arcly::FrameRef> out;
    for (;;) {
      arcly::Received r = sub->try_recv();
      if (r.status != arcly::RecvStatus::Frame) break;
      if (!r.frame->is_config()) out.push_back(r.frame);
    }
    return out;
  }
};

}  // namespace

// Buffers outside the segment are not published; one overlapping its start
// is published from the start on (its running time is 0, not negative).
GST_START_TEST(test_sink_clips_to_segment) {
  HarnessPublisher pub("clip", "live/clip", "video/x-arcly-test");
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  seg.start = GST_SECOND;
  seg.stop = 3 * GST_SECOND;
  seg.position = GST_SECOND;
  fail_unless(gst_harness_push_event(pub.h, gst_event_new_segment(&seg)));
  EngineTap tap("clip", "live/clip");
  auto push = [&pub](GstClockTime pts, GstClockTime duration) {
    GstBuffer* b = keyframe(16, pts);
    GST_BUFFER_DURATION(b) = duration;
    fail_unless_equals_int(gst_harness_push(pub.h, b), GST_FLOW_OK);
  };
  push(0, 40 * GST_MSECOND);                                   // before the segment
  push(960 * GST_MSECOND, 80 * GST_MSECOND);                   // overlaps its start
  push(2 * GST_SECOND, 40 * GST_MSECOND);                      // inside
  push(3 * GST_SECOND + 500 * GST_MSECOND, 40 * GST_MSECOND);  // after its stop
  auto frames = tap.media();
  fail_unless_equals_int(frames.size(), 2);
  // Publisher time = base time + running time: the overlapping buffer starts at
  // running time 0, the next one 1 s later.
  fail_unless_equals_int64(frames[1]->pts - frames[0]->pts, 1000 * GST_MSECOND);
}
GST_END_TEST;

// EOS ends the publish; a flushing seek afterwards publishes again (caps included).
GST_START_TEST(test_sink_restarts_after_eos_and_flush) {
  HarnessPublisher pub("restart", "live/again", "video/x-arcly-test,width=7");
  auto engine = arcly::gst::engine_for("restart");
  const auto key = arcly::StreamKey::parse("live/again");
  fail_unless_equals_int(gst_harness_push(pub.h, keyframe(16, 0)), GST_FLOW_OK);
  fail_unless(gst_harness_push_event(pub.h, gst_event_new_eos()));
  fail_unless(engine->find_stream(key) == nullptr, "EOS did not end the publish");
  fail_unless_equals_int(gst_harness_push(pub.h, keyframe(16, 40 * GST_MSECOND)), GST_FLOW_EOS);

  fail_unless(gst_harness_push_event(pub.h, gst_event_new_flush_start()));
  fail_unless(gst_harness_push_event(pub.h, gst_event_new_flush_stop(TRUE)));
  GstSegment seg;
  gst_segment_init(&seg, GST_FORMAT_TIME);
  fail_unless(gst_harness_push_event(pub.h, gst_event_new_segment(&seg)));
  fail_unless(engine->find_stream(key) != nullptr, "no publish after the flush");
  EngineTap tap("restart", "live/again");
  fail_unless_equals_int(gst_harness_push(pub.h, keyframe(16, 0)), GST_FLOW_OK);
  // The new publish starts with the track's config, carrying its caps.
  arcly::Received r = tap.sub->try_recv();
  fail_unless(r.status == arcly::RecvStatus::Frame && r.frame->is_config() && r.frame->info,
              "the restarted publish has no config first");
  fail_unless(r.frame->info->description.find("width=(int)7") != std::string::npos, "%s",
              r.frame->info->description.c_str());
  fail_unless_equals_int(tap.media().size(), 1);
}
GST_END_TEST;

// A failure every pad meets (the stream closed under the publisher) is posted
// once; the pads have the NEED_PARENT flag.
GST_START_TEST(test_sink_failure_reported_once) {
  GstElement* sink = gst_element_factory_make("arclysink", nullptr);
  g_object_set(sink, "engine", "once", "stream", "live/once", nullptr);
  GstHarness* h1 = gst_harness_new_with_element(sink, "sink_%u", nullptr);
  GstHarness* h2 = gst_harness_new_with_element(sink, "sink_%u", nullptr);
  GstBus* bus = gst_bus_new();
  gst_element_set_bus(sink, bus);
  gst_harness_play(h1);
  gst_harness_play(h2);
  gst_harness_set_src_caps_str(h1, "video/x-arcly-test");
  gst_harness_set_src_caps_str(h2, "audio/x-arcly-test");
  fail_unless(GST_PAD_NEEDS_PARENT(GST_PAD_PEER(h1->srcpad)));
  fail_unless_equals_int(gst_harness_push(h1, keyframe(16, 0)), GST_FLOW_OK);
  arcly::gst::engine_for("once")->end_publish(arcly::StreamKey::parse("live/once"));
  fail_unless_equals_int(gst_harness_push(h1, keyframe(16, 40 * GST_MSECOND)), GST_FLOW_ERROR);
  fail_unless_equals_int(gst_harness_push(h2, keyframe(16, 40 * GST_MSECOND)), GST_FLOW_ERROR);
  int errors = 0;
  while (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
    GError* err = nullptr;
    gchar* debug = nullptr;
    gst_message_parse_error(m, &err, &debug);
    // The human text names the stream; the detail says what happened.
    fail_unless(std::strstr(err->message, "live/once") != nullptr, "%s", err->message);
    fail_unless(debug != nullptr && std::strstr(err->message, debug) == nullptr);
    g_clear_error(&err);
    g_free(debug);
    gst_message_unref(m);
    ++errors;
  }
  fail_unless_equals_int(errors, 1);
  gst_element_set_bus(sink, nullptr);
  gst_object_unref(bus);
  gst_harness_teardown(h2);
  gst_harness_teardown(h1);
  gst_object_unref(sink);
}
GST_END_TEST;

namespace {
gboolean refuse_activation(GstPad*, GstObject*, GstPadMode, gboolean active) {
  return !active;
}
}  // namespace

// A failed READY->PAUSED (here: a pad that will not activate) leaves no task
// running: the element is back in READY with nothing of the run left (its
// finalize checks the task).
GST_START_TEST(test_src_failed_start_stops_task) {
  GstElement* p = th::launch("arclysrc name=src stream=live/nostart wait=-1 ! fakesink");
  GstElement* src = th::by_name(p, "src");
  GstPad* bad = gst_pad_new("bad", GST_PAD_SRC);
  gst_pad_set_activatemode_function(bad, refuse_activation);
  gst_element_add_pad(src, bad);
  fail_unless(gst_element_set_state(p, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE);
  GstState state = GST_STATE_VOID_PENDING;
  gst_element_get_state(src, &state, nullptr, 0);
  fail_unless_equals_int(state, GST_STATE_READY);
  gst_element_remove_pad(src, bad);
  th::stop(p);  // finalize: g_critical (a test failure) if the task still runs
}
GST_END_TEST;

GST_START_TEST(test_properties_documented) {
  for (const char* name : {"arclysink", "arclysrc"}) {
    GstElement* e = gst_element_factory_make(name, nullptr);
    fail_unless(e != nullptr);
    guint n = 0;
    GParamSpec** specs = g_object_class_list_properties(G_OBJECT_GET_CLASS(e), &n);
    for (guint i = 0; i < n; ++i) {
      if (specs[i]->owner_type != G_OBJECT_TYPE(e)) continue;
      const gchar* blurb = g_param_spec_get_blurb(specs[i]);
      fail_unless(blurb && std::strlen(blurb) > 20, "%s::%s has no useful blurb", name,
                  specs[i]->name);
    }
    g_free(specs);
    GstElementFactory* f = gst_element_get_factory(e);
    fail_unless(std::strlen(gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_DESCRIPTION)) >
                20);
    gst_object_unref(e);
  }
}
GST_END_TEST;

namespace {

arcly::FrameRef frame_ref(arcly::MediaFrame f, std::uint64_t position = 0) {
  return arcly::FrameRef::adopt(new arcly::detail::FrameNode(position, std::move(f)));
}

arcly::MediaFrame video_frame(std::int64_t pts_ms, bool keyframe, std::int64_t dts_ms = -1) {
  const std::uint8_t payload[] = {1, 2, 3, 4};
  arcly::MediaFrame f = arcly::MediaFrame::video(
      pts_ms * GST_MSECOND,
      dts_ms >= 0 ? std::optional<std::int64_t>(dts_ms * GST_MSECOND) : std::nullopt,
      arcly::Bytes::copy_from(payload, sizeof(payload)), arcly::CodecId::Other, keyframe, 0);
  return f;
}

// Drains the harness's events up to (and not including) the next buffer.
std::vector<GstEventType> event_types(GstHarness* h, GstSegment* last_segment = nullptr) {
  std::vector<GstEventType> out;
  while (GstEvent* e = gst_harness_try_pull_event(h)) {
    out.push_back(GST_EVENT_TYPE(e));
    if (last_segment && GST_EVENT_TYPE(e) == GST_EVENT_SEGMENT) {
      const GstSegment* s = nullptr;
      gst_event_parse_segment(e, &s);
      gst_segment_copy_into(s, last_segment);
    }
    gst_event_unref(e);
  }
  return out;
}

}  // namespace

// TrackOutput on a bare pad under GstHarness: the announcement, the live-edge
// segments (keyframe shown, catch-up decode-only and clipped), DISCONT after a
// (re)start, the publisher meta, caps changes, decode timestamps that never go
// backwards, SPARSE data tracks.
GST_START_TEST(test_track_output) {
  GstHarness* h = gst_harness_new_empty();
  GstPad* pad = gst_pad_new("video_0", GST_PAD_SRC);
  arcly::TrackInfo info;
  info.track = 0;
  info.kind = arcly::MediaKind::Video;
  info.description = "video/x-arcly-test, width=(int)1";
  GstCaps* caps = gst_caps_from_string(info.description.c_str());
  arcly::gst::TrackOutput out(pad, info, caps, "test/0", 7);
  gst_caps_unref(caps);
  gst_harness_add_element_src_pad(h, pad);

  // Live edge at 1100 ms, keyframe at 1000 ms, the subscriber's running time 5 s.
  arcly::gst::Timeline tl;
  tl.start(1000 * GST_MSECOND, 1100 * GST_MSECOND, 5 * GST_SECOND);
  auto push = [&](arcly::MediaFrame f) {
    auto r = out.push(frame_ref(std::move(f)), tl, true);
    fail_unless_equals_int(r.flow, GST_FLOW_OK);
    return gst_harness_pull(h);
  };
  GstBuffer* key = push(video_frame(1000, true, 990));
  // The sticky announcement reaches the peer with the first data: STREAM_START
  // (group 7, not sparse), CAPS, then the segment.
  GstEvent* e = gst_harness_pull_event(h);
  fail_unless_equals_int(GST_EVENT_TYPE(e), GST_EVENT_STREAM_START);
  guint group = 0;
  GstStreamFlags flags = GST_STREAM_FLAG_NONE;
  fail_unless(gst_event_parse_group_id(e, &group) && group == 7);
  gst_event_parse_stream_flags(e, &flags);
  fail_if(flags & GST_STREAM_FLAG_SPARSE);
  gst_event_unref(e);
  e = gst_harness_pull_event(h);
  fail_unless_equals_int(GST_EVENT_TYPE(e), GST_EVENT_CAPS);
  gst_event_unref(e);
  auto pull_segment = [h](GstSegment* into) {
    GstEvent* ev = gst_harness_pull_event(h);
    fail_unless(ev && GST_EVENT_TYPE(ev) == GST_EVENT_SEGMENT, "expected a segment");
    const GstSegment* s = nullptr;
    gst_event_parse_segment(ev, &s);
    gst_segment_copy_into(s, into);
    gst_event_unref(ev);
  };
  GstSegment seg;
  pull_segment(&seg);
  // The keyframe is shown (inside its segment) and marked DISCONT.
  fail_unless(GST_BUFFER_FLAG_IS_SET(key, GST_BUFFER_FLAG_DISCONT));
  fail_if(GST_BUFFER_FLAG_IS_SET(key, GST_BUFFER_FLAG_DECODE_ONLY));
  fail_unless_equals_uint64(th::publisher_ts(key), 1000 * GST_MSECOND);
  fail_unless_equals_uint64(gst_segment_to_running_time(&seg, GST_FORMAT_TIME, GST_BUFFER_PTS(key)),
                            5 * GST_SECOND);
  // Right after it a segment from the live edge: the catch-up is decode-only
  // and clipped, the edge plays at the running time the keyframe did.
  pull_segment(&seg);
  fail_unless(event_types(h).empty());
  GstBuffer* catchup = push(video_frame(1033, false, 1033));
  fail_unless(event_types(h).empty());
  fail_unless(GST_BUFFER_FLAG_IS_SET(catchup, GST_BUFFER_FLAG_DECODE_ONLY));
  fail_if(GST_BUFFER_FLAG_IS_SET(catchup, GST_BUFFER_FLAG_DISCONT));
  fail_if(gst_segment_clip(&seg, GST_FORMAT_TIME, GST_BUFFER_PTS(catchup),
                           GST_BUFFER_PTS(catchup) + 1, nullptr, nullptr),
          "the catch-up frame is inside the segment");
  GstBuffer* edge = push(video_frame(1100, false, 1000));  // DTS behind the last one
  fail_if(GST_BUFFER_FLAG_IS_SET(edge, GST_BUFFER_FLAG_DECODE_ONLY));
  fail_unless_equals_uint64(
      gst_segment_to_running_time(&seg, GST_FORMAT_TIME, GST_BUFFER_PTS(edge)), 5 * GST_SECOND);
  fail_unless(GST_BUFFER_DTS(edge) >= GST_BUFFER_DTS(catchup), "DTS went backwards");
  fail_unless_equals_uint64(GST_BUFFER_PTS(edge) - GST_BUFFER_PTS(key), 100 * GST_MSECOND);
  gst_buffer_unref(key);
  gst_buffer_unref(catchup);
  gst_buffer_unref(edge);

  // New caps before the next buffer; a restart gives a segment and DISCONT.
  arcly::MediaFrame config =
      arcly::MediaFrame::config(arcly::MediaKind::Video, arcly::CodecId::Other, 0, {});
  auto new_info = std::make_shared<arcly::TrackInfo>(info);
  new_info->description = "video/x-arcly-test, width=(int)2";
  config.info = new_info;
  out.on_config(config);
  tl.start(2000 * GST_MSECOND, 2000 * GST_MSECOND, 6 * GST_SECOND);
  out.restart();
  GstBuffer* again = push(video_frame(2000, true));
  auto types = event_types(h);
  fail_unless(types.size() == 2 && types[0] == GST_EVENT_CAPS && types[1] == GST_EVENT_SEGMENT);
  fail_unless(GST_BUFFER_FLAG_IS_SET(again, GST_BUFFER_FLAG_DISCONT));
  gst_buffer_unref(again);
  fail_unless(out.push_eos());
  gst_harness_teardown(h);

  // A data track is SPARSE.
  h = gst_harness_new_empty();
  GstPad* data_pad = gst_pad_new("data_0", GST_PAD_SRC);
  info.kind = arcly::MediaKind::Data;
  info.description = "application/x-klv";
  caps = gst_caps_from_string(info.description.c_str());
  arcly::gst::TrackOutput data(data_pad, info, caps, "test/1", 7);
  gst_caps_unref(caps);
  gst_harness_add_element_src_pad(h, data_pad);
  tl.start(0, 0, 0);
  arcly::MediaFrame klv = video_frame(0, true);
  klv.kind = arcly::MediaKind::Data;
  fail_unless_equals_int(data.push(frame_ref(std::move(klv)), tl, false).flow, GST_FLOW_OK);
  e = gst_harness_pull_event(h);
  gst_event_parse_stream_flags(e, &flags);
  fail_unless(flags & GST_STREAM_FLAG_SPARSE, "a data track is not SPARSE");
  gst_event_unref(e);
  gst_harness_teardown(h);
}
GST_END_TEST;

// One GstBuffer per frame: two subscribers on different timelines push the
// same buffer (a reference, never writable downstream), each with its own
// segment mapping it to its running time; what differs for one subscriber (a
// DISCONT after a lag, in-band configs in front of a keyframe) goes on a
// shallow copy that shares the payload, and the shared buffer stays untouched.
GST_START_TEST(test_shared_buffer_per_frame) {
  struct Sub {
    GstHarness* h = gst_harness_new_empty();
    std::unique_ptr<arcly::gst::TrackOutput> out;
    arcly::gst::Timeline tl;
    GstSegment seg;
  };
  arcly::TrackInfo info;
  info.track = 0;
  info.kind = arcly::MediaKind::Video;
  info.codec = arcly::CodecId::H264;
  info.description = "video/x-h264, stream-format=(string)byte-stream, alignment=(string)au";
  Sub subs[2];
  for (int i = 0; i < 2; ++i) {
    GstPad* pad = gst_pad_new("video_0", GST_PAD_SRC);
    GstCaps* caps = gst_caps_from_string(info.description.c_str());
    subs[i].out = std::make_unique<arcly::gst::TrackOutput>(pad, info, caps, "test/0", 7);
    gst_caps_unref(caps);
    gst_harness_add_element_src_pad(subs[i].h, pad);
    // Joined at the same keyframe (1 s), at running times 5 s and 9 s.
    subs[i].tl.start(1000 * GST_MSECOND, 1000 * GST_MSECOND, (5 + 4 * i) * GST_SECOND);
  }
  auto push = [](Sub& s, const arcly::FrameRef& f) {
    fail_unless_equals_int(s.out->push(f, s.tl, false).flow, GST_FLOW_OK);
    while (GstEvent* e = gst_harness_try_pull_event(s.h)) {
      if (GST_EVENT_TYPE(e) == GST_EVENT_SEGMENT) {
        const GstSegment* seg = nullptr;
        gst_event_parse_segment(e, &seg);
        gst_segment_copy_into(seg, &s.seg);
      }
      gst_event_unref(e);
    }
    return gst_harness_pull(s.h);
  };
  // The first buffer after a start is DISCONT: a copy each.
  arcly::FrameRef key = frame_ref(video_frame(1000, true, 1000));
  GstBuffer* k0 = push(subs[0], key);
  GstBuffer* k1 = push(subs[1], key);
  fail_unless(k0 != k1);
  fail_unless(GST_BUFFER_FLAG_IS_SET(k0, GST_BUFFER_FLAG_DISCONT) &&
              GST_BUFFER_FLAG_IS_SET(k1, GST_BUFFER_FLAG_DISCONT));
  fail_unless(gst_buffer_peek_memory(k0, 0) == gst_buffer_peek_memory(k1, 0),
              "the copies do not share the payload");
  fail_unless_equals_uint64(
      gst_segment_to_running_time(&subs[0].seg, GST_FORMAT_TIME, GST_BUFFER_PTS(k0)),
      5 * GST_SECOND);
  fail_unless_equals_uint64(
      gst_segment_to_running_time(&subs[1].seg, GST_FORMAT_TIME, GST_BUFFER_PTS(k1)),
      9 * GST_SECOND);

  // Steady state: the very same buffer on both pads, writable for nobody.
  arcly::FrameRef delta = frame_ref(video_frame(1033, false, 1033));
  GstBuffer* d0 = push(subs[0], delta);
  GstBuffer* d1 = push(subs[1], delta);
  fail_unless(d0 == d1, "each subscriber built its own buffer");
  fail_if(gst_buffer_is_writable(d0), "a buffer shared by two pads is writable");
  gst_buffer_unref(d1);
  fail_if(gst_buffer_is_writable(d0), "the frame's own reference does not keep it read-only");
  fail_if(GST_BUFFER_FLAG_IS_SET(d0, GST_BUFFER_FLAG_DISCONT));
  fail_unless_equals_uint64(th::publisher_ts(d0), 1033 * GST_MSECOND);
  fail_unless_equals_uint64(
      gst_segment_to_running_time(&subs[1].seg, GST_FORMAT_TIME, GST_BUFFER_PTS(d0)),
      9 * GST_SECOND + 33 * GST_MSECOND);

  // A lag on one subscriber: its buffer is a DISCONT copy, the other's is shared.
  subs[0].out->mark_discont();
  arcly::FrameRef next = frame_ref(video_frame(1066, false, 1066));
  GstBuffer* n0 = push(subs[0], next);
  GstBuffer* n1 = push(subs[1], next);
  fail_unless(n0 != n1);
  fail_unless(GST_BUFFER_FLAG_IS_SET(n0, GST_BUFFER_FLAG_DISCONT));
  fail_if(GST_BUFFER_FLAG_IS_SET(n1, GST_BUFFER_FLAG_DISCONT), "the copy wrote the shared buffer");
  fail_unless_equals_uint64(GST_BUFFER_PTS(n0), GST_BUFFER_PTS(n1));
  fail_unless_equals_uint64(th::publisher_ts(n0), 1066 * GST_MSECOND);

  // In-band parameter sets for one subscriber go in front of its keyframe only.
  const std::uint8_t sps[] = {0, 0, 0, 1, 0x67, 1, 2};
  arcly::MediaFrame config = arcly::MediaFrame::config(
      arcly::MediaKind::Video, arcly::CodecId::H264, 0, arcly::Bytes::copy_from(sps, sizeof(sps)),
      std::make_shared<arcly::TrackInfo>(info));
  subs[1].out->on_config(config);
  arcly::FrameRef key2 = frame_ref(video_frame(2000, true, 2000));
  GstBuffer* p0 = push(subs[0], key2);
  GstBuffer* p1 = push(subs[1], key2);
  fail_unless_equals_int(gst_buffer_n_memory(p0), 1);
  fail_unless_equals_int(gst_buffer_n_memory(p1), 2);
  fail_unless_equals_int(gst_buffer_get_size(p1), sizeof(sps) + 4);
  fail_unless(gst_buffer_peek_memory(p1, 1) == gst_buffer_peek_memory(p0, 0));

  for (GstBuffer* b : {k0, k1, d0, n0, n1, p0, p1}) gst_buffer_unref(b);
  for (Sub& s : subs) {
    s.out.reset();
    gst_harness_teardown(s.h);
  }
}
GST_END_TEST;

// caps_track: codecs, in-band parameter sets, config payloads.
GST_START_TEST(test_caps_track) {
  using arcly::CodecId;
  const std::uint8_t h264[] = {0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 9, 9};
  arcly::Bytes ps = arcly::gst::extract_parameter_sets(CodecId::H264, h264);
  const std::uint8_t want264[] = {0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3};
  fail_unless(ps.size() == sizeof(want264) && std::memcmp(ps.data(), want264, ps.size()) == 0);
  // H.265: VPS (32), SPS (33), PPS (34) kept, IDR (19) not.
  const std::uint8_t h265[] = {0, 0, 1, 0x40, 1, 7, 0, 0, 1, 0x42, 1, 8,
                               0, 0, 1, 0x44, 1, 9, 0, 0, 1, 0x26, 1, 5};
  ps = arcly::gst::extract_parameter_sets(CodecId::H265, h265);
  fail_unless_equals_int(ps.size(), 3 * 7);
  fail_unless(arcly::gst::extract_parameter_sets(CodecId::AAC, h264).empty());

  struct Case {
    const char* caps;
    arcly::MediaKind kind;
    CodecId codec;
    bool inband;
    bool config;
  } cases[] = {
      {"video/x-h264,stream-format=byte-stream,alignment=au", arcly::MediaKind::Video,
       CodecId::H264, true, false},
      {"video/x-h264,stream-format=avc,codec_data=(buffer)0164", arcly::MediaKind::Video,
       CodecId::H264, false, true},
      {"video/x-h265,stream-format=byte-stream", arcly::MediaKind::Video, CodecId::H265, true,
       false},
      {"audio/mpeg,mpegversion=4,codec_data=(buffer)1210", arcly::MediaKind::Audio, CodecId::AAC,
       false, true},
      {"audio/x-opus,channel-mapping-family=0", arcly::MediaKind::Audio, CodecId::Opus, false,
       false},
      {"application/x-klv", arcly::MediaKind::Data, CodecId::Other, false, false},
  };
  for (const Case& c : cases) {
    GstCaps* caps = gst_caps_from_string(c.caps);
    arcly::gst::CapsDescription d = arcly::gst::describe_caps(caps);
    fail_unless(d.kind == c.kind && d.codec == c.codec && d.inband_parameter_sets == c.inband, "%s",
                c.caps);
    fail_unless(d.config.empty() != c.config, "%s", c.caps);
    auto info = arcly::gst::track_info_from_caps(caps, 3);
    fail_unless(info->track == 3 && info->codec == c.codec);
    GstCaps* back = arcly::gst::caps_from_track(*info);
    fail_unless(back && gst_caps_is_equal(back, caps), "%s did not round-trip", c.caps);
    gst_caps_unref(back);
    gst_caps_unref(caps);
  }
}
GST_END_TEST;

static Suite* arcly_elements_suite() {
  Suite* s = suite_create("arcly-elements");
  TCase* tc = tcase_create("general");
  suite_add_tcase(s, tc);
  tcase_add_test(tc, test_bad_key);
  tcase_add_test(tc, test_not_published_wait0);
  tcase_add_test(tc, test_wait_timeout);
  tcase_add_test(tc, test_duplicate_publisher);
  tcase_add_test(tc, test_unblocks_while_waiting);
  tcase_add_test(tc, test_zero_copy);
  tcase_add_test(tc, test_metas_kept);
  tcase_add_test(tc, test_codec_change_starts_new_stream);
  tcase_add_test(tc, test_vanished_and_late_tracks);
  tcase_add_test(tc, test_gaps_while_waiting);
  tcase_add_test(tc, test_timestamps_and_caps_change);
  tcase_add_test(tc, test_non_time_segment_refused);
  tcase_add_test(tc, test_latency_query);
  tcase_add_test(tc, test_named_engines);
  tcase_add_test(tc, test_uri_handler);
  tcase_add_test(tc, test_uri_round_trip);
  tcase_add_test(tc, test_ready_properties_enforced);
  tcase_add_test(tc, test_sink_clips_to_segment);
  tcase_add_test(tc, test_sink_restarts_after_eos_and_flush);
  tcase_add_test(tc, test_sink_failure_reported_once);
  tcase_add_test(tc, test_src_failed_start_stops_task);
  tcase_add_test(tc, test_properties_documented);
  tcase_add_test(tc, test_caps_track);
  tcase_add_test(tc, test_track_output);
  tcase_add_test(tc, test_shared_buffer_per_frame);
  tcase_add_test(tc, test_track_announced_after_keyframe_gets_a_pad);
  tcase_add_test(tc, test_undeclared_track_set_waits_a_second);
  return s;
}

GST_CHECK_MAIN(arcly_elements)
