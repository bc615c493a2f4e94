// arcly::Bus — a lock-free single-publisher / many-subscriber broadcast ring.
//
// The contract, in the manner of tokio's sync::broadcast:
//
// * Publishing. One thread at a time publishes (the Stream serializes its
//   publishers). publish() writes one slot and advances the tail: it never waits
//   for a subscriber and never takes a lock. publish_quiet() does the same
//   without waking anybody; the caller then calls notify() (the Stream does so
//   after it has released its publish lock).
// * Reading. A subscriber is a cursor (the next position it wants) plus a hazard
//   record. Reading position p yields the very frame node the publisher wrote —
//   shared, not copied.
// * Lagging. The ring keeps the newest `capacity` frames (fewer when the byte
//   bound trims older ones). A subscriber whose position was overwritten gets
//   Lagged with the exact number of frames it skipped; its cursor moves to the
//   oldest frame still held. Nothing is ever lost silently.
// * Closing. close() marks the end. The tail and the closed bit live in one
//   word, so the end is one atomic event: a publish either lands before it (every
//   reader sees that frame) or is refused; every reader drains to the same last
//   frame, then sees Closed. close() may be called from any thread.
// * Waiting. wait() sleeps (no spinning) until a frame past the cursor exists,
//   the bus closes, the deadline passes or the stop token fires. A stop request
//   wakes only the sleepers that share the stopped one's wake bit (1 of 32).
//   For many subscribers per thread, see readiness.hpp (watch / Waker): a
//   publish notifies each watching Waker once.
// * Memory. Slots are allocated lazily, 64 at a time (4 KiB), as the publisher
//   first reaches them: an idle stream costs one chunk, not its whole ring.
//   Overwritten nodes are retired by the publisher and freed once no hazard
//   names them (Michael's hazard pointers). What is retired but not yet freed is
//   bounded by count (2 x hazards, at least 64) and by bytes (the larger of the
//   byte bound and 256 KiB) and reported by bytes_retired().
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stop_token>
#include <vector>

#include "arcly/frame_ref.hpp"
#include "arcly/qos.hpp"

namespace arcly {

inline constexpr std::size_t kCacheLine = 64;

class Waker;

class Bus {
 public:
  // One per subscriber; recycled after release. Never freed before the bus.
  // One cache line, written by its owner on every read and holding the owner's
  // counters too: a delivery writes one line of subscriber state, not one per
  // allocation (docs/performance.md, issue 9). Allocated in blocks, so that
  // subscriptions made one after another have neighbouring hazards and a
  // dispatcher serving them in that order walks memory in order.
  struct alignas(kCacheLine) Hazard {
    std::atomic<detail::FrameNode*> node{nullptr};
    std::atomic<const void*> aux{nullptr};  // protects a retire_aux() object (the GOP index)
    Hazard* next = nullptr;                 // fixed once the hazard is in the list
    std::atomic<bool> in_use{false};
    std::uint32_t wake_bit = 0;   // its owner's bit in the sleepers' futex bitset
    SubscriberCounters counters;  // its owner's (a Subscription's); reset by the owner
  };
  static_assert(sizeof(Hazard) == kCacheLine);

  enum class Read { Frame, Lagged, Empty, Closed };

  // `capacity` is rounded up to a power of two (minimum 16). `max_bytes` (0 = no
  // bound) trims the oldest frames whenever the payload bytes held exceed it,
  // always keeping the newest frame.
  explicit Bus(std::size_t capacity, std::size_t max_bytes = 0);
  ~Bus();
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;

  // Publisher thread only. Returns the published frame (the publisher's own
  // reference); throws Error{StreamClosed} after close(). publish() = publish_quiet()
  // + notify(). `marks` are detail::kMark* bits for FrameRef::is_anchor()/starts_track().
  FrameRef publish(MediaFrame frame, std::uint8_t marks = 0);
  FrameRef publish_quiet(MediaFrame frame, std::uint8_t marks = 0);
  // Any thread: wakes the sleepers and notifies the watching wakers, if any.
  void notify();

  // Any thread. Idempotent; wakes every waiter.
  void close();

  // Any thread.
  bool closed() const { return (state_.load(std::memory_order_acquire) & 1) != 0; }
  std::uint64_t tail() const { return state_.load(std::memory_order_acquire) >> 1; }
  std::uint64_t oldest() const;  // oldest position still readable
  std::size_t capacity() const { return mask_ + 1; }
  // Payload bytes in the ring.
  std::size_t bytes_held() const { return bytes_held_.load(std::memory_order_relaxed); }
  // Payload bytes overwritten or trimmed but not yet freed (a hazard may name them).
  std::size_t bytes_retired() const { return bytes_retired_.load(std::memory_order_relaxed); }
  // Bytes of slot memory allocated so far (grows to capacity x 64 bytes).
  std::size_t slot_bytes() const {
    return chunks_allocated_.load(std::memory_order_relaxed) * chunk_slots_ * sizeof(Slot);
  }

  // Subscriber side. `cursor` is advanced on Frame and moved to the oldest held
  // position on Lagged (with `skipped` set). Thread: the hazard's owner.
  Read try_read(Hazard& hazard, std::uint64_t& cursor, FrameRef& out, std::uint64_t& skipped);

  // Reads the frame at `position` without moving any cursor (null if gone or not
  // yet published). Thread: the hazard's owner.
  FrameRef peek(Hazard& hazard, std::uint64_t position);

  // Like peek(), without taking a reference: the node at `position`, left
  // protected by `hazard` until its owner's next protect or clear
  // (hazard.node.store(nullptr)); null if gone or not yet published. `empty` is
  // set when null means exactly what try_read's Empty means (nothing at
  // `position` yet, the bus open); otherwise use try_read, which decides Lagged
  // or Closed. Thread: the hazard's owner.
  detail::FrameNode* borrow(Hazard& hazard, std::uint64_t position, bool& empty);

  // Sleeps until tail() > cursor, closed(), `deadline` or `stop`. Returns true if
  // there is something to read (a frame or the close); false on timeout/stop.
  // `wake_bit` (0-31) selects which sleepers a stop request wakes (see Hazard).
  bool wait(std::uint64_t cursor, std::chrono::steady_clock::time_point deadline,
            std::stop_token stop, std::uint32_t wake_bit = 0);

  Hazard* acquire_hazard();
  void release_hazard(Hazard* hazard);

  // Wakes all sleepers (e.g. when a subscriber's owner wants it to re-check state).
  void wake_all();

  // Readiness (see readiness.hpp). Any thread but the publisher's; rare (per
  // subscription, not per frame). unwatch() returns once no notify() can still
  // touch `waker`.
  void watch(Waker* waker);
  void unwatch(Waker* waker);

  // Hazard-protected objects besides frames (the GOP index): protect_aux() loads
  // `src` and publishes it in `hazard.aux` (clear it with hazard.aux.store(nullptr));
  // retire_aux() (publisher thread only) frees `object` with `free` once no
  // hazard's aux names it.
  const void* protect_aux(Hazard& hazard, const std::atomic<const void*>& src);
  void retire_aux(const void* object, void (*free)(const void*));

 private:
#ifdef ARCLY_BUS_UNPADDED_SLOTS  // only for bus-bench's comparison (see bus.cpp)
  using Slot = std::atomic<detail::FrameNode*>;
#else
  // One cache line per slot: measured to pay (docs/performance.md, issue 9).
  struct alignas(kCacheLine) Slot : std::atomic<detail::FrameNode*> {};
#endif

  Slot& slot(std::uint64_t position) const {
    const std::size_t i = position & mask_;
    return chunks_[i >> chunk_shift_].load(std::memory_order_acquire)[i & (chunk_slots_ - 1)];
  }
  Slot& slot_for_publish(std::uint64_t position);
  detail::FrameNode* protect(Hazard& hazard, const Slot& src);
  void retire(detail::FrameNode* node);
  void scan();
  void trim_to_bytes();
  void notify_watchers();

  const std::size_t mask_;
  const std::size_t max_bytes_;
  const std::size_t chunk_slots_;
  const unsigned chunk_shift_;
  std::unique_ptr<std::atomic<Slot*>[]> chunks_;  // allocated on first publish into them
  std::atomic<std::size_t> chunks_allocated_{0};

  // Written by the publisher (and close), read by everybody: tail << 1 | closed.
  alignas(kCacheLine) std::atomic<std::uint64_t> state_{0};
  std::atomic<std::uint64_t> floor_{0};  // positions below were trimmed by the byte bound
  std::atomic<std::size_t> bytes_held_{0};
  std::atomic<std::size_t> bytes_retired_{0};

  // Publisher-private.
  struct RetiredAux {
    const void* object;
    void (*free)(const void*);
  };
  alignas(kCacheLine) std::vector<detail::FrameNode*> retired_;
  std::vector<RetiredAux> retired_aux_;
  std::size_t scan_threshold_ = 64;
  std::size_t scan_bytes_ = 0;  // scan when bytes_retired_ reaches this
  std::vector<const void*> hazard_snapshot_;
  std::vector<const void*> aux_snapshot_;

  alignas(kCacheLine) std::atomic<Hazard*> hazards_{nullptr};
  std::atomic<std::size_t> hazard_count_{0};
  std::mutex hazard_blocks_mutex_;  // taken only to allocate a block
  std::vector<std::unique_ptr<Hazard[]>> hazard_blocks_;

  // Eventcount for sleeping subscribers: they sleep on `epoch_` (a futex) with
  // their own bit of a bitset; a publish wakes them all with one system call, a
  // stop wakes only one bit's sleepers.
  alignas(kCacheLine) std::atomic<std::uint32_t> sleepers_{0};
  std::atomic<std::uint32_t> epoch_{0};

  // Wakers watching this bus (readiness.hpp): an immutable list swapped by
  // watch()/unwatch() under watch_mutex_; notify() reads it inside a
  // watch_readers_ count, which unwatch() waits out before freeing the old list.
  struct WatchList;
  alignas(kCacheLine) std::atomic<WatchList*> watch_{nullptr};
  std::atomic<std::uint32_t> watch_readers_{0};
  std::mutex watch_mutex_;
};

}  // namespace arcly
