// Implementation notes for arcly::Bus (the contract is in bus.hpp).
//
// Ordering. The publisher stores a slot (seq_cst exchange) before it advances
// tail_ (seq_cst store), so a reader that sees tail > p also sees the node of p
// or something newer. A node with a larger position than the cursor proves the
// cursor was overwritten even if the reader's tail is stale: the lag is computed
// from that node, so no reader ever spins waiting for the publisher.
//
// Hazard pointers. A reader announces the node it is about to take (seq_cst
// store) and re-reads the slot; the publisher frees a retired node only if no
// hazard names it, scanning all hazards once per `scan_threshold_` retirements.
//
// Eventcount. A sleeper increments waiters_, reads epoch_, re-checks the tail and
// sleeps on epoch_ only while it still holds that value; the publisher stores the
// tail, then reads waiters_ and, if anyone sleeps, bumps epoch_ and wakes them
// (all seq_cst). Either the sleeper sees the new tail, or its futex wait sees a
// changed epoch and returns at once. Linux futexes: no mutex on the wake path.
#include "arcly/bus.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <ctime>

#include "arcly/error.hpp"

namespace arcly {

using detail::FrameNode;

Bus::Bus(std::size_t capacity, std::size_t max_bytes)
    : mask_(std::bit_ceil(std::max<std::size_t>(capacity, 16)) - 1),
      max_bytes_(max_bytes),
      slots_(new Slot[mask_ + 1]) {
  retired_.reserve(scan_threshold_ * 2);
}

Bus::~Bus() {
  for (std::size_t i = 0; i <= mask_; ++i) {
    if (auto* n = slots_[i].node.load(std::memory_order_relaxed)) detail::node_unref(n);
  }
  for (auto* n : retired_) detail::node_unref(n);
  auto* h = hazards_.load(std::memory_order_relaxed);
  while (h) {
    auto* next = h->next;
    delete h;
    h = next;
  }
}

std::uint64_t Bus::oldest() const {
  const std::uint64_t t = tail_.load(std::memory_order_acquire);
  const std::uint64_t cap = mask_ + 1;
  const std::uint64_t by_capacity = t > cap ? t - cap : 0;
  return std::max(by_capacity, floor_.load(std::memory_order_acquire));
}

// Publisher thread only.
FrameRef Bus::publish(MediaFrame frame) {
  if (closed_.load(std::memory_order_acquire)) {
    throw Error(Errc::StreamClosed, "the stream has ended; publishing is refused");
  }
  const std::uint64_t p = tail_.load(std::memory_order_relaxed);
  const std::size_t size = frame.payload.size();
  auto* node = new FrameNode(p, std::move(frame));
  detail::node_ref(node);  // the publisher's reference, returned below
  FrameRef mine = FrameRef::adopt(node);
  auto* old = slots_[p & mask_].node.exchange(node, std::memory_order_seq_cst);
  if (old) {
    bytes_held_.fetch_sub(old->frame.payload.size(), std::memory_order_relaxed);
    retire(old);
  }
  bytes_held_.fetch_add(size, std::memory_order_relaxed);
  tail_.store(p + 1, std::memory_order_seq_cst);
  if (max_bytes_ != 0) trim_to_bytes();
  notify_waiters();
  return mine;
}

// Publisher thread only: drop the oldest frames until the payload bytes held fit
// the bound, always keeping the newest frame.
void Bus::trim_to_bytes() {
  const std::uint64_t t = tail_.load(std::memory_order_relaxed);
  const std::uint64_t cap = mask_ + 1;
  std::uint64_t low = std::max(t > cap ? t - cap : 0, floor_.load(std::memory_order_relaxed));
  while (bytes_held_.load(std::memory_order_relaxed) > max_bytes_ && low + 1 < t) {
    ++low;
    floor_.store(low, std::memory_order_release);  // before the slot empties: see try_read
    if (auto* n = slots_[(low - 1) & mask_].node.exchange(nullptr, std::memory_order_seq_cst)) {
      bytes_held_.fetch_sub(n->frame.payload.size(), std::memory_order_relaxed);
      retire(n);
    }
  }
}

void Bus::close() {
  closed_.store(true, std::memory_order_seq_cst);
  wake_all();
}

namespace {
static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

// Sleeps while *word == expected, at most `timeout` (null: no limit).
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected, const timespec* timeout) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected, timeout,
          nullptr, 0);
}
void futex_wake_all(std::atomic<std::uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}
}  // namespace

void Bus::wake_all() {
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  futex_wake_all(epoch_);
}

void Bus::notify_waiters() {
  if (waiters_.load(std::memory_order_seq_cst) == 0) return;
  wake_all();
}

FrameNode* Bus::protect(Hazard& hazard, const std::atomic<FrameNode*>& src) {
  FrameNode* n = src.load(std::memory_order_acquire);
  for (;;) {
    hazard.node.store(n, std::memory_order_seq_cst);
    FrameNode* again = src.load(std::memory_order_seq_cst);
    if (again == n) return n;
    n = again;
  }
}

Bus::Read Bus::try_read(Hazard& hazard, std::uint64_t& cursor, FrameRef& out,
                        std::uint64_t& skipped) {
  const std::uint64_t cap = mask_ + 1;
  for (;;) {
    const bool was_closed = closed_.load(std::memory_order_acquire);
    const std::uint64_t t = tail_.load(std::memory_order_acquire);
    if (cursor >= t) return was_closed ? Read::Closed : Read::Empty;
    const std::uint64_t low =
        std::max(t > cap ? t - cap : 0, floor_.load(std::memory_order_acquire));
    if (cursor < low) {
      skipped = low - cursor;
      cursor = low;
      return Read::Lagged;
    }
    FrameNode* n = protect(hazard, slots_[cursor & mask_].node);
    if (n && n->position == cursor) {
      detail::node_ref(n);
      hazard.node.store(nullptr, std::memory_order_release);
      out = FrameRef::adopt(n);
      ++cursor;
      return Read::Frame;
    }
    // Overwritten (a newer node) or trimmed (null, floor_ already moved): lagged.
    const std::uint64_t by_node = n ? n->position + 1 - cap : 0;
    hazard.node.store(nullptr, std::memory_order_release);
    const std::uint64_t new_low = std::max(by_node, floor_.load(std::memory_order_acquire));
    if (new_low > cursor) {
      skipped = new_low - cursor;
      cursor = new_low;
      return Read::Lagged;
    }
    // Unreachable by the ordering argument above; re-read to stay safe.
  }
}

FrameRef Bus::peek(Hazard& hazard, std::uint64_t position) {
  if (position >= tail_.load(std::memory_order_acquire)) return {};
  FrameNode* n = protect(hazard, slots_[position & mask_].node);
  FrameRef out;
  if (n && n->position == position) {
    detail::node_ref(n);
    out = FrameRef::adopt(n);
  }
  hazard.node.store(nullptr, std::memory_order_release);
  return out;
}

bool Bus::wait(std::uint64_t cursor, std::chrono::steady_clock::time_point deadline,
               std::stop_token stop) {
  auto ready = [&] {
    return tail_.load(std::memory_order_seq_cst) > cursor ||
           closed_.load(std::memory_order_seq_cst);
  };
  if (ready()) return true;
  // A stop request wakes every sleeper; each re-checks its own token.
  std::stop_callback on_stop(stop, [this] { wake_all(); });
  waiters_.fetch_add(1, std::memory_order_seq_cst);
  bool ok = false;
  for (;;) {
    const std::uint32_t seen = epoch_.load(std::memory_order_seq_cst);
    if (ready()) {
      ok = true;
      break;
    }
    if (stop.stop_requested()) break;
    if (deadline == std::chrono::steady_clock::time_point::max()) {
      futex_wait(epoch_, seen, nullptr);
      continue;
    }
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) break;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
    const timespec ts{static_cast<time_t>(ns / 1'000'000'000),
                      static_cast<long>(ns % 1'000'000'000)};
    futex_wait(epoch_, seen, &ts);
  }
  waiters_.fetch_sub(1, std::memory_order_relaxed);
  return ok;
}

Bus::Hazard* Bus::acquire_hazard() {
  for (auto* h = hazards_.load(std::memory_order_acquire); h; h = h->next) {
    bool expected = false;
    if (!h->in_use.load(std::memory_order_relaxed) &&
        h->in_use.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
      return h;
    }
  }
  auto* h = new Hazard;
  h->in_use.store(true, std::memory_order_relaxed);
  Hazard* head = hazards_.load(std::memory_order_relaxed);
  do {
    h->next = head;
  } while (!hazards_.compare_exchange_weak(head, h, std::memory_order_acq_rel,
                                           std::memory_order_relaxed));
  hazard_count_.fetch_add(1, std::memory_order_relaxed);
  return h;
}

void Bus::release_hazard(Hazard* hazard) {
  if (!hazard) return;
  hazard->node.store(nullptr, std::memory_order_release);
  hazard->in_use.store(false, std::memory_order_release);
}

// Publisher thread only.
void Bus::retire(FrameNode* node) {
  retired_.push_back(node);
  if (retired_.size() >= scan_threshold_) scan();
}

// Publisher thread only: free every retired node no hazard protects.
void Bus::scan() {
  hazard_snapshot_.clear();
  for (auto* h = hazards_.load(std::memory_order_acquire); h; h = h->next) {
    if (auto* n = h->node.load(std::memory_order_seq_cst)) hazard_snapshot_.push_back(n);
  }
  std::sort(hazard_snapshot_.begin(), hazard_snapshot_.end());
  std::size_t kept = 0;
  for (auto* n : retired_) {
    if (std::binary_search(hazard_snapshot_.begin(), hazard_snapshot_.end(), n)) {
      retired_[kept++] = n;
    } else {
      detail::node_unref(n);
    }
  }
  retired_.resize(kept);
  scan_threshold_ = std::max<std::size_t>(64, 2 * hazard_count_.load(std::memory_order_relaxed));
}

}  // namespace arcly
