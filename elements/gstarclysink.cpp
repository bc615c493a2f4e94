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
 * The publish slot is claimed on READY→PAUSED; a second publisher of the same
 * key fails its state change. EOS on every pad, or going back to READY, ends the
 * publish and every subscriber sees EOS. Buffers without timestamps are stamped
 * with the running time; non-TIME segments are refused.
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
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstarclysink.h"

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "arcly/engine.hpp"
#include "arcly/error.hpp"
#include "arcly/stream_key.hpp"
#include "engine_registry.hpp"
#include "gst_ptr.hpp"
#include "keys.hpp"
#include "track_publisher.hpp"

GST_DEBUG_CATEGORY_STATIC(gst_arcly_sink_debug);
#define GST_CAT_DEFAULT gst_arcly_sink_debug

namespace {

enum { PROP_0, PROP_STREAM, PROP_ENGINE, PROP_STATS };

struct PadData {
  explicit PadData(std::uint32_t track) : publisher(track) {
    gst_segment_init(&segment, GST_FORMAT_TIME);
  }
  arcly::gst::TrackPublisher publisher;
  GstSegment segment;
  bool eos = false;
};

struct SinkPrivate {
  std::mutex lock;  // guards everything below
  std::string stream_key;
  std::string engine_name = arcly::gst::kDefaultEngineName;
  std::shared_ptr<arcly::Engine> engine;
  std::optional<arcly::StreamKey> key;
  arcly::StreamHandle stream;
  bool ended = false;  // the publish ended on EOS
  std::uint32_t next_track = 0;
  std::map<GstPad*, std::unique_ptr<PadData>> pads;
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

std::int64_t clock_now_or_monotonic(GstElement* element) {
  if (GstClock* clock = gst_element_get_clock(element)) {
    const GstClockTime now = gst_clock_get_time(clock);
    gst_object_unref(clock);
    return static_cast<std::int64_t>(now);
  }
  return g_get_monotonic_time() * 1000;
}

// Publisher timestamps are absolute clock times (running time + base time), so
// subscribers can relate them to their own clock and to other cameras.
std::optional<std::int64_t> to_publisher_time(GstElement* element, const GstSegment& segment,
                                              GstClockTime ts) {
  guint64 rt = 0;
  const int sign = gst_segment_to_running_time_full(&segment, GST_FORMAT_TIME, ts, &rt);
  if (sign == 0) return std::nullopt;
  const auto base = static_cast<std::int64_t>(gst_element_get_base_time(element));
  const auto srt = static_cast<std::int64_t>(rt);
  return sign > 0 ? base + srt : base - srt;
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

GstFlowReturn sink_chain_impl(GstArclySink* self, GstPad* pad, GstBuffer* buffer) {
  SinkPrivate* p = self->priv;
  GstElement* element = element_of(self);
  auto* pd = static_cast<PadData*>(gst_pad_get_element_private(pad));
  arcly::StreamHandle stream;
  {
    std::lock_guard lock(p->lock);
    stream = p->stream;
    if (!stream) return p->ended ? GST_FLOW_EOS : GST_FLOW_FLUSHING;
  }
  if (!pd->publisher.has_caps()) {
    GST_ELEMENT_ERROR(element, CORE, NEGOTIATION,
                      ("arclysink: pad %s received data before caps", GST_PAD_NAME(pad)),
                      (nullptr));
    return GST_FLOW_NOT_NEGOTIATED;
  }

  std::int64_t pts = 0;
  if (GST_BUFFER_PTS_IS_VALID(buffer)) {
    auto t = to_publisher_time(element, pd->segment, GST_BUFFER_PTS(buffer));
    if (!t) {
      GST_LOG_OBJECT(pad, "dropping buffer outside the segment");
      return GST_FLOW_OK;
    }
    pts = *t;
  } else {
    pts = clock_now_or_monotonic(element);  // running time now + base time
  }
  std::optional<std::int64_t> dts;
  if (GST_BUFFER_DTS_IS_VALID(buffer))
    dts = to_publisher_time(element, pd->segment, GST_BUFFER_DTS(buffer));
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
    if (e.code() == arcly::Errc::StreamClosed) {
      GST_ELEMENT_ERROR(
          element_of(self), RESOURCE, WRITE,
          ("stream %s ended while publishing: %s", self->priv->stream_key.c_str(), e.what()),
          (nullptr));
    } else {
      GST_ELEMENT_ERROR(
          element_of(self), STREAM, FAILED,
          ("publishing to stream %s failed: %s", self->priv->stream_key.c_str(), e.what()),
          (nullptr));
    }
  } catch (const std::exception& e) {
    GST_ELEMENT_ERROR(
        element_of(self), STREAM, FAILED,
        ("publishing to stream %s failed: %s", self->priv->stream_key.c_str(), e.what()),
        (nullptr));
  }
  return GST_FLOW_ERROR;
}

void check_all_eos(GstArclySink* self) {
  SinkPrivate* p = self->priv;
  bool post = false;
  {
    std::lock_guard lock(p->lock);
    if (p->ended || p->pads.empty()) return;
    for (const auto& [pad, data] : p->pads)
      if (!data->eos) return;
    GST_INFO_OBJECT(self, "EOS on every pad: ending the publish of %s", p->stream_key.c_str());
    end_publish_locked(p);
    p->ended = true;
    post = true;
  }
  if (post) gst_element_post_message(element_of(self), gst_message_new_eos(GST_OBJECT(self)));
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
      const std::int64_t now = clock_now_or_monotonic(element_of(self));
      arcly::MediaFrame config = pd->publisher.on_caps(caps, now);
      GST_DEBUG_OBJECT(pad, "track %u caps %" GST_PTR_FORMAT, pd->publisher.track(),
                       static_cast<void*>(caps));
      if (stream) stream->publish_frame(std::move(config));
      return TRUE;
    }
    case GST_EVENT_SEGMENT: {
      const GstSegment* segment = nullptr;
      gst_event_parse_segment(event, &segment);
      if (segment->format != GST_FORMAT_TIME) {
        GST_ELEMENT_ERROR(
            element_of(self), STREAM, FORMAT,
            ("arclysink needs TIME segments, pad %s got a %s segment "
             "(stream %s)",
             GST_PAD_NAME(pad), gst_format_get_name(segment->format), p->stream_key.c_str()),
            (nullptr));
        return FALSE;
      }
      gst_segment_copy_into(segment, &pd->segment);
      return TRUE;
    }
    case GST_EVENT_EOS:
      pd->eos = true;
      check_all_eos(self);
      return TRUE;
    case GST_EVENT_FLUSH_STOP:
      gst_segment_init(&pd->segment, GST_FORMAT_TIME);
      pd->eos = false;
      return TRUE;
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
    GST_ELEMENT_ERROR(element_of(self), STREAM, FAILED,
                      ("stream %s: cannot handle %s event: %s", self->priv->stream_key.c_str(),
                       GST_EVENT_TYPE_NAME(event), e.what()),
                      (nullptr));
  }
  gst_event_unref(event);
  return ret;
}

// "no stream key set" / "invalid stream key ..." — messages name the key and
// show what a valid one looks like.
bool resolve(GstArclySink* self) {
  SinkPrivate* p = self->priv;
  std::string message;
  try {
    std::lock_guard lock(p->lock);
    p->key = arcly::gst::parse_stream_key(p->stream_key, "arclysink");
    p->engine = arcly::gst::engine_for(p->engine_name);
    return true;
  } catch (const std::exception& e) {
    message = e.what();
  }
  GST_ELEMENT_ERROR(element_of(self), RESOURCE, SETTINGS, ("%s", message.c_str()), (nullptr));
  return false;
}

bool claim(GstArclySink* self) {
  SinkPrivate* p = self->priv;
  std::string message;
  bool busy = false;
  try {
    std::lock_guard lock(p->lock);
    p->stream = p->engine->start_publish(*p->key);
    p->ended = false;
    for (auto& [pad, data] : p->pads) data->eos = false;
    GST_INFO_OBJECT(self, "publishing %s on engine %s", p->stream_key.c_str(),
                    p->engine_name.c_str());
    return true;
  } catch (const arcly::Error& e) {
    busy = e.code() == arcly::Errc::StreamAlreadyPublishing ||
           e.code() == arcly::Errc::PublisherLimitReached;
    message = e.what();
  } catch (const std::exception& e) {
    message = e.what();
  }
  if (busy)
    GST_ELEMENT_ERROR(element_of(self), RESOURCE, BUSY, ("%s", message.c_str()), (nullptr));
  else
    GST_ELEMENT_ERROR(element_of(self), RESOURCE, OPEN_WRITE, ("%s", message.c_str()), (nullptr));
  return false;
}

GstStructure* make_stats(GstArclySink* self) {
  SinkPrivate* p = self->priv;
  arcly::StreamHandle stream;
  {
    std::lock_guard lock(p->lock);
    stream = p->stream;
  }
  arcly::QosSnapshot q;
  if (stream) {
    try {
      q = stream->qos();
    } catch (...) {
    }
  }
  return gst_structure_new("arclysink-stats", "publishing", G_TYPE_BOOLEAN, stream != nullptr,
                           "frames", G_TYPE_UINT64, static_cast<guint64>(q.frames), "bytes",
                           G_TYPE_UINT64, static_cast<guint64>(q.bytes), "bitrate", G_TYPE_DOUBLE,
                           q.bitrate_bps, "fps", G_TYPE_DOUBLE, q.fps, "keyframes", G_TYPE_UINT64,
                           static_cast<guint64>(q.keyframes), "subscribers", G_TYPE_UINT,
                           static_cast<guint>(q.subscribers), nullptr);
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
  gst_pad_set_chain_function(pad, sink_chain);
  gst_pad_set_event_function(pad, sink_event);
  gst_element_add_pad(element, pad);
  return pad;
}

static void gst_arcly_sink_release_pad(GstElement* element, GstPad* pad) {
  auto* self = GST_ARCLY_SINK(element);
  SinkPrivate* p = self->priv;
  std::unique_ptr<PadData> data;
  {
    std::lock_guard lock(p->lock);
    auto it = p->pads.find(pad);
    if (it != p->pads.end()) {
      data = std::move(it->second);
      p->pads.erase(it);
    }
  }
  gst_element_remove_pad(element, pad);  // waits for the pad's streaming thread
  data.reset();
  check_all_eos(self);
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
      GST_INFO_OBJECT(self, "leaving PAUSED: ending the publish of %s", p->stream_key.c_str());
      end_publish_locked(p);
      p->ended = false;
      for (auto& [pad, data] : p->pads) {
        data->eos = false;
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
  std::lock_guard lock(p->lock);
  switch (id) {
    case PROP_STREAM: {
      const gchar* s = g_value_get_string(value);
      p->stream_key = s ? s : "";
      break;
    }
    case PROP_ENGINE: {
      const gchar* s = g_value_get_string(value);
      p->engine_name = (s && *s) ? s : arcly::gst::kDefaultEngineName;
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
  }
}

static void gst_arcly_sink_get_property(GObject* object, guint id, GValue* value,
                                        GParamSpec* pspec) {
  auto* self = GST_ARCLY_SINK(object);
  SinkPrivate* p = self->priv;
  switch (id) {
    case PROP_STREAM: {
      std::lock_guard lock(p->lock);
      g_value_set_string(value, p->stream_key.empty() ? nullptr : p->stream_key.c_str());
      break;
    }
    case PROP_ENGINE: {
      std::lock_guard lock(p->lock);
      g_value_set_string(value, p->engine_name.c_str());
      break;
    }
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

  gobject_class->set_property = gst_arcly_sink_set_property;
  gobject_class->get_property = gst_arcly_sink_get_property;
  gobject_class->finalize = gst_arcly_sink_finalize;

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
          "Publish statistics: frames, bytes, bitrate (bit/s), fps, keyframes, subscribers",
          GST_TYPE_STRUCTURE, static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS)));

  element_class->request_new_pad = gst_arcly_sink_request_new_pad;
  element_class->release_pad = gst_arcly_sink_release_pad;
  element_class->change_state = gst_arcly_sink_change_state;

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
