// latejoin-bench: how fast a late joiner shows a picture, and reaches live.
//
// One live publisher in this process: videotestsrc (1280x720, 30 fps, moving SMPTE
// bars) ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=4000
// (a 2 s GOP at ~4 Mbit/s) ! tee, one branch of which is `queue ! arclysink`. At each
// of a dozen points of the GOP (phase = time since the last keyframe), three
// subscribers join the same publisher one after the other:
//
//   tee      a new `queue ! h264parse ! avdec_h264 ! fakesink` branch on the tee
//   tee+fku  the same branch, which then sends an upstream force-key-unit event
//            (the best a pipeline that owns its encoder can do)
//   arcly    a separate pipeline `arclysrc ! h264parse ! avdec_h264 ! fakesink`
//            (start=live-edge, the default)
//
// Each decoder has output-corrupt=false (first picture = first correct picture);
// the sinks have sync=false, so the figures are the decoder's, not a renderer's.
// Measured from the subscriber going to PLAYING (branch state sync + link for tee,
// set_state(PLAYING) for arclysrc; elements are created before):
//   first   the decoder's first output picture;
//   edge    the first decoder output whose publisher timestamp (the
//           timestamp/x-arcly-publisher reference meta for arclysrc; PTS + base time
//           for the tee branches, which are in the publisher pipeline: running time + base time) is
//           that of the newest frame the encoder has pushed at that instant: the live edge.
// Printed: one row per join, then median and max per variant, the targets and a
// summary line.
//
// switch: a playing arclysrc moved between two live streams against an
// input-selector between two tee branches (see run_switch below).
//
// Usage: latejoin-bench [JOINS]   (default 12; each join point costs ~6 s)
//        latejoin-bench switch [N]  (default 12 switches, ~3 s each)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gst/gst.h>
#include <gst/video/video-event.h>

#ifndef ARCLY_PLUGIN_DIR
#define ARCLY_PLUGIN_DIR ""
#endif

using namespace std::chrono_literals;

namespace {

constexpr const char* kKey = "bench/latejoin";
constexpr GstClockTime kGop = 2 * GST_SECOND;
constexpr auto kMeasureTimeout = 4s;

// Points the build's elements/ dir (next to bench/) at GStreamer before gst_init.
void use_build_plugin(const char* argv0) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string dir;
  const fs::path rel = fs::path(argv0).parent_path() / ".." / "elements";
  if (fs::is_directory(rel, ec)) dir = fs::canonical(rel, ec).string();
  if (dir.empty() && fs::is_directory(ARCLY_PLUGIN_DIR, ec)) dir = ARCLY_PLUGIN_DIR;
  if (dir.empty()) return;
  const char* old = g_getenv("GST_PLUGIN_PATH");
  const std::string value = old && *old ? dir + ":" + old : dir;
  g_setenv("GST_PLUGIN_PATH", value.c_str(), TRUE);
}

GstClockTime now_ns(GstClock* clock) {
  return gst_clock_get_time(clock);
}

// Publisher-side state shared with the probes.
struct Publisher {
  GstElement* pipeline = nullptr;
  GstElement* tee = nullptr;
  GstElement* sink = nullptr;  // arclysink
  GstClock* clock = nullptr;   // the system clock (every pipeline here uses it)
  std::atomic<GstClockTime> base_time{0};
  std::atomic<GstClockTime> newest_ts{GST_CLOCK_TIME_NONE};  // publisher ts of the newest frame
  std::mutex m;
  std::condition_variable cv;
  GstClockTime last_key_at = GST_CLOCK_TIME_NONE;  // clock time the last keyframe left the encoder
  GstClockTime prev_key_at = GST_CLOCK_TIME_NONE;
  std::uint64_t keyframes = 0;
  std::vector<double> gops_ms;  // keyframe intervals seen
};

// A buffer's clock time in the publisher pipeline: running time (x264enc's
// segment starts at 1000 h) + base time, what arclysink publishes.
GstClockTime clock_time_of(GstPad* pad, GstBuffer* buf, GstClockTime base_time) {
  if (!GST_BUFFER_PTS_IS_VALID(buf)) return GST_CLOCK_TIME_NONE;
  GstEvent* ev = gst_pad_get_sticky_event(pad, GST_EVENT_SEGMENT, 0);
  if (!ev) return GST_CLOCK_TIME_NONE;
  const GstSegment* seg = nullptr;
  gst_event_parse_segment(ev, &seg);
  const GstClockTime rt = gst_segment_to_running_time(seg, GST_FORMAT_TIME, GST_BUFFER_PTS(buf));
  gst_event_unref(ev);
  return GST_CLOCK_TIME_IS_VALID(rt) ? rt + base_time : GST_CLOCK_TIME_NONE;
}

GstPadProbeReturn on_encoded(GstPad* pad, GstPadProbeInfo* info, gpointer data) {
  auto* pub = static_cast<Publisher*>(data);
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  const GstClockTime ts = clock_time_of(pad, buf, pub->base_time.load());
  if (GST_CLOCK_TIME_IS_VALID(ts)) pub->newest_ts.store(ts);
  if (!GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT)) {
    const GstClockTime t = now_ns(pub->clock);
    std::lock_guard lock(pub->m);
    if (GST_CLOCK_TIME_IS_VALID(pub->last_key_at))
      pub->gops_ms.push_back(static_cast<double>(t - pub->last_key_at) / 1e6);
    pub->prev_key_at = pub->last_key_at;
    pub->last_key_at = t;
    ++pub->keyframes;
    pub->cv.notify_all();
  }
  return GST_PAD_PROBE_OK;
}

// One measurement, filled by the decoder's src-pad probe.
struct Join {
  Publisher* pub = nullptr;
  bool meta = false;  // arclysrc: publisher ts from the reference meta
  GstClockTime t0 = 0;
  std::mutex m;
  std::condition_variable cv;
  double first_ms = -1;
  double edge_ms = -1;
  std::uint64_t pictures = 0;
};

GstCaps* publisher_meta_caps() {
  static GstCaps* caps = gst_caps_new_empty_simple("timestamp/x-arcly-publisher");
  return caps;
}

GstPadProbeReturn on_picture(GstPad* pad, GstPadProbeInfo* info, gpointer data) {
  auto* j = static_cast<Join*>(data);
  const GstClockTime t = now_ns(j->pub->clock);
  const GstClockTime newest = j->pub->newest_ts.load();
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  GstClockTime ts = GST_CLOCK_TIME_NONE;
  if (j->meta) {
    GstReferenceTimestampMeta* m =
        gst_buffer_get_reference_timestamp_meta(buf, publisher_meta_caps());
    if (m) ts = m->timestamp;
  } else {
    ts = clock_time_of(pad, buf, j->pub->base_time.load());
  }
  std::lock_guard lock(j->m);
  ++j->pictures;
  if (j->first_ms < 0) j->first_ms = static_cast<double>(t - j->t0) / 1e6;
  if (j->edge_ms < 0 && GST_CLOCK_TIME_IS_VALID(ts) && ts >= newest) {
    j->edge_ms = static_cast<double>(t - j->t0) / 1e6;
    j->cv.notify_all();
    return GST_PAD_PROBE_REMOVE;
  }
  return GST_PAD_PROBE_OK;
}

void wait_done(Join& j) {
  std::unique_lock lock(j.m);
  j.cv.wait_for(lock, kMeasureTimeout, [&] { return j.edge_ms >= 0; });
}

GstElement* make(const char* factory, const char* name = nullptr) {
  GstElement* e = gst_element_factory_make(factory, name);
  if (!e) {
    std::fprintf(stderr, "latejoin-bench: element %s not found (GST_PLUGIN_PATH=%s)\n", factory,
                 g_getenv("GST_PLUGIN_PATH"));
    std::exit(1);
  }
  return e;
}

GstElement* make_decoder() {
  GstElement* dec = make("avdec_h264");
  g_object_set(dec, "output-corrupt", FALSE, "max-errors", -1, nullptr);
  return dec;
}

// Sleeps until `phase` after a keyframe (the last one if that moment is still
// ahead, else the next one). Returns the keyframe's clock time. `Source` has
// `m`, `cv`, `clock`, `last_key_at` and the keyframe count named by `keyframes`.
template <class Source>
GstClockTime wait_for_phase(Source& src, std::uint64_t Source::*keyframes, GstClockTime phase) {
  for (;;) {
    std::unique_lock lock(src.m);
    const GstClockTime key = src.last_key_at;
    const GstClockTime now = now_ns(src.clock);
    if (GST_CLOCK_TIME_IS_VALID(key) && key + phase > now + 2 * GST_MSECOND) {
      const std::uint64_t n = src.*keyframes;
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::nanoseconds(key + phase - now));
      std::lock_guard again(src.m);
      if (src.*keyframes == n) return key;  // no keyframe in between: on phase
      continue;
    }
    const std::uint64_t n = src.*keyframes;
    src.cv.wait(lock, [&] { return src.*keyframes != n; });
  }
}

struct Result {
  double phase_ms = 0;
  double first_ms = -1;
  double edge_ms = -1;
};

Result join_tee(Publisher& pub, GstClockTime phase, bool force_key_unit) {
  GstElement* queue = make("queue");
  GstElement* parse = make("h264parse");
  GstElement* dec = make_decoder();
  GstElement* sink = make("fakesink");
  g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
  gst_bin_add_many(GST_BIN(pub.pipeline), queue, parse, dec, sink, nullptr);
  gst_element_link_many(queue, parse, dec, sink, nullptr);
  Join j;
  j.pub = &pub;
  GstPad* decsrc = gst_element_get_static_pad(dec, "src");
  gst_pad_add_probe(decsrc, GST_PAD_PROBE_TYPE_BUFFER, on_picture, &j, nullptr);
  gst_object_unref(decsrc);
  GstPad* teepad = gst_element_request_pad_simple(pub.tee, "src_%u");
  GstPad* qsink = gst_element_get_static_pad(queue, "sink");

  const GstClockTime key = wait_for_phase(pub, &Publisher::keyframes, phase);
  j.t0 = now_ns(pub.clock);
  for (GstElement* e : {sink, dec, parse, queue}) gst_element_sync_state_with_parent(e);
  gst_pad_link(teepad, qsink);
  if (force_key_unit)
    gst_pad_push_event(qsink,
                       gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
  wait_done(j);

  // Unlink while the tee is not pushing into the branch, then drop the branch.
  std::atomic<bool> unlinked{false};
  struct Ctx {
    GstPad* qsink;
    std::atomic<bool>* done;
  } ctx{qsink, &unlinked};
  gst_pad_add_probe(
      teepad, GST_PAD_PROBE_TYPE_IDLE,
      [](GstPad* pad, GstPadProbeInfo*, gpointer data) {
        auto* c = static_cast<Ctx*>(data);
        gst_pad_unlink(pad, c->qsink);
        c->done->store(true);
        return GST_PAD_PROBE_REMOVE;
      },
      &ctx, nullptr);
  while (!unlinked.load()) std::this_thread::sleep_for(1ms);
  gst_element_release_request_pad(pub.tee, teepad);
  gst_object_unref(teepad);
  gst_object_unref(qsink);
  for (GstElement* e : {queue, parse, dec, sink}) {
    gst_element_set_state(e, GST_STATE_NULL);
    gst_bin_remove(GST_BIN(pub.pipeline), e);
  }
  std::lock_guard lock(j.m);
  return {static_cast<double>(j.t0 - key) / 1e6, j.first_ms, j.edge_ms};
}

Result join_arcly(Publisher& pub, GstClockTime phase) {
  GError* err = nullptr;
  GstElement* p = gst_parse_launch((std::string("arclysrc stream=") + kKey +
                                    " ! h264parse ! avdec_h264 name=dec output-corrupt=false "
                                    "max-errors=-1 ! fakesink sync=false "
                                    "async=false")
                                       .c_str(),
                                   &err);
  if (!p) {
    std::fprintf(stderr, "latejoin-bench: %s\n", err->message);
    std::exit(1);
  }
  gst_pipeline_use_clock(GST_PIPELINE(p), pub.clock);
  Join j;
  j.pub = &pub;
  j.meta = true;
  GstElement* dec = gst_bin_get_by_name(GST_BIN(p), "dec");
  GstPad* decsrc = gst_element_get_static_pad(dec, "src");
  gst_pad_add_probe(decsrc, GST_PAD_PROBE_TYPE_BUFFER, on_picture, &j, nullptr);
  gst_object_unref(decsrc);
  gst_object_unref(dec);

  const GstClockTime key = wait_for_phase(pub, &Publisher::keyframes, phase);
  j.t0 = now_ns(pub.clock);
  gst_element_set_state(p, GST_STATE_PLAYING);
  wait_done(j);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  std::lock_guard lock(j.m);
  return {static_cast<double>(j.t0 - key) / 1e6, j.first_ms, j.edge_ms};
}

double median(std::vector<double> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Missed measurements (timeout) count as the timeout for the max and median.
std::vector<double> column(const std::vector<Result>& rs, bool edge) {
  std::vector<double> v;
  for (const auto& r : rs) {
    const double x = edge ? r.edge_ms : r.first_ms;
    v.push_back(x < 0 ? std::chrono::duration<double, std::milli>(kMeasureTimeout).count() : x);
  }
  return v;
}

std::string cell(double ms) {
  char b[32];
  if (ms < 0)
    std::snprintf(b, sizeof b, "%9s", "timeout");
  else
    std::snprintf(b, sizeof b, "%9.1f", ms);
  return b;
}

// --- switch: a playing subscriber moved to another live stream ---
//
// Two live 720p30 publishers in one pipeline (A: bars moving right, B: bars
// moving left; each x264enc as above, 2 s GOP) each feed a tee with two
// branches: `queue ! arclysink stream=bench/switch-a|b` and `queue !
// input-selector` (the selector branch: input-selector ! h264parse ! avdec_h264
// ! fakesink, the best a plain pipeline does). A probe on each tee's sink pad
// tags every encoded buffer with a reference-timestamp meta `x-bench/source`
// = source * 1e6 + GOP number (metas travel through arcly and decoders).
// A separate pipeline plays `arclysrc ! h264parse ! avdec_h264 ! fakesink`.
// At each of a dozen phases of the target stream's GOP the selector's
// active-pad, then arclysrc's `stream`, are switched to the other source (A->B,
// B->A, ...); measured from the switch call to the decoder's first *correct*
// picture of the new source: one tagged with the new source and a GOP whose
// keyframe entered that decoder after the switch (the selector hands the
// decoder the new source's deltas first; those pictures are not the new
// stream's, they are garbage or dropped by output-corrupt=false).

struct SwitchSource {
  int id = 0;
  std::mutex m;
  std::condition_variable cv;
  GstClockTime last_key_at = GST_CLOCK_TIME_NONE;
  std::uint64_t gops = 0;  // keyframes seen
  GstClock* clock = nullptr;
};

constexpr guint64 kSourceScale = 1000000;

GstCaps* source_meta_caps() {
  static GstCaps* caps = gst_caps_new_empty_simple("x-bench/source");
  return caps;
}

GstPadProbeReturn tag_source(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* s = static_cast<SwitchSource*>(data);
  GstBuffer* buf = gst_buffer_make_writable(GST_PAD_PROBE_INFO_BUFFER(info));
  GST_PAD_PROBE_INFO_DATA(info) = buf;
  std::uint64_t gop = 0;
  {
    std::lock_guard lock(s->m);
    if (!GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT)) {
      ++s->gops;
      s->last_key_at = now_ns(s->clock);
      s->cv.notify_all();
    }
    gop = s->gops;
  }
  gst_buffer_add_reference_timestamp_meta(buf, source_meta_caps(),
                                          static_cast<guint64>(s->id) * kSourceScale + gop,
                                          GST_CLOCK_TIME_NONE);
  return GST_PAD_PROBE_OK;
}

bool source_tag(GstBuffer* buf, int* id, std::uint64_t* gop) {
  GstReferenceTimestampMeta* m = gst_buffer_get_reference_timestamp_meta(buf, source_meta_caps());
  if (!m) return false;
  *id = static_cast<int>(m->timestamp / kSourceScale);
  *gop = m->timestamp % kSourceScale;
  return true;
}

// One decoder watched through a switch.
struct SwitchWatch {
  GstClock* clock = nullptr;
  std::mutex m;
  std::condition_variable cv;
  bool armed = false;
  int target = 0;
  GstClockTime t0 = 0;
  std::vector<std::uint64_t> keys_in;  // target GOPs whose keyframe entered after t0
  double first_ms = -1;
};

GstPadProbeReturn watch_decoder_in(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* w = static_cast<SwitchWatch*>(data);
  GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
  int id = 0;
  std::uint64_t gop = 0;
  if (GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT) || !source_tag(buf, &id, &gop))
    return GST_PAD_PROBE_OK;
  std::lock_guard lock(w->m);
  if (w->armed && id == w->target) w->keys_in.push_back(gop);
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn watch_decoder_out(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* w = static_cast<SwitchWatch*>(data);
  const GstClockTime t = now_ns(w->clock);
  int id = 0;
  std::uint64_t gop = 0;
  if (!source_tag(GST_PAD_PROBE_INFO_BUFFER(info), &id, &gop)) return GST_PAD_PROBE_OK;
  std::lock_guard lock(w->m);
  if (!w->armed || w->first_ms >= 0 || id != w->target) return GST_PAD_PROBE_OK;
  if (std::find(w->keys_in.begin(), w->keys_in.end(), gop) == w->keys_in.end())
    return GST_PAD_PROBE_OK;
  w->first_ms = static_cast<double>(t - w->t0) / 1e6;
  w->cv.notify_all();
  return GST_PAD_PROBE_OK;
}

void watch_decoder(GstElement* dec, SwitchWatch* w) {
  GstPad* in = gst_element_get_static_pad(dec, "sink");
  GstPad* out = gst_element_get_static_pad(dec, "src");
  gst_pad_add_probe(in, GST_PAD_PROBE_TYPE_BUFFER, watch_decoder_in, w, nullptr);
  gst_pad_add_probe(out, GST_PAD_PROBE_TYPE_BUFFER, watch_decoder_out, w, nullptr);
  gst_object_unref(in);
  gst_object_unref(out);
}

// Arms `w` for `target`, runs `do_switch`, waits for the first correct picture.
template <class Fn>
double measure_switch(SwitchWatch& w, int target, Fn&& do_switch) {
  {
    std::lock_guard lock(w.m);
    w.armed = true;
    w.target = target;
    w.keys_in.clear();
    w.first_ms = -1;
    w.t0 = now_ns(w.clock);
  }
  do_switch();
  std::unique_lock lock(w.m);
  w.cv.wait_for(lock, kMeasureTimeout, [&] { return w.first_ms >= 0; });
  w.armed = false;
  return w.first_ms;
}

int run_switch(int joins) {
  GstClock* clock = gst_system_clock_obtain();
  const std::string enc =
      " ! video/x-raw,width=1280,height=720,framerate=30/1 ! x264enc tune=zerolatency "
      "speed-preset=ultrafast key-int-max=60 bitrate=4000 ";
  // Each literal names whole elements (tests/deps reads them to find the packages).
  const std::string line =
      "videotestsrc is-live=true pattern=smpte horizontal-speed=3" + enc +
      "! tee name=ta ! queue ! arclysink stream=bench/switch-a "
      "videotestsrc is-live=true pattern=smpte horizontal-speed=-3" +
      enc +
      "! tee name=tb ! queue ! arclysink stream=bench/switch-b "
      "input-selector name=sel ! h264parse ! avdec_h264 name=seldec output-corrupt=false "
      "max-errors=-1 ! fakesink sync=false async=false "
      "ta. ! queue ! sel.sink_0  tb. ! queue ! sel.sink_1";
  GError* err = nullptr;
  GstElement* pub = gst_parse_launch(line.c_str(), &err);
  if (!pub) {
    std::fprintf(stderr, "latejoin-bench switch: %s\n", err->message);
    return 1;
  }
  gst_pipeline_use_clock(GST_PIPELINE(pub), clock);
  SwitchSource sources[2];
  const char* tees[2] = {"ta", "tb"};
  for (int i = 0; i < 2; ++i) {
    sources[i].id = i + 1;
    sources[i].clock = clock;
    GstElement* tee = gst_bin_get_by_name(GST_BIN(pub), tees[i]);
    GstPad* pad = gst_element_get_static_pad(tee, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, tag_source, &sources[i], nullptr);
    gst_object_unref(pad);
    gst_object_unref(tee);
  }
  GstElement* sel = gst_bin_get_by_name(GST_BIN(pub), "sel");
  GstPad* sel_pads[2] = {gst_element_get_static_pad(sel, "sink_0"),
                         gst_element_get_static_pad(sel, "sink_1")};
  g_object_set(sel, "active-pad", sel_pads[0], nullptr);
  SwitchWatch sel_watch;
  sel_watch.clock = clock;
  GstElement* seldec = gst_bin_get_by_name(GST_BIN(pub), "seldec");
  watch_decoder(seldec, &sel_watch);
  gst_object_unref(seldec);

  GstElement* sub = gst_parse_launch(
      "arclysrc name=src stream=bench/switch-a ! h264parse ! avdec_h264 name=dec "
      "output-corrupt=false max-errors=-1 ! fakesink sync=false async=false",
      &err);
  if (!sub) {
    std::fprintf(stderr, "latejoin-bench switch: %s\n", err->message);
    return 1;
  }
  gst_pipeline_use_clock(GST_PIPELINE(sub), clock);
  GstElement* src = gst_bin_get_by_name(GST_BIN(sub), "src");
  SwitchWatch arcly_watch;
  arcly_watch.clock = clock;
  GstElement* dec = gst_bin_get_by_name(GST_BIN(sub), "dec");
  watch_decoder(dec, &arcly_watch);
  gst_object_unref(dec);

  gst_element_set_state(pub, GST_STATE_PLAYING);
  gst_element_set_state(sub, GST_STATE_PLAYING);
  std::printf(
      "latejoin-bench switch: two live 1280x720 30 fps H.264 streams (x264enc ultrafast "
      "zerolatency, 2 s GOP, 4 Mbit/s), %d switches, %u hardware threads\n",
      joins, std::thread::hardware_concurrency());
  std::printf(
      "  times in ms from the switch call (active-pad / stream) to the decoder's first "
      "correct picture of the new stream\n");
  std::fflush(stdout);
  std::this_thread::sleep_for(4500ms);  // caches filled, encoders settled

  std::printf("  %8s | %6s | %9s | %9s\n", "phase", "to", "selector", "arcly");
  std::vector<double> sel_ms, arcly_ms;
  for (int i = 0; i < joins; ++i) {
    const int slot = (i * 7) % joins;
    const GstClockTime phase =
        kGop * static_cast<GstClockTime>(2 * slot + 1) / static_cast<GstClockTime>(2 * joins);
    const int to = i % 2 == 0 ? 1 : 0;  // index of the new source
    wait_for_phase(sources[to], &SwitchSource::gops, phase);
    const double s = measure_switch(
        sel_watch, sources[to].id, [&] { g_object_set(sel, "active-pad", sel_pads[to], nullptr); });
    wait_for_phase(sources[to], &SwitchSource::gops, phase);
    const double a = measure_switch(arcly_watch, sources[to].id, [&] {
      g_object_set(src, "stream", to == 1 ? "bench/switch-b" : "bench/switch-a", nullptr);
    });
    sel_ms.push_back(s);
    arcly_ms.push_back(a);
    std::printf("  %8.0f | %6s | %s | %s\n", static_cast<double>(phase) / 1e6, to == 1 ? "B" : "A",
                cell(s).c_str(), cell(a).c_str());
    std::fflush(stdout);
  }
  gst_element_set_state(sub, GST_STATE_NULL);
  gst_element_set_state(pub, GST_STATE_NULL);

  auto fill = [](std::vector<double> v) {
    for (double& x : v)
      if (x < 0) x = std::chrono::duration<double, std::milli>(kMeasureTimeout).count();
    return v;
  };
  const auto sv = fill(sel_ms), av = fill(arcly_ms);
  auto mx = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
  const double sm = median(sv), am = median(av);
  std::printf("  %8s | %6s | %s | %s\n", "median", "", cell(sm).c_str(), cell(am).c_str());
  std::printf("  %8s | %6s | %s | %s\n", "max", "", cell(mx(sv)).c_str(), cell(mx(av)).c_str());
  const double ratio = am > 0 ? sm / am : 0;
  std::printf(
      "  targets: arcly switch first picture median <= 30 ms: %s; >= 20x the selector "
      "(%.1fx): %s\n",
      am <= 30 ? "met" : "MISSED", ratio, ratio >= 20 ? "met" : "MISSED");
  std::printf("switch: first picture median/max ms: selector %.0f/%.0f, arcly %.0f/%.0f (%.1fx)\n",
              sm, mx(sv), am, mx(av), ratio);
  for (GstPad* p : sel_pads) gst_object_unref(p);
  gst_object_unref(sel);
  gst_object_unref(src);
  gst_object_unref(sub);
  gst_object_unref(pub);
  gst_object_unref(clock);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  use_build_plugin(argv[0]);
  gst_init(&argc, &argv);
  // latejoin-bench switch [N]: only the switch figure.
  if (argc > 1 && std::string(argv[1]) == "switch")
    return run_switch(argc > 2 ? std::max(1, std::atoi(argv[2])) : 12);
  const int joins = argc > 1 ? std::max(1, std::atoi(argv[1])) : 12;

  Publisher pub;
  pub.clock = gst_system_clock_obtain();
  GError* err = nullptr;
  pub.pipeline = gst_parse_launch(
      (std::string("videotestsrc is-live=true pattern=smpte horizontal-speed=3 ! "
                   "video/x-raw,width=1280,height=720,framerate=30/1 ! "
                   "x264enc name=enc tune=zerolatency speed-preset=ultrafast key-int-max=60 "
                   "bitrate=4000 ! tee name=t ! queue ! arclysink name=pub stream=") +
       kKey)
          .c_str(),
      &err);
  if (!pub.pipeline) {
    std::fprintf(stderr, "latejoin-bench: %s (is the arcly plugin built? GST_PLUGIN_PATH=%s)\n",
                 err->message, g_getenv("GST_PLUGIN_PATH"));
    return 1;
  }
  gst_pipeline_use_clock(GST_PIPELINE(pub.pipeline), pub.clock);
  pub.tee = gst_bin_get_by_name(GST_BIN(pub.pipeline), "t");
  pub.sink = gst_bin_get_by_name(GST_BIN(pub.pipeline), "pub");
  {
    GstPad* teesink = gst_element_get_static_pad(pub.tee, "sink");
    gst_pad_add_probe(teesink, GST_PAD_PROBE_TYPE_BUFFER, on_encoded, &pub, nullptr);
    gst_object_unref(teesink);
  }
  gst_element_set_state(pub.pipeline, GST_STATE_PLAYING);
  gst_element_get_state(pub.pipeline, nullptr, nullptr, 5 * GST_SECOND);
  pub.base_time.store(gst_element_get_base_time(pub.pipeline));

  std::printf(
      "latejoin-bench: 1280x720 30 fps H.264 (x264enc ultrafast zerolatency, 2 s GOP, "
      "4 Mbit/s), %d join points x 3 subscribers, %u hardware threads\n",
      joins, std::thread::hardware_concurrency());
  std::printf(
      "  decoder: avdec_h264 output-corrupt=false; sinks sync=false; times in ms from the "
      "subscriber going to PLAYING\n");
  std::fflush(stdout);
  std::this_thread::sleep_for(4500ms);  // two keyframes in the GOP cache, encoder settled
  {
    std::lock_guard lock(pub.m);
    pub.gops_ms.clear();
  }

  std::printf("  %8s | %9s | %9s | %9s %9s | (edge: tee %s, tee+fku %s)\n", "phase", "tee",
              "tee+fku", "arcly", "arcly", "= first", "= first");
  std::printf("  %8s | %9s | %9s | %9s %9s |\n", "ms", "first", "first", "first", "edge");
  std::vector<Result> tee, fku, arcly;
  for (int i = 0; i < joins; ++i) {
    // Phases spread over the GOP, visited out of order.
    const int slot = (i * 7) % joins;
    const GstClockTime phase =
        kGop * static_cast<GstClockTime>(2 * slot + 1) / static_cast<GstClockTime>(2 * joins);
    tee.push_back(join_tee(pub, phase, false));
    arcly.push_back(join_arcly(pub, phase));
    fku.push_back(join_tee(pub, phase, true));
    std::printf("  %8.0f | %s | %s | %s %s |%s%s\n", arcly.back().phase_ms,
                cell(tee.back().first_ms).c_str(), cell(fku.back().first_ms).c_str(),
                cell(arcly.back().first_ms).c_str(), cell(arcly.back().edge_ms).c_str(),
                tee.back().edge_ms >= 0 && tee.back().edge_ms - tee.back().first_ms > 0.5
                    ? " tee edge later than first"
                    : "",
                fku.back().edge_ms >= 0 && fku.back().edge_ms - fku.back().first_ms > 0.5
                    ? " fku edge later than first"
                    : "");
    std::fflush(stdout);
  }

  GstStructure* stats = nullptr;
  g_object_get(pub.sink, "stats", &stats, nullptr);
  double bitrate = 0;
  if (stats) {
    gst_structure_get_double(stats, "bitrate", &bitrate);
    gst_structure_free(stats);
  }
  double gop_min = 0, gop_max = 0;
  {
    std::lock_guard lock(pub.m);
    if (!pub.gops_ms.empty()) {
      gop_min = *std::min_element(pub.gops_ms.begin(), pub.gops_ms.end());
      gop_max = *std::max_element(pub.gops_ms.begin(), pub.gops_ms.end());
    }
  }
  gst_element_set_state(pub.pipeline, GST_STATE_NULL);

  const auto tf = column(tee, false), ff = column(fku, false), af = column(arcly, false),
             ae = column(arcly, true);
  auto mx = [](const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); };
  std::printf("  %8s | %s | %s | %s %s |\n", "median", cell(median(tf)).c_str(),
              cell(median(ff)).c_str(), cell(median(af)).c_str(), cell(median(ae)).c_str());
  std::printf("  %8s | %s | %s | %s %s |\n", "max", cell(mx(tf)).c_str(), cell(mx(ff)).c_str(),
              cell(mx(af)).c_str(), cell(mx(ae)).c_str());
  std::printf(
      "  publisher: %.2f Mbit/s, keyframe intervals %.0f..%.0f ms (forced keyframes of "
      "tee+fku included)\n",
      bitrate / 1e6, gop_min, gop_max);
  const bool first_ok = median(af) <= 30 && mx(af) <= 60;
  const bool edge_ok = mx(ae) <= 250;
  std::printf(
      "  targets: arcly first picture median <= 30 ms and max <= 60 ms: %s; arcly live "
      "edge <= 250 ms (every join): %s\n",
      first_ok ? "met" : "MISSED", edge_ok ? "met" : "MISSED");
  std::printf(
      "latejoin: first picture median/max ms: tee %.0f/%.0f, tee+fku %.0f/%.0f, arcly "
      "%.0f/%.0f; arcly live edge %.0f/%.0f\n",
      median(tf), mx(tf), median(ff), mx(ff), median(af), mx(af), median(ae), mx(ae));
  gst_object_unref(pub.tee);
  gst_object_unref(pub.sink);
  gst_object_unref(pub.pipeline);
  gst_object_unref(pub.clock);
  return run_switch(joins);
}
