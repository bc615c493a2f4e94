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
#include <thread>
#include <vector>

#include "config.hpp"
#include "http/control_target.hpp"
#include "recorder.hpp"

namespace arcly::host {

namespace http {
class Server;
}

struct HostOptions {
  std::optional<std::chrono::milliseconds> run_for;  // else until SIGINT/SIGTERM
  std::string config_path;                           // re-read on reload; empty = no reload
  std::string stats_json;                            // path, "-" = stdout, empty = none
  bool list_recordings = false;                      // print recordings at the end (demo)
};

// The Host is the control plane's ControlTarget (host_control.cpp): the HTTP
// server's thread reads the section maps under sections_mutex_, which run() and
// reload() hold only while they insert or erase.
class Host final : public http::ControlTarget {
 public:
  Host(Config config, HostOptions options);
  ~Host() override;
  // Runs until the time is up or `stop_flag` is set (by a signal handler); reloads
  // the configuration each time `reload_flag` is set (and clears it).
  // Returns the process exit code.
  int run(const std::atomic<bool>& stop_flag, std::atomic<bool>* reload_flag = nullptr);

 private:
  struct Output;
  // One ingest section: its worker under its own Engine::serve thread, so sections
  // can start and stop independently (reload).
  struct WorkerRun {
    std::shared_ptr<ingest::SourceWorker> worker;
    std::stop_source stop;
    std::jthread thread;
    std::mutex mutex;
    std::string failure;  // a worker that gave up (max attempts); protected by mutex
  };
  // One [rtmp NAME] server under its own Engine::serve thread (not a SourceWorker:
  // stats of its own).
  struct RtmpRun {
    std::shared_ptr<ingest::RtmpWorker> worker;
    std::stop_source stop;
    std::jthread thread;
    std::mutex mutex;
    std::string failure;     // the server could not run (e.g. its port is taken); by mutex
    ingest::RtmpStats seen;  // what the event log last reported
    bool failure_logged = false;
  };
  struct Seen;  // what the event log last reported per worker / stream
  void start_worker(const std::string& section, std::shared_ptr<ingest::SourceWorker> worker);
  // Starts [rtsp-server] / [srt-server] when named (or `all`); returns what could not
  // start ("[rtsp-server] listen: ..."), each also logged.
  std::vector<std::string> start_egress(const Config& config, const std::set<std::string>& only,
                                        bool all);
  void write_egress_json(std::ostream& o);
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
  void start_http();

  // ControlTarget (host_control.cpp); any thread.
  std::shared_ptr<Engine> engine() const override { return engine_; }
  std::vector<http::WorkerView> workers() const override;
  std::vector<http::RecorderView> recorders() const override;
  http::KickResult kick(const StreamKey& key) override;
  http::EventView trigger_event(const http::EventRequest& request) override;
  std::vector<http::EventView> events() const override;
  std::vector<http::RecordingView> recordings() const override;
  std::vector<http::EgressView> egress() const override;
  void note_recorder_event(const RecorderEvent& e);  // on_event's bookkeeping for the API

  Config config_;
  HostOptions options_;
  std::shared_ptr<Engine> engine_;
  // By section ("rtsp cam1", "record all", "output monitor").
  std::map<std::string, std::unique_ptr<WorkerRun>> workers_;
  std::map<std::string, std::unique_ptr<RtmpRun>> rtmp_;
  std::map<std::string, std::unique_ptr<RecorderSet>> recorders_;
  std::map<std::string, std::unique_ptr<Output>> outputs_;
  // The network egress servers (gst/egress/): nullptr when not configured.
  std::unique_ptr<egress::RtspServer> rtsp_server_;
  std::unique_ptr<egress::SrtServer> srt_server_;
  std::unique_ptr<Seen> seen_;
  mutable std::mutex events_mutex_;
  std::vector<RecorderEvent> pending_events_;   // for the next JSON object
  std::vector<std::string> segment_locations_;  // every segment opened
  FILE* json_ = nullptr;
  bool tty_ = false;
  bool stamp_lines_ = true;  // event lines carry the time (not under journald)
  std::mutex log_mutex_;
  std::chrono::steady_clock::time_point started_;
  mutable std::mutex sections_mutex_;  // the three maps' structure, for the HTTP thread
  struct RecorderTotals {
    std::uint64_t segments_closed = 0, bytes_closed = 0, errors = 0;
    std::string last_closed;
    std::int64_t last_closed_unix_ms = -1;
  };
  std::map<std::string, RecorderTotals> recorder_totals_;  // "name key"; events_mutex_
  std::unique_ptr<http::Server> http_;
};

}  // namespace arcly::host
