#include "recorder.hpp"

#include <algorithm>
#include <ctime>
#include <filesystem>

#include "arcly/error.hpp"
#include "srt_worker.hpp"  // key_matches

GST_DEBUG_CATEGORY_STATIC(arcly_record_debug);
#define GST_CAT_DEFAULT arcly_record_debug

namespace arcly::host {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {
std::string utc_stamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::int64_t publisher_ts(GstBuffer* buf) {
  static GstCaps* ref = gst_caps_new_empty_simple("timestamp/x-arcly-publisher");
  if (auto* meta = gst_buffer_get_reference_timestamp_meta(buf, ref))
    return static_cast<std::int64_t>(meta->timestamp);
  return -1;
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What makes a recorder an event clip: one file, its own name, and an end.
struct ClipSpec {
  std::string id;
  std::string rel_path;  // under the set's storage
  std::chrono::milliseconds pre{0};
  std::int64_t end_ts = 0;  // publisher timestamp of the last frame to keep
};
}  // namespace

class RecorderSet::Recorder {
 public:
  enum class State { Recording, Finished, Failed };

  Recorder(RecorderSet& set, StreamKey key, std::optional<ClipSpec> clip = std::nullopt)
      : set_(set), key_(std::move(key)), clip_(std::move(clip)) {
    if (clip_) end_ts_ = clip_->end_ts;
  }
  ~Recorder() { teardown(); }

  // Builds and starts the pipeline; false (with error()) on failure.
  bool start() {
    pipeline_ = gst_pipeline_new(("record-" + key_.str()).c_str());
    GstElement* src = gst_element_factory_make("arclysrc", nullptr);
    GstElement* mux = gst_element_factory_make("splitmuxsink", nullptr);
    GstElement* muxer = nullptr;
    switch (set_.config_.format) {
      case RecordFormat::Mp4:
        muxer = gst_element_factory_make("mp4mux", nullptr);
        if (muxer) {
          // Fragments of <= 1 s keep a file playable after a crash; on a clean close
          // it is finalised into a plain MP4 with a complete index.
          g_object_set(muxer, "fragment-duration", 1000u, nullptr);
          gst_util_set_object_arg(G_OBJECT(muxer), "fragment-mode", "first-moov-then-finalise");
        }
        break;
      case RecordFormat::Mkv:
        muxer = gst_element_factory_make("matroskamux", nullptr);
        break;
      case RecordFormat::Ts:
        muxer = gst_element_factory_make("mpegtsmux", nullptr);
        break;
    }
    if (!src || !mux || !muxer) {
      fail("missing element (arclysrc, splitmuxsink or the muxer): check the installation");
      for (GstElement* e : {src, mux, muxer}) {
        if (e) gst_object_unref(gst_object_ref_sink(e));
      }
      return false;
    }
    if (auto stream = set_.engine_->find_stream(key_)) {
      trigger_ts_ = stream->gop().newest_pts();
    }
    const auto preroll = clip_ ? clip_->pre : set_.config_.preroll;
    g_object_set(src, "engine", set_.engine_name_.c_str(), "stream", key_.str().c_str(), "wait",
                 2000, "preroll", static_cast<guint>(preroll.count()), nullptr);
    gst_util_set_object_arg(G_OBJECT(src), "start", "keyframe");
    // A clip is one file, however long it grows.
    g_object_set(
        mux, "muxer", muxer, "max-size-time",
        clip_ ? guint64{0} : static_cast<guint64>(set_.config_.segment.count()) * GST_SECOND,
        nullptr);
    g_signal_connect(mux, "format-location-full", G_CALLBACK(&Recorder::on_format_location), this);
    g_signal_connect(src, "pad-added", G_CALLBACK(&Recorder::on_pad_added), this);
    gst_bin_add_many(GST_BIN(pipeline_), src, mux, nullptr);
    src_ = src;
    mux_ = mux;
    if (gst_element_set_state(pipeline_, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
      poll();
      if (state_ != State::Failed) fail("the recording pipeline failed to start");
      return false;
    }
    event("recorder-started", {});
    return true;
  }

  // Handles pending bus messages. Called by the set's thread.
  void poll() {
    if (!pipeline_) return;
    GstBus* bus = gst_element_get_bus(pipeline_);
    while (GstMessage* m = gst_bus_pop(bus)) {
      switch (GST_MESSAGE_TYPE(m)) {
        case GST_MESSAGE_ERROR: {
          GError* err = nullptr;
          gst_message_parse_error(m, &err, nullptr);
          // After finish() the source's next push meets EOS: not a recording error.
          if (finishing_ && GST_MESSAGE_SRC(m) == GST_OBJECT(src_)) {
            g_clear_error(&err);
            break;
          }
          fail(std::string(GST_MESSAGE_SRC_NAME(m)) + ": " + (err ? err->message : "error"));
          g_clear_error(&err);
          break;
        }
        case GST_MESSAGE_EOS:
          if (state_ == State::Recording) {
            state_ = State::Finished;
            event("recorder-finished", {});
          }
          break;
        case GST_MESSAGE_ELEMENT: {
          const GstStructure* s = gst_message_get_structure(m);
          const bool opened = gst_structure_has_name(s, "splitmuxsink-fragment-opened");
          const bool closed = gst_structure_has_name(s, "splitmuxsink-fragment-closed");
          if (opened || closed) {
            RecorderEvent e;
            e.location = gst_structure_get_string(s, "location")
                             ? gst_structure_get_string(s, "location")
                             : "";
            GstClockTime rt = GST_CLOCK_TIME_NONE;
            gst_structure_get_clock_time(s, "running-time", &rt);
            e.running_time_ns = GST_CLOCK_TIME_IS_VALID(rt) ? static_cast<std::int64_t>(rt) : -1;
            if (opened) {
              ++segments_;
              current_ = e.location;
            }
            event(opened ? "segment-opened" : "segment-closed", std::move(e));
          }
          break;
        }
        default:
          break;
      }
      gst_message_unref(m);
    }
    gst_object_unref(bus);
  }

  // Ends the recording while its stream is still live (a section removed or changed
  // by a reload, or a stream that did not end at shutdown): EOS into every branch
  // behind arclysrc, so splitmuxsink finalizes the open segment and the pipeline
  // posts EOS. Any thread.
  void finish() {
    if (!pipeline_ || finishing_.exchange(true)) return;
    gst_element_foreach_src_pad(
        src_,
        [](GstElement*, GstPad* pad, gpointer) -> gboolean {
          if (GstPad* peer = gst_pad_get_peer(pad)) {
            gst_pad_send_event(peer, gst_event_new_eos());
            gst_object_unref(peer);
          }
          return TRUE;
        },
        nullptr);
  }

  // Stops now (the open fragment stays on disk, playable).
  void teardown() {
    if (!pipeline_) return;
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    gst_object_unref(pipeline_);
    pipeline_ = nullptr;
  }

  State state() const { return state_; }
  const std::string& error() const { return error_; }
  RecorderStatus status() const {
    RecorderStatus s;
    s.recorder = set_.config_.name;
    s.key = key_.str();
    s.state = state_ == State::Recording  ? "recording"
              : state_ == State::Finished ? "finished"
                                          : "error";
    s.error = error_;
    s.segments = segments_;
    s.current = current_;
    return s;
  }
  std::string current() const { return current_; }
  bool is_clip() const { return clip_.has_value(); }
  const std::string& clip_id() const { return clip_->id; }
  const StreamKey& key() const { return key_; }
  std::int64_t first_ts() const { return first_ts_.load(); }
  std::int64_t end_ts() const {
    std::lock_guard lock(clip_mutex_);
    return end_ts_;
  }
  // Moves the clip's end later; false once the clip has ended (start a new one).
  bool extend_to(std::int64_t end_ts) {
    std::lock_guard lock(clip_mutex_);
    if (clip_ended_ || state_ != State::Recording) return false;
    end_ts_ = std::max(end_ts_, end_ts);
    return true;
  }

 private:
  void fail(std::string why) {
    if (state_ == State::Failed) return;
    state_ = State::Failed;
    error_ = std::move(why);
    GST_WARNING("[record %s] %s: %s", set_.config_.name.c_str(), key_.str().c_str(),
                error_.c_str());
    RecorderEvent e;
    e.message = error_;
    event("recorder-error", std::move(e));
  }

  void event(const char* type, RecorderEvent e) {
    e.type = type;
    e.recorder = set_.config_.name;
    e.key = key_.str();
    e.trigger_publisher_ts = trigger_ts_;
    e.first_publisher_ts = first_ts_.load();
    if (set_.observer_) set_.observer_(e);
  }

  static gchar* on_format_location(GstElement*, guint fragment_id, GstSample*, gpointer self) {
    auto* r = static_cast<Recorder*>(self);
    char id[16];
    std::snprintf(id, sizeof id, "%04u", fragment_id);
    const std::string rel = r->clip_ ? r->clip_->rel_path
                                     : r->key_.app() + "/" + r->key_.stream() + "/" + utc_stamp() +
                                           "-" + id + "." +
                                           std::string(format_extension(r->set_.config_.format));
    try {
      const auto path = r->set_.storage_.local_path(rel);
      std::error_code ec;
      std::filesystem::create_directories(path.parent_path(), ec);
      return g_strdup(path.c_str());
    } catch (const Error& e) {
      GST_ERROR("[record %s] %s", r->set_.config_.name.c_str(), e.what());
      return nullptr;
    }
  }

  static GstPadProbeReturn on_first_buffer(GstPad*, GstPadProbeInfo* info, gpointer self) {
    auto* r = static_cast<Recorder*>(self);
    GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
    static GstCaps* ref = gst_caps_new_empty_simple("timestamp/x-arcly-publisher");
    if (auto* meta = gst_buffer_get_reference_timestamp_meta(buf, ref)) {
      std::int64_t expected = -1;
      r->first_ts_.compare_exchange_strong(expected, static_cast<std::int64_t>(meta->timestamp));
    }
    return GST_PAD_PROBE_REMOVE;
  }

  // A clip's end: frames past end_ts are dropped; the first primary-track frame
  // past it ends every branch (EOS), so the file is finalized there.
  static GstPadProbeReturn on_clip_buffer(GstPad* pad, GstPadProbeInfo* info, gpointer self) {
    auto* r = static_cast<Recorder*>(self);
    const std::int64_t ts = publisher_ts(GST_PAD_PROBE_INFO_BUFFER(info));
    {
      std::lock_guard lock(r->clip_mutex_);
      if (r->clip_ended_) return GST_PAD_PROBE_DROP;
      if (ts < 0 || ts <= r->end_ts_) return GST_PAD_PROBE_OK;
      const bool primary = r->video_pad_ ? pad == r->video_pad_ : true;
      if (!primary) return GST_PAD_PROBE_DROP;
      r->clip_ended_ = true;
    }
    r->finish();
    return GST_PAD_PROBE_DROP;
  }

  static void on_pad_added(GstElement*, GstPad* pad, gpointer self) {
    auto* r = static_cast<Recorder*>(self);
    GstCaps* caps = gst_pad_get_current_caps(pad);
    if (!caps) caps = gst_pad_query_caps(pad, nullptr);
    const std::string name = gst_structure_get_name(gst_caps_get_structure(caps, 0));
    gst_caps_unref(caps);
    const char* parser = nullptr;
    bool video = false;
    if (name == "video/x-h264")
      parser = "h264parse", video = true;
    else if (name == "video/x-h265")
      parser = "h265parse", video = true;
    else if (name == "audio/mpeg")
      parser = "aacparse";
    else if (name == "audio/x-opus")
      parser = "opusparse";
    else if (name == "audio/x-alaw" || name == "audio/x-mulaw")
      parser = "identity";
    GstBin* bin = GST_BIN(r->pipeline_);
    if (r->clip_) {
      if (video && !r->has_video_) {
        std::lock_guard lock(r->clip_mutex_);
        r->video_pad_ = pad;
      }
      gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, &Recorder::on_clip_buffer, r, nullptr);
    }
    if (!parser || (video && r->has_video_)) {
      GstElement* sink = gst_element_factory_make("fakesink", nullptr);
      g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
      gst_bin_add(bin, sink);
      gst_element_sync_state_with_parent(sink);
      GstPad* sp = gst_element_get_static_pad(sink, "sink");
      gst_pad_link(pad, sp);
      gst_object_unref(sp);
      GST_INFO("[record %s] not recording track %s (%s)", r->set_.config_.name.c_str(),
               GST_PAD_NAME(pad), name.c_str());
      return;
    }
    if (video) {
      r->has_video_ = true;
      gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, &Recorder::on_first_buffer, r, nullptr);
    }
    GstElement* queue = gst_element_factory_make("queue", nullptr);
    GstElement* parse = gst_element_factory_make(parser, nullptr);
    gst_bin_add_many(bin, queue, parse, nullptr);
    gst_element_link(queue, parse);
    GstPad* muxpad = gst_element_request_pad_simple(r->mux_, video ? "video" : "audio_%u");
    GstPad* out = gst_element_get_static_pad(parse, "src");
    GstPad* in = gst_element_get_static_pad(queue, "sink");
    gst_pad_link(out, muxpad);
    gst_element_sync_state_with_parent(parse);
    gst_element_sync_state_with_parent(queue);
    gst_pad_link(pad, in);
    gst_object_unref(out);
    gst_object_unref(in);
    if (muxpad) gst_object_unref(muxpad);
  }

  RecorderSet& set_;
  StreamKey key_;
  GstElement* pipeline_ = nullptr;
  GstElement* src_ = nullptr;
  GstElement* mux_ = nullptr;
  State state_ = State::Recording;
  std::string error_;
  std::uint64_t segments_ = 0;
  std::string current_;
  bool has_video_ = false;
  std::int64_t trigger_ts_ = -1;
  std::atomic<std::int64_t> first_ts_{-1};
  std::atomic<bool> finishing_{false};
  std::optional<ClipSpec> clip_;
  mutable std::mutex clip_mutex_;
  std::int64_t end_ts_ = -1;     // guarded by clip_mutex_
  bool clip_ended_ = false;      // guarded by clip_mutex_
  GstPad* video_pad_ = nullptr;  // guarded by clip_mutex_ (identity only)
};

RecorderSet::RecorderSet(RecordConfig config, std::shared_ptr<Engine> engine,
                         std::string engine_name, Observer observer)
    : config_(std::move(config)),
      engine_(std::move(engine)),
      engine_name_(std::move(engine_name)),
      observer_(std::move(observer)),
      storage_(config_.dir) {
  static std::once_flag once;
  std::call_once(once, [] {
    GST_DEBUG_CATEGORY_INIT(arcly_record_debug, "arclyrecord", 0, "arcly recorders");
  });
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

RecorderSet::~RecorderSet() {
  stop(0ms);
}

void RecorderSet::run(std::stop_token stop) {
  auto last_retention = Clock::now() - 1h;
  while (!stop.stop_requested()) {
    {
      std::lock_guard lock(mutex_);
      const auto now = Clock::now();
      poll_clips();
      // Follow the streams that match (mode=continuous; events mode records clips only).
      for (const auto& stream :
           config_.mode == RecordMode::Events ? std::vector<StreamHandle>{} : engine_->streams()) {
        const std::string key = stream->key().str();
        if (!ingest::key_matches(config_.pattern, key) || recorders_.contains(key)) continue;
        if (auto it = retry_at_.find(key); it != retry_at_.end() && now < it->second) continue;
        if (now - stream->started_at() < config_.join_delay) continue;
        auto r = std::make_unique<Recorder>(*this, stream->key());
        r->start();
        recorders_.emplace(key, std::move(r));
      }
      // Reap finished and failed recorders.
      for (auto it = recorders_.begin(); it != recorders_.end();) {
        it->second->poll();
        const auto state = it->second->state();
        if (state == Recorder::State::Recording) {
          ++it;
          continue;
        }
        if (state == Recorder::State::Failed) {
          auto& delay = retry_delay_[it->first];
          delay =
              delay.count() == 0 ? 1000ms : std::min(delay * 2, std::chrono::milliseconds(30000));
          retry_at_[it->first] = now + delay;
          GST_WARNING("[record %s] %s: retrying in %lld ms", config_.name.c_str(),
                      it->first.c_str(), static_cast<long long>(delay.count()));
        } else {
          retry_delay_.erase(it->first);
          retry_at_.erase(it->first);
        }
        const std::string last = it->second->current();
        it = recorders_.erase(it);  // tears the pipeline down
        // The open segment of a failed attempt was never finalized: keep it for
        // inspection as "<name>.partial", not as a recording (empty ones go).
        std::error_code ec;
        if (state == Recorder::State::Failed && !last.empty() &&
            std::filesystem::exists(last, ec)) {
          if (std::filesystem::file_size(last, ec) == 0) {
            std::filesystem::remove(last, ec);
          } else {
            std::filesystem::rename(last, last + ".partial", ec);
          }
          GST_INFO("[record %s] set aside unfinished %s", config_.name.c_str(), last.c_str());
        }
      }
      if ((config_.max_age.count() > 0 || config_.max_bytes > 0) && now - last_retention > 1s) {
        apply_retention();
        last_retention = now;
      }
    }
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock l(m);
    cv.wait_for(l, stop, 100ms, [] { return false; });
  }
}

// Called with mutex_ held: deletes the oldest closed segments past max-age or max-bytes.
void RecorderSet::apply_retention() {
  std::vector<StoredObject> objects;
  try {
    objects = storage_.list("");
  } catch (const Error&) {
    return;
  }
  std::vector<std::string> open;
  for (const auto& [key, r] : recorders_) open.push_back(r->current());
  const std::string ext = "." + std::string(format_extension(config_.format));
  std::erase_if(objects, [&](const StoredObject& o) {
    const auto second = o.path.find('/', o.path.find('/') + 1);
    if (second == std::string::npos || !o.path.ends_with(ext)) return true;
    if (!ingest::key_matches(config_.pattern, o.path.substr(0, second))) return true;
    const auto full = storage_.local_path(o.path).string();
    return std::find(open.begin(), open.end(), full) != open.end();
  });
  std::sort(objects.begin(), objects.end(), [](const StoredObject& a, const StoredObject& b) {
    return a.modified_ns < b.modified_ns;
  });
  std::uint64_t total = 0;
  for (const auto& o : objects) total += o.size;
  const std::int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  const std::int64_t max_age_ns = std::chrono::nanoseconds(config_.max_age).count();
  for (const auto& o : objects) {
    const bool too_old = max_age_ns > 0 && now_ns - o.modified_ns > max_age_ns;
    const bool too_big = config_.max_bytes > 0 && total > config_.max_bytes;
    if (!too_old && !too_big) continue;
    try {
      storage_.remove(o.path);
      total -= o.size;
      GST_INFO("[record %s] retention removed %s", config_.name.c_str(), o.path.c_str());
      RecorderEvent e;
      e.type = "segment-deleted";
      e.recorder = config_.name;
      e.location = storage_.local_path(o.path).string();
      if (observer_) observer_(e);
    } catch (const Error& e) {
      GST_WARNING("[record %s] retention: %s", config_.name.c_str(), e.what());
    }
  }
}

void RecorderSet::stop(std::chrono::milliseconds timeout, bool streams_live) {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  const auto deadline = now + timeout;
  // Streams that are ending bring their own EOS; give them half the time before
  // ending the recordings ourselves. Live streams are ended at once.
  const auto finish_at = streams_live ? now : now + timeout / 2;
  bool finished = false;
  for (;;) {
    bool recording = false;
    for (auto* set : {&recorders_, &clips_}) {
      for (auto& [key, r] : *set) {
        r->poll();
        recording |= r->state() == Recorder::State::Recording;
      }
    }
    if (!recording || Clock::now() >= deadline) break;
    if (!finished && Clock::now() >= finish_at) {
      for (auto* set : {&recorders_, &clips_}) {
        for (auto& [key, r] : *set) r->finish();
      }
      finished = true;
    }
    std::this_thread::sleep_for(20ms);
  }
  for (auto& [key, r] : recorders_) r->teardown();
  recorders_.clear();
  poll_clips();  // their final state, for events()
  for (auto& [id, r] : clips_) {
    r->teardown();
    auto& st = clip_states_[id];
    if (st.state == "recording") st.state = "finalized";
  }
  clips_.clear();
}

std::vector<RecorderStatus> RecorderSet::status() const {
  std::lock_guard lock(mutex_);
  std::vector<RecorderStatus> out;
  for (const auto& [key, r] : recorders_) out.push_back(r->status());
  for (const auto& [id, r] : clips_) out.push_back(r->status());
  return out;
}

std::vector<std::string> RecorderSet::open_files() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto* set : {&recorders_, &clips_}) {
    for (const auto& [key, r] : *set) {
      if (!r->current().empty()) out.push_back(r->current());
    }
  }
  return out;
}

// Called with mutex_ held: clip state for events(); finished clips go.
void RecorderSet::poll_clips() {
  for (auto it = clips_.begin(); it != clips_.end();) {
    Recorder& r = *it->second;
    r.poll();
    auto& st = clip_states_[it->first];
    st.first_ts = r.first_ts();
    st.end_ts = r.end_ts();
    if (r.state() == Recorder::State::Recording) {
      ++it;
      continue;
    }
    st.state = r.state() == Recorder::State::Finished ? "finalized" : "failed";
    st.error = r.error();
    it = clips_.erase(it);
  }
}

EventClip RecorderSet::trigger(const StreamKey& key, std::chrono::milliseconds pre,
                               std::chrono::milliseconds post, const std::string& label) {
  std::lock_guard lock(mutex_);
  StreamHandle stream = engine_->find_stream(key);
  if (!stream)
    throw Error(Errc::StreamNotFound, "no stream '" + key.str() + "' is being published");
  EventClip e;
  e.id = "ev-" + utc_stamp() + "-" + std::to_string(next_event_++);
  e.key = key.str();
  e.label = label;
  e.recorder = config_.name;
  e.created_unix_ms = unix_ms_now();
  e.pre_ms = pre.count();
  e.post_ms = post.count();
  e.trigger_ts = stream->gop().newest_pts();
  e.end_ts = e.trigger_ts + std::chrono::nanoseconds(post).count();
  // Where the clip will start: the keyframe arclysrc's preroll picks from the cache.
  if (auto anchor = stream->gop().covering(pre, stream->bus().oldest(), stream->bus().tail()))
    e.pre_obtained_ms = std::max<std::int64_t>(0, (e.trigger_ts - anchor->pts) / 1'000'000);
  for (auto& [id, r] : clips_) {
    if (r->key() == key && r->extend_to(e.end_ts)) {
      e.clip = id;
      e.extended = id;
      break;
    }
  }
  if (e.clip.empty()) {
    ClipSpec spec;
    spec.id = e.id;
    spec.rel_path = key.app() + "/" + key.stream() + "/" + utc_stamp() + "-event-" +
                    std::to_string(next_event_ - 1) + "." +
                    std::string(format_extension(config_.format));
    spec.pre = pre;
    spec.end_ts = e.end_ts;
    auto& st = clip_states_[e.id];
    st.file = storage_.local_path(spec.rel_path).string();
    st.end_ts = e.end_ts;
    auto r = std::make_unique<Recorder>(*this, key, std::move(spec));
    if (!r->start()) {
      st.state = "failed";
      st.error = r->error();
    } else {
      clips_.emplace(e.id, std::move(r));
    }
    e.clip = e.id;
  }
  events_.push_back(e);
  if (events_.size() > 1000) events_.erase(events_.begin());
  const auto& st = clip_states_[e.clip];
  e.state = st.state;
  e.file = st.file;
  e.error = st.error;
  e.end_ts = st.end_ts;
  return e;
}

std::vector<EventClip> RecorderSet::events() const {
  std::lock_guard lock(mutex_);
  std::vector<EventClip> out = events_;
  for (auto& e : out) {
    auto it = clip_states_.find(e.clip);
    if (it == clip_states_.end()) continue;
    const auto& st = it->second;
    e.state = st.state;
    e.file = st.file;
    e.error = st.error;
    e.first_ts = st.first_ts;
    e.end_ts = st.end_ts;
    if (st.first_ts >= 0)
      e.pre_obtained_ms = std::max<std::int64_t>(0, (e.trigger_ts - st.first_ts) / 1'000'000);
  }
  return out;
}

}  // namespace arcly::host
