#include "arcly/stream.hpp"

#include <algorithm>

#include "arcly/engine.hpp"
#include "arcly/error.hpp"

namespace arcly {
namespace {
std::size_t ring_size(const AppSpec& app) {
  return app.ring_frames != 0 ? app.ring_frames : app.cache_frames + 1024;
}
}  // namespace

Stream::Stream(StreamKey key, const AppSpec& app, std::uint64_t instance)
    : key_(std::move(key)),
      instance_(instance),
      max_subscribers_(app.max_subscribers),
      idle_timeout_(app.idle_timeout),
      bus_(ring_size(app), app.cache_bytes),
      gop_(CacheBounds{app.cache_frames, app.cache_bytes, app.cache_window}, bus_) {}

std::size_t Stream::publish_frame(MediaFrame frame) {
  {
    std::lock_guard lock(publish_mutex_);
    const auto refused = [&] {
      return Error(Errc::StreamClosed,
                   "stream " + key_.str() + " has ended; publishing is refused");
    };
    if (bus_.closed()) throw refused();
    const std::uint8_t marks = gop_.classify(frame);
    const bool primary = !frame.is_config() && gop_.is_primary(frame.track);
    const std::size_t size = frame.payload.size();
    const bool media = !frame.is_config();
    const std::int64_t pts = frame.pts;
    FrameRef published;
    try {
      published = bus_.publish_quiet(std::move(frame), marks);
    } catch (const Error&) {
      throw refused();  // closed meanwhile (the bus names no stream)
    }
    bytes_total_ += size;
    // Release: a subscriber that reads this pts can read the frame too.
    if (media && pts > newest_pts_.load(std::memory_order_relaxed))
      newest_pts_.store(pts, std::memory_order_release);
    gop_.note_published(published, bytes_total_);
    qos_.on_frame(*published, primary, published.is_anchor(), std::chrono::steady_clock::now());
  }
  bus_.notify();  // outside the lock: a wake-up never delays the next publisher
  return subscribers_.load(std::memory_order_acquire);
}

bool Stream::close_if_idle(std::chrono::steady_clock::time_point now) {
  if (idle_timeout_.count() == 0) return false;
  std::lock_guard lock(publish_mutex_);
  if (bus_.closed() || now - last_frame_at() <= idle_timeout_) return false;
  bus_.close();
  return true;
}

Subscription Stream::subscribe(const SubscribeOptions& options) {
  return Subscription(shared_from_this(), options);
}

Subscription Stream::subscribe_resilient(StartAt start) {
  SubscribeOptions o;
  o.start = start;
  o.resilient = true;
  return subscribe(o);
}

void Stream::attach_subscriber(SubscriberCounters& counters) {
  std::size_t n = subscribers_.load(std::memory_order_relaxed);
  do {
    if (max_subscribers_ != 0 && n >= max_subscribers_) {
      throw Error(Errc::SubscriberLimitReached,
                  "stream " + key_.str() + " already has its maximum of " +
                      std::to_string(max_subscribers_) + " subscribers");
    }
  } while (!subscribers_.compare_exchange_weak(n, n + 1, std::memory_order_acq_rel));
  std::lock_guard lock(subscribers_mutex_);
  counters.id = next_subscriber_id_++;
  subscriber_counters_.push_back(&counters);
}

void Stream::detach_subscriber(const SubscriberCounters& counters) {
  {
    std::lock_guard lock(subscribers_mutex_);
    std::erase(subscriber_counters_, &counters);
  }
  subscribers_.fetch_sub(1, std::memory_order_acq_rel);
}

std::vector<FrameRef> Stream::replay_buffer() {
  std::vector<FrameRef> out;
  Bus::Hazard* hazard = bus_.acquire_hazard();
  const std::uint64_t tail = bus_.tail();
  if (auto anchor = gop_.newest(bus_.oldest(), tail)) {
    for (std::uint64_t p = anchor->position; p < tail; ++p) {
      FrameRef f = bus_.peek(*hazard, p);
      if (f && !f->is_config()) out.push_back(std::move(f));
    }
  }
  bus_.release_hazard(hazard);
  return out;
}

QosSnapshot Stream::qos() const {
  QosSnapshot q;
  qos_.fill(q, std::chrono::steady_clock::now());
  q.subscribers = subscribers_.load(std::memory_order_acquire);
  {
    std::lock_guard lock(subscribers_mutex_);
    for (const auto& c : subscriber_counters_) {
      q.per_subscriber.push_back(SubscriberQos{c->id, c->delivered.load(std::memory_order_relaxed),
                                               c->dropped.load(std::memory_order_relaxed),
                                               c->lag_events.load(std::memory_order_relaxed)});
    }
  }
  const std::uint64_t tail = bus_.tail();
  if (auto anchor = gop_.newest(bus_.oldest(), tail)) q.cached_frames = tail - anchor->position;
  q.ring_bytes = bus_.bytes_held();
  q.retired_bytes = bus_.bytes_retired();
  return q;
}

}  // namespace arcly
