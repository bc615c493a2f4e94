// ControlTarget — what the HTTP control plane may see and do in a running host.
//
// The control plane (host/http/) knows the host only through this interface:
// the engine (streams, their QoS and GOP caches are read from it directly), the
// ingest workers' and recorders' status as plain values, and four actions —
// kick a publisher, trigger an event recording, list events, list recordings.
// The host implements it; tests may implement it too.
//
// Threads: every method may be called from the HTTP server's thread while the
// host runs (and reloads) on its own; implementations lock what they share.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arcly/engine.hpp"

namespace arcly::host::http {

struct WorkerView {
  std::string section;   // "rtsp cam1"
  std::string protocol;  // "rtsp", "srt", "pipeline"
  std::string name;
  std::string state;  // connecting, listening, live, retrying, stopped
  std::string key;    // the key it publishes now ("" when none)
  std::string peer;   // where the media comes from (credentials redacted), "" if unknown
  std::uint64_t attempts = 0;
  std::uint64_t reconnects = 0;
  std::uint64_t frames = 0;
  std::uint64_t bytes = 0;
  std::string last_failure;  // kind: error, auth, eos, timeout, refused, none
  std::string last_error;    // the reason, already redacted
  std::uint64_t rejected = 0;
  bool in_grace = false;
};

struct RecorderView {
  std::string section;  // "record all"
  std::string name;
  std::string mode;  // "continuous" or "events"
  std::string dir;
  std::string key;    // the stream recorded ("" for a section with no recording now)
  std::string state;  // recording, finished, error, idle
  std::string error;
  std::uint64_t segments = 0;
  std::uint64_t bytes = 0;   // bytes of the segments this recorder wrote
  std::uint64_t errors = 0;  // recording errors since the section started
  std::string current;       // open segment
  std::string last_closed;   // last finalized segment
  std::int64_t last_closed_unix_ms = -1;
};

struct EventRequest {
  StreamKey key{"live", "x"};
  std::chrono::milliseconds pre{0};
  std::chrono::milliseconds post{0};
  std::string label;
};

struct EventView {
  std::string id;
  std::string key;
  std::string label;
  std::string recorder;  // the [record] section that holds the clip
  std::string state;     // recording, finalized, failed
  std::string file;      // the clip (absolute path)
  std::string error;
  std::int64_t created_unix_ms = 0;   // when the event arrived
  std::int64_t pre_ms = 0;            // asked for
  std::int64_t post_ms = 0;           // asked for (grows when a later event extends the clip)
  std::int64_t pre_obtained_ms = -1;  // footage before the trigger really in the clip; -1 unknown
  std::int64_t trigger_ts = -1;       // publisher timestamp (ns) of the live edge at the trigger
  std::int64_t first_ts = -1;         // publisher timestamp (ns) of the clip's first frame
  std::int64_t end_ts = -1;           // publisher timestamp (ns) the clip ends at
  std::string extended;               // id of the event whose clip this one extended, if any
};

struct RecordingView {
  std::string key;
  std::string recorder;
  std::string file;
  std::uint64_t bytes = 0;
  std::int64_t start_unix_ms = 0;  // capture time (from the name the recorder gave it)
};

// One network egress server ([rtsp-server] or [srt-server]) and its readers now.
struct EgressReaderView {
  std::string key;
  std::string address;    // peer address (never a credential)
  std::string transport;  // "tcp", "udp" (RTSP); "srt"
  std::string mode;       // "read" or "publish" (SRT publishers share the port)
  std::uint64_t bytes = 0;
  // A reader's send queue in ms (RTSP/TCP: the kernel's, at the stream's
  // bitrate; SRT: libsrt's send buffer); 0 for RTSP/UDP; -1 not known.
  std::int64_t lag_ms = -1;
};
struct EgressView {
  std::string protocol;  // "rtsp" or "srt"
  int port = 0;
  std::uint64_t readers = 0;        // reading now
  std::uint64_t readers_total = 0;  // ever accepted
  // Refusals by reason: unauthorized, forbidden, not-found, bad-request, limit, busy,
  // streamid, handshake.
  std::vector<std::pair<std::string, std::uint64_t>> refused;
  std::string last_refusal;
  std::uint64_t slow_readers = 0;  // could not keep up: RTSP closed, SRT lost chunks
  std::vector<EgressReaderView> sessions;
};

struct KickResult {
  bool found = false;
  std::string publisher;  // "worker rtsp cam1" or "publisher" (no worker)
};

class ControlTarget {
 public:
  virtual ~ControlTarget() = default;
  virtual std::shared_ptr<Engine> engine() const = 0;
  virtual std::vector<WorkerView> workers() const = 0;
  virtual std::vector<RecorderView> recorders() const = 0;
  // Ends the publisher of `key`; a worker reconnects per its policy.
  virtual KickResult kick(const StreamKey& key) = 0;
  // Starts (or extends) a clip. Throws arcly::Error: StreamNotFound when nobody
  // publishes the key, InvalidArgument (naming the field) for what cannot be done.
  virtual EventView trigger_event(const EventRequest& request) = 0;
  virtual std::vector<EventView> events() const = 0;
  // Finalized recordings under every [record] section's directory.
  virtual std::vector<RecordingView> recordings() const { return {}; }
  // Every recording directory (for the free-space metric).
  virtual std::vector<std::string> recording_dirs() const { return {}; }
  // The egress servers that run (none unless configured).
  virtual std::vector<EgressView> egress() const { return {}; }
};

}  // namespace arcly::host::http
