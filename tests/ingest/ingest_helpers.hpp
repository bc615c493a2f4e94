// Scaffolding for the ingest tests: real peers as child processes, free ports,
// and bounded waits on a stream's frames (never a sleep-based assertion).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gst/gst.h>
#include "../engine/check_main.hpp"

extern char** environ;

namespace ingest_testing {

using namespace std::chrono_literals;

// A port nobody listens on right now (TCP or UDP as asked).
inline int free_port(int type = SOCK_STREAM) {
  int fd = socket(AF_INET, type, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// A child process; killed (SIGKILL) and reaped on destruction.
class Process {
 public:
  Process() = default;
  // Runs argv; stdin from `stdin_path` when given, stdout piped (see wait_for_line).
  explicit Process(const std::vector<std::string>& argv, const std::string& stdin_path = "") {
    int out[2];
    if (pipe(out) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    if (!stdin_path.empty())
      posix_spawn_file_actions_addopen(&fa, 0, stdin_path.c_str(), O_RDONLY, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    out_ = fdopen(out[0], "r");
  }
  Process(Process&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)), out_(std::exchange(o.out_, nullptr)) {}
  Process& operator=(Process&& o) noexcept {
    stop();
    pid_ = std::exchange(o.pid_, -1);
    out_ = std::exchange(o.out_, nullptr);
    return *this;
  }
  ~Process() { stop(); }

  bool running() const { return pid_ > 0; }
  // Reads stdout until a line equal to `line` (true) or EOF (false).
  bool wait_for_line(const char* line) {
    char buf[512];
    while (out_ && std::fgets(buf, sizeof buf, out_)) {
      buf[std::strcspn(buf, "\n")] = 0;
      if (std::strcmp(buf, line) == 0) return true;
    }
    return false;
  }
  // Waits for the process to end by itself; returns its exit status.
  int wait() {
    int status = 0;
    if (pid_ > 0) waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  void stop(int sig = SIGKILL) {
    if (pid_ > 0) {
      kill(pid_, sig);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (out_) {
      std::fclose(out_);
      out_ = nullptr;
    }
  }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
};

inline std::string build_dir() {
  const char* d = std::getenv("ARCLY_TEST_BUILDDIR");
  return d ? d : ".";
}

// Starts the test RTSP camera and waits until it listens.
inline Process rtsp_server(int port, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{build_dir() + "/arcly-test-rtsp-server", std::to_string(port)};
  argv.insert(argv.end(), extra.begin(), extra.end());
  Process p(argv);
  ck_assert_msg(p.wait_for_line("ready"), "the test RTSP server did not start on port %d", port);
  return p;
}

struct Seen {
  int video = 0;
  int audio = 0;
  int configs = 0;
  int disconts = 0;
  bool closed = false;
  // The media frames' age: the monotonic clock now minus their pts. Publisher
  // timestamps are engine time (gst/engine_time.hpp), so this is how long ago
  // the ingest pipeline played them: seconds at most, whoever publishes.
  std::int64_t min_age_ns = INT64_MAX;
  std::int64_t max_age_ns = INT64_MIN;
  // Fails unless every frame's age was within `bound`.
  void assert_engine_time(std::chrono::seconds bound = 10s) const {
    const std::int64_t b = std::chrono::nanoseconds(bound).count();
    ck_assert_msg(min_age_ns > -b && max_age_ns < b,
                  "publisher timestamps are not engine time: frame ages %.3f .. %.3f s",
                  static_cast<double>(min_age_ns) / 1e9, static_cast<double>(max_age_ns) / 1e9);
  }
};

// The `timestamp/x-ntp` reference timestamp meta of `buffer` (rtspsrc's capture
// time, from RTCP sender reports; NTP counts from 1900) as Unix-epoch wall-clock
// ns, comparable with g_get_real_time(); -1 if the buffer has none.
inline std::int64_t ntp_meta_unix_ns(GstBuffer* buffer) {
  GstCaps* ntp = gst_caps_new_empty_simple("timestamp/x-ntp");
  const GstReferenceTimestampMeta* meta = gst_buffer_get_reference_timestamp_meta(buffer, ntp);
  gst_caps_unref(ntp);
  constexpr std::int64_t kNtpToUnix = 2208988800LL * GST_SECOND;
  return meta ? static_cast<std::int64_t>(meta->timestamp) - kNtpToUnix : -1;
}

// Reads from `sub` until `want_video` video frames (and `want_audio` audio
// frames) arrived, the stream closed, or `limit` passed.
inline Seen read_frames(arcly::Subscription& sub, int want_video, int want_audio = 0,
                        std::chrono::milliseconds limit = 20s) {
  Seen seen;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (seen.video < want_video || seen.audio < want_audio) {
    auto r = sub.recv(deadline);
    if (r.status == arcly::RecvStatus::Closed) {
      seen.closed = true;
      break;
    }
    if (r.status != arcly::RecvStatus::Frame) {
      if (r.status == arcly::RecvStatus::Lagged) continue;
      break;
    }
    const auto& f = *r.frame;
    if (f.is_config()) {
      ++seen.configs;
    } else {
      if (f.is_discont()) ++seen.disconts;
      const std::int64_t age = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count() -
                               f.pts;
      seen.min_age_ns = std::min(seen.min_age_ns, age);
      seen.max_age_ns = std::max(seen.max_age_ns, age);
      if (f.kind == arcly::MediaKind::Video) ++seen.video;
      if (f.kind == arcly::MediaKind::Audio) ++seen.audio;
    }
  }
  return seen;
}

}  // namespace ingest_testing
