// The HTTP control plane end to end: the real `arcly` binary with a synthetic
// camera, asked over real HTTP (a socket client that controls every byte, and
// curl), answers checked with json-glib's parser, metrics with the Prometheus
// client's own parser, event clips with GstDiscoverer and ffprobe against the
// publisher timestamps the API reports.
#include <ifaddrs.h>
#include <sys/resource.h>

#include "arcly_host.hpp"

using namespace std::chrono_literals;
using namespace http_testing;
namespace fs = std::filesystem;

namespace {

const char* kAdmin = "adm1n-S3CRET-token-4242";
const char* kRead = "r3ad-0nly-S3CRET-7777";
constexpr double kFrame = 1.0 / 30;  // the camera's frame interval, s
constexpr double kGop = 1.0;         // key-int-max=30 at 30 fps

std::string camera_config(const std::string& dir, const std::string& http) {
  return "[app live]\ncache-window=4\n\n"
         "[pipeline cam]\nkey=live/cam\n"
         "source=videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,"
         "framerate=30/1 ! timeoverlay ! x264enc tune=zerolatency speed-preset=ultrafast "
         "key-int-max=30 bitrate=600 ! h264parse config-interval=-1\n"
         "backoff-initial=0.2\nbackoff-max=0.5\n\n"
         "[record events]\nkey=live/*\ndir=" +
         dir + "/rec\nmode=events\n\n" + http;
}

// GstDiscoverer's caps of the first video stream of `file` ("" when it cannot
// play it). For a 1 s MPEG-TS segment it reports no duration, only the streams.
std::string discover_video_caps(const std::string& file) {
  GstDiscoverer* d = gst_discoverer_new(15 * GST_SECOND, nullptr);
  gchar* uri = gst_filename_to_uri(file.c_str(), nullptr);
  GstDiscovererInfo* info = gst_discoverer_discover_uri(d, uri, nullptr);
  std::string out;
  if (info && gst_discoverer_info_get_result(info) == GST_DISCOVERER_OK) {
    GList* videos = gst_discoverer_info_get_video_streams(info);
    if (videos) {
      GstCaps* caps = gst_discoverer_stream_info_get_caps(GST_DISCOVERER_STREAM_INFO(videos->data));
      if (caps) {
        gchar* text = gst_caps_to_string(caps);
        out = text;
        g_free(text);
        gst_caps_unref(caps);
      }
    }
    gst_discoverer_stream_info_list_free(videos);
  }
  if (info) gst_discoverer_info_unref(info);
  g_free(uri);
  g_object_unref(d);
  return out;
}

std::string token_config() {
  return std::string("[http]\nlisten=127.0.0.1:0\ntoken=") + kAdmin + "\nread-token=" + kRead +
         "\n";
}

void wait_live(Arcly& a) {
  ck_assert_msg(a.wait_for("connected: publishing live/cam", 30s),
                "the camera never went live:\n%s", a.log().c_str());
}

}  // namespace

START_TEST(api_answers_with_json_and_refuses_bad_input) {
  const std::string dir = scratch("api");
  Arcly a(dir, camera_config(dir, token_config()));
  wait_live(a);
  const int port = a.port;

  // Access: healthz is open; the rest needs a token; the read token cannot act.
  ck_assert_int_eq(request(port, "GET", "/healthz").status, 200);
  expect_error(request(port, "GET", "/v1/streams"), 401, "Authorization", "no token");
  expect_error(request(port, "GET", "/v1/streams", "", "wrong-token"), 401, "Authorization",
               "wrong token");
  expect_error(request(port, "POST", "/v1/streams/live/cam/kick", "", kRead), 403, "Authorization",
               "kick with the read token");

  // Streams.
  Reply r = request(port, "GET", "/v1/streams", "", kRead);
  ck_assert_msg(r.status == 200 && r.headers["content-type"].find("application/json") == 0, "%d %s",
                r.status, r.body.c_str());
  {
    Doc d(r.body);
    ck_assert_msg(d.obj(), "not JSON: %s", r.body.c_str());
    JsonArray* streams = json_object_get_array_member(d.obj(), "streams");
    ck_assert_int_eq(json_array_get_length(streams), 1);
    JsonObject* s = json_array_get_object_element(streams, 0);
    ck_assert_text(str(s, "key"), "live/cam");
    ck_assert_msg(num(s, "fps") > 0 && num(s, "bitrate_bps") > 0 && num(s, "frames") > 0, "%s",
                  r.body.c_str());
    JsonObject* track = json_array_get_object_element(json_object_get_array_member(s, "tracks"), 0);
    ck_assert_text(str(track, "codec"), "h264");
    ck_assert_text(str(json_object_get_object_member(s, "publisher"), "worker"), "pipeline cam");
    ck_assert_msg(num(json_object_get_object_member(s, "cache"), "window_configured_ms") == 4000,
                  "%s", r.body.c_str());
  }
  r = request(port, "GET", "/v1/streams/live/cam", "", kRead);
  ck_assert_msg(r.status == 200 && str(Doc(r.body).obj(), "key") == "live/cam", "%s",
                r.body.c_str());

  // Unknown keys, bad keys, path traversal, unknown routes and methods.
  expect_error(request(port, "GET", "/v1/streams/live/nope", "", kRead), 404, "key", "unknown key");
  expect_error(request(port, "GET", "/v1/streams/live/b%20d", "", kRead), 400, "key", "bad key");
  // An escaped "..": libsoup removes the dot segment (RFC 3986) before routing.
  expect_error(request(port, "GET", "/v1/streams/%2e%2e/cam", "", kRead), 404, nullptr, "'..' app");
  r = request(port, "GET", "/v1/streams/../../../etc/passwd", "", kRead);
  ck_assert_msg(r.status == 404 && r.body.find("root:") == std::string::npos, "%d %s", r.status,
                r.body.c_str());
  r = request(port, "GET", "/../../../../etc/passwd", "", kRead);
  ck_assert_msg(r.status >= 400 && r.body.find("root:") == std::string::npos, "%d %s", r.status,
                r.body.c_str());
  expect_error(request(port, "GET", "/v1/recordings?key=../../etc", "", kRead), 400, "key",
               "traversal in a recordings key");
  expect_error(request(port, "GET", "/v1/recordings?from=yesterday", "", kRead), 400, "from",
               "bad time");
  expect_error(request(port, "GET", "/v1/nothing", "", kRead), 404, nullptr, "unknown route");
  r = request(port, "DELETE", "/v1/streams", "", kAdmin);
  ck_assert_msg(r.status == 405 && r.headers["allow"] == "GET", "%d", r.status);

  // Event requests that cannot be: each names its field.
  struct Bad {
    const char* body;
    int status;
    const char* field;
  } bad[] = {
      {"{\"key\": \"live/cam\", ", 400, "body"},
      {"[1, 2]", 400, "body"},
      {"", 400, "body"},
      {"{\"pre\": 1}", 400, "key"},
      {"{\"key\": \"live/../../x\"}", 400, "key"},
      {"{\"key\": \"live/cam\", \"pre\": -1}", 400, "pre"},
      {"{\"key\": \"live/cam\", \"pre\": 1e308}", 400, "pre"},
      {"{\"key\": \"live/cam\", \"post\": 99999}", 400, "post"},
      {"{\"key\": \"live/cam\", \"post\": \"ten\"}", 400, "post"},
      {"{\"key\": \"live/cam\", \"label\": 5}", 400, "label"},
      {"{\"key\": \"live/cam\", \"colour\": \"red\"}", 400, "colour"},
      {"{\"key\": \"live/nope\"}", 404, "key"},
  };
  for (const auto& b : bad)
    expect_error(request(port, "POST", "/v1/events", b.body, kAdmin), b.status, b.field, b.body);
  expect_error(request(port, "POST", "/v1/events", "{\"key\":\"live/cam\"}", kRead), 403,
               "Authorization", "event with the read token");

  // Oversized and unbounded bodies are refused before they are read.
  {
    const int fd = connect_to("127.0.0.1", port);
    send_all(fd, "POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " +
                     std::string(kAdmin) + "\r\nContent-Length: 104857600\r\n\r\n{");
    expect_error(read_reply(fd), 413, "body", "100 MB body");
    close(fd);
  }
  {
    const int fd = connect_to("127.0.0.1", port);
    send_all(fd, "POST /v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " +
                     std::string(kAdmin) +
                     "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n");
    expect_error(read_reply(fd), 411, "Content-Length", "chunked body");
    close(fd);
  }

  // A slow client holds nothing up: a half-sent request stays open while others are served.
  const int slow = connect_to("127.0.0.1", port);
  send_all(slow, "GET /v1/work");
  ck_assert_int_eq(request(port, "GET", "/v1/workers", "", kRead).status, 200);

  // 1 000 clients at once (this process needs the fds: the soft limit is often 1 024).
  {
    struct rlimit rl {};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096 && rl.rlim_max > rl.rlim_cur) {
      rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 4096);
      setrlimit(RLIMIT_NOFILE, &rl);
    }
    std::vector<int> fds;
    for (int i = 0; i < 1000; ++i) {
      const int fd = connect_to("127.0.0.1", port);
      ck_assert_msg(fd >= 0, "connect %d failed", i);
      send_all(fd, request_text("GET", i % 2 ? "/v1/streams" : "/metrics", "", kRead));
      fds.push_back(fd);
    }
    int ok = 0;
    for (int fd : fds) {
      ok += read_reply(fd).status == 200;
      close(fd);
    }
    ck_assert_int_eq(ok, 1000);
  }
  send_all(slow, "ers HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer " +
                     std::string(kRead) + "\r\n\r\n");
  ck_assert_int_eq(read_reply(slow).status, 200);
  close(slow);

  // curl agrees (a second, independent client).
  const std::string out = run("curl -s -H 'Authorization: Bearer " + std::string(kRead) +
                              "' http://127.0.0.1:" + std::to_string(port) + "/v1/workers");
  {
    Doc d(out);
    ck_assert_msg(d.obj(), "curl: %s", out.c_str());
    JsonObject* w =
        json_array_get_object_element(json_object_get_array_member(d.obj(), "workers"), 0);
    ck_assert_text(str(w, "section"), "pipeline cam");
    ck_assert_text(str(w, "state"), "live");
  }
  r = request(port, "GET", "/v1/recorders", "", kRead);
  {
    Doc d(r.body);
    JsonObject* rec =
        json_array_get_object_element(json_object_get_array_member(d.obj(), "recorders"), 0);
    ck_assert_text(str(rec, "mode"), "events");
    ck_assert_text(str(rec, "state"), "idle");
  }

  // Kick: the worker reconnects by its policy and the stream goes on.
  expect_error(request(port, "POST", "/v1/streams/live/nope/kick", "", kAdmin), 404, "key",
               "kick unknown");
  r = request(port, "POST", "/v1/streams/live/cam/kick", "", kAdmin);
  ck_assert_msg(r.status == 200 && str(Doc(r.body).obj(), "kicked") == "pipeline cam", "%d %s",
                r.status, r.body.c_str());
  ck_assert_msg(wait_until(
                    [&] {
                      Doc d(request(port, "GET", "/v1/workers", "", kRead).body);
                      JsonObject* w = json_array_get_object_element(
                          json_object_get_array_member(d.obj(), "workers"), 0);
                      return num(w, "reconnects") >= 1 && str(w, "state") == "live";
                    },
                    30s),
                "the kicked worker did not reconnect:\n%s", a.log().c_str());
  ck_assert_msg(a.log().find("kicked: by the control plane") != std::string::npos ||
                    a.log().find("kicked live/cam") != std::string::npos,
                "%s", a.log().c_str());

  ck_assert_msg(a.stop() == 0, "arcly %s", a.why_stopped().c_str());
  // The tokens appear nowhere: not in the log (HTTP at debug level 7), not in `arcly check`.
  const std::string log = a.log();
  ck_assert_msg(log.find(kAdmin) == std::string::npos && log.find(kRead) == std::string::npos,
                "a token is in the log");
  ck_assert_msg(log.find("GET /v1/streams") != std::string::npos, "the HTTP log is missing");
  int status = -1;
  const std::string check =
      run("'" + env("ARCLY_HOST_BIN") + "' check '" + a.config_path() + "'", &status);
  ck_assert_msg(status == 0 && check.find("admin token set") != std::string::npos, "%s",
                check.c_str());
  ck_assert_msg(check.find(kAdmin) == std::string::npos && check.find(kRead) == std::string::npos,
                "arcly check prints a token:\n%s", check.c_str());
  fs::remove_all(dir);
}
END_TEST

// The one RTSP egress server of GET /v1/egress (null if none).
JsonObject* rtsp_egress(const Doc& d) {
  JsonArray* servers = d.obj() ? json_object_get_array_member(d.obj(), "servers") : nullptr;
  for (guint i = 0; servers && i < json_array_get_length(servers); ++i) {
    JsonObject* s = json_array_get_object_element(servers, i);
    if (str(s, "protocol") == "rtsp") return s;
  }
  return nullptr;
}

// With one RTSP/TCP reader (an rtspsrc in this process), so that the egress
// families carry values.
START_TEST(metrics_parse_with_the_prometheus_parser) {
  const std::string dir = scratch("metrics");
  Arcly a(dir,
          camera_config(
              dir, token_config() + "[rtsp-server]\nlisten=127.0.0.1:0\nanonymous-read=live/*\n"));
  wait_live(a);
  // Let the counters move past the first frames.
  ck_assert(wait_until(
      [&] {
        Doc d(request(a.port, "GET", "/v1/streams/live/cam", "", kRead).body);
        return num(d.obj(), "keyframes") >= 2;
      },
      20s));
  const Doc egress(request(a.port, "GET", "/v1/egress", "", kRead).body);
  const int rtsp_port = static_cast<int>(num(rtsp_egress(egress), "port"));
  ck_assert_msg(rtsp_port > 0, "no RTSP server in /v1/egress");
  GstElement* reader = gst_parse_launch(("rtspsrc protocols=tcp location=rtsp://127.0.0.1:" +
                                         std::to_string(rtsp_port) + "/live/cam ! fakesink")
                                            .c_str(),
                                        nullptr);
  ck_assert(reader);
  gst_element_set_state(reader, GST_STATE_PLAYING);
  // The reader in /v1/egress: its address, transport, bytes and lag (its send
  // queue: a reader that keeps up on loopback is well under a second behind).
  std::string last;
  ck_assert_msg(wait_until(
                    [&] {
                      Reply r = request(a.port, "GET", "/v1/egress", "", kRead);
                      last = r.body;
                      Doc d(r.body);
                      JsonObject* rtsp = rtsp_egress(d);
                      JsonArray* sessions =
                          rtsp ? json_object_get_array_member(rtsp, "sessions") : nullptr;
                      if (!sessions || json_array_get_length(sessions) != 1) return false;
                      JsonObject* s = json_array_get_object_element(sessions, 0);
                      return str(s, "key") == "live/cam" && str(s, "address") == "127.0.0.1" &&
                             str(s, "transport") == "tcp" && str(s, "mode") == "read" &&
                             num(s, "bytes") > 10000 && num(s, "lag_ms") >= 0 &&
                             num(s, "lag_ms") < 1000 && num(rtsp, "slow_readers") == 0;
                    },
                    20s),
                "/v1/egress: %s", last.c_str());
  expect_error(request(a.port, "GET", "/metrics"), 401, "Authorization", "metrics without a token");
  Reply r = request(a.port, "GET", "/metrics", "", kRead);
  ck_assert_msg(r.status == 200 && r.headers["content-type"].find("text/plain; version=0.0.4") == 0,
                "%d %s", r.status, r.headers["content-type"].c_str());
  const std::string file = dir + "/metrics.txt";
  std::ofstream(file) << r.body;
  int status = -1;
  const std::string out = run(env("ARCLY_PYTHON") + " '" + env("ARCLY_SOURCE_ROOT") +
                                  "/tests/http/check_metrics.py' '" + file + "'",
                              &status);
  ck_assert_msg(status == 0, "the Prometheus parser disagrees (metrics in %s):\n%.2000s",
                file.c_str(), out.c_str());
  gst_element_set_state(reader, GST_STATE_NULL);
  gst_object_unref(reader);
  if (status == 0) fs::remove_all(dir);
}
END_TEST

// An event clip reaches back `pre` from the trigger (to the keyframe at or before
// it: within one GOP) and ends `post` after it (within one frame), proven from
// the file; a second event while the clip is open extends the same file.
START_TEST(event_clip_covers_pre_and_post_and_a_second_event_extends_it) {
  const std::string dir = scratch("events");
  Arcly a(dir, camera_config(dir, token_config()));
  wait_live(a);
  const int port = a.port;
  // The cache holds more than `pre` before the trigger.
  ck_assert(wait_until(
      [&] {
        Doc d(request(port, "GET", "/v1/streams/live/cam", "", kRead).body);
        return num(json_object_get_object_member(d.obj(), "cache"), "window_held_ms") >= 3000;
      },
      30s));
  const double pre = 2, post2 = 3;  // the first trigger's post (2 s) is extended by the second's
  Reply r =
      request(port, "POST", "/v1/events",
              "{\"key\": \"live/cam\", \"pre\": 2, \"post\": 2, \"label\": \"motion\"}", kAdmin);
  ck_assert_msg(r.status == 201, "%d %s", r.status, r.body.c_str());
  Doc first(r.body);
  const std::string id = str(first.obj(), "id");
  ck_assert_msg(!id.empty() && r.headers["location"] == "/v1/events/" + id, "%s", r.body.c_str());
  const double trigger = num(first.obj(), "trigger_ts") / 1e9;
  const double obtained = num(first.obj(), "pre_obtained");
  ck_assert_msg(obtained >= pre && obtained <= pre + kGop + kFrame, "pre_obtained %.3f", obtained);
  ck_assert_text(str(first.obj(), "label"), "motion");

  // A second event while the clip is open: the same file, a later end.
  r = request(port, "POST", "/v1/events", "{\"key\": \"live/cam\", \"pre\": 1, \"post\": 3}",
              kAdmin);
  ck_assert_msg(r.status == 201, "%d %s", r.status, r.body.c_str());
  Doc second(r.body);
  const std::string id2 = str(second.obj(), "id");
  ck_assert_msg(str(second.obj(), "extended") == id, "not extended: %s", r.body.c_str());
  ck_assert_text(str(second.obj(), "file"), str(first.obj(), "file"));
  const double trigger2 = num(second.obj(), "trigger_ts") / 1e9;

  std::string state;
  ck_assert_msg(wait_until(
                    [&] {
                      Doc d(request(port, "GET", "/v1/events/" + id, "", kRead).body);
                      state = str(d.obj(), "state");
                      return state == "finalized" || state == "failed";
                    },
                    30s),
                "the clip never finished:\n%s", a.log().c_str());
  ck_assert_text(state, "finalized");
  r = request(port, "GET", "/v1/events/" + id, "", kRead);
  Doc done(r.body);
  const std::string file = str(done.obj(), "file");
  const double first_ts = num(done.obj(), "first_ts") / 1e9;
  const double end_ts = num(done.obj(), "end_ts") / 1e9;
  ck_assert_msg(std::abs(end_ts - (trigger2 + post2)) < 1e-6, "end %.3f, second trigger %.3f",
                end_ts, trigger2);
  // Start: the keyframe at or before trigger - pre, within one GOP of it.
  ck_assert_msg(first_ts <= trigger - pre + 1e-6 && trigger - pre - first_ts <= kGop + kFrame,
                "first frame %.3f, trigger %.3f", first_ts, trigger);
  // The file: playable, starts on a keyframe, and lasts from the first frame to the end.
  const double duration = discover(file);
  ck_assert_msg(duration > 0, "GstDiscoverer cannot play %s", file.c_str());
  const double expected = end_ts - first_ts;
  ck_assert_msg(duration >= expected - kFrame * 1.5 && duration <= expected + kFrame * 1.5,
                "clip lasts %.3f s, [t-pre, t+post] from the first frame is %.3f s", duration,
                expected);
  const std::string probe =
      run("ffprobe -v error -select_streams v:0 -show_entries frame=key_frame "
          "-read_intervals %+#1 -of csv '" +
          file + "'");
  ck_assert_msg(probe.rfind("frame,1", 0) == 0, "first frame not a keyframe: %s", probe.c_str());
  // One clip, not two overlapping files.
  int mp4 = 0;
  for (auto& e : fs::recursive_directory_iterator(dir + "/rec"))
    mp4 += e.path().extension() == ".mp4";
  ck_assert_int_eq(mp4, 1);

  // Listing: both events, filtered by key and time; the recordings API lists the clip.
  r = request(port, "GET", "/v1/events?key=live/cam", "", kRead);
  ck_assert_int_eq(json_array_get_length(json_object_get_array_member(Doc(r.body).obj(), "events")),
                   2);
  r = request(port, "GET", "/v1/events?key=live/other", "", kRead);
  ck_assert_int_eq(json_array_get_length(json_object_get_array_member(Doc(r.body).obj(), "events")),
                   0);
  r = request(port, "GET", "/v1/events?to=1000", "", kRead);
  ck_assert_int_eq(json_array_get_length(json_object_get_array_member(Doc(r.body).obj(), "events")),
                   0);
  expect_error(request(port, "GET", "/v1/events/ev-nope", "", kRead), 404, "id", "unknown event");
  ck_assert_int_eq(request(port, "GET", "/v1/events/" + id2, "", kRead).status, 200);
  r = request(port, "GET", "/v1/recordings?key=live/cam", "", kRead);
  ck_assert_msg(r.body.find(file) != std::string::npos, "%s", r.body.c_str());
  ck_assert_msg(a.stop() == 0, "arcly %s", a.why_stopped().c_str());
  fs::remove_all(dir);
}
END_TEST

START_TEST(snapshot_is_a_jpeg_from_the_cache) {
  const std::string dir = scratch("snapshot");
  Arcly a(dir, camera_config(dir, token_config()));
  wait_live(a);
  Reply r = request(a.port, "GET", "/v1/streams/live/cam/snapshot.jpg?width=160", "", kRead);
  ck_assert_msg(r.status == 200 && r.headers["content-type"] == "image/jpeg", "%d %s", r.status,
                r.body.c_str());
  ck_assert_msg(r.body.size() > 100 && static_cast<unsigned char>(r.body[0]) == 0xFF &&
                    static_cast<unsigned char>(r.body[1]) == 0xD8,
                "not a JPEG");
  // The frame header (SOF0) gives the size: 160 wide keeps the 4:3 picture's aspect.
  const auto sof = r.body.find("\xFF\xC0");
  ck_assert(sof != std::string::npos);
  auto be16 = [&](std::size_t at) {
    return static_cast<unsigned char>(r.body[at]) * 256 +
           static_cast<unsigned char>(r.body[at + 1]);
  };
  ck_assert_int_eq(be16(sof + 7), 160);
  ck_assert_int_eq(be16(sof + 5), 120);
  // Decodable by a real decoder.
  const std::string jpg = dir + "/snap.jpg";
  std::ofstream(jpg, std::ios::binary) << r.body;
  int status = -1;
  run("ffprobe -v error '" + jpg + "'", &status);
  ck_assert_int_eq(status, 0);
  expect_error(request(a.port, "GET", "/v1/streams/live/cam/snapshot.jpg?width=abc", "", kRead),
               400, "width", "bad width");
  expect_error(request(a.port, "GET", "/v1/streams/live/nope/snapshot.jpg", "", kRead), 404, "key",
               "unknown stream");
  ck_assert_msg(a.stop() == 0, "arcly %s", a.why_stopped().c_str());
  fs::remove_all(dir);
}
END_TEST

// The web player's HLS: made on demand from the GOP cache, served only by the
// names hlssink2 gives, refused for what a browser cannot play, stopped when
// nobody asks (its private directory removed), and at shutdown.
START_TEST(live_player_serves_hls_and_stops_when_idle) {
  const std::string dir = scratch("player");
  const std::string tmp = dir + "/tmp";  // the host's TMPDIR: where its HLS directories go
  fs::create_directories(tmp);
  auto hls_dirs = [&] {
    std::vector<fs::path> out;
    for (auto& e : fs::directory_iterator(tmp))
      if (e.path().filename().string().rfind("arcly-hls-", 0) == 0) out.push_back(e.path());
    return out;
  };
  const std::string small = "video/x-raw,width=160,height=120,framerate=15/1";
  const std::string config =
      "[app live]\ncache-window=4\n\n"
      "[pipeline cam]\nkey=live/cam\n"
      "source=videotestsrc is-live=true pattern=ball ! video/x-raw,format=I420,width=320,"
      "height=240,framerate=30/1 ! timeoverlay ! x264enc tune=zerolatency speed-preset=ultrafast "
      "key-int-max=30 bitrate=600 ! h264parse config-interval=-1\n\n"
      // 4:4:4 H.264 (what x264enc makes of videotestsrc's default format): no browser plays it.
      "[pipeline cam444]\nkey=live/cam444\nsource=videotestsrc is-live=true ! video/x-raw,"
      "format=Y444,width=160,height=120,framerate=15/1 ! x264enc tune=zerolatency "
      "speed-preset=ultrafast key-int-max=15 ! h264parse\n\n"
      "[pipeline vp8]\nkey=live/vp8\nsource=videotestsrc is-live=true ! " +
      small + " ! vp8enc deadline=1 keyframe-max-dist=15\n\n" + token_config() + "player-idle=2\n";
  setenv("TMPDIR", tmp.c_str(), 1);
  Arcly a(dir, config);
  unsetenv("TMPDIR");
  const int port = a.port;
  auto stream = [&](const std::string& key) {
    return request(port, "GET", "/v1/streams/" + key, "", kRead);
  };
  auto subscribers = [&] { return num(Doc(stream("live/cam").body).obj(), "subscribers"); };
  for (const char* key : {"live/cam", "live/cam444", "live/vp8"})
    ck_assert_msg(
        wait_until(
            [&] {
              Doc d(stream(key).body);
              return d.obj() && json_object_has_member(d.obj(), "tracks") &&
                     json_array_get_length(json_object_get_array_member(d.obj(), "tracks")) > 0;
            },
            30s),
        "%s never went live:\n%s", key, a.log().c_str());
  const double before = subscribers();
  const std::string live = "/v1/streams/live/cam/live/";

  expect_error(request(port, "GET", live + "index.m3u8"), 401, "Authorization", "no token");
  ck_assert_msg(hls_dirs().empty(), "a refused request started a player");

  // The first playlist: held until hlssink2 closed the first segment.
  const auto asked = std::chrono::steady_clock::now();
  Reply r = request(port, "GET", live + "index.m3u8", "", kRead);
  const double first_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - asked).count();
  ck_assert_msg(r.status == 200 && r.headers["content-type"] == "application/vnd.apple.mpegurl",
                "%d %s\n%s", r.status, r.body.c_str(), a.log().c_str());
  std::printf("first playlist after %.0f ms\n", first_ms);
  std::smatch m;
  ck_assert_msg(
      r.body.rfind("#EXTM3U", 0) == 0 &&
          std::regex_search(r.body, m, std::regex("#EXTINF:[0-9.]+,\\s*(segment[0-9]{5}\\.ts)")),
      "not a playlist with a segment:\n%s", r.body.c_str());
  const std::string segment = m[1].str();

  // The segment: MPEG-TS that GstDiscoverer and ffprobe play, H.264 from a keyframe.
  r = request(port, "GET", live + segment, "", kRead);
  ck_assert_msg(r.status == 200 && r.headers["content-type"] == "video/mp2t" &&
                    r.body.size() > 1000 && r.body[0] == 0x47,
                "%s: %d %zu bytes", segment.c_str(), r.status, r.body.size());
  const std::string ts = dir + "/" + segment;
  std::ofstream(ts, std::ios::binary) << r.body;
  const std::string caps = discover_video_caps(ts);
  ck_assert_msg(
      caps.rfind("video/x-h264", 0) == 0 && caps.find("width=(int)320") != std::string::npos,
      "GstDiscoverer cannot play %s: '%s'", ts.c_str(), caps.c_str());
  const std::string probe =
      run("ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,width,height "
          "-show_entries frame=key_frame -read_intervals %+#1 -of csv=p=0 '" +
          ts + "'");
  ck_assert_msg(probe.find("h264,320,240") != std::string::npos && probe.rfind("1", 0) == 0, "%s",
                probe.c_str());

  // One pipeline for the key, however often it is asked; its own directory.
  ck_assert_int_eq(request(port, "GET", live + "index.m3u8", "", kRead).status, 200);
  ck_assert_int_eq(hls_dirs().size(), 1);
  const fs::path hls = hls_dirs()[0];
  ck_assert_msg(fs::exists(hls / "index.m3u8") && fs::exists(hls / segment), "%s", hls.c_str());
  ck_assert_msg(subscribers() == before + 1, "subscribers %.0f, before %.0f", subscribers(),
                before);

  // Nothing but hlssink2's own names from that directory.
  gchar* escaped = g_uri_escape_string((hls / "index.m3u8").c_str(), nullptr, FALSE);
  const std::string absolute = escaped;
  g_free(escaped);
  for (const std::string& path :
       {live + "..%2f..%2f..%2f..%2fetc%2fpasswd", live + "../../../../../../etc/passwd",
        live + "%2e%2e", live + absolute, live + "index.m3u8%00", live + "segment00000.ts%2f..",
        live + "segment0000a.ts", live + ".%2findex.m3u8",
        std::string("/v1/streams/live/cam/live/")}) {
    r = request(port, "GET", path, "", kRead);
    ck_assert_msg(r.status >= 400 && r.status < 500 && r.body.find("root:") == std::string::npos &&
                      r.body.find("#EXTM3U") == std::string::npos,
                  "%s: %d %s", path.c_str(), r.status, r.body.c_str());
  }
  expect_error(request(port, "GET", live + "segment99999.ts", "", kRead), 404, "file",
               "a segment not written");
  expect_error(request(port, "GET", live + "x.mp4", "", kRead), 404, "file", "another name");
  expect_error(request(port, "GET", "/v1/streams/live/nope/live/index.m3u8", "", kRead), 404, "key",
               "unknown key");
  expect_error(request(port, "GET", "/v1/streams/live/nope/live/segment00000.ts", "", kRead), 404,
               "key", "a segment of no player");
  expect_error(request(port, "POST", live + "index.m3u8", "", kAdmin), 405, nullptr, "POST");

  // What a browser cannot play: the codec (and the profile) named.
  r = request(port, "GET", "/v1/streams/live/vp8/live/index.m3u8", "", kRead);
  expect_error(r, 415, "codec", "vp8");
  ck_assert_msg(r.body.find("vp8") != std::string::npos, "%s", r.body.c_str());
  r = request(port, "GET", "/v1/streams/live/cam444/live/index.m3u8", "", kRead);
  expect_error(r, 415, "codec", "h264 4:4:4");
  ck_assert_msg(r.body.find("high-4:4:4") != std::string::npos, "%s", r.body.c_str());
  ck_assert_int_eq(hls_dirs().size(), 1);

  // Nobody asks for player-idle (2 s): the pipeline stops, its directory goes.
  ck_assert_msg(wait_until([&] { return hls_dirs().empty() && subscribers() == before; }, 20s),
                "the idle player did not stop (%zu dirs, %.0f subscribers):\n%s", hls_dirs().size(),
                subscribers(), a.log().c_str());
  expect_error(request(port, "GET", live + segment, "", kRead), 404, "key", "after the stop");
  // Asked again: a new one.
  r = request(port, "GET", live + "index.m3u8", "", kRead);
  ck_assert_msg(r.status == 200 && hls_dirs().size() == 1, "%d %s", r.status, r.body.c_str());

  // Shutdown stops it too and leaves nothing behind.
  ck_assert_msg(a.stop() == 0, "arcly %s", a.why_stopped().c_str());
  ck_assert_msg(hls_dirs().empty(), "%s left behind at shutdown", hls_dirs()[0].c_str());
  fs::remove_all(dir);
}
END_TEST

// Without a token only loopback clients are served.
START_TEST(without_a_token_only_loopback_is_served) {
  const std::string dir = scratch("loopback");
  Arcly a(dir, camera_config(dir, "[http]\nlisten=0.0.0.0:0\n"));
  ck_assert_int_eq(request(a.port, "GET", "/v1/workers").status, 200);
  std::string other;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) == 0) {
    for (ifaddrs* i = list; i; i = i->ifa_next) {
      if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
      char buf[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
      if (std::string(buf).rfind("127.", 0) != 0) {
        other = buf;
        break;
      }
    }
    freeifaddrs(list);
  }
  if (other.empty()) {
    std::printf("no non-loopback IPv4 address here: the refusal is not exercised\n");
  } else {
    expect_error(request(a.port, "GET", "/v1/workers", "", "", other), 403, nullptr,
                 "non-loopback without a token");
    ck_assert_int_eq(request(a.port, "GET", "/healthz", "", "", other).status, 200);
  }
  ck_assert_msg(a.stop() == 0, "arcly %s", a.why_stopped().c_str());
  fs::remove_all(dir);
}
END_TEST

START_TEST(check_names_a_bad_http_section) {
  const std::string dir = scratch("check");
  const std::string conf = dir + "/bad.conf";
  std::ofstream(conf)
      << "[http]\nlisten=nowhere\ntoken=same\nread-token=same\nport=1\nplayer-idle=0.5\n";
  int status = -1;
  const std::string out = run("'" + env("ARCLY_HOST_BIN") + "' check '" + conf + "'", &status);
  ck_assert_msg(status != 0, "%s", out.c_str());
  ck_assert_msg(out.find("[http] listen:") != std::string::npos, "%s", out.c_str());
  ck_assert_msg(out.find("[http] read-token:") != std::string::npos, "%s", out.c_str());
  ck_assert_msg(out.find("[http] port") != std::string::npos, "%s", out.c_str());
  ck_assert_msg(out.find("[http] player-idle: must be at least 1 s") != std::string::npos, "%s",
                out.c_str());
  // The control plane listens on one IP, never on every address by accident.
  std::ofstream(conf) << "[http]\nlisten=:9090\n";
  const std::string every = run("'" + env("ARCLY_HOST_BIN") + "' check '" + conf + "'", &status);
  ck_assert_msg(status != 0, "%s", every.c_str());
  ck_assert_msg(
      every.find("[http] listen: ':9090' does not name an IP address") != std::string::npos, "%s",
      every.c_str());
  fs::remove_all(dir);
}
END_TEST

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  gst_pb_utils_init();
  return testing::run_suite(
      "http",
      {api_answers_with_json_and_refuses_bad_input, metrics_parse_with_the_prometheus_parser,
       event_clip_covers_pre_and_post_and_a_second_event_extends_it,
       snapshot_is_a_jpeg_from_the_cache, live_player_serves_hls_and_stops_when_idle,
       without_a_token_only_loopback_is_served, check_names_a_bad_http_section},
      200);
}
