#include "srt_server.hpp"

#include <arpa/inet.h>
#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <srt/access_control.h>
#include <srt/srt.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "arcly/engine.hpp"
#include "arcly/error.hpp"
#include "engine_registry.hpp"
#include "source_worker.hpp"
#include "srt_worker.hpp"  // parse_stream_id, key_matches
#include "ts_catch_up.hpp"

GST_DEBUG_CATEGORY_STATIC(arcly_srt_egress_debug);
#define GST_CAT_DEFAULT arcly_srt_egress_debug

namespace arcly::egress {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr int kChunk = 1316;  // 7 TS packets: one SRT live-mode message
constexpr auto kSendSample = std::chrono::milliseconds(500);  // a reader's libsrt figures
// A reader is slow when it loses packets in this many samples in a row (2 s): a
// moment of congestion can lose some once, a reader that stopped reading (or
// vanished) loses in every sample.
constexpr int kSlowSamples = 4;

std::string address_of(const sockaddr* sa) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (sa && sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  if (sa && sa->sa_family == AF_INET6) {
    const auto* in = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof host);
    port = ntohs(in->sin6_port);
    return "[" + std::string(host) + "]:" + std::to_string(port);
  }
  return "unknown peer";
}

bool any_match(const std::vector<std::string>& patterns, const std::string& key) {
  for (const auto& p : patterns)
    if (ingest::key_matches(p, key)) return true;
  return false;
}

// The token rule: every pattern matching `key` that has a token requires it.
bool token_ok(const std::map<std::string, std::string>& tokens, const std::string& key,
              const std::string& given) {
  for (const auto& [pattern, token] : tokens)
    if (ingest::key_matches(pattern, key) && given != token) return false;
  return true;
}

// A publishing caller's TS through the ingest contract: an appsrc that the
// receive thread feeds, parsed and published by SourceWorker.
class CallerPublisher final : public ingest::SourceWorker {
 public:
  explicit CallerPublisher(ingest::WorkerSettings w) : SourceWorker(std::move(w)) {}
  ~CallerPublisher() override {
    if (appsrc_) gst_object_unref(appsrc_);
  }
  std::string_view name() const override { return "srt-server"; }

  // Receive thread.
  void push(const char* data, int size) {
    std::lock_guard lock(mutex_);
    if (!appsrc_ || ended_) return;
    gst_app_src_push_buffer(appsrc_, gst_buffer_new_memdup(data, static_cast<gsize>(size)));
  }
  void end() {
    std::lock_guard lock(mutex_);
    ended_ = true;
    if (appsrc_) gst_app_src_end_of_stream(appsrc_);
  }

 protected:
  GstElement* make_source() override {
    GstElement* src = gst_element_factory_make("appsrc", nullptr);
    if (!src) throw Error(Errc::InvalidArgument, "the appsrc element is missing");
    GstCaps* caps = gst_caps_from_string("video/mpegts,systemstream=(boolean)true,packetsize=188");
    g_object_set(src, "caps", caps, "is-live", TRUE, "format", GST_FORMAT_TIME, "do-timestamp",
                 TRUE, "max-bytes", static_cast<guint64>(8u << 20), "block", FALSE, nullptr);
    gst_caps_unref(caps);
    std::lock_guard lock(mutex_);
    if (appsrc_) gst_object_unref(appsrc_);
    appsrc_ = GST_APP_SRC(gst_object_ref(src));
    if (ended_) gst_app_src_end_of_stream(appsrc_);
    return src;
  }

 private:
  std::mutex mutex_;
  GstAppSrc* appsrc_ = nullptr;
  bool ended_ = false;
};

}  // namespace

struct SrtServer::Impl {
  SrtServerSettings settings;
  std::shared_ptr<Engine> engine;
  SRTSOCKET listener = SRT_INVALID_SOCK;
  int port = 0;
  std::jthread accept_thread;

  struct Vetted {
    StreamKey key;
    std::string mode;
    ReaderStart start = ReaderStart::LiveEdge;
    std::string address;
    Clock::time_point at;
  };
  struct Session {
    SRTSOCKET socket = SRT_INVALID_SOCK;
    std::string key;
    std::string mode;
    ReaderStart start = ReaderStart::LiveEdge;
    std::string address;
    std::atomic<std::uint64_t> bytes{0};
    // A reader's: chunks libsrt had no room for, packets it dropped too late to
    // send, and its send buffer in ms (sampled by the reader's thread).
    std::atomic<std::uint64_t> lost_chunks{0};
    std::atomic<std::uint64_t> late_drops{0};
    std::atomic<std::int64_t> lag_ms{-1};
    // The reader's thread only: losses at the last sample, samples in a row
    // with new losses, and whether it was logged as slow.
    std::uint64_t lost_at_sample = 0;
    int losing_samples = 0;
    bool slow_logged = false;
    std::atomic<bool> done{false};
    std::jthread thread;
  };

  mutable std::mutex mutex;
  mutable std::condition_variable changed;
  std::map<SRTSOCKET, Vetted> pending;  // let through the handshake, not yet accepted
  std::map<SRTSOCKET, std::unique_ptr<Session>> sessions;
  SrtServerStats counts;

  void log(const std::string& line, bool warning) {
    if (warning)
      GST_WARNING("%s", line.c_str());
    else
      GST_INFO("%s", line.c_str());
    if (settings.log) settings.log(line);
  }

  // Listen callback (libsrt's thread): the decision for a caller, before media.
  int vet(SRTSOCKET ns, const sockaddr* peer, const char* sid_text) {
    const std::string address = address_of(peer);
    const std::string sid = sid_text ? sid_text : "";
    std::uint64_t SrtServerStats::*counter = &SrtServerStats::refused_streamid;
    int code = SRT_REJX_BAD_REQUEST;
    std::string why;
    std::optional<StreamKey> key;
    std::string mode = "request";
    std::string token;
    ReaderStart start = settings.start;
    try {
      const auto req = ingest::parse_stream_id(sid);
      key = req.key;
      token = req.token;
      if (!req.start.empty()) {
        if (auto s = parse_reader_start(req.start))
          start = *s;
        else
          why = "start=" + req.start + ": expected keyframe or live-edge";
      }
      // The access-control form defaults to m=request; a plain key reads.
      const bool has_mode = sid.starts_with("#!::") && (sid.find("::m=") != std::string::npos ||
                                                        sid.find(",m=") != std::string::npos);
      if (has_mode) mode = req.mode;
      if (!key && why.empty()) why = "no stream key in the streamid";
    } catch (const Error& e) {
      why = e.what();
    }
    if (why.empty() && mode != "request" && mode != "publish") {
      why = "m=" + mode + ": expected m=request or m=publish";
      code = SRT_REJX_BAD_MODE;
    }
    const std::string k = key ? key->str() : std::string();
    std::lock_guard lock(mutex);
    if (why.empty() && mode == "request") {
      counter = &SrtServerStats::refused_forbidden;
      code = SRT_REJX_FORBIDDEN;
      if (!any_match(settings.read_allow, k)) {
        why = "stream " + k + " is not in the readable keys";
      } else if (!token_ok(settings.read_tokens, k, token)) {
        why = "wrong or missing token to read " + k;
        code = SRT_REJX_UNAUTHORIZED;
      } else if (!engine->find_stream(*key)) {
        why = "stream " + k + " is not published";
        counter = &SrtServerStats::refused_not_found;
        code = SRT_REJX_NOTFOUND;
      } else {
        std::size_t total = 0, same = 0;
        for (const auto& [s, sess] : sessions) {
          if (sess->mode != "request" || sess->done) continue;
          ++total;
          same += sess->key == k;
        }
        for (const auto& [s, v] : pending) {
          if (v.mode != "request") continue;
          ++total;
          same += v.key.str() == k;
        }
        counter = &SrtServerStats::refused_busy;
        code = SRT_REJX_OVERLOAD;
        if (settings.max_readers && total >= settings.max_readers)
          why = "the reader limit (" + std::to_string(settings.max_readers) + ") is reached";
        else if (settings.max_readers_per_key && same >= settings.max_readers_per_key)
          why = "the reader limit of " + k + " (" + std::to_string(settings.max_readers_per_key) +
                ") is reached";
      }
    } else if (why.empty()) {  // publish
      counter = &SrtServerStats::refused_forbidden;
      code = SRT_REJX_FORBIDDEN;
      bool pending_same = false;
      for (const auto& [s, v] : pending)
        pending_same = pending_same || (v.mode == "publish" && v.key == *key);
      if (!settings.publish) {
        why = "publishing is not accepted on this port";
        code = SRT_REJX_BAD_MODE;
      } else if (!any_match(settings.publish_allow, k)) {
        why = "stream " + k + " is not in the keys that may be published";
      } else if (!token_ok(settings.publish_tokens, k, token)) {
        why = "wrong or missing token to publish " + k;
        code = SRT_REJX_UNAUTHORIZED;
      } else if (engine->find_stream(*key) || pending_same) {
        why = "stream " + k + " is already being published";
        counter = &SrtServerStats::refused_busy;
        code = SRT_REJX_CONFLICT;
      }
    }
    if (!why.empty()) {
      ++counts.refused;
      ++(counts.*counter);
      counts.last_refusal = "srt: refused " + address + ": " + why;
      changed.notify_all();
      srt_setrejectreason(ns, code);
      log(counts.last_refusal, true);
      return -1;
    }
    pending.insert_or_assign(ns, Vetted{*key, mode, start, address, Clock::now()});
    return 0;
  }

  static int on_listen(void* self, SRTSOCKET ns, int, const sockaddr* peer, const char* sid) {
    return static_cast<Impl*>(self)->vet(ns, peer, sid);
  }

  // Accept thread: a caller finished its handshake.
  void on_accepted(SRTSOCKET s) {
    std::optional<Vetted> v;
    {
      std::lock_guard lock(mutex);
      if (auto it = pending.find(s); it != pending.end()) {
        v = it->second;
        pending.erase(it);
      }
    }
    if (!v) {  // not seen by the callback (cannot happen with a listen callback set)
      srt_close(s);
      return;
    }
    auto session = std::make_unique<Session>();
    Session* sess = session.get();
    sess->socket = s;
    sess->key = v->key.str();
    sess->mode = v->mode;
    sess->start = v->start;
    sess->address = v->address;
    {
      std::lock_guard lock(mutex);
      ++counts.accepted;
      sessions[s] = std::move(session);
    }
    changed.notify_all();
    log("srt: " + v->address +
            (v->mode == "publish"
                 ? " publishes " + sess->key
                 : " reads " + sess->key + " (start=" + reader_start_name(v->start) + ")"),
        false);
    if (v->mode == "publish")
      sess->thread =
          std::jthread([this, sess, key = v->key](std::stop_token st) { publish(sess, key, st); });
    else
      sess->thread = std::jthread([this, sess](std::stop_token st) { read(sess, st); });
  }

  void finish(Session* sess, const std::string& why) {
    srt_close(sess->socket);
    log("srt: " + sess->address + " stopped " +
            (sess->mode == "publish" ? "publishing " : "reading ") + sess->key + " (" + why + ", " +
            std::to_string(sess->bytes.load()) + " bytes)",
        false);
    sess->done = true;
    changed.notify_all();
  }

  // --- readers ---------------------------------------------------------------

  // arclysrc pushes every track from its one streaming thread, and mpegtsmux
  // (an aggregator without a clock timeout) outputs only once every sink pad
  // holds a buffer. Until its latency query sees a live upstream it also queues
  // a single buffer per pad and blocks the pushing thread on the next one. So
  // with the tracks linked straight to the mux, a second video frame arriving
  // before the first audio frame blocked that one thread forever: the audio
  // the mux waited for was never pushed and the reader got nothing. A queue per
  // track gives each track its own thread into the mux, as a demuxer needs.
  // Bounded in bytes only (a GOP replay is many buffers); the limit is a
  // backstop for a track that stops while the other one flows.
  struct ReaderPads {
    GstElement* pipeline;
    TsCatchUp* catch_up;  // live-edge readers only
  };
  static void on_reader_pad(GstElement*, GstPad* pad, gpointer data) {
    const auto* ctx = static_cast<const ReaderPads*>(data);
    GstElement* pipeline = ctx->pipeline;
    GstCaps* caps = gst_pad_get_current_caps(pad);
    if (!caps) {
      GST_WARNING("srt: track %s without caps: not sent", GST_PAD_NAME(pad));
      return;
    }
    const std::string_view name = gst_structure_get_name(gst_caps_get_structure(caps, 0));
    const bool video = name.starts_with("video/");
    const char* parser = nullptr;
    if (name == "video/x-h264")
      parser = "h264parse";
    else if (name == "video/x-h265")
      parser = "h265parse";
    else if (name == "audio/mpeg")
      parser = "aacparse";
    else if (name == "audio/x-opus")
      parser = "identity";
    gst_caps_unref(caps);
    if (!parser) {
      GST_INFO("srt: track %s cannot go in MPEG-TS here; not sent", GST_PAD_NAME(pad));
      return;
    }
    GstElement* queue = gst_element_factory_make("queue", nullptr);
    GstElement* p = gst_element_factory_make(parser, nullptr);
    if (!queue || !p) {
      GST_WARNING("srt: track %s: queue or %s is missing; not sent", GST_PAD_NAME(pad), parser);
      if (queue) gst_object_unref(queue);
      if (p) gst_object_unref(p);
      return;
    }
    g_object_set(queue, "max-size-buffers", 0u, "max-size-time", G_GUINT64_CONSTANT(0),
                 "max-size-bytes", 32u << 20, nullptr);
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(p), "config-interval"))
      g_object_set(p, "config-interval", -1, nullptr);
    gst_bin_add_many(GST_BIN(pipeline), queue, p, nullptr);
    GstElement* mux = gst_bin_get_by_name(GST_BIN(pipeline), "mux");
    bool ok = gst_element_link_many(queue, p, mux, nullptr);
    gst_object_unref(mux);
    // Downstream first, and the track's pad last: nothing flows into an element
    // that is not playing yet.
    gst_element_sync_state_with_parent(p);
    gst_element_sync_state_with_parent(queue);
    if (ok && ctx->catch_up) ctx->catch_up->watch(pad, video);
    GstPad* sink = gst_element_get_static_pad(queue, "sink");
    ok = ok && gst_pad_link(pad, sink) == GST_PAD_LINK_OK;
    gst_object_unref(sink);
    if (ok) return;
    GST_WARNING("srt: cannot mux track %s; not sent", GST_PAD_NAME(pad));
    // A mux pad that never gets data would hold the other tracks back.
    GstPad* out = gst_element_get_static_pad(p, "src");
    if (GstPad* mux_pad = gst_pad_get_peer(out)) {
      gst_pad_unlink(out, mux_pad);
      if (GstElement* m = gst_pad_get_parent_element(mux_pad)) {
        gst_element_release_request_pad(m, mux_pad);
        gst_object_unref(m);
      }
      gst_object_unref(mux_pad);
    }
    gst_object_unref(out);
    gst_element_set_state(queue, GST_STATE_NULL);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_bin_remove_many(GST_BIN(pipeline), queue, p, nullptr);
  }

  // A reader's libsrt figures: its send buffer (lag) and the packets libsrt
  // dropped because they were too late to send (a caller that does not keep up).
  void sample_sending(Session* sess) {
    SRT_TRACEBSTATS perf{};
    if (srt_bstats(sess->socket, &perf, 0) != 0) return;
    sess->lag_ms.store(perf.msSndBuf, std::memory_order_relaxed);
    sess->late_drops.store(static_cast<std::uint64_t>(std::max(perf.pktSndDropTotal, 0)),
                           std::memory_order_relaxed);
    note_if_slow(sess);
  }

  // Logs a reader that keeps losing data (kSlowSamples samples in a row), once,
  // and counts it.
  void note_if_slow(Session* sess) {
    const std::uint64_t lost = sess->lost_chunks.load(std::memory_order_relaxed);
    const std::uint64_t late = sess->late_drops.load(std::memory_order_relaxed);
    sess->losing_samples = lost + late > sess->lost_at_sample ? sess->losing_samples + 1 : 0;
    sess->lost_at_sample = lost + late;
    if (sess->slow_logged || sess->losing_samples < kSlowSamples) return;
    sess->slow_logged = true;
    {
      std::lock_guard lock(mutex);
      ++counts.slow_readers;
    }
    log("srt: " + sess->address + " reads " + sess->key + " too slowly (or has vanished): " +
            (lost ? "chunks lost (libsrt's send buffer is full)"
                  : "packets dropped by libsrt, too late for the caller's latency") +
            " for 2 s",
        true);
  }

  void read(Session* sess, std::stop_token stop) {
    // Non-blocking sends: a caller whose window is closed loses chunks (its
    // decoder resyncs) instead of holding this thread (and blocking libsrt's
    // sender inside a send that waits for room).
    const bool no = false;
    srt_setsockflag(sess->socket, SRTO_SNDSYN, &no, sizeof no);
    GstElement* pipeline = gst_pipeline_new(nullptr);
    GstElement* src = gst_element_factory_make("arclysrc", nullptr);
    GstElement* mux = gst_element_factory_make("mpegtsmux", "mux");
    GstElement* sink = gst_element_factory_make("appsink", nullptr);
    if (!src || !mux || !sink) {
      for (GstElement* e : {src, mux, sink})
        if (e) gst_object_unref(e);
      gst_object_unref(pipeline);
      finish(sess, "arclysrc, mpegtsmux or appsink is missing");
      return;
    }
    g_object_set(src, "stream", sess->key.c_str(), "engine", settings.engine.c_str(), "wait", 0,
                 nullptr);
    gst_util_set_object_arg(G_OBJECT(src), "start", reader_start_name(sess->start));
    // live-edge: its two segments and clipped catch-up made into one TS timeline
    // (mpegtsmux in 1.22 stalls on the segment change).
    std::optional<TsCatchUp> catch_up;
    if (sess->start == ReaderStart::LiveEdge) catch_up.emplace();
    ReaderPads pads{pipeline, catch_up ? &*catch_up : nullptr};
    g_object_set(mux, "alignment", 7, nullptr);
    g_object_set(sink, "sync", FALSE, "max-buffers", 2000u, nullptr);
    gst_bin_add_many(GST_BIN(pipeline), src, mux, sink, nullptr);
    gst_element_link(mux, sink);
    g_signal_connect(src, "pad-added", G_CALLBACK(on_reader_pad), &pads);
    std::string why = "stopped";
    if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
      why = "the stream ended";
    GstBus* bus = gst_element_get_bus(pipeline);
    auto next_sample = Clock::now();
    while (why == "stopped" && !stop.stop_requested()) {
      if (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
        GError* err = nullptr;
        gst_message_parse_error(m, &err, nullptr);
        why = std::string("pipeline error: ") + (err ? err->message : "?");
        g_clear_error(&err);
        gst_message_unref(m);
        break;
      }
      if (Clock::now() >= next_sample) {
        next_sample = Clock::now() + kSendSample;
        sample_sending(sess);
      }
      GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 100 * GST_MSECOND);
      if (!sample) {
        if (gst_app_sink_is_eos(GST_APP_SINK(sink))) why = "the publisher ended";
        if (srt_getsockstate(sess->socket) > SRTS_CONNECTED) why = "the caller left";
        continue;
      }
      GstMapInfo map;
      GstBuffer* buffer = gst_sample_get_buffer(sample);
      if (buffer && gst_buffer_map(buffer, &map, GST_MAP_READ)) {
        for (gsize off = 0; off < map.size; off += kChunk) {
          const int n = static_cast<int>(std::min<gsize>(kChunk, map.size - off));
          if (srt_sendmsg2(sess->socket, reinterpret_cast<const char*>(map.data + off), n,
                           nullptr) == SRT_ERROR) {
            if (srt_getsockstate(sess->socket) > SRTS_CONNECTED) {
              why = "the caller left";
              break;
            }
            // No room: this chunk is lost, the caller's decoder resyncs.
            sess->lost_chunks.fetch_add(1, std::memory_order_relaxed);
            continue;
          }
          sess->bytes.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
        }
        GST_LOG("srt: %s: sent %" G_GSIZE_FORMAT " bytes (%" G_GUINT64_FORMAT " in total)",
                sess->address.c_str(), map.size, sess->bytes.load());
        gst_buffer_unmap(buffer, &map);
      }
      gst_sample_unref(sample);
    }
    gst_object_unref(bus);
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
    finish(sess, why);
  }

  // --- publishers --------------------------------------------------------------

  void publish(Session* sess, StreamKey key, std::stop_token stop) {
    ingest::WorkerSettings w;
    w.name = "srt-server " + sess->address;
    w.key = key;
    w.timeout = settings.publish_timeout;
    w.max_attempts = 1;  // a caller publishes once; its next connection is a new caller
    w.backoff_initial = 1ms;
    w.backoff_max = 1ms;
    w.grace = 0ms;
    auto worker = std::make_shared<CallerPublisher>(w);
    auto registry = std::static_pointer_cast<PublishRegistry>(engine);
    std::jthread serving([worker, registry](std::stop_token st) {
      try {
        worker->serve(IngestContext(registry), st);
      } catch (const std::exception& e) {
        GST_WARNING("srt: publisher worker failed: %s", e.what());
      }
    });
    const bool no = false;
    srt_setsockflag(sess->socket, SRTO_RCVSYN, &no, sizeof no);
    const int eid = srt_epoll_create();
    int events = SRT_EPOLL_IN | SRT_EPOLL_ERR;
    srt_epoll_add_usock(eid, sess->socket, &events);
    char buf[1500];
    std::string why = "stopped";
    while (!stop.stop_requested()) {
      SRT_EPOLL_EVENT ready[1];
      srt_epoll_uwait(eid, ready, 1, 200);
      int n = 0;
      while ((n = srt_recvmsg(sess->socket, buf, sizeof buf)) > 0) {
        worker->push(buf, n);
        sess->bytes.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
      }
      if (srt_getsockstate(sess->socket) > SRTS_CONNECTED) {
        why = "the caller left";
        break;
      }
      if (worker->stats().state == ingest::WorkerState::Stopped) {
        why = "publishing failed: " + worker->stats().last_failure.message;
        break;
      }
    }
    srt_epoll_release(eid);
    worker->end();
    serving.request_stop();
    serving.join();
    finish(sess, why);
  }

  // --- accept loop -----------------------------------------------------------

  void accept_loop(std::stop_token stop) {
    const int eid = srt_epoll_create();
    int events = SRT_EPOLL_IN | SRT_EPOLL_ERR;
    srt_epoll_add_usock(eid, listener, &events);
    while (!stop.stop_requested()) {
      SRT_EPOLL_EVENT ready[4];
      const int n = srt_epoll_uwait(eid, ready, 4, 100);
      for (int i = 0; i < n; ++i) {
        if (ready[i].fd != listener) continue;
        sockaddr_storage peer{};
        int len = sizeof peer;
        const SRTSOCKET s = srt_accept(listener, reinterpret_cast<sockaddr*>(&peer), &len);
        if (s != SRT_INVALID_SOCK) on_accepted(s);
      }
      reap();
    }
    srt_epoll_release(eid);
  }

  // Why libsrt closed a caller that the listen callback had let through: after
  // the callback it checks only the key exchange, so with a passphrase on this
  // port that is a wrong or missing passphrase (SRT_REJ_BADSECRET / UNSECURE;
  // the reject reason itself is gone with the socket), without one a caller
  // that insists on encryption.
  std::string closed_in_handshake(const std::string& key) const {
    if (!settings.passphrase.empty()) return "wrong or missing passphrase for " + key;
    return "the handshake for " + key +
           " failed after its streamid was accepted (the caller uses a passphrase; this port has "
           "none)";
  }

  // Joins finished sessions; reports callers let through that never connected:
  // at once when libsrt closed them (the passphrase), after 5 s when they went
  // silent.
  void reap() {
    std::vector<std::unique_ptr<Session>> finished;
    std::vector<std::string> lost;
    {
      std::lock_guard lock(mutex);
      for (auto it = sessions.begin(); it != sessions.end();) {
        if (it->second->done) {
          finished.push_back(std::move(it->second));
          it = sessions.erase(it);
        } else {
          ++it;
        }
      }
      for (auto it = pending.begin(); it != pending.end();) {
        // CONNECTED: waiting in the accept queue; below: still in the handshake;
        // above (closed, gone): libsrt refused it after the callback.
        if (srt_getsockstate(it->first) > SRTS_CONNECTED) {
          lost.push_back("srt: refused " + it->second.address + ": " +
                         closed_in_handshake(it->second.key.str()));
          ++counts.refused_passphrase;
        } else if (Clock::now() - it->second.at > 5s) {
          lost.push_back("srt: refused " + it->second.address + ": the handshake for " +
                         it->second.key.str() + " did not complete (it went silent)");
          ++counts.handshake_failed;
        } else {
          ++it;
          continue;
        }
        ++counts.refused;
        counts.last_refusal = lost.back();
        it = pending.erase(it);
      }
    }
    for (const auto& l : lost) log(l, true);
    finished.clear();  // joins
    if (!lost.empty()) changed.notify_all();
  }
};

SrtServer::SrtServer(SrtServerSettings settings) : impl_(std::make_unique<Impl>()) {
  static std::once_flag once;
  std::call_once(once, [] {
    GST_DEBUG_CATEGORY_INIT(arcly_srt_egress_debug, "arclysrtserver", 0, "arcly SRT server");
  });
  validate(settings);
  impl_->settings = std::move(settings);
}

SrtServer::~SrtServer() {
  stop();
}

const SrtServerSettings& SrtServer::settings() const {
  return impl_->settings;
}

void SrtServer::start() {
  if (impl_->listener != SRT_INVALID_SOCK) return;
  const SrtServerSettings& s = impl_->settings;
  impl_->engine = gst::engine_for(s.engine);
  srt_startup();
  const std::string where =
      (s.host.empty() ? std::string("0.0.0.0") : s.host) + ":" + std::to_string(s.port);
  const auto fail = [&](const std::string& what) {
    const std::string msg =
        "srt: cannot listen on " + where + ": " + what + ": " + srt_getlasterror_str();
    if (impl_->listener != SRT_INVALID_SOCK) srt_close(impl_->listener);
    impl_->listener = SRT_INVALID_SOCK;
    srt_cleanup();
    return Error(Errc::Io, msg);
  };
  sockaddr_storage addr{};
  int addr_len = 0;
  if (s.host.find(':') != std::string::npos) {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&addr);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(s.port));
    if (inet_pton(AF_INET6, s.host.c_str(), &in6->sin6_addr) != 1)
      throw Error(Errc::InvalidArgument, "srt: host '" + s.host + "' is not an IP address");
    addr_len = sizeof(sockaddr_in6);
  } else {
    auto* in = reinterpret_cast<sockaddr_in*>(&addr);
    in->sin_family = AF_INET;
    in->sin_port = htons(static_cast<uint16_t>(s.port));
    if (s.host.empty())
      in->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, s.host.c_str(), &in->sin_addr) != 1)
      throw Error(Errc::InvalidArgument, "srt: host '" + s.host + "' is not an IP address");
    addr_len = sizeof(sockaddr_in);
  }
  impl_->listener = srt_create_socket();
  if (impl_->listener == SRT_INVALID_SOCK) throw fail("socket");
  if (!s.passphrase.empty() &&
      srt_setsockflag(impl_->listener, SRTO_PASSPHRASE, s.passphrase.c_str(),
                      static_cast<int>(s.passphrase.size())) == SRT_ERROR)
    throw fail("passphrase");
  if (s.pbkeylen) srt_setsockflag(impl_->listener, SRTO_PBKEYLEN, &s.pbkeylen, sizeof s.pbkeylen);
  if (s.latency_ms >= 0)
    srt_setsockflag(impl_->listener, SRTO_LATENCY, &s.latency_ms, sizeof s.latency_ms);
  if (srt_bind(impl_->listener, reinterpret_cast<sockaddr*>(&addr), addr_len) == SRT_ERROR)
    throw fail("bind");
  if (srt_listen_callback(impl_->listener, &Impl::on_listen, impl_.get()) == SRT_ERROR)
    throw fail("callback");
  if (srt_listen(impl_->listener, 64) == SRT_ERROR) throw fail("listen");
  sockaddr_storage bound{};
  int bound_len = sizeof bound;
  srt_getsockname(impl_->listener, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  impl_->port = bound.ss_family == AF_INET6
                    ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                    : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  impl_->accept_thread = std::jthread([this](std::stop_token st) { impl_->accept_loop(st); });
  impl_->log(
      "srt: serving on " + where.substr(0, where.rfind(':')) + ":" + std::to_string(impl_->port),
      false);
}

void SrtServer::stop() {
  if (impl_->listener == SRT_INVALID_SOCK) return;
  impl_->accept_thread.request_stop();
  impl_->accept_thread.join();
  srt_close(impl_->listener);
  impl_->listener = SRT_INVALID_SOCK;
  std::map<SRTSOCKET, std::unique_ptr<Impl::Session>> sessions;
  {
    std::lock_guard lock(impl_->mutex);
    sessions.swap(impl_->sessions);
    impl_->pending.clear();
  }
  for (auto& [s, sess] : sessions) sess->thread.request_stop();
  sessions.clear();  // joins; each session closes its socket
  srt_cleanup();
}

int SrtServer::port() const {
  return impl_->port;
}

SrtServerStats SrtServer::stats() const {
  std::lock_guard lock(impl_->mutex);
  SrtServerStats out = impl_->counts;
  for (const auto& [s, sess] : impl_->sessions) {
    if (sess->done) continue;
    (sess->mode == "publish" ? out.publishers : out.readers)++;
    out.sessions.push_back({sess->key, sess->address, sess->mode,
                            sess->mode == "publish" ? "" : reader_start_name(sess->start),
                            sess->bytes.load(), sess->lost_chunks.load() + sess->late_drops.load(),
                            sess->lag_ms.load()});
  }
  return out;
}

bool SrtServer::wait_for(const std::function<bool(const SrtServerStats&)>& pred,
                         std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred(stats())) return true;
    std::unique_lock lock(impl_->mutex);
    impl_->changed.wait_for(lock, 50ms);
  }
  return pred(stats());
}

}  // namespace arcly::egress
