// The HTTP control plane end to end: the real `arcly` binary with a synthetic
// camera, asked over real HTTP (a socket client that controls every byte, and
// curl), answers checked with json-glib's parser, metrics with the Prometheus
// client's own parser, event clips with GstDiscoverer and ffprobe against the
// publisher timestamps the API reports.
#include <fcntl.h>
#include <gst/gst.h>
#include <gst/pbutils/pbutils.h>
#include <ifaddrs.h>
#include <json-glib/json-glib.h>
#include <spawn.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "../engine/check_main.hpp"
#include "http_client.hpp"

extern char** environ;

using namespace std::chrono_literals;
using namespace http_testing;
namespace fs = std::filesystem;

namespace {

const char* kAdmin = "adm1n-S3CRET-token-4242";
const char* kRead = "r3ad-0nly-S3CRET-7777";
constexpr double kFrame = 1.0 / 30;  // the camera's frame interval, s
constexpr double kGop = 1.0;         // key-int-max=30 at 30 fps

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string scratch(const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("arcly-http-" + std::to_string(getpid()) + "-" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

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

// `arcly run` as a child, its output (stdout and stderr) in a file.
class Arcly {
 public:
  Arcly(const std::string& dir, const std::string& config) {
    conf_ = dir + "/arcly.conf";
    log_ = dir + "/arcly.log";
    std::ofstream(conf_) << config;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    const std::string bin = env("ARCLY_HOST_BIN");
    std::vector<std::string> argv{bin, "run", conf_, "--for", "300"};
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    // Everything the HTTP layer and the recorders say, to prove no token is in it.
    setenv("GST_DEBUG", "3,arclyhttp:7,arclyrecord:6,arclyhost:6", 1);
    setenv("GST_DEBUG_NO_COLOR", "1", 1);
    if (posix_spawn(&pid_, bin.c_str(), &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    unsetenv("GST_DEBUG");
    posix_spawn_file_actions_destroy(&fa);
    ck_assert_msg(pid_ > 0, "cannot start %s", bin.c_str());
    std::smatch m;
    ck_assert_msg(wait_for("listening on http://([0-9.]+):([0-9]+)/", 20s, &m),
                  "no [http] listening line:\n%s", log().c_str());
    port = std::stoi(m[2].str());
  }
  ~Arcly() { stop(); }
  int stop() {
    if (pid_ <= 0) return status_;
    kill(pid_, SIGINT);
    int st = 0;
    for (int i = 0; i < 300 && waitpid(pid_, &st, WNOHANG) == 0; ++i)
      std::this_thread::sleep_for(100ms);
    if (waitpid(pid_, &st, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &st, 0);
    }
    pid_ = -1;
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return status_;
  }
  std::string log() const { return read_file(log_); }
  // Polls the log for `pattern` (bounded): waiting for an event, not timing one.
  bool wait_for(const std::string& pattern, std::chrono::seconds limit, std::smatch* m = nullptr) {
    const std::regex re(pattern);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      text_ = log();
      std::smatch local;
      if (std::regex_search(text_, m ? *m : local, re)) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }
  const std::string& config_path() const { return conf_; }
  int port = 0;

 private:
  std::string conf_, log_, text_;
  pid_t pid_ = -1;
  int status_ = -1;
};

// json-glib's parse of a reply body; null when it is not JSON.
class Doc {
 public:
  explicit Doc(const std::string& text) : parser_(json_parser_new()) {
    if (json_parser_load_from_data(parser_, text.data(), static_cast<gssize>(text.size()), nullptr))
      root_ = json_parser_get_root(parser_);
  }
  ~Doc() { g_object_unref(parser_); }
  JsonObject* obj() const {
    return root_ && JSON_NODE_HOLDS_OBJECT(root_) ? json_node_get_object(root_) : nullptr;
  }

 private:
  JsonParser* parser_;
  JsonNode* root_ = nullptr;
};

std::string str(JsonObject* o, const char* name) {
  return o && json_object_has_member(o, name) && !json_object_get_null_member(o, name)
             ? json_object_get_string_member_with_default(o, name, "")
             : "";
}
double num(JsonObject* o, const char* name) {
  if (!o || !json_object_has_member(o, name) || json_object_get_null_member(o, name)) return -1e18;
  return json_object_get_double_member(o, name);
}

// An error reply: the status, JSON {"error", "field"} naming `field`.
void expect_error(const Reply& r, int status, const char* field, const char* what) {
  Doc d(r.body);
  ck_assert_msg(r.status == status, "%s: status %d, wanted %d: %s", what, r.status, status,
                r.body.c_str());
  ck_assert_msg(d.obj() && !str(d.obj(), "error").empty(), "%s: not a JSON error: %s", what,
                r.body.c_str());
  if (field)
    ck_assert_msg(str(d.obj(), "field") == field, "%s: field '%s', wanted '%s'", what,
                  str(d.obj(), "field").c_str(), field);
}

bool wait_until(const std::function<bool()>& pred, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

double discover(const std::string& file) {
  GstDiscoverer* d = gst_discoverer_new(15 * GST_SECOND, nullptr);
  gchar* uri = gst_filename_to_uri(file.c_str(), nullptr);
  GstDiscovererInfo* info = gst_discoverer_discover_uri(d, uri, nullptr);
  double seconds = -1;
  if (info && gst_discoverer_info_get_result(info) == GST_DISCOVERER_OK)
    seconds = static_cast<double>(gst_discoverer_info_get_duration(info)) / GST_SECOND;
  if (info) gst_discoverer_info_unref(info);
  g_free(uri);
  g_object_unref(d);
  return seconds;
}

std::string run(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int st = pclose(p);
  if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
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

  // 500 clients at once.
  {
    std::vector<int> fds;
    for (int i = 0; i < 500; ++i) {
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
    ck_assert_int_eq(ok, 500);
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

  ck_assert_int_eq(a.stop(), 0);
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

START_TEST(metrics_parse_with_the_prometheus_parser) {
  const std::string dir = scratch("metrics");
  Arcly a(dir, camera_config(dir, token_config()));
  wait_live(a);
  // Let the counters move past the first frames.
  ck_assert(wait_until(
      [&] {
        Doc d(request(a.port, "GET", "/v1/streams/live/cam", "", kRead).body);
        return num(d.obj(), "keyframes") >= 2;
      },
      20s));
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
  const double pre = 2, post = 2, post2 = 3;
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
  ck_assert_int_eq(a.stop(), 0);
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
  ck_assert_int_eq(a.stop(), 0);
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
  ck_assert_int_eq(a.stop(), 0);
  fs::remove_all(dir);
}
END_TEST

START_TEST(check_names_a_bad_http_section) {
  const std::string dir = scratch("check");
  const std::string conf = dir + "/bad.conf";
  std::ofstream(conf) << "[http]\nlisten=nowhere\ntoken=same\nread-token=same\nport=1\n";
  int status = -1;
  const std::string out = run("'" + env("ARCLY_HOST_BIN") + "' check '" + conf + "'", &status);
  ck_assert_msg(status != 0, "%s", out.c_str());
  ck_assert_msg(out.find("[http] listen:") != std::string::npos, "%s", out.c_str());
  ck_assert_msg(out.find("[http] read-token:") != std::string::npos, "%s", out.c_str());
  ck_assert_msg(out.find("[http] port") != std::string::npos, "%s", out.c_str());
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
       snapshot_is_a_jpeg_from_the_cache, without_a_token_only_loopback_is_served,
       check_names_a_bad_http_section},
      200);
}
