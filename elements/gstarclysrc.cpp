/**
 * SECTION:element-arclysrc
 * @title: arclysrc
 * @see_also: arclysink
 *
 * A live source that subscribes to an arcly stream key published in the same
 * process (by arclysink or an ingest worker). It exposes one sometimes pad per
 * track (`video_%u`, `audio_%u`, `data_%u`) with the publisher's caps, then
 * signals no-more-pads once the publisher's track set is final: when the
 * publisher declared it (arclysink once all its pads have caps, the RTSP/SRT
 * ingest once its demuxers are done) and each of its tracks has a pad, or one
 * second of stream time after the join for a publisher that does not declare.
 * A track whose caps follow the first keyframe (a camera's audio) still gets
 * its pad. An unlinked pad does not stop the others.
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
 * `timestamp/x-arcly-publisher`: engine time, the nanoseconds of CLOCK_MONOTONIC
 * (GStreamer's default system clock) at which the publisher's pipeline played
 * the frame, the same meaning for arclysink and the RTSP, SRT and RTMP ingest —
 * so applications can line cameras up and measure end-to-end delay. When this
 * pipeline's clock drifts from the monotonic clock (an audio device's), the
 * running time follows it (new segments), so drift never eats the latency. A subscriber that falls
 * behind resumes at the newest keyframe, marks DISCONT and posts an element message `arcly-lagged`
 * (`stream` string, `dropped` guint64, `total-dropped` guint64).
 *
 * `stream` (or the URI's key) can change while playing: fast channel change.
 * The source leaves the current publisher and joins the new key as a late
 * joiner does — configs and the cached keyframe at once, the cached frames up
 * to the live edge decoded but not shown — on the same pads (new caps if they
 * differ, a new stream where the codec differs), the running time continuing:
 * no EOS, no flush downstream. Once the new stream's first buffer is out it
 * posts the element message `arcly-switched` (`from`, `to` strings,
 * `running-time` guint64). A key nobody publishes yet is waited for, with GAP
 * events meanwhile.
 *
 * `max-lag` bounds how far behind the publisher's newest frame a subscriber
 * with a slow downstream may fall: beyond it the source skips to the newest
 * cached keyframe (configs, keyframe, DISCONT) and posts `arcly-max-lag`
 * (`stream`, `lag` and `max-lag` in ns, `skipped-frames`). An upstream
 * force-key-unit event on a pad goes to the publisher (arclysink asks its
 * encoder, rate-limited). LATENCY answers `latency` plus the publisher's own
 * upstream latency.
 *
 * `dispatch` (default TRUE) serves the subscriber, once it streams live, from the
 * engine's few dispatcher threads (one per core) instead of a thread of its own:
 * fan-out to hundreds of subscribers. Whatever can wait (joining, PAUSED, a switch,
 * between publishers, EOS) still runs on the element's own streaming thread,
 * and a subscriber whose downstream blocks a push for more than 20 ms (a sink
 * syncing on the clock, a full queue) goes back to it for the rest of the run,
 * without stalling the others. The semantics are those of the default mode.
 *
 * When the publisher ends, EOS is sent — unless `persist` is set, in which case
 * the source waits for the next publisher of the key and continues (new caps if
 * they changed, DISCONT), posting `arcly-publisher-lost` and
 * `arcly-publisher-regained` (`stream`). Also available as the URI `arcly://app/stream?engine=NAME`
 * (query keys: engine, wait, start, persist, latency, preroll, max-lag, dispatch — each the
 * property of the same name; a URI round-trips through get_uri/set_uri).
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
// Thin GObject shell: properties, pads, the GstTask and the element's messages.
// The subscription state machine is arcly::gst::SubscriberDriver and each pad's
// output arcly::gst::TrackOutput (both in arcly-gst); this file only hosts them.
// No exception leaves this file.
//
// Locking: the properties (`settings`) are protected by the object lock. `run`
// (the driver of the current READY->PAUSED..PAUSED->READY run) is created and
// destroyed with the task stopped, under `task_state_lock`; other threads reach
// it only under that lock. The driver guards its own run control.
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstarclysrc.h"

#include <gst/video/video.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "arcly/error.hpp"
#include "arcly/stream_key.hpp"
#include "arcly_element.hpp"
#include "caps_track.hpp"
#include "dispatcher.hpp"
#include "engine_registry.hpp"
#include "keys.hpp"
#include "subscriber_driver.hpp"

GST_DEBUG_CATEGORY_STATIC(gst_arcly_src_debug);
#define GST_CAT_DEFAULT gst_arcly_src_debug

using arcly::gst::StartMode;
using Settings = arcly::gst::SubscriberSettings;

namespace {

enum {
  PROP_0,
  PROP_STREAM,
  PROP_ENGINE,
  PROP_WAIT,
  PROP_START,
  PROP_PRE_ROLL,
  PROP_PERSIST,
  PROP_LATENCY,
  PROP_MAX_LAG,
  PROP_DISPATCH,
  PROP_IS_LIVE,
  PROP_STATS
};

constexpr gint kDefaultWait = Settings{}.wait_ms;
constexpr guint kDefaultLatencyMs = Settings{}.latency_ms;
constexpr StartMode kDefaultStart = Settings{}.start;

// The default of `dispatch`: TRUE, or what ARCLY_SRC_DISPATCH (0/1) says, so
// that a test suite or an operator can run every arclysrc on its own thread.
bool default_dispatch() {
  static const bool value = [] {
    const gchar* env = g_getenv("ARCLY_SRC_DISPATCH");
    if (!env || !*env) return Settings{}.dispatch;
    return g_ascii_strcasecmp(env, "1") == 0 || g_ascii_strcasecmp(env, "true") == 0;
  }();
  return value;
}

// Budget of one dispatched run: frames pushed before the next subscriber's turn.
constexpr std::size_t kDispatchBudget = 32;

// The element as the driver's host: pads from the templates, messages.
class SrcHost final : public arcly::gst::SubscriberHost {
 public:
  explicit SrcHost(GstElement* element) : element_(element) {}
  GstPad* new_pad(const arcly::TrackInfo& info, const std::string& name) override;
  std::string stream_id(GstPad* pad, const std::string& track) override;
  void add_pad(GstPad* pad) override;
  void remove_pad(GstPad* pad) override { gst_element_remove_pad(element_, pad); }
  void no_more_pads() override { gst_element_no_more_pads(element_); }
  void post_element_message(GstStructure* structure) override {
    gst_element_post_message(element_, gst_message_new_element(GST_OBJECT(element_), structure));
  }
  void post_error(GQuark domain, gint code, const std::string& text,
                  const std::string& debug) override {
    gst_element_message_full(element_, GST_MESSAGE_ERROR, domain, code, g_strdup(text.c_str()),
                             debug.empty() ? nullptr : g_strdup(debug.c_str()), __FILE__,
                             GST_FUNCTION, __LINE__);
  }
  void post_warning(GQuark domain, gint code, const std::string& text,
                    const std::string& debug) override {
    gst_element_message_full(element_, GST_MESSAGE_WARNING, domain, code, g_strdup(text.c_str()),
                             debug.empty() ? nullptr : g_strdup(debug.c_str()), __FILE__,
                             GST_FUNCTION, __LINE__);
  }
  GstClockTime running_time_now() override;
  GstClock* clock() override { return gst_element_get_clock(element_); }
  // The publisher's latency is part of ours: the pipeline asks again.
  void latency_changed() override {
    gst_element_post_message(element_, gst_message_new_latency(GST_OBJECT(element_)));
  }
  GstObject* log_object() override { return GST_OBJECT(element_); }

 private:
  GstElement* element_;
};

// The element as a dispatcher client (dispatched mode): the dispatcher thread
// that holds the driver polls it; on release the element's task takes it back.
class SrcClient final : public arcly::gst::Dispatchable {
 public:
  explicit SrcClient(GstElement* element) : element_(element) {}
  void attach(const std::shared_ptr<arcly::Waker>& waker) override;
  bool ready() override;
  Outcome run(std::chrono::steady_clock::time_point deadline) override;
  void released(bool blocked) override;

 private:
  GstElement* element_;
  bool resume_ = true;  // dispatcher thread: released() restarts the task
};

struct SrcPrivate {
  explicit SrcPrivate(GstElement* element) : host(element), client(element) {}

  Settings settings; /* protected by the object lock */

  SrcHost host;
  arcly::gst::SubscriberStats stats;  // atomics: any thread
  std::unique_ptr<arcly::gst::SubscriberDriver>
      run; /* changed under task_state_lock, task stopped */

  GstTask* task = nullptr;
  GRecMutex task_lock;
  std::mutex task_state_lock;  // orders the task's self-pause against stop, guards `run`

  // Dispatched mode: once the driver streams live, the task stops (its thread
  // goes back to GStreamer's pool) and the engine's dispatcher serves it until
  // it releases it (pause, EOS, switch, publisher gone, a blocked downstream),
  // when the task starts again. The driver has one streaming thread at a time.
  SrcClient client;
  arcly::gst::Dispatcher* dispatcher = nullptr; /* set under task_state_lock at READY->PAUSED */
  std::shared_ptr<arcly::gst::Dispatcher::Ticket>
      ticket; /* protected by task_state_lock: set while the dispatcher holds the driver */
  bool dispatch_allowed = false; /* protected by task_state_lock: FALSE after a blocked push */
  std::atomic<std::uint64_t> dispatch_handoffs{0};  // any thread
  std::atomic<std::uint64_t> dispatch_blocked{0};   // any thread
};

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

gboolean src_query(GstPad* pad, GstObject* parent, GstQuery* query) {
  auto* self = reinterpret_cast<GstArclySrc*>(parent);
  if (GST_QUERY_TYPE(query) == GST_QUERY_LATENCY) {
    // Our jitter allowance plus what the publisher's own upstream adds (its
    // capture and encoder latency, which a tee branch would have seen too).
    GST_OBJECT_LOCK(self);
    const guint ms = self->priv->settings.latency_ms;
    GST_OBJECT_UNLOCK(self);
    const gint64 upstream = self->priv->stats.upstream_latency_ns.load(std::memory_order_relaxed);
    const GstClockTime min = ms * GST_MSECOND + (upstream > 0 ? upstream : 0);
    GST_DEBUG_OBJECT(
        self, "latency: min %" GST_TIME_FORMAT " (own %u ms, publisher %" G_GINT64_FORMAT " ns)",
        GST_TIME_ARGS(min), ms, upstream);
    gst_query_set_latency(query, TRUE, min, GST_CLOCK_TIME_NONE);
    return TRUE;
  }
  return gst_pad_query_default(pad, parent, query);
}

// An upstream force-key-unit (a decoder, splitmuxsink, webrtcbin's PLI) goes
// to the publisher, which asks its encoder (rate-limited there).
gboolean request_key_unit(GstArclySrc* self, GstEvent* event) {
  SrcPrivate* p = self->priv;
  gboolean all_headers = FALSE;
  gst_video_event_parse_upstream_force_key_unit(event, nullptr, &all_headers, nullptr);
  gst_event_unref(event);
  bool forwarded = false;
  {
    std::lock_guard state_lock(p->task_state_lock);
    forwarded = p->run && p->run->request_key_unit();
  }
  p->stats.key_unit_requests.fetch_add(1, std::memory_order_relaxed);
  GST_DEBUG_OBJECT(self, "force-key-unit (all-headers %d) %s", all_headers,
                   forwarded ? "sent to the publisher" : "dropped: no publisher");
  return forwarded;
}

gboolean src_event(GstPad* pad, GstObject* parent, GstEvent* event) {
  if (gst_video_event_is_force_key_unit(event) && GST_EVENT_IS_UPSTREAM(event))
    return request_key_unit(reinterpret_cast<GstArclySrc*>(parent), event);
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

GstPad* SrcHost::new_pad(const arcly::TrackInfo& info, const std::string& name) {
  GstElementClass* klass = GST_ELEMENT_GET_CLASS(element_);
  const std::string templ_name = std::string(arcly::gst::pad_prefix(info.kind)) + "_%u";
  GstPadTemplate* templ = gst_element_class_get_pad_template(klass, templ_name.c_str());
  GstPad* pad = gst_pad_new_from_template(templ, name.c_str());
  gst_pad_set_query_function(pad, GST_DEBUG_FUNCPTR(src_query));
  gst_pad_set_event_function(pad, GST_DEBUG_FUNCPTR(src_event));
  return pad;
}

std::string SrcHost::stream_id(GstPad* pad, const std::string& track) {
  gchar* id = gst_pad_create_stream_id(pad, element_, track.c_str());
  std::string out = id ? id : track;
  g_free(id);
  return out;
}

void SrcHost::add_pad(GstPad* pad) {
  // The pad functions dereference the element: never call them without a
  // parent. (Set once active: activating an unparented pad needs no parent.)
  GST_OBJECT_FLAG_SET(pad, GST_PAD_FLAG_NEED_PARENT);
  gst_element_add_pad(element_, pad);
}

GstClockTime SrcHost::running_time_now() {
  GstClock* clock = gst_element_get_clock(element_);
  if (!clock) return 0;
  const GstClockTime now = gst_clock_get_time(clock);
  gst_object_unref(clock);
  const GstClockTime base = gst_element_get_base_time(element_);
  return now > base ? now - base : 0;
}

void task_loop(gpointer data) {
  auto* self = static_cast<GstArclySrc*>(data);
  SrcPrivate* p = self->priv;
  // `run` only changes with the task stopped.
  if (p->run->step() == arcly::gst::SubscriberDriver::Step::Pause) {
    // Never turn a stop into a pause: the state change stops under the same lock.
    std::lock_guard lock(p->task_state_lock);
    if (!p->run->stop_requested()) gst_task_pause(p->task);
    return;
  }
  // Dispatched mode, streaming live: hand the driver to the dispatcher. The
  // task stops first (a release may start it again at once); the dispatcher's
  // first round polls the driver, so nothing published meanwhile is missed.
  if (!p->dispatcher || !p->run->dispatchable()) return;
  std::lock_guard lock(p->task_state_lock);
  if (!p->dispatch_allowed || p->run->stop_requested()) return;
  gst_task_stop(p->task);
  p->ticket = p->dispatcher->add(p->client);
  p->dispatch_handoffs.fetch_add(1, std::memory_order_relaxed);
  GST_LOG_OBJECT(self, "streaming live: handed to the dispatcher");
}

SrcPrivate* priv_of(GstElement* element) {
  return reinterpret_cast<GstArclySrc*>(element)->priv;
}

// Dispatcher thread, holding the driver (between add() and released()).
void SrcClient::attach(const std::shared_ptr<arcly::Waker>& waker) {
  priv_of(element_)->run->watch(waker);
}

bool SrcClient::ready() {
  return priv_of(element_)->run->ready();
}

SrcClient::Outcome SrcClient::run(std::chrono::steady_clock::time_point deadline) {
  using Poll = arcly::gst::SubscriberDriver::Poll;
  resume_ = true;
  switch (priv_of(element_)->run->poll(kDispatchBudget, deadline)) {
    case Poll::Idle:
      return Outcome::Idle;
    case Poll::More:
      return Outcome::More;
    case Poll::Release:
      return Outcome::Release;
    case Poll::Pause:  // as the task would: it stays stopped, the run is over
      resume_ = false;
      return Outcome::Release;
  }
  return Outcome::Release;
}

void SrcClient::released(bool blocked) {
  SrcPrivate* p = priv_of(element_);
  p->run->unwatch();
  if (blocked)
    GST_INFO_OBJECT(element_, "a push blocked: back on the element's own streaming thread");
  std::lock_guard lock(p->task_state_lock);
  p->ticket.reset();
  if (blocked) {
    // A downstream that blocks (clock sync, a full queue) keeps its own thread
    // for the rest of the run.
    p->dispatch_allowed = false;
    p->dispatch_blocked.fetch_add(1, std::memory_order_relaxed);
  }
  if (resume_ && !p->run->stop_requested()) {
    gst_task_join(p->task);  // the hand-over iteration has returned: not a wait in practice
    gst_task_start(p->task);
  }
}

// READY->PAUSED: a driver for this run on a snapshot of the settings.
bool prepare(GstArclySrc* self) {
  SrcPrivate* p = self->priv;
  GST_OBJECT_LOCK(self);
  const Settings settings = p->settings;
  GST_OBJECT_UNLOCK(self);
  std::string message;
  bool not_found = false;
  try {
    auto driver = std::make_unique<arcly::gst::SubscriberDriver>(settings, p->host, p->stats);
    GST_OBJECT_LOCK(self);
    {
      std::lock_guard state_lock(p->task_state_lock);
      p->run = std::move(driver);
      p->dispatcher =
          settings.dispatch ? &arcly::gst::Dispatcher::for_engine(settings.engine_name) : nullptr;
      p->dispatch_allowed = settings.dispatch;
      // `stream` may have been switched since the snapshot (it is mutable
      // once the change to PAUSED is under way).
      if (p->settings.stream_key != settings.stream_key) p->run->switch_to(p->settings.stream_key);
    }
    GST_OBJECT_UNLOCK(self);
    return true;
  } catch (const arcly::Error& e) {
    not_found = e.code() == arcly::Errc::StreamNotFound;
    message = e.what();
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

void start_task(GstArclySrc* self) {
  SrcPrivate* p = self->priv;
  gchar* name = g_strdup_printf("%s:task", GST_OBJECT_NAME(self));
  gst_object_set_name(GST_OBJECT(p->task), name);
  g_free(name);
  p->stats.reset();
  p->dispatch_handoffs = 0;
  p->dispatch_blocked = 0;
  gst_task_start(p->task);
}

// Stops and joins the task, then the run's pads and driver go away.
void end_run(GstArclySrc* self) {
  SrcPrivate* p = self->priv;
  std::shared_ptr<arcly::gst::Dispatcher::Ticket> ticket;
  {
    std::lock_guard state_lock(p->task_state_lock);
    if (p->run) p->run->stop();
    gst_task_stop(p->task);
    ticket = p->ticket;
  }
  gst_task_join(p->task);
  // Then the dispatcher: remove() returns once no dispatcher thread touches the
  // driver (a release in progress sees the stop and leaves the task stopped).
  if (ticket) p->dispatcher->remove(ticket);
  std::unique_ptr<arcly::gst::SubscriberDriver> run;
  {
    std::lock_guard state_lock(p->task_state_lock);
    run = std::move(p->run);
  }
  if (run) run->remove_tracks();
}

GstStructure* make_stats(GstArclySrc* self) {
  SrcPrivate* p = self->priv;
  const arcly::gst::SubscriberStats& s = p->stats;
  bool dispatched = false;
  {
    std::lock_guard state_lock(p->task_state_lock);
    dispatched = p->ticket != nullptr;
  }
  GstStructure* st = gst_structure_new(
      "arclysrc-stats", "frames", G_TYPE_UINT64, static_cast<guint64>(s.frames.load()), "bytes",
      G_TYPE_UINT64, static_cast<guint64>(s.bytes.load()), "keyframes", G_TYPE_UINT64,
      static_cast<guint64>(s.keyframes.load()), "dropped", G_TYPE_UINT64,
      static_cast<guint64>(s.dropped.load()), "lag-events", G_TYPE_UINT64,
      static_cast<guint64>(s.lag_events.load()), "publishers", G_TYPE_UINT64,
      static_cast<guint64>(s.publishers.load()), "lag", G_TYPE_UINT64,
      static_cast<guint64>(s.lag_ns.load()), "lag-resyncs", G_TYPE_UINT64,
      static_cast<guint64>(s.lag_resyncs.load()), "upstream-latency", G_TYPE_INT64,
      static_cast<gint64>(s.upstream_latency_ns.load()), "key-unit-requests", G_TYPE_UINT64,
      static_cast<guint64>(s.key_unit_requests.load()), "clock-drift", G_TYPE_INT64,
      static_cast<gint64>(s.clock_drift_ns.load()), "clock-corrections", G_TYPE_UINT64,
      static_cast<guint64>(s.clock_corrections.load()), nullptr);
  gst_structure_set(st, "dispatched", G_TYPE_BOOLEAN, dispatched, "dispatch-handoffs",
                    G_TYPE_UINT64, static_cast<guint64>(p->dispatch_handoffs.load()),
                    "dispatch-blocked", G_TYPE_UINT64,
                    static_cast<guint64>(p->dispatch_blocked.load()), nullptr);
  return st;
}

// With task_state_lock held: a dispatcher holding the driver looks at its run
// control in its next round (a pause, EOS or switch makes it release the driver).
void kick_locked(SrcPrivate* p) {
  if (p->ticket) p->dispatcher->kick(p->ticket);
}

void set_playing(SrcPrivate* p, bool playing) {
  std::lock_guard state_lock(p->task_state_lock);
  if (p->run) p->run->set_playing(playing);
  kick_locked(p);
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
    case GST_STATE_CHANGE_PAUSED_TO_PLAYING:
      set_playing(p, true);
      break;
    case GST_STATE_CHANGE_PLAYING_TO_PAUSED:
      // Before chaining up: the task stops pushing at its next frame.
      set_playing(p, false);
      break;
    case GST_STATE_CHANGE_PAUSED_TO_READY:
      // Stop the task first so it cannot push while the pads go away.
      end_run(self);
      break;
    default:
      break;
  }

  ret = GST_ELEMENT_CLASS(gst_arcly_src_parent_class)->change_state(element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) {
    // The element stays in READY: nothing of this run may keep going.
    if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) end_run(self);
    return ret;
  }
  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED ||
      transition == GST_STATE_CHANGE_PLAYING_TO_PAUSED)
    ret = GST_STATE_CHANGE_NO_PREROLL;
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
  if (!p->run || !p->run->request_eos()) {
    GST_DEBUG_OBJECT(self, "EOS refused: not streaming");
    return FALSE;
  }
  kick_locked(p);
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
    case PROP_MAX_LAG:
      s.max_lag_ms = g_value_get_uint(value);
      break;
    case PROP_DISPATCH:
      s.dispatch = g_value_get_boolean(value);
      break;
    default:
      break;
  }
}

// With the object lock held; `key` is valid. The settings take the key (for
// get_uri, the next run) and the running driver switches to it.
void switch_stream_locked(GstArclySrc* self, const std::string& key) {
  SrcPrivate* p = self->priv;
  if (p->settings.stream_key == key) return;
  GST_INFO_OBJECT(self, "stream %s -> %s", p->settings.stream_key.c_str(), key.c_str());
  p->settings.stream_key = key;
  std::lock_guard state_lock(p->task_state_lock);
  if (p->run) p->run->switch_to(key);
  kick_locked(p);
}

}  // namespace

// `stream` in PAUSED or PLAYING: switch the running subscription to the key.
// An invalid key is refused with a WARNING message; the source plays on.
static void switch_stream(GstArclySrc* self, const std::string& key) {
  SrcPrivate* p = self->priv;
  std::string why;
  if (!arcly::StreamKey::try_parse(key, &why)) {
    GST_OBJECT_LOCK(self);
    const std::string current = p->settings.stream_key;
    GST_OBJECT_UNLOCK(self);
    GST_ELEMENT_WARNING(element_of(self), RESOURCE, SETTINGS,
                        ("cannot switch to stream \"%s\": %s; still playing %s", key.c_str(),
                         why.c_str(), current.c_str()),
                        ("%s", arcly::gst::kValidKeyHint));
    return;
  }
  GST_OBJECT_LOCK(self);
  switch_stream_locked(self, key);
  GST_OBJECT_UNLOCK(self);
}

static void gst_arcly_src_set_property(GObject* object, guint id, const GValue* value,
                                       GParamSpec* pspec) {
  auto* self = GST_ARCLY_SRC(object);
  if (id == PROP_0 || id > PROP_DISPATCH) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
    return;
  }
  if (id == PROP_STREAM) {
    const gchar* v = g_value_get_string(value);
    GST_OBJECT_LOCK(self);
    const bool stopped = arcly::elements::property_mutable_locked(
        element_of(self), static_cast<GParamFlags>(GST_PARAM_MUTABLE_READY));
    if (stopped) set_setting_locked(self->priv->settings, id, value);
    GST_OBJECT_UNLOCK(self);
    if (!stopped) switch_stream(self, v ? v : "");
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
    case PROP_MAX_LAG:
      g_value_set_uint(value, s.max_lag_ms);
      break;
    case PROP_DISPATCH:
      g_value_set_boolean(value, s.dispatch);
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
  if (gst_task_get_state(p->task) != GST_TASK_STOPPED || p->run)
    g_critical("arclysrc %s finalized with its streaming task still running",
               GST_OBJECT_NAME(self));
  gst_object_unref(p->task);
  g_rec_mutex_clear(&p->task_lock);
  delete p;
  self->priv = nullptr;
  G_OBJECT_CLASS(gst_arcly_src_parent_class)->finalize(object);
}

static void gst_arcly_src_init(GstArclySrc* self) {
  auto* p = new SrcPrivate(element_of(self));
  self->priv = p;
  p->settings.dispatch = default_dispatch();
  g_rec_mutex_init(&p->task_lock);
  p->task = gst_task_new(GST_DEBUG_FUNCPTR(task_loop), self, nullptr);
  gst_task_set_lock(p->task, &p->task_lock);
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
          "[A-Za-z0-9._-]. Required. Changeable while playing: the source switches to the new "
          "key at once (its configs and cached keyframe, then live) on the same pads, the "
          "running time continuing, no EOS or flush; element message arcly-switched",
          nullptr,
          static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                   GST_PARAM_MUTABLE_PLAYING)));
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
      gobject_class, PROP_MAX_LAG,
      g_param_spec_uint(
          "max-lag", "Maximum lag",
          "Milliseconds this subscriber may fall behind the publisher's newest frame (a slow or "
          "blocked downstream); beyond it, it skips to the newest cached keyframe (configs, "
          "keyframe, DISCONT) and posts arcly-max-lag. 0 = off. Keep it above a GOP",
          0, 3600000, 0, ready));
  g_object_class_install_property(
      gobject_class, PROP_DISPATCH,
      g_param_spec_boolean(
          "dispatch", "Dispatch",
          "Once streaming live, be served by the engine's few dispatcher threads (one per core) "
          "instead of a thread of its own: far less CPU and memory per subscriber for large "
          "fan-outs. A pause, EOS, switch or publisher change runs on the element's own thread "
          "again; a downstream whose push blocks over 20 ms (clock sync, a full queue) keeps "
          "it for the rest of the run. Default TRUE, or the environment's ARCLY_SRC_DISPATCH",
          TRUE, ready));
  g_object_class_install_property(
      gobject_class, PROP_IS_LIVE,
      g_param_spec_boolean("is-live", "Is live", "Always TRUE: arclysrc is a live source", TRUE,
                           static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed(
          "stats", "Statistics",
          "Subscriber statistics: frames, bytes, keyframes, dropped (frames skipped after "
          "lagging), lag-events, publishers (publish instances followed), lag (ns behind the "
          "publisher's newest frame), lag-resyncs (max-lag), upstream-latency (ns, the "
          "publisher's; -1 unknown), key-unit-requests (force-key-unit events received), "
          "clock-drift (ns the running time was moved to follow the pipeline clock's drift "
          "from the monotonic clock), clock-corrections (how many times), "
          "dispatched (a dispatcher thread serves it now), dispatch-handoffs, dispatch-blocked "
          "(pushes that blocked a dispatcher thread over 20 ms)",
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
  (void)arcly::gst::publisher_meta_caps();
}

// --- GstURIHandler ---
// arcly://app/stream?engine=NAME&wait=MS&start=MODE&persist=1&latency=MS&preroll=MS&max-lag=MS&dispatch=1
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
                               {"latency", PROP_LATENCY}, {"preroll", PROP_PRE_ROLL},
                               {"max-lag", PROP_MAX_LAG}, {"dispatch", PROP_DISPATCH}};

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
  Settings defaults;
  defaults.dispatch = default_dispatch();
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
  if (s.max_lag_ms != defaults.max_lag_ms) add("max-lag", std::to_string(s.max_lag_ms));
  if (s.dispatch != defaults.dispatch) add("dispatch", s.dispatch ? "1" : "0");
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
  SrcPrivate* p = self->priv;
  if (!arcly::elements::property_mutable_locked(
          element_of(self), static_cast<GParamFlags>(GST_PARAM_MUTABLE_READY))) {
    // Running: the URI may switch the stream key (as `stream` does); the
    // other settings belong to the run and need READY.
    Settings wanted = p->settings;
    for (const Parsed& v : values) set_setting_locked(wanted, v.id, &v.value);
    std::string fixed;
    const Settings& now = p->settings;
    for (const Parsed& v : values) {
      const bool same = (v.id == PROP_ENGINE && wanted.engine_name == now.engine_name) ||
                        (v.id == PROP_WAIT && wanted.wait_ms == now.wait_ms) ||
                        (v.id == PROP_START && wanted.start == now.start) ||
                        (v.id == PROP_PERSIST && wanted.persist == now.persist) ||
                        (v.id == PROP_LATENCY && wanted.latency_ms == now.latency_ms) ||
                        (v.id == PROP_PRE_ROLL && wanted.preroll_ms == now.preroll_ms) ||
                        (v.id == PROP_MAX_LAG && wanted.max_lag_ms == now.max_lag_ms) ||
                        (v.id == PROP_DISPATCH && wanted.dispatch == now.dispatch);
      if (!same) fixed += (fixed.empty() ? "" : ", ") + std::string(v.pspec->name);
    }
    if (!fixed.empty()) {
      const GstState state = GST_STATE(self);
      GST_OBJECT_UNLOCK(self);
      clear_values();
      g_set_error(error, GST_URI_ERROR, GST_URI_ERROR_BAD_STATE,
                  "cannot change %s of %s to '%s' in state %s: only the stream key can change "
                  "while running, the rest in NULL or READY",
                  fixed.c_str(), GST_OBJECT_NAME(self), uri, gst_element_state_get_name(state));
      return FALSE;
    }
    const bool changed = now.stream_key != key;
    switch_stream_locked(self, key);
    GST_OBJECT_UNLOCK(self);
    clear_values();
    if (changed) g_object_notify(G_OBJECT(self), "stream");
    return TRUE;
  }
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
