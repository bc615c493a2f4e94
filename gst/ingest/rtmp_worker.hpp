// RtmpWorker — an RTMP publish server: a thin per-connection handler over the
// engine's TcpServer, driving the pure RTMP session layer (rtmp/session.hpp)
// and mapping FLV tags to engine frames.
//
// Keys: rtmp://HOST:PORT/APP/STREAM publishes APP/STREAM (or the configured
// `key` for every publisher). A publish is refused, with an RTMP onStatus error
// and the reason logged (never the token), for an invalid key, a key outside
// `allow`, a wrong or missing token (`?token=` on the stream name, the app or
// the tcUrl; per key pattern in `tokens`), or a key already live — the first
// publisher keeps publishing (NetStream.Publish.BadName).
//
// Media: the AVC sequence header becomes an H.264 track (caps video/x-h264,
// stream-format=avc, codec_data = the avcC record), HEVC likewise (legacy codec
// id 12 or Enhanced RTMP "hvc1": video/x-h265, stream-format=hvc1); the AAC
// sequence header an AAC track (audio/mpeg, mpegversion=4, stream-format=raw,
// codec_data, rate, channels). Coded frames are published zero-copy from the
// reassembled message: pts = dts + composition time, RTMP's 32-bit millisecond
// timestamps extended across their wrap. Other codecs are dropped (counted).
//
// Lifetime: each connection's state lives on its handler's stack, created on
// accept and dropped on close. A connection that has not published within
// `handshake_timeout` of its accept is closed (slow-loris), as is a publisher
// silent for `idle_timeout`: both are deadlines on the socket's receive timeout,
// not polling. A publisher that vanishes (EOF, reset, kill -9) or unpublishes
// ends its session: its subscribers see the end.
//
// Threads: serve() runs the accept loop on its caller's thread; each connection
// runs on its own thread. stats() and wait_for() may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "arcly/inbound.hpp"
#include "arcly/stream_key.hpp"

namespace arcly::ingest {

struct RtmpSettings {
  std::string name = "rtmp";                  // shown in logs (e.g. the config section)
  std::string listen = ":1935";               // HOST:PORT or :PORT
  std::optional<StreamKey> key;               // publish every stream under this key
  std::vector<std::string> allow{"*"};        // key patterns ('*' and '?' globs)
  std::map<std::string, std::string> tokens;  // key pattern -> required token
  std::size_t max_connections = 256;
  std::chrono::milliseconds handshake_timeout{10000};  // accept -> publish accepted
  std::chrono::milliseconds idle_timeout{30000};       // no bytes from a publisher
};

struct RtmpStats {
  bool listening = false;
  std::uint16_t port = 0;             // the bound port once listening
  std::string listen_error;           // why binding failed
  std::uint64_t connections = 0;      // accepted
  std::uint64_t over_limit = 0;       // closed at once: max_connections reached
  std::uint64_t accept_starved = 0;   // times accept() ran out of descriptors or memory
  std::uint64_t publishes = 0;        // accepted publishes
  std::uint64_t refused = 0;          // publishes refused
  std::string last_refusal;           // why the last one was refused
  std::uint64_t protocol_errors = 0;  // connections ended by a protocol error
  std::uint64_t timeouts = 0;         // connections ended by a timeout
  std::uint64_t frames = 0;
  std::uint64_t bytes = 0;
  std::uint64_t dropped_tags = 0;  // tags of codecs not handled
  std::size_t live = 0;            // publishing now
};

class RtmpWorker final : public InboundProtocol {
 public:
  // Throws Error{InvalidArgument} naming the bad field (listen address, key
  // pattern, timeouts).
  explicit RtmpWorker(RtmpSettings settings);

  std::string_view name() const override { return "rtmp"; }
  // Binds (a failure throws Error{Io} naming the address and the OS reason) and
  // serves until `stop`, returning once every connection has ended.
  void serve(IngestContext ctx, std::stop_token stop) override;

  RtmpStats stats() const;
  const RtmpSettings& settings() const { return settings_; }
  template <class Pred>
  bool wait_for(Pred pred, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return pred(stats_); });
  }

  // The decision for a publish (empty = allowed). `app` and `name` as the
  // client sent them (with queries), `tc_url` for its query. Sets `key`.
  std::string vet(std::string_view app, std::string_view name, std::string_view tc_url,
                  std::optional<StreamKey>& key) const;

 private:
  class Connection;
  template <class F>
  void update(F f) {
    {
      std::lock_guard lock(mutex_);
      f(stats_);
    }
    cv_.notify_all();
  }

  const RtmpSettings settings_;
  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  RtmpStats stats_;  // guarded by mutex_
};

}  // namespace arcly::ingest
