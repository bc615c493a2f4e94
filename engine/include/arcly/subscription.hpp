// arcly::Subscription — one subscriber's cursor on a stream.
//
// A subscription is just a position on the stream's Bus plus a little state:
//
// * Start. `StartAt::Keyframe` (default) delivers the newest config of every
//   track, then the cached GOP from its keyframe, then live frames — one unbroken
//   sequence. With `preroll` > 0 it starts at an older cached keyframe so that the
//   first frame is at least `preroll` before the live edge (pre-event footage).
//   `StartAt::NextKeyframe` delivers configs, then waits for the next keyframe of
//   the primary track (what `tee` does). `StartAt::Now` starts at the live edge
//   with no wait for a keyframe (for tests and data tracks).
// * Lag, strict mode. If the ring overwrote what it had not read, recv() returns
//   Lagged with the exact number of frames skipped; the next recv() continues at
//   the oldest frame still held.
// * Lag, resilient mode. The subscription instead jumps to the newest cached
//   keyframe (re-sending any config that changed), counts the frames it dropped,
//   and flags the next frame `discont` with `skipped` = frames dropped before it.
// * End. After the publish ends, recv() drains what is still readable, then
//   returns Closed — forever after.
// * Threads. A subscription is used by one thread at a time (it may move between
//   threads). cancel() may be called from any thread to wake a blocked recv().
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <stop_token>
#include <vector>

#include "arcly/bus.hpp"
#include "arcly/frame_ref.hpp"
#include "arcly/qos.hpp"

namespace arcly {

class Stream;
class StreamKey;

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

class Subscription {
 public:
  Subscription(std::shared_ptr<Stream> stream, const SubscribeOptions& options);
  ~Subscription();
  Subscription(Subscription&&) noexcept;
  Subscription& operator=(Subscription&&) noexcept;
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  // Never blocks: Frame, Lagged, Empty or Closed.
  Received try_recv();
  // Blocks until a result, the deadline (Timeout) or `stop` (Cancelled).
  Received recv(
      std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max(),
      std::stop_token stop = {});
  template <class Rep, class Period>
  Received recv_for(std::chrono::duration<Rep, Period> timeout, std::stop_token stop = {}) {
    return recv(std::chrono::steady_clock::now() + timeout, std::move(stop));
  }
  // Seed-style convenience for resilient subscribers: the next frame, or an empty
  // FrameRef once the stream has ended.
  FrameRef next_frame(std::stop_token stop = {});

  // The bus tail when the subscription started: frames at lower positions came
  // from the GOP cache, the rest are live.
  std::uint64_t live_edge() const { return live_edge_; }
  bool from_cache(const FrameRef& f) const { return f.position() < live_edge_; }

  const StreamKey& key() const;
  const std::shared_ptr<Stream>& stream() const { return stream_; }
  bool resilient() const { return options_.resilient; }
  std::uint64_t delivered() const;
  std::uint64_t dropped() const;
  // Frames the subscriber still has to read before reaching the live edge.
  std::uint64_t backlog() const;

 private:
  Received deliver(FrameRef f);
  Received on_lagged(std::uint64_t skipped);
  void count_dropped(std::uint64_t n);
  void queue_configs(const std::vector<FrameRef>& configs);
  void release();

  std::shared_ptr<Stream> stream_;
  SubscribeOptions options_;
  Bus::Hazard* hazard_ = nullptr;
  std::shared_ptr<SubscriberCounters> counters_;
  std::vector<FrameRef> pending_;  // configs to deliver before the next ring frame
  struct DeliveredConfig {
    std::uint32_t track;
    const void* id;
  };
  std::vector<DeliveredConfig> delivered_configs_;  // the config last delivered per track
  bool already_delivered(const FrameRef& config) const;
  void remember_config(const FrameRef& config);
  std::uint64_t cursor_ = 0;
  std::uint64_t live_edge_ = 0;
  std::uint64_t carry_skipped_ = 0;  // resilient: drops not yet reported
  bool waiting_keyframe_ = false;
  bool count_skips_ = false;  // frames skipped while waiting for a keyframe are drops
  bool discont_pending_ = false;
  bool closed_ = false;
  std::uint64_t since_empty_ = 0;  // frames read since recv() last found nothing
};

}  // namespace arcly
