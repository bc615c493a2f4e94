#include "engine_time.hpp"

#include <time.h>

namespace arcly::gst {

namespace {
// A sample whose two engine readings are further apart than this was disturbed
// (the thread was preempted between them): not used to move the offset.
constexpr std::int64_t kMaxReadingSpread = 50 * GST_USECOND;
}  // namespace

std::int64_t engine_now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

bool is_engine_clock(GstClock* clock) {
  if (!clock || G_OBJECT_TYPE(clock) != GST_TYPE_SYSTEM_CLOCK) return false;
  GstClockType type = GST_CLOCK_TYPE_REALTIME;
  g_object_get(clock, "clock-type", &type, nullptr);
  if (type != GST_CLOCK_TYPE_MONOTONIC) return false;
  GstClockTime internal = 0, external = 0, num = 1, denom = 1;
  gst_clock_get_calibration(clock, &internal, &external, &num, &denom);
  return internal == external && num == denom;
}

std::int64_t ClockBridge::offset(GstClock* clock) {
  // Another clock (a new pipeline clock): start over.
  const bool have =
      have_.load(std::memory_order_relaxed) && clock_.load(std::memory_order_relaxed) == clock;
  const std::int64_t next = next_sample_.load(std::memory_order_relaxed);
  // The default clock never drifts: no clock read on the per-buffer path.
  if (have && next == INT64_MAX) return offset_.load(std::memory_order_relaxed);
  const std::int64_t before = engine_now();
  if (have && before < next) return offset_.load(std::memory_order_relaxed);
  next_sample_.store(before + kSampleInterval, std::memory_order_relaxed);
  if (is_engine_clock(clock)) {
    offset_.store(0, std::memory_order_relaxed);
    next_sample_.store(INT64_MAX, std::memory_order_relaxed);  // it never drifts
    clock_.store(clock, std::memory_order_relaxed);
    have_.store(true, std::memory_order_relaxed);
    return 0;
  }
  const auto clock_time = static_cast<std::int64_t>(gst_clock_get_time(clock));
  const std::int64_t after = engine_now();
  const std::int64_t sample = before + (after - before) / 2 - clock_time;
  const std::int64_t current = offset_.load(std::memory_order_relaxed);
  if (!have) {
    offset_.store(sample, std::memory_order_relaxed);
    clock_.store(clock, std::memory_order_relaxed);
    have_.store(true, std::memory_order_relaxed);
    return sample;
  }
  if (after - before > kMaxReadingSpread) return current;
  const std::int64_t moved = sample - current;
  if (moved > kStep || moved < -kStep) {
    offset_.store(sample, std::memory_order_relaxed);
    return sample;
  }
  return current;
}

void ClockBridge::reset() {
  have_.store(false, std::memory_order_relaxed);
  next_sample_.store(0, std::memory_order_relaxed);
}

}  // namespace arcly::gst
