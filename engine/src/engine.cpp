#include "arcly/engine.hpp"

#include <algorithm>
#include <exception>
#include <thread>

#include "arcly/error.hpp"
#include "arcly/inbound.hpp"
#include "arcly/worker_events.hpp"

namespace arcly {

void AppSpec::validate() const {
  auto bad = [&](const std::string& field, const std::string& why) {
    throw Error(Errc::InvalidArgument, "application '" + name + "': " + field + " " + why);
  };
  if (auto why = StreamKey::check_part(name); !why.empty()) bad("name", "is invalid: " + why);
  if (cache_frames == 0) bad("cache_frames", "must be at least 1");
  if (cache_bytes == 0) bad("cache_bytes", "must be at least 1");
  if (cache_window.count() < 0) bad("cache_window", "must not be negative");
  if (idle_timeout.count() < 0) bad("idle_timeout", "must not be negative");
  if (ring_frames != 0 && ring_frames < cache_frames) {
    bad("ring_frames", "must hold at least cache_frames (" + std::to_string(cache_frames) + ")");
  }
}

EngineBuilder Engine::builder() {
  return EngineBuilder{};
}

EngineBuilder& EngineBuilder::application(AppSpec spec) {
  std::string name = spec.name;
  apps_.insert_or_assign(std::move(name), std::move(spec));
  return *this;
}

EngineBuilder& EngineBuilder::accept_any_application(AppSpec defaults) {
  defaults.name = "any";
  any_app_ = std::move(defaults);
  return *this;
}

EngineBuilder& EngineBuilder::reap_in_background(bool on) {
  reap_in_background_ = on;
  return *this;
}

std::shared_ptr<Engine> EngineBuilder::build() {
  for (const auto& [name, spec] : apps_) spec.validate();
  if (any_app_) any_app_->validate();
  std::shared_ptr<Engine> engine(new Engine(apps_, any_app_));
  engine->workers_ = workers_;
  engine->worker_observer_ = worker_observer_;
  if (reap_in_background_) engine->start_reaper();
  return engine;
}

EngineBuilder& EngineBuilder::protocol(std::shared_ptr<InboundProtocol> worker) {
  if (!worker) throw Error(Errc::InvalidArgument, "EngineBuilder::protocol: null worker");
  workers_.push_back(std::move(worker));
  return *this;
}

EngineBuilder& EngineBuilder::on_worker_event(WorkerObserver observer) {
  worker_observer_ = std::move(observer);
  return *this;
}

Engine::Engine(std::map<std::string, AppSpec> apps, std::optional<AppSpec> any_app)
    : apps_(std::move(apps)), any_app_(std::move(any_app)) {}

Engine::~Engine() {
  if (reaper_.joinable()) {
    reaper_.request_stop();
    reaper_.join();
  }
}

void Engine::start_reaper() {
  std::chrono::nanoseconds shortest{0};
  auto consider = [&](const AppSpec& spec) {
    if (spec.idle_timeout.count() > 0 && (shortest.count() == 0 || spec.idle_timeout < shortest)) {
      shortest = spec.idle_timeout;
    }
  };
  for (const auto& [name, spec] : apps_) consider(spec);
  if (any_app_) consider(*any_app_);
  if (shortest.count() == 0) return;
  reaper_period_ = std::clamp<std::chrono::nanoseconds>(shortest / 4, std::chrono::milliseconds(10),
                                                        std::chrono::seconds(1));
  // The thread only touches `this`; the destructor joins it before anything dies.
  reaper_ = std::jthread([this](std::stop_token stop) {
    std::unique_lock lock(reaper_mutex_);
    while (!reaper_cv_.wait_for(lock, stop, reaper_period_, [] { return false; })) {
      if (stop.stop_requested()) return;
      lock.unlock();
      reap_idle();
      lock.lock();
    }
  });
}

const AppSpec& Engine::spec_for(const StreamKey& key) const {
  if (auto it = apps_.find(key.app()); it != apps_.end()) return it->second;
  if (any_app_) return *any_app_;
  std::string known;
  for (const auto& [name, spec] : apps_) known += (known.empty() ? "" : ", ") + name;
  throw Error(Errc::UnknownApplication,
              "application '" + key.app() + "' of stream " + key.str() +
                  " is not configured (known: " + (known.empty() ? "none" : known) + ")");
}

std::optional<AppSpec> Engine::application(const std::string& app) const {
  if (auto it = apps_.find(app); it != apps_.end()) return it->second;
  if (any_app_) {
    AppSpec spec = *any_app_;
    spec.name = app;
    return spec;
  }
  return std::nullopt;
}

StreamHandle Engine::start_publish(const StreamKey& key) {
  const AppSpec& spec = spec_for(key);
  StreamHandle stream;
  {
    std::lock_guard lock(mutex_);
    if (auto it = streams_.find(key); it != streams_.end()) {
      if (!it->second->closed())
        throw Error(Errc::StreamAlreadyPublishing,
                    "stream " + key.str() + " is already being published");
      // Closed and not yet unregistered (the reaper's close comes first): it
      // is gone, and its end_publish will find it replaced.
      streams_.erase(it);
      --publishers_per_app_[key.app()];
    }
    std::size_t& count = publishers_per_app_[key.app()];
    if (spec.max_publishers != 0 && count >= spec.max_publishers) {
      throw Error(Errc::PublisherLimitReached, "application '" + key.app() +
                                                   "' already has its maximum of " +
                                                   std::to_string(spec.max_publishers) +
                                                   " publishers (refusing " + key.str() + ")");
    }
    stream = std::make_shared<Stream>(key, spec, next_instance_++);
    streams_.emplace(key, stream);
    ++count;
  }
  published_.notify_all();
  return stream;
}

void Engine::end_publish(const StreamKey& key) {
  StreamHandle stream;
  {
    std::lock_guard lock(mutex_);
    auto it = streams_.find(key);
    if (it == streams_.end()) return;
    stream = std::move(it->second);
    streams_.erase(it);
    --publishers_per_app_[key.app()];
  }
  stream->close();
}

bool Engine::end_publish(const StreamHandle& stream) {
  if (!stream) return false;
  {
    std::lock_guard lock(mutex_);
    auto it = streams_.find(stream->key());
    if (it == streams_.end() || it->second != stream) {
      stream->close();  // an orphan (reaped or replaced) still ends for its readers
      return false;
    }
    streams_.erase(it);
    --publishers_per_app_[stream->key().app()];
  }
  stream->close();
  return true;
}

// A closed stream not yet unregistered is gone (see the header).
StreamHandle Engine::live_locked(const StreamKey& key) const {
  auto it = streams_.find(key);
  return it == streams_.end() || it->second->closed() ? nullptr : it->second;
}

StreamHandle Engine::find_stream(const StreamKey& key) const {
  std::lock_guard lock(mutex_);
  return live_locked(key);
}

StreamHandle Engine::get_stream(const StreamKey& key) const {
  if (auto s = find_stream(key)) return s;
  throw Error(Errc::StreamNotFound, "stream " + key.str() + " is not being published");
}

StreamHandle Engine::wait_for_stream(const StreamKey& key, std::chrono::milliseconds timeout,
                                     std::stop_token stop) {
  std::unique_lock lock(mutex_);
  auto found = [&] { return live_locked(key) != nullptr; };
  bool ok;
  if (timeout.count() < 0) {
    ok = published_.wait(lock, stop, found);
  } else {
    ok = published_.wait_until(lock, stop, std::chrono::steady_clock::now() + timeout, found);
  }
  if (ok) return live_locked(key);
  if (stop.stop_requested()) {
    throw Error(Errc::Cancelled, "stopped while waiting for stream " + key.str());
  }
  throw Error(Errc::Timeout, "stream " + key.str() + " is not being published (waited " +
                                 std::to_string(timeout.count()) + " ms)");
}

std::vector<StreamHandle> Engine::streams() const {
  std::lock_guard lock(mutex_);
  std::vector<StreamHandle> out;
  out.reserve(streams_.size());
  for (const auto& [key, s] : streams_)
    if (!s->closed()) out.push_back(s);
  return out;
}

std::size_t Engine::reap_idle(std::chrono::steady_clock::time_point now) {
  std::size_t reaped = 0;
  for (const auto& s : streams()) {
    if (!s->close_if_idle(now)) continue;
    end_publish(s);  // unregisters it (a no-op if it was replaced meanwhile)
    ++reaped;
  }
  return reaped;
}

void Engine::close_all() {
  std::vector<StreamHandle> registered;  // closed ones too: each is unregistered
  {
    std::lock_guard lock(mutex_);
    for (const auto& [key, s] : streams_) registered.push_back(s);
  }
  for (const auto& s : registered) end_publish(s);
}

void Engine::serve(const std::vector<std::shared_ptr<InboundProtocol>>& workers,
                   std::stop_token stop) {
  run_workers(IngestContext(shared_from_this()), workers, std::move(stop), worker_observer_,
              worker_tally_);
}

void Engine::serve(std::stop_token stop) {
  serve(workers_, std::move(stop));
}

}  // namespace arcly
