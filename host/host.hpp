// Host — runs a Config: one engine (registered as the "default" named engine, so
// arclysrc/arcly:// in outputs find it), its ingest workers under Engine::serve,
// its recorders and its output pipelines; shows what is happening; and stops in
// order: ingest first (streams end, so recorders finalize their files), then
// recorders and outputs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config.hpp"
#include "recorder.hpp"

namespace arcly::host {

struct HostOptions {
  std::optional<std::chrono::milliseconds> run_for;  // else until SIGINT/SIGTERM
  std::string stats_json;                            // path, "-" = stdout, empty = none
  bool list_recordings = false;                      // print recordings at the end (demo)
};

class Host {
 public:
  Host(Config config, HostOptions options);
  ~Host();
  // Runs until the time is up or `stop_flag` is set (by a signal handler).
  // Returns the process exit code.
  int run(const std::atomic<bool>& stop_flag);

 private:
  struct Output;
  void start_outputs();
  void tick_outputs();
  void print_status(bool final_line);
  void write_json();
  void on_event(const RecorderEvent& e);
  void list_recordings();

  Config config_;
  HostOptions options_;
  std::shared_ptr<Engine> engine_;
  std::vector<std::shared_ptr<ingest::SourceWorker>> workers_;
  std::vector<std::unique_ptr<RecorderSet>> recorders_;
  std::vector<std::unique_ptr<Output>> outputs_;
  std::mutex events_mutex_;
  std::vector<RecorderEvent> pending_events_;   // for the next JSON object
  std::vector<std::string> segment_locations_;  // every segment opened
  FILE* json_ = nullptr;
  bool tty_ = false;
  std::chrono::steady_clock::time_point started_;
};

}  // namespace arcly::host
