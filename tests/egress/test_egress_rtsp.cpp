// The RTSP server against real clients: GStreamer rtspsrc in this process,
// ffprobe/ffmpeg as external processes, raw RTSP requests for status codes; the
// stream comes from a real x264enc publisher through arclysink.
#include <condition_variable>
#include <mutex>
#include <random>
#include <set>

#include "egress_helpers.hpp"
#include "engine_time.hpp"
#include "media_threads.hpp"
#include "rtsp_server.hpp"

using namespace std::chrono_literals;
using namespace egress_testing;
using arcly::egress::RtspServer;
using arcly::egress::RtspServerSettings;
using arcly::egress::RtspServerStats;
using arcly::egress::RtspUser;

namespace {

RtspServerSettings open_settings() {
  RtspServerSettings s;
  s.host = "127.0.0.1";
  s.port = 0;
  s.anonymous_read = {"*"};
  return s;
}

std::string url(const RtspServer& server, const std::string& path) {
  return "rtsp://127.0.0.1:" + std::to_string(server.port()) + path;
}

// rtspsrc -> depay -> decoder (no corrupt pictures) -> appsink; remembers
// whether the first depayloaded access unit was a keyframe.
class Viewer {
 public:
  Viewer(const std::string& location, const std::string& protocols, const std::string& extra = "") {
    pipeline_ =
        launch("rtspsrc name=src latency=0 location=\"" + location + "\" protocols=" + protocols +
               " " + extra +
               " src. ! rtph264depay name=depay ! h264parse ! avdec_h264 "
               "output-corrupt=false ! appsink name=out sync=false wait-on-eos=false max-buffers=8 "
               "drop=true");
    GstElement* depay = gst_bin_get_by_name(GST_BIN(pipeline_), "depay");
    GstPad* pad = gst_element_get_static_pad(depay, "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, &Viewer::on_buffer, this, nullptr);
    gst_object_unref(pad);
    gst_object_unref(depay);
    sink_ = gst_bin_get_by_name(GST_BIN(pipeline_), "out");
    ck_assert(gst_element_set_state(pipeline_, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  }
  ~Viewer() { stop(); }
  void stop() {
    if (sink_) gst_object_unref(sink_);
    sink_ = nullptr;
    stop_pipeline(pipeline_);
  }
  // A decoded picture's width, or -1 if none came within 20 s.
  int picture_width() {
    GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink_), 20 * GST_SECOND);
    if (!s) return -1;
    gint w = -1;
    gst_structure_get_int(gst_caps_get_structure(gst_sample_get_caps(s), 0), "width", &w);
    gst_sample_unref(s);
    return w;
  }
  int first_is_keyframe() const { return first_.load(); }
  // Whether the reader ends with EOS within 20 s (not an error, not nothing).
  bool ends_with_eos() {
    GstBus* bus = gst_element_get_bus(pipeline_);
    GstMessage* m = gst_bus_timed_pop_filtered(
        bus, 20 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
    gst_object_unref(bus);
    const bool eos = m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_EOS;
    if (m) gst_message_unref(m);
    return eos;
  }
  GstElement* pipeline() const { return pipeline_; }

 private:
  static GstPadProbeReturn on_buffer(GstPad*, GstPadProbeInfo* info, gpointer self) {
    auto* v = static_cast<Viewer*>(self);
    const bool key =
        !GST_BUFFER_FLAG_IS_SET(GST_PAD_PROBE_INFO_BUFFER(info), GST_BUFFER_FLAG_DELTA_UNIT);
    int unknown = -1;
    v->first_.compare_exchange_strong(unknown, key ? 1 : 0);
    return GST_PAD_PROBE_OK;
  }
  GstElement* pipeline_ = nullptr;
  GstElement* sink_ = nullptr;
  std::atomic<int> first_{-1};
};

bool readers_are(RtspServer& server, std::size_t n) {
  return server.wait_for([n](const RtspServerStats& s) { return s.readers == n; }, 20s);
}

// The first decoded picture whose capture time the client knows (rtspsrc
// add-reference-timestamp-meta: `timestamp/x-ntp`, from the server's SRs): how
// long before its arrival the frame was captured, by this host's wall clock.
class CaptureDelay {
 public:
  explicit CaptureDelay(Viewer& v) {
    GstElement* sink = gst_bin_get_by_name(GST_BIN(v.pipeline()), "out");
    GstPad* pad = gst_element_get_static_pad(sink, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, &CaptureDelay::on_buffer, this, nullptr);
    gst_object_unref(pad);
    gst_object_unref(sink);
  }
  // ns; fails the test if no picture had a capture time within 15 s.
  std::int64_t wait() {
    std::unique_lock lock(mutex_);
    ck_assert_msg(changed_.wait_for(lock, 15s, [this] { return have_; }),
                  "no decoded picture carried timestamp/x-ntp");
    return delay_ns_;
  }

 private:
  static GstPadProbeReturn on_buffer(GstPad*, GstPadProbeInfo* info, gpointer data) {
    auto* self = static_cast<CaptureDelay*>(data);
    const std::int64_t capture = ingest_testing::ntp_meta_unix_ns(GST_PAD_PROBE_INFO_BUFFER(info));
    if (capture < 0) return GST_PAD_PROBE_OK;
    const std::int64_t now = g_get_real_time() * GST_USECOND;
    std::lock_guard lock(self->mutex_);
    if (!self->have_) {
      self->delay_ns_ = now - capture;
      self->have_ = true;
      self->changed_.notify_all();
    }
    return GST_PAD_PROBE_REMOVE;
  }
  std::mutex mutex_;
  std::condition_variable changed_;
  bool have_ = false;
  std::int64_t delay_ns_ = 0;
};

// The engine time (CLOCK_MONOTONIC ns) of the keyframe a reader joining now starts at.
std::int64_t cached_keyframe_pts(const std::string& key) {
  auto stream = arcly::gst::engine_for("default")->get_stream(arcly::StreamKey::parse(key));
  auto sub = stream->subscribe({arcly::StartAt::Keyframe, {}, true});
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  for (;;) {
    auto r = sub.recv(deadline);
    ck_assert(r.status == arcly::RecvStatus::Frame);
    if (!r.frame->is_config() && r.frame->kind == arcly::MediaKind::Video) return r.frame->pts;
  }
}

// An RTSP/TCP reader over a raw socket: DESCRIBE, SETUP of stream=0 and PLAY;
// the test then reads its socket, or never does (`receive_buffer` tiny: its TCP
// window closes at once).
class RawReader {
 public:
  RawReader(int port, const std::string& path, int receive_buffer = 0) {
    fd_ = connect_loopback(port, receive_buffer);
    ck_assert(fd_ >= 0);
    const std::string base = "rtsp://127.0.0.1:" + std::to_string(port) + path;
    ck_assert_int_eq(rtsp_status(request("DESCRIBE " + base + " RTSP/1.0\r\nCSeq: 1\r\n\r\n")),
                     200);
    const std::string setup = request("SETUP " + base +
                                      "/stream=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: "
                                      "RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n");
    ck_assert_msg(rtsp_status(setup) == 200, "SETUP: %s", setup.c_str());
    const auto at = setup.find("Session: ");
    ck_assert(at != std::string::npos);
    const std::string session = setup.substr(at + 9, setup.find_first_of(";\r", at + 9) - at - 9);
    const std::string play =
        "PLAY " + base + " RTSP/1.0\r\nCSeq: 3\r\nSession: " + session + "\r\n\r\n";
    ck_assert(send(fd_, play.data(), play.size(), MSG_NOSIGNAL) ==
              static_cast<ssize_t>(play.size()));
  }
  ~RawReader() { close(fd_); }
  RawReader(const RawReader&) = delete;
  RawReader& operator=(const RawReader&) = delete;
  int fd() const { return fd_; }

 private:
  // Sends a request, reads its response head and body.
  std::string request(const std::string& text) {
    ck_assert(send(fd_, text.data(), text.size(), MSG_NOSIGNAL) ==
              static_cast<ssize_t>(text.size()));
    std::string in = read_head(fd_, 20s);
    const std::size_t end = in.find("\r\n\r\n");
    ck_assert(end != std::string::npos);
    std::size_t length = 0;
    if (auto at = in.find("Content-Length: "); at != std::string::npos && at < end)
      length = std::strtoul(in.c_str() + at + 16, nullptr, 10);
    char buf[1024];
    while (in.size() < end + 4 + length) {
      const ssize_t n = recv(fd_, buf, std::min(sizeof buf, end + 4 + length - in.size()), 0);
      if (n <= 0) break;
      in.append(buf, static_cast<std::size_t>(n));
    }
    return in.substr(0, end);
  }
  int fd_ = -1;
};

// A started server with the given settings, whose log lines the test reads.
struct LoggedServer {
  LogLines log;
  RtspServer server;
  explicit LoggedServer(RtspServerSettings s) : server(with_log(std::move(s), log)) {
    server.start();
  }
};

}  // namespace

// Joining in the middle of a 10 s GOP, the first access unit a TCP reader gets is
// the cached keyframe, and it decodes to a picture.
START_TEST(rtspsrc_over_tcp_starts_with_the_cached_keyframe) {
  Publisher pub("live/cam");
  pub.wait_frames(45);
  RtspServer server(open_settings());
  server.start();
  Viewer v(url(server, "/live/cam"), "tcp");
  ck_assert_int_eq(v.picture_width(), 320);
  ck_assert_int_eq(v.first_is_keyframe(), 1);
  ck_assert(readers_are(server, 1));
  auto st = server.stats();
  ck_assert_str_eq(st.reader_list.at(0).transport.c_str(), "tcp");
  ck_assert_str_eq(st.reader_list.at(0).key.c_str(), "live/cam");
  ck_assert_str_eq(st.reader_list.at(0).address.c_str(), "127.0.0.1");
  ck_assert_str_eq(st.reader_list.at(0).start.c_str(), "live-edge");
  ck_assert(server.wait_for(
      [](const RtspServerStats& s) {
        return !s.reader_list.empty() && s.reader_list[0].bytes > 1000;
      },
      20s));
  v.stop();
  ck_assert(readers_are(server, 0));
}
END_TEST

START_TEST(rtspsrc_over_udp_with_start_keyframe) {
  Publisher pub("live/udp");
  pub.wait_frames(45);
  RtspServer server(open_settings());
  server.start();
  Viewer v(url(server, "/live/udp?start=keyframe"), "udp");
  ck_assert_int_eq(v.picture_width(), 320);
  ck_assert_int_eq(v.first_is_keyframe(), 1);
  ck_assert(readers_are(server, 1));
  auto st = server.stats();
  ck_assert_str_eq(st.reader_list.at(0).transport.c_str(), "udp");
  ck_assert_str_eq(st.reader_list.at(0).start.c_str(), "keyframe");
}
END_TEST

START_TEST(ffprobe_and_ffmpeg_read_audio_and_video) {
  Publisher pub("live/av", true);
  pub.wait_frames(20);
  RtspServer server(open_settings());
  server.start();
  int rc = -1;
  const std::string probe =
      run("ffprobe -v error -rtsp_transport tcp -show_entries stream=codec_name,width,height "
          "-of csv=p=0 '" +
              url(server, "/live/av") + "'",
          &rc);
  ck_assert_msg(rc == 0, "ffprobe failed: %s", probe.c_str());
  ck_assert_msg(probe.find("h264,320,240") != std::string::npos, "ffprobe: %s", probe.c_str());
  ck_assert_msg(probe.find("aac") != std::string::npos, "ffprobe: %s", probe.c_str());
  // ffmpeg decodes pictures over UDP, with the query form of the URL.
  const std::string frames =
      run("ffmpeg -v error -rtsp_transport udp -i '" + url(server, "/live/av?start=live-edge") +
              "' -map 0:v -frames:v 10 -f framemd5 -",
          &rc);
  ck_assert_msg(rc == 0, "ffmpeg failed: %s", frames.c_str());
  int lines = 0;
  for (std::size_t p = 0; (p = frames.find("\n0,", p)) != std::string::npos; ++p) ++lines;
  ck_assert_int_ge(lines, 9);
}
END_TEST

// Every codec the server has a payloader for reaches a real client, decodable: the
// SDP and the packets carry what ffprobe and ffmpeg need. The four publishers also
// cover both ways a track is payloaded: as published (H.265, H.264 in avc form,
// Opus, MJPEG, G.711) and through a parser where the payloader cannot take the
// published form (ADTS AAC, which rtpmp4gpay takes only as raw AAC).
START_TEST(every_offered_codec_reaches_ffprobe_and_decodes) {
  const std::string camera =
      "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! ";
  const std::string x264 = "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! ";
  const std::string tone = "audiotestsrc is-live=true ! audio/x-raw,rate=";
  struct Case {
    std::string key, line, video, audio;
  };
  const Case cases[] = {
      {"codec/hevc",
       camera +
           "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! h265parse ! "
           "arclysink name=pub stream=codec/hevc " +
           tone + "48000,channels=1 ! opusenc ! pub.",
       "hevc", "opus"},
      {"codec/mjpeg",
       // RFC 2435 carries 4:2:0 and 4:2:2 JPEG only (videotestsrc would pick 4:4:4).
       "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1,"
       "format=I420 ! jpegenc ! arclysink name=pub stream=codec/mjpeg " +
           tone + "8000,channels=1 ! alawenc ! pub.",
       "mjpeg", "pcm_alaw"},
      {"codec/avc",
       camera + x264 +
           "h264parse ! video/x-h264,stream-format=avc,alignment=au ! "
           "arclysink name=pub stream=codec/avc " +
           tone + "8000,channels=1 ! mulawenc ! pub.",
       "h264", "pcm_mulaw"},
      {"codec/adts",
       camera + x264 + "h264parse ! arclysink name=pub stream=codec/adts " + tone +
           "48000,channels=1 ! avenc_aac ! aacparse ! audio/mpeg,stream-format=adts ! pub.",
       "h264", "aac"},
  };
  RtspServer server(open_settings());
  server.start();
  for (const Case& c : cases) {
    Publisher pub(c.key, Publisher::Line{c.line});
    pub.wait_frames(10);
    const std::string where = url(server, "/" + c.key);
    int rc = -1;
    const std::string probe =
        run("ffprobe -v error -rtsp_transport tcp -show_entries "
            "stream=codec_name -of csv=p=0 '" +
                where + "'",
            &rc);
    ck_assert_msg(rc == 0, "%s: ffprobe failed: %s", c.key.c_str(), probe.c_str());
    ck_assert_msg(probe.find(c.video + "\n") != std::string::npos &&
                      probe.find(c.audio + "\n") != std::string::npos,
                  "%s: expected %s and %s, ffprobe says: %s", c.key.c_str(), c.video.c_str(),
                  c.audio.c_str(), probe.c_str());
    const std::string frames = run(
        "ffmpeg -v error -rtsp_transport tcp -i '" + where + "' -map 0:v -frames:v 5 -f framemd5 -",
        &rc);
    ck_assert_msg(rc == 0, "%s: ffmpeg failed: %s", c.key.c_str(), frames.c_str());
    int pictures = 0;
    for (std::size_t p = 0; (p = frames.find("\n0,", p)) != std::string::npos; ++p) ++pictures;
    ck_assert_msg(pictures >= 4, "%s: %d pictures decoded: %s", c.key.c_str(), pictures,
                  frames.c_str());
  }
}
END_TEST

START_TEST(unknown_keys_get_404_and_a_bad_start_400) {
  Publisher pub("live/known");
  pub.wait_frames(5);
  LoggedServer logged(open_settings());
  auto& [log, server] = logged;
  ck_assert_int_eq(rtsp_status(rtsp_exchange(server.port(), describe(server.port(), "/live/none"))),
                   404);
  ck_assert_int_eq(rtsp_status(rtsp_exchange(server.port(), describe(server.port(), "/nokey"))),
                   404);
  ck_assert_int_eq(
      rtsp_status(rtsp_exchange(server.port(), describe(server.port(), "/live/known?start=soon"))),
      400);
  ck_assert_int_eq(
      rtsp_status(rtsp_exchange(server.port(), describe(server.port(), "/live/known"))), 200);
  const auto st = server.stats();
  ck_assert_uint_eq(st.refused_not_found, 2);
  ck_assert_uint_eq(st.refused_bad_request, 1);
  ck_assert_int_eq(log.count("refused 127.0.0.1: 404 stream live/none is not published"), 1);
  ck_assert_int_eq(log.count("404 path 'nokey' is no stream key"), 1);
}
END_TEST

// With wait=, a reader that comes before its publisher is served when it arrives.
START_TEST(a_reader_before_the_publisher_waits_for_it) {
  auto s = open_settings();
  s.wait = 15000ms;
  RtspServer server(s);
  server.start();
  std::string head;
  std::thread t(
      [&] { head = rtsp_exchange(server.port(), describe(server.port(), "/live/later")); });
  Publisher pub("live/later");
  t.join();
  ck_assert_int_eq(rtsp_status(head), 200);
  ck_assert_msg(head.find("Content-Base") != std::string::npos, "%s", head.c_str());
}
END_TEST

START_TEST(users_authenticate_with_basic_and_digest_and_read_their_keys) {
  Publisher pub("live/door");
  pub.wait_frames(45);
  auto s = open_settings();
  s.anonymous_read = {};
  s.users = {RtspUser{"alice", "alice-secret-1", {"live/*"}},
             RtspUser{"bob", "bob-secret-2", {"yard/*"}}};
  LoggedServer logged(s);
  auto& [log, server] = logged;
  const int port = server.port();
  // No credentials: the challenge offers both schemes, and is no refusal.
  const std::string challenge = rtsp_exchange(port, describe(port, "/live/door"));
  ck_assert_int_eq(rtsp_status(challenge), 401);
  ck_assert(challenge.find("Basic realm=\"arcly\"") != std::string::npos);
  ck_assert(challenge.find("Digest realm=\"arcly\"") != std::string::npos);
  ck_assert_uint_eq(server.stats().refused_unauthorized, 0);
  // Wrong password: 401, logged with the peer and without the credentials.
  gchar* wrong = g_base64_encode(reinterpret_cast<const guchar*>("alice:not-the-secret"), 20);
  const std::string wrong_header = std::string("Authorization: Basic ") + wrong + "\r\n";
  ck_assert_int_eq(rtsp_status(rtsp_exchange(port, describe(port, "/live/door", wrong_header))),
                   401);
  ck_assert_uint_eq(server.stats().refused_unauthorized, 1);
  ck_assert_int_eq(log.count("refused 127.0.0.1: 401 wrong credentials for live/door"), 1);
  ck_assert_int_eq(log.count("not-the-secret"), 0);
  ck_assert_int_eq(log.count(wrong), 0);
  g_free(wrong);
  // Bob may read yard/* only: 403.
  gchar* bob = g_base64_encode(reinterpret_cast<const guchar*>("bob:bob-secret-2"), 16);
  ck_assert_int_eq(
      rtsp_status(rtsp_exchange(
          port, describe(port, "/live/door", std::string("Authorization: Basic ") + bob + "\r\n"))),
      403);
  g_free(bob);
  ck_assert_uint_eq(server.stats().refused_forbidden, 1);
  ck_assert_int_eq(log.count("bob-secret-2"), 0);
  // Alice with rtspsrc (which answers the challenge itself).
  {
    Viewer v(url(server, "/live/door"), "tcp", "user-id=alice user-pw=alice-secret-1");
    ck_assert_int_eq(v.picture_width(), 320);
  }
  // ffprobe with credentials in the URL.
  int rc = -1;
  const std::string probe =
      run("ffprobe -v error -rtsp_transport tcp -show_entries stream=codec_name "
          "-of csv=p=0 'rtsp://alice:alice-secret-1@127.0.0.1:" +
              std::to_string(port) + "/live/door'",
          &rc);
  ck_assert_msg(rc == 0 && probe.find("h264") != std::string::npos, "ffprobe: %s", probe.c_str());
  ck_assert_int_eq(log.count("alice-secret-1"), 0);
}
END_TEST

// A server offering Digest only: rtspsrc and ffprobe both authenticate with it.
START_TEST(digest_only_server_serves_rtspsrc_and_ffprobe) {
  Publisher pub("live/dig");
  pub.wait_frames(10);
  auto s = open_settings();
  s.anonymous_read = {};
  s.basic = false;
  s.users = {RtspUser{"carol", "carol-secret-3", {"*"}}};
  RtspServer server(s);
  server.start();
  const std::string challenge = rtsp_exchange(server.port(), describe(server.port(), "/live/dig"));
  ck_assert(challenge.find("Basic") == std::string::npos);
  ck_assert(challenge.find("Digest") != std::string::npos);
  {
    Viewer v(url(server, "/live/dig"), "tcp", "user-id=carol user-pw=carol-secret-3");
    ck_assert_int_eq(v.picture_width(), 320);
  }
  int rc = -1;
  const std::string probe =
      run("ffprobe -v error -rtsp_transport tcp -show_entries stream=codec_name "
          "-of csv=p=0 'rtsp://carol:carol-secret-3@127.0.0.1:" +
              std::to_string(server.port()) + "/live/dig'",
          &rc);
  ck_assert_msg(rc == 0 && probe.find("h264") != std::string::npos, "ffprobe: %s", probe.c_str());
  ck_assert_uint_eq(server.stats().refused_unauthorized, 0);
}
END_TEST

START_TEST(reader_limits_per_key_and_in_total) {
  Publisher a("live/a");
  Publisher b("live/b");
  a.wait_frames(5);
  b.wait_frames(5);
  auto s = open_settings();
  s.max_readers_per_key = 1;
  s.max_readers = 2;
  LoggedServer logged(s);
  auto& [log, server] = logged;
  const int port = server.port();
  Viewer v1(url(server, "/live/a"), "tcp");
  ck_assert_int_eq(v1.picture_width(), 320);
  ck_assert(readers_are(server, 1));
  ck_assert_int_eq(rtsp_status(rtsp_exchange(port, describe(port, "/live/a"))), 503);
  ck_assert_int_eq(log.count("503 the reader limit of live/a (1) is reached"), 1);
  Viewer v2(url(server, "/live/b"), "tcp");
  ck_assert_int_eq(v2.picture_width(), 320);
  ck_assert(readers_are(server, 2));
  Publisher c("live/c");
  c.wait_frames(5);
  ck_assert_int_eq(rtsp_status(rtsp_exchange(port, describe(port, "/live/c"))), 503);
  ck_assert_int_eq(log.count("503 the server's reader limit (2) is reached"), 1);
  ck_assert_uint_eq(server.stats().refused_limit, 2);
  ck_assert_int_eq(log.count(": 503 "), 2);  // each refusal logged once, not again as an error
  v1.stop();
  ck_assert(readers_are(server, 1));
  ck_assert_int_eq(rtsp_status(rtsp_exchange(port, describe(port, "/live/a"))), 200);
}
END_TEST

// A reader whose media cannot be prepared gets 503, and the log says so once,
// with the peer and the key: here a 4:4:4 JPEG track, which RFC 2435 cannot carry.
START_TEST(a_media_that_cannot_be_prepared_is_logged_with_peer_and_key) {
  Publisher pub("codec/yuv444",
                Publisher::Line{"videotestsrc is-live=true ! video/x-raw,width=320,height=240,"
                                "framerate=30/1,format=Y444 ! jpegenc ! "
                                "arclysink stream=codec/yuv444"});
  pub.wait_frames(5);
  LoggedServer logged(open_settings());
  auto& [log, server] = logged;
  const int port = server.port();
  // gst-rtsp-media gives up on a media that never prerolls after 20 s.
  ck_assert_int_eq(rtsp_status(rtsp_exchange(port, describe(port, "/codec/yuv444"), 60s)), 503);
  ck_assert_int_eq(log.count("rtsp: 127.0.0.1: 503 Service Unavailable for DESCRIBE of "
                             "codec/yuv444: the server could not serve it"),
                   1);
}
END_TEST

// Garbage on the port and a reader killed mid-stream: the server keeps serving,
// the other reader keeps decoding, the vanished reader is forgotten.
START_TEST(garbage_and_a_vanishing_reader_do_not_hurt_others) {
  Publisher pub("live/tough");
  pub.wait_frames(10);
  RtspServer server(open_settings());
  server.start();
  const int port = server.port();
  Viewer steady(url(server, "/live/tough"), "tcp");
  ck_assert_int_eq(steady.picture_width(), 320);
  std::mt19937 rng(7);
  for (int i = 0; i < 50; ++i) {
    std::string junk(1 + rng() % 3000, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    if (i % 5 == 0)
      junk =
          "DESCRIBE rtsp://127.0.0.1/live/tough RTSP/1.0\r\nCSeq: x\r\nContent-Length: "
          "99999999\r\n\r\n" +
          junk;
    poke(port, junk);
  }
  {
    ingest_testing::Process ff({"ffmpeg", "-v", "error", "-rtsp_transport", "tcp", "-i",
                                url(server, "/live/tough"), "-f", "null", "-"});
    ck_assert(readers_are(server, 2));
  }  // SIGKILL
  ck_assert(readers_are(server, 1));
  for (int i = 0; i < 10; ++i) ck_assert_int_eq(steady.picture_width(), 320);
  ck_assert_int_eq(rtsp_status(rtsp_exchange(port, describe(port, "/live/tough"))), 200);
}
END_TEST

// The publisher going away ends its readers (RTCP BYE -> EOS in rtspsrc).
START_TEST(the_end_of_the_publisher_ends_its_readers) {
  auto pub = std::make_unique<Publisher>("live/ending");
  pub->wait_frames(10);
  RtspServer server(open_settings());
  server.start();
  Viewer v(url(server, "/live/ending"), "tcp");
  ck_assert_int_eq(v.picture_width(), 320);
  pub.reset();
  ck_assert_msg(v.ends_with_eos(), "the reader did not end with EOS");
}
END_TEST

// With shared_media, the live-edge readers of a key share one media (one engine
// subscription, one payloader), and each still starts with the cached keyframe:
// the second reader joins the 10 s GOP half a second after the first, so without
// its burst its first access unit would be a delta frame. A client that asks for
// UDP first falls back to TCP (461); an ffmpeg client decodes from its first frame.
START_TEST(shared_media_readers_each_start_at_the_cached_keyframe) {
  Publisher pub("live/shared", true);
  pub.wait_frames(45);
  auto settings = open_settings();
  settings.shared_media = true;
  RtspServer server(settings);
  server.start();
  Viewer first(url(server, "/live/shared"), "tcp");
  ck_assert_int_eq(first.picture_width(), 320);
  ck_assert_int_eq(first.first_is_keyframe(), 1);
  pub.wait_frames(15);
  Viewer second(url(server, "/live/shared"), "tcp");
  ck_assert_int_eq(second.picture_width(), 320);
  ck_assert_int_eq(second.first_is_keyframe(), 1);
  Viewer third(url(server, "/live/shared"), "udp+tcp");
  ck_assert_int_eq(third.picture_width(), 320);
  ck_assert_int_eq(third.first_is_keyframe(), 1);
  int rc = -1;
  const std::string frames = run(
      "ffmpeg -v error -i '" + url(server, "/live/shared") + "' -map 0:v -frames:v 5 -f framemd5 -",
      &rc);
  ck_assert_msg(rc == 0, "ffmpeg failed: %s", frames.c_str());
  ck_assert_msg(frames.find("\n0,") != std::string::npos, "ffmpeg decoded nothing: %s",
                frames.c_str());
  ck_assert(readers_are(server, 3));
  auto stream =
      arcly::gst::engine_for("default")->get_stream(arcly::StreamKey::parse("live/shared"));
  ck_assert_uint_eq(stream->subscriber_count(), 1);
  ck_assert(server.wait_for(
      [](const RtspServerStats& s) {
        for (const auto& r : s.reader_list)
          if (!r.shared_media || r.transport != "tcp" || r.bytes < 1000) return false;
        return s.reader_list.size() == 3;
      },
      20s));
  // A keyframe reader still gets a media of its own.
  Viewer nvr(url(server, "/live/shared?start=keyframe"), "tcp");
  ck_assert_int_eq(nvr.picture_width(), 320);
  ck_assert_uint_eq(stream->subscriber_count(), 2);
}
END_TEST

// A reader of a shared media that stops reading (its TCP window closed) is closed
// once its connection's send queue is full, logged once with its address and
// counted; the other reader of the media and the publisher go on.
// A reader whose TCP window stays closed is closed, logged once with its
// address and counted; another reader and the publisher go on.
void a_stalled_reader_is_closed_and_logged_once(bool shared_media) {
  const std::string key = shared_media ? "live/stall-shared" : "live/stall";
  Publisher pub(key);
  pub.wait_frames(10);
  auto settings = open_settings();
  settings.shared_media = shared_media;
  LoggedServer s(settings);
  Viewer steady(url(s.server, "/" + key), "tcp");
  ck_assert_int_eq(steady.picture_width(), 320);
  // A reader that keeps up has a known lag, well under a second on loopback.
  ck_assert(s.server.wait_for(
      [](const RtspServerStats& st) {
        return st.reader_list.size() == 1 && st.reader_list[0].lag_ms >= 0 &&
               st.reader_list[0].lag_ms < 1000;
      },
      20s));
  {
    RawReader stalled(s.server.port(), "/" + key, 2048);
    // Its send queue grows, and shows as lag, until it is closed: the
    // connection's own queue fills to its bound (10 s of the stream) before the
    // reader is closed, and the kernel's queue holds more besides, so what it
    // has not received peaks above the bound.
    std::int64_t worst = 0;
    std::uint64_t most_queued = 0, limit = 0;
    ck_assert(s.server.wait_for(
        [&](const RtspServerStats& st) {
          for (const auto& r : st.reader_list) {
            worst = std::max(worst, r.lag_ms);
            if (r.queued_bytes > most_queued) {
              most_queued = r.queued_bytes;
              limit = r.queue_limit_bytes;
            }
          }
          return st.dropped_slow == 1;
        },
        60s));
    ck_assert_msg(limit > 0 && most_queued > limit,
                  "the stalled reader's queue peaked at %" G_GUINT64_FORMAT
                  " bytes, its bound is %" G_GUINT64_FORMAT,
                  most_queued, limit);
    ck_assert_msg(worst >= 5000, "the stalled reader's lag peaked at %lld ms",
                  static_cast<long long>(worst));
    ck_assert(readers_are(s.server, 1));
    for (int i = 0; i < 10; ++i) ck_assert_int_eq(steady.picture_width(), 320);
  }
  ck_assert_int_eq(s.log.count("rtsp: 127.0.0.1 reads " + key + " too slowly"), 1);
  ck_assert_uint_eq(s.server.stats().dropped_slow, 1);
  pub.wait_frames(10);  // the publisher is still publishing
}

START_TEST(a_stalled_reader_of_its_own_media_is_closed_and_logged_once) {
  a_stalled_reader_is_closed_and_logged_once(false);
}
END_TEST

START_TEST(a_stalled_reader_of_a_shared_media_is_closed_and_logged_once) {
  a_stalled_reader_is_closed_and_logged_once(true);
}
END_TEST

// A camera whose bitrate rises after a reader joined (a still scene that starts
// to move): the bound on the reader's send queue rises with it. Kept at the
// join's bitrate, it would be a fraction of a second of the moving scene, and a
// reader briefly behind would be closed.
START_TEST(a_readers_send_queue_bound_grows_with_the_bitrate) {
  Publisher pub("live/rising",
                Publisher::Line{"videotestsrc name=scene is-live=true pattern=black ! "
                                "video/x-raw,width=640,height=360,framerate=30/1 ! x264enc "
                                "tune=zerolatency speed-preset=ultrafast bitrate=4000 "
                                "key-int-max=60 ! h264parse ! arclysink stream=live/rising"});
  pub.wait_frames(10);
  RtspServer server(open_settings());
  server.start();
  Viewer viewer(url(server, "/live/rising"), "tcp");
  ck_assert_int_eq(viewer.picture_width(), 640);
  std::uint64_t limit = 0;
  const auto limit_is = [&](auto pred) {
    return server.wait_for(
        [&](const RtspServerStats& st) {
          if (st.reader_list.size() != 1) return false;
          limit = st.reader_list[0].queue_limit_bytes;
          return pred(limit);
        },
        20s);
  };
  // A black scene: 10 s of it is less than the 256 KiB floor.
  ck_assert_msg(limit_is([](std::uint64_t l) { return l > 0; }), "no bound");
  ck_assert_uint_eq(limit, 256 * 1024);
  GstElement* scene = gst_bin_get_by_name(GST_BIN(pub.pipeline()), "scene");
  gst_util_set_object_arg(G_OBJECT(scene), "pattern", "snow");
  gst_object_unref(scene);
  // Snow at 4 Mbit/s: 10 s of it is about 5 MB.
  ck_assert_msg(limit_is([](std::uint64_t l) { return l > 2u << 20; }),
                "the bound stayed at %" G_GUINT64_FORMAT " bytes", limit);
  ck_assert_int_eq(viewer.picture_width(), 640);
}
END_TEST

// Many readers of a shared media keep receiving: 40 raw TCP readers, each gets
// data in every 2 s of 10 s. (It guards the shared data path under load. The
// stall that reader_sender.hpp's "Waking the stream" fixes shows here only now
// and then; egress-bench's 200 readers showed it every time, as "silent 200".)
START_TEST(readers_of_a_shared_media_keep_receiving) {
  Publisher pub("live/busy",
                Publisher::Line{"videotestsrc is-live=true pattern=snow ! "
                                "video/x-raw,width=640,height=360,framerate=30/1 ! x264enc "
                                "tune=zerolatency speed-preset=ultrafast bitrate=3000 "
                                "key-int-max=60 ! h264parse ! arclysink stream=live/busy"});
  pub.wait_frames(10);
  auto settings = open_settings();
  settings.shared_media = true;
  RtspServer server(settings);
  server.start();
  std::vector<std::unique_ptr<RawReader>> readers;
  for (int i = 0; i < 40; ++i)
    readers.push_back(std::make_unique<RawReader>(server.port(), "/live/busy"));
  std::vector<pollfd> fds;
  for (const auto& r : readers) fds.push_back({r->fd(), POLLIN, 0});
  std::vector<std::uint64_t> bytes(readers.size(), 0), before(readers.size(), 0);
  char buf[65536];
  for (int window = 0; window < 5; ++window) {
    const auto end = std::chrono::steady_clock::now() + 2s;
    while (std::chrono::steady_clock::now() < end) {
      if (poll(fds.data(), fds.size(), 100) <= 0) continue;
      for (std::size_t i = 0; i < fds.size(); ++i) {
        if (!(fds[i].revents & POLLIN)) continue;
        const ssize_t n = recv(fds[i].fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) bytes[i] += static_cast<std::uint64_t>(n);
      }
    }
    for (std::size_t i = 0; i < readers.size(); ++i) {
      ck_assert_msg(bytes[i] > before[i], "reader %zu got nothing in seconds %d to %d", i,
                    window * 2, window * 2 + 2);
      before[i] = bytes[i];
    }
  }
  ck_assert_uint_eq(server.stats().readers, 40);
}
END_TEST

// The publisher leaving ends every reader of its shared media.
START_TEST(the_end_of_the_publisher_ends_the_readers_of_a_shared_media) {
  auto pub = std::make_unique<Publisher>("live/shared-ending");
  pub->wait_frames(10);
  auto settings = open_settings();
  settings.shared_media = true;
  RtspServer server(settings);
  server.start();
  Viewer a(url(server, "/live/shared-ending"), "tcp");
  Viewer b(url(server, "/live/shared-ending"), "tcp");
  ck_assert_int_eq(a.picture_width(), 320);
  ck_assert_int_eq(b.picture_width(), 320);
  pub.reset();
  ck_assert_msg(a.ends_with_eos(), "the first reader did not end with EOS");
  ck_assert_msg(b.ends_with_eos(), "the second reader did not end with EOS");
  ck_assert(readers_are(server, 0));
}
END_TEST

// The server's RTCP sender reports map RTP time to the publisher's time of the
// frame on the wall clock, not to the time the server sends it. A keyframe-mode
// reader replays the GOP from a keyframe 2 s old at its spacing, so each frame it
// decodes was published about (join - keyframe) before it arrives; with send-time
// SRs (1.22's default) the client would see about 0. A live-edge reader is
// behind live by the pipeline latencies only.
START_TEST(sender_reports_carry_the_publishers_capture_time) {
  Publisher pub("live/sr");
  pub.wait_frames(60);
  RtspServer server(open_settings());
  server.start();
  const std::int64_t keyframe = cached_keyframe_pts("live/sr");
  const std::int64_t joined = arcly::gst::engine_now();
  Viewer replay(url(server, "/live/sr?start=keyframe"), "tcp", "add-reference-timestamp-meta=true");
  Viewer live(url(server, "/live/sr?start=live-edge"), "tcp", "add-reference-timestamp-meta=true");
  CaptureDelay replay_delay(replay), live_delay(live);
  const std::int64_t behind = joined - keyframe;
  ck_assert_int_ge(behind, 2 * GST_SECOND - 50 * GST_MSECOND);
  const std::int64_t replayed = replay_delay.wait();
  ck_assert_msg(replayed >= behind - 300 * GST_MSECOND && replayed <= behind + GST_SECOND,
                "keyframe reader: frames arrive %" G_GINT64_FORMAT
                " ms after their capture by the SRs; the GOP replay is %" G_GINT64_FORMAT
                " ms behind the publisher",
                replayed / GST_MSECOND, behind / GST_MSECOND);
  const std::int64_t at_edge = live_delay.wait();
  ck_assert_msg(at_edge >= 0 && at_edge <= GST_SECOND,
                "live-edge reader: %" G_GINT64_FORMAT " ms behind capture by the SRs",
                at_edge / GST_MSECOND);
  live.stop();  // before the probes' objects go
  replay.stop();
}
END_TEST

// The readers' medias share the pool's loops (one thread each per core, not
// one per media), every loop runs, and a loop that ended with its last media
// is replaced by a running one.
bool loop_runs(GstRTSPThread* thread) {
  struct Ran {
    std::mutex mutex;
    std::condition_variable cv;
    bool ran = false;
  } ran;
  GSource* idle = g_idle_source_new();
  g_source_set_callback(
      idle,
      [](gpointer data) {
        auto* r = static_cast<Ran*>(data);
        std::lock_guard lock(r->mutex);
        r->ran = true;
        r->cv.notify_all();
        return G_SOURCE_REMOVE;
      },
      &ran, nullptr);
  g_source_attach(idle, thread->context);
  std::unique_lock lock(ran.mutex);
  const bool ok = ran.cv.wait_for(lock, 5s, [&] { return ran.ran; });
  if (!ok) g_source_destroy(idle);
  g_source_unref(idle);
  return ok;
}

START_TEST(medias_share_the_pools_loops) {
  GstRTSPThreadPool* pool = arcly::egress::media_sharing_thread_pool_new(2);
  std::vector<GstRTSPThread*> medias;
  std::set<GstRTSPThread*> loops;
  for (int i = 0; i < 6; ++i) {
    GstRTSPThread* t = gst_rtsp_thread_pool_get_thread(pool, GST_RTSP_THREAD_TYPE_MEDIA, nullptr);
    ck_assert(t != nullptr);
    medias.push_back(t);
    loops.insert(t);
  }
  ck_assert_int_eq(loops.size(), 2);
  for (GstRTSPThread* t : loops) ck_assert(loop_runs(t));
  for (GstRTSPThread* t : medias) gst_rtsp_thread_stop(t);
  GstRTSPThread* next = gst_rtsp_thread_pool_get_thread(pool, GST_RTSP_THREAD_TYPE_MEDIA, nullptr);
  ck_assert(next != nullptr);
  ck_assert(loop_runs(next));
  gst_rtsp_thread_stop(next);
  g_object_unref(pool);
}
END_TEST

START_TEST(settings_are_validated) {
  RtspServerSettings s;
  s.users = {RtspUser{"a:b", "x", {"*"}}};
  bool threw = false;
  try {
    arcly::egress::validate(s);
  } catch (const arcly::Error& e) {
    threw = std::string(e.what()).find("user 'a:b'") != std::string::npos;
  }
  ck_assert(threw);
  s = {};
  s.tcp = s.udp = false;
  ck_assert_int_eq(
      [&] {
        try {
          RtspServer x(s);
        } catch (const arcly::Error& e) {
          return 1;
        }
        return 0;
      }(),
      1);
  // A shared media is served over TCP only: a UDP-only server cannot share.
  s = {};
  s.udp = true;
  s.tcp = false;
  s.shared_media = true;
  threw = false;
  try {
    arcly::egress::validate(s);
  } catch (const arcly::Error& e) {
    threw = std::string(e.what()).find("media shared") != std::string::npos;
  }
  ck_assert(threw);
  // A port in use is an error naming the address.
  RtspServer first(open_settings());
  first.start();
  auto s2 = open_settings();
  s2.port = first.port();
  RtspServer second(s2);
  threw = false;
  try {
    second.start();
  } catch (const arcly::Error& e) {
    threw = std::string(e.what()).find("127.0.0.1:" + std::to_string(first.port())) !=
            std::string::npos;
  }
  ck_assert(threw);
}
END_TEST

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  return run_selected("egress-rtsp",
                      {rtspsrc_over_tcp_starts_with_the_cached_keyframe,
                       rtspsrc_over_udp_with_start_keyframe,
                       ffprobe_and_ffmpeg_read_audio_and_video,
                       every_offered_codec_reaches_ffprobe_and_decodes,
                       unknown_keys_get_404_and_a_bad_start_400,
                       a_reader_before_the_publisher_waits_for_it,
                       users_authenticate_with_basic_and_digest_and_read_their_keys,
                       digest_only_server_serves_rtspsrc_and_ffprobe,
                       reader_limits_per_key_and_in_total,
                       a_media_that_cannot_be_prepared_is_logged_with_peer_and_key,
                       garbage_and_a_vanishing_reader_do_not_hurt_others,
                       the_end_of_the_publisher_ends_its_readers,
                       sender_reports_carry_the_publishers_capture_time,
                       shared_media_readers_each_start_at_the_cached_keyframe,
                       the_end_of_the_publisher_ends_the_readers_of_a_shared_media,
                       a_stalled_reader_of_its_own_media_is_closed_and_logged_once,
                       a_stalled_reader_of_a_shared_media_is_closed_and_logged_once,
                       a_readers_send_queue_bound_grows_with_the_bitrate,
                       readers_of_a_shared_media_keep_receiving,
                       medias_share_the_pools_loops,
                       settings_are_validated},
                      120);
}
