// arcly::Bus — a lock-free single-publisher / many-subscriber broadcast ring.
//
// The contract, in the manner of tokio's sync::broadcast:
//
// * Publishing. One thread at a time publishes (the Stream serializes its
//   publishers). publish() writes one slot and advances the tail: it never waits
//   for a subscriber, never takes a lock on the data path, and wakes sleeping
//   subscribers only when there are some.
// * Reading. A subscriber is a cursor (the next position it wants) plus a hazard
//   record. Reading position p yields the very frame node the publisher wrote —
//   shared, not copied.
// * Lagging. The ring keeps the newest `capacity` frames (fewer when the byte
//   bound trims older ones). A subscriber whose position was overwritten gets
//   Lagged with the exact number of frames it skipped; its cursor moves to the
//   oldest frame still held. Nothing is ever lost silently.
// * Closing. close() marks the end. Subscribers first drain every frame they can
//   still read, then see Closed. close() may be called from any thread, even while
//   the publisher runs; publish() after close() is refused.
// * Waiting. wait() sleeps (no spinning) until a frame past the cursor exists, the
//   bus closes, the deadline passes or the stop token fires.
//
// Memory reclamation: overwritten nodes are retired by the publisher and freed
// once no subscriber's hazard pointer names them (Michael's hazard pointers).
// A subscriber that took a frame owns its own reference; the ring's is separate.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stop_token>
#include <vector>

#include "arcly/frame_ref.hpp"

namespace arcly {

inline constexpr std::size_t kCacheLine = 64;

class Bus {
 public:
  // One per subscriber; recycled after release. Never freed before the bus.
  struct alignas(kCacheLine) Hazard {
    std::atomic<detail::FrameNode*> node{nullptr};
    std::atomic<bool> in_use{false};
    Hazard* next = nullptr;
  };

  enum class Read { Frame, Lagged, Empty, Closed };

  // `capacity` is rounded up to a power of two (minimum 16). `max_bytes` (0 = no
  // bound) trims the oldest frames whenever the payload bytes held exceed it,
  // always keeping the newest frame.
  explicit Bus(std::size_t capacity, std::size_t max_bytes = 0);
  ~Bus();
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  // Publisher thread only. Returns the published frame (the publisher's own
  // reference); throws Error{StreamClosed} after close().
  FrameRef publish(MediaFrame frame);

  // Any thread. Idempotent; wakes every waiter.
  void close();

  // Any thread.
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  std::uint64_t tail() const { return tail_.load(std::memory_order_acquire); }
  std::uint64_t oldest() const;  // oldest position still readable
  std::size_t capacity() const { return mask_ + 1; }
  std::size_t bytes_held() const { return bytes_held_.load(std::memory_order_relaxed); }

  // Subscriber side. `cursor` is advanced on Frame and moved to the oldest held
  // position on Lagged (with `skipped` set). Thread: the hazard's owner.
  Read try_read(Hazard& hazard, std::uint64_t& cursor, FrameRef& out, std::uint64_t& skipped);

  // Reads the frame at `position` without moving any cursor (null if gone or not
  // yet published). Thread: the hazard's owner.
  FrameRef peek(Hazard& hazard, std::uint64_t position);

  // Sleeps until tail() > cursor, closed(), `deadline` or `stop`. Returns true if
  // there is something to read (a frame or the close); false on timeout/stop.
  bool wait(std::uint64_t cursor, std::chrono::steady_clock::time_point deadline,
            std::stop_token stop);

  Hazard* acquire_hazard();
  void release_hazard(Hazard* hazard);

  // Wakes all waiters (e.g. when a subscriber's owner wants it to re-check state).
  void wake_all();

 private:
  struct alignas(kCacheLine) Slot {
    std::atomic<detail::FrameNode*> node{nullptr};
  };

  detail::FrameNode* protect(Hazard& hazard, const std::atomic<detail::FrameNode*>& src);
  void retire(detail::FrameNode* node);
  void scan();
  void trim_to_bytes();
  void notify_waiters();

  const std::size_t mask_;
  const std::size_t max_bytes_;
  std::unique_ptr<Slot[]> slots_;

  // Written by the publisher, read by everybody.
  alignas(kCacheLine) std::atomic<std::uint64_t> tail_{0};
  std::atomic<std::uint64_t> floor_{0};  // positions below were trimmed by the byte bound
  std::atomic<std::size_t> bytes_held_{0};
  alignas(kCacheLine) std::atomic<bool> closed_{false};

  // Publisher-private.
  alignas(kCacheLine) std::vector<detail::FrameNode*> retired_;
  std::size_t scan_threshold_ = 64;
  std::vector<detail::FrameNode*> hazard_snapshot_;

  alignas(kCacheLine) std::atomic<Hazard*> hazards_{nullptr};
  std::atomic<std::size_t> hazard_count_{0};

  // Eventcount for sleeping subscribers: they sleep on `epoch_` (a futex), so a
  // publish wakes them all with one system call and no lock for them to fight
  // over on their way out.
  alignas(kCacheLine) std::atomic<std::uint32_t> waiters_{0};
  std::atomic<std::uint32_t> epoch_{0};
};

}  // namespace arcly
