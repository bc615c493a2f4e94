// Recording to storage: a recorder per stream, and a RecorderSet per [record]
// section that follows the streams matching its key pattern.
//
// A Recorder is a GStreamer pipeline
//   arclysrc start=keyframe preroll=… ! queue ! parser ! splitmuxsink (fMP4 | MKV | TS)
// so segments start on keyframes and the first one reaches back `preroll` before
// the moment the recorder joined (pre-event footage from the GOP cache). MP4 is
// fragmented (fragments of at most 1 s): a file stays playable up to its last
// fragment even if the process is killed. Files are named
//   {dir}/{app}/{stream}/{UTC start}-{n}.{ext}
// through the engine's StorageBackend (FileStorage), so a key can never escape
// `dir`. A publisher that blips within its worker's grace keeps the same
// recording (DISCONT, same file); after grace the stream ends, the file is
// finalized, and a new recorder starts when the stream returns.
//
// Element messages of splitmuxsink become events: segment-opened / -closed with
// the location and timestamps, logged and reported to the host's observer.
// Errors (unwritable dir, full disk) are kept in the recorder's state, logged,
// and retried with backoff (1 s doubling to 30 s; back to 1 s after a recorder ran
// healthily for a minute); nothing else stops. A track the format cannot hold
// (G.711 or MJPEG in MP4, ...) is an error naming the codec and what would hold
// it; it is not retried until the stream is published anew. A recorder that falls
// behind its stream (slow or stalled disk) loses footage: arclysrc resumes at the
// newest keyframe and says how many frames it dropped; each time is counted,
// logged and reported (recorder-lagged), and shown in the status.
//
// Segment files are named after the capture time of their first frame (see
// segment_file.hpp) and kept by the storage's retention (retention.hpp); what a
// failed attempt wrote is recovered into a playable file where the format allows.
//
// Event clips (mode=events, POST /v1/events): trigger() starts a recorder with
// `preroll = pre`, so the clip begins at the cached keyframe at or before
// now - pre (as far back as the app's cache window holds), and ends it at the
// first frame whose publisher timestamp passes trigger + post (EOS into every
// branch: the file is finalized at once). A second trigger on the same key while
// the clip is open moves its end instead of writing an overlapping file.
//
// Threads: RecorderSet runs its own thread; events are delivered on it.
// trigger() and events() may be called from any thread.
#pragma once

#include <gst/gst.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "arcly/engine.hpp"
#include "arcly/record.hpp"
#include "config.hpp"
#include "retention.hpp"

namespace arcly::host {

struct RecorderEvent {
  std::string type;  // "segment-opened", "segment-closed", "recorder-error", "recorder-started",
                     // "recorder-finished"
  std::string recorder;  // [record NAME]
  std::string key;
  std::string location;  // path of the segment (when relevant)
  std::string message;   // error text
  std::int64_t running_time_ns = -1;
  std::int64_t first_publisher_ts = -1;    // publisher timestamp of the first recorded frame
  std::int64_t trigger_publisher_ts = -1;  // newest publisher timestamp when the recorder joined
  std::int64_t capture_start_ns = -1;  // segment-opened: wall-clock capture time of its first frame
  std::uint64_t dropped = 0;           // recorder-lagged: frames lost this time
};

struct RecorderStatus {
  std::string recorder;
  std::string key;
  std::string state;  // "recording", "error", "finished"
  std::string error;
  std::uint64_t segments = 0;
  std::string current;
  std::int64_t capture_start_ns = -1;  // of the current segment
  std::uint64_t lag_events = 0;        // times the recorder fell behind and resynced
  std::uint64_t dropped_frames = 0;    // frames lost by those
  std::int64_t retry_in_ms = -1;       // an error waiting for its retry; -1 = none planned
  std::int64_t preroll_ms = -1;        // pre-roll actually recorded (-1 = not known yet)
};

// One event and the clip that holds it.
struct EventClip {
  std::string id;
  std::string key;
  std::string label;
  std::string recorder;
  std::string clip;      // id of the clip (its first event's id)
  std::string extended;  // when this event extended an open clip: that clip's id
  std::string state;     // recording, finalized, failed
  std::string file;
  std::string error;
  std::int64_t created_unix_ms = 0;
  std::int64_t pre_ms = 0;
  std::int64_t post_ms = 0;
  std::int64_t pre_obtained_ms = -1;
  std::int64_t trigger_ts = -1;
  std::int64_t first_ts = -1;
  std::int64_t end_ts = -1;
};

// The delay before retrying a failed recorder: 1 s, doubling up to 30 s, and back to
// 1 s when the attempt that failed had run healthily for `kHealthyPeriod`.
inline constexpr std::chrono::seconds kHealthyPeriod{60};
std::chrono::milliseconds next_retry_delay(std::chrono::milliseconds previous,
                                           std::chrono::steady_clock::duration ran_for);

class RecorderSet {
 public:
  using Observer = std::function<void(const RecorderEvent&)>;

  RecorderSet(RecordConfig config, std::shared_ptr<Engine> engine, std::string engine_name,
              Observer observer);
  ~RecorderSet();
  RecorderSet(const RecorderSet&) = delete;
  RecorderSet& operator=(const RecorderSet&) = delete;

  // Stops following new streams and finalizes every recording: streams that are
  // ending (shutdown) bring their own EOS; recordings of streams that stay live
  // (`streams_live`, a reload that removed the section) are ended with an EOS of
  // their own. Waits up to `timeout` in all, then stops what is left (its last
  // fragment is still on disk). Sets may be stopped in parallel.
  void stop(std::chrono::milliseconds timeout, bool streams_live = false);
  std::vector<RecorderStatus> status() const;
  // Starts or extends the clip of `key` (mode=events). Throws arcly::Error
  // StreamNotFound when nobody publishes it.
  EventClip trigger(const StreamKey& key, std::chrono::milliseconds pre,
                    std::chrono::milliseconds post, const std::string& label);
  std::vector<EventClip> events() const;
  // Paths of the segments and clips open now.
  std::vector<std::string> open_files() const;
  Storage::Status storage_status() const { return disk_->status(); }
  const RecordConfig& config() const { return config_; }

 private:
  class Recorder;
  struct Failure {
    std::string error;
    std::chrono::steady_clock::time_point retry_at;
    std::uint64_t instance = 0;      // the stream instance it failed on
    bool until_republished = false;  // a refused codec: no retry on the same publish
  };
  void run(std::stop_token stop);
  void poll_clips();
  void reap(const std::string& key, Recorder& r, std::chrono::steady_clock::time_point now);

  RecordConfig config_;
  std::shared_ptr<Engine> engine_;
  std::string engine_name_;
  Observer observer_;
  FileStorage storage_;            // paths: a key never escapes dir
  std::shared_ptr<Storage> disk_;  // index and retention, shared by the sections on dir
  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<Recorder>> recorders_;  // by key
  struct ClipState {
    std::string file, state = "recording", error;
    std::int64_t first_ts = -1, end_ts = -1;
  };
  std::map<std::string, std::unique_ptr<Recorder>> clips_;  // open clips, by key
  std::map<std::string, ClipState> clip_states_;            // by clip id
  std::vector<EventClip> events_;                           // oldest first, bounded
  std::uint64_t next_event_ = 1;
  std::map<std::string, Failure> failed_;  // by key: waiting for a retry
  std::map<std::string, std::chrono::milliseconds> retry_delay_;
  std::jthread thread_;
};

}  // namespace arcly::host
