// Host — runs a Config: one engine (registered as the "default" named engine, so
// arclysrc/arcly:// in outputs find it), its ingest workers (each under its own
// Engine::serve), its recorders and its output pipelines; shows what is happening;
// reloads; and stops in order: ingest first (streams end, so recorders finalize
// their files), then every recorder in parallel, then outputs.
//
// Reload (SIGHUP): the file is read and checked again. A file with problems is
// refused whole (each problem logged) and the running configuration stays. Else
// every section is compared with the running one, as written: unchanged sections
// are not touched (streams keep their GOP caches and subscribers, recorders their
// open segment); removed sections stop cleanly (recordings are finalized); added
// ones start; changed ones stop, then start. [app] sections cannot change while
// running (streams hold their cache settings): such a reload is refused, naming them.
//
// Output: on a terminal a live table, redrawn each second. Otherwise (a pipe, a
// file, the journal) one line per event — a worker connected, lost or retrying
// (with the reason), a caller refused, a segment opened or closed, subscribers
// lagging, a reload — never a status line per stream per second.
//
// Threads: run() and everything it calls run on the caller's thread, except
// recorder events (on_event, from recorder threads) and the per-worker serve threads.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config.hpp"
#include "recorder.hpp"

namespace arcly::host {

struct HostOptions {
  std::optional<std::chrono::milliseconds> run_for;  // else until SIGINT/SIGTERM
  std::string config_path;                           // re-read on reload; empty = no reload
  std::string stats_json;                            // path, "-" = stdout, empty = none
  bool list_recordings = false;                      // print recordings at the end (demo)
};

class Host {
 public:
  Host(Config config, HostOptions options);
  ~Host();
  // Runs until the time is up or `stop_flag` is set (by a signal handler); reloads
  // the configuration each time `reload_flag` is set (and clears it).
  // Returns the process exit code.
  int run(const std::atomic<bool>& stop_flag, std::atomic<bool>* reload_flag = nullptr);

 private:
  struct Output;
  struct WorkerRun;
  struct RtmpRun;  // an [rtmp NAME] server (not a SourceWorker: stats of its own)
  struct Seen;     // what the event log last reported per worker / stream
  void start_worker(const std::string& section, std::shared_ptr<ingest::SourceWorker> worker);
  void start_sections(const Config& config, const std::set<std::string>& only, bool all);
  void stop_sections(const std::set<std::string>& sections, bool streams_live);
  void reload();
  void print_status(bool final_line);
  void log_events();
  void log_rtmp_events();
  void log(const std::string& line);
  void write_json();
  void on_event(const RecorderEvent& e);
  void list_recordings();

  Config config_;
  HostOptions options_;
  std::shared_ptr<Engine> engine_;
  // By section ("rtsp cam1", "record all", "output monitor").
  std::map<std::string, std::unique_ptr<WorkerRun>> workers_;
  std::map<std::string, std::unique_ptr<RtmpRun>> rtmp_;
  std::map<std::string, std::unique_ptr<RecorderSet>> recorders_;
  std::map<std::string, std::unique_ptr<Output>> outputs_;
  std::unique_ptr<Seen> seen_;
  std::mutex events_mutex_;
  std::vector<RecorderEvent> pending_events_;   // for the next JSON object
  std::vector<std::string> segment_locations_;  // every segment opened
  FILE* json_ = nullptr;
  bool tty_ = false;
  bool stamp_lines_ = true;  // event lines carry the time (not under journald)
  std::mutex log_mutex_;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace arcly::host
