// SrtServer — one SRT listener port (libsrt) for many callers of many keys, both
// directions: readers pull a stream as MPEG-TS, publishers push one in.
//
// A caller chooses by its streamid: "#!::r=live/cam,m=request" (or a plain
// "live/cam", which reads) pulls live/cam; "#!::r=live/cam,m=publish" publishes
// it. Other keys: token= (a per-key secret for the patterns in *_tokens), u=
// (a user name, logged). Every caller is vetted in libsrt's listen callback,
// during the handshake, before any media: a bad streamid, an unknown (not
// published) key, a key outside the allowed patterns, a wrong token, the reader
// limit, a key someone else publishes, publishing when it is off — each is
// rejected with an SRT reject reason (SRT_REJX_*), logged once with the peer's
// address and the reason (never the token), and counted. The passphrase is
// checked by libsrt after the callback: a caller let through whose handshake
// libsrt then closed (its key exchange failed: a wrong or missing passphrase) is
// noticed by the accept thread within its 100 ms tick, logged once with the
// address and counted as refused_passphrase; one that just goes silent is
// reported when it times out (handshake_failed, after 5 s).
//
// A reader chooses where it starts with start= in the streamid
// ("#!::r=live/cam,m=request,start=keyframe"; the RTSP server's ?start=
// vocabulary), else settings.start (live-edge by default, as RTSP): both send
// the configs and the cached keyframe first (instant start); live-edge then
// squeezes the rest of the cached GOP into 100 ms of TS time (TsCatchUp) and is
// live; keyframe sends the cached GOP at its spacing and stays up to a GOP
// behind (what a recorder that wants every frame at its time needs).
// Readers: a small pipeline per caller, arclysrc ! parsers ! mpegtsmux ! appsink,
// whose 7-packet TS chunks go out on the caller's socket. The publisher ending
// closes the reader's socket. Publishers: the caller's TS goes through the ingest
// contract (a SourceWorker on an appsrc: tsdemux, parsers, one PublishSession),
// the same path as the SRT ingest listener.
//
// Threads: start()/stop()/stats() from any thread. One accept thread; one thread
// per reader (pull and send); two per publisher (receive; the worker's serve).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "reader_start.hpp"

namespace arcly::egress {

struct SrtServerSettings {
  std::string host;  // empty = every interface
  int port = 8890;   // 0 = any free port (see SrtServer::port())
  std::string engine = "default";
  std::string passphrase;                          // empty = no encryption; 10-79 characters
  int pbkeylen = 0;                                // 0 (default), 16, 24 or 32
  int latency_ms = -1;                             // -1 = libsrt's default (120 ms)
  std::vector<std::string> read_allow{"*"};        // key patterns callers may read
  std::map<std::string, std::string> read_tokens;  // key pattern -> token required to read
  bool publish = true;                             // accept m=publish callers
  std::vector<std::string> publish_allow{"*"};     // key patterns callers may publish
  std::map<std::string, std::string> publish_tokens;
  ReaderStart start = ReaderStart::LiveEdge;        // a reader whose streamid has no start=
  std::size_t max_readers = 0;                      // 0 = no limit
  std::size_t max_readers_per_key = 0;              // 0 = no limit
  std::chrono::milliseconds publish_timeout{5000};  // a publisher silent this long is dropped
  std::function<void(const std::string&)> log;      // refusals and sessions (optional)
};

struct SrtSessionStats {
  std::string key;
  std::string address;  // peer IP:port
  std::string mode;     // "request" or "publish"
  std::string start;    // a reader's "live-edge" or "keyframe"
  std::uint64_t bytes = 0;
  // A reader's: SRT packets lost (no room in libsrt's send buffer, or dropped
  // by libsrt too late for the caller's latency), and libsrt's send buffer in
  // ms (msSndBuf, sampled every 0.5 s; -1 before the first sample).
  std::uint64_t dropped = 0;
  std::int64_t lag_ms = -1;
};

struct SrtServerStats {
  std::size_t readers = 0;
  std::size_t publishers = 0;
  std::uint64_t accepted = 0;
  std::uint64_t refused = 0;             // every refusal, whatever the reason
  std::uint64_t refused_streamid = 0;    // unparsable streamid / unsupported mode
  std::uint64_t refused_not_found = 0;   // reading a key nobody publishes
  std::uint64_t refused_forbidden = 0;   // key not allowed, wrong token, publishing off
  std::uint64_t refused_busy = 0;        // reader limit, key already published
  std::uint64_t refused_passphrase = 0;  // libsrt's key check failed: wrong or missing passphrase
  std::uint64_t handshake_failed = 0;    // let through, then silent until it timed out (5 s)
  std::uint64_t slow_readers = 0;        // readers that lost data (each logged once)
  std::string last_refusal;
  std::vector<SrtSessionStats> sessions;
};

// Throws arcly::Error{InvalidArgument} naming the bad field.
void validate(const SrtServerSettings& settings);

class SrtServer {
 public:
  explicit SrtServer(SrtServerSettings settings);  // validates
  ~SrtServer();
  SrtServer(const SrtServer&) = delete;
  SrtServer& operator=(const SrtServer&) = delete;

  // Binds and listens. Throws arcly::Error{Io} naming the address on failure.
  void start();
  // Closes every caller and the listener; idempotent.
  void stop();
  int port() const;
  SrtServerStats stats() const;
  bool wait_for(const std::function<bool(const SrtServerStats&)>& pred,
                std::chrono::milliseconds timeout) const;
  const SrtServerSettings& settings() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace arcly::egress
