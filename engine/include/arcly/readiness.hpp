// arcly::Waker — readiness for one thread that serves many subscriptions.
//
// The blocking Subscription::recv() costs one sleeping thread per subscriber.
// A dispatcher (the plugin's fan-out, a network egress loop) instead serves many
// subscriptions from one thread: it polls them with try_recv(), which never
// blocks, and sleeps on a single Waker between rounds.
//
// The contract:
//
// * Watching. Subscription::watch(waker) registers the waker with the
//   subscription's stream. A stream keeps one entry per distinct waker (with a
//   count), not one per subscription: a publish notifies each waker watching
//   its stream once, so its cost grows with the number of dispatchers (shards),
//   never with the number of subscribers. Closing the stream notifies too.
// * Notifying. notify() sets the waker's "notified" bit; only the call that sets
//   it pays for a wake-up (a futex wake if the dispatcher sleeps, an eventfd
//   write if it was created with one). A notification carries no data: it means
//   "some watched stream has something new; poll".
// * The dispatcher loop (one thread per waker):
//
//       for (;;) {
//         waker.reset();                 // 1. clear the bit FIRST
//         for (auto& s : subs)           // 2. then poll every subscription
//           while (auto r = s.try_recv()) handle(r);   // until Empty / Closed
//         waker.wait(deadline, stop);    // 3. sleep until notified
//       }
//
//   Because reset() happens before the polls, a publish that lands after a
//   poll found Empty is guaranteed to notify again (or its frame is seen by the
//   poll): no lost wake-up. A subscription added with watch() must be polled
//   once after watch() returns (frames published before the watch notify
//   nobody).
// * Threads. notify() from any thread (publishers, close, stop callbacks).
//   reset(), wait() and fd() reads belong to the dispatcher thread. The waker
//   must outlive its watches: Subscription::unwatch() (or destroying the
//   subscription) returns only once no publisher can still touch the waker.
// * Memory orders. The publisher's tail store, the notified-bit read in
//   notify() and its read-modify-write, reset()'s clear, and the poll's tail
//   load are all seq_cst: if notify() saw the bit still set, that read precedes
//   the dispatcher's clear in the single total order, which precedes its poll,
//   so the poll sees the publisher's tail.
// * epoll. With `with_eventfd`, fd() is an eventfd that is readable while
//   notified (reset() drains it). A dispatcher may then sleep in epoll/poll
//   together with its sockets instead of wait(). Spurious readiness is possible
//   (a reset racing a notify); a poll round that finds nothing is harmless.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stop_token>

namespace arcly {

class Waker {
 public:
  explicit Waker(bool with_eventfd = false);
  ~Waker();
  Waker(const Waker&) = delete;
  Waker& operator=(const Waker&) = delete;

  // Any thread. Cheap when already notified (one seq_cst load).
  void notify() noexcept;

  // Dispatcher thread: clears the notification; returns whether one was pending.
  bool reset() noexcept;

  // Dispatcher thread: true at once if notified, else sleeps until notified
  // (true), `deadline` or `stop` (false). Does not clear the notification.
  bool wait(
      std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max(),
      std::stop_token stop = {});

  bool notified() const noexcept {
    return (state_.load(std::memory_order_seq_cst) & kNotified) != 0;
  }

  // The eventfd (with_eventfd) or -1.
  int fd() const noexcept { return fd_; }

  // How many notify() calls actually signalled (set the bit); for tests and stats.
  std::uint64_t signals() const noexcept { return signals_.load(std::memory_order_relaxed); }

 private:
  static constexpr std::uint32_t kNotified = 1;
  static constexpr std::uint32_t kSleeping = 2;
  std::atomic<std::uint32_t> state_{0};  // a futex word
  std::atomic<std::uint64_t> signals_{0};
  int fd_ = -1;
};

}  // namespace arcly
