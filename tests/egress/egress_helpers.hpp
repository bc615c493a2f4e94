// Scaffolding for the egress tests: an in-process publisher (a real x264enc
// through arclysink), raw RTSP exchanges for status codes, external peers
// (ffmpeg/ffprobe/srt-live-transmit) with bounded run times. Every wait has a
// deadline and fails the test instead of hanging; nothing asserts on elapsed time.
#pragma once

#include <gst/app/gstappsink.h>
#include <poll.h>

#include <cstdio>
#include <mutex>

#include "../ingest/ingest_helpers.hpp"
#include "arcly/engine.hpp"
#include "engine_registry.hpp"

namespace egress_testing {

using namespace std::chrono_literals;
using ingest_testing::free_port;

inline GstElement* launch(const std::string& line) {
  GError* error = nullptr;
  GstElement* p = gst_parse_launch(line.c_str(), &error);
  ck_assert_msg(p != nullptr && !error, "cannot build '%s': %s", line.c_str(),
                error ? error->message : "?");
  return p;
}

inline void stop_pipeline(GstElement*& p) {
  if (!p) return;
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  p = nullptr;
}

// A live 320x240 H.264 camera (and AAC with `audio`) published as `key` in the
// default engine. `gop` frames between keyframes (30 fps).
class Publisher {
 public:
  explicit Publisher(const std::string& key, bool audio = false, int gop = 300) : key_(key) {
    std::string line =
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! "
        "x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max=" +
        std::to_string(gop) + " ! h264parse ! arclysink name=pub stream=" + key;
    if (audio)
      line +=
          " audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=1 ! avenc_aac ! "
          "aacparse ! pub.";
    pipeline_ = launch(line);
    ck_assert(gst_element_set_state(pipeline_, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  }
  // Any publisher pipeline; it must contain `arclysink stream=KEY`.
  struct Line {
    std::string text;
  };
  Publisher(const std::string& key, const Line& line) : key_(key) {
    pipeline_ = launch(line.text);
    ck_assert(gst_element_set_state(pipeline_, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE);
  }
  ~Publisher() { stop(); }
  void stop() { stop_pipeline(pipeline_); }
  GstElement* pipeline() const { return pipeline_; }
  // Waits until `frames` video frames were published after the first keyframe:
  // a reader joining now joins in the middle of a GOP.
  void wait_frames(int frames) {
    auto engine = arcly::gst::engine_for("default");
    auto stream = engine->wait_for_stream(arcly::StreamKey::parse(key_), 20000ms);
    auto sub = stream->subscribe({arcly::StartAt::Keyframe, {}, true});
    const auto seen = ingest_testing::read_frames(sub, frames);
    ck_assert_int_ge(seen.video, frames);
  }

 private:
  std::string key_;
  GstElement* pipeline_ = nullptr;
};

// A TCP socket connected to 127.0.0.1:`port`, or -1. `receive_buffer` > 0 sets
// SO_RCVBUF before connecting (a small one closes the TCP window at once).
inline int connect_loopback(int port, int receive_buffer = 0) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (receive_buffer > 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads from `fd` until the bytes read hold a head's blank line, the peer
// closes, or `wait` passes; returns every byte read.
inline std::string read_head(int fd, std::chrono::seconds wait) {
  std::string out;
  char buf[4096];
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (out.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

// Sends one raw RTSP request and returns the response head ("" on no answer).
inline std::string rtsp_exchange(int port, const std::string& request,
                                 std::chrono::seconds wait = 20s) {
  const int fd = connect_loopback(port);
  if (fd < 0) return "";
  ssize_t sent = send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  (void)sent;
  const std::string out = read_head(fd, wait);
  close(fd);
  return out.substr(0, out.find("\r\n\r\n"));
}

inline int rtsp_status(const std::string& head) {
  if (head.size() < 12 || !head.starts_with("RTSP/1.0 ")) return -1;
  return std::atoi(head.c_str() + 9);
}

inline std::string describe(int port, const std::string& path, const std::string& extra = "") {
  return "DESCRIBE rtsp://127.0.0.1:" + std::to_string(port) + path +
         " RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n" + extra + "\r\n";
}

// Runs a shell command (bounded by `timeout`), returns its stdout and sets `status`.
inline std::string run(const std::string& cmd, int* status = nullptr, int timeout_s = 30) {
  const std::string full = "timeout -s KILL " + std::to_string(timeout_s) + " " + cmd;
  FILE* f = popen(full.c_str(), "r");
  ck_assert(f != nullptr);
  std::string out;
  char buf[1024];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  const int rc = pclose(f);
  if (status) *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

// Collects log lines of a server (thread-safe).
struct LogLines {
  std::mutex mutex;
  std::vector<std::string> lines;
  std::function<void(const std::string&)> sink() {
    return [this](const std::string& l) {
      std::lock_guard lock(mutex);
      lines.push_back(l);
    };
  }
  int count(const std::string& needle) {
    std::lock_guard lock(mutex);
    int n = 0;
    for (const auto& l : lines) n += l.find(needle) != std::string::npos;
    return n;
  }
  // The first line with `needle` that does not start with `prefix` (e.g. the
  // peer's address), or "".
  std::string first_not_starting(const std::string& needle, const std::string& prefix) {
    std::lock_guard lock(mutex);
    for (const auto& l : lines)
      if (l.find(needle) != std::string::npos && l.rfind(prefix, 0) != 0) return l;
    return {};
  }
};

// `settings` with the server's log lines kept in `log`.
template <class Settings>
Settings with_log(Settings settings, LogLines& log) {
  settings.log = log.sink();
  return settings;
}

inline std::string build_dir_file(const std::string& name) {
  return ingest_testing::build_dir() + "/" + name;
}

// Sends bytes and hangs up without waiting for an answer.
inline void poke(int port, const std::string& bytes) {
  const int fd = connect_loopback(port);
  if (fd < 0) return;
  ssize_t sent = send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  (void)sent;
  close(fd);
}

}  // namespace egress_testing

// Runs the suite, or only the tests whose names contain $EGRESS_ONLY (debugging).
inline int run_selected(const char* name, std::initializer_list<const TTest*> tests,
                        double timeout_s) {
  const char* only = std::getenv("EGRESS_ONLY");
  if (!only) return testing::run_suite(name, tests, timeout_s);
  Suite* s = suite_create(name);
  TCase* tc = tcase_create("all");
  tcase_set_timeout(tc, timeout_s);
  for (const TTest* t : tests)
    if (std::strstr(t->name, only)) tcase_add_test(tc, t);
  suite_add_tcase(s, tc);
  SRunner* sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  const int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}
