// Scaffolding for the host tests: the real `arcly` binary, scratch directories,
// config files, and the probes that prove a recording playable (ffprobe,
// GstDiscoverer). Waits are bounded polls for an event, never timing assertions.
#pragma once

#include <gst/pbutils/pbutils.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>

#include "../ingest/ingest_helpers.hpp"

namespace host_testing {

using namespace std::chrono_literals;
using namespace ingest_testing;
namespace fs = std::filesystem;

inline std::string arcly_bin() {
  return std::string(std::getenv("ARCLY_HOST_BIN"));
}

inline std::string scratch(const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("arcly-host-" + std::to_string(getpid()) + "-" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

inline std::string write_config(const std::string& dir, const std::string& text) {
  const std::string path = dir + "/arcly.conf";
  std::ofstream(path) << text;
  return path;
}

// Runs a shell command to completion; returns its exit status, stdout+stderr in `out`.
inline int sh(const std::string& cmd, std::string* out = nullptr) {
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (!f) return -1;
  std::string text;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, f)) text.append(buf, n);
  const int status = pclose(f);
  if (out) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Runs `arcly ARGS…` to completion; returns exit code and captures stdout+stderr.
inline int run_arcly(const std::vector<std::string>& args, std::string* output = nullptr) {
  std::string cmd = "'" + arcly_bin() + "'";
  for (const auto& a : args) cmd += " '" + a + "'";
  return sh(cmd, output);
}

inline std::vector<std::string> files_under(const std::string& dir, const std::string& ext) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_regular_file() && it->path().extension() == ext) out.push_back(it->path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct Probe {
  bool ok = false;
  double duration = 0;
  bool video = false, audio = false, first_is_key = false;
};

// ffprobe: streams, duration and whether the first video frame is a keyframe.
inline Probe ffprobe(const std::string& file) {
  Probe p;
  std::string out;
  FILE* f =
      popen(("ffprobe -v error -show_entries format=duration:stream=codec_type -of compact '" +
             file + "' 2>&1")
                .c_str(),
            "r");
  char buf[1024];
  while (fgets(buf, sizeof buf, f)) out += buf;
  p.ok = pclose(f) == 0;
  p.video = out.find("codec_type=video") != std::string::npos;
  p.audio = out.find("codec_type=audio") != std::string::npos;
  std::smatch m;
  if (std::regex_search(out, m, std::regex("duration=([0-9.]+)"))) p.duration = std::stod(m[1]);
  out.clear();
  f = popen(("ffprobe -v error -select_streams v:0 -show_entries frame=key_frame -read_intervals "
             "%+#1 -of csv '" +
             file + "' 2>&1")
                .c_str(),
            "r");
  while (fgets(buf, sizeof buf, f)) out += buf;
  pclose(f);
  p.first_is_key = out.rfind("frame,1", 0) == 0;
  return p;
}

// GstDiscoverer: playable and its duration in seconds (-1 if not playable).
inline double discover(const std::string& file) {
  GstDiscoverer* d = gst_discoverer_new(15 * GST_SECOND, nullptr);
  gchar* uri = gst_filename_to_uri(file.c_str(), nullptr);
  GError* err = nullptr;
  GstDiscovererInfo* info = gst_discoverer_discover_uri(d, uri, &err);
  double seconds = -1;
  if (info && gst_discoverer_info_get_result(info) == GST_DISCOVERER_OK) {
    seconds = static_cast<double>(gst_discoverer_info_get_duration(info)) / GST_SECOND;
  }
  if (info) gst_discoverer_info_unref(info);
  g_clear_error(&err);
  g_free(uri);
  g_object_unref(d);
  return seconds;
}

// Reads the JSON lines written so far.
inline std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits (bounded) until `path` contains `needle`.
inline bool wait_for_text(const std::string& path, const std::string& needle,
                          std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (read_all(path).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(100ms);  // polling a file for an event, not a timing assertion
  }
  return false;
}

inline bool wait_for_regex(const std::string& path, const std::string& pattern,
                           std::chrono::seconds limit) {
  const std::regex re(pattern);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (std::regex_search(read_all(path), re)) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

inline int count_text(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

// `arcly check` refuses each config (exit 1) and names the expected problem.
struct CheckCase {
  std::string config;
  std::string expected;
};
inline void expect_check_problems(const std::string& dir, const std::vector<CheckCase>& cases) {
  std::string out;
  for (const auto& c : cases) {
    const int rc = run_arcly({"check", write_config(dir, c.config)}, &out);
    ck_assert_msg(rc == 1, "exit %d for:\n%s\n%s", rc, c.config.c_str(), out.c_str());
    ck_assert_msg(out.find(c.expected) != std::string::npos, "expected '%s' in:\n%s",
                  c.expected.c_str(), out.c_str());
  }
}

// `arcly run` with stdout collected by a reader thread, so a test can wait for a
// log line (bounded) and send signals without waiting for the exit.
class Service {
 public:
  explicit Service(const std::vector<std::string>& args, const std::string& cwd = "") {
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    pid_ = fork();
    ck_assert_int_ge(pid_, 0);
    if (pid_ == 0) {
      dup2(out[1], 1);
      dup2(out[1], 2);
      close(out[0]);
      close(out[1]);
      if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(127);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    fd_ = out[0];
    reader_ = std::thread([this] {
      char buf[4096];
      for (;;) {
        const ssize_t n = read(fd_, buf, sizeof buf);
        if (n <= 0) break;
        std::lock_guard lock(mutex_);
        text_.append(buf, static_cast<size_t>(n));
      }
    });
  }
  ~Service() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (reader_.joinable()) reader_.join();
    if (fd_ >= 0) close(fd_);
  }
  void signal(int sig) { kill(pid_, sig); }
  // Waits for the exit; returns the raw wait status.
  int wait() {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    if (reader_.joinable()) reader_.join();
    return status;
  }
  std::string text() {
    std::lock_guard lock(mutex_);
    return text_;
  }
  // Waits (bounded) until the output has `needle` at least `times` times.
  bool wait_for(const std::string& needle, std::chrono::seconds limit, int times = 1) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (count_text(text(), needle) >= times) return true;
      std::this_thread::sleep_for(100ms);  // polling for an event, not a timing assertion
    }
    return false;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::thread reader_;
  std::mutex mutex_;
  std::string text_;
};

}  // namespace host_testing
