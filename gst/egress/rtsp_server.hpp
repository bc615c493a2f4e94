// RtspServer — every published arcly stream served over RTSP, with gst-rtsp-server.
//
// rtsp://HOST:PORT/app/stream plays the stream key app/stream. Each reader gets a
// media of its own, built from `arclysrc stream=app/stream` and one RTP payloader
// per track, chosen from the track's caps when arclysrc exposes it (H.264, H.265,
// AAC, Opus, G.711 A-law/µ-law, MJPEG, MPEG audio; other tracks are not offered).
// Because arclysrc starts with the codec configs and the cached keyframe, and the
// media holds its first packets until PLAY, a reader's first RTP packets are a
// decodable picture (instant start). `?start=live-edge` (default) then jumps to
// live; `?start=keyframe` replays the cached GOP at its original spacing (what an
// NVR recording wants). TCP-interleaved and UDP transports.
// With `shared_media`, the live-edge readers of a key share one media instead, as
// a plain server's readers do (one payloader, a reader costs a connection): each
// joining TCP reader is sent the cached GOP first, squeezed to the live edge
// (reader_sender.hpp). Such a media offers TCP only: a client asking for UDP
// gets 461 and retries over TCP (rtspsrc, ffmpeg). The RTCP sender
// reports map RTP time to the publisher's time of each frame on the wall clock
// (capture_time_reports.hpp).
//
// Refusals, each logged once (GST_WARNING, category arclyegress, and the
// settings' `log` callback) with the peer's address and never a credential, and
// counted in stats():
//   401 wrong credentials (a request without credentials just gets the challenge),
//   403 a user reading a key outside its permissions,
//   404 a path that is no stream key, or a key nobody publishes (after `wait`),
//   400 a bad ?start= value,
//   503 the reader limit (per key or in total).
// Users authenticate with Basic and/or Digest; each user reads the keys matching
// its patterns ('*' and '?' globs: "live/*"). Anonymous readers are refused unless
// `anonymous_read` names patterns they may read.
//
// Threads: start()/stop()/stats() from any thread (not concurrently with each
// other for start/stop). The server runs its own GMainContext thread; RTSP
// connections share two loops per core of gst-rtsp-server's pool, or, with
// `wait`, get a thread each (so a DESCRIBE waiting for a publisher holds up only
// its own connection); medias share a loop per core (media_threads.hpp).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "reader_start.hpp"

namespace arcly::egress {

using RtspStart = ReaderStart;  // ?start=live-edge|keyframe

struct RtspUser {
  std::string name;
  std::string password;
  std::vector<std::string> read{"*"};  // key patterns this user may read
};

struct RtspServerSettings {
  std::string host;                // empty = every interface
  int port = 8554;                 // 0 = any free port (see RtspServer::port())
  std::string engine = "default";  // the named arcly engine (see engine_registry.hpp)
  std::vector<RtspUser> users;
  std::vector<std::string> anonymous_read;  // key patterns readable without credentials
  bool basic = true;                        // offer Basic authentication
  bool digest = true;                       // offer Digest authentication
  std::string realm = "arcly";
  std::size_t max_readers = 0;          // playing readers in total; 0 = no limit
  std::size_t max_readers_per_key = 0;  // playing readers of one key; 0 = no limit
  std::chrono::milliseconds wait{0};    // DESCRIBE of an unpublished key waits this long, then 404
  RtspStart start = RtspStart::LiveEdge;        // when the URL has no ?start=
  bool shared_media = false;                    // live-edge readers of a key share a media (TCP)
  bool tcp = true;                              // offer TCP-interleaved transport
  bool udp = true;                              // offer UDP transport
  std::function<void(const std::string&)> log;  // refusals and readers (optional)
};

struct RtspReaderStats {
  std::string key;
  std::string address;        // peer IP
  std::string transport;      // "tcp", "udp" or "udp-multicast"
  std::string start;          // "live-edge" or "keyframe"
  std::uint64_t bytes = 0;    // RTP bytes produced for this reader
  std::uint64_t packets = 0;  // RTP packets produced for this reader
  // TCP: bytes sent to it and not yet acknowledged, in its connection's queue
  // and in the kernel's (sampled while sending), and those in milliseconds at
  // the stream's bitrate; UDP: 0 (no queue). -1: not known (no bitrate yet).
  std::uint64_t queued_bytes = 0;
  std::int64_t lag_ms = -1;
  // TCP: what its connection may queue beyond the kernel's before it is closed
  // as too slow (10 s of the stream at the highest bitrate seen since it joined).
  std::uint64_t queue_limit_bytes = 0;
  bool shared_media = false;  // reads a media shared with the key's other live-edge readers
  std::chrono::steady_clock::time_point since;
};

struct RtspServerStats {
  std::size_t readers = 0;                 // playing now
  std::uint64_t readers_total = 0;         // ever started playing
  std::uint64_t refused_unauthorized = 0;  // 401 wrong credentials
  std::uint64_t refused_forbidden = 0;     // 403
  std::uint64_t refused_not_found = 0;     // 404
  std::uint64_t refused_bad_request = 0;   // 400
  std::uint64_t refused_limit = 0;         // 503
  std::uint64_t dropped_slow = 0;          // TCP readers closed for not keeping up
  std::string last_refusal;
  std::vector<RtspReaderStats> reader_list;
};

// Throws arcly::Error{InvalidArgument} naming the bad field.
void validate(const RtspServerSettings& settings);

class RtspServer {
 public:
  explicit RtspServer(RtspServerSettings settings);  // validates
  ~RtspServer();
  RtspServer(const RtspServer&) = delete;
  RtspServer& operator=(const RtspServer&) = delete;

  // Binds and serves. Throws arcly::Error{Io} naming the address when it cannot
  // listen. gst_init() must have been called and the arcly plugin be loadable.
  void start();
  // Closes every connection and stops serving; idempotent.
  void stop();
  // The bound port (after start()).
  int port() const;
  RtspServerStats stats() const;
  // Waits until pred(stats()) holds or `timeout` passes; for tests and hosts.
  bool wait_for(const std::function<bool(const RtspServerStats&)>& pred,
                std::chrono::milliseconds timeout) const;
  const RtspServerSettings& settings() const;

  struct Shared;

 private:
  std::shared_ptr<Shared> shared_;
  struct Objects;
  std::unique_ptr<Objects> objects_;
};

}  // namespace arcly::egress
