// Implementation notes for arcly::Bus (the contract is in bus.hpp).
//
// The end is part of the tail. state_ = tail << 1 | closed. The publisher writes
// its slot, then advances the tail with a compare-exchange that fails if close()
// set the bit meanwhile; it then puts the overwritten node back and refuses the
// frame. A reader decides "Closed" from one load of state_, so the tail it sees
// with the bit set is final: every reader stops at the same frame.
//
// Ordering. The publisher stores a slot (seq_cst exchange) before it advances
// the tail (seq_cst compare-exchange), so a reader that sees tail > p also sees
// the node of p or something newer. A node with a larger position than the
// cursor proves the cursor was overwritten even if the reader's tail is stale:
// the lag is computed from that node, so no reader ever spins waiting for the
// publisher. (If that newer node belongs to a publish that a close refuses, the
// reader reports a lag of frames it could still have read; it never loses the
// end: the final tail is the same for everybody.)
//
// Hazard pointers. A reader announces the node it is about to take (seq_cst
// store) and re-reads the slot (seq_cst); the publisher exchanges the slot
// (seq_cst) before it retires the old node and scans the hazards. The hazard
// list itself is pushed with a seq_cst compare-exchange and walked from a seq_cst
// load: the scheme needs "push < hazard store < slot re-read < slot exchange <
// list load" to be one chain of the single total order, so that a scan that
// follows the exchange finds every hazard that could name the old node,
// including one pushed just before. (With acquire/release on the list, nothing
// forces the scan's load to see a push that precedes it only in that order.)
//
// Reclamation bounds. A scan costs O(hazards). It runs when the retired count
// reaches max(64, 2 x hazards) — amortized O(1) per publish — or when the
// retired bytes reach what the last scan kept plus max(max_bytes, 256 KiB), so
// overwritten payloads cannot pile up behind many idle hazards.
//
// Eventcount. A sleeper increments sleepers_, reads epoch_, re-checks the tail
// and sleeps on epoch_ (FUTEX_WAIT_BITSET with its own bit) only while it still
// holds that value; notify() (after the tail store) reads sleepers_ and, if any,
// bumps epoch_ and wakes every bit (all seq_cst). Either the sleeper sees the
// new tail, or its futex wait sees a changed epoch and returns at once. A stop
// request bumps epoch_ and wakes only its own bit's sleepers.
//
// Slots. One cache line each. Without padding, eight slots share a line, and
// the publisher's write of slot p invalidates the line every reader near the
// live edge is reading (slot p-1): bus-bench measured 1.9 M against 15 M frames/s
// delivered at 16 flat-out subscribers (docs/performance.md, issue 9). What
// made an idle stream expensive was allocating the whole padded ring up front;
// chunks of 64 slots (4 KiB) allocated on first use fix that instead.
#include "arcly/bus.hpp"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <climits>
#include <ctime>
#include <thread>

#include "arcly/error.hpp"
#include "arcly/readiness.hpp"

namespace arcly {

using detail::FrameNode;

namespace {
constexpr std::size_t kChunkSlots = 64;
constexpr std::size_t kMinRetiredBytes = 256 * 1024;
constexpr std::uint32_t kAllBits = 0xffffffffu;
constexpr std::size_t kMaxHazardBlock = 64;  // 4 KiB; blocks double up to it from 1

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));

// Sleeps while *word == expected and a wake for one of `bits` has not come, at
// most until the absolute CLOCK_MONOTONIC time `until` (null: no limit).
void futex_wait_bits(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                     const timespec* until, std::uint32_t bits) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_BITSET_PRIVATE, expected,
          until, nullptr, bits);
}
void futex_wake_bits(std::atomic<std::uint32_t>& word, std::uint32_t bits) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_BITSET_PRIVATE, INT_MAX,
          nullptr, nullptr, bits);
}
}  // namespace

struct Bus::WatchList {
  struct Entry {
    Waker* waker;
    std::size_t count;
  };
  std::vector<Entry> entries;
};

Bus::Bus(std::size_t capacity, std::size_t max_bytes)
    : mask_(std::bit_ceil(std::max<std::size_t>(capacity, 16)) - 1),
      max_bytes_(max_bytes),
      chunk_slots_(std::min(kChunkSlots, mask_ + 1)),
      chunk_shift_(static_cast<unsigned>(std::countr_zero(chunk_slots_))),
      chunks_(new std::atomic<Slot*>[(mask_ + 1) / chunk_slots_]) {
  for (std::size_t c = 0; c < (mask_ + 1) / chunk_slots_; ++c) {
    chunks_[c].store(nullptr, std::memory_order_relaxed);
  }
  scan_bytes_ = std::max(max_bytes_, kMinRetiredBytes);
}

Bus::~Bus() {
  for (std::size_t c = 0; c < (mask_ + 1) / chunk_slots_; ++c) {
    Slot* chunk = chunks_[c].load(std::memory_order_relaxed);
    if (!chunk) continue;
    for (std::size_t i = 0; i < chunk_slots_; ++i) {
      if (auto* n = chunk[i].load(std::memory_order_relaxed)) detail::node_unref(n);
    }
    delete[] chunk;
  }
  for (auto* n : retired_) detail::node_unref(n);
  for (const auto& r : retired_aux_) r.free(r.object);
  delete watch_.load(std::memory_order_relaxed);
}

std::uint64_t Bus::oldest() const {
  const std::uint64_t t = tail();
  const std::uint64_t cap = mask_ + 1;
  const std::uint64_t by_capacity = t > cap ? t - cap : 0;
  return std::max(by_capacity, floor_.load(std::memory_order_acquire));
}

// Publisher thread only. The chunk pointer is stored (release) before the tail
// that makes any of its positions readable.
Bus::Slot& Bus::slot_for_publish(std::uint64_t position) {
  const std::size_t i = position & mask_;
  std::atomic<Slot*>& chunk = chunks_[i >> chunk_shift_];
  Slot* c = chunk.load(std::memory_order_relaxed);
  if (!c) {
    c = new Slot[chunk_slots_];
    for (std::size_t k = 0; k < chunk_slots_; ++k) c[k].store(nullptr, std::memory_order_relaxed);
    chunk.store(c, std::memory_order_release);
    chunks_allocated_.fetch_add(1, std::memory_order_relaxed);
  }
  return c[i & (chunk_slots_ - 1)];
}

FrameRef Bus::publish(MediaFrame frame, std::uint8_t marks) {
  FrameRef mine = publish_quiet(std::move(frame), marks);
  notify();
  return mine;
}

// Publisher thread only.
FrameRef Bus::publish_quiet(MediaFrame frame, std::uint8_t marks) {
  std::uint64_t s = state_.load(std::memory_order_relaxed);  // only close() changes it meanwhile
  if (s & 1) throw Error(Errc::StreamClosed, "the stream has ended; publishing is refused");
  const std::uint64_t p = s >> 1;
  const std::size_t size = frame.payload.size();
  auto* node = new FrameNode(p, std::move(frame), marks);
  detail::node_ref(node);  // the publisher's reference, returned below
  FrameRef mine = FrameRef::adopt(node);
  Slot& target = slot_for_publish(p);
  auto* old = target.exchange(node, std::memory_order_seq_cst);
  if (!state_.compare_exchange_strong(s, s + 2, std::memory_order_seq_cst,
                                      std::memory_order_seq_cst)) {
    // close() won: the frame was never published. Put the old node back; the
    // refused one may be named by a hazard, so it is retired, not freed.
    target.store(old, std::memory_order_seq_cst);
    bytes_retired_.fetch_add(size, std::memory_order_relaxed);
    retire(node);
    throw Error(Errc::StreamClosed, "the stream has ended; publishing is refused");
  }
  if (old) {
    const std::size_t old_size = old->frame.payload.size();
    bytes_held_.fetch_sub(old_size, std::memory_order_relaxed);
    bytes_retired_.fetch_add(old_size, std::memory_order_relaxed);
    retire(old);
  }
  bytes_held_.fetch_add(size, std::memory_order_relaxed);
  if (max_bytes_ != 0) trim_to_bytes();
  return mine;
}

// Publisher thread only: drop the oldest frames until the payload bytes held fit
// the bound, always keeping the newest frame.
void Bus::trim_to_bytes() {
  const std::uint64_t t = state_.load(std::memory_order_relaxed) >> 1;
  const std::uint64_t cap = mask_ + 1;
  std::uint64_t low = std::max(t > cap ? t - cap : 0, floor_.load(std::memory_order_relaxed));
  while (bytes_held_.load(std::memory_order_relaxed) > max_bytes_ && low + 1 < t) {
    ++low;
    floor_.store(low, std::memory_order_seq_cst);  // before the slot empties: see try_read
    if (auto* n = slot(low - 1).exchange(nullptr, std::memory_order_seq_cst)) {
      const std::size_t size = n->frame.payload.size();
      bytes_held_.fetch_sub(size, std::memory_order_relaxed);
      bytes_retired_.fetch_add(size, std::memory_order_relaxed);
      retire(n);
    }
  }
}

void Bus::close() {
  state_.fetch_or(1, std::memory_order_seq_cst);
  wake_all();
  notify_watchers();
}

void Bus::wake_all() {
  epoch_.fetch_add(1, std::memory_order_seq_cst);
  futex_wake_bits(epoch_, kAllBits);
}

void Bus::notify() {
  if (sleepers_.load(std::memory_order_seq_cst) != 0) wake_all();
  notify_watchers();
}

void Bus::notify_watchers() {
  if (watch_.load(std::memory_order_seq_cst) == nullptr) return;  // nobody watches: no RMW
  watch_readers_.fetch_add(1, std::memory_order_seq_cst);
  if (WatchList* list = watch_.load(std::memory_order_seq_cst)) {
    for (const auto& e : list->entries) e.waker->notify();
  }
  watch_readers_.fetch_sub(1, std::memory_order_release);
}

void Bus::watch(Waker* waker) {
  std::lock_guard lock(watch_mutex_);
  WatchList* old = watch_.load(std::memory_order_relaxed);
  auto* next = new WatchList(old ? *old : WatchList{});
  auto it = std::find_if(next->entries.begin(), next->entries.end(),
                         [&](const WatchList::Entry& e) { return e.waker == waker; });
  if (it != next->entries.end()) {
    ++it->count;
  } else {
    next->entries.push_back({waker, 1});
  }
  watch_.store(next, std::memory_order_seq_cst);
  // A notify() that loaded `old` counted itself in watch_readers_ first.
  while (watch_readers_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  delete old;
}

void Bus::unwatch(Waker* waker) {
  std::lock_guard lock(watch_mutex_);
  WatchList* old = watch_.load(std::memory_order_relaxed);
  if (!old) return;
  auto* next = new WatchList(*old);
  auto it = std::find_if(next->entries.begin(), next->entries.end(),
                         [&](const WatchList::Entry& e) { return e.waker == waker; });
  if (it != next->entries.end() && --it->count == 0) next->entries.erase(it);
  if (next->entries.empty()) {
    delete next;
    next = nullptr;
  }
  watch_.store(next, std::memory_order_seq_cst);
  // After this, no notify() can still be walking a list that names `waker`.
  while (watch_readers_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  delete old;
}

FrameNode* Bus::protect(Hazard& hazard, const Slot& src) {
  FrameNode* n = src.load(std::memory_order_acquire);
  for (;;) {
    hazard.node.store(n, std::memory_order_seq_cst);
    FrameNode* again = src.load(std::memory_order_seq_cst);
    if (again == n) return n;
    n = again;
  }
}

const void* Bus::protect_aux(Hazard& hazard, const std::atomic<const void*>& src) {
  const void* p = src.load(std::memory_order_acquire);
  for (;;) {
    hazard.aux.store(p, std::memory_order_seq_cst);
    const void* again = src.load(std::memory_order_seq_cst);
    if (again == p) return p;
    p = again;
  }
}

Bus::Read Bus::try_read(Hazard& hazard, std::uint64_t& cursor, FrameRef& out,
                        std::uint64_t& skipped) {
  const std::uint64_t cap = mask_ + 1;
  for (;;) {
    const std::uint64_t s = state_.load(std::memory_order_seq_cst);
    const std::uint64_t t = s >> 1;
    if (cursor >= t) return (s & 1) ? Read::Closed : Read::Empty;
    const std::uint64_t low =
        std::max(t > cap ? t - cap : 0, floor_.load(std::memory_order_acquire));
    if (cursor < low) {
      skipped = low - cursor;
      cursor = low;
      return Read::Lagged;
    }
    FrameNode* n = protect(hazard, slot(cursor));
    if (n && n->position == cursor) {
      detail::node_ref(n);
      hazard.node.store(nullptr, std::memory_order_release);
      out = FrameRef::adopt(n);
      ++cursor;
      return Read::Frame;
    }
    // Overwritten (a newer node) or trimmed (null, floor_ already moved): lagged.
    const std::uint64_t by_node = n && n->position > cursor ? n->position + 1 - cap : 0;
    hazard.node.store(nullptr, std::memory_order_release);
    const std::uint64_t new_low = std::max(by_node, floor_.load(std::memory_order_seq_cst));
    if (new_low > cursor) {
      skipped = new_low - cursor;
      cursor = new_low;
      return Read::Lagged;
    }
    // A refused publish put the old node back between our loads: read again.
  }
}

FrameRef Bus::peek(Hazard& hazard, std::uint64_t position) {
  if (position >= tail()) return {};
  FrameNode* n = protect(hazard, slot(position));
  FrameRef out;
  if (n && n->position == position) {
    detail::node_ref(n);
    out = FrameRef::adopt(n);
  }
  hazard.node.store(nullptr, std::memory_order_release);
  return out;
}

// No reference count is touched: a node read this way bounces no cache line
// between readers on different cores. The hazard (seq_cst, see protect) keeps it
// from being freed. The state is loaded seq_cst (a plain load on x86): `empty`
// then carries the readiness guarantee (readiness.hpp) exactly as try_read's
// Empty does.
FrameNode* Bus::borrow(Hazard& hazard, std::uint64_t position, bool& empty) {
  const std::uint64_t s = state_.load(std::memory_order_seq_cst);
  if (position >= (s >> 1)) {
    empty = (s & 1) == 0;
    return nullptr;
  }
  empty = false;
  FrameNode* n = protect(hazard, slot(position));
  if (n && n->position == position) return n;
  hazard.node.store(nullptr, std::memory_order_release);
  return nullptr;
}

bool Bus::wait(std::uint64_t cursor, std::chrono::steady_clock::time_point deadline,
               std::stop_token stop, std::uint32_t wake_bit) {
  auto ready = [&] {
    const std::uint64_t s = state_.load(std::memory_order_seq_cst);
    return (s >> 1) > cursor || (s & 1);
  };
  if (ready()) return true;
  const std::uint32_t my_bit = 1u << (wake_bit % 32);
  // A stop request wakes only the sleepers that share this one's bit.
  std::stop_callback on_stop(stop, [this, my_bit] {
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    futex_wake_bits(epoch_, my_bit);
  });
  sleepers_.fetch_add(1, std::memory_order_seq_cst);
  bool ok = false;
  timespec until{};
  const bool bounded = deadline != std::chrono::steady_clock::time_point::max();
  if (bounded) {
    // steady_clock is CLOCK_MONOTONIC on Linux, the clock FUTEX_WAIT_BITSET uses.
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
    until = {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  }
  for (;;) {
    const std::uint32_t seen = epoch_.load(std::memory_order_seq_cst);
    if (ready()) {
      ok = true;
      break;
    }
    if (stop.stop_requested()) break;
    if (bounded && std::chrono::steady_clock::now() >= deadline) break;
    futex_wait_bits(epoch_, seen, bounded ? &until : nullptr, my_bit);
  }
  sleepers_.fetch_sub(1, std::memory_order_relaxed);
  return ok;
}

Bus::Hazard* Bus::acquire_hazard() {
  for (auto* h = hazards_.load(std::memory_order_seq_cst); h; h = h->next) {
    bool expected = false;
    if (!h->in_use.load(std::memory_order_relaxed) &&
        h->in_use.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
      return h;
    }
  }
  // None free: a new block, doubling from 1 (an idle stream pays for one hazard)
  // to kMaxHazardBlock. Its first hazard is ours; the list walk above starts at
  // the newest block, so the next acquirers take its neighbours in order.
  std::lock_guard lock(hazard_blocks_mutex_);
  const std::size_t count = hazard_count_.load(std::memory_order_relaxed);
  const std::size_t n = std::clamp<std::size_t>(count, 1, kMaxHazardBlock);
  auto block = std::make_unique<Hazard[]>(n);
  for (std::size_t i = 0; i < n; ++i) {
    block[i].wake_bit = static_cast<std::uint32_t>(count + i);
    block[i].next = i + 1 < n ? &block[i + 1] : nullptr;
  }
  block[0].in_use.store(true, std::memory_order_relaxed);
  // Relaxed: the scan's threshold only; the list push below publishes the block.
  hazard_count_.store(count + n, std::memory_order_relaxed);
  Hazard* first = &block[0];
  Hazard* last = &block[n - 1];
  hazard_blocks_.push_back(std::move(block));
  Hazard* head = hazards_.load(std::memory_order_relaxed);
  do {
    last->next = head;
  } while (!hazards_.compare_exchange_weak(head, first, std::memory_order_seq_cst,
                                           std::memory_order_relaxed));
  return first;
}

void Bus::release_hazard(Hazard* hazard) {
  if (!hazard) return;
  hazard->node.store(nullptr, std::memory_order_release);
  hazard->aux.store(nullptr, std::memory_order_release);
  hazard->in_use.store(false, std::memory_order_release);
}

// Publisher thread only.
void Bus::retire(FrameNode* node) {
  retired_.push_back(node);
  if (retired_.size() >= scan_threshold_ ||
      bytes_retired_.load(std::memory_order_relaxed) >= scan_bytes_) {
    scan();
  }
}

// Publisher thread only.
void Bus::retire_aux(const void* object, void (*free)(const void*)) {
  retired_aux_.push_back({object, free});
  if (retired_aux_.size() >= scan_threshold_) scan();
}

// Publisher thread only: free every retired node and aux object no hazard protects.
void Bus::scan() {
  hazard_snapshot_.clear();
  aux_snapshot_.clear();
  for (auto* h = hazards_.load(std::memory_order_seq_cst); h; h = h->next) {
    if (auto* n = h->node.load(std::memory_order_seq_cst)) hazard_snapshot_.push_back(n);
    if (auto* a = h->aux.load(std::memory_order_seq_cst)) aux_snapshot_.push_back(a);
  }
  std::sort(hazard_snapshot_.begin(), hazard_snapshot_.end());
  std::sort(aux_snapshot_.begin(), aux_snapshot_.end());
  std::size_t kept = 0;
  std::size_t freed_bytes = 0;
  for (auto* n : retired_) {
    if (std::binary_search(hazard_snapshot_.begin(), hazard_snapshot_.end(),
                           static_cast<const void*>(n))) {
      retired_[kept++] = n;
    } else {
      freed_bytes += n->frame.payload.size();
      detail::node_unref(n);
    }
  }
  retired_.resize(kept);
  kept = 0;
  for (const auto& r : retired_aux_) {
    if (std::binary_search(aux_snapshot_.begin(), aux_snapshot_.end(), r.object)) {
      retired_aux_[kept++] = r;
    } else {
      r.free(r.object);
    }
  }
  retired_aux_.resize(kept);
  const std::size_t still =
      bytes_retired_.fetch_sub(freed_bytes, std::memory_order_relaxed) - freed_bytes;
  const std::size_t hazards = hazard_count_.load(std::memory_order_relaxed);
  scan_threshold_ = std::max<std::size_t>(64, 2 * hazards) + retired_.size();
  scan_bytes_ = still + std::max(max_bytes_, kMinRetiredBytes);
}

}  // namespace arcly
