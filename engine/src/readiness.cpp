// arcly::Waker (the contract is in readiness.hpp). A futex word holds two bits:
// notified, and "the dispatcher sleeps"; only a notify() that sets the notified
// bit pays for a system call, and only if somebody sleeps or an eventfd exists.
#include "arcly/readiness.hpp"

#include <linux/futex.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <string>

#include "arcly/error.hpp"

namespace arcly {

namespace {
void futex_wait_until(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                      const timespec* until) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_BITSET_PRIVATE, expected,
          until, nullptr, FUTEX_BITSET_MATCH_ANY);
}
void futex_wake(std::atomic<std::uint32_t>& word) {
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
          nullptr, 0);
}
}  // namespace

Waker::Waker(bool with_eventfd) {
  if (with_eventfd) {
    fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd_ < 0) {
      throw Error(Errc::Io,
                  std::string("cannot create the waker's eventfd: ") + std::strerror(errno));
    }
  }
}

Waker::~Waker() {
  if (fd_ >= 0) close(fd_);
}

void Waker::notify() noexcept {
  if (state_.load(std::memory_order_seq_cst) & kNotified) return;
  const std::uint32_t before = state_.fetch_or(kNotified, std::memory_order_seq_cst);
  if (before & kNotified) return;
  signals_.fetch_add(1, std::memory_order_relaxed);
  if (before & kSleeping) futex_wake(state_);
  if (fd_ >= 0) {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = write(fd_, &one, sizeof one);  // EAGAIN: already readable
  }
}

bool Waker::reset() noexcept {
  const std::uint32_t before = state_.fetch_and(~kNotified, std::memory_order_seq_cst);
  if (fd_ >= 0 && (before & kNotified)) {
    std::uint64_t drained = 0;
    [[maybe_unused]] auto n = read(fd_, &drained, sizeof drained);  // EAGAIN: nothing written yet
  }
  return (before & kNotified) != 0;
}

bool Waker::wait(std::chrono::steady_clock::time_point deadline, std::stop_token stop) {
  if (notified()) return true;
  std::stop_callback on_stop(stop, [this] {
    // Changing the word makes a sleeper's futex wait return; it re-checks `stop`.
    state_.fetch_or(kSleeping, std::memory_order_seq_cst);
    state_.fetch_and(~kSleeping, std::memory_order_seq_cst);
    futex_wake(state_);
  });
  const bool bounded = deadline != std::chrono::steady_clock::time_point::max();
  timespec until{};
  if (bounded) {
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
    until = {static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  }
  bool ok = false;
  for (;;) {
    std::uint32_t s = state_.fetch_or(kSleeping, std::memory_order_seq_cst) | kSleeping;
    if (s & kNotified) {
      ok = true;
      break;
    }
    if (stop.stop_requested()) break;
    if (bounded && std::chrono::steady_clock::now() >= deadline) break;
    futex_wait_until(state_, s, bounded ? &until : nullptr);
  }
  state_.fetch_and(~kSleeping, std::memory_order_seq_cst);
  return ok;
}

}  // namespace arcly
