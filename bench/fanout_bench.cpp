// fanout-bench: one 4 Mbit/s stream to 1, 10, 100, 500 and 2 000 subscribers, as
// `tee ! queue ! fakesink` branches against `arclysrc ! fakesink` pipelines.
//
// The stream is pre-encoded once with ffmpeg (1280x720, 30 fps, H.264, 2 s GOP,
// 4 Mbit/s CBR with filler, 60 s; cached in the temp dir) and replayed with a live
// clock, so no encoder cost is in the figures:
//
//   tee   filesrc ! qtdemux ! h264parse ! identity sync=true ! tee allow-not-linked=true
//         + N branches `queue ! fakesink sync=false` added to that pipeline
//   arcly filesrc ! qtdemux ! h264parse ! identity sync=true ! arclysink
//         + N pipelines `arclysrc dispatch=false ! fakesink sync=false` (the task mode:
//         a thread per subscriber; one pipeline per subscriber,
//         as independent consumers would be); and, at N = 500 only, the same N
//         `arclysrc ! fakesink` pairs in one pipeline (row `500*`), which shows what
//         the pipeline per subscriber (GstPipeline, bus) adds
//   disp  the same as arcly with `arclysrc dispatch=true` (the default): once live, the engine's
//         dispatcher threads (one per core) serve the subscribers through the
//         readiness interface instead of a thread each (columns "disp")
//
// Every (design, N) runs in a fresh child process (so no thread pool, malloc arena
// or registry state carries over from one run to the next). A child first
// measures the publisher alone over the window (CPU time of the process from
// getrusage, VmRSS from /proc/self/status sampled every second), then adds the N
// subscribers, waits until every one has received a buffer plus 2 s, and measures
// the same window again. Printed per run: CPU seconds per subscriber per
// stream-minute = (CPU with subscribers - CPU alone) / N / window-minutes, resident
// KiB each subscriber adds = (VmRSS with - VmRSS alone) / N, and the share of the
// published frames each subscriber received in the window (a count at every
// fakesink's pad, so a subscriber that drops cannot look cheap). Then the
// arcly/tee ratios, the targets and a summary line. Sinks have sync=false in both
// designs: the figures are the cost of distribution, not of rendering.
//
// Usage: fanout-bench [SECONDS]   (window per measurement, 2..25, default 8;
//                                  total ~20 x SECONDS plus a one-time encode)
//        fanout-bench --run tee|arcly|arcly-dispatch|arcly-one-pipeline N SECONDS FILE
//                     (one child run, prints
//        one line)
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gst/gst.h>

#ifndef ARCLY_PLUGIN_DIR
#define ARCLY_PLUGIN_DIR ""
#endif

using namespace std::chrono_literals;

namespace {

constexpr const char* kKey = "bench/fanout";
constexpr double kFps = 30.0;

void use_build_plugin(const char* argv0) {
  namespace fs = std::filesystem;
  std::error_code ec;
  std::string dir;
  const fs::path rel = fs::path(argv0).parent_path() / ".." / "elements";
  if (fs::is_directory(rel, ec)) dir = fs::canonical(rel, ec).string();
  if (dir.empty() && fs::is_directory(ARCLY_PLUGIN_DIR, ec)) dir = ARCLY_PLUGIN_DIR;
  if (dir.empty()) return;
  const char* old = g_getenv("GST_PLUGIN_PATH");
  const std::string value = old && *old ? dir + ":" + old : dir;
  g_setenv("GST_PLUGIN_PATH", value.c_str(), TRUE);
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto tv = [](timeval t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(u.ru_utime) + tv(u.ru_stime);
}

double rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr);
  return 0;
}

struct Window {
  double cpu = 0;            // CPU seconds of the process over the window
  double rss = 0;            // mean VmRSS (KiB) over the window's samples
  std::uint64_t frames = 0;  // frames received by all subscribers in the window
  std::uint64_t published = 0;
};

std::atomic<std::uint64_t> g_received{0};
std::atomic<std::uint64_t> g_published{0};
std::atomic<int> g_started{0};

GstPadProbeReturn count_received(GstPad*, GstPadProbeInfo*, gpointer data) {
  auto* first = static_cast<std::atomic<bool>*>(data);
  if (!first->exchange(true)) g_started.fetch_add(1);
  g_received.fetch_add(1, std::memory_order_relaxed);
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn count_published(GstPad*, GstPadProbeInfo*, gpointer) {
  g_published.fetch_add(1, std::memory_order_relaxed);
  return GST_PAD_PROBE_OK;
}

Window measure(int seconds) {
  Window w;
  const std::uint64_t r0 = g_received.load(), p0 = g_published.load();
  const double c0 = cpu_seconds();
  double rss = 0;
  for (int i = 0; i < seconds; ++i) {
    std::this_thread::sleep_for(1s);
    rss += rss_kib();
  }
  w.cpu = cpu_seconds() - c0;
  w.rss = rss / seconds;
  w.frames = g_received.load() - r0;
  w.published = g_published.load() - p0;
  return w;
}

void add_count_probe(GstElement* sink, std::vector<std::unique_ptr<std::atomic<bool>>>& flags) {
  flags.push_back(std::make_unique<std::atomic<bool>>(false));
  GstPad* pad = gst_element_get_static_pad(sink, "sink");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, count_received, flags.back().get(), nullptr);
  gst_object_unref(pad);
}

GstElement* launch(const std::string& desc) {
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(desc.c_str(), &err);
  if (!p) {
    std::fprintf(stderr, "fanout-bench: %s: %s (GST_PLUGIN_PATH=%s)\n", desc.c_str(),
                 err ? err->message : "?", g_getenv("GST_PLUGIN_PATH"));
    std::exit(1);
  }
  return p;
}

// One child run; prints "cpu_base cpu_subs rss_base rss_subs frames published".
int run_child(const std::string& design, int n, int seconds, const std::string& file) {
  const bool one_pipeline = design == "arcly-one-pipeline";
  const bool dispatch = design == "arcly-dispatch";
  const bool arcly = design == "arcly" || one_pipeline || dispatch;
  // 2 000 pipelines each hold a bus poll's descriptors: up to the hard limit.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  const std::string src =
      "filesrc location=\"" + file + "\" ! qtdemux ! h264parse ! identity name=clk sync=true ! ";
  GstElement* pub = launch(src + (arcly ? std::string("arclysink stream=") + kKey
                                        : std::string("tee name=t allow-not-linked=true")));
  {
    GstElement* clk = gst_bin_get_by_name(GST_BIN(pub), "clk");
    GstPad* pad = gst_element_get_static_pad(clk, "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, count_published, nullptr, nullptr);
    gst_object_unref(pad);
    gst_object_unref(clk);
  }
  gst_element_set_state(pub, GST_STATE_PLAYING);
  if (gst_element_get_state(pub, nullptr, nullptr, 10 * GST_SECOND) != GST_STATE_CHANGE_SUCCESS) {
    std::fprintf(stderr, "fanout-bench: the publisher did not start\n");
    return 1;
  }
  std::this_thread::sleep_for(2s);  // a GOP in arclysink's cache, allocations settled
  const Window base = measure(seconds);

  std::vector<std::unique_ptr<std::atomic<bool>>> flags;
  std::vector<GstElement*> subs;
  GstElement* tee = arcly ? nullptr : gst_bin_get_by_name(GST_BIN(pub), "t");
  for (int i = 0; i < n; ++i) {
    if (one_pipeline) {
      // The same subscribers, all in one pipeline: what a pipeline per subscriber costs.
      GstElement* asrc = gst_element_factory_make("arclysrc", nullptr);
      GstElement* sink = gst_element_factory_make("fakesink", nullptr);
      g_object_set(asrc, "stream", kKey, "dispatch", FALSE, nullptr);
      g_object_set(sink, "sync", FALSE, nullptr);
      if (subs.empty()) subs.push_back(gst_pipeline_new("subscribers"));
      gst_bin_add_many(GST_BIN(subs[0]), asrc, sink, nullptr);
      g_signal_connect(asrc, "pad-added", G_CALLBACK(+[](GstElement*, GstPad* pad, gpointer data) {
                         GstPad* peer = gst_element_get_static_pad(GST_ELEMENT(data), "sink");
                         gst_pad_link(pad, peer);
                         gst_object_unref(peer);
                       }),
                       sink);
      add_count_probe(sink, flags);
      if (i == n - 1) gst_element_set_state(subs[0], GST_STATE_PLAYING);
    } else if (arcly) {
      GstElement* p = launch(std::string("arclysrc stream=") + kKey +
                             (dispatch ? " dispatch=true" : " dispatch=false") +
                             " ! fakesink name=s sync=false");
      GstElement* sink = gst_bin_get_by_name(GST_BIN(p), "s");
      add_count_probe(sink, flags);
      gst_object_unref(sink);
      gst_element_set_state(p, GST_STATE_PLAYING);
      subs.push_back(p);
    } else {
      GstElement* queue = gst_element_factory_make("queue", nullptr);
      GstElement* sink = gst_element_factory_make("fakesink", nullptr);
      g_object_set(sink, "sync", FALSE, nullptr);
      gst_bin_add_many(GST_BIN(pub), queue, sink, nullptr);
      gst_element_link(queue, sink);
      add_count_probe(sink, flags);
      gst_element_sync_state_with_parent(sink);
      gst_element_sync_state_with_parent(queue);
      GstPad* teepad = gst_element_request_pad_simple(tee, "src_%u");
      GstPad* qsink = gst_element_get_static_pad(queue, "sink");
      gst_pad_link(teepad, qsink);
      gst_object_unref(qsink);
      gst_object_unref(teepad);
    }
  }
  const auto give_up = std::chrono::steady_clock::now() + 60s;
  while (g_started.load() < n) {
    if (std::chrono::steady_clock::now() > give_up) {
      std::fprintf(stderr, "fanout-bench: only %d of %d subscribers receive\n", g_started.load(),
                   n);
      return 1;
    }
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(2s);
  const Window with = measure(seconds);
  std::printf("%.6f %.6f %.1f %.1f %llu %llu\n", base.cpu, with.cpu, base.rss, with.rss,
              static_cast<unsigned long long>(with.frames),
              static_cast<unsigned long long>(with.published));
  std::fflush(stdout);
  // Tear-down of hundreds of pipelines is not what is measured.
  _exit(0);
}

std::string make_file() {
  const std::string path =
      (std::filesystem::temp_directory_path() / "arcly-bench-720p-4M-60s.mp4").string();
  if (!std::filesystem::exists(path)) {
    std::printf("  encoding %s once (ffmpeg, 60 s of 720p30 at 4 Mbit/s)...\n", path.c_str());
    std::fflush(stdout);
    const std::string tmp = path + ".part.mp4";
    const std::string cmd =
        "ffmpeg -loglevel error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -t 60 "
        "-c:v libx264 -preset veryfast -g 60 -keyint_min 60 -sc_threshold 0 -b:v 4M "
        "-minrate 4M -maxrate 4M -bufsize 4M -x264-params nal-hrd=cbr -pix_fmt yuv420p \"" +
        tmp + "\"";
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "fanout-bench: ffmpeg failed (is ffmpeg installed?)\n");
      std::exit(1);
    }
    std::filesystem::rename(tmp, path);
  }
  return path;
}

struct Run {
  double cpu_per_sub_min = 0;  // CPU-s per subscriber per stream-minute
  double kib_per_sub = 0;
  double delivered = 0;       // share of published frames each subscriber got
  double base_cpu_share = 0;  // publisher alone, CPU-s per second
};

Run run(const std::string& self, const std::string& design, int n, int seconds,
        const std::string& file) {
  const std::string cmd = "\"" + self + "\" --run " + design + " " + std::to_string(n) + " " +
                          std::to_string(seconds) + " \"" + file + "\"";
  FILE* f = popen(cmd.c_str(), "r");
  double cb = 0, cw = 0, rb = 0, rw = 0;
  unsigned long long frames = 0, published = 0;
  const int got =
      f ? std::fscanf(f, "%lf %lf %lf %lf %llu %llu", &cb, &cw, &rb, &rw, &frames, &published) : 0;
  if (f) pclose(f);
  if (got != 6) {
    std::fprintf(stderr, "fanout-bench: run %s x%d failed\n", design.c_str(), n);
    if (n < 2000) std::exit(1);
    Run failed;  // reported as not measured (nan), the smaller sizes stand
    failed.cpu_per_sub_min = failed.kib_per_sub = std::nan("");
    return failed;
  }
  Run r;
  r.cpu_per_sub_min = (cw - cb) / n * (60.0 / seconds);
  r.kib_per_sub = (rw - rb) / n;
  r.delivered = published ? static_cast<double>(frames) / n / static_cast<double>(published) : 0;
  r.base_cpu_share = cb / seconds;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  use_build_plugin(argv[0]);
  gst_init(&argc, &argv);
  if (argc == 6 && std::strcmp(argv[1], "--run") == 0)
    return run_child(argv[2], std::atoi(argv[3]), std::atoi(argv[4]), argv[5]);

  // Each child replays the 60 s file once: 2 windows + set-up must fit.
  const int seconds = argc > 1 ? std::clamp(std::atoi(argv[1]), 2, 25) : 8;
  const std::string self = std::filesystem::canonical("/proc/self/exe").string();
  std::printf(
      "fanout-bench: one 1280x720 30 fps H.264 stream at 4 Mbit/s (pre-encoded, replayed "
      "with a live clock) to N subscribers, %d s windows, %u hardware threads\n",
      seconds, std::thread::hardware_concurrency());
  const std::string file = make_file();
  std::printf(
      "  CPU-s per subscriber per stream-minute | resident KiB added per subscriber | "
      "frames received / published\n");
  std::printf("  %5s | %9s %9s %6s | %8s %8s | %7s %7s || %9s %6s | %8s | %7s\n", "N", "tee",
              "arcly", "ratio", "tee", "arcly", "tee", "arcly", "disp", "ratio", "disp", "disp");
  std::fflush(stdout);
  const int ns[] = {1, 10, 100, 500, 2000};
  Run tee500, arcly500, arcly2000, disp500, disp2000, tee2000;
  double base_tee = 0, base_arcly = 0;
  for (int n : ns) {
    const Run t = run(self, "tee", n, seconds, file);
    const Run a = run(self, "arcly", n, seconds, file);
    const Run d = run(self, "arcly-dispatch", n, seconds, file);
    std::printf(
        "  %5d | %9.4f %9.4f %6.2f | %8.1f %8.1f | %6.1f%% %6.1f%% || %9.4f %6.2f | %8.1f | "
        "%6.1f%%\n",
        n, t.cpu_per_sub_min, a.cpu_per_sub_min, a.cpu_per_sub_min / t.cpu_per_sub_min,
        t.kib_per_sub, a.kib_per_sub, 100 * t.delivered, 100 * a.delivered, d.cpu_per_sub_min,
        d.cpu_per_sub_min / t.cpu_per_sub_min, d.kib_per_sub, 100 * d.delivered);
    std::fflush(stdout);
    base_tee += t.base_cpu_share / std::size(ns);
    base_arcly += a.base_cpu_share / std::size(ns);
    if (n == 500) {
      tee500 = t;
      arcly500 = a;
      disp500 = d;
    }
    if (n == 2000) {
      tee2000 = t;
      arcly2000 = a;
      disp2000 = d;
    }
  }
  // What a pipeline per subscriber costs: the same 500 arclysrc in one pipeline.
  const Run one = run(self, "arcly-one-pipeline", 500, seconds, file);
  std::printf(
      "  %5s | %9s %9.4f %6.2f | %8s %8.1f | %7s %6.1f%%   (500 arclysrc ! fakesink in "
      "one pipeline)\n",
      "500*", "", one.cpu_per_sub_min, one.cpu_per_sub_min / tee500.cpu_per_sub_min, "",
      one.kib_per_sub, "", 100 * one.delivered);
  std::printf(
      "  publisher alone (mean of the runs' baselines): tee %.3f, arcly %.3f CPU-s per "
      "second\n",
      base_tee, base_arcly);
  const bool cpu_ok = arcly500.cpu_per_sub_min <= tee500.cpu_per_sub_min / 2;
  const bool mem_ok = arcly500.kib_per_sub <= tee500.kib_per_sub;
  std::printf(
      "  targets at 500: arcly CPU <= half of tee: %s; arcly resident per subscriber <= "
      "tee: %s\n",
      cpu_ok ? "met" : "MISSED", mem_ok ? "met" : "MISSED");
  // Without lag: every subscriber receives (nearly) every published frame in
  // the window; a subscriber that lags drops frames and skips to a keyframe.
  const bool lag_ok = arcly2000.delivered >= 0.99;
  std::printf(
      "  target at 2000: every arcly subscriber keeps up (>= 99%% of frames): %s "
      "(%.1f%%)\n",
      lag_ok ? "met" : "MISSED", 100 * arcly2000.delivered);
  std::printf(
      "fanout: 500 subscribers: tee %.4f / arcly %.4f CPU-s per subscriber-minute "
      "(ratio %.2f), tee %.1f / arcly %.1f KiB per subscriber\n",
      tee500.cpu_per_sub_min, arcly500.cpu_per_sub_min,
      arcly500.cpu_per_sub_min / tee500.cpu_per_sub_min, tee500.kib_per_sub, arcly500.kib_per_sub);
  // The dispatched mode against the same runs' tee baseline.
  const bool disp_cpu_ok = disp500.cpu_per_sub_min <= tee500.cpu_per_sub_min / 2;
  const bool disp_mem_ok = disp500.kib_per_sub <= tee500.kib_per_sub;
  const bool disp_lag_ok = disp2000.delivered >= 0.99;
  std::printf(
      "  dispatched (arclysrc dispatch=true) targets at 500: CPU <= half of tee: %s; resident "
      "per subscriber <= tee: %s; at 2000 every subscriber keeps up: %s (%.1f%%)\n",
      disp_cpu_ok ? "met" : "MISSED", disp_mem_ok ? "met" : "MISSED",
      disp_lag_ok ? "met" : "MISSED", 100 * disp2000.delivered);
  std::printf(
      "fanout-dispatch: 500 subscribers: tee %.4f / disp %.4f CPU-s per subscriber-minute "
      "(ratio %.2f), tee %.1f / disp %.1f KiB per subscriber; 2000: tee %.4f / disp %.4f "
      "(ratio %.2f), tee %.1f / disp %.1f KiB\n",
      tee500.cpu_per_sub_min, disp500.cpu_per_sub_min,
      disp500.cpu_per_sub_min / tee500.cpu_per_sub_min, tee500.kib_per_sub, disp500.kib_per_sub,
      tee2000.cpu_per_sub_min, disp2000.cpu_per_sub_min,
      disp2000.cpu_per_sub_min / tee2000.cpu_per_sub_min, tee2000.kib_per_sub,
      disp2000.kib_per_sub);
  return 0;
}
