#include "export.hpp"

#include <gst/app/gstappsink.h>

GST_DEBUG_CATEGORY_STATIC(arcly_export_debug);
#define GST_CAT_DEFAULT arcly_export_debug

namespace arcly::host::http {
namespace {

// A fragment per half second: the client gets the first bytes quickly, and the
// appsink's bound below is a second or two of footage.
constexpr guint kFragmentMs = 500;
constexpr guint kSinkBuffers = 4;

// The parser a demuxed stream needs before mp4mux (none for what it takes as is).
const char* parser_for(const GstCaps* caps) {
  if (!caps || gst_caps_is_empty(caps) || gst_caps_is_any(caps)) return nullptr;
  const GstStructure* s = gst_caps_get_structure(caps, 0);
  const std::string name = gst_structure_get_name(s);
  if (name == "video/x-h264") return "h264parse";
  if (name == "video/x-h265") return "h265parse";
  if (name == "audio/mpeg") {
    gint version = 0;
    gst_structure_get_int(s, "mpegversion", &version);
    return version == 4 || version == 2 ? "aacparse" : "mpegaudioparse";
  }
  return nullptr;
}

std::string caps_text(const GstCaps* caps) {
  if (!caps) return "unknown";
  gchar* text = gst_caps_to_string(caps);
  std::string out = text ? text : "unknown";
  g_free(text);
  // The media type is what the reader needs, not codec_data.
  if (auto comma = out.find(','); comma != std::string::npos) out.resize(comma);
  return out;
}

}  // namespace

RecordingExport::RecordingExport(GMainContext* context, std::function<void()> wake)
    : context_(context), wake_callback_(std::move(wake)) {
  static std::once_flag once;
  std::call_once(once, [] {
    GST_DEBUG_CATEGORY_INIT(arcly_export_debug, "arclyexport", 0, "arcly recording export");
  });
}

std::shared_ptr<RecordingExport> RecordingExport::start(const ExportPlan& plan,
                                                        GMainContext* context,
                                                        std::function<void()> wake,
                                                        std::string& why) {
  std::shared_ptr<RecordingExport> e(new RecordingExport(context, std::move(wake)));
  if (!e->build(plan, why)) return nullptr;
  return e;
}

bool RecordingExport::build(const ExportPlan& plan, std::string& why) {
  files_ = plan.files;
  start_ns_ = plan.start_ns;
  stop_ns_ = plan.stop_ns;
  key_ = plan.key;
  pipeline_ = gst_pipeline_new("arcly-export");
  source_ = gst_element_factory_make("splitmuxsrc", nullptr);
  mux_ = gst_element_factory_make("mp4mux", nullptr);
  sink_ = gst_element_factory_make("appsink", nullptr);
  if (!source_ || !mux_ || !sink_) {
    why = "missing element (splitmuxsrc, mp4mux or appsink): check the GStreamer installation";
    for (GstElement* e : {source_, mux_, sink_})
      if (e) gst_object_unref(e);
    source_ = mux_ = sink_ = nullptr;
    return false;
  }
  g_object_set(mux_, "fragment-duration", kFragmentMs, "streamable", TRUE, nullptr);
  g_object_set(sink_, "sync", FALSE, "async", FALSE, "max-buffers", kSinkBuffers, "drop", FALSE,
               nullptr);
  gst_bin_add_many(GST_BIN(pipeline_), source_, mux_, sink_, nullptr);
  gst_element_link(mux_, sink_);
  g_signal_connect(source_, "format-location", G_CALLBACK(&RecordingExport::on_format_location),
                   this);
  g_signal_connect(source_, "pad-added", G_CALLBACK(&RecordingExport::on_pad_added), this);
  g_signal_connect(source_, "no-more-pads", G_CALLBACK(&RecordingExport::on_no_more_pads), this);

  GstAppSinkCallbacks callbacks{};
  callbacks.eos = [](GstAppSink*, gpointer self) { static_cast<RecordingExport*>(self)->wake(); };
  callbacks.new_sample = [](GstAppSink*, gpointer self) -> GstFlowReturn {
    static_cast<RecordingExport*>(self)->wake();
    return GST_FLOW_OK;
  };
  gst_app_sink_set_callbacks(GST_APP_SINK(sink_), &callbacks, this, nullptr);

  GstBus* bus = gst_element_get_bus(pipeline_);
  gst_bus_set_sync_handler(bus, &RecordingExport::on_bus, this, nullptr);
  gst_object_unref(bus);

  GST_INFO("export %s: %zu files, %.3f s .. %.3f s on their timeline", key_.c_str(), files_.size(),
           static_cast<double>(start_ns_) / 1e9, static_cast<double>(stop_ns_) / 1e9);
  if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    std::lock_guard lock(mutex_);
    why = error_.empty() ? "the export pipeline does not start" : error_;
    return false;
  }
  return true;
}

RecordingExport::~RecordingExport() {
  if (!pipeline_) return;
  // Buffers still held for a seek that will not come are let go first: splitmuxsrc
  // stops its pads' tasks before it deactivates them, and a task blocked in a
  // probe would never stop.
  std::vector<std::pair<GstPad*, gulong>> blocks;
  {
    // No seek may start now; one that runs is waited for (it uses this object).
    std::unique_lock lock(mutex_);
    stopping_ = true;
    seek_done_.wait(lock, [&] { return !seeking_; });
    for (auto& b : branches_) {
      b->passing = true;
      if (b->block_id && !b->block_gone) blocks.emplace_back(b->pad, b->block_id);
      b->block_gone = true;
    }
  }
  for (auto& [pad, id] : blocks) gst_pad_remove_probe(pad, id);
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  GstBus* bus = gst_element_get_bus(pipeline_);
  gst_bus_set_sync_handler(bus, nullptr, nullptr, nullptr);
  gst_object_unref(bus);
  gst_object_unref(pipeline_);
  for (auto& b : branches_) gst_object_unref(b->pad);
  GST_INFO("export %s: pipeline stopped", key_.c_str());
}

GBytes* RecordingExport::take() {
  if (!sink_) return nullptr;
  GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink_), 0);
  if (!sample) return nullptr;
  GstBuffer* buf = gst_sample_get_buffer(sample);
  GBytes* out = nullptr;
  if (buf && gst_buffer_get_size(buf) > 0) {
    gpointer data = nullptr;
    gsize size = 0;
    gst_buffer_extract_dup(buf, 0, gst_buffer_get_size(buf), &data, &size);
    out = g_bytes_new_take(data, size);
  }
  gst_sample_unref(sample);
  return out ? out : g_bytes_new(nullptr, 0);
}

bool RecordingExport::finished() const {
  return sink_ && gst_app_sink_is_eos(GST_APP_SINK(sink_));
}

std::string RecordingExport::error() const {
  std::lock_guard lock(mutex_);
  return error_;
}

bool RecordingExport::unexportable() const {
  std::lock_guard lock(mutex_);
  return unexportable_;
}

void RecordingExport::fail(const std::string& message, bool unexportable) {
  {
    std::lock_guard lock(mutex_);
    if (!error_.empty()) return;
    error_ = message;
    unexportable_ = unexportable;
  }
  GST_WARNING("export %s: %s", key_.c_str(), message.c_str());
  wake();
}

// Any thread: the consumer runs on the context (a source, never inline: the
// caller may be the context's own thread inside start()).
void RecordingExport::wake() {
  if (wake_pending_.exchange(true)) return;
  auto* weak = new std::weak_ptr<RecordingExport>(weak_from_this());
  GSource* source = g_idle_source_new();
  g_source_set_callback(
      source,
      [](gpointer data) -> gboolean {
        auto self = static_cast<std::weak_ptr<RecordingExport>*>(data)->lock();
        if (self) {
          self->wake_pending_ = false;
          self->wake_callback_();
        }
        return G_SOURCE_REMOVE;
      },
      weak, [](gpointer data) { delete static_cast<std::weak_ptr<RecordingExport>*>(data); });
  g_source_attach(source, context_);
  g_source_unref(source);
}

gchar** RecordingExport::on_format_location(GstElement*, gpointer self) {
  auto* e = static_cast<RecordingExport*>(self);
  auto** files = g_new0(gchar*, e->files_.size() + 1);
  for (std::size_t i = 0; i < e->files_.size(); ++i) files[i] = g_strdup(e->files_[i].c_str());
  return files;
}

// On a splitmuxsrc thread: queue (and parser) into mp4mux; the pad waits for the seek.
void RecordingExport::on_pad_added(GstElement*, GstPad* pad, gpointer self) {
  auto* e = static_cast<RecordingExport*>(self);
  GstCaps* caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  const std::string media = caps_text(caps);
  const bool video = media.rfind("video/", 0) == 0;
  const bool audio = media.rfind("audio/", 0) == 0;
  const char* parser_name = parser_for(caps);

  auto branch = std::make_unique<Branch>();
  branch->owner = e;
  branch->pad = GST_PAD(gst_object_ref(pad));
  Branch* b = branch.get();
  {
    std::lock_guard lock(e->mutex_);
    e->branches_.push_back(std::move(branch));
  }
  gst_pad_add_probe(
      pad,
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM |
                                   GST_PAD_PROBE_TYPE_EVENT_FLUSH),
      &RecordingExport::on_data, b, nullptr);
  const gulong block_id = gst_pad_add_probe(
      pad, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BLOCK),
      &RecordingExport::on_block, b, nullptr);
  {
    std::lock_guard lock(e->mutex_);
    b->block_id = block_id;
  }

  GstElement* queue = gst_element_factory_make("queue", nullptr);
  GstElement* parser = parser_name ? gst_element_factory_make(parser_name, nullptr) : nullptr;
  GstPad* muxpad = (video || audio)
                       ? gst_element_request_pad_simple(e->mux_, video ? "video_%u" : "audio_%u")
                       : nullptr;
  // What mp4mux cannot take is refused here, by name (linking would only fail
  // later, as "not negotiated", once the first buffer is pushed).
  bool fits = muxpad != nullptr;
  if (fits && !parser_name && caps) {
    GstCaps* accepted = gst_pad_get_pad_template_caps(muxpad);
    fits = gst_caps_can_intersect(caps, accepted);
    gst_caps_unref(accepted);
  }
  if (caps) gst_caps_unref(caps);
  bool linked = false;
  if (fits && queue && (parser || !parser_name)) {
    gst_bin_add(GST_BIN(e->pipeline_), queue);
    if (parser) gst_bin_add(GST_BIN(e->pipeline_), parser);
    GstPad* qsink = gst_element_get_static_pad(queue, "sink");
    GstElement* last = queue;
    linked =
        gst_pad_link(pad, qsink) == GST_PAD_LINK_OK && (!parser || gst_element_link(queue, parser));
    if (parser) last = parser;
    GstPad* out = gst_element_get_static_pad(last, "src");
    linked = linked && gst_pad_link(out, muxpad) == GST_PAD_LINK_OK;
    gst_object_unref(out);
    gst_object_unref(qsink);
    if (parser) gst_element_sync_state_with_parent(parser);
    gst_element_sync_state_with_parent(queue);
  } else {
    if (queue) gst_object_unref(queue);
    if (parser) gst_object_unref(parser);
  }
  if (muxpad) gst_object_unref(muxpad);
  if (!linked) {
    e->fail("the recording holds " + media +
                ", a stream an MP4 cannot carry (export takes what mp4mux does: H.264, "
                "H.265, AAC, MP3, Opus, ...)",
            true);
  }
}

void RecordingExport::on_no_more_pads(GstElement*, gpointer self) {
  auto* e = static_cast<RecordingExport*>(self);
  std::lock_guard lock(e->mutex_);
  e->no_more_pads_ = true;
  e->seek_when_ready_locked();
}

// Until the seek: block each buffer (the first one of each pad holds it there).
GstPadProbeReturn RecordingExport::on_block(GstPad*, GstPadProbeInfo*, gpointer data) {
  auto* b = static_cast<Branch*>(data);
  RecordingExport* e = b->owner;
  std::lock_guard lock(e->mutex_);
  if (b->passing) {
    b->block_gone = true;
    return GST_PAD_PROBE_REMOVE;
  }
  b->blocked = true;
  e->seek_when_ready_locked();
  return GST_PAD_PROBE_OK;
}

// Drops the seek's flush (nothing downstream has data to flush: mp4mux sees none
// before the seek) and, after it, what lies past the range's end.
GstPadProbeReturn RecordingExport::on_data(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* b = static_cast<Branch*>(data);
  std::lock_guard lock(b->owner->mutex_);
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    if (!b->passing || !GST_CLOCK_TIME_IS_VALID(b->stop)) return GST_PAD_PROBE_OK;
    GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
    const GstClockTime t = GST_BUFFER_DTS_IS_VALID(buf) ? GST_BUFFER_DTS(buf) : GST_BUFFER_PTS(buf);
    return GST_CLOCK_TIME_IS_VALID(t) && t >= b->stop ? GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
  }
  GstEvent* ev = GST_PAD_PROBE_INFO_EVENT(info);
  switch (GST_EVENT_TYPE(ev)) {
    case GST_EVENT_FLUSH_START:
      return b->passing ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
    case GST_EVENT_FLUSH_STOP:
      if (b->passing) return GST_PAD_PROBE_OK;
      b->passing = true;
      return GST_PAD_PROBE_DROP;
    case GST_EVENT_SEGMENT: {
      const GstSegment* seg = nullptr;
      gst_event_parse_segment(ev, &seg);
      if (b->passing && seg) b->stop = seg->stop;
      return GST_PAD_PROBE_OK;
    }
    default:
      return GST_PAD_PROBE_OK;
  }
}

void RecordingExport::seek_when_ready_locked() {
  if (seek_sent_ || stopping_ || !no_more_pads_ || branches_.empty()) return;
  for (const auto& b : branches_)
    if (!b->blocked) return;
  seek_sent_ = true;
  seeking_ = true;
  gst_element_call_async(source_, &RecordingExport::do_seek, this, nullptr);
}

void RecordingExport::do_seek(GstElement* source, gpointer self) {
  auto* e = static_cast<RecordingExport*>(self);
  {
    std::lock_guard lock(e->mutex_);
    if (e->stopping_) {
      e->seeking_ = false;
      e->seek_done_.notify_all();
      return;
    }
  }
  const auto flags = static_cast<GstSeekFlags>(GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_KEY_UNIT |
                                               GST_SEEK_FLAG_SNAP_BEFORE);
  const bool ok = gst_element_seek(source, 1.0, GST_FORMAT_TIME, flags, GST_SEEK_TYPE_SET,
                                   static_cast<gint64>(e->start_ns_), GST_SEEK_TYPE_SET,
                                   static_cast<gint64>(e->stop_ns_));
  GST_DEBUG("export %s: seek to %.3f .. %.3f s: %s", e->key_.c_str(),
            static_cast<double>(e->start_ns_) / 1e9, static_cast<double>(e->stop_ns_) / 1e9,
            ok ? "done" : "refused");
  if (!ok) e->fail("splitmuxsrc refused the seek into the recording");
  std::lock_guard lock(e->mutex_);
  e->seeking_ = false;
  e->seek_done_.notify_all();
}

GstBusSyncReply RecordingExport::on_bus(GstBus*, GstMessage* msg, gpointer self) {
  auto* e = static_cast<RecordingExport*>(self);
  if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError* err = nullptr;
    gchar* debug = nullptr;
    gst_message_parse_error(msg, &err, &debug);
    GST_WARNING("export %s: %s (%s)", e->key_.c_str(), err ? err->message : "?",
                debug ? debug : "");
    e->fail(std::string("reading the recording failed: ") + (err ? err->message : "?"));
    g_clear_error(&err);
    g_free(debug);
  }
  gst_message_unref(msg);
  return GST_BUS_DROP;
}

}  // namespace arcly::host::http
