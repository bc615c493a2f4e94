// arcly::Engine — the publish and playback registries of a set of applications.
//
// An engine knows its applications (AppSpec: cache bounds and limits). A stream
// is published by start_publish(key) and ends with end_publish(key) (or when the
// idle reaper finds it silent): its subscribers then drain and see Closed.
// A closed stream is gone at once: it is not found or listed, and its key may be
// published again, even before it is unregistered (the reaper closes a stream,
// atomically with its check, before it takes it out of the map).
//
// Idle reaper. If any application has an idle timeout, the engine runs its own
// reaper thread (started by build(), stopped and joined by the engine's
// destructor) that calls reap_idle() every quarter of the shortest timeout
// (between 10 ms and 1 s). A program that wants to drive reaping itself builds
// the engine with reap_in_background(false) and calls reap_idle().
//
// Errors (arcly::Error): a duplicate publish is StreamAlreadyPublishing, a full
// application PublisherLimitReached, an unconfigured application
// UnknownApplication (unless the engine accepts any application), a missing
// stream StreamNotFound.
//
// Threads: every method may be called from any thread. The registry lock guards
// only the stream map; the media path never takes it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "arcly/stream.hpp"
#include "arcly/stream_key.hpp"
#include "arcly/worker_events.hpp"

namespace arcly {

class InboundProtocol;

// Per-application settings. Defaults are sane for 30 fps video with a 2 s GOP.
struct AppSpec {
  std::string name;
  std::size_t cache_frames = 1024;           // most frames a joiner replays
  std::size_t cache_bytes = 64u << 20;       // most payload bytes held/replayed
  std::chrono::nanoseconds cache_window{0};  // keep keyframes back this far (0 = newest GOP)
  std::size_t ring_frames = 0;               // bus ring size; 0 = cache_frames + 1024
  std::size_t max_publishers = 0;            // 0 = unlimited
  std::size_t max_subscribers = 0;           // per stream; 0 = unlimited
  std::chrono::nanoseconds idle_timeout{0};  // reap after this long without a frame; 0 = never

  explicit AppSpec(std::string app_name = "live") : name(std::move(app_name)) {}
  AppSpec& gop_cache(std::size_t frames) {
    cache_frames = frames;
    return *this;
  }
  AppSpec& cache_limit_bytes(std::size_t bytes) {
    cache_bytes = bytes;
    return *this;
  }
  AppSpec& window(std::chrono::nanoseconds w) {
    cache_window = w;
    return *this;
  }
  AppSpec& ring(std::size_t frames) {
    ring_frames = frames;
    return *this;
  }
  AppSpec& publishers(std::size_t n) {
    max_publishers = n;
    return *this;
  }
  AppSpec& subscribers(std::size_t n) {
    max_subscribers = n;
    return *this;
  }
  AppSpec& idle(std::chrono::nanoseconds t) {
    idle_timeout = t;
    return *this;
  }

  // Throws Error{InvalidArgument} naming the bad field.
  void validate() const;
};

class PublishRegistry {
 public:
  virtual ~PublishRegistry() = default;
  // Claims `key`; see the Errors above.
  virtual StreamHandle start_publish(const StreamKey& key) = 0;
  // Ends whatever publishes `key` (no-op if nothing does).
  virtual void end_publish(const StreamKey& key) = 0;
  // Ends `stream` only if it is still the one registered under its key.
  virtual bool end_publish(const StreamHandle& stream) = 0;
};

class PlaybackRegistry {
 public:
  virtual ~PlaybackRegistry() = default;
  // Throws Error{StreamNotFound} ("stream live/cam is not being published").
  virtual StreamHandle get_stream(const StreamKey& key) const = 0;
  // Waits up to `timeout` (negative = forever) for a publisher of `key`; throws
  // Error{Timeout} or Error{Cancelled}.
  virtual StreamHandle wait_for_stream(const StreamKey& key, std::chrono::milliseconds timeout,
                                       std::stop_token stop = {}) = 0;
};

class EngineBuilder;

class Engine final : public PublishRegistry,
                     public PlaybackRegistry,
                     public std::enable_shared_from_this<Engine> {
 public:
  static EngineBuilder builder();

  StreamHandle start_publish(const StreamKey& key) override;
  void end_publish(const StreamKey& key) override;
  bool end_publish(const StreamHandle& stream) override;
  StreamHandle get_stream(const StreamKey& key) const override;
  StreamHandle wait_for_stream(const StreamKey& key, std::chrono::milliseconds timeout,
                               std::stop_token stop = {}) override;

  // Non-throwing lookup.
  StreamHandle find_stream(const StreamKey& key) const;
  std::vector<StreamHandle> streams() const;
  // The spec that applies to `app` (nullopt if unknown and not accepted).
  std::optional<AppSpec> application(const std::string& app) const;

  // Ends every publish whose last frame (or start, if none) is older than its
  // app's idle timeout at `now`; each check-and-end is atomic with that stream's
  // publishes (Stream::close_if_idle). Returns how many were ended.
  std::size_t reap_idle(std::chrono::steady_clock::time_point now);
  std::size_t reap_idle() { return reap_idle(std::chrono::steady_clock::now()); }

  // Runs every worker on its own thread until all have returned. `stop` (or the
  // first worker that throws) asks every worker to stop. Rethrows the first
  // worker failure as Error{WorkerFailed} naming the worker.
  // Each worker's lifecycle (started, stopped, failed with the reason) goes to
  // the builder's on_worker_event observer and to worker_counts().
  void serve(const std::vector<std::shared_ptr<InboundProtocol>>& workers,
             std::stop_token stop = {});
  // Runs the workers registered with EngineBuilder::protocol (see above).
  void serve(std::stop_token stop = {});
  WorkerCounts worker_counts() const { return worker_tally_.counts(); }

  // Ends every publish (subscribers see Closed).
  void close_all();

  // Stops and joins the reaper thread (if any).
  ~Engine() override;

  // The period of the engine's own reaper (zero if it runs none).
  std::chrono::nanoseconds reaper_period() const { return reaper_period_; }

 private:
  friend class EngineBuilder;
  Engine(std::map<std::string, AppSpec> apps, std::optional<AppSpec> any_app);
  void start_reaper();
  const AppSpec& spec_for(const StreamKey& key) const;   // throws UnknownApplication
  StreamHandle live_locked(const StreamKey& key) const;  // registered, not closed; under mutex_

  const std::map<std::string, AppSpec> apps_;
  const std::optional<AppSpec> any_app_;

  mutable std::mutex mutex_;
  std::condition_variable_any published_;
  std::unordered_map<StreamKey, StreamHandle> streams_;
  std::map<std::string, std::size_t> publishers_per_app_;
  std::uint64_t next_instance_ = 1;

  // Set once by the builder, read-only afterwards.
  std::vector<std::shared_ptr<InboundProtocol>> workers_;
  WorkerObserver worker_observer_;
  WorkerTally worker_tally_;

  std::chrono::nanoseconds reaper_period_{0};
  std::mutex reaper_mutex_;
  std::condition_variable_any reaper_cv_;
  std::jthread reaper_;  // last: stopped first
};

class EngineBuilder {
 public:
  // Adds (or replaces) an application.
  EngineBuilder& application(AppSpec spec);
  // Accept keys of any application, using `defaults` (its name is ignored).
  EngineBuilder& accept_any_application(AppSpec defaults = AppSpec{});
  // Whether the engine runs its own idle reaper thread (default: yes, when an
  // application has an idle timeout). Off: the program calls reap_idle().
  EngineBuilder& reap_in_background(bool on);
  // Registers an ingest worker that Engine::serve(stop) runs. Throws
  // Error{InvalidArgument} for a null worker.
  EngineBuilder& protocol(std::shared_ptr<InboundProtocol> worker);
  // Receives every worker's lifecycle events (see worker_events.hpp).
  EngineBuilder& on_worker_event(WorkerObserver observer);
  // Throws Error{InvalidArgument} for an invalid spec.
  std::shared_ptr<Engine> build();

 private:
  std::vector<std::shared_ptr<InboundProtocol>> workers_;
  WorkerObserver worker_observer_;
  std::map<std::string, AppSpec> apps_;
  std::optional<AppSpec> any_app_;
  bool reap_in_background_ = true;
};

}  // namespace arcly
