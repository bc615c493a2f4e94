#include "arcly/qos.hpp"

namespace arcly {
namespace {
std::int64_t ns_of(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
}  // namespace

QosCounters::QosCounters()
    : started_(std::chrono::system_clock::now()),
      started_steady_(std::chrono::steady_clock::now()) {}

// Publisher only: plain load+store on counters nobody else writes.
void QosCounters::on_frame(const MediaFrame& frame, bool primary, bool anchor,
                           std::chrono::steady_clock::time_point now) {
  constexpr auto r = std::memory_order_relaxed;
  const std::uint64_t size = frame.payload.size();
  frames_.store(frames_.load(r) + 1, r);
  bytes_.store(bytes_.load(r) + size, r);
  if (anchor) {
    // Until a video track shows up, audio is the primary track and every audio
    // frame starts a GOP; once video arrives those were not keyframes of the
    // stream: the count starts over with the first video keyframe.
    if (frame.kind == MediaKind::Video && !video_anchor_) {
      video_anchor_ = true;
      keyframes_.store(0, r);
    }
    keyframes_.store(keyframes_.load(r) + 1, r);
    if (seen_anchor_) last_gop_.store(gop_count_, r);
    seen_anchor_ = true;
    gop_count_ = 0;
  }
  if (primary) ++gop_count_;

  const std::int64_t now_ns = ns_of(now);
  last_frame_ns_.store(now_ns, std::memory_order_release);
  const std::int64_t epoch = now_ns / std::chrono::nanoseconds(kBucket).count();
  Bucket& b = buckets_[static_cast<std::size_t>(epoch) % kBuckets];
  if (b.epoch.load(r) != epoch) {
    b.bytes.store(0, r);
    b.primary.store(0, r);
    b.epoch.store(epoch, std::memory_order_release);
  }
  b.bytes.store(b.bytes.load(r) + size, r);
  if (primary) b.primary.store(b.primary.load(r) + 1, r);
}

void QosCounters::fill(QosSnapshot& out, std::chrono::steady_clock::time_point now) const {
  constexpr auto r = std::memory_order_relaxed;
  out.frames = frames_.load(r);
  out.bytes = bytes_.load(r);
  out.keyframes = keyframes_.load(r);
  out.last_gop_frames = last_gop_.load(r);
  out.publish_started = started_;
  const std::int64_t last = last_frame_ns_.load(std::memory_order_acquire);
  out.since_last_frame = std::chrono::nanoseconds(last < 0 ? -1 : ns_of(now) - last);

  // Sum the complete buckets of the window (the current one is still filling).
  const std::int64_t bucket_ns = std::chrono::nanoseconds(kBucket).count();
  const std::int64_t current = ns_of(now) / bucket_ns;
  const std::int64_t first_full = (ns_of(started_steady_) / bucket_ns) + 1;
  const std::int64_t from =
      std::max(current - static_cast<std::int64_t>(kWindowBuckets), first_full);
  std::uint64_t bytes = 0, primary = 0;
  for (std::int64_t e = from; e < current; ++e) {
    const Bucket& b = buckets_[static_cast<std::size_t>(e) % kBuckets];
    if (b.epoch.load(std::memory_order_acquire) != e) continue;
    bytes += b.bytes.load(r);
    primary += b.primary.load(r);
  }
  const std::int64_t n = current - from;
  if (n > 0) {
    const double seconds = static_cast<double>(n * bucket_ns) / 1e9;
    out.bitrate_bps = static_cast<double>(bytes) * 8.0 / seconds;
    out.fps = static_cast<double>(primary) / seconds;
  }
}

std::chrono::steady_clock::time_point QosCounters::last_frame_at() const {
  const std::int64_t last = last_frame_ns_.load(std::memory_order_acquire);
  if (last < 0) return started_steady_;
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(last));
}

}  // namespace arcly
