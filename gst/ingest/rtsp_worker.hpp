// RtspWorker — pulls a camera with GStreamer's rtspsrc and publishes it.
//
// rtspsrc has no reconnect of its own once streaming; the SourceWorker's
// watchdog, backoff and grace make a camera that reboots come back by itself.
// Credentials come from the URL or are given apart; they are handed to rtspsrc
// as user-id/user-pw and never appear in logs, errors or stats: the URL is shown
// as rtsp://***@host/path.
#pragma once

#include <string>

#include "source_worker.hpp"
#include "url.hpp"

namespace arcly::ingest {

struct RtspSettings {
  std::string url;       // rtsp:// or rtsps://, credentials allowed
  std::string user;      // overrides the URL's user when not empty
  std::string password;  // overrides the URL's password when not empty
  std::string transport = "auto";  // "tcp", "udp" or "auto"
  unsigned latency_ms = 200;       // rtspsrc jitterbuffer latency
};

class RtspWorker final : public SourceWorker {
 public:
  // Throws arcly::Error{InvalidArgument} naming the bad field (url, transport).
  RtspWorker(WorkerSettings settings, RtspSettings rtsp);
  std::string_view name() const override { return "rtsp"; }
  // The URL as people may see it.
  const std::string& display_url() const { return display_url_; }

 protected:
  GstElement* make_source() override;

 private:
  RtspSettings rtsp_;
  UrlParts url_;
  std::string display_url_;
};

}  // namespace arcly::ingest
