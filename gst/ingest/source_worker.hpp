// SourceWorker — a GStreamer source pipeline run as an arcly InboundProtocol.
//
// A worker owns one pipeline built from a source (an element such as rtspsrc or
// srtsrc, or a gst-launch description) whose unlinked source pads are fed to
// parsebin; every parsed elementary stream becomes a track, and every buffer a
// frame published zero-copy through a PublishSession. Around that:
//
// * Watchdog: no frame for `timeout` is a failure, like an ERROR or EOS.
// * Reconnect: after a failure the pipeline is torn down and rebuilt after an
//   exponential backoff with jitter (initial/max delays), forever by default.
//   State (connecting / live / retrying), attempts, the last error (credentials
//   redacted) are in stats() and in the log (GST_DEBUG=arclyingest:5).
// * Grace: the publish session — so every subscriber and the GOP cache's config —
//   stays attached while the source reconnects, for up to `grace`. The timeline
//   keeps real time: the first frame after the gap carries DISCONT and is
//   stamped where the monotonic clock puts it (the previous attempt's origin +
//   the real time elapsed), so an outage stays a gap of its real length in every
//   recording and subscriber; a source that ran ahead of real time (a file read
//   as fast as it goes) continues right after its last frame instead. Only when
//   grace runs out does the stream end. Meanwhile the key stays claimed by this worker, so no
//   other publisher can take it over.
// * Track set: once the source and every parsebin signalled no-more-pads and
//   each of their tracks has published its config, the session declares its
//   tracks complete (Stream::tracks_complete), so subscribers announce their
//   pads at once instead of waiting for an audio track that follows the video.
// * Shutdown: serve() returns within a few hundred ms of the stop request, with
//   its pipeline set to NULL and no thread of its own left.
//
// Threads: serve() runs the control loop (bus, watchdog, backoff) on the calling
// thread; frames are published from the pipeline's streaming threads. stats()
// may be called from any thread.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "arcly/inbound.hpp"

namespace arcly::ingest {

enum class WorkerState { Idle, Connecting, Listening, Live, Retrying, Stopped };
std::string_view state_name(WorkerState state);

// Why an attempt ended.
enum class FailureKind { None, Error, Auth, EndOfStream, Timeout, Refused };
std::string_view failure_name(FailureKind kind);

struct Failure {
  FailureKind kind = FailureKind::None;
  std::string message;  // already redacted
};

struct WorkerSettings {
  std::string name = "source";   // shown in logs and stats (e.g. the config section)
  std::optional<StreamKey> key;  // the key published (an SRT listener takes it per caller)
  std::chrono::milliseconds timeout{5000};
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30000};
  std::chrono::milliseconds grace{10000};
  unsigned max_attempts = 0;  // 0 = retry forever
};

struct WorkerStats {
  WorkerState state = WorkerState::Idle;
  std::uint64_t attempts = 0;
  std::uint64_t reconnects = 0;  // times it went live again after a failure
  std::uint64_t frames = 0;
  std::uint64_t bytes = 0;
  Failure last_failure;
  std::optional<StreamKey> key;  // the key being published, if any
  bool in_grace = false;         // session kept attached while reconnecting
  std::chrono::milliseconds retry_in{0};
  std::uint64_t rejected = 0;  // publishers refused before any media (SRT callers)
  std::string last_rejection;  // why the last one was refused
};

class SourceWorker : public InboundProtocol {
 public:
  explicit SourceWorker(WorkerSettings settings);
  ~SourceWorker() override;

  void serve(IngestContext ctx, std::stop_token stop) override;
  WorkerStats stats() const;
  const WorkerSettings& settings() const { return settings_; }
  // Ends the current attempt as a failure ("kicked: <why>"), as if the source had
  // dropped: the worker reconnects per its backoff policy and the stream waits in
  // grace. False when no attempt is running. Any thread.
  bool kick(const std::string& why);
  // Waits until `pred(stats())` holds, or `timeout`; for tests and hosts.
  template <class Pred>
  bool wait_for(Pred pred, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(stats_mutex_);
    return stats_cv_.wait_for(lock, timeout, [&] { return pred(stats_); });
  }

 protected:
  // Builds the source (element or bin; floating or full reference). Throws
  // arcly::Error with a message naming what is wrong with the configuration.
  virtual GstElement* make_source() = 0;
  // The elements whose unlinked source pads carry media (default: the source
  // itself; a parsed description exposes its top-level elements).
  virtual std::vector<GstElement*> media_elements(GstElement* source);
  // Called on the control thread for each element message; a Failure ends the attempt.
  virtual std::optional<Failure> on_element_message(GstMessage* message);
  // The key to publish for the current attempt (default: settings().key).
  virtual std::optional<StreamKey> current_key();
  // Maps an ERROR message to a failure (default: RESOURCE/NOT_AUTHORIZED = Auth).
  virtual Failure classify_error(GstMessage* message);
  // Whether the watchdog should expect media now (a listener without a caller
  // does not). When it turns true the watchdog restarts its count.
  virtual bool expects_media() { return true; }
  // Restarts the watchdog's count (e.g. a caller was just accepted).
  void touch_watchdog();
  // The publisher left but the pipeline stays (an SRT listener waiting for its
  // next caller): the stream goes into grace; the next frames carry DISCONT.
  void publisher_left();
  // The registry of the running serve() (null outside of it).
  std::shared_ptr<PublishRegistry> registry() const;
  // True while this worker publishes `key` (in grace or live).
  bool holds_key(const StreamKey& key) const;
  void set_state(WorkerState state);
  void note_rejected(std::string why);

 private:
  struct Track;
  struct Attempt;

  Failure run_attempt(const IngestContext& ctx, std::stop_token stop);
  void attach_parser(GstPad* pad, GstBin* bin);
  void attach_sink(GstPad* pad, GstBin* bin);
  void on_media(Track& track, GstBuffer* buffer);
  static std::int64_t pts_of(const Track& track, GstBuffer* buffer);
  std::int64_t attempt_origin_locked(std::int64_t first);
  void fail_attempt(Failure f);
  void check_grace(std::chrono::steady_clock::time_point now);
  void end_session();
  void maybe_declare_tracks_locked();
  static void on_no_more_pads(GstElement* element, gpointer self);

  static void on_pad_added(GstElement* element, GstPad* pad, gpointer self);
  static void on_parsed_pad_added(GstElement* element, GstPad* pad, gpointer self);
  static GstPadProbeReturn on_probe(GstPad* pad, GstPadProbeInfo* info, gpointer track);

  const WorkerSettings settings_;

  mutable std::mutex stats_mutex_;
  mutable std::condition_variable stats_cv_;
  WorkerStats stats_;

  // Shared with the streaming threads.
  mutable std::mutex media_mutex_;
  const IngestContext* ctx_ = nullptr;
  std::optional<PublishSession> session_;
  std::optional<std::chrono::steady_clock::time_point> grace_until_;
  std::map<std::string, std::unique_ptr<Track>>
      tracks_;                           // "video#0" -> track, kept across attempts
  std::map<std::string, int> ordinals_;  // per attempt: next ordinal per kind
  int pads_pending_ = 0;                 // per attempt: elements yet to signal no-more-pads
  bool attempt_active_ = false;
  bool attempt_live_ = false;
  bool need_offset_ = false;
  std::int64_t ts_offset_ = 0;
  std::int64_t ts_end_ = 0;  // end of the newest published frame (ns)
  // The session's timeline is the running time of the attempt that opened it;
  // its zero in monotonic time, and the current attempt's (see on_media).
  std::int64_t session_origin_ns_ = 0;
  std::optional<std::int64_t> attempt_origin_;
  GstElement* attempt_pipeline_ = nullptr;  // the current attempt's, while it is active
  std::optional<Failure> attempt_failure_;
  std::atomic<std::int64_t> last_frame_ns_{0};
};

// Any source GStreamer can receive, as a gst-launch description whose unlinked
// source pads carry an encoded stream: `rtmp2src location=…`, `filesrc
// location=x.mp4 ! qtdemux`, `souphttpsrc location=… ! tsdemux`, …
class PipelineWorker final : public SourceWorker {
 public:
  PipelineWorker(WorkerSettings settings, std::string description);
  std::string_view name() const override { return "pipeline"; }

 protected:
  GstElement* make_source() override;
  std::vector<GstElement*> media_elements(GstElement* source) override;

 private:
  std::string description_;
};

}  // namespace arcly::ingest
