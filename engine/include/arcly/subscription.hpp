// arcly::Subscription — one subscriber's cursor on a stream.
//
// A subscription is just a position on the stream's Bus plus a little state:
//
// * Start. `StartAt::Keyframe` (default) delivers the config of every track that
//   is current at the newest anchor (a keyframe of the primary track, see
//   gop_cache.hpp), then the cached GOP from that anchor, then live frames — one
//   unbroken sequence. With `preroll` > 0 it starts at an older cached anchor so
//   that the first frame is at least `preroll` before the live edge (pre-event
//   footage). `StartAt::NextKeyframe` delivers the current configs, then waits
//   for the next anchor (what `tee` does). `StartAt::Now` starts at the live edge
//   with no wait for a keyframe (for tests and data tracks).
// * Tracks. After a start at an anchor, every other track begins at a frame that
//   starts that track (its keyframe; any frame of a track without keyframes):
//   a joiner never gets a delta of a track whose keyframe it did not get.
// * Lag, strict mode. If the ring overwrote what it had not read, recv() returns
//   Lagged with the exact number of frames skipped; the next recv() delivers the
//   configs current at the oldest frame still held (those not delivered yet),
//   then continues at that frame.
// * Lag, resilient mode. The subscription resyncs: to the newest cached anchor,
//   or, if none is usable, to the next anchor the ring brings (skipping what
//   comes before it). Either way the configs current at that anchor that it has
//   not delivered come first, then the anchor, flagged `discont` with `skipped`
//   = frames dropped before it. Joining and both lag cases use one routine.
// * End. After the publish ends, recv() drains what is still readable, then
//   returns Closed — forever after. A subscription taken after the end drains
//   what the ring holds the same way.
// * Readiness. try_recv() never blocks. watch(waker) lets one thread serve many
//   subscriptions (see readiness.hpp); recv() blocks one thread per subscriber.
// * Draining. try_drain(fn) hands fn every result try_recv() would return, in the
//   same order, until Empty or Closed, but the frames are borrowed (FrameView),
//   not referenced: valid only until fn returns. For consumers that copy or
//   forward a frame at once (a socket write, a packetizer): no reference count
//   is touched, so readers on different cores do not bounce the frame's line.
// * Threads. A subscription is used by one thread at a time (it may move between
//   threads). To wake a blocked recv(), request stop on the token passed to it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <stop_token>
#include <type_traits>
#include <vector>

#include "arcly/bus.hpp"
#include "arcly/frame_ref.hpp"
#include "arcly/qos.hpp"

namespace arcly {

class Stream;
class StreamKey;
class Waker;

enum class StartAt { Keyframe, NextKeyframe, Now };

struct SubscribeOptions {
  StartAt start = StartAt::Keyframe;
  std::chrono::nanoseconds preroll{0};  // with Keyframe: replay at least this much
  bool resilient = false;
};

enum class RecvStatus { Frame, Lagged, Empty, Closed, Timeout, Cancelled };

struct Received {
  RecvStatus status = RecvStatus::Empty;
  FrameRef frame;             // with Frame
  std::uint64_t skipped = 0;  // Lagged: frames skipped; Frame (resilient): dropped before it
  bool discont = false;       // Frame: a gap precedes this frame
  explicit operator bool() const { return status == RecvStatus::Frame; }
};

// One result of Subscription::try_drain: Frame or Lagged, as in Received.
struct Drained {
  RecvStatus status = RecvStatus::Frame;
  FrameView frame;  // with Frame: valid until the callback returns (view.ref() to keep it)
  std::uint64_t skipped = 0;
  bool discont = false;
};

// Aligned to a cache line: the fields try_drain's common case reads come first
// and fit in the object's first line (see the private members).
class alignas(kCacheLine) Subscription {
 public:
  // Throws Error{SubscriberLimitReached}; nothing stays attached after a throw.
  Subscription(std::shared_ptr<Stream> stream, const SubscribeOptions& options);
  ~Subscription();
  Subscription(Subscription&&) noexcept;
  Subscription& operator=(Subscription&&) noexcept;
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  // Never blocks: Frame, Lagged, Empty or Closed (also for a moved-from one).
  Received try_recv();
  // Blocks until a result, the deadline (Timeout) or `stop` (Cancelled).
  Received recv(
      std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max(),
      std::stop_token stop = {});
  template <class Rep, class Period>
  Received recv_for(std::chrono::duration<Rep, Period> timeout, std::stop_token stop = {}) {
    return recv(std::chrono::steady_clock::now() + timeout, std::move(stop));
  }
  // Never blocks. Calls fn(const Drained&) for each Frame and Lagged that
  // try_recv() would return, in order, at most `max` times; returns Empty or
  // Closed once there is nothing more, Frame if it stopped at `max`. fn must not
  // use this subscription; if fn throws, what it was handed counts as delivered.
  template <class Fn>
  RecvStatus try_drain(Fn&& fn, std::size_t max = static_cast<std::size_t>(-1)) {
    return drain(
        &fn, [](void* f, const Drained& d) { (*static_cast<std::remove_reference_t<Fn>*>(f))(d); },
        max);
  }
  // Seed-style convenience for resilient subscribers: the next frame, or an empty
  // FrameRef once the stream has ended.
  FrameRef next_frame(std::stop_token stop = {});

  // Readiness (readiness.hpp): a publish or the end of this subscription's
  // stream notifies `waker` (once per waker per stream, however many of its
  // subscriptions watch). Replaces an earlier watch. After watch() returns, poll
  // once: what was published before is not notified. Thread: the owner.
  void watch(std::shared_ptr<Waker> waker);
  void unwatch();
  // Cheap check: would try_recv() possibly return something other than Empty?
  bool ready() const;

  // The bus tail when the subscription started: frames at lower positions came
  // from the GOP cache, the rest are live.
  std::uint64_t live_edge() const { return live_edge_; }
  bool from_cache(const FrameRef& f) const { return f.position() < live_edge_; }

  const StreamKey& key() const;  // throws Error{InvalidArgument} on a moved-from one
  const std::shared_ptr<Stream>& stream() const { return att_.stream; }
  bool resilient() const { return options_.resilient; }
  std::uint64_t delivered() const;
  std::uint64_t dropped() const;
  // Frames the subscriber still has to read before reaching the live edge.
  std::uint64_t backlog() const;

 private:
  // The stream, this subscriber's hazard (which holds its counters) and watch,
  // released together (RAII) on destruction and move-assignment; the other
  // members are plain values, so the defaulted moves stay right whatever fields
  // are added.
  struct Attachment {
    Attachment() = default;
    explicit Attachment(std::shared_ptr<Stream> s);
    ~Attachment() { reset(); }
    Attachment(Attachment&& o) noexcept;
    Attachment& operator=(Attachment&& o) noexcept;
    void reset() noexcept;
    std::shared_ptr<Stream> stream;
    Bus::Hazard* hazard = nullptr;
    std::shared_ptr<Waker> waker;
  };
  // What the ring's frames pass through before they are delivered.
  enum class Gate : std::uint8_t {
    None,    // deliver every frame (StartAt::Now; strict after Lagged)
    Anchor,  // skip to the next anchor; hold configs seen meanwhile
    Tracks,  // started at an anchor: each other track from its first start frame
  };

  RecvStatus drain(void* fn, void (*call)(void*, const Drained&), std::size_t max);
  void resync(bool joining);
  Received deliver(FrameRef f);
  void skip();
  void count_dropped(std::uint64_t n);
  void queue_configs(const std::vector<FrameRef>& configs);
  void hold_config(FrameRef config);
  bool already_delivered(const FrameRef& config) const;
  void remember_config(const FrameRef& config);
  bool track_started(std::uint32_t track) const;
  void start_track(std::uint32_t track);

  void enqueue(FrameRef f);
  FrameRef dequeue();

  // First line: all the subscriber state try_drain's common case reads (with
  // the hazard's line, all it touches of this subscriber). Keep it under 64 bytes.
  Attachment att_;
  std::uint64_t cursor_ = 0;
  std::uint64_t started_low_ = 0;  // Gate::Tracks: bit t set = track t (< 64) started
  Gate gate_ = Gate::None;
  bool closed_ = false;
  bool discont_pending_ = false;  // the next media frame follows a gap
  bool queued_ = false;           // pending_ is not empty

  SubscribeOptions options_;
  std::deque<FrameRef> pending_;  // to deliver before the next ring frame, in order
  std::vector<FrameRef> held_;    // Gate::Anchor: configs to send in front of the anchor
  struct DeliveredConfig {
    std::uint32_t track;
    const void* id;
  };
  std::vector<DeliveredConfig> delivered_configs_;  // the config last delivered per track
  std::vector<std::uint32_t> started_tracks_;       // Gate::Tracks, tracks >= 64
  std::uint64_t live_edge_ = 0;
  std::uint64_t carry_skipped_ = 0;  // resilient: drops not yet reported
  std::uint64_t since_empty_ = 0;    // frames read since recv() last found nothing
  bool skips_are_drops_ = false;     // frames skipped by the gate after a lag are drops
};

}  // namespace arcly
