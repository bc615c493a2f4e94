// ingest-bench-rtmp: the cost of the RTMP worker against bare flvdemux pipelines
// fed the same bytes.
//
// 16 ffmpeg publishers replay one pre-encoded FLV (640x360 H.264 at 30 fps, 2 s
// GOP, 2 Mbit/s, AAC) in real time with -c copy. Run A: each sends plain FLV over
// TCP to one of 16 bare pipelines in this process (`tcpserversrc ! flvdemux`,
// then h264parse and aacparse into fakesinks) — the cheapest way GStreamer has to
// take those bytes in. Run B: each publishes over RTMP to one arcly RtmpWorker,
// which parses the session and publishes frames into an engine. Each run
// measures this process's CPU time over the same window once every publisher is
// flowing (the ffmpeg processes are outside both figures). Printed: CPU seconds
// per publisher per minute for each, and the ratio. Runs alternate (A B A B).
//
// Usage: ingest-bench-rtmp [SECONDS]   (default 15)
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gst/gst.h>

#include "arcly/tcp_server.hpp"
#include "rtmp_worker.hpp"

extern char** environ;
using namespace std::chrono_literals;

namespace {

constexpr int kPublishers = 16;

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto tv = [](timeval t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(u.ru_utime) + tv(u.ru_stime);
}

pid_t spawn(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return -1;
  return pid;
}

struct Publishers {
  std::vector<pid_t> pids;
  ~Publishers() {
    for (pid_t p : pids) {
      kill(p, SIGKILL);
      waitpid(p, nullptr, 0);
    }
  }
  void add(const std::string& file, const std::string& url, const char* format) {
    pids.push_back(spawn({"ffmpeg", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", file,
                          "-c", "copy", "-f", format, url}));
  }
};

std::string make_file() {
  const std::string path =
      (std::filesystem::temp_directory_path() / "arcly-bench-360p.flv").string();
  if (!std::filesystem::exists(path)) {
    std::printf("  encoding %s once...\n", path.c_str());
    std::fflush(stdout);
    pid_t pid = spawn({"ffmpeg",  "-loglevel", "error",    "-y",
                       "-f",      "lavfi",     "-i",       "testsrc2=size=640x360:rate=30",
                       "-f",      "lavfi",     "-i",       "sine",
                       "-t",      "45",        "-c:v",     "libx264",
                       "-preset", "veryfast",  "-g",       "60",
                       "-b:v",    "2M",        "-pix_fmt", "yuv420p",
                       "-c:a",    "aac",       "-b:a",     "96k",
                       path});
    waitpid(pid, nullptr, 0);
  }
  return path;
}

int free_port() {
  arcly::TcpServer probe("127.0.0.1:0");
  return probe.port();
}

double measure(std::chrono::seconds window) {
  const double cpu0 = cpu_seconds();
  std::this_thread::sleep_for(window);
  const double cpu = cpu_seconds() - cpu0;
  return cpu / kPublishers * (60.0 / static_cast<double>(window.count()));
}

double run_bare(const std::string& file, std::chrono::seconds window) {
  std::vector<GstElement*> pipelines;
  std::atomic<int> flowing{0};
  Publishers pubs;
  for (int i = 0; i < kPublishers; ++i) {
    const int port = free_port();
    const std::string desc =
        "tcpserversrc host=127.0.0.1 port=" + std::to_string(port) +
        " ! flvdemux name=d d.video ! queue ! h264parse ! fakesink "
        "name=sink sync=false d.audio ! queue ! aacparse ! fakesink sync=false";
    GstElement* p = gst_parse_launch(desc.c_str(), nullptr);
    GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "sink");
    GstPad* pad = gst_element_get_static_pad(sink, "sink");
    gst_pad_add_probe(
        pad, GST_PAD_PROBE_TYPE_BUFFER,
        [](GstPad*, GstPadProbeInfo*, gpointer data) {
          static_cast<std::atomic<int>*>(data)->fetch_add(1);
          return GST_PAD_PROBE_REMOVE;
        },
        &flowing, nullptr);
    gst_object_unref(pad);
    gst_object_unref(sink);
    gst_element_set_state(p, GST_STATE_PLAYING);
    gst_element_get_state(p, nullptr, nullptr, 5 * GST_SECOND);  // listening
    pipelines.push_back(p);
    pubs.add(file, "tcp://127.0.0.1:" + std::to_string(port), "flv");
  }
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (flowing.load() < kPublishers) {
    if (std::chrono::steady_clock::now() > give_up) {
      std::fprintf(stderr, "ingest-bench-rtmp: only %d of %d bare pipelines flow\n", flowing.load(),
                   kPublishers);
      std::exit(1);
    }
    std::this_thread::sleep_for(50ms);
  }
  std::this_thread::sleep_for(2s);  // past the start-up transient
  const double figure = measure(window);
  for (auto* p : pipelines) {
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
  }
  return figure;
}

double run_worker(const std::string& file, std::chrono::seconds window) {
  auto engine = arcly::Engine::builder().accept_any_application().build();
  arcly::ingest::RtmpSettings s;
  s.listen = "127.0.0.1:0";
  auto worker = std::make_shared<arcly::ingest::RtmpWorker>(s);
  std::jthread serving(
      [&](std::stop_token stop) { worker->serve(arcly::IngestContext(engine), stop); });
  worker->wait_for([](const arcly::ingest::RtmpStats& st) { return st.listening; }, 10s);
  const int port = worker->stats().port;
  Publishers pubs;
  for (int i = 0; i < kPublishers; ++i) {
    pubs.add(file, "rtmp://127.0.0.1:" + std::to_string(port) + "/bench/cam" + std::to_string(i),
             "flv");
  }
  if (!worker->wait_for([](const arcly::ingest::RtmpStats& st) { return st.live == kPublishers; },
                        60s)) {
    std::fprintf(stderr, "ingest-bench-rtmp: only %zu of %d publishers went live\n",
                 worker->stats().live, kPublishers);
    std::exit(1);
  }
  std::this_thread::sleep_for(2s);
  const double figure = measure(window);
  return figure;
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  const auto window = std::chrono::seconds(argc > 1 ? std::atoi(argv[1]) : 15);
  std::printf(
      "ingest-bench-rtmp: %d ffmpeg publishers (640x360 H.264 2 Mbit/s 30 fps 2 s GOP + "
      "AAC, -re -c copy), %lld s per run, %u hardware threads\n",
      kPublishers, static_cast<long long>(window.count()), std::thread::hardware_concurrency());
  const std::string file = make_file();
  double bare = 0, worker = 0;
  constexpr int kRounds = 2;
  for (int round = 0; round < kRounds; ++round) {
    const double a = run_bare(file, window);
    std::printf("  round %d: bare %.3f", round + 1, a);
    std::fflush(stdout);
    const double b = run_worker(file, window);
    std::printf(", worker %.3f CPU-s per publisher-minute\n", b);
    std::fflush(stdout);
    bare += a / kRounds;
    worker += b / kRounds;
  }
  std::printf(
      "  bare tcpserversrc ! flvdemux ! <parsers> ! fakesink : %.3f CPU-s per publisher-minute\n",
      bare);
  std::printf(
      "  arcly RtmpWorker (session + publish)              : %.3f CPU-s per publisher-minute\n",
      worker);
  std::printf("worker-vs-bare CPU ratio: %.2f\n", worker / bare);
  return 0;
}
