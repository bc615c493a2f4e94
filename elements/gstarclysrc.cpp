/**
 * SECTION:element-arclysrc
 * @title: arclysrc
 * @see_also: arclysink
 *
 * A live source that subscribes to an arcly stream key published in the same
 * process (by arclysink or an ingest worker). It exposes one sometimes pad per
 * track (`video_%u`, `audio_%u`, `data_%u`) with the publisher's caps, then
 * signals no-more-pads. An unlinked pad does not stop the others.
 *
 * `start` chooses where a late joiner begins: `live-edge` (default) sends the
 * codec configs and the cached keyframe at once — the first picture — and the
 * cached frames up to the live edge are decoded but clipped by the segment, so
 * playback jumps straight to live with no visible fast-forward and audio in sync;
 * `keyframe` replays everything from the cached keyframe at its original spacing
 * (pre-event footage for recorders); `next-keyframe` waits for the next keyframe.
 *
 * Timestamps are re-based onto this pipeline's running time. Every buffer carries
 * the publisher's original timestamp as a #GstReferenceTimestampMeta with caps
 * `timestamp/x-arcly-publisher` (nanoseconds of the publisher's pipeline clock:
 * running time + base time), so applications can line cameras up and measure
 * end-to-end delay. A subscriber that falls behind resumes at the newest
 * keyframe, marks DISCONT and posts an element message `arcly-lagged`
 * (`stream` string, `dropped` guint64, `total-dropped` guint64).
 *
 * When the publisher ends, EOS is sent — unless `persist` is set, in which case
 * the source waits for the next publisher of the key and continues (new caps if
 * they changed, DISCONT). Also available as the URI `arcly://app/stream?engine=NAME`
 * (query keys: engine, wait, start, persist, latency, preroll — each the property
 * of the same name; a URI round-trips through get_uri/set_uri).
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! x264enc tune=zerolatency ! arclysink stream=live/cam \
 *     arclysrc stream=live/cam ! h264parse ! avdec_h264 ! autovideosink
 * ]| Publishes a test camera and watches it.
 * |[
 * gst-launch-1.0 -e ... arclysink stream=live/cam \
 *     arclysrc stream=live/cam start=keyframe ! h264parse ! mp4mux ! filesink location=cam.mp4
 * ]| Records a stream including the cached GOP before the join (pre-event footage).
 * |[
 * gst-launch-1.0 ... arclysrc name=s stream=live/cam s.video_0 ! queue ! h264parse ! avdec_h264 !
 * autovideosink \ s.audio_0 ! queue ! aacparse ! avdec_aac ! autoaudiosink
 * ]| Plays both tracks of an audio+video stream.
 */
// Thin GObject shell around one arcly::Subscription driven by a GstTask. The task
// blocks only in calls that a std::stop_token interrupts (wait_for_stream, recv,
// the wait for PLAYING), so state changes unblock promptly. No exception leaves
// this file: every entry point catches and posts an element error.
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstarclysrc.h"

#include <gst/base/gstflowcombiner.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "arcly/engine.hpp"
#include "arcly/error.hpp"
#include "arcly/stream_key.hpp"
#include "arcly/subscription.hpp"
#include "arcly_element.hpp"
#include "buffer_frame.hpp"
#include "caps_track.hpp"
#include "engine_registry.hpp"
#include "gst_ptr.hpp"
#include "keys.hpp"
#include "timeline.hpp"

GST_DEBUG_CATEGORY_STATIC(gst_arcly_src_debug);
#define GST_CAT_DEFAULT gst_arcly_src_debug

namespace {

enum class StartMode { LiveEdge = 0, Keyframe = 1, NextKeyframe = 2 };

enum {
  PROP_0,
  PROP_STREAM,
  PROP_ENGINE,
  PROP_WAIT,
  PROP_START,
  PROP_PRE_ROLL,
  PROP_PERSIST,
  PROP_LATENCY,
  PROP_IS_LIVE,
  PROP_STATS
};

constexpr gint kDefaultWait = -1;
constexpr guint kDefaultLatencyMs = 30;
constexpr StartMode kDefaultStart = StartMode::LiveEdge;

struct Settings {
  std::string stream_key;
  std::string engine_name = arcly::gst::kDefaultEngineName;
  gint wait_ms = kDefaultWait;
  StartMode start = kDefaultStart;
  bool persist = false;
  guint latency_ms = kDefaultLatencyMs;
  guint preroll_ms = 0;
};

// One source pad = one track of the stream.
struct TrackPad {
  GstPad* pad = nullptr;  // owned by the element once added
  std::uint32_t track = 0;
  arcly::MediaKind kind = arcly::MediaKind::Video;
  std::string caps_desc;
  bool caps_pending = false;   // new caps to push before the next buffer
  bool inband_config = false;  // config payload must be pushed as a HEADER buffer
  arcly::Bytes pending_header;
  bool discont = true;
  bool first_after_start = true;  // segment(s) still to send for the current timeline
  bool edge_segment_after = false;
  GstClockTime last_dts = GST_CLOCK_TIME_NONE;
};

struct Stats {
  std::atomic<std::uint64_t> frames{0};
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::uint64_t> keyframes{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> lag_events{0};
  std::atomic<std::uint64_t> publishers{0};  // publish instances followed
};

// Locking: the properties (`settings`) are protected by the object lock. The
// run control (`playing`, `pauses`, `eos_requested`) is protected by `lock` and
// signalled on `cond`. What READY->PAUSED sets up is written before the task
// starts and only read while it runs; `stop` and `interrupt` are replaced in
// READY->PAUSED under `task_state_lock`. Everything under "task-owned" is used
// by the streaming task only (and by state changes once it is joined).
struct SrcPrivate {
  Settings settings; /* protected by the object lock */

  std::mutex lock;
  std::condition_variable_any cond;
  bool playing = false;       /* protected by lock */
  std::uint64_t pauses = 0;   /* protected by lock: PLAYING->PAUSED changes in this run */
  bool eos_requested = false; /* protected by lock: EOS sent to the element */

  // Set in READY->PAUSED, used by the task only.
  std::shared_ptr<arcly::Engine> engine;
  std::optional<arcly::StreamKey> key;
  arcly::StreamHandle initial_stream;  // wait=0: found synchronously
  Settings run;                        // settings snapshot of this run
  std::stop_source stop;               // the run ends (PAUSED->READY)
  std::stop_source interrupt;          // wakes the task's blocking calls: stop, or EOS

  GstTask* task = nullptr;
  GRecMutex task_lock;
  std::mutex task_state_lock;  // orders the task's self-pause against stop

  // Task-owned state.
  std::optional<arcly::Subscription> sub;
  std::uint64_t last_instance = 0;
  std::deque<arcly::FrameRef> backlog;  // read ahead at (re)start
  bool restart = false;                 // next start continues the running time
  std::uint64_t seen_pauses = 0;        // `pauses` when the subscription started
  arcly::StreamHandle resume_stream;    // after a pause: the publisher to join again
  bool resuming = false;                // the next timeline starts at the live edge
  bool live_edge_timeline = false;      // the current timeline clips up to the live edge
  bool failed = false;                  // an error was posted: the task only pauses
  arcly::gst::Timeline timeline;
  std::map<std::uint32_t, TrackPad> pads;
  std::map<arcly::MediaKind, guint> pad_counts;
  GstFlowCombiner* combiner = nullptr;
  bool no_more_pads = false;
  std::int64_t no_more_pads_at = 0;  // publisher ts after which the track set is final
  guint group_id = 0;
  GstClockTime max_out = 0;  // highest output pts so far
  GstClockTime max_rt = 0;   // highest running time so far

  Stats stats;
};

GstCaps* publisher_meta_caps() {
  static GstCaps* caps = gst_caps_new_empty_simple("timestamp/x-arcly-publisher");
  return caps;
}

}  // namespace

struct _GstArclySrc {
  GstElement parent;
  SrcPrivate* priv;
};

static void gst_arcly_src_uri_handler_init(gpointer iface, gpointer data);

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wpedantic"
G_DEFINE_TYPE_WITH_CODE(GstArclySrc, gst_arcly_src, GST_TYPE_ELEMENT,
                        G_IMPLEMENT_INTERFACE(GST_TYPE_URI_HANDLER, gst_arcly_src_uri_handler_init))
GST_ELEMENT_REGISTER_DEFINE(arclysrc, "arclysrc", GST_RANK_NONE, GST_TYPE_ARCLY_SRC)
#pragma GCC diagnostic pop

GType gst_arcly_src_start_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {static_cast<gint>(StartMode::LiveEdge),
       "Configs and the cached keyframe at once (first picture), cached frames decoded "
       "but not shown, then live",
       "live-edge"},
      {static_cast<gint>(StartMode::Keyframe),
       "Everything from the cached keyframe on, at its original spacing (pre-event footage)",
       "keyframe"},
      {static_cast<gint>(StartMode::NextKeyframe), "No cache: wait for the next keyframe",
       "next-keyframe"},
      {0, nullptr, nullptr}};
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstArclySrcStart", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

static GstStaticPadTemplate video_template =
    GST_STATIC_PAD_TEMPLATE("video_%u", GST_PAD_SRC, GST_PAD_SOMETIMES, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate audio_template =
    GST_STATIC_PAD_TEMPLATE("audio_%u", GST_PAD_SRC, GST_PAD_SOMETIMES, GST_STATIC_CAPS_ANY);
static GstStaticPadTemplate data_template =
    GST_STATIC_PAD_TEMPLATE("data_%u", GST_PAD_SRC, GST_PAD_SOMETIMES, GST_STATIC_CAPS_ANY);

namespace {

GstElement* element_of(GstArclySrc* self) {
  return &self->parent;
}

// Outcome of one task step.
enum class Step { Continue, Pause };

// Live-source semantics: the task pushes nothing until PLAYING. FALSE when
// interrupted (stop, or an EOS to push).
bool wait_playing(SrcPrivate* p) {
  std::unique_lock lock(p->lock);
  p->cond.wait(lock, p->interrupt.get_token(), [p] { return p->playing || p->eos_requested; });
  return p->playing && !p->eos_requested;
}

bool eos_requested(SrcPrivate* p) {
  std::lock_guard lock(p->lock);
  return p->eos_requested;
}

GstClockTime running_time_now(GstElement* element) {
  GstClock* clock = gst_element_get_clock(element);
  if (!clock) return 0;
  const GstClockTime now = gst_clock_get_time(clock);
  gst_object_unref(clock);
  const GstClockTime base = gst_element_get_base_time(element);
  return now > base ? now - base : 0;
}

gboolean src_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  auto* self = reinterpret_cast<GstArclySrc*>(parent);
  if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
    GST_OBJECT_LOCK(self);
    const guint ms = self->priv->settings.latency_ms;
    GST_OBJECT_UNLOCK(self);
    gst_query_set_latency(query, TRUE, ms * GST_MSECOND, GST_CLOCK_TIME_NONE);
    return TRUE;
  }
  return gst_pad_query_default(pad, parent, query);
}

gboolean src_event(GstPad* pad, GstObject* parent, GstEvent* event) {
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_SEEK:  // a live stream cannot seek
      gst_event_unref(event);
      return FALSE;
    case GST_EVENT_QOS:
    case GST_EVENT_NAVIGATION:
    case GST_EVENT_RECONFIGURE:
      gst_event_unref(event);
      return TRUE;
    default:
      return gst_pad_event_default(pad, parent, event);
  }
}

TrackPad& add_pad(GstArclySrc* self, const arcly::TrackInfo& info, GstCaps* caps) {
  SrcPrivate* p = self->priv;
  GstElementClass* klass = GST_ELEMENT_GET_CLASS(element_of(self));
  const std::string prefix(arcly::gst::pad_prefix(info.kind));
  const guint index = p->pad_counts[info.kind]++;
  gchar* name = g_strdup_printf("%s_%u", prefix.c_str(), index);
  GstPadTemplate* templ = gst_element_class_get_pad_template(klass, (prefix + "_%u").c_str());
  GstPad* pad = gst_pad_new_from_template(templ, name);
  g_free(name);
  gst_pad_set_query_function(pad, GST_DEBUG_FUNCPTR(src_query));
  gst_pad_set_event_function(pad, GST_DEBUG_FUNCPTR(src_event));
  gst_pad_use_fixed_caps(pad);
  gst_pad_set_active(pad, TRUE);
  // The pad functions dereference the element: never call them without a
  // parent. (Set after activating: activation itself needs the parent then.)
  GST_OBJECT_FLAG_SET(pad, GST_PAD_FLAG_NEED_PARENT);

  gchar* stream_id = gst_pad_create_stream_id_printf(pad, element_of(self), "%s/%u",
                                                     p->run.stream_key.c_str(), info.track);
  GstEvent* start = gst_event_new_stream_start(stream_id);
  g_free(stream_id);
  gst_event_set_group_id(start, p->group_id);
  gst_event_set_stream_flags(start, GST_STREAM_FLAG_NONE);
  gst_pad_push_event(pad, start);
  gst_pad_push_event(pad, gst_event_new_caps(caps));

  TrackPad tp;
  tp.pad = pad;
  tp.track = info.track;
  tp.kind = info.kind;
  tp.caps_desc = info.description;
  tp.inband_config = arcly::gst::needs_inband_config(info);
  auto [it, inserted] = p->pads.insert_or_assign(info.track, tp);

  gst_flow_combiner_add_pad(p->combiner, pad);
  GST_INFO_OBJECT(self, "track %u -> pad %s caps %" GST_PTR_FORMAT, info.track, GST_PAD_NAME(pad),
                  static_cast<void*>(caps));
  gst_element_add_pad(element_of(self), pad);
  return it->second;
}

void on_config(GstArclySrc* self, const arcly::FrameRef& frame) {
  SrcPrivate* p = self->priv;
  const arcly::MediaFrame& f = *frame;
  auto it = p->pads.find(f.track);
  if (f.info) {
    if (it == p->pads.end()) {
      arcly::gst::CapsPtr caps(arcly::gst::caps_from_track(*f.info));
      if (!caps) {
        GST_WARNING_OBJECT(self, "track %u has unparsable caps '%s', ignored", f.track,
                           f.info->description.c_str());
        return;
      }
      it = p->pads.find(add_pad(self, *f.info, caps.get()).track);
    } else if (it->second.caps_desc != f.info->description) {
      it->second.caps_desc = f.info->description;
      it->second.caps_pending = true;
      it->second.inband_config = arcly::gst::needs_inband_config(*f.info);
    }
  }
  if (it == p->pads.end()) return;
  if (it->second.inband_config && !f.payload.empty()) it->second.pending_header = f.payload;
}

GstFlowReturn push(GstArclySrc* self, TrackPad& tp, GstBuffer* buffer) {
  GstFlowReturn ret = gst_pad_push(tp.pad, buffer);
  return gst_flow_combiner_update_pad_flow(self->priv->combiner, tp.pad, ret);
}

void push_segment(TrackPad& tp, const GstSegment& segment) {
  gst_pad_push_event(tp.pad, gst_event_new_segment(&segment));
}

// Starts the timeline at the first media frame after a (re)subscription.
void start_timeline(GstArclySrc* self, const arcly::MediaFrame& first, bool from_cache) {
  SrcPrivate* p = self->priv;
  std::int64_t anchor = first.pts;
  std::int64_t edge = anchor;
  // A resume after a pause joins at the live edge whatever `start` says.
  p->live_edge_timeline = p->run.start == StartMode::LiveEdge || p->resuming;
  p->resuming = false;
  if (p->live_edge_timeline) {
    // The live edge: newest cached frame (video if there is video).
    bool have_video = false;
    std::int64_t video_edge = anchor, any_edge = anchor;
    for (const auto& ref : p->backlog) {
      if (ref->is_config()) continue;
      any_edge = std::max(any_edge, ref->pts);
      if (ref->kind == arcly::MediaKind::Video) {
        have_video = true;
        video_edge = std::max(video_edge, ref->pts);
      }
    }
    edge = have_video || first.kind == arcly::MediaKind::Video ? video_edge : any_edge;
  }
  GstClockTime base = running_time_now(element_of(self));
  GstClockTime floor = 0;
  if (p->restart) {
    base = std::max(base, p->max_rt + 1);
    floor = p->max_out + GST_MSECOND;
  }
  p->timeline.start(anchor, edge, base, floor);
  for (auto& [track, tp] : p->pads) {
    tp.first_after_start = true;
    tp.discont = true;
  }
  GST_INFO_OBJECT(
      self,
      "timeline: anchor %" G_GINT64_FORMAT " edge +%" GST_TIME_FORMAT " base %" GST_TIME_FORMAT,
      anchor, GST_TIME_ARGS(static_cast<GstClockTime>(edge - anchor)), GST_TIME_ARGS(base));
  // Joining a running stream, the cache announced every track already. Joining
  // a stream that is just starting, its other tracks may still be on their way:
  // give them a second of stream time before declaring the pad set complete.
  const bool joined_running = from_cache || p->restart;
  p->no_more_pads_at = joined_running ? anchor : anchor + static_cast<std::int64_t>(GST_SECOND);
}

GstFlowReturn on_media(GstArclySrc* self, const arcly::FrameRef& frame, bool discont) {
  SrcPrivate* p = self->priv;
  const arcly::MediaFrame& f = *frame;
  if (!p->timeline.started()) start_timeline(self, f, p->sub && p->sub->from_cache(frame));
  if (!p->no_more_pads && !p->pads.empty() && f.pts >= p->no_more_pads_at) {
    p->no_more_pads = true;
    gst_element_no_more_pads(element_of(self));
  }
  auto it = p->pads.find(f.track);
  if (it == p->pads.end()) {
    GST_LOG_OBJECT(self, "frame of track %u without a pad (no config yet), dropped", f.track);
    return GST_FLOW_OK;
  }
  TrackPad& tp = it->second;
  const arcly::gst::Timeline& tl = p->timeline;

  const GstClockTime pts = tl.out(f.pts);
  if (!GST_CLOCK_TIME_IS_VALID(pts)) return GST_FLOW_OK;  // far before the anchor
  GstClockTime dts = f.dts ? tl.out(*f.dts) : GST_CLOCK_TIME_NONE;
  // Decode timestamps must not go backwards on a pad.
  if (GST_CLOCK_TIME_IS_VALID(dts) && GST_CLOCK_TIME_IS_VALID(tp.last_dts) && dts < tp.last_dts)
    dts = tp.last_dts;

  if (tp.caps_pending) {
    arcly::TrackInfo info;
    info.description = tp.caps_desc;
    arcly::gst::CapsPtr caps(arcly::gst::caps_from_track(info));
    if (caps) gst_pad_push_event(tp.pad, gst_event_new_caps(caps.get()));
    tp.caps_pending = false;
  }
  if (tp.first_after_start) {
    tp.first_after_start = false;
    const bool live_edge = p->live_edge_timeline;
    if (live_edge && tp.kind == arcly::MediaKind::Video && f.pts < tl.edge()) {
      // Show this (key)frame at once, then clip up to the live edge.
      push_segment(tp, tl.segment_from(f.pts));
      tp.edge_segment_after = true;
    } else {
      push_segment(tp, tl.segment_from(live_edge ? tl.edge() : tl.anchor()));
    }
  }

  GstBuffer* buffer = arcly::gst::buffer_from_frame(frame);
  GST_BUFFER_PTS(buffer) = pts;
  GST_BUFFER_DTS(buffer) = dts;
  if (f.duration > 0) GST_BUFFER_DURATION(buffer) = static_cast<GstClockTime>(f.duration);
  if (!f.is_keyframe()) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  if (any(f.flags & arcly::FrameFlags::Corrupt))
    GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_CORRUPTED);
  if (any(f.flags & arcly::FrameFlags::Header)) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_HEADER);
  if (p->live_edge_timeline && f.pts < tl.edge() && !tp.edge_segment_after)
    GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DECODE_ONLY);
  gst_buffer_add_reference_timestamp_meta(buffer, publisher_meta_caps(),
                                          static_cast<GstClockTime>(f.pts), GST_CLOCK_TIME_NONE);

  const bool mark_discont = discont || tp.discont;
  tp.discont = false;
  if (mark_discont) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DISCONT);

  if (!tp.pending_header.empty() && f.is_keyframe()) {
    // In-band parameter sets go in front of the keyframe, in the same access unit
    // (what a byte-stream keyframe looks like anyway); the payload stays zero-copy.
    GstBuffer* header = arcly::gst::buffer_from_bytes(tp.pending_header);
    tp.pending_header = {};
    gst_buffer_prepend_memory(buffer, gst_buffer_get_memory(header, 0));
    gst_buffer_unref(header);
  }

  p->stats.frames.fetch_add(1, std::memory_order_relaxed);
  p->stats.bytes.fetch_add(f.payload.size(), std::memory_order_relaxed);
  if (f.is_keyframe()) p->stats.keyframes.fetch_add(1, std::memory_order_relaxed);
  p->max_out = std::max(p->max_out, pts);
  if (GST_CLOCK_TIME_IS_VALID(dts)) tp.last_dts = dts;

  GstFlowReturn ret = push(self, tp, buffer);
  if (tp.edge_segment_after) {
    tp.edge_segment_after = false;
    push_segment(tp, tl.segment_from(tl.edge()));
  }
  if (pts >= tl.out(tl.edge())) {
    const GstClockTime rt = pts - tl.out(tl.edge()) + tl.base();
    p->max_rt = std::max(p->max_rt, rt);
  } else {
    p->max_rt = std::max(p->max_rt, tl.base());
  }
  return ret;
}

void post_lagged(GstArclySrc* self, std::uint64_t dropped) {
  SrcPrivate* p = self->priv;
  p->stats.lag_events.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t total =
      p->stats.dropped.fetch_add(dropped, std::memory_order_relaxed) + dropped;
  GST_WARNING_OBJECT(self,
                     "subscriber lagged: %" G_GUINT64_FORMAT
                     " frames dropped, resuming at "
                     "the newest keyframe",
                     dropped);
  GstStructure* s =
      gst_structure_new("arcly-lagged", "stream", G_TYPE_STRING, p->run.stream_key.c_str(),
                        "dropped", G_TYPE_UINT64, static_cast<guint64>(dropped), "total-dropped",
                        G_TYPE_UINT64, static_cast<guint64>(total), nullptr);
  gst_element_post_message(element_of(self), gst_message_new_element(GST_OBJECT(self), s));
}

void push_eos_all(GstArclySrc* self) {
  for (auto& [track, tp] : self->priv->pads) gst_pad_push_event(tp.pad, gst_event_new_eos());
}

// Finds the publisher; null when interrupted, or failed (error posted, `failed` set).
arcly::StreamHandle acquire_stream(GstArclySrc* self) {
  SrcPrivate* p = self->priv;
  if (p->initial_stream) return std::exchange(p->initial_stream, nullptr);
  if (p->resume_stream) return std::exchange(p->resume_stream, nullptr);
  const auto stop = p->interrupt.get_token();
  // After the first publisher, persist waits for the next one without limit.
  const bool forever = p->restart || p->run.wait_ms < 0;
  const auto timeout = std::chrono::milliseconds(forever ? -1 : p->run.wait_ms);
  while (!stop.stop_requested()) {
    try {
      arcly::StreamHandle s = p->run.wait_ms == 0 && !p->restart
                                  ? p->engine->get_stream(*p->key)
                                  : p->engine->wait_for_stream(*p->key, timeout, stop);
      if (s && s->instance() != p->last_instance && !s->closed()) return s;
      // The old publish is still registered while it winds down: look again shortly.
      std::unique_lock lock(p->lock);
      p->cond.wait_for(lock, stop, std::chrono::milliseconds(20), [] { return false; });
    } catch (const arcly::Error& e) {
      if (e.code() == arcly::Errc::Cancelled || stop.stop_requested()) return nullptr;
      p->failed = true;
      if (e.code() == arcly::Errc::Timeout || e.code() == arcly::Errc::StreamNotFound) {
        GST_ELEMENT_ERROR(element_of(self), RESOURCE, NOT_FOUND,
                          ("stream %s is not being published (waited %d ms)",
                           p->run.stream_key.c_str(), p->run.wait_ms),
                          ("%s", e.what()));
      } else {
        GST_ELEMENT_ERROR(element_of(self), RESOURCE, OPEN_READ,
                          ("cannot play stream %s", p->run.stream_key.c_str()), ("%s", e.what()));
      }
      return nullptr;
    }
  }
  return nullptr;
}

// Subscribes and reads what the cache offers right now (configs, cached GOP, the
// first live frame), so the live edge is known before anything is pushed.
// FALSE when the publish ended before we could join it.
bool subscribe(GstArclySrc* self, const arcly::StreamHandle& stream) {
  SrcPrivate* p = self->priv;
  arcly::SubscribeOptions options;
  options.start = p->run.start == StartMode::NextKeyframe && !p->resuming
                      ? arcly::StartAt::NextKeyframe
                      : arcly::StartAt::Keyframe;
  options.resilient = true;
  if (p->run.start == StartMode::Keyframe && !p->resuming)
    options.preroll = std::chrono::milliseconds(p->run.preroll_ms);
  {
    std::lock_guard lock(p->lock);
    p->seen_pauses = p->pauses;
  }
  try {
    p->sub.emplace(stream->subscribe(options));
  } catch (const arcly::Error& e) {
    if (e.code() != arcly::Errc::StreamClosed) throw;
    GST_INFO_OBJECT(self, "publish #%" G_GUINT64_FORMAT " of %s ended before we joined it",
                    stream->instance(), p->run.stream_key.c_str());
    p->last_instance = stream->instance();
    return false;
  }
  p->last_instance = stream->instance();
  p->stats.publishers.fetch_add(1, std::memory_order_relaxed);
  p->timeline.reset();
  p->backlog.clear();
  for (;;) {
    arcly::Received r = p->sub->try_recv();
    if (r.status != arcly::RecvStatus::Frame) break;
    const bool live = !r.frame->is_config() && !p->sub->from_cache(r.frame);
    p->backlog.push_back(std::move(r.frame));
    if (live) break;
  }
  GST_INFO_OBJECT(self, "subscribed to %s (publish #%" G_GUINT64_FORMAT "): %zu frames cached",
                  p->run.stream_key.c_str(), stream->instance(), p->backlog.size());
  return true;
}

GstFlowReturn handle(GstArclySrc* self, const arcly::FrameRef& frame, bool discont) {
  if (frame->is_config()) {
    on_config(self, frame);
    return GST_FLOW_OK;
  }
  return on_media(self, frame, discont);
}

Step finish_flow(GstArclySrc* self, GstFlowReturn ret) {
  if (ret == GST_FLOW_OK) return Step::Continue;
  GST_INFO_OBJECT(self, "pausing task: %s", gst_flow_get_name(ret));
  if (ret == GST_FLOW_FLUSHING) return Step::Pause;
  if (ret == GST_FLOW_EOS) {
    push_eos_all(self);
    return Step::Pause;
  }
  if (ret == GST_FLOW_NOT_LINKED || ret < GST_FLOW_EOS) {
    GST_ELEMENT_FLOW_ERROR(element_of(self), ret);
    push_eos_all(self);
  }
  return Step::Pause;
}

// The publisher ended: wait for the next one (persist) or EOS.
Step on_publisher_ended(GstArclySrc* self) {
  SrcPrivate* p = self->priv;
  p->sub.reset();
  p->backlog.clear();
  if (p->run.persist) {
    GST_INFO_OBJECT(self, "publisher of %s ended; waiting for the next one",
                    p->run.stream_key.c_str());
    p->restart = true;
    return Step::Continue;
  }
  GST_INFO_OBJECT(self, "publisher of %s ended: EOS", p->run.stream_key.c_str());
  if (p->pads.empty()) {
    GST_ELEMENT_ERROR(element_of(self), STREAM, FAILED,
                      ("stream %s ended before it had any track", p->run.stream_key.c_str()),
                      ("the publisher sent no caps on any pad"));
  }
  push_eos_all(self);
  return Step::Pause;
}

// After a blocking call returned without a result: an EOS to push or a stop.
Step after_interrupt(SrcPrivate* p) {
  if (p->failed || p->stop.stop_requested()) return Step::Pause;
  return eos_requested(p) ? Step::Continue : Step::Pause;
}

Step step(GstArclySrc* self) {
  SrcPrivate* p = self->priv;
  if (p->stop.stop_requested() || p->failed) return Step::Pause;

  // EOS sent to the element (as basesrc does): pushed on every pad from here,
  // the streaming thread, so nothing follows it.
  if (eos_requested(p)) {
    GST_INFO_OBJECT(self, "EOS requested: pushing EOS on %zu pads", p->pads.size());
    if (p->pads.empty())
      GST_WARNING_OBJECT(self, "EOS requested before any pad existed: nothing to push it on");
    push_eos_all(self);
    return Step::Pause;
  }

  if (p->sub) {
    bool playing = false;
    std::uint64_t pauses = 0;
    {
      std::lock_guard lock(p->lock);
      playing = p->playing;
      pauses = p->pauses;
    }
    if (!playing || pauses != p->seen_pauses) {
      // A live source pushes nothing in PAUSED. Let go of the subscription (no
      // backlog builds up) and join the same publisher again on PLAYING, at the
      // live edge, as a late joiner does: DISCONT, keyframe, clipped catch-up.
      GST_DEBUG_OBJECT(self, "paused: leaving the subscription until PLAYING");
      p->resume_stream = p->sub->stream();
      p->sub.reset();
      p->backlog.clear();
      p->restart = p->restart || p->timeline.started();
      p->resuming = p->timeline.started();
      p->timeline.reset();
      return Step::Continue;
    }
  }

  if (!p->sub) {
    if (!wait_playing(p)) return after_interrupt(p);
    arcly::StreamHandle stream = acquire_stream(self);
    if (!stream) return after_interrupt(p);
    if (!subscribe(self, stream)) return on_publisher_ended(self);
    return Step::Continue;
  }

  if (!p->backlog.empty()) {
    arcly::FrameRef f = std::move(p->backlog.front());
    p->backlog.pop_front();
    return finish_flow(self, handle(self, f, false));
  }

  arcly::Received r =
      p->sub->recv(std::chrono::steady_clock::time_point::max(), p->interrupt.get_token());
  switch (r.status) {
    case arcly::RecvStatus::Frame:
      if (r.discont) {
        for (auto& [track, tp] : p->pads) tp.discont = true;  // every track skipped
        if (r.skipped > 0) post_lagged(self, r.skipped);
      }
      return finish_flow(self, handle(self, r.frame, r.discont));
    case arcly::RecvStatus::Lagged:  // strict mode only; resilient reports via discont
      post_lagged(self, r.skipped);
      for (auto& [track, tp] : p->pads) tp.discont = true;
      return Step::Continue;
    case arcly::RecvStatus::Closed:
      return on_publisher_ended(self);
    case arcly::RecvStatus::Empty:
    case arcly::RecvStatus::Timeout:
      return Step::Continue;
    case arcly::RecvStatus::Cancelled:
      return after_interrupt(p);
  }
  return Step::Continue;
}

void task_loop(gpointer data) {
  auto* self = static_cast<GstArclySrc*>(data);
  SrcPrivate* p = self->priv;
  Step s = Step::Pause;
  try {
    s = step(self);
  } catch (const std::exception& e) {
    p->failed = true;
    GST_ELEMENT_ERROR(element_of(self), STREAM, FAILED,
                      ("playing stream %s failed", p->run.stream_key.c_str()), ("%s", e.what()));
    push_eos_all(self);
  }
  if (s == Step::Pause) {
    // Never turn a stop into a pause: the state change stops under the same lock.
    std::lock_guard lock(p->task_state_lock);
    if (!p->stop.stop_requested()) gst_task_pause(p->task);
  }
}

bool prepare(GstArclySrc* self) {
  SrcPrivate* p = self->priv;
  std::string message;
  bool not_found = false;
  try {
    GST_OBJECT_LOCK(self);
    p->run = p->settings;
    GST_OBJECT_UNLOCK(self);
    p->key = arcly::gst::parse_stream_key(p->run.stream_key, "arclysrc");
    p->engine = arcly::gst::engine_for(p->run.engine_name);
    p->initial_stream.reset();
    if (p->run.wait_ms == 0) {
      not_found = true;
      p->initial_stream = p->engine->get_stream(*p->key);
    }
    return true;
  } catch (const std::exception& e) {
    message = e.what();
  }
  if (not_found)
    GST_ELEMENT_ERROR(element_of(self), RESOURCE, NOT_FOUND, ("%s", message.c_str()),
                      ("arclysrc wait=0: the stream must be published already"));
  else
    GST_ELEMENT_ERROR(element_of(self), RESOURCE, SETTINGS, ("%s", message.c_str()), (nullptr));
  return false;
}

void reset_run(GstArclySrc* self) {
  SrcPrivate* p = self->priv;
  p->sub.reset();
  p->backlog.clear();
  p->initial_stream.reset();
  p->timeline.reset();
  p->restart = false;
  p->seen_pauses = 0;
  p->resume_stream.reset();
  p->resuming = false;
  p->live_edge_timeline = false;
  p->failed = false;
  p->last_instance = 0;
  p->max_out = 0;
  p->max_rt = 0;
  p->no_more_pads = false;
  for (auto& [track, tp] : p->pads) {
    gst_flow_combiner_remove_pad(p->combiner, tp.pad);
    gst_pad_set_active(tp.pad, FALSE);
    gst_element_remove_pad(element_of(self), tp.pad);
  }
  p->pads.clear();
  p->pad_counts.clear();
  gst_flow_combiner_reset(p->combiner);
}

GstStructure* make_stats(GstArclySrc* self) {
  const Stats& s = self->priv->stats;
  return gst_structure_new("arclysrc-stats", "frames", G_TYPE_UINT64,
                           static_cast<guint64>(s.frames.load()), "bytes", G_TYPE_UINT64,
                           static_cast<guint64>(s.bytes.load()), "keyframes", G_TYPE_UINT64,
                           static_cast<guint64>(s.keyframes.load()), "dropped", G_TYPE_UINT64,
                           static_cast<guint64>(s.dropped.load()), "lag-events", G_TYPE_UINT64,
                           static_cast<guint64>(s.lag_events.load()), "publishers", G_TYPE_UINT64,
                           static_cast<guint64>(s.publishers.load()), nullptr);
}

}  // namespace

namespace {

// Stops and joins the task; every blocking call it makes watches `interrupt`.
void stop_task(GstArclySrc* self) {
  SrcPrivate* p = self->priv;
  {
    std::lock_guard state_lock(p->task_state_lock);
    p->stop.request_stop();
    p->interrupt.request_stop();
    gst_task_stop(p->task);
  }
  {
    std::lock_guard lock(p->lock);
    p->cond.notify_all();
  }
  gst_task_join(p->task);
}

void start_task(GstArclySrc* self) {
  SrcPrivate* p = self->priv;
  {
    std::lock_guard lock(p->lock);
    p->playing = false;
    p->pauses = 0;
    p->eos_requested = false;
  }
  {
    std::lock_guard state_lock(p->task_state_lock);
    p->stop = std::stop_source();
    p->interrupt = std::stop_source();
  }
  gchar* name = g_strdup_printf("%s:task", GST_OBJECT_NAME(self));
  gst_object_set_name(GST_OBJECT(p->task), name);
  g_free(name);
  p->group_id = gst_util_group_id_next();
  p->stats.frames = 0;
  p->stats.bytes = 0;
  p->stats.keyframes = 0;
  p->stats.dropped = 0;
  p->stats.lag_events = 0;
  p->stats.publishers = 0;
  gst_task_start(p->task);
}

}  // namespace

static GstStateChangeReturn gst_arcly_src_change_state(GstElement* element,
                                                       GstStateChange transition) {
  auto* self = GST_ARCLY_SRC(element);
  SrcPrivate* p = self->priv;
  GstStateChangeReturn ret = GST_STATE_CHANGE_SUCCESS;

  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY: {
      std::string message;
      GST_OBJECT_LOCK(self);
      const std::string key = p->settings.stream_key;
      GST_OBJECT_UNLOCK(self);
      try {
        arcly::gst::parse_stream_key(key, "arclysrc");
      } catch (const std::exception& e) {
        message = e.what();
      }
      if (!message.empty()) {
        GST_ELEMENT_ERROR(element, RESOURCE, SETTINGS, ("%s", message.c_str()), (nullptr));
        return GST_STATE_CHANGE_FAILURE;
      }
      break;
    }
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      if (!prepare(self)) return GST_STATE_CHANGE_FAILURE;
      start_task(self);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_PLAYING: {
      std::lock_guard lock(p->lock);
      p->playing = true;
      p->cond.notify_all();
      break;
    }
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED: {
      // Before chaining up: the task stops pushing at its next frame.
      std::lock_guard lock(p->lock);
      p->playing = false;
      ++p->pauses;
      break;
    }
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      // Stop the task first so it cannot push while the pads go away.
      stop_task(self);
      break;
    default:
      break;
  }

  ret = GST_ELEMENT_CLASS(gst_arcly_src_parent_class)->change_state(element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) {
    if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
      // The element stays in READY: nothing of this run may keep going.
      stop_task(self);
      reset_run(self);
    }
    return ret;
  }

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED:
      ret = GST_STATE_CHANGE_NO_PREROLL;
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      reset_run(self);
      break;
    case GST_STATE_CHANGE_READY_TO_NULL:
      p->engine.reset();
      p->key.reset();
      break;
    default:
      break;
  }
  return ret;
}

// EOS sent to the element is handled as basesrc does: flagged here, pushed on
// every pad by the streaming thread (GstElement's default would push it on one
// pad from the caller's thread while the task keeps pushing).
static gboolean gst_arcly_src_send_event(GstElement* element, GstEvent* event) {
  auto* self = GST_ARCLY_SRC(element);
  SrcPrivate* p = self->priv;
  if (GST_EVENT_TYPE(event) != GST_EVENT_EOS)
    return GST_ELEMENT_CLASS(gst_arcly_src_parent_class)->send_event(element, event);
  gst_event_unref(event);
  std::lock_guard state_lock(p->task_state_lock);
  if (gst_task_get_state(p->task) == GST_TASK_STOPPED) {
    GST_DEBUG_OBJECT(self, "EOS refused: not streaming");
    return FALSE;
  }
  {
    std::lock_guard lock(p->lock);
    p->eos_requested = true;
    p->cond.notify_all();
  }
  p->interrupt.request_stop();
  return TRUE;
}

namespace {

// Called with the object lock held; `value` is valid for the property.
void set_setting_locked(Settings& s, guint id, const GValue* value) {
  switch (id) {
    case PROP_STREAM: {
      const gchar* v = g_value_get_string(value);
      s.stream_key = v ? v : "";
      break;
    }
    case PROP_ENGINE: {
      const gchar* v = g_value_get_string(value);
      s.engine_name = (v && *v) ? v : arcly::gst::kDefaultEngineName;
      break;
    }
    case PROP_WAIT:
      s.wait_ms = g_value_get_int(value);
      break;
    case PROP_START:
      s.start = static_cast<StartMode>(g_value_get_enum(value));
      break;
    case PROP_PERSIST:
      s.persist = g_value_get_boolean(value);
      break;
    case PROP_PRE_ROLL:
      s.preroll_ms = g_value_get_uint(value);
      break;
    case PROP_LATENCY:
      s.latency_ms = g_value_get_uint(value);
      break;
    default:
      break;
  }
}

}  // namespace

static void gst_arcly_src_set_property(GObject* object, guint id, const GValue* value,
                                       GParamSpec* pspec) {
  auto* self = GST_ARCLY_SRC(object);
  if (id == PROP_0 || id > PROP_LATENCY) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
    return;
  }
  GST_OBJECT_LOCK(self);
  if (arcly::elements::property_mutable_locked(element_of(self), pspec->flags))
    set_setting_locked(self->priv->settings, id, value);
  else
    arcly::elements::warn_immutable(GST_CAT_DEFAULT, element_of(self), pspec);
  GST_OBJECT_UNLOCK(self);
}

static void gst_arcly_src_get_property(GObject* object, guint id, GValue* value,
                                       GParamSpec* pspec) {
  auto* self = GST_ARCLY_SRC(object);
  SrcPrivate* p = self->priv;
  if (id == PROP_STATS) {
    g_value_take_boxed(value, make_stats(self));
    return;
  }
  GST_OBJECT_LOCK(self);
  const Settings& s = p->settings;
  switch (id) {
    case PROP_STREAM:
      g_value_set_string(value, s.stream_key.empty() ? nullptr : s.stream_key.c_str());
      break;
    case PROP_ENGINE:
      g_value_set_string(value, s.engine_name.c_str());
      break;
    case PROP_WAIT:
      g_value_set_int(value, s.wait_ms);
      break;
    case PROP_START:
      g_value_set_enum(value, static_cast<gint>(s.start));
      break;
    case PROP_PERSIST:
      g_value_set_boolean(value, s.persist);
      break;
    case PROP_PRE_ROLL:
      g_value_set_uint(value, s.preroll_ms);
      break;
    case PROP_LATENCY:
      g_value_set_uint(value, s.latency_ms);
      break;
    case PROP_IS_LIVE:
      g_value_set_boolean(value, TRUE);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_arcly_src_finalize(GObject* object) {
  auto* self = GST_ARCLY_SRC(object);
  SrcPrivate* p = self->priv;
  // Every way out of PAUSED (including a failed READY->PAUSED) joins the task.
  if (gst_task_get_state(p->task) != GST_TASK_STOPPED)
    g_critical("arclysrc %s finalized with its streaming task still running",
               GST_OBJECT_NAME(self));
  gst_object_unref(p->task);
  g_rec_mutex_clear(&p->task_lock);
  gst_flow_combiner_free(p->combiner);
  delete p;
  self->priv = nullptr;
  G_OBJECT_CLASS(gst_arcly_src_parent_class)->finalize(object);
}

static void gst_arcly_src_init(GstArclySrc* self) {
  auto* p = new SrcPrivate;
  self->priv = p;
  g_rec_mutex_init(&p->task_lock);
  p->task = gst_task_new(GST_DEBUG_FUNCPTR(task_loop), self, nullptr);
  gst_task_set_lock(p->task, &p->task_lock);
  p->combiner = gst_flow_combiner_new();
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SOURCE);
}

static void gst_arcly_src_class_init(GstArclySrcClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);

  gobject_class->set_property = GST_DEBUG_FUNCPTR(gst_arcly_src_set_property);
  gobject_class->get_property = GST_DEBUG_FUNCPTR(gst_arcly_src_get_property);
  gobject_class->finalize = GST_DEBUG_FUNCPTR(gst_arcly_src_finalize);

  const auto ready = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                              GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(
      gobject_class, PROP_STREAM,
      g_param_spec_string(
          "stream", "Stream key",
          "Stream key to play, as app/stream (e.g. live/cam): two parts of 1-64 characters "
          "[A-Za-z0-9._-]. Required",
          nullptr, ready));
  g_object_class_install_property(
      gobject_class, PROP_ENGINE,
      g_param_spec_string(
          "engine", "Engine",
          "Name of the arcly engine to subscribe in; must match the publisher's engine. Unknown "
          "names get a default engine accepting any app",
          arcly::gst::kDefaultEngineName, ready));
  g_object_class_install_property(
      gobject_class, PROP_WAIT,
      g_param_spec_int(
          "wait", "Wait for publisher",
          "Milliseconds to wait for a publisher of the key: 0 fails the state change at once "
          "if nobody publishes it, -1 waits forever",
          -1, G_MAXINT, kDefaultWait, ready));
  g_object_class_install_property(
      gobject_class, PROP_START,
      g_param_spec_enum(
          "start", "Start",
          "Where a joiner starts: live-edge (first picture at once, then live), keyframe "
          "(replay the cached GOP at original spacing, for recorders) or next-keyframe (no cache)",
          GST_TYPE_ARCLY_SRC_START, static_cast<gint>(kDefaultStart), ready));
  g_object_class_install_property(
      gobject_class, PROP_PRE_ROLL,
      g_param_spec_uint(
          "preroll", "Pre-roll",
          "With start=keyframe: start at a cached keyframe at least this many milliseconds "
          "before the live edge (as far as the engine's cache window reaches); 0 = newest GOP",
          0, G_MAXUINT, 0, ready));
  g_object_class_install_property(
      gobject_class, PROP_PERSIST,
      g_param_spec_boolean(
          "persist", "Persist",
          "When the publisher ends, wait for the next publisher of the key and continue "
          "(DISCONT, new caps if changed) instead of sending EOS",
          FALSE, ready));
  g_object_class_install_property(
      gobject_class, PROP_LATENCY,
      g_param_spec_uint(
          "latency", "Latency",
          "Latency in milliseconds reported to the pipeline, absorbing the publisher's "
          "jitter",
          0, 60000, kDefaultLatencyMs, ready));
  g_object_class_install_property(
      gobject_class, PROP_IS_LIVE,
      g_param_spec_boolean("is-live", "Is live", "Always TRUE: arclysrc is a live source", TRUE,
                           static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed(
          "stats", "Statistics",
          "Subscriber statistics: frames, bytes, keyframes, dropped (frames skipped after "
          "lagging), lag-events, publishers (publish instances followed)",
          GST_TYPE_STRUCTURE, static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  element_class->change_state = GST_DEBUG_FUNCPTR(gst_arcly_src_change_state);
  element_class->send_event = GST_DEBUG_FUNCPTR(gst_arcly_src_send_event);
  gst_element_class_add_static_pad_template(element_class, &video_template);
  gst_element_class_add_static_pad_template(element_class, &audio_template);
  gst_element_class_add_static_pad_template(element_class, &data_template);
  gst_element_class_set_static_metadata(
      element_class, "arcly stream subscriber", "Source/Network",
      "Plays an arcly live stream key published in the same process: one pad per track, "
      "instant start from the GOP cache, timestamps re-based to this pipeline. Example: "
      "arclysrc stream=live/cam ! h264parse ! avdec_h264 ! autovideosink; recorder: arclysrc "
      "stream=live/cam start=keyframe persist=true ! h264parse ! mp4mux ! filesink "
      "location=cam.mp4; "
      "URI: arcly://live/cam?engine=default",
      "arcly project");
  GST_DEBUG_CATEGORY_INIT(gst_arcly_src_debug, "arclysrc", 0, "arcly stream subscriber");
  gst_type_mark_as_plugin_api(GST_TYPE_ARCLY_SRC_START, static_cast<GstPluginAPIFlags>(0));
  (void)publisher_meta_caps();
}

// --- GstURIHandler ---
// arcly://app/stream?engine=NAME&wait=MS&start=MODE&persist=1&latency=MS&preroll=MS
// Each query key is the property of the same name, with its range; a URI sets
// the key and the properties it names and leaves the others as they are.
// get_uri() names every property that differs from its default, so a URI
// round-trips: set_uri(get_uri()) on a fresh element gives the same settings.

static GstURIType uri_get_type(GType) {
  return GST_URI_SRC;
}

static const gchar* const* uri_get_protocols(GType) {
  static const gchar* const protocols[] = {"arcly", nullptr};
  return protocols;
}

namespace {

struct UriKey {
  const char* name;  // query key = property name
  guint id;
};
constexpr UriKey kUriKeys[] = {{"engine", PROP_ENGINE},   {"wait", PROP_WAIT},
                               {"start", PROP_START},     {"persist", PROP_PERSIST},
                               {"latency", PROP_LATENCY}, {"preroll", PROP_PRE_ROLL}};

std::string uri_key_list() {
  std::string out;
  for (const UriKey& k : kUriKeys) out += (out.empty() ? "" : ", ") + std::string(k.name);
  return out;
}

std::string start_nick(StartMode mode) {
  auto* klass = static_cast<GEnumClass*>(g_type_class_ref(GST_TYPE_ARCLY_SRC_START));
  GEnumValue* v = g_enum_get_value(klass, static_cast<gint>(mode));
  std::string nick = v ? v->value_nick : "";
  g_type_class_unref(klass);
  return nick;
}

// "min..max" of a numeric property, for messages.
std::string range_of(GParamSpec* pspec) {
  if (G_IS_PARAM_SPEC_INT(pspec)) {
    auto* i = G_PARAM_SPEC_INT(pspec);
    return std::to_string(i->minimum) + ".." + std::to_string(i->maximum);
  }
  if (G_IS_PARAM_SPEC_UINT(pspec)) {
    auto* u = G_PARAM_SPEC_UINT(pspec);
    return std::to_string(u->minimum) + ".." + std::to_string(u->maximum);
  }
  if (G_IS_PARAM_SPEC_ENUM(pspec)) return "live-edge, keyframe, next-keyframe";
  if (G_IS_PARAM_SPEC_BOOLEAN(pspec)) return "1, 0, true, false";
  return "a name";
}

}  // namespace

static gchar* uri_get_uri(GstURIHandler* handler) {
  auto* self = GST_ARCLY_SRC(handler);
  GST_OBJECT_LOCK(self);
  const Settings s = self->priv->settings;
  GST_OBJECT_UNLOCK(self);
  if (s.stream_key.empty()) return nullptr;
  const Settings defaults;
  std::string query;
  auto add = [&query](const char* key, const std::string& value) {
    gchar* escaped = g_uri_escape_string(value.c_str(), nullptr, FALSE);
    query += (query.empty() ? "?" : "&") + std::string(key) + "=" + escaped;
    g_free(escaped);
  };
  if (s.engine_name != defaults.engine_name) add("engine", s.engine_name);
  if (s.wait_ms != defaults.wait_ms) add("wait", std::to_string(s.wait_ms));
  if (s.start != defaults.start) add("start", start_nick(s.start));
  if (s.persist != defaults.persist) add("persist", s.persist ? "1" : "0");
  if (s.latency_ms != defaults.latency_ms) add("latency", std::to_string(s.latency_ms));
  if (s.preroll_ms != defaults.preroll_ms) add("preroll", std::to_string(s.preroll_ms));
  return g_strdup(("arcly://" + s.stream_key + query).c_str());
}

static gboolean uri_set_uri(GstURIHandler* handler, const gchar* uri, GError** error) {
  auto* self = GST_ARCLY_SRC(handler);
  GObjectClass* klass = G_OBJECT_GET_CLASS(self);
  GstUri* parsed = gst_uri_from_string(uri);
  if (!parsed || g_strcmp0(gst_uri_get_scheme(parsed), "arcly") != 0 || !gst_uri_get_host(parsed)) {
    if (parsed) gst_uri_unref(parsed);
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
                "not an arcly URI: '%s' (expected arcly://app/stream?engine=NAME)", uri);
    return FALSE;
  }
  std::string key = gst_uri_get_host(parsed);
  gchar* path = gst_uri_get_path(parsed);  // transfer full
  if (path) key += path;
  g_free(path);
  std::string why;
  if (!arcly::StreamKey::try_parse(key, &why)) {
    gst_uri_unref(parsed);
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
                "invalid stream key \"%s\" in URI '%s': %s; %s", key.c_str(), uri, why.c_str(),
                arcly::gst::kValidKeyHint);
    return FALSE;
  }

  // Every query value is parsed and range-checked before anything changes.
  struct Parsed {
    guint id;
    GParamSpec* pspec;
    GValue value;
  };
  std::vector<Parsed> values;
  auto clear_values = [&values] {
    for (Parsed& v : values) g_value_unset(&v.value);
  };
  std::string problem;
  GList* keys = gst_uri_get_query_keys(parsed);  // transfer container
  for (GList* k = keys; k && problem.empty(); k = k->next) {
    const auto* name = static_cast<const gchar*>(k->data);
    const UriKey* known = nullptr;
    for (const UriKey& u : kUriKeys)
      if (g_strcmp0(u.name, name) == 0) known = &u;
    if (!known) {
      problem = "unknown query key '" + std::string(name) + "' (known: " + uri_key_list() + ")";
      break;
    }
    const gchar* text = gst_uri_get_query_value(parsed, name);
    GParamSpec* pspec = g_object_class_find_property(klass, name);
    Parsed v{known->id, pspec, G_VALUE_INIT};
    g_value_init(&v.value, pspec->value_type);
    bool ok = text != nullptr;
    if (ok && G_IS_PARAM_SPEC_STRING(pspec))
      g_value_set_string(&v.value, text);
    else if (ok)
      ok = gst_value_deserialize(&v.value, text);
    // g_param_value_validate() clamps and returns TRUE when it had to.
    if (ok && g_param_value_validate(pspec, &v.value)) ok = false;
    if (ok && G_IS_PARAM_SPEC_STRING(pspec) && *text == '\0') ok = false;
    if (!ok) {
      problem = std::string(name) + "=" + (text ? text : "") + " is not valid (expected " +
                range_of(pspec) + ")";
      g_value_unset(&v.value);
      break;
    }
    values.push_back(v);
  }
  g_list_free(keys);
  gst_uri_unref(parsed);
  if (!problem.empty()) {
    clear_values();
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI, "URI '%s': %s", uri, problem.c_str());
    return FALSE;
  }

  GST_OBJECT_LOCK(self);
  if (!arcly::elements::property_mutable_locked(
          element_of(self), static_cast<GParamFlags>(GST_PARAM_MUTABLE_READY))) {
    const GstState state = GST_STATE(self);
    GST_OBJECT_UNLOCK(self);
    clear_values();
    g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_STATE,
                "cannot change the URI of %s to '%s' in state %s: only in NULL or READY",
                GST_OBJECT_NAME(self), uri, gst_element_state_get_name(state));
    return FALSE;
  }
  SrcPrivate* p = self->priv;
  p->settings.stream_key = key;
  for (const Parsed& v : values) set_setting_locked(p->settings, v.id, &v.value);
  GST_OBJECT_UNLOCK(self);

  g_object_freeze_notify(G_OBJECT(self));
  g_object_notify(G_OBJECT(self), "stream");
  for (const Parsed& v : values) g_object_notify_by_pspec(G_OBJECT(self), v.pspec);
  g_object_thaw_notify(G_OBJECT(self));
  clear_values();
  return TRUE;
}

static void gst_arcly_src_uri_handler_init(gpointer iface, gpointer) {
  auto* i = static_cast<GstURIHandlerInterface*>(iface);
  i->get_type = uri_get_type;
  i->get_protocols = uri_get_protocols;
  i->get_uri = uri_get_uri;
  i->set_uri = uri_set_uri;
}
