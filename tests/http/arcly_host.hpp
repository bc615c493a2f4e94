// The real `arcly` binary as a child process for the control-plane tests, and
// what they ask of it: its log (polled, never slept on), JSON answers parsed with
// json-glib, errors checked for their status and field, files probed with
// GstDiscoverer, commands (curl, ffprobe) run with their output.
#pragma once

#include <fcntl.h>
#include <gst/gst.h>
#include <gst/pbutils/pbutils.h>
#include <json-glib/json-glib.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../engine/check_main.hpp"
#include "http_client.hpp"

extern char** environ;

namespace http_testing {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

inline std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

inline std::string scratch(const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("arcly-http-" + std::to_string(getpid()) + "-" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
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
    setenv("GST_DEBUG", "3,arclyhttp:7,arclyexport:6,arclyrecord:6,arclyhost:6", 1);
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
  // SIGINT, then up to 30 s for a clean exit; 0 is a clean exit. why_stopped() says
  // what happened otherwise, with the log's end, for a failure message.
  int stop() {
    if (pid_ <= 0) return status_;
    kill(pid_, SIGINT);
    int st = 0;
    pid_t done = 0;
    for (int i = 0; i < 300 && (done = waitpid(pid_, &st, WNOHANG)) == 0; ++i)
      std::this_thread::sleep_for(100ms);
    if (done == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &st, 0);
      stopped_ = "still running 30 s after SIGINT: killed";
    } else if (WIFSIGNALED(st)) {
      stopped_ = std::string("died of signal ") + strsignal(WTERMSIG(st));
    } else {
      stopped_ = "exited with status " + std::to_string(WEXITSTATUS(st));
    }
    pid_ = -1;
    status_ = done != 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return status_;
  }
  std::string why_stopped() const {
    const std::string text = log();
    const size_t keep = 4000;
    return stopped_ + "; the log ends:\n" +
           (text.size() > keep ? text.substr(text.size() - keep) : text);
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
  std::string conf_, log_, text_, stopped_ = "not stopped";
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

inline std::string str(JsonObject* o, const char* name) {
  return o && json_object_has_member(o, name) && !json_object_get_null_member(o, name)
             ? json_object_get_string_member_with_default(o, name, "")
             : "";
}
inline double num(JsonObject* o, const char* name) {
  if (!o || !json_object_has_member(o, name) || json_object_get_null_member(o, name)) return -1e18;
  return json_object_get_double_member(o, name);
}

// An error reply: the status, JSON {"error", "field"} naming `field`.
inline void expect_error(const Reply& r, int status, const char* field, const char* what) {
  Doc d(r.body);
  ck_assert_msg(r.status == status, "%s: status %d, wanted %d: %s", what, r.status, status,
                r.body.c_str());
  ck_assert_msg(d.obj() && !str(d.obj(), "error").empty(), "%s: not a JSON error: %s", what,
                r.body.c_str());
  if (field)
    ck_assert_msg(str(d.obj(), "field") == field, "%s: field '%s', wanted '%s'", what,
                  str(d.obj(), "field").c_str(), field);
}

inline bool wait_until(const std::function<bool()>& pred, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

inline double discover(const std::string& file) {
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

inline std::string run(const std::string& cmd, int* status = nullptr) {
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int st = pclose(p);
  if (status) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

}  // namespace http_testing
