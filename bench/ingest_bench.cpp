// ingest-bench: the cost of the RTSP worker against bare rtspsrc pipelines.
//
// A gst-rtsp-server process (arcly-test-rtsp-server) serves 16 cameras replaying
// pre-encoded H.264 (8 x 640x360, 8 x 1280x720, 30 fps, 2 s GOP). In this process,
// run A pulls them with 16 bare `rtspsrc ! rtph264depay ! h264parse ! fakesink`
// pipelines; run B with 16 arcly RtspWorkers publishing into an engine. Each run
// measures this process's CPU time over the same window once every camera is
// flowing. Printed: CPU seconds per camera per minute for each, and the ratio.
//
// The runs alternate (A B A B) and the figures are their means.
//
// Usage: ingest-bench [SERVER_BINARY] [SECONDS]   (defaults: next to this binary, 15)
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

#include "rtsp_worker.hpp"

extern char** environ;
using namespace std::chrono_literals;

namespace {

constexpr int kCameras = 16;

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

int run_and_wait(const std::vector<std::string>& argv) {
  pid_t pid = spawn(argv);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string make_file(const char* size, const char* name) {
  const std::string path = (std::filesystem::temp_directory_path() / name).string();
  if (!std::filesystem::exists(path)) {
    std::printf("  encoding %s (%s) once...\n", path.c_str(), size);
    std::fflush(stdout);
    run_and_wait({"ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                  std::string("testsrc2=size=") + size + ":rate=30", "-t", "45", "-c:v", "libx264",
                  "-preset", "veryfast", "-g", "60", "-b:v", "2M", "-pix_fmt", "yuv420p", path});
  }
  return path;
}

struct Server {
  pid_t pid = -1;
  Server(const std::string& binary, int port, const std::string& a, const std::string& b) {
    pid = spawn({binary, std::to_string(port), "--cameras", std::to_string(kCameras), "--file", a,
                 "--file", b});
    std::this_thread::sleep_for(500ms);  // setup only: it binds its port
  }
  ~Server() {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
};

std::string camera_url(int port, int i) {
  return "rtsp://127.0.0.1:" + std::to_string(port) + "/cam" + std::to_string(i);
}

// Returns CPU seconds per camera per minute over `window`.
double measure(std::chrono::seconds window) {
  const double cpu0 = cpu_seconds();
  std::this_thread::sleep_for(window);
  const double cpu = cpu_seconds() - cpu0;
  return cpu / kCameras * (60.0 / static_cast<double>(window.count()));
}

double run_bare(int port, std::chrono::seconds window) {
  std::vector<GstElement*> pipelines;
  std::atomic<int> flowing{0};
  for (int i = 0; i < kCameras; ++i) {
    const std::string desc = "rtspsrc protocols=tcp latency=200 location=" + camera_url(port, i) +
                             " ! rtph264depay ! h264parse ! fakesink name=sink sync=false";
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
    pipelines.push_back(p);
  }
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (flowing.load() < kCameras) {
    if (std::chrono::steady_clock::now() > give_up) {
      std::fprintf(stderr, "ingest-bench: only %d of %d cameras flow; is the server running?\n",
                   flowing.load(), kCameras);
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

double run_workers(int port, std::chrono::seconds window) {
  auto engine = arcly::Engine::builder().accept_any_application().build();
  std::vector<std::shared_ptr<arcly::ingest::RtspWorker>> workers;
  std::vector<std::jthread> threads;
  for (int i = 0; i < kCameras; ++i) {
    arcly::ingest::WorkerSettings s;
    s.name = "cam" + std::to_string(i);
    s.key = arcly::StreamKey("bench", "cam" + std::to_string(i));
    arcly::ingest::RtspSettings r;
    r.url = camera_url(port, i);
    r.transport = "tcp";
    workers.push_back(std::make_shared<arcly::ingest::RtspWorker>(s, r));
    threads.emplace_back([engine, w = workers.back()](std::stop_token stop) {
      w->serve(arcly::IngestContext(engine), stop);
    });
  }
  for (auto& w : workers) {
    if (!w->wait_for([](const arcly::ingest::WorkerStats& st) {
          return st.state == arcly::ingest::WorkerState::Live;
        }, 60s)) {
      std::fprintf(stderr, "ingest-bench: %s never went live\n", w->settings().name.c_str());
      std::exit(1);
    }
  }
  std::this_thread::sleep_for(2s);
  const double figure = measure(window);
  threads.clear();
  return figure;
}

}  // namespace

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  const std::string server =
      argc > 1 && argv[1][0] != 0 ? argv[1]
               : (std::filesystem::path(argv[0]).parent_path() / "../tests/ingest/arcly-test-rtsp-server")
                     .string();
  const auto window = std::chrono::seconds(argc > 2 ? std::atoi(argv[2]) : 15);
  std::printf("ingest-bench: %d RTSP cameras (8 x 640x360, 8 x 1280x720 H.264, 30 fps, 2 s GOP), "
              "%lld s per run, %u hardware threads\n",
              kCameras, static_cast<long long>(window.count()), std::thread::hardware_concurrency());
  const std::string a = make_file("640x360", "arcly-bench-360p.mp4");
  const std::string b = make_file("1280x720", "arcly-bench-720p.mp4");
  // Alternate the runs (A B A B) so a drift of the machine hits both alike.
  double bare = 0, worker = 0;
  constexpr int kRounds = 2;
  for (int round = 0; round < kRounds; ++round) {
    {
      Server s(server, 28554 + 2 * round, a, b);
      const double f = run_bare(28554 + 2 * round, window);
      std::printf("  round %d: bare %.3f", round + 1, f);
      bare += f / kRounds;
    }
    {
      Server s(server, 28555 + 2 * round, a, b);
      const double f = run_workers(28555 + 2 * round, window);
      std::printf(", worker %.3f CPU-s per camera-minute\n", f);
      worker += f / kRounds;
    }
    std::fflush(stdout);
  }
  std::printf("  bare rtspsrc ! rtph264depay ! h264parse ! fakesink : %.3f CPU-s per camera-minute\n", bare);
  std::printf("  arcly RtspWorker (parsebin + publish)   : %.3f CPU-s per camera-minute\n", worker);
  std::printf("worker-vs-bare CPU ratio: %.2f\n", worker / bare);
  return 0;
}
