// arcly — the host program.
//
//   arcly run CONFIG [--for SECONDS] [--stats-json PATH|-]
//   arcly check CONFIG
//   arcly demo [--for SECONDS] [--dir DIR] [--stats-json PATH|-]
//
// `run` hosts an engine, its ingest workers, recorders and output pipelines from a
// key file (docs/host.md) until SIGINT/SIGTERM or the given time, then stops
// ingest, finalizes every recording and exits 0. `check` validates and explains,
// listing every problem with its section and key. `demo` runs an embedded config:
// a synthetic camera (moving pattern + tone, H.264 + AAC, 2 s GOP) published to
// live/demo and a recorder that joins late with pre-roll; at the end it lists the
// recordings with their durations.
#include <gst/gst.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>

#include "arcly/error.hpp"
#include "config.hpp"
#include "host.hpp"

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};
void on_signal(int) {
  g_stop.store(true);
}
void on_hangup(int) {
  g_reload.store(true);
}

int usage() {
  std::fprintf(stderr,
               "usage: arcly run CONFIG [--for SECONDS] [--stats-json PATH|-]\n"
               "       arcly check CONFIG\n"
               "       arcly demo [--for SECONDS] [--dir DIR] [--stats-json PATH|-]\n");
  return 2;
}

std::string demo_config(const std::string& dir) {
  return "[app live]\n"
         "cache-window=8\n"
         "\n"
         "[pipeline camera]\n"
         "key=live/demo\n"
         "source=videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,"
         "framerate=30/1 ! timeoverlay ! x264enc tune=zerolatency speed-preset=ultrafast "
         "key-int-max=60 bitrate=1200 ! h264parse config-interval=-1  audiotestsrc is-live=true "
         "wave=sine freq=440 volume=0.2 ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! "
         "aacparse\n"
         "\n"
         "[record demo]\n"
         "key=live/demo\n"
         "dir=" +
         dir +
         "\n"
         "format=mp4\n"
         "segment=4\n"
         "pre-roll=3\n"
         "join-delay=4\n";
}

// Run from a build tree, use the plugin built beside this program.
void use_uninstalled_plugin(const char* argv0) {
  gchar* dir = g_path_get_dirname(argv0);
  gchar* elements = g_build_filename(dir, "..", "elements", nullptr);
  gchar* plugin = g_build_filename(elements, "libgstarcly.so", nullptr);
  if (g_file_test(plugin, G_FILE_TEST_EXISTS)) {
    const gchar* old = g_getenv("GST_PLUGIN_PATH");
    gchar* path = old && *old ? g_strconcat(elements, ":", old, nullptr) : g_strdup(elements);
    g_setenv("GST_PLUGIN_PATH", path, TRUE);
    g_free(path);
  }
  g_free(plugin);
  g_free(elements);
  g_free(dir);
}

}  // namespace

int main(int argc, char** argv) {
  use_uninstalled_plugin(argv[0]);
  gst_init(&argc, &argv);
  if (argc < 2) return usage();
  const std::string cmd = argv[1];
  std::string config_path, dir = "./recordings";
  arcly::host::HostOptions options;
  int i = 2;
  if (cmd == "run" || cmd == "check") {
    if (argc < 3) return usage();
    config_path = argv[2];
    i = 3;
  } else if (cmd != "demo") {
    return usage();
  }
  for (; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--for" && i + 1 < argc && cmd != "check") {
      char* end = nullptr;
      const double s = std::strtod(argv[++i], &end);
      if (*end != '\0' || !(s > 0)) {
        std::fprintf(stderr, "arcly: --for: '%s' is not a positive number of seconds\n", argv[i]);
        return 2;
      }
      options.run_for = std::chrono::milliseconds(static_cast<long long>(s * 1000));
    } else if (a == "--dir" && i + 1 < argc && cmd == "demo") {
      dir = argv[++i];
    } else if (a == "--stats-json" && i + 1 < argc && cmd != "check") {
      options.stats_json = argv[++i];
    } else {
      std::fprintf(stderr, "arcly: unknown or incomplete option '%s'\n", a.c_str());
      return usage();
    }
  }

  arcly::host::Config config = cmd == "demo" ? arcly::host::load_text(demo_config(dir), "demo")
                                             : arcly::host::load_file(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "arcly: %s has %zu problem%s:\n",
                 cmd == "demo" ? "the demo" : config_path.c_str(), config.problems.size(),
                 config.problems.size() == 1 ? "" : "s");
    for (const auto& p : config.problems) std::fprintf(stderr, "  %s\n", p.c_str());
    return 1;
  }
  if (cmd == "check") {
    const auto env = arcly::host::check_environment(config);
    if (!env.empty()) {
      std::fprintf(stderr, "arcly: %s has %zu problem%s:\n", config_path.c_str(), env.size(),
                   env.size() == 1 ? "" : "s");
      for (const auto& p : env) std::fprintf(stderr, "  %s\n", p.c_str());
      return 1;
    }
    std::printf("%s is valid:\n%s", config_path.c_str(), arcly::host::explain(config).c_str());
    return 0;
  }
  for (const auto& w : config.warnings) std::fprintf(stderr, "arcly: warning: %s\n", w.c_str());
  if (cmd == "demo") {
    options.list_recordings = true;
    if (!options.run_for) options.run_for = std::chrono::seconds(20);
    std::printf(
        "arcly demo: a synthetic camera on live/demo; a recorder joins after 4 s with 3 s of "
        "pre-roll, writing 4 s segments under %s\n",
        dir.c_str());
  }
  // SIGINT/SIGTERM: stop, finalizing every recording. SIGHUP: reload the file.
  // SIGPIPE: ignored — a reader of --stats-json or of the log that goes away
  // (`arcly run … | head -1`) must not end recordings; writes just fail.
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction hup {};
  hup.sa_handler = on_hangup;
  sigaction(SIGHUP, &hup, nullptr);
  signal(SIGPIPE, SIG_IGN);
  if (cmd == "run") options.config_path = config_path;
  try {
    arcly::host::Host host(std::move(config), options);
    return host.run(g_stop, &g_reload);
  } catch (const arcly::Error& e) {
    std::fprintf(stderr, "arcly: %s\n", e.what());
    return 1;
  }
}
