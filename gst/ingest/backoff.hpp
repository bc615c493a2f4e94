// Backoff — exponential retry delays with jitter, so a fleet of cameras that lost
// the same switch does not reconnect in lock-step. Not thread-safe (one worker).
#pragma once

#include <algorithm>
#include <chrono>
#include <random>

namespace arcly::ingest {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max, unsigned seed)
      : initial_(std::max(initial, std::chrono::milliseconds(1))),
        max_(std::max(max, initial_)),
        next_(initial_),
        rng_(seed) {}

  // The delay before the next attempt: doubles up to `max`, ±20 % jitter.
  std::chrono::milliseconds next() {
    const auto base = next_;
    next_ = std::min(next_ * 2, max_);
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    const auto d = std::chrono::milliseconds(
        static_cast<std::chrono::milliseconds::rep>(static_cast<double>(base.count()) * jitter(rng_)));
    return std::clamp(d, std::chrono::milliseconds(1), max_ + max_ / 5);
  }
  // After a successful (live) attempt, start again from `initial`.
  void reset() { next_ = initial_; }

 private:
  std::chrono::milliseconds initial_;
  std::chrono::milliseconds max_;
  std::chrono::milliseconds next_;
  std::mt19937 rng_;
};

}  // namespace arcly::ingest
