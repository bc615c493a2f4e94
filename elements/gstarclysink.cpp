/**
 * SECTION:element-arclysink
 * @title: arclysink
 * @see_also: arclysrc
 *
 * Publishes a pipeline into an arcly stream key (`app/stream`). Every request
 * pad `sink_%u` is one track of the stream; its caps travel with it, so any
 * format passes through. H.264, H.265, AAC and Opus configs (codec_data and
 * in-band SPS/PPS/VPS) are cached so that a late arclysrc can decode at once.
 * The payload is not copied: subscribers push the publisher's memory.
 *
 * Once every requested pad has its caps, the stream's track set is declared
 * complete, so a subscriber announces its pads (no-more-pads) at once; request
 * every pad before data flows.
 *
 * The publish slot is claimed on READY→PAUSED; a second publisher of the same
 * key fails its state change. EOS on every pad, or going back to READY, ends the
 * publish and every subscriber sees EOS. Buffers without timestamps are stamped
 * with the running time; non-TIME segments are refused.
 *
 * Subscribers' upstream force-key-unit requests become one force-key-unit
 * event upstream (to the encoder) per `key-unit-interval`. The upstream's
 * latency (a LATENCY query per publish) is published for subscribers'
 * LATENCY answers.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 videotestsrc is-live=true ! x264enc tune=zerolatency ! arclysink stream=live/cam \
 *     arclysrc stream=live/cam ! h264parse ! avdec_h264 ! autovideosink
 * ]| Publishes a test camera and watches it in the same process.
 * |[
 * gst-launch-1.0 arclysink name=pub stream=live/cam \
 *     videotestsrc is-live=true ! x264enc tune=zerolatency ! pub. \
 *     audiotestsrc is-live=true ! avenc_aac ! pub.
 * ]| Publishes a video and an audio track.
 */
// Thin GObject shell: state, pads and errors here; frame building lives in
// arcly-gst (TrackPublisher, engine registry). No exception leaves this file.
//
// Locking: the properties (`settings`) are protected by the object lock; the
// publish (`stream`, `ended`, `failed`, the pad map and each pad's `eos`) by
// SinkPrivate::lock. Functions named *_locked are called with that lock held.
// Each pad's TrackPublisher, segment and `config_instance` belong to the pad's
// streaming thread (and to state changes while the pad is inactive).
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstarclysink.h"

#include <gst/video/video.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "arcly/engine.hpp"
#include "arcly/error.hpp"
#include "arcly/stream_key.hpp"
#include "arcly_element.hpp"
#include "engine_registry.hpp"
#include "engine_time.hpp"
#include "gst_ptr.hpp"
#include "keys.hpp"
#include "track_publisher.hpp"

GST_DEBUG_CATEGORY_STATIC(gst_arcly_sink_debug);
#define GST_CAT_DEFAULT gst_arcly_sink_debug

namespace {

enum { PROP_0, PROP_STREAM, PROP_ENGINE, PROP_STATS, PROP_KEY_UNIT_INTERVAL };

constexpr guint kDefaultKeyUnitIntervalMs = 500;

struct Settings {
  std::string stream_key;
  std::string engine_name = arcly::gst::kDefaultEngineName;
  guint key_unit_interval_ms = kDefaultKeyUnitIntervalMs;
};

struct PadData {
  explicit PadData(std::uint32_t track) : publisher(track) {
    gst_segment_init(&segment, GST_FORMAT_TIME);
  }
  // Streaming thread of the pad.
  arcly::gst::TrackPublisher publisher;
  GstSegment segment;
  std::uint64_t config_instance = 0;   // the publish instance that has this track's config
  std::uint64_t latency_instance = 0;  // the publish instance told this pad's upstream latency
  bool eos = false;                    /* protected by SinkPrivate::lock */
  std::uint64_t announced = 0;         /* protected by SinkPrivate::lock: config_instance */
  GstClockTime latency = 0;            /* protected by SinkPrivate::lock: upstream min latency */
};

struct SinkPrivate {
  Settings settings; /* protected by the object lock */

  std::mutex lock;
  Settings run;                          /* protected by lock: snapshot at NULL->READY */
  std::shared_ptr<arcly::Engine> engine; /* protected by lock */
  std::optional<arcly::StreamKey> key;   /* protected by lock */
  arcly::StreamHandle stream;            /* protected by lock */
  bool ended = false;                    /* protected by lock: the publish ended on EOS */
  bool failed = false;          /* protected by lock: this publish already posted its error */
  std::uint32_t next_track = 0; /* protected by lock */
  std::map<GstPad*, std::unique_ptr<PadData>> pads; /* protected by lock */
  // Key units (force-key-unit towards the encoder), per publish.
  std::uint64_t key_unit_requests_seen = 0; /* protected by lock: Stream::key_unit_requests() */
  gint64 last_key_unit_us = 0;              /* protected by lock: monotonic; 0 = never */
  std::uint64_t key_units_forced = 0;       /* protected by lock */
  std::uint64_t key_units_limited = 0;      /* protected by lock: requests merged by the limit */
  // Pipeline clock -> engine time; lock-free, any streaming thread.
  arcly::gst::ClockBridge clock_bridge;
};

}  // namespace

struct _GstArclySink {
  GstElement parent;
  SinkPrivate* priv;
};

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wpedantic"
G_DEFINE_TYPE(GstArclySink, gst_arcly_sink, GST_TYPE_ELEMENT)
GST_ELEMENT_REGISTER_DEFINE(arclysink, "arclysink", GST_RANK_NONE, GST_TYPE_ARCLY_SINK)
#pragma GCC diagnostic pop

static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink_%u", GST_PAD_SINK, GST_PAD_REQUEST, GST_STATIC_CAPS_ANY);

namespace {

GstArclySink* from_parent(GstObject* parent) {
  return reinterpret_cast<GstArclySink*>(parent);
}
GstElement* element_of(GstArclySink* self) {
  return &self->parent;
}

std::string stream_key_of(GstArclySink* self) {
  std::lock_guard lock(self->priv->lock);
  return self->priv->run.stream_key;
}

// engine time - the pipeline clock's time (0 without a clock): see engine_time.hpp.
std::int64_t engine_offset(GstArclySink* self) {
  GstClock* clock = gst_element_get_clock(&self->parent);
  if (!clock) return 0;
  const std::int64_t offset = self->priv->clock_bridge.offset(clock);
  gst_object_unref(clock);
  return offset;
}

// Now, in engine time (the running time now + base time, translated).
std::int64_t engine_time_now(GstArclySink* self) {
  GstClock* clock = gst_element_get_clock(&self->parent);
  if (!clock) return arcly::gst::engine_now();
  const std::int64_t offset = self->priv->clock_bridge.offset(clock);
  const auto now = static_cast<std::int64_t>(gst_clock_get_time(clock));
  gst_object_unref(clock);
  return now + offset;
}

// Publisher timestamps are engine time (engine_time.hpp): the buffer's clock
// time (running time + base time) translated from the pipeline's clock, so
// subscribers relate them to their own clock and to other cameras. `ts` may lie
// before the segment (a DTS ahead of its PTS): negative running time.
std::int64_t to_publisher_time(GstElement* element, const GstSegment& segment, GstClockTime ts,
                               std::int64_t offset) {
  guint64 rt = 0;
  const int sign = gst_segment_to_running_time_full(&segment, GST_FORMAT_TIME, ts, &rt);
  const auto base = static_cast<std::int64_t>(gst_element_get_base_time(element));
  const auto srt = static_cast<std::int64_t>(rt);
  return (sign >= 0 ? base + srt : base - srt) + offset;
}

void end_publish_locked(SinkPrivate* p) {
  if (p->stream && p->engine) {
    try {
      p->engine->end_publish(p->stream);
    } catch (...) {
      p->stream->close();
    }
  }
  p->stream.reset();
}

// Posts the publish's error once: every pad that meets the same failure (a
// stream closed under the publisher) returns GST_FLOW_ERROR, but the
// application hears about it one time.
void post_failure(GstArclySink* self, GQuark domain, gint code, const std::string& text,
                  const std::string& debug) {
  {
    std::lock_guard lock(self->priv->lock);
    if (self->priv->failed) return;
    self->priv->failed = true;
  }
  gst_element_message_full(
      element_of(self), GST_MESSAGE_ERROR, domain, code, g_strdup(text.c_str()),
      debug.empty() ? nullptr : g_strdup(debug.c_str()), __FILE__, GST_FUNCTION, __LINE__);
}

// Claims the key (READY->PAUSED, or a restart after EOS + flush). Returns the
// error's human text ("" on success); `busy` tells a taken key apart.
std::string claim_locked(GstArclySink* self, bool* busy) {
  SinkPrivate* p = self->priv;
  try {
    p->stream = p->engine->start_publish(*p->key);
    p->ended = false;
    p->failed = false;
    p->key_unit_requests_seen = 0;
    p->last_key_unit_us = 0;
    for (auto& [pad, data] : p->pads) data->eos = false;
    GST_INFO_OBJECT(self, "publishing %s on engine %s (publish #%" G_GUINT64_FORMAT ")",
                    p->run.stream_key.c_str(), p->run.engine_name.c_str(), p->stream->instance());
    return {};
  } catch (const arcly::Error& e) {
    *busy = e.code() == arcly::Errc::StreamAlreadyPublishing ||
            e.code() == arcly::Errc::PublisherLimitReached;
    return e.what();
  } catch (const std::exception& e) {
    return e.what();
  }
}

void post_claim_error(GstArclySink* self, const std::string& message, bool busy) {
  if (busy)
    GST_ELEMENT_ERROR(element_of(self), RESOURCE, BUSY, ("%s", message.c_str()),
                      ("the key is published by another element or ingest worker"));
  else
    GST_ELEMENT_ERROR(element_of(self), RESOURCE, OPEN_WRITE, ("%s", message.c_str()), (nullptr));
}

// After a pad's config went into `stream`: once every pad's has, the track set
// is complete and subscribers need not wait for more tracks (request every pad
// before data flows: a pad requested later is a track subscribers may ignore).
void note_config_published(GstArclySink* self, PadData* pd, const arcly::StreamHandle& stream) {
  SinkPrivate* p = self->priv;
  std::lock_guard lock(p->lock);
  pd->announced = stream->instance();
  for (const auto& [pad, data] : p->pads)
    if (data->announced != stream->instance()) return;
  if (!stream->tracks_complete())
    GST_DEBUG_OBJECT(self, "every pad has caps: %zu tracks, complete", p->pads.size());
  stream->declare_tracks_complete();
}

// The track's config goes first into every publish instance this pad writes to
// (caps arrive once, a restarted publish needs them again).
void publish_config_if_needed(GstArclySink* self, PadData* pd, const arcly::StreamHandle& stream) {
  if (!pd->publisher.has_caps() || pd->config_instance == stream->instance()) return;
  stream->publish_frame(pd->publisher.current_config(engine_time_now(self)));
  pd->config_instance = stream->instance();
  note_config_published(self, pd, stream);
}

// Subscribers asked for a keyframe (Stream::request_key_unit): a video pad
// sends one upstream force-key-unit to its encoder, at most one per
// key-unit-interval for the whole stream (as GStreamer's StreamProducer and
// webrtcsink limit PLIs): requests meanwhile are merged into the one sent.
void forward_key_unit_request(GstArclySink* self, GstPad* pad, PadData* pd,
                              const arcly::StreamHandle& stream) {
  const arcly::TrackInfo* info = pd->publisher.info();
  if (!info || info->kind != arcly::MediaKind::Video) return;
  SinkPrivate* p = self->priv;
  const std::uint64_t requests = stream->key_unit_requests();
  guint count = 0;
  {
    std::lock_guard lock(p->lock);
    if (requests == p->key_unit_requests_seen) return;
    const std::uint64_t fresh = requests - p->key_unit_requests_seen;
    p->key_unit_requests_seen = requests;
    const gint64 now = g_get_monotonic_time();
    const gint64 interval = static_cast<gint64>(p->run.key_unit_interval_ms) * 1000;
    if (p->last_key_unit_us != 0 && now - p->last_key_unit_us < interval) {
      p->key_units_limited += fresh;
      GST_DEBUG_OBJECT(pad,
                       "%" G_GUINT64_FORMAT
                       " key-unit requests within %u ms of the last: "
                       "merged into it",
                       fresh, p->run.key_unit_interval_ms);
      return;
    }
    p->last_key_unit_us = now;
    count = static_cast<guint>(++p->key_units_forced);
  }
  GST_INFO_OBJECT(pad, "subscribers asked for a keyframe: force-key-unit #%u upstream", count);
  gst_pad_push_event(pad,
                     gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, count));
}

// The latency upstream of this pad (a LATENCY query, as a sink's own would
// report it), published on the stream as the largest of all pads', for the
// subscribers' LATENCY answers. Asked once per publish and after new caps.
void publish_upstream_latency(GstArclySink* self, GstPad* pad, PadData* pd,
                              const arcly::StreamHandle& stream) {
  if (pd->latency_instance == stream->instance()) return;
  pd->latency_instance = stream->instance();
  GstQuery* query = gst_query_new_latency();
  gboolean live = FALSE;
  GstClockTime min = 0, max = GST_CLOCK_TIME_NONE;
  if (gst_pad_peer_query(pad, query)) gst_query_parse_latency(query, &live, &min, &max);
  gst_query_unref(query);
  const GstClockTime mine = live && GST_CLOCK_TIME_IS_VALID(min) ? min : 0;
  SinkPrivate* p = self->priv;
  GstClockTime largest = 0;
  {
    std::lock_guard lock(p->lock);
    pd->latency = mine;
    for (const auto& [other, data] : p->pads) largest = std::max(largest, data->latency);
  }
  GST_DEBUG_OBJECT(pad,
                   "upstream latency %" GST_TIME_FORMAT " (live %d); stream's %" GST_TIME_FORMAT,
                   GST_TIME_ARGS(mine), live, GST_TIME_ARGS(largest));
  stream->set_upstream_latency(std::chrono::nanoseconds(largest));
}

GstFlowReturn sink_chain_impl(GstArclySink* self, GstPad* pad, GstBuffer* buffer) {
  SinkPrivate* p = self->priv;
  GstElement* element = element_of(self);
  auto* pd = static_cast<PadData*>(gst_pad_get_element_private(pad));
  arcly::StreamHandle stream;
  {
    std::lock_guard lock(p->lock);
    if (p->failed) return GST_FLOW_ERROR;
    stream = p->stream;
    if (!stream) return p->ended ? GST_FLOW_EOS : GST_FLOW_FLUSHING;
  }
  if (!pd->publisher.has_caps()) {
    post_failure(self, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
                 "arclysink received data before caps",
                 std::string("pad ") + GST_PAD_NAME(pad) + ", stream " + stream_key_of(self));
    return GST_FLOW_NOT_NEGOTIATED;
  }
  publish_config_if_needed(self, pd, stream);
  publish_upstream_latency(self, pad, pd, stream);
  forward_key_unit_request(self, pad, pd, stream);

  std::int64_t pts = 0;
  const std::int64_t offset = engine_offset(self);  // one for the buffer's pts and dts
  if (GST_BUFFER_PTS_IS_VALID(buffer)) {
    // Only what lies inside the segment is published; a buffer that overlaps
    // its start begins at the start (as basesink clips).
    const GstClockTime start = GST_BUFFER_PTS(buffer);
    const GstClockTime stop = GST_BUFFER_DURATION_IS_VALID(buffer)
                                  ? start + GST_BUFFER_DURATION(buffer)
                                  : GST_CLOCK_TIME_NONE;
    guint64 clip_start = 0, clip_stop = 0;
    if (!gst_segment_clip(&pd->segment, GST_FORMAT_TIME, start, stop, &clip_start, &clip_stop)) {
      GST_LOG_OBJECT(pad, "dropping buffer outside the segment: %" GST_PTR_FORMAT,
                     static_cast<void*>(buffer));
      return GST_FLOW_OK;
    }
    pts = to_publisher_time(element, pd->segment, clip_start, offset);
  } else {
    pts = engine_time_now(self);  // running time now + base time, translated
  }
  std::optional<std::int64_t> dts;
  if (GST_BUFFER_DTS_IS_VALID(buffer))
    dts = to_publisher_time(element, pd->segment, GST_BUFFER_DTS(buffer), offset);
  const std::int64_t duration = GST_BUFFER_DURATION_IS_VALID(buffer)
                                    ? static_cast<std::int64_t>(GST_BUFFER_DURATION(buffer))
                                    : 0;

  for (auto& frame : pd->publisher.on_buffer(buffer, pts, dts, duration))
    stream->publish_frame(std::move(frame));
  return GST_FLOW_OK;
}

GstFlowReturn sink_chain(GstPad* pad, GstObject* parent, GstBuffer* buffer) {
  GstArclySink* self = from_parent(parent);
  arcly::gst::BufferPtr owned(buffer);
  try {
    return sink_chain_impl(self, pad, buffer);
  } catch (const arcly::Error& e) {
    const std::string key = stream_key_of(self);
    if (e.code() == arcly::Errc::StreamClosed)
      post_failure(self, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_WRITE,
                   "stream " + key + " ended while publishing",
                   std::string(e.what()) + " (ended by the engine, e.g. its idle reaper)");
    else
      post_failure(self, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
                   "publishing to stream " + key + " failed", e.what());
  } catch (const std::exception& e) {
    post_failure(self, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
                 "publishing to stream " + stream_key_of(self) + " failed", e.what());
  }
  return GST_FLOW_ERROR;
}

// Called with lock held. Ends the publish once every pad saw EOS; returns TRUE
// when the caller must post the EOS message (outside the lock).
bool check_all_eos_locked(GstArclySink* self) {
  SinkPrivate* p = self->priv;
  if (p->ended || p->pads.empty()) return false;
  for (const auto& [pad, data] : p->pads)
    if (!data->eos) return false;
  GST_INFO_OBJECT(self, "EOS on every pad: ending the publish of %s", p->run.stream_key.c_str());
  end_publish_locked(p);
  p->ended = true;
  return true;
}

void post_eos(GstArclySink* self) {
  gst_element_post_message(element_of(self), gst_message_new_eos(GST_OBJECT(self)));
}

gboolean sink_event_impl(GstArclySink* self, GstPad* pad, GstEvent* event) {
  SinkPrivate* p = self->priv;
  auto* pd = static_cast<PadData*>(gst_pad_get_element_private(pad));
  switch (GST_EVENT_TYPE(event)) {
    case GST_EVENT_CAPS: {
      GstCaps* caps = nullptr;
      gst_event_parse_caps(event, &caps);
      arcly::StreamHandle stream;
      {
        std::lock_guard lock(p->lock);
        stream = p->stream;
      }
      const std::int64_t now = engine_time_now(self);
      arcly::MediaFrame config = pd->publisher.on_caps(caps, now);
      GST_DEBUG_OBJECT(pad, "track %u caps %" GST_PTR_FORMAT, pd->publisher.track(),
                       static_cast<void*>(caps));
      pd->latency_instance = 0;  // new caps, perhaps a new upstream: ask again
      if (stream) {
        stream->publish_frame(std::move(config));
        pd->config_instance = stream->instance();
        note_config_published(self, pd, stream);
      } else {
        pd->config_instance = 0;  // published with the first buffer of the next publish
      }
      return TRUE;
    }
    case GST_EVENT_SEGMENT: {
      const GstSegment* segment = nullptr;
      gst_event_parse_segment(event, &segment);
      if (segment->format != GST_FORMAT_TIME) {
        post_failure(self, GST_STREAM_ERROR, GST_STREAM_ERROR_FORMAT,
                     std::string("arclysink needs TIME segments, pad ") + GST_PAD_NAME(pad) +
                         " got a " + gst_format_get_name(segment->format) + " segment (stream " +
                         stream_key_of(self) + ")",
                     "put a parser or timestamping element in front of arclysink");
        return FALSE;
      }
      gst_segment_copy_into(segment, &pd->segment);
      return TRUE;
    }
    case GST_EVENT_EOS: {
      bool post = false;
      {
        std::lock_guard lock(p->lock);
        pd->eos = true;
        post = check_all_eos_locked(self);
      }
      if (post) post_eos(self);
      return TRUE;
    }
    case GST_EVENT_FLUSH_STOP: {
      gst_segment_init(&pd->segment, GST_FORMAT_TIME);
      std::string message;
      bool busy = false;
      {
        std::lock_guard lock(p->lock);
        pd->eos = false;
        if (p->ended) {
          // EOS ended the publish; a flushing seek starts a new one (as a sink
          // leaves EOS on flush), subscribers see a new publisher.
          GST_INFO_OBJECT(self, "flushed after EOS: publishing %s again",
                          p->run.stream_key.c_str());
          message = claim_locked(self, &busy);
          if (!message.empty()) p->failed = true;
        }
      }
      if (!message.empty()) post_claim_error(self, message, busy);
      return TRUE;
    }
    default:
      return TRUE;
  }
}

gboolean sink_event(GstPad* pad, GstObject* parent, GstEvent* event) {
  GstArclySink* self = from_parent(parent);
  gboolean ret = FALSE;
  try {
    ret = sink_event_impl(self, pad, event);
  } catch (const std::exception& e) {
    post_failure(self, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
                 "publishing to stream " + stream_key_of(self) + " failed",
                 std::string("handling a ") + GST_EVENT_TYPE_NAME(event) + " event: " + e.what());
  }
  gst_event_unref(event);
  return ret;
}

// "no stream key set" / "invalid stream key ..." — messages name the key and
// show what a valid one looks like.
bool resolve(GstArclySink* self) {
  SinkPrivate* p = self->priv;
  Settings settings;
  GST_OBJECT_LOCK(self);
  settings = p->settings;
  GST_OBJECT_UNLOCK(self);
  std::string message;
  try {
    auto key = arcly::gst::parse_stream_key(settings.stream_key, "arclysink");
    auto engine = arcly::gst::engine_for(settings.engine_name);
    std::lock_guard lock(p->lock);
    p->run = settings;
    p->key = key;
    p->engine = std::move(engine);
    return true;
  } catch (const std::exception& e) {
    message = e.what();
  }
  GST_ELEMENT_ERROR(element_of(self), RESOURCE, SETTINGS, ("%s", message.c_str()), (nullptr));
  return false;
}

bool claim(GstArclySink* self) {
  std::string message;
  bool busy = false;
  {
    std::lock_guard lock(self->priv->lock);
    message = claim_locked(self, &busy);
  }
  if (message.empty()) return true;
  post_claim_error(self, message, busy);
  return false;
}

GstStructure* make_stats(GstArclySink* self) {
  SinkPrivate* p = self->priv;
  arcly::StreamHandle stream;
  {
    std::lock_guard lock(p->lock);
    stream = p->stream;
  }
  guint64 forced = 0, limited = 0, requests = 0;
  {
    std::lock_guard lock(p->lock);
    forced = p->key_units_forced;
    limited = p->key_units_limited;
  }
  if (stream) requests = stream->key_unit_requests();
  arcly::QosSnapshot q;
  if (stream) {
    try {
      q = stream->qos();
    } catch (...) {
    }
  }
  return gst_structure_new(
      "arclysink-stats", "publishing", G_TYPE_BOOLEAN, stream != nullptr, "frames", G_TYPE_UINT64,
      static_cast<guint64>(q.frames), "bytes", G_TYPE_UINT64, static_cast<guint64>(q.bytes),
      "bitrate", G_TYPE_DOUBLE, q.bitrate_bps, "fps", G_TYPE_DOUBLE, q.fps, "keyframes",
      G_TYPE_UINT64, static_cast<guint64>(q.keyframes), "subscribers", G_TYPE_UINT,
      static_cast<guint>(q.subscribers), "upstream-latency", G_TYPE_UINT64,
      static_cast<guint64>(stream ? stream->upstream_latency().count() : 0), "key-unit-requests",
      G_TYPE_UINT64, requests, "key-units-forced", G_TYPE_UINT64, forced, "key-units-limited",
      G_TYPE_UINT64, limited, nullptr);
}

}  // namespace

static GstPad* gst_arcly_sink_request_new_pad(GstElement* element, GstPadTemplate* templ,
                                              const gchar* name, const GstCaps*) {
  auto* self = GST_ARCLY_SINK(element);
  SinkPrivate* p = self->priv;
  GstPad* pad = nullptr;
  try {
    std::lock_guard lock(p->lock);
    std::uint32_t track = p->next_track;
    if (name) {
      guint index = 0;
      if (sscanf(name, "sink_%u", &index) != 1) return nullptr;
      track = index;
    }
    for (const auto& [other, data] : p->pads)
      if (data->publisher.track() == track) return nullptr;
    p->next_track = std::max(p->next_track, track + 1);
    gchar* pad_name = g_strdup_printf("sink_%u", track);
    pad = gst_pad_new_from_template(templ, pad_name);
    g_free(pad_name);
    auto data = std::make_unique<PadData>(track);
    gst_pad_set_element_private(pad, data.get());
    p->pads.emplace(pad, std::move(data));
  } catch (const std::exception& e) {
    GST_ERROR_OBJECT(self, "cannot create pad: %s", e.what());
    if (pad) gst_object_unref(pad);
    return nullptr;
  }
  // The pad functions dereference the element: never call them without a parent.
  GST_OBJECT_FLAG_SET(pad, GST_PAD_FLAG_NEED_PARENT);
  gst_pad_set_chain_function(pad, GST_DEBUG_FUNCPTR(sink_chain));
  gst_pad_set_event_function(pad, GST_DEBUG_FUNCPTR(sink_event));
  gst_element_add_pad(element, pad);
  return pad;
}

static void gst_arcly_sink_release_pad(GstElement* element, GstPad* pad) {
  auto* self = GST_ARCLY_SINK(element);
  SinkPrivate* p = self->priv;
  gst_element_remove_pad(element, pad);  // deactivates: waits for the pad's streaming thread
  std::unique_ptr<PadData> data;
  bool post = false;
  {
    std::lock_guard lock(p->lock);
    auto it = p->pads.find(pad);
    if (it != p->pads.end()) {
      data = std::move(it->second);
      p->pads.erase(it);
    }
    post = check_all_eos_locked(self);
  }
  if (post) post_eos(self);
}

static GstStateChangeReturn gst_arcly_sink_change_state(GstElement* element,
                                                        GstStateChange transition) {
  auto* self = GST_ARCLY_SINK(element);
  SinkPrivate* p = self->priv;
  switch (transition) {
    case GST_STATE_CHANGE_NULL_TO_READY:
      if (!resolve(self)) return GST_STATE_CHANGE_FAILURE;
      break;
    case GST_STATE_CHANGE_READY_TO_PAUSED:
      if (!claim(self)) return GST_STATE_CHANGE_FAILURE;
      break;
    default:
      break;
  }

  GstStateChangeReturn ret =
      GST_ELEMENT_CLASS(gst_arcly_sink_parent_class)->change_state(element, transition);
  if (ret == GST_STATE_CHANGE_FAILURE) {
    if (transition == GST_STATE_CHANGE_READY_TO_PAUSED) {
      std::lock_guard lock(p->lock);
      end_publish_locked(p);
    }
    return ret;
  }

  switch (transition) {
    case GST_STATE_CHANGE_PAUSED_TO_READY: {
      std::lock_guard lock(p->lock);  // pads are inactive now: no chain runs
      GST_INFO_OBJECT(self, "leaving PAUSED: ending the publish of %s", p->run.stream_key.c_str());
      end_publish_locked(p);
      p->ended = false;
      p->failed = false;
      for (auto& [pad, data] : p->pads) {
        data->eos = false;
        data->config_instance = 0;
        data->latency_instance = 0;
        gst_segment_init(&data->segment, GST_FORMAT_TIME);
      }
      break;
    }
    case GST_STATE_CHANGE_READY_TO_NULL: {
      std::lock_guard lock(p->lock);
      p->engine.reset();
      p->key.reset();
      break;
    }
    default:
      break;
  }
  return ret;
}

static void gst_arcly_sink_set_property(GObject* object, guint id, const GValue* value,
                                        GParamSpec* pspec) {
  auto* self = GST_ARCLY_SINK(object);
  SinkPrivate* p = self->priv;
  GST_OBJECT_LOCK(self);
  if (!arcly::elements::property_mutable_locked(element_of(self), pspec->flags)) {
    arcly::elements::warn_immutable(GST_CAT_DEFAULT, element_of(self), pspec);
    GST_OBJECT_UNLOCK(self);
    return;
  }
  switch (id) {
    case PROP_STREAM: {
      const gchar* s = g_value_get_string(value);
      p->settings.stream_key = s ? s : "";
      break;
    }
    case PROP_ENGINE: {
      const gchar* s = g_value_get_string(value);
      p->settings.engine_name = (s && *s) ? s : arcly::gst::kDefaultEngineName;
      break;
    }
    case PROP_KEY_UNIT_INTERVAL:
      p->settings.key_unit_interval_ms = g_value_get_uint(value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_arcly_sink_get_property(GObject* object, guint id, GValue* value,
                                        GParamSpec* pspec) {
  auto* self = GST_ARCLY_SINK(object);
  SinkPrivate* p = self->priv;
  switch (id) {
    case PROP_STREAM:
      GST_OBJECT_LOCK(self);
      g_value_set_string(value,
                         p->settings.stream_key.empty() ? nullptr : p->settings.stream_key.c_str());
      GST_OBJECT_UNLOCK(self);
      break;
    case PROP_ENGINE:
      GST_OBJECT_LOCK(self);
      g_value_set_string(value, p->settings.engine_name.c_str());
      GST_OBJECT_UNLOCK(self);
      break;
    case PROP_KEY_UNIT_INTERVAL:
      GST_OBJECT_LOCK(self);
      g_value_set_uint(value, p->settings.key_unit_interval_ms);
      GST_OBJECT_UNLOCK(self);
      break;
    case PROP_STATS:
      g_value_take_boxed(value, make_stats(self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
  }
}

static void gst_arcly_sink_finalize(GObject* object) {
  auto* self = GST_ARCLY_SINK(object);
  {
    std::lock_guard lock(self->priv->lock);
    end_publish_locked(self->priv);
  }
  delete self->priv;
  self->priv = nullptr;
  G_OBJECT_CLASS(gst_arcly_sink_parent_class)->finalize(object);
}

static void gst_arcly_sink_init(GstArclySink* self) {
  self->priv = new SinkPrivate;
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SINK);
}

static void gst_arcly_sink_class_init(GstArclySinkClass* klass) {
  GObjectClass* gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass* element_class = GST_ELEMENT_CLASS(klass);

  gobject_class->set_property = GST_DEBUG_FUNCPTR(gst_arcly_sink_set_property);
  gobject_class->get_property = GST_DEBUG_FUNCPTR(gst_arcly_sink_get_property);
  gobject_class->finalize = GST_DEBUG_FUNCPTR(gst_arcly_sink_finalize);

  const auto ready = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                              GST_PARAM_MUTABLE_READY);
  g_object_class_install_property(
      gobject_class, PROP_STREAM,
      g_param_spec_string(
          "stream", "Stream key",
          "Stream key to publish, as app/stream (e.g. live/cam): two parts of 1-64 characters "
          "[A-Za-z0-9._-]. Required; the key is claimed on READY->PAUSED",
          nullptr, ready));
  g_object_class_install_property(
      gobject_class, PROP_ENGINE,
      g_param_spec_string(
          "engine", "Engine",
          "Name of the arcly engine to publish into; elements naming the same engine in one "
          "process share its streams. Unknown names get a default engine accepting any app",
          arcly::gst::kDefaultEngineName, ready));
  g_object_class_install_property(
      gobject_class, PROP_STATS,
      g_param_spec_boxed(
          "stats", "Statistics",
          "Publish statistics: frames, bytes, bitrate (bit/s), fps, keyframes, subscribers, "
          "upstream-latency (ns, published for subscribers), key-unit-requests (from "
          "subscribers), key-units-forced (force-key-unit events sent upstream), "
          "key-units-limited (requests merged by key-unit-interval)",
          GST_TYPE_STRUCTURE, static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  g_object_class_install_property(
      gobject_class, PROP_KEY_UNIT_INTERVAL,
      g_param_spec_uint(
          "key-unit-interval", "Key unit interval",
          "Milliseconds between two force-key-unit events sent upstream to the encoder when "
          "subscribers ask for a keyframe (requests meanwhile are merged); 0 = no limit",
          0, 60000, kDefaultKeyUnitIntervalMs, ready));

  element_class->request_new_pad = GST_DEBUG_FUNCPTR(gst_arcly_sink_request_new_pad);
  element_class->release_pad = GST_DEBUG_FUNCPTR(gst_arcly_sink_release_pad);
  element_class->change_state = GST_DEBUG_FUNCPTR(gst_arcly_sink_change_state);

  gst_element_class_add_static_pad_template(element_class, &sink_template);
  gst_element_class_set_static_metadata(
      element_class, "arcly stream publisher", "Sink/Network",
      "Publishes its request pads as the tracks of an arcly live stream key, shared "
      "zero-copy with every arclysrc of the same engine in the process. Example: "
      "videotestsrc is-live=true ! x264enc tune=zerolatency ! arclysink stream=live/cam; "
      "two tracks: arclysink name=pub stream=live/cam  v4l2src ! x264enc ! pub.  "
      "pulsesrc ! avenc_aac ! pub.",
      "arcly project");
  GST_DEBUG_CATEGORY_INIT(gst_arcly_sink_debug, "arclysink", 0, "arcly stream publisher");
}
