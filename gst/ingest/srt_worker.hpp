// SrtWorker — SRT ingest with GStreamer's srtsrc (MPEG-TS in, parsed H.264 /
// H.265 / AAC / Opus out).
//
// Listener: one srtsrc per port, keep-listening, so caller after caller can
// publish. Callers are vetted in srtsrc's `caller-connecting` signal (with
// authentication=true) before any media flows: the stream key comes from the
// caller's streamid — the SRT access-control form "#!::r=live/cam,m=publish"
// (other k=v pairs allowed, u= user, token= a per-key secret), the plain form
// "live/cam", or the configured default key when the caller sends none. A caller
// is rejected, with the reason logged, for an invalid key, a key outside the
// allowed patterns, m=request, a wrong token, or a key already being published by
// someone else, or while another caller is still connected. The socket stays
// open across callers (keep-listening); a caller's stream waits in grace for it.
//
// Caller: pulls from a remote SRT listener with a streamid, reconnecting like
// every SourceWorker. Passphrase/pbkeylen encryption and SRT latency in both modes.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "source_worker.hpp"
#include "stream_id.hpp"

namespace arcly::ingest {

struct SrtSettings {
  std::string uri;  // srt://:9000 (listener) or srt://host:port (caller)
  bool listener = true;
  std::string passphrase;                     // empty = no encryption (10-79 characters otherwise)
  int pbkeylen = 0;                           // 0 (default), 16, 24 or 32
  int latency_ms = -1;                        // -1 = srtsrc's default (125 ms)
  std::string streamid;                       // caller mode: sent to the remote listener
  std::optional<StreamKey> default_key;       // listener: for callers without a streamid
  std::vector<std::string> allow{"*"};        // listener: key patterns ('*' and '?' globs)
  std::map<std::string, std::string> tokens;  // listener: key pattern -> required token
};

class SrtWorker final : public SourceWorker {
 public:
  // Throws arcly::Error{InvalidArgument} naming the bad field.
  SrtWorker(WorkerSettings settings, SrtSettings srt);
  std::string_view name() const override { return "srt"; }

  // Listener: the decision for a caller (empty = accepted); logged and counted in
  // stats().rejected / last_rejection.
  std::string vet_caller(std::string_view streamid);

 protected:
  GstElement* make_source() override;
  std::optional<Failure> on_element_message(GstMessage* message) override;
  std::optional<StreamKey> current_key() override;
  bool expects_media() override;

 private:
  static gboolean on_caller_connecting(GstElement* src, GObject* addr, gchar* streamid,
                                       gpointer self);
  static void on_caller_added(GstElement* src, gint socket, GObject* addr, gpointer self);
  static void on_caller_removed(GstElement* src, gint socket, GObject* addr, gpointer self);

  SrtSettings srt_;
  std::string source_uri_;
  mutable std::mutex caller_mutex_;
  std::optional<StreamKey> pending_key_;  // vetted, handshake not finished (e.g. passphrase)
  std::optional<StreamKey> caller_key_;   // the connected caller's key
};

}  // namespace arcly::ingest
