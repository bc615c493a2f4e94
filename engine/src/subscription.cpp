#include "arcly/subscription.hpp"

#include <algorithm>
#include <thread>

#include "arcly/stream.hpp"

namespace arcly {

namespace {
constexpr int kYieldsBeforeSleep = 8;
}  // namespace

Subscription::Subscription(std::shared_ptr<Stream> stream, const SubscribeOptions& options)
    : stream_(std::move(stream)), options_(options) {
  counters_ = stream_->attach_subscriber();
  Bus& bus = stream_->bus();
  GopCache& gop = stream_->gop();
  hazard_ = bus.acquire_hazard();
  // Read the tail first: an anchor or config published after it is seen through
  // the ring, and a config seen both ways is delivered once (already_delivered).
  const std::uint64_t tail = bus.tail();
  live_edge_ = tail;
  cursor_ = tail;
  std::optional<GopAnchor> anchor;
  if (options_.start == StartAt::Keyframe) {
    anchor = options_.preroll.count() > 0 ? gop.covering(options_.preroll, bus.oldest(), tail)
                                          : gop.newest(bus.oldest(), tail);
  }
  if (anchor) {
    queue_configs(anchor->configs);
    cursor_ = anchor->position;
  } else {
    // A config published just before `tail` may not be in the cache's set yet:
    // read the ring from where the set is complete (duplicates are skipped).
    std::uint64_t noted = 0;
    queue_configs(gop.configs(&noted));
    cursor_ = std::min(noted, tail);
    waiting_keyframe_ = options_.start != StartAt::Now;
  }
}

Subscription::~Subscription() {
  release();
}

Subscription::Subscription(Subscription&& o) noexcept
    : stream_(std::move(o.stream_)),
      options_(o.options_),
      hazard_(std::exchange(o.hazard_, nullptr)),
      counters_(std::move(o.counters_)),
      pending_(std::move(o.pending_)),
      delivered_configs_(std::move(o.delivered_configs_)),
      cursor_(o.cursor_),
      live_edge_(o.live_edge_),
      carry_skipped_(o.carry_skipped_),
      waiting_keyframe_(o.waiting_keyframe_),
      count_skips_(o.count_skips_),
      discont_pending_(o.discont_pending_),
      closed_(o.closed_),
      since_empty_(o.since_empty_) {}

Subscription& Subscription::operator=(Subscription&& o) noexcept {
  if (this != &o) {
    release();
    stream_ = std::move(o.stream_);
    options_ = o.options_;
    hazard_ = std::exchange(o.hazard_, nullptr);
    counters_ = std::move(o.counters_);
    pending_ = std::move(o.pending_);
    delivered_configs_ = std::move(o.delivered_configs_);
    cursor_ = o.cursor_;
    live_edge_ = o.live_edge_;
    carry_skipped_ = o.carry_skipped_;
    waiting_keyframe_ = o.waiting_keyframe_;
    count_skips_ = o.count_skips_;
    discont_pending_ = o.discont_pending_;
    closed_ = o.closed_;
    since_empty_ = o.since_empty_;
  }
  return *this;
}

void Subscription::release() {
  if (!stream_) return;
  stream_->bus().release_hazard(hazard_);
  hazard_ = nullptr;
  stream_->detach_subscriber(counters_);
  counters_.reset();
  stream_.reset();
}

const StreamKey& Subscription::key() const {
  return stream_->key();
}

std::uint64_t Subscription::delivered() const {
  return counters_ ? counters_->delivered.load(std::memory_order_relaxed) : 0;
}
std::uint64_t Subscription::dropped() const {
  return counters_ ? counters_->dropped.load(std::memory_order_relaxed) : 0;
}
std::uint64_t Subscription::backlog() const {
  if (!stream_) return 0;
  const std::uint64_t tail = stream_->bus().tail();
  return (tail > cursor_ ? tail - cursor_ : 0) + pending_.size();
}

bool Subscription::already_delivered(const FrameRef& config) const {
  for (const auto& d : delivered_configs_) {
    if (d.track == config->track) return d.id == config.id();
  }
  return false;
}

void Subscription::remember_config(const FrameRef& config) {
  for (auto& d : delivered_configs_) {
    if (d.track == config->track) {
      d.id = config.id();
      return;
    }
  }
  delivered_configs_.push_back({config->track, config.id()});
}

void Subscription::queue_configs(const std::vector<FrameRef>& configs) {
  for (const auto& c : configs) {
    if (!already_delivered(c)) pending_.push_back(c);
  }
}

Received Subscription::deliver(FrameRef f) {
  counters_->delivered.store(counters_->delivered.load(std::memory_order_relaxed) + 1,
                             std::memory_order_relaxed);
  Received r;
  r.status = RecvStatus::Frame;
  if (f->is_config()) {
    remember_config(f);
  } else if (discont_pending_) {
    r.discont = true;
    r.skipped = carry_skipped_;
    carry_skipped_ = 0;
    discont_pending_ = false;
  }
  r.frame = std::move(f);
  return r;
}

void Subscription::count_dropped(std::uint64_t n) {
  counters_->dropped.store(counters_->dropped.load(std::memory_order_relaxed) + n,
                           std::memory_order_relaxed);
}

// Resilient: jump to the newest cached keyframe (or wait for the next one).
Received Subscription::on_lagged(std::uint64_t skipped) {
  auto& lag_events = counters_->lag_events;
  lag_events.store(lag_events.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  Bus& bus = stream_->bus();
  std::uint64_t dropped = skipped;
  auto anchor = stream_->gop().newest(bus.oldest(), bus.tail());
  if (anchor && anchor->position >= cursor_) {
    dropped += anchor->position - cursor_;
    cursor_ = anchor->position;
    waiting_keyframe_ = false;
    queue_configs(anchor->configs);
  } else {
    waiting_keyframe_ = true;
    count_skips_ = true;
  }
  count_dropped(dropped);
  carry_skipped_ += dropped;
  discont_pending_ = true;
  return {};
}

Received Subscription::try_recv() {
  if (!stream_ || closed_) return Received{RecvStatus::Closed, {}, 0, false};
  Bus& bus = stream_->bus();
  for (;;) {
    if (!pending_.empty()) {
      FrameRef f = std::move(pending_.front());
      pending_.erase(pending_.begin());
      return deliver(std::move(f));
    }
    FrameRef f;
    std::uint64_t skipped = 0;
    switch (bus.try_read(*hazard_, cursor_, f, skipped)) {
      case Bus::Read::Frame:
        if (f->is_config()) {
          if (already_delivered(f)) continue;
          return deliver(std::move(f));
        }
        if (waiting_keyframe_) {
          if (!stream_->gop().is_anchor(*f)) {
            if (count_skips_) {
              count_dropped(1);
              ++carry_skipped_;
            }
            continue;
          }
          waiting_keyframe_ = false;
          count_skips_ = false;
        }
        return deliver(std::move(f));
      case Bus::Read::Lagged:
        if (options_.resilient) {
          on_lagged(skipped);
          continue;
        }
        count_dropped(skipped);
        counters_->lag_events.store(counters_->lag_events.load(std::memory_order_relaxed) + 1,
                                    std::memory_order_relaxed);
        return Received{RecvStatus::Lagged, {}, skipped, true};
      case Bus::Read::Empty:
        return Received{RecvStatus::Empty, {}, 0, false};
      case Bus::Read::Closed:
        closed_ = true;
        return Received{RecvStatus::Closed, {}, 0, false};
    }
  }
}

Received Subscription::recv(std::chrono::steady_clock::time_point deadline, std::stop_token stop) {
  Received r = try_recv();
  if (r.status != RecvStatus::Empty) {
    ++since_empty_;
    return r;
  }
  // A reader that found a backlog since it last ran dry (a busy stream, or one
  // it is catching up with) usually has the next frame within microseconds:
  // give the CPU away a few times before sleeping, sparing the publisher a
  // wake-up per frame. A reader at a live pace (one frame per wake-up) sleeps
  // at once.
  const bool hot = since_empty_ >= 2;
  since_empty_ = 0;
  for (int i = 0; hot && i < kYieldsBeforeSleep; ++i) {
    std::this_thread::yield();
    r = try_recv();
    if (r.status != RecvStatus::Empty) {
      ++since_empty_;
      return r;
    }
  }
  for (;;) {
    if (stop.stop_requested()) return Received{RecvStatus::Cancelled, {}, 0, false};
    if (!stream_->bus().wait(cursor_, deadline, stop)) {
      return Received{
          stop.stop_requested() ? RecvStatus::Cancelled : RecvStatus::Timeout, {}, 0, false};
    }
    r = try_recv();
    if (r.status != RecvStatus::Empty) return r;
  }
}

FrameRef Subscription::next_frame(std::stop_token stop) {
  for (;;) {
    Received r = recv(std::chrono::steady_clock::time_point::max(), stop);
    switch (r.status) {
      case RecvStatus::Frame:
        return std::move(r.frame);
      case RecvStatus::Lagged:
        continue;
      default:
        return {};
    }
  }
}

}  // namespace arcly
