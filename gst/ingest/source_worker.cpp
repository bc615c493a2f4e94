#include "source_worker.hpp"

#include <functional>

#include "arcly/error.hpp"
#include "backoff.hpp"
#include "caps_track.hpp"
#include "gst_ptr.hpp"
#include "track_publisher.hpp"
#include "url.hpp"

GST_DEBUG_CATEGORY_STATIC(arcly_ingest_debug);
#define GST_CAT_DEFAULT arcly_ingest_debug

namespace arcly::ingest {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {
std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}
void ensure_debug_category() {
  static std::once_flag once;
  std::call_once(once, [] {
    GST_DEBUG_CATEGORY_INIT(arcly_ingest_debug, "arclyingest", 0, "arcly ingest workers");
  });
}
}  // namespace

std::string_view state_name(WorkerState state) {
  switch (state) {
    case WorkerState::Idle:
      return "idle";
    case WorkerState::Connecting:
      return "connecting";
    case WorkerState::Listening:
      return "listening";
    case WorkerState::Live:
      return "live";
    case WorkerState::Retrying:
      return "retrying";
    case WorkerState::Stopped:
      return "stopped";
  }
  return "idle";
}

std::string_view failure_name(FailureKind kind) {
  switch (kind) {
    case FailureKind::None:
      return "none";
    case FailureKind::Error:
      return "error";
    case FailureKind::Auth:
      return "authentication";
    case FailureKind::EndOfStream:
      return "end-of-stream";
    case FailureKind::Timeout:
      return "timeout";
    case FailureKind::Refused:
      return "refused";
  }
  return "none";
}

struct SourceWorker::Track {
  Track(SourceWorker* w, std::uint32_t track_id) : worker(w), id(track_id) {
    publisher.emplace(id);
  }
  ~Track() {
    gst_clear_caps(&last_caps);
    gst_clear_caps(&in_caps);
  }
  // A new publish session starts the track afresh (configs are sent again).
  void restart() {
    publisher.emplace(id);
    gst_clear_caps(&last_caps);
    discont = false;
    held.reset();
  }
  SourceWorker* worker;
  std::uint32_t id;
  std::optional<gst::TrackPublisher> publisher;
  GstCaps* last_caps = nullptr;  // the caps last published
  GstCaps* in_caps = nullptr;    // the caps of the incoming pad (streaming thread)
  GstSegment in_segment{};       // its segment (streaming thread)
  bool discont = false;
  bool attached = false;         // has a pad in the current attempt
  bool length_prefixed = false;  // avc/hvc1 NAL framing
  // A video keyframe waits for the next buffer of its track: some depayloaders
  // split one access unit into buffers with the same PTS (parameter sets + first
  // slice, then the other slices); they are joined into one frame.
  std::optional<MediaFrame> held;
  std::int64_t last_pts = 0;
};

SourceWorker::SourceWorker(WorkerSettings settings) : settings_(std::move(settings)) {
  ensure_debug_category();
}

SourceWorker::~SourceWorker() = default;

WorkerStats SourceWorker::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

void SourceWorker::set_state(WorkerState state) {
  {
    std::lock_guard lock(stats_mutex_);
    stats_.state = state;
  }
  stats_cv_.notify_all();
}

void SourceWorker::note_rejected(std::string why) {
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.rejected;
    stats_.last_rejection = std::move(why);
  }
  stats_cv_.notify_all();
}

std::optional<StreamKey> SourceWorker::current_key() {
  return settings_.key;
}

void SourceWorker::publisher_left() {
  {
    std::lock_guard lock(media_mutex_);
    if (session_ && !grace_until_) grace_until_ = Clock::now() + settings_.grace;
    for (auto& [id, t] : tracks_) {
      t->discont = true;
      t->held.reset();
    }
    std::lock_guard slock(stats_mutex_);
    stats_.in_grace = session_.has_value();
    stats_.state = WorkerState::Listening;
  }
  stats_cv_.notify_all();
}

void SourceWorker::touch_watchdog() {
  last_frame_ns_.store(now_ns(), std::memory_order_relaxed);
}

std::shared_ptr<PublishRegistry> SourceWorker::registry() const {
  std::lock_guard lock(media_mutex_);
  return ctx_ ? ctx_->registry() : nullptr;
}

bool SourceWorker::holds_key(const StreamKey& key) const {
  std::lock_guard lock(media_mutex_);
  return session_ && session_->key() == key;
}

std::vector<GstElement*> SourceWorker::media_elements(GstElement* source) {
  return {source};
}

std::optional<Failure> SourceWorker::on_element_message(GstMessage*) {
  return std::nullopt;
}

Failure SourceWorker::classify_error(GstMessage* message) {
  GError* err = nullptr;
  gchar* debug = nullptr;
  gst_message_parse_error(message, &err, &debug);
  Failure f;
  f.kind =
      err && err->domain == GST_RESOURCE_ERROR && err->code == GST_RESOURCE_ERROR_NOT_AUTHORIZED
          ? FailureKind::Auth
          : FailureKind::Error;
  const gchar* from = GST_MESSAGE_SRC_NAME(message);
  f.message = redact(std::string(from ? from : "pipeline") + ": " +
                     (err && err->message ? err->message : "unknown error"));
  GST_DEBUG("%s: error detail: %s", settings_.name.c_str(), redact(debug ? debug : "").c_str());
  g_clear_error(&err);
  g_free(debug);
  return f;
}

void SourceWorker::fail_attempt(Failure f) {
  // Called with media_mutex_ held; the first failure of an attempt wins.
  if (!attempt_failure_) attempt_failure_ = std::move(f);
}

bool SourceWorker::kick(const std::string& why) {
  std::lock_guard lock(media_mutex_);
  if (!attempt_active_) return false;
  fail_attempt({FailureKind::Error, "kicked: " + why});
  return true;
}

// --- Pipeline assembly (streaming threads) -------------------------------

void SourceWorker::on_pad_added(GstElement* element, GstPad* pad, gpointer self) {
  if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC || gst_pad_is_linked(pad)) return;
  GstObject* parent = gst_object_get_parent(GST_OBJECT(element));
  if (!parent) return;
  static_cast<SourceWorker*>(self)->attach_parser(pad, GST_BIN(parent));
  gst_object_unref(parent);
}

void SourceWorker::attach_parser(GstPad* pad, GstBin* bin) {
  GstElement* parse = gst_element_factory_make("parsebin", nullptr);
  if (!parse) {
    std::lock_guard lock(media_mutex_);
    fail_attempt({FailureKind::Error, "the parsebin element is missing (gst-plugins-base)"});
    return;
  }
  g_signal_connect(parse, "pad-added", G_CALLBACK(&SourceWorker::on_parsed_pad_added), this);
  g_signal_connect(parse, "no-more-pads", G_CALLBACK(&SourceWorker::on_no_more_pads), this);
  {
    std::lock_guard lock(media_mutex_);
    ++pads_pending_;
  }
  gst_bin_add(bin, parse);
  GstPad* sink = gst_element_get_static_pad(parse, "sink");
  const bool linked = gst_pad_link(pad, sink) == GST_PAD_LINK_OK;
  gst_object_unref(sink);
  gst_element_sync_state_with_parent(parse);
  if (!linked) {
    std::lock_guard lock(media_mutex_);
    fail_attempt({FailureKind::Error, "cannot link the source to parsebin"});
  }
}

void SourceWorker::on_parsed_pad_added(GstElement* element, GstPad* pad, gpointer self) {
  GstObject* parent = gst_object_get_parent(GST_OBJECT(element));
  if (!parent) return;
  static_cast<SourceWorker*>(self)->attach_sink(pad, GST_BIN(parent));
  gst_object_unref(parent);
}

void SourceWorker::attach_sink(GstPad* pad, GstBin* bin) {
  GstCaps* caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  const MediaKind kind =
      caps && gst_caps_is_fixed(caps) ? gst::describe_caps(caps).kind : MediaKind::Data;
  if (caps) gst_caps_unref(caps);
  Track* track = nullptr;
  {
    std::lock_guard lock(media_mutex_);
    const std::string prefix(gst::pad_prefix(kind));
    const std::string id = prefix + "#" + std::to_string(ordinals_[prefix]++);
    auto& slot = tracks_[id];
    if (!slot) slot = std::make_unique<Track>(this, static_cast<std::uint32_t>(tracks_.size() - 1));
    track = slot.get();
    track->attached = true;
  }
  {
    std::lock_guard lock(media_mutex_);
    gst_clear_caps(&track->in_caps);
    gst_segment_init(&track->in_segment, GST_FORMAT_UNDEFINED);
  }
  // A fakesink with a pad probe: the buffer is published right in the streaming
  // thread, without appsink's sample allocation, queue and wake-up per buffer.
  GstElement* sink = gst_element_factory_make("fakesink", nullptr);
  g_object_set(sink, "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE, "silent", TRUE,
               nullptr);
  gst_bin_add(bin, sink);
  GstPad* sinkpad = gst_element_get_static_pad(sink, "sink");
  gst_pad_add_probe(
      sinkpad,
      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST |
                                   GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
      &SourceWorker::on_probe, track, nullptr);
  gst_pad_link(pad, sinkpad);
  gst_object_unref(sinkpad);
  gst_element_sync_state_with_parent(sink);
}

GstPadProbeReturn SourceWorker::on_probe(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* track = static_cast<Track*>(data);
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    track->worker->on_media(*track, GST_PAD_PROBE_INFO_BUFFER(info));
  } else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    GstBufferList* list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
    for (guint i = 0; i < gst_buffer_list_length(list); ++i) {
      track->worker->on_media(*track, gst_buffer_list_get(list, i));
    }
  } else if (GstEvent* event = GST_PAD_PROBE_INFO_EVENT(info)) {
    // Caps and segment reach the probe in the same streaming thread, before the
    // buffers they apply to.
    if (GST_EVENT_TYPE(event) == GST_EVENT_CAPS) {
      GstCaps* caps = nullptr;
      gst_event_parse_caps(event, &caps);
      gst_caps_replace(&track->in_caps, caps);
    } else if (GST_EVENT_TYPE(event) == GST_EVENT_SEGMENT) {
      const GstSegment* segment = nullptr;
      gst_event_parse_segment(event, &segment);
      gst_segment_copy_into(segment, &track->in_segment);
    }
  }
  return GST_PAD_PROBE_OK;
}

void SourceWorker::on_no_more_pads(GstElement* element, gpointer data) {
  auto* self = static_cast<SourceWorker*>(data);
  std::lock_guard lock(self->media_mutex_);
  GST_DEBUG("%s: no-more-pads from %s", self->settings_.name.c_str(), GST_ELEMENT_NAME(element));
  if (self->pads_pending_ > 0) --self->pads_pending_;
  self->maybe_declare_tracks_locked();
}

// Every element that adds pads said it is done, and every track of theirs has
// published its config in this session: subscribers need wait for no more.
void SourceWorker::maybe_declare_tracks_locked() {
  if (!session_ || session_->finished() || pads_pending_ > 0) return;
  if (session_->handle()->tracks_complete()) return;
  bool any = false;
  for (const auto& [id, t] : tracks_) {
    if (!t->attached) continue;
    if (!t->last_caps) return;  // its config is still to come
    any = true;
  }
  if (!any) return;
  GST_INFO("%s: track set of %s complete", settings_.name.c_str(), session_->key().str().c_str());
  session_->declare_tracks_complete();
}

// --- Publishing (streaming threads) --------------------------------------

// The running time of a buffer in its pad's segment (the first media buffer's
// position, to open a session); 0 when it has none.
std::int64_t SourceWorker::pts_of(const Track& track, GstBuffer* buffer) {
  GstClockTime t =
      GST_BUFFER_PTS_IS_VALID(buffer) ? GST_BUFFER_PTS(buffer) : GST_BUFFER_DTS(buffer);
  if (!GST_CLOCK_TIME_IS_VALID(t) || track.in_segment.format != GST_FORMAT_TIME) return 0;
  const GstClockTime rt = gst_segment_to_running_time(&track.in_segment, GST_FORMAT_TIME, t);
  return GST_CLOCK_TIME_IS_VALID(rt) ? static_cast<std::int64_t>(rt) : 0;
}

// The monotonic time (ns, steady_clock) at which this attempt's running time was
// zero: now minus the running time now, read from the pipeline's clock and base
// time. Sampled once per attempt. Without a clock yet (a non-live source
// prerolling in PAUSED), the first frame (running time `first`) is taken as
// captured now. Called with media_mutex_ held.
std::int64_t SourceWorker::attempt_origin_locked(std::int64_t first) {
  if (attempt_origin_) return *attempt_origin_;
  const std::int64_t mono = now_ns();
  std::int64_t origin = mono - first;
  if (attempt_pipeline_) {
    if (GstClock* clock = gst_element_get_clock(attempt_pipeline_)) {
      const GstClockTime base = gst_element_get_base_time(attempt_pipeline_);
      const GstClockTime now = gst_clock_get_time(clock);
      gst_object_unref(clock);
      if (GST_CLOCK_TIME_IS_VALID(base) && GST_CLOCK_TIME_IS_VALID(now) && now >= base)
        origin = mono - static_cast<std::int64_t>(now - base);
    }
  }
  attempt_origin_ = origin;
  return origin;
}

void SourceWorker::on_media(Track& track, GstBuffer* buffer) {
  GstCaps* caps = track.in_caps;
  const GstSegment* segment = &track.in_segment;
  if (!buffer || !caps) return;

  auto key = current_key();
  if (!key) return;  // e.g. a listener between callers
  std::lock_guard lock(media_mutex_);
  if (!attempt_active_ || attempt_failure_) return;
  if (session_ && session_->key() != *key) {
    // A different publisher on the same worker (SRT listener): the stream kept
    // in grace ends now.
    session_->finish();
    session_.reset();
    grace_until_.reset();
    for (auto& [id, t] : tracks_) t->discont = false;
  }
  if (!session_) {
    try {
      session_.emplace(ctx_->open_publish(*key));
    } catch (const Error& e) {
      fail_attempt({FailureKind::Refused, e.what()});
      return;
    }
    ts_offset_ = 0;
    need_offset_ = false;
    session_origin_ns_ = attempt_origin_locked(pts_of(track, buffer));
    for (auto& [id, t] : tracks_) t->restart();
    std::lock_guard slock(stats_mutex_);
    stats_.key = key;
  }
  if (grace_until_) {
    grace_until_.reset();
    std::lock_guard slock(stats_mutex_);
    stats_.in_grace = false;
  }

  auto running = [&](GstClockTime t) -> std::optional<std::int64_t> {
    if (!GST_CLOCK_TIME_IS_VALID(t) || !segment || segment->format != GST_FORMAT_TIME) {
      return std::nullopt;
    }
    const GstClockTime rt = gst_segment_to_running_time(segment, GST_FORMAT_TIME, t);
    if (!GST_CLOCK_TIME_IS_VALID(rt)) return std::nullopt;
    return static_cast<std::int64_t>(rt);
  };
  std::optional<std::int64_t> pts = running(GST_BUFFER_PTS(buffer));
  std::optional<std::int64_t> dts = running(GST_BUFFER_DTS(buffer));
  if (!pts) pts = dts;
  if (!pts) pts = track.last_pts - ts_offset_;  // e.g. a header buffer: at the previous frame
  if (need_offset_) {
    // A reconnect inside grace keeps real time: this attempt's running time is
    // placed on the session's timeline by the monotonic time between the two
    // pipelines' origins, so the outage stays a gap of its real length (the
    // frame carries DISCONT). A source that ran ahead of real time (a file
    // replayed as fast as it reads) continues right after its last frame
    // instead: timestamps never go back.
    const std::int64_t real = attempt_origin_locked(*pts) - session_origin_ns_;
    ts_offset_ = std::max(real, ts_end_ + 1'000'000 - *pts);
    need_offset_ = false;
    GST_INFO("%s: reconnected inside grace: %.3f s gap in the timeline of %s",
             settings_.name.c_str(), static_cast<double>(*pts + ts_offset_ - ts_end_) / 1e9,
             session_->key().str().c_str());
  }
  const std::int64_t out_pts = *pts + ts_offset_;
  std::optional<std::int64_t> out_dts;
  if (dts) out_dts = *dts + ts_offset_;
  // Published in engine time (gst/engine_time.hpp): the session's timeline
  // placed at the monotonic time of its running time zero.
  const std::int64_t engine_pts = out_pts + session_origin_ns_;
  std::optional<std::int64_t> engine_dts;
  if (out_dts) engine_dts = *out_dts + session_origin_ns_;
  const std::int64_t duration = GST_BUFFER_DURATION_IS_VALID(buffer)
                                    ? static_cast<std::int64_t>(GST_BUFFER_DURATION(buffer))
                                    : 0;
  std::vector<MediaFrame> frames;
  const bool caps_changed = !track.last_caps || !gst_caps_is_equal(track.last_caps, caps);
  if (caps_changed) {
    track.length_prefixed = false;
    const GstStructure* st = gst_caps_get_structure(caps, 0);
    if (const gchar* fmt = gst_structure_get_string(st, "stream-format")) {
      track.length_prefixed = std::string_view(fmt) == "avc" || std::string_view(fmt) == "avc3" ||
                              std::string_view(fmt) == "hvc1" || std::string_view(fmt) == "hev1";
    }
  }
  if (caps_changed) {
    gst_caps_replace(&track.last_caps, caps);
    frames.push_back(track.publisher->on_caps(caps, engine_pts));
  }
  // A buffer of parameter sets alone (e.g. from rtph264depay before a keyframe)
  // is not a frame: its content reaches subscribers through the track's config
  // (caps codec_data, or the in-band parameter sets kept by the TrackPublisher).
  bool header_only = false;
  if (track.publisher->info()) {
    GstMapInfo map;
    if (gst_buffer_map(buffer, &map, GST_MAP_READ)) {
      header_only = gst::parameter_sets_only(track.publisher->info()->codec, track.length_prefixed,
                                             {map.data, map.size});
      gst_buffer_unmap(buffer, &map);
    }
  }
  try {
    for (auto& f : track.publisher->on_buffer(buffer, engine_pts, engine_dts, duration)) {
      if (header_only && !f.is_config()) continue;
      frames.push_back(std::move(f));
    }
    std::uint64_t bytes = 0, count = 0;
    auto publish = [&](MediaFrame f) {
      if (track.discont && !f.is_config()) {
        f.flags |= FrameFlags::Discont;
        track.discont = false;
      }
      bytes += f.payload.size();
      count += f.is_config() ? 0 : 1;
      session_->publish_frame(std::move(f));
    };
    for (auto& f : frames) {
      const bool video = f.kind == MediaKind::Video && !f.is_config();
      if (video && track.held && track.held->pts == f.pts) {
        // The rest of the held access unit: join (one copy, once per GOP).
        std::vector<std::uint8_t> joined(track.held->payload.span().begin(),
                                         track.held->payload.span().end());
        joined.insert(joined.end(), f.payload.span().begin(), f.payload.span().end());
        track.held->payload = Bytes::from_vector(std::move(joined));
        track.held->duration = std::max(track.held->duration, f.duration);
        continue;
      }
      if (track.held && (video || f.is_config())) {
        publish(std::move(*track.held));
        track.held.reset();
      }
      if (video && f.is_keyframe()) {
        track.held = std::move(f);
        continue;
      }
      publish(std::move(f));
    }
    if (caps_changed) maybe_declare_tracks_locked();
    track.last_pts = out_pts;
    ts_end_ = std::max(ts_end_, out_pts + duration);
    last_frame_ns_.store(now_ns(), std::memory_order_relaxed);
    {
      std::lock_guard slock(stats_mutex_);
      stats_.frames += count;
      stats_.bytes += bytes;
    }
    if (!attempt_live_) {
      attempt_live_ = true;
      {
        std::lock_guard slock(stats_mutex_);
        if (stats_.attempts > 1) ++stats_.reconnects;
        stats_.state = WorkerState::Live;
      }
      stats_cv_.notify_all();
      GST_INFO("%s: live, publishing %s", settings_.name.c_str(), session_->key().str().c_str());
    }
  } catch (const Error& e) {
    // The stream was ended under us (reaped, or its engine closed it).
    fail_attempt({FailureKind::Refused, e.what()});
    session_.reset();
  }
}

// --- Control loop ---------------------------------------------------------

void SourceWorker::check_grace(Clock::time_point now) {
  std::optional<PublishSession> ended;
  {
    std::lock_guard lock(media_mutex_);
    if (!session_ || !grace_until_ || now < *grace_until_) return;
    GST_WARNING("%s: no media within the %lld ms grace period: ending %s", settings_.name.c_str(),
                static_cast<long long>(settings_.grace.count()), session_->key().str().c_str());
    ended = std::move(session_);
    session_.reset();
    grace_until_.reset();
    std::lock_guard slock(stats_mutex_);
    stats_.in_grace = false;
    stats_.key.reset();
  }
  ended->finish();  // subscribers drain and see the end
}

void SourceWorker::end_session() {
  std::optional<PublishSession> ended;
  {
    std::lock_guard lock(media_mutex_);
    ended = std::move(session_);
    session_.reset();
    grace_until_.reset();
    std::lock_guard slock(stats_mutex_);
    stats_.in_grace = false;
    stats_.key.reset();
  }
  if (ended) ended->finish();
}

Failure SourceWorker::run_attempt(const IngestContext& ctx, std::stop_token stop) {
  GstElement* source = nullptr;
  try {
    source = make_source();
  } catch (const Error& e) {
    return {FailureKind::Error, redact(e.what())};
  }
  if (!source) return {FailureKind::Error, "the source could not be created"};
  gst::ElementPtr pipeline(gst_pipeline_new(nullptr));
  gst_bin_add(GST_BIN(pipeline.get()), source);
  {
    std::lock_guard lock(media_mutex_);
    ctx_ = &ctx;
    attempt_pipeline_ = pipeline.get();
    attempt_origin_.reset();
    attempt_active_ = true;
    attempt_live_ = false;
    attempt_failure_.reset();
    ordinals_.clear();
    pads_pending_ = 0;
    for (auto& [id, track] : tracks_) track->attached = false;
    need_offset_ = session_.has_value();
    for (auto& [id, track] : tracks_) track->discont = session_.has_value();
  }
  last_frame_ns_.store(now_ns(), std::memory_order_relaxed);
  for (GstElement* e : media_elements(source)) {
    g_signal_connect(e, "pad-added", G_CALLBACK(&SourceWorker::on_pad_added), this);
    // An element with sometimes source pads (rtspsrc, a demuxer) says when it
    // has added them all; one with only always pads has them already.
    bool sometimes = false;
    for (const GList* t = gst_element_class_get_pad_template_list(GST_ELEMENT_GET_CLASS(e)); t;
         t = t->next) {
      auto* templ = static_cast<GstPadTemplate*>(t->data);
      if (GST_PAD_TEMPLATE_DIRECTION(templ) == GST_PAD_SRC &&
          GST_PAD_TEMPLATE_PRESENCE(templ) == GST_PAD_SOMETIMES)
        sometimes = true;
    }
    if (sometimes) {
      g_signal_connect(e, "no-more-pads", G_CALLBACK(&SourceWorker::on_no_more_pads), this);
      std::lock_guard lock(media_mutex_);
      ++pads_pending_;
    }
    // Pads that exist already (e.g. "videotestsrc ! x264enc"'s src).
    GstIterator* it = gst_element_iterate_src_pads(e);
    GValue item = G_VALUE_INIT;
    while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
      auto* pad = GST_PAD(g_value_get_object(&item));
      if (!gst_pad_is_linked(pad)) on_pad_added(e, pad, this);
      g_value_reset(&item);
    }
    g_value_unset(&item);
    gst_iterator_free(it);
  }

  gst::ObjectPtr bus(GST_OBJECT(gst_element_get_bus(pipeline.get())));
  Failure result;
  if (gst_element_set_state(pipeline.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    result = {FailureKind::Error, "the source pipeline failed to start"};
    if (GstMessage* m = gst_bus_pop_filtered(GST_BUS(bus.get()), GST_MESSAGE_ERROR)) {
      result = classify_error(m);
      gst_message_unref(m);
    }
  }
  const auto mask =
      static_cast<GstMessageType>(GST_MESSAGE_ERROR | GST_MESSAGE_EOS | GST_MESSAGE_ELEMENT |
                                  GST_MESSAGE_WARNING | GST_MESSAGE_APPLICATION);
  // A stop request wakes the loop through the bus, so it can sleep long between
  // watchdog checks (16 idle cameras should not cost 320 wake-ups a second).
  std::stop_callback wake(stop, [&bus] {
    gst_bus_post(GST_BUS(bus.get()),
                 gst_message_new_application(nullptr, gst_structure_new_empty("arcly-stop")));
  });
  while (result.kind == FailureKind::None && !stop.stop_requested()) {
    if (GstMessage* m = gst_bus_timed_pop_filtered(GST_BUS(bus.get()), 250 * GST_MSECOND, mask)) {
      switch (GST_MESSAGE_TYPE(m)) {
        case GST_MESSAGE_ERROR:
          result = classify_error(m);
          break;
        case GST_MESSAGE_EOS:
          result = {FailureKind::EndOfStream, "the source ended (EOS)"};
          break;
        case GST_MESSAGE_ELEMENT:
          if (auto f = on_element_message(m)) result = std::move(*f);
          break;
        case GST_MESSAGE_WARNING: {
          GError* err = nullptr;
          gst_message_parse_warning(m, &err, nullptr);
          GST_INFO("%s: warning from %s: %s", settings_.name.c_str(), GST_MESSAGE_SRC_NAME(m),
                   redact(err ? err->message : "").c_str());
          g_clear_error(&err);
          break;
        }
        default:
          break;
      }
      gst_message_unref(m);
    }
    {
      std::lock_guard lock(media_mutex_);
      if (attempt_failure_ && result.kind == FailureKind::None) result = *attempt_failure_;
    }
    if (!expects_media()) touch_watchdog();
    const std::int64_t idle = now_ns() - last_frame_ns_.load(std::memory_order_relaxed);
    if (result.kind == FailureKind::None &&
        idle > std::chrono::nanoseconds(settings_.timeout).count()) {
      result = {FailureKind::Timeout,
                "no media for " + std::to_string(settings_.timeout.count()) + " ms"};
    }
    check_grace(Clock::now());
  }
  {
    std::lock_guard lock(media_mutex_);
    attempt_active_ = false;
    attempt_pipeline_ = nullptr;
  }
  gst_element_set_state(pipeline.get(), GST_STATE_NULL);
  {
    // A keyframe still held for the rest of its access unit belongs before the
    // gap: out with it now, not after the next attempt's first (DISCONT) frame.
    std::lock_guard lock(media_mutex_);
    for (auto& [id, t] : tracks_) {
      if (t->held && session_) {
        try {
          session_->publish_frame(std::move(*t->held));
        } catch (const Error&) {
          // the stream was ended under us; the next attempt sees it
        }
      }
      t->held.reset();
    }
  }
  return result;
}

void SourceWorker::serve(IngestContext ctx, std::stop_token stop) {
  Backoff backoff(settings_.backoff_initial, settings_.backoff_max,
                  static_cast<unsigned>(std::hash<std::string>{}(settings_.name)));
  std::mutex wait_mutex;
  std::condition_variable_any wait_cv;
  while (!stop.stop_requested()) {
    {
      std::lock_guard lock(stats_mutex_);
      if (settings_.max_attempts != 0 && stats_.attempts >= settings_.max_attempts) break;
      ++stats_.attempts;
      stats_.state = WorkerState::Connecting;
      stats_.retry_in = 0ms;
    }
    stats_cv_.notify_all();
    Failure failure = run_attempt(ctx, stop);
    if (stop.stop_requested()) break;

    bool was_live = false;
    {
      std::lock_guard lock(media_mutex_);
      was_live = attempt_live_;
      if (session_ && !grace_until_) grace_until_ = Clock::now() + settings_.grace;
    }
    if (was_live) backoff.reset();
    const auto delay = backoff.next();
    {
      std::lock_guard lock(stats_mutex_);
      stats_.last_failure = failure;
      stats_.state = WorkerState::Retrying;
      stats_.retry_in = delay;
      stats_.in_grace = stats_.key.has_value();
    }
    stats_cv_.notify_all();
    GST_WARNING("%s: %s: %s; retrying in %lld ms", settings_.name.c_str(),
                std::string(failure_name(failure.kind)).c_str(), failure.message.c_str(),
                static_cast<long long>(delay.count()));
    check_grace(Clock::now());
    const auto deadline = Clock::now() + delay;
    std::unique_lock lock(wait_mutex);
    while (!stop.stop_requested() && Clock::now() < deadline) {
      wait_cv.wait_until(lock, stop, std::min(deadline, Clock::now() + 100ms),
                         [] { return false; });
      check_grace(Clock::now());
    }
  }
  end_session();
  {
    std::lock_guard lock(media_mutex_);
    ctx_ = nullptr;
  }
  set_state(WorkerState::Stopped);
}

// --- PipelineWorker --------------------------------------------------------

PipelineWorker::PipelineWorker(WorkerSettings settings, std::string description)
    : SourceWorker(std::move(settings)), description_(std::move(description)) {}

GstElement* PipelineWorker::make_source() {
  GError* err = nullptr;
  GstElement* bin = gst_parse_bin_from_description_full(description_.c_str(), FALSE, nullptr,
                                                        GST_PARSE_FLAG_FATAL_ERRORS, &err);
  if (!bin) {
    std::string why = err ? err->message : "unknown error";
    g_clear_error(&err);
    throw Error(Errc::InvalidArgument,
                "source description '" + redact(description_) + "' is invalid: " + redact(why));
  }
  g_clear_error(&err);
  return bin;
}

std::vector<GstElement*> PipelineWorker::media_elements(GstElement* source) {
  std::vector<GstElement*> out;
  GstIterator* it = gst_bin_iterate_elements(GST_BIN(source));
  GValue item = G_VALUE_INIT;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    out.push_back(GST_ELEMENT(g_value_get_object(&item)));  // the bin keeps it alive
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return out;
}

}  // namespace arcly::ingest
