// SubscriberDriver (see subscriber_driver.hpp).
#include "subscriber_driver.hpp"

#include <gst/base/gstflowcombiner.h>

#include <chrono>

#include "arcly/error.hpp"
#include "caps_track.hpp"
#include "gst_ptr.hpp"
#include "keys.hpp"

GST_DEBUG_CATEGORY_STATIC(arcly_subscriber_debug);
#define GST_CAT_DEFAULT arcly_subscriber_debug

namespace arcly::gst {

void SubscriberStats::reset() {
  frames = 0;
  bytes = 0;
  keyframes = 0;
  dropped = 0;
  lag_events = 0;
  publishers = 0;
  lag_resyncs = 0;
  lag_ns = 0;
  upstream_latency_ns = -1;
  key_unit_requests = 0;
  clock_drift_ns = 0;
  clock_corrections = 0;
}

namespace {

StreamKey parse_key(const SubscriberSettings& s) {
  static const bool once = [] {
    GST_DEBUG_CATEGORY_INIT(arcly_subscriber_debug, "arclysubscriber", 0,
                            "arcly subscriber driver");
    return true;
  }();
  (void)once;
  return parse_stream_key(s.stream_key, "arclysrc");
}

}  // namespace

SubscriberDriver::SubscriberDriver(const SubscriberSettings& settings, SubscriberHost& host,
                                   SubscriberStats& stats)
    : settings_(settings),
      host_(host),
      stats_(stats),
      engine_(engine_for(settings.engine_name)),
      key_(parse_key(settings)),
      group_id_(gst_util_group_id_next()),
      combiner_(gst_flow_combiner_new()) {
  try {
    if (settings_.wait_ms == 0) initial_stream_ = engine_->get_stream(key_);
  } catch (...) {
    gst_flow_combiner_free(combiner_);
    throw;
  }
}

SubscriberDriver::~SubscriberDriver() {
  sub_.reset();
  tracks_.clear();
  gst_flow_combiner_free(combiner_);
}

void SubscriberDriver::set_playing(bool playing) {
  std::lock_guard lock(lock_);
  if (playing_ && !playing) ++pauses_;
  playing_ = playing;
  control_changes_.fetch_add(1, std::memory_order_release);
  cond_.notify_all();
}

bool SubscriberDriver::request_eos() {
  if (stop_.stop_requested()) return false;
  {
    std::lock_guard lock(lock_);
    eos_requested_ = true;
    control_changes_.fetch_add(1, std::memory_order_release);
    cond_.notify_all();
  }
  interrupt_.request_stop();
  return true;
}

void SubscriberDriver::stop() {
  stop_.request_stop();
  interrupt_.request_stop();
  control_changes_.fetch_add(1, std::memory_order_release);
  std::lock_guard lock(lock_);
  cond_.notify_all();
}

void SubscriberDriver::switch_to(const std::string& key) {
  std::lock_guard lock(lock_);
  switch_to_ = key;
  control_changes_.fetch_add(1, std::memory_order_release);
  if (wake_) wake_->request_stop();
  cond_.notify_all();
}

bool SubscriberDriver::request_key_unit() {
  std::lock_guard lock(lock_);
  if (!current_stream_ || current_stream_->closed()) return false;
  current_stream_->request_key_unit();
  return true;
}

void SubscriberDriver::set_current_stream(StreamHandle stream) {
  std::lock_guard lock(lock_);
  current_stream_ = std::move(stream);
}

// One blocking call's stop token: stop and EOS (interrupt_, for good) or a
// switch (this call only) end the wait.
class SubscriberDriver::Wake {
 public:
  explicit Wake(SubscriberDriver& d) : d_(d), link_(d.interrupt_.get_token(), Fire{&source_}) {
    std::lock_guard lock(d_.lock_);
    if (d_.switch_to_) source_.request_stop();
    d_.wake_ = &source_;
  }
  ~Wake() {
    std::lock_guard lock(d_.lock_);
    d_.wake_ = nullptr;
  }
  std::stop_token token() const { return source_.get_token(); }

 private:
  struct Fire {
    std::stop_source* source;
    void operator()() const { source->request_stop(); }
  };
  SubscriberDriver& d_;
  std::stop_source source_;
  std::stop_callback<Fire> link_;
};

void SubscriberDriver::remove_tracks() {
  for (auto& [track, out] : tracks_) {
    gst_flow_combiner_remove_pad(combiner_, out->pad());
    gst_pad_set_active(out->pad(), FALSE);
    host_.remove_pad(out->pad());
  }
  tracks_.clear();
  pad_counts_.clear();
  gst_flow_combiner_reset(combiner_);
}

// Live-source semantics: nothing is pushed until PLAYING. FALSE when
// interrupted (stop, or an EOS to push).
bool SubscriberDriver::wait_playing() {
  std::unique_lock lock(lock_);
  cond_.wait(lock, interrupt_.get_token(), [this] { return playing_ || eos_requested_; });
  return playing_ && !eos_requested_;
}

bool SubscriberDriver::eos_requested() {
  std::lock_guard lock(lock_);
  return eos_requested_;
}

// After a blocking call returned without a result: an EOS to push, or a stop.
SubscriberDriver::Step SubscriberDriver::after_interrupt() {
  if (failed_ || stop_.stop_requested()) return Step::Pause;
  if (eos_requested()) return Step::Continue;
  std::lock_guard lock(lock_);
  return switch_to_ ? Step::Continue : Step::Pause;
}

void SubscriberDriver::mark_all_discont() {
  for (auto& [track, out] : tracks_) out->mark_discont();
}

TrackOutput* SubscriberDriver::open_track(const TrackInfo& info, GstCaps* caps) {
  const std::string prefix(pad_prefix(info.kind));
  const std::string name = prefix + "_" + std::to_string(pad_counts_[info.kind]++);
  GstPad* pad = host_.new_pad(info, name);
  const std::string id =
      host_.stream_id(pad, settings_.stream_key + "/" + std::to_string(info.track));
  auto out = std::make_unique<TrackOutput>(pad, info, caps, id, group_id_);
  TrackOutput* raw = out.get();
  tracks_.insert_or_assign(info.track, std::move(out));
  gst_flow_combiner_add_pad(combiner_, raw->pad());
  GST_INFO_OBJECT(host_.log_object(), "track %u -> pad %s caps %" GST_PTR_FORMAT, info.track,
                  name.c_str(), static_cast<void*>(caps));
  host_.add_pad(raw->pad());
  return raw;
}

void SubscriberDriver::on_config(const FrameRef& frame) {
  const MediaFrame& f = *frame;
  auto it = tracks_.find(f.track);
  if (it == tracks_.end()) {
    if (!f.info) return;
    if (no_more_pads_) {
      // The pad set was announced: adding a pad now would break what
      // no-more-pads promised (decodebin, muxers linked to the pads).
      if (ignored_.insert(f.track).second)
        host_.post_warning(GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
                           "stream " + settings_.stream_key + " has a new track " +
                               std::to_string(f.track) + " after the pads were announced: ignored",
                           "caps " + f.info->description);
      return;
    }
    CapsPtr caps(caps_from_track(*f.info));
    if (!caps) {
      GST_WARNING_OBJECT(host_.log_object(), "track %u has unparsable caps '%s', ignored", f.track,
                         f.info->description.c_str());
      ignored_.insert(f.track);
      return;
    }
    open_track(*f.info, caps.get())->on_config(f);
    configured_.insert(f.track);
    return;
  }
  if (f.info && f.info->kind != it->second->kind()) {
    // Another kind of track under the same number cannot use this pad (its
    // template and its downstream are for the old kind).
    if (ignored_.insert(f.track).second)
      host_.post_warning(GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
                         "stream " + settings_.stream_key + " has a new track " +
                             std::to_string(f.track) + " of another kind than pad " +
                             GST_PAD_NAME(it->second->pad()) + ": ignored",
                         "caps " + f.info->description);
    return;
  }
  it->second->on_config(f);
  configured_.insert(f.track);
}

// EOS for the tracks the current publisher does not have (its track set is final).
void SubscriberDriver::end_vanished_tracks() {
  track_set_checked_ = true;
  for (auto& [track, out] : tracks_) {
    if (configured_.count(track) || out->ended()) continue;
    GST_INFO_OBJECT(host_.log_object(), "track %u is gone with the publisher: EOS on %s", track,
                    GST_PAD_NAME(out->pad()));
    out->push_eos();
  }
}

// Starts the timeline at the first media frame after a (re)subscription.
void SubscriberDriver::start_timeline(const MediaFrame& first, bool from_cache) {
  std::int64_t anchor = first.pts;
  std::int64_t edge = anchor;
  // A resume after a pause joins at the live edge whatever `start` says.
  live_edge_timeline_ = settings_.start == StartMode::LiveEdge || resuming_;
  resuming_ = false;
  if (live_edge_timeline_) {
    // The live edge: newest cached frame (video if there is video).
    bool have_video = false;
    std::int64_t video_edge = anchor, any_edge = anchor;
    for (const auto& ref : backlog_) {
      if (ref->is_config()) continue;
      any_edge = std::max(any_edge, ref->pts);
      if (ref->kind == MediaKind::Video) {
        have_video = true;
        video_edge = std::max(video_edge, ref->pts);
      }
    }
    edge = have_video || first.kind == MediaKind::Video ? video_edge : any_edge;
  }
  GstClockTime base = host_.running_time_now();
  if (restart_) base = std::max(base, max_rt_ + 1);
  timeline_.start(anchor, edge, base);
  timeline_offset_ = clock_offset();
  next_drift_check_ = anchor + kDriftCheck;
  stats_.clock_drift_ns.store(0, std::memory_order_relaxed);
  max_out_ = 0;  // output pts are this publisher's (shared timestamps) from here on
  for (auto& [track, out] : tracks_) out->restart();
  GST_INFO_OBJECT(
      host_.log_object(),
      "timeline: anchor %" G_GINT64_FORMAT " edge +%" GST_TIME_FORMAT " base %" GST_TIME_FORMAT,
      anchor, GST_TIME_ARGS(static_cast<GstClockTime>(edge - anchor)), GST_TIME_ARGS(base));
  // Tracks whose configs the cache offers (the keyframe's, and those that came
  // after it, in what was read ahead) open their pads now, before anything else.
  if (from_cache)
    for (const auto& ref : backlog_)
      if (ref->is_config() && ref->info && !tracks_.count(ref->track)) on_config(ref);
  // The track set may still grow (a publisher's audio caps often follow its
  // first video keyframe): it is final when the publisher declares it, or a
  // second of stream time after the newest frame we joined at.
  std::int64_t newest = anchor;
  for (const auto& ref : backlog_)
    if (!ref->is_config()) newest = std::max(newest, ref->pts);
  track_set_deadline_ = newest + static_cast<std::int64_t>(GST_SECOND);
}

// The publisher's track set is final: it declared every track announced and
// this subscriber has handled each one's config (a pad, or ignored), or the
// deadline passed (a publisher that never declares; a config lost to a lag).
bool SubscriberDriver::track_set_final(std::int64_t pts) const {
  if (pts >= track_set_deadline_) return true;
  if (!sub_) return false;
  const StreamHandle& stream = sub_->stream();
  if (!stream->tracks_complete()) return false;
  for (const FrameRef& config : stream->cached_configs())
    if (!configured_.count(config->track) && !ignored_.count(config->track)) return false;
  return true;
}

GstFlowReturn SubscriberDriver::on_media(const FrameRef& frame, bool discont) {
  const MediaFrame& f = *frame;
  if (!timeline_.started()) start_timeline(f, sub_ && sub_->from_cache(frame));
  if ((!no_more_pads_ && !tracks_.empty()) || !track_set_checked_) {
    if (track_set_final(f.pts)) {
      if (!no_more_pads_ && !tracks_.empty()) {
        no_more_pads_ = true;
        host_.no_more_pads();
      }
      if (!track_set_checked_) end_vanished_tracks();
    }
  }
  auto it = tracks_.find(f.track);
  if (it == tracks_.end() || it->second->ended() || ignored_.count(f.track)) {
    GST_LOG_OBJECT(host_.log_object(), "frame of track %u without a pad (no config yet), dropped",
                   f.track);
    return GST_FLOW_OK;
  }
  TrackOutput& out = *it->second;
  follow_clock_drift(f.pts);
  if (discont) out.mark_discont();
  const TrackOutput::Pushed pushed = out.push(frame, timeline_, live_edge_timeline_);
  if (!GST_CLOCK_TIME_IS_VALID(pushed.pts)) return GST_FLOW_OK;

  stats_.frames.fetch_add(1, std::memory_order_relaxed);
  stats_.bytes.fetch_add(f.payload.size(), std::memory_order_relaxed);
  // Video keyframes only: every audio frame is a sync point and would swamp the count.
  if (f.is_keyframe() && f.kind == MediaKind::Video)
    stats_.keyframes.fetch_add(1, std::memory_order_relaxed);
  max_out_ = std::max(max_out_, pushed.pts);
  if (!switched_from_.empty()) post_switched(pushed.pts);
  const GstClockTime edge_out = timeline_.out(timeline_.edge());
  if (pushed.pts >= edge_out)
    max_rt_ = std::max(max_rt_, pushed.pts - edge_out + timeline_.base());
  else
    max_rt_ = std::max(max_rt_, timeline_.base());
  return gst_flow_combiner_update_pad_flow(combiner_, out.pad(), pushed.flow);
}

// The pipeline clock's offset from engine time now (0 without a clock).
std::int64_t SubscriberDriver::clock_offset() {
  GstClock* clock = host_.clock();
  if (!clock) return timeline_offset_;
  const std::int64_t offset = clock_bridge_.offset(clock);
  gst_object_unref(clock);
  return offset;
}

// Every kDriftCheck of stream time: where the pipeline clock drifted from
// engine time since the timeline started, the running time follows it.
void SubscriberDriver::follow_clock_drift(std::int64_t pts) {
  if (pts < next_drift_check_) return;
  next_drift_check_ = pts + kDriftCheck;
  // A frame at engine time e plays at clock time e - offset (+ a constant): an
  // offset that grew by d wants every running time d earlier.
  const std::int64_t shift = timeline_offset_ - clock_offset();
  const std::int64_t delta = shift - timeline_.shift();
  if (delta == 0) return;
  GST_DEBUG_OBJECT(host_.log_object(),
                   "the clock drifted from engine time: running time moved %" G_GINT64_FORMAT
                   " ns (%" G_GINT64_FORMAT " ns in all)",
                   delta, shift);
  timeline_.set_shift(shift);
  for (auto& [track, out] : tracks_) out->shift_running_time(delta);
  stats_.clock_drift_ns.store(shift, std::memory_order_relaxed);
  stats_.clock_corrections.fetch_add(1, std::memory_order_relaxed);
}

// A live frame just read: records the lag behind the publisher's newest frame
// and, beyond max-lag, drops the frame and resyncs (TRUE).
bool SubscriberDriver::exceeds_max_lag(const MediaFrame& frame) {
  note_upstream_latency();
  const std::int64_t newest = sub_->stream()->newest_pts();
  const std::uint64_t lag = newest == Stream::kNoPts || newest <= frame.pts
                                ? 0
                                : static_cast<std::uint64_t>(newest - frame.pts);
  stats_.lag_ns.store(lag, std::memory_order_relaxed);
  const std::uint64_t max_lag = static_cast<std::uint64_t>(settings_.max_lag_ms) * GST_MSECOND;
  if (max_lag == 0 || lag <= max_lag) return false;
  resync_at_newest_keyframe(lag);
  return true;
}

// max-lag: leave the subscription and join the same publisher again as a late
// joiner does (configs, newest cached keyframe, clipped catch-up, DISCONT), the
// running time continuing — the path a resume from PAUSED takes.
void SubscriberDriver::resync_at_newest_keyframe(std::uint64_t lag_ns) {
  const std::uint64_t skipped = sub_->backlog() + 1;
  stats_.lag_resyncs.fetch_add(1, std::memory_order_relaxed);
  stats_.dropped.fetch_add(skipped, std::memory_order_relaxed);
  GST_WARNING_OBJECT(host_.log_object(),
                     "%" GST_TIME_FORMAT
                     " behind the publisher of %s (max-lag %u ms): "
                     "skipping %" G_GUINT64_FORMAT " frames to the newest keyframe",
                     GST_TIME_ARGS(lag_ns), settings_.stream_key.c_str(), settings_.max_lag_ms,
                     skipped);
  host_.post_element_message(
      gst_structure_new("arcly-max-lag", "stream", G_TYPE_STRING, settings_.stream_key.c_str(),
                        "lag", G_TYPE_UINT64, static_cast<guint64>(lag_ns), "max-lag",
                        G_TYPE_UINT64, static_cast<guint64>(settings_.max_lag_ms) * GST_MSECOND,
                        "skipped-frames", G_TYPE_UINT64, static_cast<guint64>(skipped), nullptr));
  resume_stream_ = sub_->stream();
  sub_.reset();
  backlog_.clear();
  restart_ = restart_ || timeline_.started();
  resuming_ = true;
  timeline_.reset();
  mark_all_discont();
  stats_.lag_ns.store(0, std::memory_order_relaxed);
}

// The publisher's upstream latency, as it published it; the host re-announces
// its own when it changed.
void SubscriberDriver::note_upstream_latency() {
  if (!sub_) return;
  const std::int64_t latency = sub_->stream()->upstream_latency().count();
  if (stats_.upstream_latency_ns.exchange(latency, std::memory_order_relaxed) != latency)
    host_.latency_changed();
}

void SubscriberDriver::post_switched(GstClockTime pts) {
  const GstClockTime edge_out = timeline_.out(timeline_.edge());
  const GstClockTime rt = pts >= edge_out ? pts - edge_out + timeline_.base() : timeline_.base();
  GST_INFO_OBJECT(host_.log_object(), "switched from %s to %s at %" GST_TIME_FORMAT,
                  switched_from_.c_str(), settings_.stream_key.c_str(), GST_TIME_ARGS(rt));
  host_.post_element_message(gst_structure_new("arcly-switched", "from", G_TYPE_STRING,
                                               switched_from_.c_str(), "to", G_TYPE_STRING,
                                               settings_.stream_key.c_str(), "running-time",
                                               G_TYPE_UINT64, static_cast<guint64>(rt), nullptr));
  switched_from_.clear();
}

void SubscriberDriver::post_lagged(std::uint64_t dropped) {
  stats_.lag_events.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t total =
      stats_.dropped.fetch_add(dropped, std::memory_order_relaxed) + dropped;
  GST_WARNING_OBJECT(host_.log_object(),
                     "subscriber lagged: %" G_GUINT64_FORMAT
                     " frames dropped, resuming at the newest keyframe",
                     dropped);
  host_.post_element_message(
      gst_structure_new("arcly-lagged", "stream", G_TYPE_STRING, settings_.stream_key.c_str(),
                        "dropped", G_TYPE_UINT64, static_cast<guint64>(dropped), "total-dropped",
                        G_TYPE_UINT64, static_cast<guint64>(total), nullptr));
}

// GAP events from the last output up to the running time now, on the current
// timeline (its segments map output pts to running time from the edge on).
void SubscriberDriver::push_gaps() {
  const GstClockTime rt_now = host_.running_time_now();
  if (rt_now <= max_rt_ || rt_now < timeline_.base()) return;
  const GstClockTime edge_out = timeline_.out(timeline_.edge());
  const GstClockTime rt_from = std::max(max_rt_, timeline_.base());
  const GstClockTime from = std::max(max_out_, rt_from - timeline_.base() + edge_out);
  const GstClockTime to = rt_now - timeline_.base() + edge_out;
  if (to <= from) return;
  for (auto& [track, out] : tracks_) out->push_gap(from, to - from);
  GST_LOG_OBJECT(host_.log_object(),
                 "waiting for a publisher: GAP %" GST_TIME_FORMAT " +%" GST_TIME_FORMAT,
                 GST_TIME_ARGS(from), GST_TIME_ARGS(to - from));
  max_out_ = to;
  max_rt_ = rt_now;
}

void SubscriberDriver::push_eos_all() {
  for (auto& [track, out] : tracks_) out->push_eos();
}

// Finds the publisher; null when interrupted, or failed (error posted, failed_ set).
// `slice` (persist, waiting for the next publisher): give up after about that
// long with `*timed_out` set, which is no error.
StreamHandle SubscriberDriver::acquire_stream(std::chrono::milliseconds slice, bool* timed_out) {
  if (initial_stream_) return std::exchange(initial_stream_, nullptr);
  if (resume_stream_) return std::exchange(resume_stream_, nullptr);
  Wake wake(*this);
  const auto stop = wake.token();
  // After the first publisher, persist waits for the next one without limit.
  const bool forever = restart_ || settings_.wait_ms < 0;
  const bool sliced = slice.count() > 0;
  const auto timeout = sliced ? slice : std::chrono::milliseconds(forever ? -1 : settings_.wait_ms);
  while (!stop.stop_requested()) {
    try {
      StreamHandle s = settings_.wait_ms == 0 && !restart_
                           ? engine_->get_stream(key_)
                           : engine_->wait_for_stream(key_, timeout, stop);
      if (s && s->instance() != last_instance_ && !s->closed()) return s;
      // The old publish is still registered while it winds down: look again shortly.
      std::unique_lock lock(lock_);
      cond_.wait_for(lock, stop, std::chrono::milliseconds(20), [] { return false; });
      if (sliced) {
        *timed_out = true;
        return nullptr;
      }
    } catch (const Error& e) {
      if (e.code() == Errc::Cancelled || stop.stop_requested()) return nullptr;
      if (sliced && e.code() == Errc::Timeout) {
        *timed_out = true;
        return nullptr;
      }
      failed_ = true;
      if (e.code() == Errc::Timeout || e.code() == Errc::StreamNotFound) {
        host_.post_error(GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND,
                         "stream " + settings_.stream_key + " is not being published (waited " +
                             std::to_string(settings_.wait_ms) + " ms)",
                         e.what());
      } else {
        host_.post_error(GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_READ,
                         "cannot play stream " + settings_.stream_key, e.what());
      }
      return nullptr;
    }
  }
  return nullptr;
}

// Subscribes and reads what the cache offers right now (configs, cached GOP, the
// first live frame), so the live edge is known before anything is pushed.
// FALSE when the publish ended before we could join it.
bool SubscriberDriver::subscribe(const StreamHandle& stream) {
  SubscribeOptions options;
  options.start = settings_.start == StartMode::NextKeyframe && !resuming_ ? StartAt::NextKeyframe
                                                                           : StartAt::Keyframe;
  options.resilient = true;
  if (settings_.start == StartMode::Keyframe && !resuming_)
    options.preroll = std::chrono::milliseconds(settings_.preroll_ms);
  {
    std::lock_guard lock(lock_);
    seen_pauses_ = pauses_;
  }
  // A resume or a max-lag resync joins the same publish again: not a new publisher.
  const bool new_publish = stream->instance() != last_instance_;
  last_instance_ = stream->instance();
  try {
    sub_.emplace(stream->subscribe(options));
  } catch (const Error& e) {
    if (e.code() != Errc::StreamClosed) throw;
    GST_INFO_OBJECT(host_.log_object(),
                    "publish #%" G_GUINT64_FORMAT " of %s ended before we joined it",
                    stream->instance(), settings_.stream_key.c_str());
    return false;
  }
  if (new_publish) stats_.publishers.fetch_add(1, std::memory_order_relaxed);
  set_current_stream(stream);
  note_upstream_latency();
  if (publisher_lost_) {
    publisher_lost_ = false;
    GST_INFO_OBJECT(host_.log_object(), "publisher of %s is back (publish #%" G_GUINT64_FORMAT ")",
                    settings_.stream_key.c_str(), stream->instance());
    host_.post_element_message(gst_structure_new(
        "arcly-publisher-regained", "stream", G_TYPE_STRING, settings_.stream_key.c_str(),
        "publishers", G_TYPE_UINT64, static_cast<guint64>(stats_.publishers.load()), nullptr));
  }
  timeline_.reset();
  backlog_.clear();
  configured_.clear();
  ignored_.clear();  // warned once per publish
  track_set_checked_ = false;
  for (;;) {
    Received r = sub_->try_recv();
    if (r.status != RecvStatus::Frame) break;
    const bool live = !r.frame->is_config() && !sub_->from_cache(r.frame);
    backlog_.push_back(std::move(r.frame));
    if (live) break;
  }
  GST_INFO_OBJECT(host_.log_object(),
                  "subscribed to %s (publish #%" G_GUINT64_FORMAT "): %zu frames cached",
                  settings_.stream_key.c_str(), stream->instance(), backlog_.size());
  return true;
}

GstFlowReturn SubscriberDriver::handle(const FrameRef& frame, bool discont) {
  if (frame->is_config()) {
    on_config(frame);
    return GST_FLOW_OK;
  }
  return on_media(frame, discont);
}

SubscriberDriver::Step SubscriberDriver::finish_flow(GstFlowReturn ret) {
  if (ret == GST_FLOW_OK) return Step::Continue;
  GST_INFO_OBJECT(host_.log_object(), "pausing: %s", gst_flow_get_name(ret));
  if (ret == GST_FLOW_FLUSHING) return Step::Pause;
  if (ret == GST_FLOW_EOS) {
    push_eos_all();
    return Step::Pause;
  }
  if (ret == GST_FLOW_NOT_LINKED || ret < GST_FLOW_EOS) {
    failed_ = true;
    host_.post_error(GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED, "Internal data stream error.",
                     std::string("streaming stopped, reason ") + gst_flow_get_name(ret));
    push_eos_all();
  }
  return Step::Pause;
}

// The publisher ended: wait for the next one (persist) or EOS.
SubscriberDriver::Step SubscriberDriver::on_publisher_ended() {
  sub_.reset();
  backlog_.clear();
  set_current_stream(nullptr);
  if (settings_.persist) {
    GST_INFO_OBJECT(host_.log_object(), "publisher of %s ended; waiting for the next one",
                    settings_.stream_key.c_str());
    restart_ = true;
    if (!publisher_lost_) {
      publisher_lost_ = true;
      host_.post_element_message(gst_structure_new(
          "arcly-publisher-lost", "stream", G_TYPE_STRING, settings_.stream_key.c_str(),
          "running-time", G_TYPE_UINT64, static_cast<guint64>(host_.running_time_now()), nullptr));
    }
    return Step::Continue;
  }
  GST_INFO_OBJECT(host_.log_object(), "publisher of %s ended: EOS", settings_.stream_key.c_str());
  if (tracks_.empty()) {
    host_.post_error(GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
                     "stream " + settings_.stream_key + " ended before it had any track",
                     "the publisher sent no caps on any pad");
  }
  push_eos_all();
  return Step::Pause;
}

// Leaves the current publisher; the next subscribe joins `key` at its live
// edge on a timeline that continues the running time (as a resume does).
void SubscriberDriver::start_switch(std::string key) {
  SubscriberSettings next = settings_;
  next.stream_key = key;
  StreamKey parsed = parse_key(next);
  GST_INFO_OBJECT(host_.log_object(), "switching from %s to %s", settings_.stream_key.c_str(),
                  key.c_str());
  if (switched_from_.empty()) switched_from_ = settings_.stream_key;
  settings_.stream_key = std::move(key);
  key_ = std::move(parsed);
  publisher_lost_ = false;  // the lost publisher was the old key's
  set_current_stream(nullptr);
  sub_.reset();
  backlog_.clear();
  initial_stream_.reset();
  resume_stream_.reset();
  last_instance_ = 0;
  restart_ = restart_ || timeline_.started();
  resuming_ = true;  // configs + cached keyframe + decode-only catch-up
  timeline_.reset();
}

SubscriberDriver::Step SubscriberDriver::step() {
  try {
    return step_unguarded();
  } catch (const std::exception& e) {
    failed_ = true;
    host_.post_error(GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
                     "playing stream " + settings_.stream_key + " failed", e.what());
    push_eos_all();
    return Step::Pause;
  }
}

SubscriberDriver::Step SubscriberDriver::step_unguarded() {
  if (stop_.stop_requested() || failed_) return Step::Pause;

  // EOS sent to the element (as basesrc does): pushed on every pad from here,
  // the streaming thread, so nothing follows it.
  if (eos_requested()) {
    GST_INFO_OBJECT(host_.log_object(), "EOS requested: pushing EOS on %zu pads", tracks_.size());
    if (tracks_.empty())
      GST_WARNING_OBJECT(host_.log_object(),
                         "EOS requested before any pad existed: nothing to push it on");
    push_eos_all();
    return Step::Pause;
  }

  std::optional<std::string> next_key;
  {
    std::lock_guard lock(lock_);
    next_key = std::exchange(switch_to_, std::nullopt);
  }
  if (next_key && *next_key != settings_.stream_key) {
    start_switch(std::move(*next_key));
    return Step::Continue;
  }

  if (sub_) {
    bool playing = false;
    std::uint64_t pauses = 0;
    {
      std::lock_guard lock(lock_);
      playing = playing_;
      pauses = pauses_;
    }
    if (!playing || pauses != seen_pauses_) {
      // A live source pushes nothing in PAUSED. Let go of the subscription (no
      // backlog builds up) and join the same publisher again on PLAYING, at the
      // live edge, as a late joiner does: DISCONT, keyframe, clipped catch-up.
      GST_DEBUG_OBJECT(host_.log_object(), "paused: leaving the subscription until PLAYING");
      resume_stream_ = sub_->stream();
      sub_.reset();
      backlog_.clear();
      restart_ = restart_ || timeline_.started();
      resuming_ = timeline_.started();
      timeline_.reset();
      return Step::Continue;
    }
  }

  if (!sub_) {
    if (!wait_playing()) return after_interrupt();
    // persist, between publishers: wait in slices and keep downstream going
    // with GAP events (muxers, mixers, sinks need not stall).
    const bool gaps = restart_ && timeline_.started() && !tracks_.empty();
    bool timed_out = false;
    StreamHandle stream =
        acquire_stream(gaps ? kGapInterval : std::chrono::milliseconds(0), &timed_out);
    if (!stream && timed_out) {
      push_gaps();
      return Step::Continue;
    }
    if (!stream) return after_interrupt();
    if (!subscribe(stream)) return on_publisher_ended();
    return Step::Continue;
  }

  if (!backlog_.empty()) {
    FrameRef f = std::move(backlog_.front());
    backlog_.pop_front();
    return finish_flow(handle(f, false));
  }

  Wake wake(*this);
  Received r = sub_->recv(std::chrono::steady_clock::time_point::max(), wake.token());
  switch (r.status) {
    case RecvStatus::Frame:
    case RecvStatus::Lagged:
      return on_received(r);
    case RecvStatus::Closed:
      return on_publisher_ended();
    case RecvStatus::Empty:
    case RecvStatus::Timeout:
      return Step::Continue;
    case RecvStatus::Cancelled:
      return after_interrupt();
  }
  return Step::Continue;
}

// A Frame or Lagged result of the subscription, on the streaming thread.
SubscriberDriver::Step SubscriberDriver::on_received(const Received& r) {
  if (r.status == RecvStatus::Lagged) {  // strict mode only; resilient reports via discont
    post_lagged(r.skipped);
    mark_all_discont();
    return Step::Continue;
  }
  if (!r.frame->is_config() && exceeds_max_lag(*r.frame)) return Step::Continue;
  if (r.discont) {
    mark_all_discont();  // every track skipped
    if (r.skipped > 0) post_lagged(r.skipped);
  }
  return finish_flow(handle(r.frame, r.discont));
}

// Playing, nothing pending from the application (pause, EOS, switch).
bool SubscriberDriver::steady_locked() const {
  return playing_ && pauses_ == seen_pauses_ && !eos_requested_ && !switch_to_;
}

bool SubscriberDriver::dispatchable() {
  if (!sub_ || !backlog_.empty() || failed_ || stop_.stop_requested()) return false;
  std::lock_guard lock(lock_);
  return steady_locked();
}

void SubscriberDriver::watch(const std::shared_ptr<Waker>& waker) {
  if (sub_) sub_->watch(waker);
}

void SubscriberDriver::unwatch() {
  if (sub_) sub_->unwatch();
}

bool SubscriberDriver::ready() const {
  return !sub_ || sub_->ready();
}

SubscriberDriver::Poll SubscriberDriver::poll(std::size_t budget,
                                              std::chrono::steady_clock::time_point deadline) {
  try {
    return poll_unguarded(budget, deadline);
  } catch (const std::exception& e) {
    failed_ = true;
    host_.post_error(GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED,
                     "playing stream " + settings_.stream_key + " failed", e.what());
    push_eos_all();
    return Poll::Pause;
  }
}

SubscriberDriver::Poll SubscriberDriver::poll_unguarded(
    std::size_t budget, std::chrono::steady_clock::time_point deadline) {
  if (stop_.stop_requested() || failed_) return Poll::Pause;
  // Read before the run control: a change after this is seen below.
  const std::uint64_t control = control_changes_.load(std::memory_order_acquire);
  {
    std::lock_guard lock(lock_);
    if (!steady_locked()) return Poll::Release;
  }
  if (!sub_ || !backlog_.empty()) return Poll::Release;
  for (std::size_t i = 0; i < budget; ++i) {
    Received r = sub_->try_recv();
    switch (r.status) {
      case RecvStatus::Frame:
      case RecvStatus::Lagged:
        if (on_received(r) == Step::Pause) return Poll::Pause;
        if (!sub_) return Poll::Release;  // a max-lag resync joins again: step()'s work
        // A push that blocked (a prerolling sink in PAUSED) may come back to a
        // changed run control: step() looks at it before the next frame.
        if (control_changes_.load(std::memory_order_acquire) != control) return Poll::Release;
        if (std::chrono::steady_clock::now() > deadline) return Poll::More;
        break;
      case RecvStatus::Empty:
        return Poll::Idle;
      default:  // Closed: the publisher ended; step() follows up (persist, EOS)
        return Poll::Release;
    }
  }
  return Poll::More;
}

}  // namespace arcly::gst
