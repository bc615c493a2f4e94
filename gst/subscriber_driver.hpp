// SubscriberDriver — one subscriber of a stream key, driven by one streaming
// thread: the state machine behind arclysrc (and later the RTSP/SRT egress),
// the way gstsrtobject.c sits behind srtsrc and srtsink.
//
// It finds the publisher (wait=0 at once, a bounded or endless wait, or the
// next publisher after one ended with `persist`), subscribes with the start
// mode, reads what the cache offers before pushing anything (so the live edge is
// known), starts the Timeline, opens one TrackOutput per track (through its
// Host, which makes and adds the pads), and follows lag, caps changes and
// publisher restarts. Live-source semantics: nothing is pushed unless PLAYING; a
// pause lets go of the subscription and PLAYING joins the same publisher again
// at the live edge (keyframe, clipped catch-up, DISCONT) on a running time that
// continues. EOS requested by the application is pushed on every pad from the
// streaming thread.
//
// The track set: a publisher's tracks are announced by their configs, and not
// all at once (an SRT or RTSP camera's audio caps often come after the first
// video keyframe). The set is final when the publisher declares it
// (Stream::tracks_complete(): arclysink once every pad has caps, the ingest
// workers once their demuxers signalled no-more-pads and every track's caps
// are out) and every declared track's config has been handled here — or, for a
// publisher that never declares, one second of stream time after the newest
// frame joined at. Only then is no-more-pads emitted, so every track the
// publisher announces within that window gets its pad, as a demuxer's do.
//
// Tracks across publishers (persist): a track keeps its pad; a codec change
// starts a new stream on it (see TrackOutput); a track the new publisher does
// not have gets EOS once the new track set is final (as above) and a new stream
// if it comes back. The pad set is announced once (no-more-pads): a track first
// seen after that is ignored with a warning, never a pad added after
// no-more-pads. While waiting for the next publisher, GAP events every 100 ms
// carry the running time on.
//
// Switching (fast channel change): switch_to() another key while playing makes
// the streaming thread leave the current publisher and join the new key as a
// late joiner does — configs, the cached keyframe at once, the cached frames
// up to the live edge decode-only — on the same pads (new caps or a new stream
// where the codec differs), with the running time continuing: no EOS, no flush.
// Once the new stream's first frame is out, the element message
// `arcly-switched` (`from`, `to` strings, `running-time` guint64) is posted.
// A key nobody publishes yet is waited for (GAP events meanwhile).
//
// Bounded lag: with max_lag_ms, a live frame further behind the publisher's
// newest (Stream::newest_pts) is dropped and the same publisher joined again
// as after a pause (configs, newest cached keyframe, clipped catch-up,
// DISCONT, running time continuing); element message `arcly-max-lag`.
// SubscriberStats::lag_ns holds the current lag.
//
// Clocks: publisher timestamps are engine time (engine_time.hpp), the
// monotonic clock; the subscriber plays them on its pipeline's clock. When that
// clock drifts from engine time (an audio device's, one slaved to the network),
// the mapping follows it: every kDriftCheck of stream time the driver reads the
// clock's offset from engine time (a ClockBridge) and, when it moved since the
// timeline started, moves the running time by as much: a new SEGMENT on every
// pad, shifted as gst_pad_set_offset() would (steps of about a millisecond;
// none at all on the default system clock). So a 50 ppm clock never eats the latency, however
// long the stream runs. SubscriberStats::clock_drift_ns holds the shift.
//
// Towards the publisher: request_key_unit() asks the followed publisher for a
// keyframe (a counter on the Stream it polls); the publisher's upstream latency
// (Stream::upstream_latency) is mirrored in SubscriberStats and the host told
// when it changes. With persist, `arcly-publisher-lost` is posted when the
// publisher ends and `arcly-publisher-regained` when the next one is joined.
//
// Threads: step(), the dispatched-mode calls (dispatchable(), poll(), ready(),
// watch(), unwatch()) and remove_tracks() on the streaming thread — the
// element's task, or the dispatcher thread it handed the driver to (never both
// at once; the hand-over is ordered by a lock) — or with it joined;
// set_playing(), request_eos(), switch_to(), request_key_unit() and stop() from
// any thread. Dispatched mode: poll() is step()'s steady state without the
// blocking receive (try_recv until Empty); everything that may wait (joining,
// PAUSED, between publishers, a switch, EOS) returns Release and is step()'s. Errors are posted
// through the Host with a human text and a debug detail apart.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>

#include "arcly/engine.hpp"
#include "arcly/frame_ref.hpp"
#include "arcly/stream_key.hpp"
#include "arcly/subscription.hpp"
#include "engine_registry.hpp"
#include "engine_time.hpp"
#include "timeline.hpp"
#include "track_output.hpp"

typedef struct _GstFlowCombiner GstFlowCombiner;

namespace arcly::gst {

enum class StartMode { LiveEdge = 0, Keyframe = 1, NextKeyframe = 2 };

// What a subscriber is told to do; snapshotted when a run starts.
struct SubscriberSettings {
  std::string stream_key;
  std::string engine_name = kDefaultEngineName;
  int wait_ms = -1;  // 0: must be published now; -1: wait forever
  StartMode start = StartMode::LiveEdge;
  bool persist = false;
  unsigned latency_ms = 30;
  unsigned preroll_ms = 0;  // with StartMode::Keyframe
  unsigned max_lag_ms = 0;  // 0: off; else resync at the newest keyframe beyond this lag
  // Once streaming live, let a Dispatcher serve it (dispatcher.hpp).
  bool dispatch = true;
};

// Counters any thread may read while the driver runs.
struct SubscriberStats {
  std::atomic<std::uint64_t> frames{0};
  std::atomic<std::uint64_t> bytes{0};
  std::atomic<std::uint64_t> keyframes{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> lag_events{0};
  std::atomic<std::uint64_t> publishers{0};   // publish instances followed
  std::atomic<std::uint64_t> lag_resyncs{0};  // max-lag resyncs
  // Publisher ts of the newest frame published minus that of the frame just
  // pushed (ns): how far behind live this subscriber is.
  std::atomic<std::uint64_t> lag_ns{0};
  // The followed publisher's upstream latency (ns), -1 before one is known.
  std::atomic<std::int64_t> upstream_latency_ns{-1};
  std::atomic<std::uint64_t> key_unit_requests{0};  // by the host, from downstream
  // How far the running time was moved to follow the pipeline clock's drift
  // from engine time (ns, current timeline), and how many times.
  std::atomic<std::int64_t> clock_drift_ns{0};
  std::atomic<std::uint64_t> clock_corrections{0};
  void reset();
};

// The element (or egress) around a driver. Called on the streaming thread.
class SubscriberHost {
 public:
  virtual ~SubscriberHost() = default;
  // A new, unparented source pad named `name` for `info` (from the host's
  // template, its query/event functions set). The driver announces the track
  // on it, then calls add_pad().
  virtual GstPad* new_pad(const TrackInfo& info, const std::string& name) = 0;
  // The STREAM_START id of a pad (gst_pad_create_stream_id on the element).
  virtual std::string stream_id(GstPad* pad, const std::string& track) = 0;
  virtual void add_pad(GstPad* pad) = 0;
  // Called with the streaming thread stopped.
  virtual void remove_pad(GstPad* pad) = 0;
  virtual void no_more_pads() = 0;
  virtual void post_element_message(GstStructure* structure) = 0;  // transfer full
  virtual void post_error(GQuark domain, gint code, const std::string& text,
                          const std::string& debug) = 0;
  virtual void post_warning(GQuark domain, gint code, const std::string& text,
                            const std::string& debug) = 0;
  virtual GstClockTime running_time_now() = 0;
  // The pipeline's clock (a reference), or null before there is one.
  virtual GstClock* clock() { return nullptr; }
  // The publisher's upstream latency (SubscriberStats::upstream_latency_ns)
  // changed: the host re-announces its latency (a LATENCY message).
  virtual void latency_changed() {}
  // For log lines.
  virtual GstObject* log_object() = 0;
};

class SubscriberDriver {
 public:
  enum class Step { Continue, Pause };

  // Resolves the key and the engine; with wait=0 looks the stream up now.
  // Throws arcly::Error (InvalidKey, StreamNotFound, ...) with the message to
  // show the user.
  SubscriberDriver(const SubscriberSettings& settings, SubscriberHost& host,
                   SubscriberStats& stats);
  ~SubscriberDriver();
  SubscriberDriver(const SubscriberDriver&) = delete;
  SubscriberDriver& operator=(const SubscriberDriver&) = delete;

  // Any thread.
  void set_playing(bool playing);
  // FALSE when the run already ended (stopped).
  bool request_eos();
  // Plays `key` (already validated) from now on; see above. The last of
  // several quick calls wins.
  void switch_to(const std::string& key);
  // Asks the current publisher for a keyframe (Stream::request_key_unit);
  // FALSE when no publisher is followed right now.
  bool request_key_unit();
  // Ends the run: every blocking call returns, step() returns Pause.
  void stop();
  bool stop_requested() const { return stop_.stop_requested(); }

  // Streaming thread: one bounded piece of work.
  Step step();

  // Dispatched mode (dispatcher.hpp). The streaming thread may hand the driver
  // to a dispatcher thread once dispatchable(); whichever thread holds it is
  // "the streaming thread" for every method here, one at a time.
  enum class Poll {
    Idle,     // nothing to read now: poll again when the subscription is ready
    More,     // stopped at the budget: poll again soon
    Release,  // needs step() again (pause, EOS, switch, publisher ended, resync)
    Pause,    // as step()'s Pause: the run is over (flow error, EOS, stop)
  };
  // Subscribed, nothing read ahead, playing, nothing pending: poll() would work.
  bool dispatchable();
  // Never blocks (except where a push blocks downstream): pushes up to
  // `budget` frames that are available now; returns More once a frame is out
  // past `deadline` (a slow push), Release at once if the application changed
  // the run control meanwhile (a push that blocked in a prerolling sink).
  Poll poll(std::size_t budget, std::chrono::steady_clock::time_point deadline);
  // Cheap: whether poll() may find something (a frame, the end).
  bool ready() const;
  // The subscription's readiness (Subscription::watch/unwatch).
  void watch(const std::shared_ptr<Waker>& waker);
  void unwatch();
  // With the streaming thread stopped: the pads go away (through the host).
  void remove_tracks();

 private:
  Step step_unguarded();
  Poll poll_unguarded(std::size_t budget, std::chrono::steady_clock::time_point deadline);
  Step on_received(const Received& r);
  bool steady_locked() const;
  void post_switched(GstClockTime pts);
  void start_switch(std::string key);
  // A stop token for one blocking call: fires on stop, EOS or a switch.
  class Wake;
  bool wait_playing();
  bool eos_requested();
  Step after_interrupt();
  StreamHandle acquire_stream(std::chrono::milliseconds slice, bool* timed_out);
  void push_gaps();
  static constexpr std::chrono::milliseconds kGapInterval{100};
  bool subscribe(const StreamHandle& stream);
  Step on_publisher_ended();
  void start_timeline(const MediaFrame& first, bool from_cache);
  GstFlowReturn handle(const FrameRef& frame, bool discont);
  void on_config(const FrameRef& frame);
  GstFlowReturn on_media(const FrameRef& frame, bool discont);
  TrackOutput* open_track(const TrackInfo& info, GstCaps* caps);
  Step finish_flow(GstFlowReturn ret);
  void post_lagged(std::uint64_t dropped);
  void push_eos_all();
  void mark_all_discont();
  void end_vanished_tracks();
  bool track_set_final(std::int64_t pts) const;
  bool exceeds_max_lag(const MediaFrame& frame);
  void resync_at_newest_keyframe(std::uint64_t lag_ns);
  void note_upstream_latency();
  void set_current_stream(StreamHandle stream);
  std::int64_t clock_offset();
  void follow_clock_drift(std::int64_t pts);
  static constexpr std::int64_t kDriftCheck = 250 * GST_MSECOND;

  SubscriberSettings settings_;  // stream_key changes on a switch (streaming thread)
  SubscriberHost& host_;
  SubscriberStats& stats_;
  std::shared_ptr<Engine> engine_;
  StreamKey key_;
  const guint group_id_;

  // Run control, shared with the application's threads.
  std::mutex lock_;
  std::condition_variable_any cond_;
  bool playing_ = false;                  // guarded by lock_
  std::uint64_t pauses_ = 0;              // guarded by lock_: PLAYING->PAUSED changes
  bool eos_requested_ = false;            // guarded by lock_
  std::optional<std::string> switch_to_;  // guarded by lock_: a key to switch to
  std::stop_source* wake_ = nullptr;      // guarded by lock_: the blocking call's, if any
  StreamHandle current_stream_;           // guarded by lock_: the publisher followed
  std::stop_source stop_;                 // the run ends
  std::stop_source interrupt_;            // wakes blocking calls: stop, or an EOS to push
  // Bumped (release) by every run-control call; poll() stops when it changes.
  std::atomic<std::uint64_t> control_changes_{0};

  // Streaming thread only.
  StreamHandle initial_stream_;  // wait=0: found at construction
  std::optional<Subscription> sub_;
  std::uint64_t last_instance_ = 0;
  std::deque<FrameRef> backlog_;  // read ahead at (re)start
  bool restart_ = false;          // the next timeline continues the running time
  std::uint64_t seen_pauses_ = 0;
  StreamHandle resume_stream_;  // after a pause: the publisher to join again
  bool resuming_ = false;       // the next timeline starts at the live edge
  bool live_edge_timeline_ = false;
  bool failed_ = false;          // an error was posted: only pause from now on
  std::string switched_from_;    // non-empty: post arcly-switched at the next output
  bool publisher_lost_ = false;  // persist: arcly-publisher-lost posted, the next one not yet
  Timeline timeline_;
  std::map<std::uint32_t, std::unique_ptr<TrackOutput>> tracks_;
  std::set<std::uint32_t> configured_;   // tracks with a config in the current publish
  std::set<std::uint32_t> ignored_;      // this publish: tracks without a usable pad
  bool track_set_checked_ = false;       // vanished tracks of this publish got EOS
  std::int64_t track_set_deadline_ = 0;  // publisher ts: this publish's track set is final
  std::map<MediaKind, guint> pad_counts_;
  GstFlowCombiner* combiner_;
  bool no_more_pads_ = false;
  GstClockTime max_out_ = 0;           // highest output pts on the current timeline
  GstClockTime max_rt_ = 0;            // highest running time so far
  ClockBridge clock_bridge_;           // the pipeline clock against engine time
  std::int64_t timeline_offset_ = 0;   // clock_bridge_'s offset when the timeline started
  std::int64_t next_drift_check_ = 0;  // publisher ts
};

}  // namespace arcly::gst
