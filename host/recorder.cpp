#include "recorder.hpp"

#include <gst/pbutils/pbutils.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <set>

#include "arcly/error.hpp"
#include "segment_file.hpp"
#include "srt_worker.hpp"  // key_matches

GST_DEBUG_CATEGORY_STATIC(arcly_record_debug);
#define GST_CAT_DEFAULT arcly_record_debug

namespace arcly::host {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

// How an operator calls a codec: "G.711 A-law (audio/x-alaw)".
std::string codec_name(const GstCaps* caps) {
  const GstStructure* s = gst_caps_get_structure(caps, 0);
  const std::string name = gst_structure_get_name(s);
  std::string human;
  if (name == "audio/x-alaw")
    human = "G.711 A-law";
  else if (name == "audio/x-mulaw")
    human = "G.711 mu-law";
  else if (name == "image/jpeg")
    human = "MJPEG";
  else if (gchar* d = gst_pb_utils_get_codec_description(caps)) {
    human = d;
    g_free(d);
  }
  return human.empty() ? name : human + " (" + name + ")";
}

// Whether a sink pad template of the muxer takes this kind of stream at all.
bool muxer_accepts(GstElement* muxer, const GstCaps* caps) {
  const GstStructure* s = gst_caps_get_structure(caps, 0);
  GstCaps* probe = gst_caps_new_empty_simple(gst_structure_get_name(s));
  gint version = 0;
  if (gst_structure_get_int(s, "mpegversion", &version))
    gst_caps_set_simple(probe, "mpegversion", G_TYPE_INT, version, nullptr);
  bool ok = false;
  GstElementFactory* f = gst_element_get_factory(muxer);
  for (const GList* l = gst_element_factory_get_static_pad_templates(f); l && !ok; l = l->next) {
    auto* t = static_cast<GstStaticPadTemplate*>(l->data);
    if (t->direction != GST_PAD_SINK) continue;
    GstCaps* tc = gst_static_pad_template_get_caps(t);
    ok = gst_caps_can_intersect(tc, probe);
    gst_caps_unref(tc);
  }
  gst_caps_unref(probe);
  return ok;
}

// The formats that would take a codec the configured one refuses.
std::string formats_that_take(const std::string& caps_name) {
  std::string out;
  for (const char* m : {"mp4mux", "matroskamux", "mpegtsmux"}) {
    GstElement* e = gst_element_factory_make(m, nullptr);
    if (!e) continue;
    GstCaps* c = gst_caps_new_empty_simple(caps_name.c_str());
    if (muxer_accepts(e, c)) {
      const char* f = std::string(m) == "mp4mux"        ? "mp4"
                      : std::string(m) == "matroskamux" ? "mkv"
                                                        : "ts";
      out += std::string(out.empty() ? "" : " or ") + "format=" + f;
    }
    gst_caps_unref(c);
    gst_object_unref(gst_object_ref_sink(e));
  }
  return out;
}

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

std::chrono::milliseconds next_retry_delay(std::chrono::milliseconds previous,
                                           std::chrono::steady_clock::duration ran_for) {
  if (previous.count() == 0 || ran_for >= kHealthyPeriod) return 1000ms;
  return std::min(previous * 2, std::chrono::milliseconds(30000));
}

class RecorderSet::Recorder {
 public:
  enum class State { Recording, Finished, Failed };

  Recorder(RecorderSet& set, StreamKey key, std::uint64_t instance,
           std::optional<ClipSpec> clip = std::nullopt)
      : set_(set),
        key_(std::move(key)),
        instance_(instance),
        started_at_(Clock::now()),
        clip_(std::move(clip)) {
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
      join_steady_ns_ = Clocks::now().steady_ns;
    }
    const auto preroll = clip_ ? clip_->pre : set_.config_.preroll;
    g_object_set(src, "engine", set_.engine_name_.c_str(), "stream", key_.str().c_str(), "wait",
                 2000, "preroll", static_cast<guint>(preroll.count()), nullptr);
    gst_util_set_object_arg(G_OBJECT(src), "start", "keyframe");
    muxer_ = muxer;  // owned by splitmuxsink from here on
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
        case GST_MESSAGE_ELEMENT:
          on_element_message(gst_message_get_structure(m));
          break;
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
  bool refused() const { return refused_; }
  std::uint64_t instance() const { return instance_; }
  Clock::duration ran_for() const { return Clock::now() - started_at_; }
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
    s.capture_start_ns = current_capture_ns_;
    s.lag_events = lag_events_;
    s.dropped_frames = dropped_frames_;
    s.preroll_ms = preroll_got_ms_;
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
  // The segments splitmuxsink was given and did not close: the one being written,
  // one just named whose opening is not announced yet, and after teardown those
  // it never finalized.
  std::vector<std::string> unfinished() {
    std::lock_guard lock(captures_mutex_);
    return {handed_out_.begin(), handed_out_.end()};
  }

 private:
  void on_element_message(const GstStructure* s) {
    const bool opened = gst_structure_has_name(s, "splitmuxsink-fragment-opened");
    const bool closed = gst_structure_has_name(s, "splitmuxsink-fragment-closed");
    // After an error splitmuxsink still "closes" the segment it could not write:
    // not a finished segment; reap() recovers what it holds.
    if (closed && state_ == State::Failed) return;
    if (opened || closed) {
      RecorderEvent e;
      e.location =
          gst_structure_get_string(s, "location") ? gst_structure_get_string(s, "location") : "";
      GstClockTime rt = GST_CLOCK_TIME_NONE;
      gst_structure_get_clock_time(s, "running-time", &rt);
      e.running_time_ns = GST_CLOCK_TIME_IS_VALID(rt) ? static_cast<std::int64_t>(rt) : -1;
      if (opened) {
        ++segments_;
        current_ = e.location;
        {
          std::lock_guard lock(captures_mutex_);
          if (auto it = captures_.find(e.location); it != captures_.end()) {
            current_capture_ns_ = it->second;
            captures_.erase(it);
          }
        }
        e.capture_start_ns = current_capture_ns_;
        check_preroll();
      } else {
        set_.disk_->segment_closed(e.location);
        {
          std::lock_guard lock(captures_mutex_);
          handed_out_.erase(e.location);
        }
        if (e.location == current_) current_.clear();
      }
      event(opened ? "segment-opened" : "segment-closed", std::move(e));
    } else if (gst_structure_has_name(s, "arcly-lagged")) {
      guint64 dropped = 0, total = 0;
      gst_structure_get_uint64(s, "dropped", &dropped);
      gst_structure_get_uint64(s, "total-dropped", &total);
      ++lag_events_;
      dropped_frames_ += dropped;
      RecorderEvent e;
      e.dropped = dropped;
      e.location = current_;
      e.message = "fell behind the stream (disk too slow?): " + std::to_string(dropped) +
                  " frames lost, resumed at the newest keyframe (" +
                  std::to_string(dropped_frames_) + " frames lost in " +
                  std::to_string(lag_events_) + " times)";
      GST_WARNING("[record %s] %s: %s", set_.config_.name.c_str(), key_.str().c_str(),
                  e.message.c_str());
      event("recorder-lagged", std::move(e));
    } else if (gst_structure_has_name(s, "arcly-record-refused")) {
      refused_ = true;
      fail(gst_structure_get_string(s, "reason"));
    }
  }

  // Once, at the first segment: the pre-roll actually recorded (from the newest
  // frame at the join back to the first recorded frame). Shorter than asked when the
  // app's cache limits (frames, bytes) held no keyframe that far back.
  void check_preroll() {
    const std::int64_t first = first_ts_.load();
    if (preroll_got_ms_ >= 0 || first < 0 || trigger_ts_ < 0) return;
    preroll_got_ms_ = std::max<std::int64_t>(0, (trigger_ts_ - first) / 1'000'000);
    const auto asked = set_.config_.preroll.count();
    if (asked <= 0 || preroll_got_ms_ >= asked) return;
    RecorderEvent e;
    char msg[256];
    std::snprintf(msg, sizeof msg,
                  "pre-roll: recorded %.1f s of the %.1f s asked: the application's cache held "
                  "no older keyframe (raise its cache-frames or cache-bytes)",
                  static_cast<double>(preroll_got_ms_) / 1000.0,
                  static_cast<double>(asked) / 1000.0);
    e.message = msg;
    GST_WARNING("[record %s] %s: %s", set_.config_.name.c_str(), key_.str().c_str(), msg);
    event("preroll-short", std::move(e));
  }

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

  // On splitmuxsink's thread, before each segment: its name is the capture time of
  // its first frame, and the storage makes room for it first (min-free).
  static gchar* on_format_location(GstElement*, guint fragment_id, GstSample* sample,
                                   gpointer self) {
    auto* r = static_cast<Recorder*>(self);
    const Clocks now = Clocks::now();
    std::int64_t wall = now.wall_ns;
    std::int64_t steady = now.steady_ns;
    // Publisher timestamps run with the publisher's clock from its own origin: the
    // newest one when the recorder joined (trigger) anchors them to the monotonic
    // clock, and the wall clock of now converts that (a clock step since the join
    // does not move the names).
    GstBuffer* buf = sample ? gst_sample_get_buffer(sample) : nullptr;
    static GstCaps* ref = gst_caps_new_empty_simple("timestamp/x-arcly-publisher");
    auto* meta = buf ? gst_buffer_get_reference_timestamp_meta(buf, ref) : nullptr;
    if (meta && r->trigger_ts_ >= 0) {
      const std::int64_t capture_steady =
          r->join_steady_ns_ + (static_cast<std::int64_t>(meta->timestamp) - r->trigger_ts_);
      if (capture_steady <= now.steady_ns) {
        wall -= now.steady_ns - capture_steady;
        steady = capture_steady;
      }
    }
    r->set_.disk_->make_room();
    // A clip is one file with the name trigger() gave it.
    const std::string rel = r->clip_
                                ? r->clip_->rel_path
                                : r->key_.app() + "/" + r->key_.stream() + "/" +
                                      segment_file_name(wall, fragment_id, r->set_.config_.format);
    try {
      const auto path = r->set_.storage_.local_path(rel);
      std::error_code ec;
      std::filesystem::create_directories(path.parent_path(), ec);
      r->set_.disk_->segment_opened(path.string(), wall, steady);
      {
        std::lock_guard lock(r->captures_mutex_);
        r->captures_[path.string()] = wall;
        r->handed_out_.insert(path.string());
      }
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

  static void to_fakesink(GstBin* bin, GstPad* pad) {
    GstElement* sink = gst_element_factory_make("fakesink", nullptr);
    g_object_set(sink, "sync", FALSE, "async", FALSE, nullptr);
    gst_bin_add(bin, sink);
    gst_element_sync_state_with_parent(sink);
    GstPad* sp = gst_element_get_static_pad(sink, "sink");
    gst_pad_link(pad, sp);
    gst_object_unref(sp);
  }

  // On arclysrc's thread. A track the muxer refuses fails the recording (through
  // the bus, to the set's thread): recording without it would lose it silently.
  static void on_pad_added(GstElement*, GstPad* pad, gpointer self) {
    auto* r = static_cast<Recorder*>(self);
    GstCaps* caps = gst_pad_get_current_caps(pad);
    if (!caps) caps = gst_pad_query_caps(pad, nullptr);
    const GstStructure* st = gst_caps_get_structure(caps, 0);
    const std::string name = gst_structure_get_name(st);
    const bool video = name.starts_with("video/") || name.starts_with("image/");
    const bool audio = name.starts_with("audio/");
    GstBin* bin = GST_BIN(r->pipeline_);
    if (r->clip_) {
      if (video && !r->has_video_) {
        std::lock_guard lock(r->clip_mutex_);
        r->video_pad_ = pad;
      }
      gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, &Recorder::on_clip_buffer, r, nullptr);
    }
    if ((!video && !audio) || (video && r->has_video_)) {
      to_fakesink(bin, pad);
      GST_INFO("[record %s] not recording track %s (%s): %s", r->set_.config_.name.c_str(),
               GST_PAD_NAME(pad), name.c_str(),
               video ? "splitmuxsink records one video track" : "not audio or video");
      gst_caps_unref(caps);
      return;
    }
    if (!muxer_accepts(r->muxer_, caps)) {
      const std::string fmt(format_extension(r->set_.config_.format));
      const std::string others = formats_that_take(name);
      const std::string reason =
          "the " + std::string(video ? "video" : "audio") + " track is " + codec_name(caps) +
          ", which format=" + fmt + " cannot hold: " +
          (others.empty() ? std::string("no recording format takes it")
                          : "use " + others + (audio ? ", or transcode the audio" : "")) +
          " (nothing recorded)";
      gst_caps_unref(caps);
      to_fakesink(bin, pad);
      gst_element_post_message(
          r->pipeline_,
          gst_message_new_element(GST_OBJECT(r->pipeline_),
                                  gst_structure_new("arcly-record-refused", "reason", G_TYPE_STRING,
                                                    reason.c_str(), nullptr)));
      return;
    }
    const char* parser = "identity";
    gint mpegversion = 0;
    if (name == "video/x-h264")
      parser = "h264parse";
    else if (name == "video/x-h265")
      parser = "h265parse";
    else if (name == "image/jpeg")
      parser = "jpegparse";
    else if (name == "audio/mpeg")
      parser = gst_structure_get_int(st, "mpegversion", &mpegversion) && mpegversion == 1
                   ? "mpegaudioparse"
                   : "aacparse";
    else if (name == "audio/x-opus")
      parser = "opusparse";
    gst_caps_unref(caps);
    if (video) {
      r->has_video_ = true;
      gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, &Recorder::on_first_buffer, r, nullptr);
    }
    // A queue per track, bounded in buffers and bytes (its defaults: 200, 10 MB)
    // but not in time. arclysrc pushes every track from its one streaming thread
    // in arrival order, and splitmuxsink holds a track until the video has reached
    // its running time. When one track arrived ahead of the other by more than the
    // queue's default 1 s (an edge's SRT ingest had its audio ~1.1 s ahead of its
    // video), that track's queue was full, blocked the one thread, and the video
    // the muxer waited for never came: the recording stopped. The buffer bound
    // stays: a stalled disk must still hold arclysrc back (lag accounting).
    GstElement* queue = gst_element_factory_make("queue", nullptr);
    g_object_set(queue, "max-size-time", G_GUINT64_CONSTANT(0), nullptr);
    GstElement* parse = gst_element_factory_make(parser, nullptr);
    if (!parse) parse = gst_element_factory_make("identity", nullptr);
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
  const std::uint64_t instance_;
  const Clock::time_point started_at_;
  GstElement* pipeline_ = nullptr;
  GstElement* src_ = nullptr;
  GstElement* mux_ = nullptr;
  GstElement* muxer_ = nullptr;
  State state_ = State::Recording;
  std::string error_;
  bool refused_ = false;
  std::uint64_t segments_ = 0;
  std::string current_;
  std::int64_t current_capture_ns_ = -1;
  std::uint64_t lag_events_ = 0;
  std::uint64_t dropped_frames_ = 0;
  std::int64_t preroll_got_ms_ = -1;
  bool has_video_ = false;
  std::int64_t trigger_ts_ = -1;
  std::int64_t join_steady_ns_ = 0;  // monotonic time when trigger_ts_ was the newest
  std::atomic<std::int64_t> first_ts_{-1};
  std::atomic<bool> finishing_{false};
  std::optional<ClipSpec> clip_;
  mutable std::mutex clip_mutex_;
  std::int64_t end_ts_ = -1;     // guarded by clip_mutex_
  bool clip_ended_ = false;      // guarded by clip_mutex_
  GstPad* video_pad_ = nullptr;  // guarded by clip_mutex_ (identity only)
  std::mutex captures_mutex_;
  std::map<std::string, std::int64_t> captures_;  // location -> capture time, until opened
  std::set<std::string> handed_out_;              // locations given to splitmuxsink, not closed
};

RecorderSet::RecorderSet(RecordConfig config, std::shared_ptr<Engine> engine,
                         std::string engine_name, Observer observer)
    : config_(std::move(config)),
      engine_(std::move(engine)),
      engine_name_(std::move(engine_name)),
      observer_(std::move(observer)),
      storage_(config_.dir),
      disk_(Storage::attach(config_.dir)) {
  static std::once_flag once;
  std::call_once(once, [] {
    GST_DEBUG_CATEGORY_INIT(arcly_record_debug, "arclyrecord", 0, "arcly recorders");
  });
  RetentionRule rule;
  rule.section = config_.name;
  rule.pattern = config_.pattern;
  rule.max_age = config_.max_age;
  rule.max_bytes = config_.max_bytes;
  rule.min_free_bytes = config_.min_free_bytes;
  rule.min_free_percent = config_.min_free_percent;
  disk_->add_rule(this, rule, [observer = observer_](const Storage::Event& se) {
    RecorderEvent e;
    e.type = se.type;
    e.recorder = se.section;
    e.key = se.key;
    e.location = se.location;
    e.message = se.message;
    if (observer) observer(e);
  });
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

RecorderSet::~RecorderSet() {
  stop(0ms);
}

// Called with mutex_ held, for a recorder that finished or failed: plans the retry,
// and keeps what a failed attempt wrote (playable where the format allows).
void RecorderSet::reap(const std::string& key, Recorder& r, Clock::time_point now) {
  const auto state = r.state();
  if (state == Recorder::State::Failed) {
    auto& delay = retry_delay_[key];
    delay = next_retry_delay(delay, r.ran_for());
    Failure f;
    f.error = r.error();
    f.retry_at = now + delay;
    f.instance = r.instance();
    f.until_republished = r.refused();
    failed_[key] = f;
    if (f.until_republished)
      GST_WARNING("[record %s] %s: not retried until the stream is published again",
                  config_.name.c_str(), key.c_str());
    else
      GST_WARNING("[record %s] %s: retrying in %lld ms", config_.name.c_str(), key.c_str(),
                  static_cast<long long>(delay.count()));
  } else {
    retry_delay_.erase(key);
    failed_.erase(key);
  }
  r.teardown();
  if (state != Recorder::State::Failed) return;
  for (const auto& last : r.unfinished()) {
    const auto rec = recover_unfinished(last, config_.format);
    disk_->segment_gone(last);
    RecorderEvent e;
    e.recorder = config_.name;
    e.key = key;
    switch (rec.outcome) {
      case Recovery::Kept:
        disk_->segment_closed(rec.path);
        e.type = "segment-recovered";
        e.location = rec.path;
        e.message =
            "the unfinished segment of the failed attempt was cut after its last complete "
            "fragment (" +
            std::to_string(rec.size) + " bytes) and stays playable";
        break;
      case Recovery::SetAside:
        disk_->segment_closed(rec.path);
        e.type = "segment-set-aside";
        e.location = rec.path;
        e.message = "the unfinished segment of the failed attempt was set aside";
        break;
      case Recovery::Removed:
        e.type = "segment-removed";
        e.location = last;
        e.message = "the failed attempt's segment held no complete fragment";
        break;
      case Recovery::Missing:
        continue;
    }
    GST_INFO("[record %s] %s %s", config_.name.c_str(), e.type.c_str(), e.location.c_str());
    if (observer_) observer_(e);
  }
}

void RecorderSet::run(std::stop_token stop) {
  while (!stop.stop_requested()) {
    {
      std::lock_guard lock(mutex_);
      const auto now = Clock::now();
      poll_clips();
      // Follow the streams that match (mode=continuous; events mode records clips only);
      // an error is forgotten once its stream is gone.
      const auto streams =
          config_.mode == RecordMode::Events ? std::vector<StreamHandle>{} : engine_->streams();
      std::erase_if(failed_, [&](const auto& f) {
        return std::none_of(streams.begin(), streams.end(),
                            [&](const auto& st) { return st->key().str() == f.first; });
      });
      for (const auto& stream : streams) {
        const std::string key = stream->key().str();
        if (!ingest::key_matches(config_.pattern, key) || recorders_.contains(key)) continue;
        if (auto it = failed_.find(key); it != failed_.end()) {
          if (it->second.until_republished && it->second.instance == stream->instance()) continue;
          if (!it->second.until_republished && now < it->second.retry_at) continue;
        }
        if (now - stream->started_at() < config_.join_delay) continue;
        auto r = std::make_unique<Recorder>(*this, stream->key(), stream->instance());
        r->start();
        recorders_.emplace(key, std::move(r));
      }
      // Reap finished and failed recorders.
      for (auto it = recorders_.begin(); it != recorders_.end();) {
        it->second->poll();
        if (it->second->state() == Recorder::State::Recording) {
          ++it;
          continue;
        }
        reap(it->first, *it->second, now);
        it = recorders_.erase(it);
      }
    }
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock l(m);
    cv.wait_for(l, stop, 100ms, [] { return false; });
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
  for (auto& [key, r] : recorders_) {
    if (r->state() == Recorder::State::Failed) {
      reap(key, *r, Clock::now());
    } else {
      r->teardown();
      // Not finalized in time: what is on disk up to its last fragment stays.
      for (const auto& open : r->unfinished()) disk_->segment_closed(open);
    }
  }
  recorders_.clear();
  poll_clips();  // their final state, for events()
  for (auto& [id, r] : clips_) {
    r->teardown();
    for (const auto& open : r->unfinished()) disk_->segment_closed(open);
    auto& st = clip_states_[id];
    if (st.state == "recording") st.state = "finalized";
  }
  clips_.clear();
  disk_->remove_rule(this);
}

std::vector<RecorderStatus> RecorderSet::status() const {
  std::lock_guard lock(mutex_);
  std::vector<RecorderStatus> out;
  for (const auto& [key, r] : recorders_) out.push_back(r->status());
  for (const auto& [id, r] : clips_) out.push_back(r->status());
  const auto now = Clock::now();
  for (const auto& [key, f] : failed_) {
    if (recorders_.contains(key)) continue;
    RecorderStatus s;
    s.recorder = config_.name;
    s.key = key;
    s.state = "error";
    s.error = f.error;
    s.retry_in_ms =
        f.until_republished
            ? -1
            : std::max<std::int64_t>(
                  0,
                  std::chrono::duration_cast<std::chrono::milliseconds>(f.retry_at - now).count());
    out.push_back(s);
  }
  return out;
}

std::vector<std::string> RecorderSet::open_files() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto* set : {&recorders_, &clips_}) {
    for (const auto& [key, r] : *set) {
      // Every file format-location named and splitmuxsink has not closed: the
      // current one, and one named whose opening is not announced yet.
      for (auto& f : r->unfinished()) out.push_back(std::move(f));
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
    auto r = std::make_unique<Recorder>(*this, key, stream->instance(), std::move(spec));
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
