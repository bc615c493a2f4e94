#include "arcly/subscription.hpp"

#include <algorithm>
#include <thread>

#include "arcly/error.hpp"
#include "arcly/readiness.hpp"
#include "arcly/stream.hpp"

namespace arcly {

namespace {
constexpr int kYieldsBeforeSleep = 8;

// Counters written only by the subscription's owner: a plain load + store.
void bump(std::atomic<std::uint64_t>& counter, std::uint64_t n = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}
}  // namespace

// Allocates first (the hazard), attaches last (the counted slot): a throw leaves
// nothing attached.
Subscription::Attachment::Attachment(std::shared_ptr<Stream> s) : stream(std::move(s)) {
  hazard = stream->bus().acquire_hazard();
  // A recycled hazard: its last owner's writes happen before (in_use release /
  // acquire); nobody reads these counters until attach lists them (under a mutex).
  hazard->counters.delivered.store(0, std::memory_order_relaxed);
  hazard->counters.dropped.store(0, std::memory_order_relaxed);
  hazard->counters.lag_events.store(0, std::memory_order_relaxed);
  try {
    stream->attach_subscriber(hazard->counters);
  } catch (...) {
    stream->bus().release_hazard(hazard);
    hazard = nullptr;
    throw;
  }
}

Subscription::Attachment::Attachment(Attachment&& o) noexcept
    : stream(std::move(o.stream)),
      hazard(std::exchange(o.hazard, nullptr)),
      waker(std::move(o.waker)) {}

Subscription::Attachment& Subscription::Attachment::operator=(Attachment&& o) noexcept {
  if (this != &o) {
    reset();
    stream = std::move(o.stream);
    hazard = std::exchange(o.hazard, nullptr);
    waker = std::move(o.waker);
  }
  return *this;
}

void Subscription::Attachment::reset() noexcept {
  if (!stream) return;
  if (waker) stream->bus().unwatch(waker.get());
  waker.reset();
  // Unlisted before released: qos() never reads counters a new owner resets.
  stream->detach_subscriber(hazard->counters);
  stream->bus().release_hazard(hazard);
  hazard = nullptr;
  stream.reset();
}

Subscription::Subscription(std::shared_ptr<Stream> stream, const SubscribeOptions& options)
    : att_(std::move(stream)), options_(options) {
  resync(/*joining=*/true);
}

Subscription::~Subscription() = default;
Subscription::Subscription(Subscription&&) noexcept = default;
Subscription& Subscription::operator=(Subscription&&) noexcept = default;

const StreamKey& Subscription::key() const {
  if (!att_.stream) throw Error(Errc::InvalidArgument, "this subscription was moved from");
  return att_.stream->key();
}

std::uint64_t Subscription::delivered() const {
  return att_.hazard ? att_.hazard->counters.delivered.load(std::memory_order_relaxed) : 0;
}
std::uint64_t Subscription::dropped() const {
  return att_.hazard ? att_.hazard->counters.dropped.load(std::memory_order_relaxed) : 0;
}
std::uint64_t Subscription::backlog() const {
  if (!att_.stream) return 0;
  const std::uint64_t tail = att_.stream->bus().tail();
  return (tail > cursor_ ? tail - cursor_ : 0) + pending_.size();
}

void Subscription::watch(std::shared_ptr<Waker> waker) {
  if (!att_.stream) return;
  unwatch();
  if (!waker) return;
  att_.stream->bus().watch(waker.get());
  att_.waker = std::move(waker);
}

void Subscription::unwatch() {
  if (!att_.stream || !att_.waker) return;
  att_.stream->bus().unwatch(att_.waker.get());
  att_.waker.reset();
}

bool Subscription::ready() const {
  if (!att_.stream || closed_ || queued_) return true;
  const Bus& bus = att_.stream->bus();
  return bus.tail() > cursor_ || bus.closed();
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
    if (!already_delivered(c)) enqueue(c);
  }
}

// Gate::Anchor: the newest config of each track seen while waiting.
void Subscription::hold_config(FrameRef config) {
  for (auto& h : held_) {
    if (h->track == config->track) {
      h = std::move(config);
      return;
    }
  }
  held_.push_back(std::move(config));
}

bool Subscription::track_started(std::uint32_t track) const {
  if (track < 64) return (started_low_ >> track) & 1;
  return std::find(started_tracks_.begin(), started_tracks_.end(), track) != started_tracks_.end();
}

void Subscription::start_track(std::uint32_t track) {
  if (track < 64) {
    started_low_ |= std::uint64_t{1} << track;
  } else {
    started_tracks_.push_back(track);
  }
}

void Subscription::enqueue(FrameRef f) {
  pending_.push_back(std::move(f));
  queued_ = true;
}

FrameRef Subscription::dequeue() {
  FrameRef f = std::move(pending_.front());
  pending_.pop_front();
  queued_ = !pending_.empty();
  return f;
}

// The one start routine: joining, and a resilient subscriber's lag. Starts at
// the anchor the cache offers, sending the configs current there first; without
// one, waits for the next anchor the ring brings. A joiner gets the current
// configs at once (a player can prepare); after a lag they wait in front of the
// anchor, together with any config that changes before it.
void Subscription::resync(bool joining) {
  Stream& stream = *att_.stream;
  Bus& bus = stream.bus();
  GopCache& gop = stream.gop();
  Bus::Hazard& hazard = *att_.hazard;
  started_tracks_.clear();
  started_low_ = 0;
  held_.clear();
  std::optional<GopAnchor> anchor;
  if (joining) {
    // Read the tail first: an anchor or config published after it is seen through
    // the ring, and a config seen both ways is delivered once (already_delivered).
    const std::uint64_t tail = bus.tail();
    live_edge_ = tail;
    cursor_ = tail;
    if (options_.start == StartAt::Keyframe) {
      anchor = options_.preroll.count() > 0
                   ? gop.covering(hazard, options_.preroll, bus.oldest(), tail)
                   : gop.newest(hazard, bus.oldest(), tail);
    }
    if (!anchor) {
      // A config published just before `tail` may not be in the cache's set yet:
      // read the ring from where the set is complete (duplicates are skipped).
      std::uint64_t noted = 0;
      queue_configs(gop.configs(hazard, &noted));
      cursor_ = std::min(noted, tail);
      gate_ = options_.start == StartAt::Now ? Gate::None : Gate::Anchor;
      return;
    }
  } else {
    anchor = gop.newest(hazard, bus.oldest(), bus.tail());
    if (!anchor || anchor->position < cursor_) {
      held_ = gop.configs_at(hazard, cursor_);
      gate_ = Gate::Anchor;
      return;
    }
    const std::uint64_t dropped = anchor->position - cursor_;
    count_dropped(dropped);
    carry_skipped_ += dropped;
  }
  queue_configs(anchor->configs);
  cursor_ = anchor->position;
  gate_ = Gate::Tracks;
}

Received Subscription::deliver(FrameRef f) {
  bump(att_.hazard->counters.delivered);
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

// A ring frame the gate let by.
void Subscription::skip() {
  if (!skips_are_drops_) return;
  count_dropped(1);
  if (discont_pending_) ++carry_skipped_;
}

void Subscription::count_dropped(std::uint64_t n) {
  if (n) bump(att_.hazard->counters.dropped, n);
}

Received Subscription::try_recv() {
  if (!att_.stream || closed_) return Received{RecvStatus::Closed, {}, 0, false};
  Bus& bus = att_.stream->bus();
  for (;;) {
    if (queued_) {
      FrameRef f = dequeue();
      if (f->is_config() && already_delivered(f)) continue;
      return deliver(std::move(f));
    }
    FrameRef f;
    std::uint64_t skipped = 0;
    switch (bus.try_read(*att_.hazard, cursor_, f, skipped)) {
      case Bus::Read::Frame:
        if (f->is_config()) {
          if (gate_ == Gate::Anchor) {
            hold_config(std::move(f));
            continue;
          }
          if (already_delivered(f)) continue;
          return deliver(std::move(f));
        }
        if (gate_ == Gate::Anchor) {
          if (!f.is_anchor()) {
            skip();
            continue;
          }
          gate_ = Gate::Tracks;
          for (auto& c : held_) {
            if (!already_delivered(c)) enqueue(std::move(c));
          }
          held_.clear();
        }
        if (gate_ == Gate::Tracks && !track_started(f->track)) {
          if (!f.starts_track()) {
            skip();
            continue;
          }
          start_track(f->track);
        }
        if (queued_) {
          enqueue(std::move(f));
          continue;
        }
        return deliver(std::move(f));
      case Bus::Read::Lagged:
        bump(att_.hazard->counters.lag_events);
        if (options_.resilient) {
          count_dropped(skipped);
          carry_skipped_ += skipped;
          discont_pending_ = true;
          skips_are_drops_ = true;
          resync(/*joining=*/false);
          continue;
        }
        count_dropped(skipped);
        // Continue at the oldest frame held, after the configs current there.
        queue_configs(att_.stream->gop().configs_at(*att_.hazard, cursor_));
        gate_ = Gate::None;
        return Received{RecvStatus::Lagged, {}, skipped, true};
      case Bus::Read::Empty:
        return Received{RecvStatus::Empty, {}, 0, false};
      case Bus::Read::Closed:
        closed_ = true;
        return Received{RecvStatus::Closed, {}, 0, false};
    }
  }
}

// The common case — nothing pending, no gate holding frames back, a media frame
// of a started track — reads the ring with Bus::borrow: no reference count, one
// hazard store per frame, the delivered counter bumped once per call; and it
// answers Empty from the same seq_cst state load try_recv would make. It reads
// only the first line of this object and the hazard's line. Anything else
// (configs, gates, lag, the end) goes through try_recv(), which reads the same
// position again, so both paths deliver the same sequence.
RecvStatus Subscription::drain(void* fn, void (*call)(void*, const Drained&), std::size_t max) {
  if (!att_.stream) return RecvStatus::Closed;
  Bus& bus = att_.stream->bus();
  Bus::Hazard& hazard = *att_.hazard;
  struct Borrowed {  // on every exit, a throw from fn included
    Bus::Hazard& hazard;
    std::uint64_t count = 0;
    ~Borrowed() {
      if (count == 0) return;
      // Release: fn's reads of the last node happen before a scan that sees null.
      hazard.node.store(nullptr, std::memory_order_release);
      bump(hazard.counters.delivered, count);
    }
  } borrowed{hazard};
  for (std::size_t n = 0; n < max; ++n) {
    if (!closed_ && !queued_ && !discont_pending_ && gate_ != Gate::Anchor) {
      bool empty = false;
      if (detail::FrameNode* node = bus.borrow(hazard, cursor_, empty)) {
        const MediaFrame& f = node->frame;
        if (!f.is_config() && (gate_ == Gate::None || track_started(f.track))) {
          ++cursor_;
          ++borrowed.count;
          call(fn, Drained{RecvStatus::Frame, FrameView(node), 0, false});
          continue;
        }
      } else if (empty) {
        return RecvStatus::Empty;
      }
    }
    Received r = try_recv();  // clears the hazard
    if (r.status != RecvStatus::Frame && r.status != RecvStatus::Lagged) return r.status;
    call(fn, Drained{r.status, FrameView(r.frame), r.skipped, r.discont});
  }
  return RecvStatus::Frame;
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
    if (!att_.stream->bus().wait(cursor_, deadline, stop, att_.hazard->wake_bit)) {
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
