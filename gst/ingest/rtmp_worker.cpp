// RtmpWorker (see rtmp_worker.hpp).
#include "rtmp_worker.hpp"

#include <gst/gst.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <optional>
#include <variant>

#include "arcly/error.hpp"
#include "arcly/tcp_server.hpp"
#include "rtmp/flv.hpp"
#include "rtmp/session.hpp"
#include "stream_id.hpp"
#include "track_publisher.hpp"

GST_DEBUG_CATEGORY_STATIC(arcly_rtmp_debug);
#define GST_CAT_DEFAULT arcly_rtmp_debug

namespace arcly::ingest {

namespace {

using Clock = std::chrono::steady_clock;

std::string_view before_query(std::string_view s) {
  return s.substr(0, s.find('?'));
}

// The value of `name` in the query part of `s` ("x?a=1&token=t"), if any.
std::optional<std::string_view> query_param(std::string_view s, std::string_view name) {
  const auto q = s.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view rest = s.substr(q + 1);
  while (!rest.empty()) {
    const auto amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    }
  }
  return std::nullopt;
}

// Compares secrets in time independent of where they differ.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

// RTMP timestamps are 32-bit milliseconds; extended across the wrap.
class Timestamps {
 public:
  // Engine time (gst/engine_time.hpp) of an RTMP timestamp: the sender's
  // timeline (32-bit ms, wrapping) placed on the monotonic clock at its first
  // frame, the sender's spacing from there.
  std::int64_t ns(std::uint32_t ms) {
    const std::int64_t rel = relative_ns(ms);
    if (!origin_) {
      origin_ =
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
              .count() -
          rel;
    }
    return *origin_ + rel;
  }

 private:
  std::int64_t relative_ns(std::uint32_t ms) {
    if (have_ && ms < last_ && last_ - ms > 0x80000000u) base_ += std::int64_t{1} << 32;
    if (have_ && ms > last_ && ms - last_ > 0x80000000u && base_ > 0) {
      return (base_ - (std::int64_t{1} << 32) + ms) * 1'000'000;  // a late one from before the wrap
    }
    have_ = true;
    last_ = ms;
    return (base_ + ms) * 1'000'000;
  }

  bool have_ = false;
  std::uint32_t last_ = 0;
  std::int64_t base_ = 0;
  std::optional<std::int64_t> origin_;
};

GstBuffer* buffer_of(std::span<const std::uint8_t> bytes) {
  return gst_buffer_new_memdup(bytes.data(), bytes.size());
}

}  // namespace

RtmpWorker::RtmpWorker(RtmpSettings settings) : settings_(std::move(settings)) {
  static std::once_flag once;
  std::call_once(once, [] {
    GST_DEBUG_CATEGORY_INIT(arcly_rtmp_debug, "arclyrtmp", 0, "arcly RTMP ingest worker");
  });
  auto bad = [&](const std::string& what) {
    throw Error(Errc::InvalidArgument, "rtmp '" + settings_.name + "': " + what);
  };
  try {
    ListenAddress::parse(settings_.listen);
  } catch (const Error& e) {
    bad(e.what());
  }
  if (settings_.max_connections == 0) bad("max_connections must be at least 1");
  if (settings_.handshake_timeout.count() <= 0) bad("handshake_timeout must be positive");
  if (settings_.idle_timeout.count() <= 0) bad("idle_timeout must be positive");
  for (const auto& p : settings_.allow) {
    if (p.empty()) bad("an empty allow pattern");
  }
  for (const auto& [p, t] : settings_.tokens) {
    if (p.empty()) bad("a token for an empty key pattern");
    if (t.empty()) bad("an empty token for keys " + p);
  }
}

RtmpStats RtmpWorker::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::string RtmpWorker::vet(std::string_view app, std::string_view name, std::string_view tc_url,
                            std::optional<StreamKey>& key) const {
  const std::string asked = std::string(before_query(app)) + "/" + std::string(before_query(name));
  if (settings_.key) {
    key = settings_.key;
  } else {
    std::string why;
    key = StreamKey::try_parse(asked, &why);
    if (!key) return "invalid stream key '" + asked + "': " + why;
  }
  const std::string k = key->str();
  if (std::none_of(settings_.allow.begin(), settings_.allow.end(),
                   [&](const std::string& p) { return key_matches(p, k); })) {
    return "stream " + k + " is not in the allowed keys";
  }
  std::string_view token;
  if (auto t = query_param(name, "token")) {
    token = *t;
  } else if (auto ta = query_param(app, "token")) {
    token = *ta;
  } else if (auto tu = query_param(tc_url, "token")) {
    token = *tu;
  }
  for (const auto& [pattern, required] : settings_.tokens) {
    if (key_matches(pattern, k) && !same_secret(token, required)) {
      return "wrong or missing token for stream " + k;
    }
  }
  return {};
}

// One connection's state, on its handler's stack.
class RtmpWorker::Connection {
 public:
  Connection(RtmpWorker& worker, const IngestContext& ctx, TcpConnection& conn)
      : w_(worker), ctx_(ctx), conn_(conn) {}

  void run() {
    const auto deadline = Clock::now() + w_.settings_.handshake_timeout;
    std::array<std::uint8_t, 64 * 1024> buf{};
    bool idle_armed = false;
    for (;;) {
      if (!publish_) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
          throw Error(Errc::Timeout, "did not publish within " +
                                         std::to_string(w_.settings_.handshake_timeout.count()) +
                                         " ms");
        }
        conn_.set_read_timeout(std::max(left, std::chrono::milliseconds(1)));
      } else if (!idle_armed) {
        conn_.set_read_timeout(w_.settings_.idle_timeout);
        idle_armed = true;
      }
      const std::size_t n = conn_.read_some(buf);
      if (n == 0) return;  // the peer closed (or vanished), or we are stopping
      std::span<const std::uint8_t> in(buf.data(), n);
      do {  // again after a publish was answered: the bytes behind it wait in the session
        auto events = session_.feed(std::exchange(in, {}));
        bool done = false;
        for (auto& ev : events) done = on_event(ev) || done;
        if (session_.has_output()) {
          const auto out = session_.take_output();
          conn_.write_all(out);
        }
        if (done) return;
      } while (session_.paused());
    }
  }

  ~Connection() {
    if (publish_) {
      GST_INFO("%s: %s stopped publishing %s", w_.settings_.name.c_str(), conn_.peer().c_str(),
               publish_->key().str().c_str());
      publish_.reset();
      w_.update([](RtmpStats& s) { --s.live; });
    }
  }

 private:
  // Returns true when the connection should end (after the replies are sent).
  bool on_event(rtmp::Event& ev) {
    if (auto* c = std::get_if<rtmp::ConnectEvent>(&ev)) {
      app_ = std::move(c->app);
      tc_url_ = std::move(c->tc_url);
      return false;
    }
    if (auto* p = std::get_if<rtmp::PublishEvent>(&ev)) return on_publish(*p);
    if (auto* m = std::get_if<rtmp::MediaEvent>(&ev)) {
      on_media(*m);
      return false;
    }
    if (std::holds_alternative<rtmp::UnpublishEvent>(ev)) return true;
    return false;  // metadata: the tracks' caps carry what subscribers need
  }

  bool on_publish(const rtmp::PublishEvent& p) {
    std::optional<StreamKey> key;
    std::string why = w_.vet(app_, p.name, tc_url_, key);
    const char* code = "NetStream.Publish.Denied";
    if (why.empty()) {
      try {
        publish_.emplace(ctx_.open_publish(*key));
      } catch (const Error& e) {
        why = e.what();
        if (e.code() == Errc::StreamAlreadyPublishing) code = "NetStream.Publish.BadName";
      }
    } else if (why.starts_with("invalid")) {
      code = "NetStream.Publish.BadName";
    }
    if (!why.empty()) {
      GST_WARNING("%s: refused publisher %s: %s", w_.settings_.name.c_str(), conn_.peer().c_str(),
                  why.c_str());
      session_.reject_publish(code, why);
      w_.update([&](RtmpStats& s) {
        ++s.refused;
        s.last_refusal = why;
      });
      return true;
    }
    GST_INFO("%s: %s publishes %s", w_.settings_.name.c_str(), conn_.peer().c_str(),
             key->str().c_str());
    session_.accept_publish();
    w_.update([](RtmpStats& s) {
      ++s.publishes;
      ++s.live;
    });
    return false;
  }

  void on_media(rtmp::MediaEvent& m) {
    const std::int64_t dts = clock_.ns(m.timestamp);
    const std::size_t size = m.payload.size();
    std::optional<MediaFrame> frame;
    std::optional<MediaFrame> config;
    if (m.type == rtmp::kVideo) {
      const auto tag = rtmp::parse_video_tag(m.payload);
      const std::int64_t pts = dts + std::int64_t{tag.composition_ms} * 1'000'000;
      if (tag.codec == rtmp::VideoCodec::Other) {
        drop();
        return;
      }
      const CodecId codec = tag.codec == rtmp::VideoCodec::H264 ? CodecId::H264 : CodecId::H265;
      if (tag.sequence_header) {
        const auto record = std::span(m.payload).subspan(tag.data_offset);
        if (record.empty()) return;
        GstBuffer* codec_data = buffer_of(record);
        GstCaps* caps =
            codec == CodecId::H264
                ? gst_caps_new_simple("video/x-h264", "stream-format", G_TYPE_STRING, "avc",
                                      "alignment", G_TYPE_STRING, "au", "codec_data",
                                      GST_TYPE_BUFFER, codec_data, nullptr)
                : gst_caps_new_simple("video/x-h265", "stream-format", G_TYPE_STRING, "hvc1",
                                      "alignment", G_TYPE_STRING, "au", "codec_data",
                                      GST_TYPE_BUFFER, codec_data, nullptr);
        gst_buffer_unref(codec_data);
        config = video_.on_caps(caps, pts);
        gst_caps_unref(caps);
      } else if (!tag.end_of_sequence && video_.has_caps() && m.payload.size() > tag.data_offset) {
        const std::size_t offset = tag.data_offset;
        Bytes all = Bytes::from_vector(std::move(m.payload));
        frame = MediaFrame::video(pts, dts, all.slice(offset, all.size() - offset), codec,
                                  tag.keyframe, video_.track());
      }
    } else {
      const auto tag = rtmp::parse_audio_tag(m.payload);
      if (tag.codec != rtmp::AudioCodec::AAC) {
        drop();
        return;
      }
      if (tag.sequence_header) {
        const auto asc = std::span(m.payload).subspan(tag.data_offset);
        const auto cfg = rtmp::parse_aac_config(asc);
        if (!cfg) {
          drop();
          return;
        }
        GstBuffer* codec_data = buffer_of(asc);
        GstCaps* caps = gst_caps_new_simple(
            "audio/mpeg", "mpegversion", G_TYPE_INT, 4, "stream-format", G_TYPE_STRING, "raw",
            "rate", G_TYPE_INT, cfg->rate, "channels", G_TYPE_INT, cfg->channels, "codec_data",
            GST_TYPE_BUFFER, codec_data, nullptr);
        gst_buffer_unref(codec_data);
        config = audio_.on_caps(caps, dts);
        gst_caps_unref(caps);
      } else if (audio_.has_caps() && m.payload.size() > tag.data_offset) {
        const std::size_t offset = tag.data_offset;
        Bytes all = Bytes::from_vector(std::move(m.payload));
        frame = MediaFrame::audio(dts, all.slice(offset, all.size() - offset), CodecId::AAC,
                                  audio_.track());
      }
    }
    if (!publish_) return;
    std::uint64_t frames = 0;
    if (config) {
      publish_->publish_frame(std::move(*config));
      ++frames;
    }
    if (frame) {
      publish_->publish_frame(std::move(*frame));
      ++frames;
    }
    frames_ += frames;
    bytes_ += size;
    if (++since_update_ >= 64) flush_stats();  // stats in batches: the media path stays lock-light
  }

  void flush_stats() {
    const std::uint64_t f = std::exchange(frames_, 0), b = std::exchange(bytes_, 0);
    since_update_ = 0;
    w_.update([&](RtmpStats& s) {
      s.frames += f;
      s.bytes += b;
    });
  }

  void drop() {
    w_.update([](RtmpStats& s) { ++s.dropped_tags; });
  }

 public:
  void finish_stats() { flush_stats(); }

 private:
  RtmpWorker& w_;
  const IngestContext& ctx_;
  TcpConnection& conn_;
  rtmp::ServerSession session_;
  std::string app_;
  std::string tc_url_;
  std::optional<PublishSession> publish_;
  gst::TrackPublisher video_{0};
  gst::TrackPublisher audio_{1};
  Timestamps clock_;
  std::uint64_t frames_ = 0;
  std::uint64_t bytes_ = 0;
  unsigned since_update_ = 0;
};

void RtmpWorker::serve(IngestContext ctx, std::stop_token stop) {
  TcpServerOptions options;
  options.max_connections = settings_.max_connections;
  options.on_rejected = [this](const std::string& peer) {
    GST_WARNING("%s: %s refused: %zu connections already", settings_.name.c_str(), peer.c_str(),
                settings_.max_connections);
    update([](RtmpStats& s) { ++s.over_limit; });
  };
  options.on_accept_starved = [this](const std::string& what) {
    // Once per shortage: the loop waits for a descriptor instead of spinning.
    GST_WARNING("%s: %s", settings_.name.c_str(), what.c_str());
    update([](RtmpStats& s) { ++s.accept_starved; });
  };
  options.on_handler_error = [this](const std::string& peer, const std::string& what) {
    GST_WARNING("%s: connection %s failed: %s", settings_.name.c_str(), peer.c_str(), what.c_str());
  };
  std::optional<TcpServer> server;
  try {
    server.emplace(settings_.listen, options);
  } catch (const Error& e) {
    update([&](RtmpStats& s) { s.listen_error = e.what(); });
    throw;
  }
  GST_INFO("%s: listening on %s", settings_.name.c_str(), server->address().c_str());
  update([&](RtmpStats& s) {
    s.listening = true;
    s.port = server->port();
  });

  server->run(stop, [&](TcpConnection& conn) {
    update([](RtmpStats& s) { ++s.connections; });
    Connection c(*this, ctx, conn);
    try {
      c.run();
    } catch (const rtmp::ProtocolError& e) {
      GST_WARNING("%s: %s broke the protocol: %s", settings_.name.c_str(), conn.peer().c_str(),
                  e.what());
      update([](RtmpStats& s) { ++s.protocol_errors; });
    } catch (const Error& e) {
      if (e.code() == Errc::Timeout) {
        GST_WARNING("%s: %s timed out: %s", settings_.name.c_str(), conn.peer().c_str(), e.what());
        update([](RtmpStats& s) { ++s.timeouts; });
      } else {
        GST_INFO("%s: %s ended: %s", settings_.name.c_str(), conn.peer().c_str(), e.what());
      }
    }
    c.finish_stats();
  });
  update([](RtmpStats& s) { s.listening = false; });
}

}  // namespace arcly::ingest
