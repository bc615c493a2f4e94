// Dispatcher (see dispatcher.hpp).
#include "dispatcher.hpp"

#include <pthread.h>

#include <algorithm>
#include <map>

#include <gst/gst.h>

GST_DEBUG_CATEGORY_STATIC(arcly_dispatcher_debug);
#define GST_CAT_DEFAULT arcly_dispatcher_debug

namespace arcly::gst {

namespace {

enum State : int { kIdle = 0, kRunning = 1, kRemoved = 2 };

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The ticket a thread is running right now (remove() from inside run() would wait forever).
thread_local const void* tl_running = nullptr;

}  // namespace

class Dispatcher::Ticket {
 public:
  Ticket(Dispatchable& c, Shard& s) : client(c), shard(s) {}
  Dispatchable& client;
  Shard& shard;
  std::atomic<int> state{kIdle};
  std::atomic<bool> kicked{true};  // poll once after attach (readiness contract)
  std::atomic<bool> remove_requested{false};
};

struct Dispatcher::Worker {
  explicit Worker(std::uint64_t e) : epoch(e) {}
  const std::uint64_t epoch;
  std::atomic<std::int64_t> busy_since{0};  // steady ns when run() began; 0: not in run()
};

struct Dispatcher::Shard {
  unsigned index = 0;
  std::shared_ptr<Waker> waker = std::make_shared<Waker>();
  std::mutex lock;
  std::vector<std::shared_ptr<Ticket>> tickets;  // guarded by lock
  std::shared_ptr<Worker> worker;                // guarded by lock: the serving thread's
  std::atomic<std::uint64_t> version{0};         // bumped under lock when tickets change
  std::atomic<std::uint64_t> epoch{0};           // the serving worker's epoch
};

Dispatcher& Dispatcher::for_engine(const std::string& engine_name) {
  static std::mutex lock;
  static auto* dispatchers = new std::map<std::string, Dispatcher*>();  // process lifetime
  std::lock_guard guard(lock);
  Dispatcher*& d = (*dispatchers)[engine_name];
  if (!d) d = new Dispatcher(engine_name);
  return *d;
}

Dispatcher::Dispatcher(std::string name, unsigned shards, std::chrono::milliseconds block_bound)
    : name_(std::move(name)), bound_(block_bound) {
  static const bool once = [] {
    GST_DEBUG_CATEGORY_INIT(arcly_dispatcher_debug, "arclydispatcher", 0,
                            "arcly subscriber dispatcher");
    return true;
  }();
  (void)once;
  if (shards == 0) shards = std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < shards; ++i) {
    shards_.push_back(std::make_unique<Shard>());
    shards_.back()->index = i;
  }
}

Dispatcher::~Dispatcher() {
  stop_.request_stop();
  for (auto& s : shards_) s->waker->notify();
  std::thread watchdog;
  {
    std::unique_lock guard(lock_);
    cond_.notify_all();
    watchdog.swap(watchdog_);
    // Serving threads are detached (a taken-over one exits on its own): wait for the last.
    cond_.wait(guard, [this] { return live_threads_ == 0; });
  }
  if (watchdog.joinable()) watchdog.join();
}

// With lock_ and shard.lock held: a (new) serving thread for `shard`.
void Dispatcher::start_worker_locked(Shard& shard) {
  const std::uint64_t epoch = shard.epoch.load(std::memory_order_seq_cst) + 1;
  auto worker = std::make_shared<Worker>(epoch);
  shard.worker = worker;
  shard.epoch.store(epoch, std::memory_order_seq_cst);
  ++live_threads_;
  std::thread([this, &shard, worker] {
    serve(shard, worker);
    std::lock_guard guard(lock_);
    --live_threads_;
    cond_.notify_all();
  }).detach();
  threads_started_.fetch_add(1, std::memory_order_relaxed);
  if (!watchdog_.joinable()) watchdog_ = std::thread([this] { watchdog(); });
}

std::shared_ptr<Dispatcher::Ticket> Dispatcher::add(Dispatchable& client) {
  Shard* shard = nullptr;
  {
    std::lock_guard guard(lock_);
    std::size_t fewest = static_cast<std::size_t>(-1);
    for (auto& s : shards_) {
      std::lock_guard shard_guard(s->lock);
      if (s->tickets.size() < fewest) {
        fewest = s->tickets.size();
        shard = s.get();
      }
    }
    std::lock_guard shard_guard(shard->lock);
    if (!shard->worker) start_worker_locked(*shard);
  }
  client.attach(shard->waker);
  auto ticket = std::make_shared<Ticket>(client, *shard);
  {
    std::lock_guard shard_guard(shard->lock);
    shard->tickets.push_back(ticket);
    shard->version.fetch_add(1, std::memory_order_seq_cst);
  }
  if (clients_.fetch_add(1, std::memory_order_relaxed) == 0) {
    std::lock_guard guard(lock_);
    cond_.notify_all();
  }
  shard->waker->notify();
  return ticket;
}

void Dispatcher::kick(const std::shared_ptr<Ticket>& ticket) {
  ticket->kicked.store(true, std::memory_order_seq_cst);
  ticket->shard.waker->notify();
}

void Dispatcher::erase(Shard& shard, const Ticket* ticket) {
  std::lock_guard guard(shard.lock);
  auto it = std::find_if(shard.tickets.begin(), shard.tickets.end(),
                         [ticket](const auto& t) { return t.get() == ticket; });
  if (it == shard.tickets.end()) return;
  shard.tickets.erase(it);
  shard.version.fetch_add(1, std::memory_order_seq_cst);
  clients_.fetch_sub(1, std::memory_order_relaxed);
}

void Dispatcher::remove(const std::shared_ptr<Ticket>& ticket) {
  if (tl_running == ticket.get()) {
    g_critical("arcly dispatcher: a client removed itself from inside its run()");
    return;
  }
  ticket->remove_requested.store(true, std::memory_order_seq_cst);
  for (;;) {
    int state = ticket->state.load(std::memory_order_seq_cst);
    if (state == kRemoved) return;
    if (state == kIdle) {
      if (ticket->state.compare_exchange_strong(state, kRemoved, std::memory_order_seq_cst)) {
        erase(ticket->shard, ticket.get());
        return;
      }
      continue;
    }
    ticket->state.wait(kRunning, std::memory_order_seq_cst);
  }
}

// The shard's serving loop (readiness.hpp's dispatcher loop). Ends when the
// dispatcher stops or a newer worker took the shard over.
void Dispatcher::serve(Shard& shard, std::shared_ptr<Worker> worker) {
  {
    const std::string thread_name = "arcly-disp-" + std::to_string(shard.index);
    pthread_setname_np(pthread_self(), thread_name.substr(0, 15).c_str());
  }
  GST_DEBUG("dispatcher %s: shard %u served by worker %" G_GUINT64_FORMAT, name_.c_str(),
            shard.index, worker->epoch);
  std::vector<std::shared_ptr<Ticket>> local;
  std::uint64_t seen = static_cast<std::uint64_t>(-1);
  const std::stop_token stop = stop_.get_token();
  while (!stop.stop_requested()) {
    shard.waker->reset();  // before any poll: a later publish notifies again
    if (shard.epoch.load(std::memory_order_seq_cst) != worker->epoch) return;
    if (shard.version.load(std::memory_order_seq_cst) != seen) {
      std::lock_guard guard(shard.lock);
      local = shard.tickets;
      seen = shard.version.load(std::memory_order_seq_cst);
    }
    for (const auto& ticket : local) {
      serve_one(shard, *worker, ticket);
      // Taken over while stuck in a run(): that client was released; the rest is the new thread's.
      if (shard.epoch.load(std::memory_order_seq_cst) != worker->epoch) return;
    }
    shard.waker->wait(std::chrono::steady_clock::time_point::max(), stop);
  }
}

void Dispatcher::serve_one(Shard& shard, Worker& worker, const std::shared_ptr<Ticket>& ticket) {
  int idle = kIdle;
  if (!ticket->state.compare_exchange_strong(idle, kRunning, std::memory_order_seq_cst)) return;
  const bool kicked = ticket->kicked.load(std::memory_order_seq_cst) &&
                      ticket->kicked.exchange(false, std::memory_order_seq_cst);
  Dispatchable::Outcome outcome = Dispatchable::Outcome::Idle;
  bool blocked = false;
  tl_running = ticket.get();
  if (kicked || ticket->client.ready()) {
    const auto began = std::chrono::steady_clock::now();
    const std::int64_t start = now_ns();
    worker.busy_since.store(start, std::memory_order_seq_cst);
    outcome = ticket->client.run(
        began + std::chrono::duration_cast<std::chrono::steady_clock::duration>(bound_));
    const std::int64_t took = now_ns() - start;
    worker.busy_since.store(0, std::memory_order_seq_cst);
    blocked = took > bound_.count();
    if (blocked)
      GST_INFO("dispatcher %s: a client's run took %" G_GINT64_FORMAT " ms: back to its own thread",
               name_.c_str(), took / 1000000);
  }
  if (outcome == Dispatchable::Outcome::Release || blocked) {
    erase(shard, ticket.get());
    if (blocked) blocked_releases_.fetch_add(1, std::memory_order_relaxed);
    ticket->client.released(blocked);
    tl_running = nullptr;
    ticket->state.store(kRemoved, std::memory_order_seq_cst);
    if (ticket->remove_requested.load(std::memory_order_seq_cst)) ticket->state.notify_all();
    return;
  }
  tl_running = nullptr;
  if (outcome == Dispatchable::Outcome::More) ticket->kicked.store(true, std::memory_order_seq_cst);
  ticket->state.store(kIdle, std::memory_order_seq_cst);
  if (ticket->remove_requested.load(std::memory_order_seq_cst)) ticket->state.notify_all();
  if (outcome == Dispatchable::Outcome::More) shard.waker->notify();
}

// Every 10 ms while there are clients: a serving thread inside one run() for
// longer than the bound is replaced, so that the shard's other clients go on.
void Dispatcher::watchdog() {
  pthread_setname_np(pthread_self(), "arcly-disp-wd");
  const std::stop_token stop = stop_.get_token();
  const auto tick = std::max(std::chrono::milliseconds(1),
                             std::chrono::duration_cast<std::chrono::milliseconds>(bound_ / 2));
  std::unique_lock guard(lock_);
  while (!stop.stop_requested()) {
    if (clients_.load(std::memory_order_relaxed) == 0) {
      cond_.wait(guard, stop, [this] { return clients_.load(std::memory_order_relaxed) > 0; });
      continue;
    }
    cond_.wait_for(guard, stop, tick, [] { return false; });
    const std::int64_t now = now_ns();
    for (auto& s : shards_) {
      std::lock_guard shard_guard(s->lock);
      if (!s->worker) continue;
      const std::int64_t since = s->worker->busy_since.load(std::memory_order_seq_cst);
      if (since == 0 || now - since <= bound_.count()) continue;
      GST_INFO("dispatcher %s: shard %u stuck in one client for %" G_GINT64_FORMAT
               " ms: a new thread takes it over",
               name_.c_str(), s->index, (now - since) / 1000000);
      start_worker_locked(*s);
    }
  }
}

}  // namespace arcly::gst
