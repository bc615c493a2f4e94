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
 * (query keys: engine, wait, start, persist, latency).
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

#include "arcly/engine.hpp"
#include "arcly/error.hpp"
#include "arcly/stream_key.hpp"
#include "arcly/subscription.hpp"
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

struct SrcPrivate {
  std::mutex lock;  // settings, playing flag
  std::condition_variable_any cond;
  Settings settings;
  bool playing = false;
  bool played_before = false;  // a later PAUSED->PLAYING re-anchors the timeline
  std::atomic<bool> rebase{false};

  // Set in READY->PAUSED, used by the task only.
  std::shared_ptr<arcly::Engine> engine;
  std::optional<arcly::StreamKey> key;
  arcly::StreamHandle initial_stream;  // wait=0: found synchronously
  Settings run;                        // settings snapshot of this run
  std::stop_source stop;

  GstTask* task = nullptr;
  GRecMutex task_lock;
  std::mutex task_state_lock;  // orders the task's self-pause against stop

  // Task-owned state.
  std::optional<arcly::Subscription> sub;
  std::uint64_t last_instance = 0;
  std::deque<arcly::FrameRef> backlog;  // read ahead at (re)start
  bool restart = false;                 // next start continues after a publisher change
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

bool wait_playing(SrcPrivate* p) {
  std::unique_lock lock(p->lock);
  return p->cond.wait(lock, p->stop.get_token(), [p] { return p->playing; });
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
    guint ms = 0;
    {
      std::lock_guard lock(self->priv->lock);
      ms = self->priv->settings.latency_ms;
    }
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
  gst_pad_set_query_function(pad, src_query);
  gst_pad_set_event_function(pad, src_event);
  gst_pad_use_fixed_caps(pad);
  gst_pad_set_active(pad, TRUE);

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
  if (p->run.start == StartMode::LiveEdge) {
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
  if (!p->timeline.started()) {
    start_timeline(self, f, p->sub && p->sub->from_cache(frame));
  } else if (p->rebase.exchange(false)) {
    // Resumed after a pause: our running time stood still while the publisher's
    // did not. Continue from this frame, now, without clipping.
    const GstClockTime base = std::max(running_time_now(element_of(self)), p->max_rt + 1);
    p->timeline.start(f.pts, f.pts, base, p->max_out + GST_MSECOND);
    for (auto& [track, tp] : p->pads) {
      tp.first_after_start = true;
      tp.discont = true;
      tp.last_dts = GST_CLOCK_TIME_NONE;
    }
  }
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
    const bool live_edge = p->run.start == StartMode::LiveEdge;
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
  if (p->run.start == StartMode::LiveEdge && f.pts < tl.edge() && !tp.edge_segment_after)
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

// Finds the publisher; null when stopped or failed (error already posted).
arcly::StreamHandle acquire_stream(GstArclySrc* self) {
  SrcPrivate* p = self->priv;
  if (p->initial_stream) return std::exchange(p->initial_stream, nullptr);
  const auto stop = p->stop.get_token();
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
      if (e.code() == arcly::Errc::Timeout || e.code() == arcly::Errc::StreamNotFound) {
        GST_ELEMENT_ERROR(element_of(self), RESOURCE, NOT_FOUND,
                          ("stream %s is not being published (waited %d ms)",
                           p->run.stream_key.c_str(), p->run.wait_ms),
                          ("%s", e.what()));
      } else {
        GST_ELEMENT_ERROR(element_of(self), RESOURCE, OPEN_READ, ("%s", e.what()), (nullptr));
      }
      return nullptr;
    }
  }
  return nullptr;
}

// Subscribes and reads what the cache offers right now (configs, cached GOP, the
// first live frame), so the live edge is known before anything is pushed.
bool subscribe(GstArclySrc* self, const arcly::StreamHandle& stream) {
  SrcPrivate* p = self->priv;
  arcly::SubscribeOptions options;
  options.start = p->run.start == StartMode::NextKeyframe ? arcly::StartAt::NextKeyframe
                                                          : arcly::StartAt::Keyframe;
  options.resilient = true;
  if (p->run.start == StartMode::Keyframe)
    options.preroll = std::chrono::milliseconds(p->run.preroll_ms);
  p->sub.emplace(stream->subscribe(options));
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

Step step(GstArclySrc* self) {
  SrcPrivate* p = self->priv;
  const auto stop = p->stop.get_token();
  if (stop.stop_requested()) return Step::Pause;

  if (!p->sub) {
    if (!wait_playing(p)) return Step::Pause;
    arcly::StreamHandle stream = acquire_stream(self);
    if (!stream) return Step::Pause;
    subscribe(self, stream);
    return Step::Continue;
  }

  if (!p->backlog.empty()) {
    arcly::FrameRef f = std::move(p->backlog.front());
    p->backlog.pop_front();
    return finish_flow(self, handle(self, f, false));
  }

  arcly::Received r = p->sub->recv(std::chrono::steady_clock::time_point::max(), stop);
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
      p->sub.reset();
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
                          (nullptr));
      }
      push_eos_all(self);
      return Step::Pause;
    case arcly::RecvStatus::Empty:
    case arcly::RecvStatus::Timeout:
      return Step::Continue;
    case arcly::RecvStatus::Cancelled:
      return Step::Pause;
  }
  return Step::Continue;
}

void task_loop(gpointer data) {
  auto* self = static_cast<GstArclySrc*>(data);
  Step s = Step::Pause;
  try {
    s = step(self);
  } catch (const arcly::Error& e) {
    GST_ELEMENT_ERROR(element_of(self), STREAM, FAILED,
                      ("stream %s: %s", self->priv->run.stream_key.c_str(), e.what()), (nullptr));
    push_eos_all(self);
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(element_of(self), STREAM, FAILED,
                      ("stream %s: %s", self->priv->run.stream_key.c_str(), e.what()), (nullptr));
    push_eos_all(self);
  }
  if (s == Step::Pause) {
    // Never turn a stop into a pause: the state change stops under the same lock.
    std::lock_guard lock(self->priv->task_state_lock);
    if (!self->priv->stop.stop_requested()) gst_task_pause(self->priv->task);
  }
}

bool prepare(GstArclySrc* self) {
  SrcPrivate* p = self->priv;
  std::string message;
  bool not_found = false;
  try {
    {
      std::lock_guard lock(p->lock);
      p->run = p->settings;
    }
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

static GstStateChangeReturn gst_arcly_src_change_state(GstElement* element,
                                                       GstStateChange transition) {
  auto* self = GST_ARCLY_SRC(element);
  SrcPrivate* p = self->priv;
  GstStateChangeReturn ret = GST_STATE_CHANGE_SUCCESS;

  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY: {
      std::string message;
      try {
        std::lock_guard lock(p->lock);
        arcly::gst::parse_stream_key(p->settings.stream_key, "arclysrc");
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
      {
        std::lock_guard lock(p->lock);
        p->played_before = false;
        p->rebase = false;
      }
      {
        std::lock_guard state_lock(p->task_state_lock);
        p->stop = std::stop_source();
      }
      {
        gchar* name = g_strdup_printf("%s:task", GST_OBJECT_NAME(self));
        gst_object_set_name(GST_OBJECT(p->task), name);
        g_free(name);
      }
      p->group_id = gst_util_group_id_next();
      p->stats.frames = 0;
      p->stats.bytes = 0;
      p->stats.keyframes = 0;
      p->stats.dropped = 0;
      p->stats.lag_events = 0;
      p->stats.publishers = 0;
      gst_task_start(p->task);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_PLAYING: {
      std::lock_guard lock(p->lock);
      p->playing = true;
      if (p->played_before) p->rebase = true;
      p->played_before = true;
      p->cond.notify_all();
      break;
    }
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      // Stop the task first so it cannot push while the pads go away; every
      // blocking call it makes watches this stop token.
      {
        std::lock_guard state_lock(p->task_state_lock);
        p->stop.request_stop();
        gst_task_stop(p->task);
      }
      {
        std::lock_guard lock(p->lock);
        p->cond.notify_all();
      }
      gst_task_join(p->task);
      break;
    default:
      break;
  }

  ret = GST_ELEMENT_CLASS(gst_arcly_src_parent_class)->change_state(element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) return ret;

  switch (transition) {
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      ret = GST_STATE_CHANGE_NO_PREROLL;
      break;
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED: {
      std::lock_guard lock(p->lock);
      p->playing = false;
      ret = GST_STATE_CHANGE_NO_PREROLL;
      break;
    }
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

static void gst_arcly_src_set_property(GObject* object, guint id, const GValue* value,
                                       GParamSpec* pspec) {
  auto* self = GST_ARCLY_SRC(object);
  SrcPrivate* p = self->priv;
  std::lock_guard lock(p->lock);
  Settings& s = p->settings;
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
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
  }
}

static void gst_arcly_src_get_property(GObject* object, guint id, GValue* value,
                                       GParamSpec* pspec) {
  auto* self = GST_ARCLY_SRC(object);
  SrcPrivate* p = self->priv;
  if (id == PROP_STATS) {
    g_value_take_boxed(value, make_stats(self));
    return;
  }
  std::lock_guard lock(p->lock);
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
}

static void gst_arcly_src_finalize(GObject* object) {
  auto* self = GST_ARCLY_SRC(object);
  SrcPrivate* p = self->priv;
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
  p->task = gst_task_new(task_loop, self, nullptr);
  gst_task_set_lock(p->task, &p->task_lock);
  p->combiner = gst_flow_combiner_new();
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SOURCE);
}

static void gst_arcly_src_class_init(GstArclySrcClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);

  gobject_class->set_property = gst_arcly_src_set_property;
  gobject_class->get_property = gst_arcly_src_get_property;
  gobject_class->finalize = gst_arcly_src_finalize;

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

  element_class->change_state = gst_arcly_src_change_state;
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

// --- GstURIHandler: arcly://app/stream?engine=NAME&wait=MS&start=MODE&persist=1 ---

static GstURIType uri_get_type(GType) {
  return GST_URI_SRC;
}

static const gchar* const* uri_get_protocols(GType) {
  static const gchar* const protocols[] = {"arcly", nullptr};
  return protocols;
}

static gchar* uri_get_uri(GstURIHandler* handler) {
  auto* self = GST_ARCLY_SRC(handler);
  SrcPrivate* p = self->priv;
  std::lock_guard lock(p->lock);
  if (p->settings.stream_key.empty()) return nullptr;
  std::string uri = "arcly://" + p->settings.stream_key;
  if (p->settings.engine_name != arcly::gst::kDefaultEngineName)
    uri += "?engine=" + p->settings.engine_name;
  return g_strdup(uri.c_str());
}

static gboolean uri_set_uri(GstURIHandler* handler, const gchar* uri, GError** error) {
  auto* self = GST_ARCLY_SRC(handler);
  SrcPrivate* p = self->priv;
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
  Settings s;
  s.stream_key = key;
  if (const gchar* v = gst_uri_get_query_value(parsed, "engine"); v && *v) s.engine_name = v;
  if (const gchar* v = gst_uri_get_query_value(parsed, "wait"))
    s.wait_ms = static_cast<gint>(g_ascii_strtoll(v, nullptr, 10));
  if (const gchar* v = gst_uri_get_query_value(parsed, "latency"))
    s.latency_ms = static_cast<guint>(g_ascii_strtoull(v, nullptr, 10));
  if (const gchar* v = gst_uri_get_query_value(parsed, "persist"))
    s.persist = g_ascii_strcasecmp(v, "1") == 0 || g_ascii_strcasecmp(v, "true") == 0;
  if (const gchar* v = gst_uri_get_query_value(parsed, "start")) {
    GEnumClass* klass = static_cast<GEnumClass*>(g_type_class_ref(GST_TYPE_ARCLY_SRC_START));
    GEnumValue* ev = g_enum_get_value_by_nick(klass, v);
    if (ev) s.start = static_cast<StartMode>(ev->value);
    g_type_class_unref(klass);
    if (!ev) {
      gst_uri_unref(parsed);
      g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_URI,
                  "unknown start '%s' in URI '%s' (live-edge, keyframe, next-keyframe)", v, uri);
      return FALSE;
    }
  }
  gst_uri_unref(parsed);
  std::lock_guard lock(p->lock);
  p->settings = s;
  return TRUE;
}

static void gst_arcly_src_uri_handler_init(gpointer iface, gpointer) {
  auto* i = static_cast<GstURIHandlerInterface*>(iface);
  i->get_type = uri_get_type;
  i->get_protocols = uri_get_protocols;
  i->get_uri = uri_get_uri;
  i->set_uri = uri_set_uri;
}
