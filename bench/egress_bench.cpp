// egress-bench: what a network viewer of arcly waits for, and what a reader costs,
// against a plain gst-rtsp-server and a plain srtsink serving the same live encoder.
//
// The encoder (every server runs its own copy, in its own process):
//   videotestsrc is-live=true pattern=smpte horizontal-speed=4 ! 1280x720 30 fps !
//   x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=4000 !
//   h264parse config-interval=-1              (720p30, 2 s GOP, ~4 Mbit/s)
//
// Servers, one at a time (so that only one encoder runs while a figure is taken):
//   arcly  `arcly run` with that encoder as a [pipeline] section, [rtsp-server] and
//          [srt-server] (the default start mode, live-edge, for RTSP; keyframe for SRT)
//   arcly shared  the same with [rtsp-server] media=shared: the live-edge readers
//          share one media, each sent the cached GOP when it joins (RTSP only)
//   plain  arcly-test-rtsp-server --launch "( ENCODER ! rtph264pay name=pay0 )": a
//          shared media, as gst-rtsp-server's test-launch serves it
//   srtsink  gst-launch-1.0 ENCODER ! mpegtsmux ! srtsink mode=listener
// Each server first gets one warm reader (an rtspsrc in this process; for srtsink
// none), so its encoder runs before any measured client arrives.
//
// First picture: a client's start to its first decoded picture, at PHASES points of
// the GOP. Trial k starts at T0 + k * (GOP + 5/12 GOP): 12 trials land on 12
// different sixths of the GOP, whatever the encoder's phase at T0. Clients:
//   ffmpeg   `ffmpeg -analyzeduration 0 -probesize 32 -rtsp_transport tcp -i URL
//            -vf showinfo -f null -` (or the srt:// URL): wall time from spawn to the
//            showinfo line of the first intact picture (iskey:1; ffmpeg also shows
//            error-concealed pictures decoded without their reference before it)
//   rtspsrc  rtspsrc protocols=tcp latency=0 ! rtph264depay ! h264parse ! avdec_h264
//            output-corrupt=false ! fakesink in this process: set_state(PLAYING) to the
//            decoder's first output buffer
// A trial that has no picture after 2.7 s counts as 2.7 s and is marked.
//
// Behind live: the rtspsrc client above with add-reference-timestamp-meta=true
// (arcly at its default start, live-edge), at the same GOP phases (trial k at
// T0 + k * (4 GOP + 5/12 GOP), so that a trial ends before the next): 5 s after
// its first decoded picture, the first decoded picture that carries a
// `timestamp/x-ntp` meta gives wall-clock now - that capture time. The meta comes
// from the server's RTCP sender reports: arcly's map RTP time to the publisher's
// time of the frame (for this [pipeline] publisher, arclysink: the frame's clock
// time in the encoder pipeline, i.e. its capture time); the plain server's are
// 1.22's default, the time its pipeline sends the packet: capture + that
// pipeline's latency (videotestsrc's frame, x264enc's). So the plain figure
// starts later and leaves its encoder pipeline's latency out; arcly's does not. A
// trial without such a picture within 2 s is a miss
// (left out of median and max, counted).
//
// Scale: READERS RTSP/TCP readers (rtspsrc ! fakesink, no decoding, in a child
// process) of the one stream. The server process's CPU (utime + stime from /proc)
// over a WINDOW with the warm reader only, then over the same window with the
// readers; per reader: (CPU with - CPU without) / READERS / window-minutes, and
// (VmRSS with - VmRSS without) / READERS. The child reports readers that got no
// buffer in the last two seconds, so a stalled server cannot look cheap.
//
// Usage: egress-bench [PHASES] [READERS] [WINDOW]   (defaults 12, 200, 15; ~15 min)
//        egress-bench --readers N URL                (the scale child)
#include <fcntl.h>
#include <gst/gst.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kEncoder =
    "videotestsrc is-live=true pattern=smpte horizontal-speed=4 ! "
    "video/x-raw,width=1280,height=720,framerate=30/1 ! "
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate=4000 ! "
    "h264parse config-interval=-1";
constexpr auto kGop = 2000ms;
constexpr auto kTrialTimeout = 2700ms;
constexpr auto kViewing = 5s;         // behind live is taken after this much viewing
constexpr auto kCaptureTimeout = 2s;  // for a picture with a capture time, after that
constexpr std::int64_t kNtpToUnix = 2208988800LL * 1000000000LL;  // ns from 1900 to 1970
constexpr const char* kKey = "bench/cam";

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// ---- processes ------------------------------------------------------------------

pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    std::fprintf(stderr, "egress-bench: cannot run %s: %s\n", args[0].c_str(), std::strerror(rc));
    std::exit(1);
  }
  return pid;
}

// Waits for `pid` to exit for at most `timeout`; true when it did.
bool wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto end = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) return true;
    if (Clock::now() >= end) return false;
    std::this_thread::sleep_for(500us);
  }
}

void stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGINT);
  if (wait_exit(pid, 8s)) return;
  kill(pid, SIGKILL);
  wait_exit(pid, 5s);
}

int free_port(int type) {
  const int fd = socket(AF_INET, type, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(in)), {});
  const auto close_paren = all.rfind(')');
  if (close_paren == std::string::npos) return 0;
  std::istringstream rest(all.substr(close_paren + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6);
  return 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

std::string find_program(const char* argv0, const std::string& rel, const char* name) {
  const fs::path p = fs::path(argv0).parent_path() / rel;
  std::error_code ec;
  if (fs::exists(p, ec)) return fs::canonical(p, ec).string();
  std::fprintf(stderr, "egress-bench: %s not found at %s (build the whole tree)\n", name,
               p.c_str());
  std::exit(1);
}

// ---- clients ----------------------------------------------------------------------

// ms from spawn to the exit of `ffmpeg ... -frames:v 1`, or -1 past the timeout.
double ffmpeg_first_picture(const std::string& url, const std::string& log) {
  // A low-latency viewer's probe settings: with ffmpeg's defaults its own stream
  // probing (~0.85 s over RTSP, ~4.5 s over SRT/MPEG-TS) hides either server.
  // ffmpeg's decoder also shows pictures decoded from P-frames whose reference it
  // never had (error-concealed grey); showinfo marks the first intact one, the
  // keyframe ("iskey:1"), and that is the picture measured.
  std::vector<std::string> args{"ffmpeg",           "-nostdin", "-hide_banner", "-loglevel", "info",
                                "-analyzeduration", "0",        "-probesize",   "32"};
  if (url.rfind("rtsp://", 0) == 0) {
    args.push_back("-rtsp_transport");
    args.push_back("tcp");
  }
  for (const char* a : {"-i", url.c_str(), "-vf", "showinfo", "-f", "null", "-"}) args.push_back(a);
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return -1;
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  const auto t0 = Clock::now();
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, "ffmpeg", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(fds[1]);
  double ms = -1;
  if (rc == 0) {
    std::string seen;
    char buf[4096];
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(t0 + kTrialTimeout - Clock::now());
      if (left.count() <= 0) break;
      pollfd p{fds[0], POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      const ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      seen.append(buf, static_cast<std::size_t>(n));
      if (seen.find("iskey:1") != std::string::npos) {
        ms = ms_since(t0);
        break;
      }
      if (seen.size() > 65536) seen.erase(0, seen.size() - 1024);
    }
    kill(pid, SIGKILL);
    wait_exit(pid, 5s);
  }
  close(fds[0]);
  return ms;
}

GstPadProbeReturn on_first_buffer(GstPad*, GstPadProbeInfo*, gpointer data) {
  auto* p = static_cast<std::promise<Clock::time_point>*>(data);
  p->set_value(Clock::now());
  return GST_PAD_PROBE_REMOVE;
}

GstElement* rtspsrc_pipeline(const std::string& url, bool decode, bool capture_times = false) {
  const std::string d = "rtspsrc location=" + url + " protocols=tcp latency=0 " +
                        (capture_times ? "add-reference-timestamp-meta=true " : "") + "! " +
                        (decode ? "rtph264depay ! h264parse ! avdec_h264 name=dec "
                                  "output-corrupt=false max-errors=-1 ! "
                                : "") +
                        "fakesink name=sink sync=false";
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(d.c_str(), &err);
  if (!p) {
    std::fprintf(stderr, "egress-bench: %s: %s\n", d.c_str(), err ? err->message : "?");
    std::exit(1);
  }
  return p;
}

// Calls `probe` for the buffers on pad `pad_name` of element `element` in `pipeline`.
void probe_pad(GstElement* pipeline, const char* element, const char* pad_name,
               GstPadProbeCallback probe, gpointer data) {
  GstElement* e = gst_bin_get_by_name(GST_BIN(pipeline), element);
  GstPad* pad = gst_element_get_static_pad(e, pad_name);
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, probe, data, nullptr);
  gst_object_unref(pad);
  gst_object_unref(e);
}

double rtspsrc_first_picture(const std::string& url) {
  GstElement* p = rtspsrc_pipeline(url, true);
  std::promise<Clock::time_point> first;
  auto got = first.get_future();
  probe_pad(p, "dec", "src", on_first_buffer, &first);
  const auto t0 = Clock::now();
  gst_element_set_state(p, GST_STATE_PLAYING);
  double ms = -1;
  if (got.wait_until(t0 + kTrialTimeout) == std::future_status::ready)
    ms = std::chrono::duration<double, std::milli>(got.get() - t0).count();
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  return ms;
}

// The decoder's output (its streaming thread only, but for `result`): the first
// picture starts the viewing; the first picture with a capture time after
// kViewing gives wall now - capture time.
struct BehindLive {
  bool started = false;
  Clock::time_point first{};
  bool done = false;
  std::promise<double> result;  // ms
};

GstPadProbeReturn on_decoded(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* b = static_cast<BehindLive*>(data);
  const auto now = Clock::now();
  if (!b->started) {
    b->started = true;
    b->first = now;
    return GST_PAD_PROBE_OK;
  }
  if (b->done || now < b->first + kViewing) return GST_PAD_PROBE_OK;
  GstCaps* ntp = gst_caps_new_empty_simple("timestamp/x-ntp");
  const GstReferenceTimestampMeta* meta =
      gst_buffer_get_reference_timestamp_meta(GST_PAD_PROBE_INFO_BUFFER(info), ntp);
  gst_caps_unref(ntp);
  if (!meta) return GST_PAD_PROBE_OK;
  const std::int64_t wall = g_get_real_time() * 1000;
  const std::int64_t capture = static_cast<std::int64_t>(meta->timestamp) - kNtpToUnix;
  b->done = true;
  b->result.set_value(static_cast<double>(wall - capture) / 1e6);
  return GST_PAD_PROBE_REMOVE;
}

// ms behind live after kViewing of viewing, or -1.
double rtspsrc_behind_live(const std::string& url) {
  GstElement* p = rtspsrc_pipeline(url, true, true);
  BehindLive b;
  auto got = b.result.get_future();
  probe_pad(p, "dec", "src", on_decoded, &b);
  const auto t0 = Clock::now();
  gst_element_set_state(p, GST_STATE_PLAYING);
  double ms = -1;
  if (got.wait_until(t0 + kTrialTimeout + kViewing + kCaptureTimeout) == std::future_status::ready)
    ms = got.get();
  gst_element_set_state(p, GST_STATE_NULL);  // the probe's thread has stopped
  gst_object_unref(p);
  return ms;
}

// A reader that keeps a server's encoder running; waits for its first buffer.
GstElement* warm_reader(const std::string& url) {
  for (int attempt = 0; attempt < 40; ++attempt) {
    GstElement* p = rtspsrc_pipeline(url, false);
    std::promise<Clock::time_point> first;
    auto got = first.get_future();
    probe_pad(p, "sink", "sink", on_first_buffer, &first);
    gst_element_set_state(p, GST_STATE_PLAYING);
    if (got.wait_for(3s) == std::future_status::ready) return p;
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
    std::this_thread::sleep_for(500ms);
  }
  std::fprintf(stderr, "egress-bench: %s never delivered a buffer\n", url.c_str());
  std::exit(1);
}

// ---- the scale child ------------------------------------------------------------

struct ReaderCount {
  std::atomic<std::uint64_t> buffers{0};
};

GstPadProbeReturn count_buffer(GstPad*, GstPadProbeInfo*, gpointer data) {
  static_cast<ReaderCount*>(data)->buffers.fetch_add(1, std::memory_order_relaxed);
  return GST_PAD_PROBE_OK;
}

int run_readers(int n, const std::string& url) {
  std::vector<GstElement*> pipelines;
  std::vector<ReaderCount> counts(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    GstElement* p = rtspsrc_pipeline(url, false);
    probe_pad(p, "sink", "sink", count_buffer, &counts[i]);
    gst_element_set_state(p, GST_STATE_PLAYING);
    pipelines.push_back(p);
  }
  bool ready = false;
  std::vector<std::uint64_t> last(static_cast<std::size_t>(n), 0);
  for (;;) {
    std::this_thread::sleep_for(2s);
    int silent = 0, started = 0;
    for (int i = 0; i < n; ++i) {
      const auto b = counts[i].buffers.load(std::memory_order_relaxed);
      if (b > 0) ++started;
      if (b == last[i]) ++silent;
      last[i] = b;
    }
    if (!ready && started == n) {
      ready = true;
      std::printf("ready %d\n", n);
    } else if (ready) {
      std::printf("silent %d\n", silent);
    }
    std::fflush(stdout);
  }
}

// ---- measurements -----------------------------------------------------------------

struct Series {
  std::string name;
  std::vector<double> ms;  // -1 = a miss (no picture within the timeout)
  // What a miss counts as in median and max; negative: left out.
  double miss_ms = std::chrono::duration<double, std::milli>(kTrialTimeout).count();
  std::vector<double> counted() const {
    std::vector<double> v;
    for (double x : ms)
      if (x >= 0 || miss_ms >= 0) v.push_back(x < 0 ? miss_ms : x);
    std::sort(v.begin(), v.end());
    return v;
  }
  double median() const {
    const std::vector<double> v = counted();
    if (v.empty()) return 0;
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  }
  double max() const {
    const std::vector<double> v = counted();
    return v.empty() ? 0 : v.back();
  }
  int misses() const { return static_cast<int>(std::count(ms.begin(), ms.end(), -1.0)); }
};

// PHASES trials of `trial`, trial k at T0 + k * (`gops` GOP + 5/12 GOP).
Series phases(const std::string& name, int n, const std::function<double()>& trial, int gops = 1,
              const char* miss = "no picture in 2.7 s") {
  Series s{name, {}};
  const auto step = kGop * gops + kGop * 5 / 12;
  const auto t0 = Clock::now();
  for (int k = 0; k < n; ++k) {
    std::this_thread::sleep_until(t0 + k * step);
    s.ms.push_back(trial());
    std::printf("  %-22s trial %2d: %s\n", name.c_str(), k,
                s.ms.back() < 0
                    ? miss
                    : (std::to_string(static_cast<int>(s.ms.back() + 0.5)) + " ms").c_str());
    std::fflush(stdout);
  }
  return s;
}

struct Scale {
  double cpu_per_reader_minute = 0;
  double kib_per_reader = 0;
  int silent = -1;
};

Scale scale(const char* self, pid_t server, const std::string& url, int readers, int window,
            const std::string& log) {
  std::this_thread::sleep_for(3s);
  const double rss0 = rss_kib(server);
  const double c0 = cpu_seconds(server);
  std::this_thread::sleep_for(std::chrono::seconds(window));
  const double idle = cpu_seconds(server) - c0;
  const pid_t child = spawn({self, "--readers", std::to_string(readers), url}, log);
  const auto deadline = Clock::now() + 90s;
  while (read_file(log).find("ready ") == std::string::npos && Clock::now() < deadline)
    std::this_thread::sleep_for(200ms);
  Scale s;
  if (read_file(log).find("ready ") == std::string::npos) {
    std::printf("  not every reader got data within 90 s (see %s)\n", log.c_str());
    stop(child);
    return s;
  }
  std::this_thread::sleep_for(3s);
  const double c1 = cpu_seconds(server);
  std::this_thread::sleep_for(std::chrono::seconds(window));
  const double loaded = cpu_seconds(server) - c1;
  const double rss1 = rss_kib(server);
  const std::string out = read_file(log);
  const auto at = out.rfind("silent ");
  if (at != std::string::npos) s.silent = std::atoi(out.c_str() + at + 7);
  stop(child);
  s.cpu_per_reader_minute = (loaded - idle) / readers / (window / 60.0);
  s.kib_per_reader = (rss1 - rss0) / readers;
  std::printf(
      "  server CPU %.2f s alone, %.2f s with %d readers over %d s; VmRSS %.0f -> %.0f KiB; "
      "readers silent in the last 2 s: %d\n",
      idle, loaded, readers, window, rss0, rss1, s.silent);
  return s;
}

// The RTSP figures of one server: a warm reader keeps its encoder running while
// ffmpeg and rtspsrc join at every phase, then the readers' cost.
struct RtspFigures {
  Series ffmpeg, rtspsrc, behind;
  Scale scale;
};

RtspFigures measure_rtsp(const std::string& who, const char* self, pid_t server,
                         const std::string& url, int n_phases, int readers, int window,
                         const fs::path& dir) {
  GstElement* warm = warm_reader(url);
  const std::string ff_log = (dir / "ffmpeg.log").string();
  RtspFigures f;
  f.ffmpeg =
      phases(who + " rtsp ffmpeg", n_phases, [&] { return ffmpeg_first_picture(url, ff_log); });
  f.rtspsrc = phases(who + " rtsp rtspsrc", n_phases, [&] { return rtspsrc_first_picture(url); });
  f.behind = phases(
      who + " behind live", n_phases, [&] { return rtspsrc_behind_live(url); }, 4,
      "no capture time after 5 s");
  f.behind.miss_ms = -1;
  std::printf("  scale: %d RTSP/TCP readers\n", readers);
  f.scale = scale(self, server, url, readers, window, (dir / ("readers-" + who + ".log")).string());
  gst_element_set_state(warm, GST_STATE_NULL);
  gst_object_unref(warm);
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  if (argc == 4 && std::strcmp(argv[1], "--readers") == 0)
    return run_readers(std::atoi(argv[2]), argv[3]);
  const int n_phases = argc > 1 ? std::max(1, std::atoi(argv[1])) : 12;
  const int readers = argc > 2 ? std::max(1, std::atoi(argv[2])) : 200;
  const int window = argc > 3 ? std::clamp(std::atoi(argv[3]), 3, 120) : 15;
  const std::string arcly = find_program(argv[0], "../host/arcly", "arcly");
  const std::string plain =
      find_program(argv[0], "../tests/ingest/arcly-test-rtsp-server", "arcly-test-rtsp-server");
  const fs::path dir = fs::temp_directory_path() / ("egress-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string log = (dir / "servers.log").string();
  std::printf("egress-bench: %d phases, %d readers, %d s windows; logs in %s\n", n_phases, readers,
              window, dir.c_str());

  // arcly
  const int rtsp_port = free_port(SOCK_STREAM), srt_port = free_port(SOCK_DGRAM);
  const std::string conf = (dir / "arcly.conf").string();
  std::ofstream(conf) << "[pipeline enc]\nkey=" << kKey << "\nsource=" << kEncoder
                      << "\n\n[rtsp-server]\nlisten=127.0.0.1:" << rtsp_port
                      << "\nanonymous-read=bench/*\n\n[srt-server]\nlisten=127.0.0.1:" << srt_port
                      << "\npublish=no\n";
  const std::string arcly_rtsp = "rtsp://127.0.0.1:" + std::to_string(rtsp_port) + "/" + kKey;
  const std::string arcly_srt =
      "srt://127.0.0.1:" + std::to_string(srt_port) + "?streamid=" + std::string(kKey);
  std::printf("\n[arcly] %s run %s\n", arcly.c_str(), conf.c_str());
  pid_t server = spawn({arcly, "run", conf}, (dir / "arcly.log").string());
  const std::string ff_log = (dir / "ffmpeg.log").string();
  const RtspFigures a =
      measure_rtsp("arcly", argv[0], server, arcly_rtsp, n_phases, readers, window, dir);
  Series a_srt =
      phases("arcly srt ffmpeg", n_phases, [&] { return ffmpeg_first_picture(arcly_srt, ff_log); });
  stop(server);

  // arcly, media=shared
  const int shared_port = free_port(SOCK_STREAM);
  const std::string shared_conf = (dir / "arcly-shared.conf").string();
  std::ofstream(shared_conf) << "[pipeline enc]\nkey=" << kKey << "\nsource=" << kEncoder
                             << "\n\n[rtsp-server]\nlisten=127.0.0.1:" << shared_port
                             << "\nanonymous-read=bench/*\nmedia=shared\n";
  const std::string shared_rtsp = "rtsp://127.0.0.1:" + std::to_string(shared_port) + "/" + kKey;
  std::printf("\n[arcly, media=shared] %s run %s\n", arcly.c_str(), shared_conf.c_str());
  server = spawn({arcly, "run", shared_conf}, (dir / "arcly-shared.log").string());
  const RtspFigures sh =
      measure_rtsp("arcly-shared", argv[0], server, shared_rtsp, n_phases, readers, window, dir);
  stop(server);

  // plain gst-rtsp-server, shared media
  const int plain_port = free_port(SOCK_STREAM);
  const std::string launch =
      std::string("( ") + kEncoder + " ! rtph264pay name=pay0 pt=96 config-interval=-1 )";
  const std::string plain_rtsp = "rtsp://127.0.0.1:" + std::to_string(plain_port) + "/cam";
  std::printf("\n[plain gst-rtsp-server] %s %d --launch '%s'\n", plain.c_str(), plain_port,
              launch.c_str());
  server =
      spawn({plain, std::to_string(plain_port), "--launch", launch}, (dir / "plain.log").string());
  const RtspFigures p =
      measure_rtsp("plain", argv[0], server, plain_rtsp, n_phases, readers, window, dir);
  stop(server);

  // plain srtsink
  const int srtsink_port = free_port(SOCK_DGRAM);
  const std::string srtsink_uri = "srt://127.0.0.1:" + std::to_string(srtsink_port);
  std::printf(
      "\n[plain srtsink] gst-launch-1.0 ENCODER ! mpegtsmux ! srtsink uri=%s?mode=listener\n",
      srtsink_uri.c_str());
  std::vector<std::string> gl{"gst-launch-1.0", "-q"};
  {
    std::istringstream words(kEncoder);
    for (std::string w; words >> w;) gl.push_back(w);
  }
  for (const char* w : {"!", "mpegtsmux", "!", "srtsink", "wait-for-connection=false"})
    gl.push_back(w);
  gl.push_back("uri=" + srtsink_uri + "?mode=listener");
  server = spawn(gl, (dir / "srtsink.log").string());
  std::this_thread::sleep_for(3s);
  Series s_srt =
      phases("srtsink ffmpeg", n_phases, [&] { return ffmpeg_first_picture(srtsink_uri, ff_log); });
  stop(server);

  std::printf("\nfirst picture (ms)          median    max  misses\n");
  for (const Series* s : std::initializer_list<const Series*>{
           &a.ffmpeg, &sh.ffmpeg, &p.ffmpeg, &a.rtspsrc, &sh.rtspsrc, &p.rtspsrc, &a_srt, &s_srt})
    std::printf("  %-24s %7.0f %6.0f  %d\n", s->name.c_str(), s->median(), s->max(), s->misses());
  std::printf("\nbehind live after 5 s, rtspsrc (ms)  median    max  misses\n");
  for (const Series* s : {&a.behind, &sh.behind, &p.behind})
    std::printf("  %-30s %7.0f %6.0f  %d\n", s->name.c_str(), s->median(), s->max(), s->misses());
  std::printf(
      "  (arcly: from capture; plain: send-time SRs, from capture + its pipeline latency)\n");
  std::printf("\nscale, %d RTSP/TCP readers      CPU-s per reader-minute   KiB per reader\n",
              readers);
  std::printf("  arcly                              %8.4f            %8.0f\n",
              a.scale.cpu_per_reader_minute, a.scale.kib_per_reader);
  std::printf("  arcly media=shared                 %8.4f            %8.0f\n",
              sh.scale.cpu_per_reader_minute, sh.scale.kib_per_reader);
  std::printf("  plain gst-rtsp-server (shared)     %8.4f            %8.0f\n",
              p.scale.cpu_per_reader_minute, p.scale.kib_per_reader);
  const double r_ff = p.ffmpeg.median() / std::max(1.0, a.ffmpeg.median());
  const double r_gst = p.rtspsrc.median() / std::max(1.0, a.rtspsrc.median());
  std::printf("\ntargets:\n");
  std::printf("  RTSP first picture <= 150 ms median: ffmpeg %.0f, rtspsrc %.0f\n",
              a.ffmpeg.median(), a.rtspsrc.median());
  std::printf("  >= 5x faster than plain: ffmpeg %.1fx, rtspsrc %.1fx\n", r_ff, r_gst);
  std::printf("  behind live after 5 s (live-edge) <= 300 ms: median %.0f, max %.0f\n",
              a.behind.median(), a.behind.max());
  std::printf("  scale <= 1x plain: CPU %.2fx, memory %.2fx (media=per-reader)\n",
              a.scale.cpu_per_reader_minute / std::max(1e-9, p.scale.cpu_per_reader_minute),
              a.scale.kib_per_reader / std::max(1e-9, p.scale.kib_per_reader));
  std::printf("  scale <= 1x plain: CPU %.2fx, memory %.2fx (media=shared)\n",
              sh.scale.cpu_per_reader_minute / std::max(1e-9, p.scale.cpu_per_reader_minute),
              sh.scale.kib_per_reader / std::max(1e-9, p.scale.kib_per_reader));
  std::printf(
      "  media=shared: first picture ffmpeg %.0f, rtspsrc %.0f ms; behind live median %.0f, "
      "max %.0f ms\n",
      sh.ffmpeg.median(), sh.rtspsrc.median(), sh.behind.median(), sh.behind.max());
  std::printf("egress first picture (rtspsrc) arcly/plain: %.0f/%.0f ms\n", a.rtspsrc.median(),
              p.rtspsrc.median());
  fs::remove_all(dir / "arcly.conf");
  fs::remove_all(dir / "arcly-shared.conf");
  return 0;
}
