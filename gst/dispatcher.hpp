// Dispatcher — a few threads per engine that serve many subscribers, so that a
// subscriber in steady state has no thread of its own.
//
// A client (arclysrc's subscriber once it streams live) is added with add();
// the dispatcher has it watch its subscription with one of its shard's Wakers
// (Dispatchable::attach, readiness.hpp) and from then on one of its threads
// runs the client's non-blocking work (Dispatchable::run: drain the frames
// available, push the shared buffers into its pads) whenever its stream has
// something new or it was kicked, then goes on to the next ready client.
//
// * Shards. One shard per hardware thread (at least one), each with its own
//   Waker and its own serving thread, started at the shard's first client. A
//   new client goes to the shard with the fewest clients (ties: the lowest).
// * Non-blocking. run() must not wait for anything (a publisher, PLAYING, a
//   frame); it returns Idle when there is nothing to do, More when it stopped at
//   its budget (it is run again in the next round), Release when the client
//   needs its own thread again (paused, switching, publisher gone, EOS, an
//   error): the dispatcher then drops it and calls released(false).
// * A blocked downstream. A push may still block (a sink syncing on the clock,
//   a full queue, a blocking probe). A client whose run() took longer than the
//   bound (20 ms) is released with released(true). So that the shard's other
//   clients are not stalled meanwhile, a watchdog thread checks every 10 ms
//   whether a serving thread has been inside one run() for longer than the
//   bound; if so a new thread takes the shard over, and the stuck thread, once
//   its run() returns, releases that client (blocked) and exits.
// * Kicks. kick() makes the next round run the client even if its stream has
//   nothing new (the owner changed its run control: pause, EOS, switch).
// * Removal. remove() (any thread but a dispatcher thread inside that client's
//   run()) returns once the dispatcher will never call the client again: it
//   waits while the client is being run or released.
//
// Threads and memory orders. A Ticket's `state` (Idle, Running, Removed) is
// the ownership of the client: only the thread that moved it Idle->Running
// (a compare-exchange) calls run()/ready()/released(), and it gives it back with
// a store (Idle) or ends it (Removed); remove() takes it Idle->Removed. seq_cst
// throughout: `kicked` is stored before the Waker's notify() and read after the
// serving thread's reset() (the readiness contract, readiness.hpp), and a
// remover's `remove_requested` store orders against the serving thread's load
// after its state store, so a waiting remover is always notified. A shard's
// client list is guarded by its mutex; `version` (bumped under it) lets the
// serving thread re-copy the list only when it changed.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "arcly/readiness.hpp"

namespace arcly::gst {

class Dispatchable {
 public:
  enum class Outcome { Idle, More, Release };
  virtual ~Dispatchable() = default;
  // add()'s caller thread, before the client is served: watch the subscription
  // with `waker` (Subscription::watch).
  virtual void attach(const std::shared_ptr<Waker>& waker) = 0;
  // Dispatcher thread: cheap; FALSE when run() would find nothing to do.
  virtual bool ready() = 0;
  // Dispatcher thread: the non-blocking work; see above. Past `deadline` (the
  // bound from the start of the run) it should return at once: the dispatcher
  // releases it as blocked.
  virtual Outcome run(std::chrono::steady_clock::time_point deadline) = 0;
  // Dispatcher thread, once the client left the dispatcher (Release, or its
  // run() blocked longer than the bound): unwatch, take the work back. Not
  // called after remove().
  virtual void released(bool blocked) = 0;
};

class Dispatcher {
 public:
  class Ticket;

  static constexpr std::chrono::milliseconds kBlockBound{20};

  // The dispatcher of the engine named `engine_name`, created at first use and
  // kept for the process's lifetime. Any thread.
  static Dispatcher& for_engine(const std::string& engine_name);

  // `shards` 0: one per hardware thread.
  explicit Dispatcher(std::string name, unsigned shards = 0,
                      std::chrono::milliseconds block_bound = kBlockBound);
  // Every client must have been removed or released.
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Any thread (the client's owner): the client is served from now on, until
  // it is released or removed. `client` must outlive that.
  std::shared_ptr<Ticket> add(Dispatchable& client);
  // Any thread: run the client in the next round.
  void kick(const std::shared_ptr<Ticket>& ticket);
  // Any thread but a dispatcher thread inside this client's run(): see above.
  void remove(const std::shared_ptr<Ticket>& ticket);

  unsigned shards() const { return static_cast<unsigned>(shards_.size()); }
  std::size_t clients() const { return clients_.load(std::memory_order_relaxed); }
  // Serving threads started (shards, plus one per take-over of a stuck one).
  std::uint64_t threads_started() const { return threads_started_.load(std::memory_order_relaxed); }
  std::uint64_t blocked_releases() const {
    return blocked_releases_.load(std::memory_order_relaxed);
  }

 private:
  struct Shard;
  struct Worker;
  void start_worker_locked(Shard& shard);
  void serve(Shard& shard, std::shared_ptr<Worker> worker);
  void serve_one(Shard& shard, Worker& worker, const std::shared_ptr<Ticket>& ticket);
  void erase(Shard& shard, const Ticket* ticket);
  void watchdog();

  const std::string name_;
  const std::chrono::nanoseconds bound_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::stop_source stop_;

  std::mutex lock_;                   // guards live_threads_, watchdog_, the shards' thread starts
  std::condition_variable_any cond_;  // a first client, stop, a serving thread's exit
  unsigned live_threads_ = 0;         // guarded by lock_: serving threads (detached) running
  std::thread watchdog_;              // guarded by lock_

  std::atomic<std::size_t> clients_{0};
  std::atomic<std::uint64_t> threads_started_{0};
  std::atomic<std::uint64_t> blocked_releases_{0};
};

}  // namespace arcly::gst
