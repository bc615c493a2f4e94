// LivePlayer — HLS of a chosen stream for the web page's player, made on demand.
//
//   GET /v1/streams/{app}/{stream}/live/index.m3u8      the playlist
//   GET /v1/streams/{app}/{stream}/live/segmentNNNNN.ts  its segments (MPEG-TS)
//
// The first request for a key starts one pipeline for it:
//   arclysrc start=keyframe ! queue ! h264parse config-interval=-1 ! hlssink2
// writing into a private temporary directory (g_dir_make_tmp, mode 0700). The
// first segment begins at the GOP cache's keyframe, so the playlist exists as
// soon as that segment closes (at the next keyframe past the target duration)
// instead of after a full segment of fresh footage. A playlist request that
// comes before the first segment is answered once it exists (the request is
// held, the server thread is not). Segments are served only by their exact
// generated name ("segment" + 5 digits + ".ts") from that directory: a request
// path never names a file itself. The pipeline stops, and its directory is
// removed, after `idle` without a request, when the publisher ends, on an
// error, and when the LivePlayer is destroyed (host shutdown).
//
// Only H.264 video is played (what hls.js with the browser's MSE takes from
// MPEG-TS without a transcode); another codec is 415 naming it, no video 409,
// an unknown key 404 — JSON errors as the other routes.
//
// Threads: everything runs on the HTTP server's thread (the one whose context
// was thread-default when the LivePlayer was built); a timer on that context
// polls the pipelines' buses, answers held requests and stops idle pipelines.
#pragma once

#include <glib.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "api.hpp"

namespace arcly::host::http {

class LivePlayer {
 public:
  using Done = std::function<void(Response)>;

  LivePlayer(ControlTarget& target, std::chrono::milliseconds idle);
  // Stops every pipeline, removes its directory and answers held requests (503).
  ~LivePlayer();
  LivePlayer(const LivePlayer&) = delete;
  LivePlayer& operator=(const LivePlayer&) = delete;

  // True for /v1/streams/{app}/{stream}/live/... (any method).
  static bool is_player(const Request& request);

  // The answer now, or nullopt: `done` is called later on this thread.
  std::optional<Response> serve(const Request& request, Done done);

  // Pipelines running now (for tests and logs).
  std::size_t running() const { return sessions_.size(); }

 private:
  struct Session;
  static gboolean on_tick(gpointer self);
  void tick();
  void ensure_timer();

  ControlTarget& target_;
  std::chrono::milliseconds idle_;
  GMainContext* context_ = nullptr;
  GSource* timer_ = nullptr;
  std::map<std::string, std::unique_ptr<Session>> sessions_;
};

}  // namespace arcly::host::http
