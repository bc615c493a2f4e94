// arcly::QosCounters — live counters of one stream, read without stopping it.
//
// The publisher (under the stream's publish lock) is the only writer of the
// stream counters; any thread may take a snapshot at any time. Rates are computed
// over a sliding window of 100 ms buckets (the last two seconds). Subscriber
// counters are written by each subscriber's own thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include "arcly/media_frame.hpp"

namespace arcly {

// Counters of one subscription (written by its owner thread, read by anyone).
struct SubscriberCounters {
  std::uint64_t id = 0;
  std::atomic<std::uint64_t> delivered{0};
  std::atomic<std::uint64_t> dropped{0};     // frames skipped because it lagged
  std::atomic<std::uint64_t> lag_events{0};  // how many times it lagged
};

struct SubscriberQos {
  std::uint64_t id = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dropped = 0;
  std::uint64_t lag_events = 0;
};

struct QosSnapshot {
  std::uint64_t frames = 0;
  std::uint64_t bytes = 0;
  std::uint64_t keyframes = 0;        // keyframes of the primary track (GOP starts); the
                                      // audio frames before a first video keyframe are not
  double bitrate_bps = 0;             // over the sliding window
  double fps = 0;                     // primary-track frames per second over the window
  std::uint64_t last_gop_frames = 0;  // primary-track frames in the last complete GOP
  std::size_t subscribers = 0;
  std::vector<SubscriberQos> per_subscriber;
  std::chrono::system_clock::time_point publish_started;
  std::chrono::nanoseconds since_last_frame{-1};  // -1 if no frame yet
  std::uint64_t cached_frames = 0;                // frames a late joiner would replay now
  std::size_t ring_bytes = 0;                     // payload bytes held by the bus
  std::size_t retired_bytes = 0;                  // overwritten, not yet freed (bounded)
};

class QosCounters {
 public:
  static constexpr auto kBucket = std::chrono::milliseconds(100);
  static constexpr std::size_t kBuckets = 32;
  static constexpr std::size_t kWindowBuckets = 20;  // 2 s

  QosCounters();

  // Publisher only. `primary` = the frame counts toward fps (video, or audio in
  // an audio-only stream); `anchor` = it starts a GOP.
  void on_frame(const MediaFrame& frame, bool primary, bool anchor,
                std::chrono::steady_clock::time_point now);

  // Any thread. Fills the stream-side fields of `out`.
  void fill(QosSnapshot& out, std::chrono::steady_clock::time_point now) const;

  std::chrono::steady_clock::time_point last_frame_at() const;
  std::chrono::steady_clock::time_point started_at() const { return started_steady_; }

 private:
  struct alignas(64) Bucket {
    std::atomic<std::int64_t> epoch{-1};
    std::atomic<std::uint64_t> bytes{0};
    std::atomic<std::uint64_t> primary{0};
  };

  const std::chrono::system_clock::time_point started_;
  const std::chrono::steady_clock::time_point started_steady_;
  std::atomic<std::uint64_t> frames_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::atomic<std::uint64_t> keyframes_{0};
  std::atomic<std::uint64_t> last_gop_{0};
  std::atomic<std::int64_t> last_frame_ns_{-1};  // steady clock, since epoch
  std::uint64_t gop_count_ = 0;                  // publisher-private
  bool seen_anchor_ = false;                     // publisher-private
  bool video_anchor_ = false;                    // publisher-private: video is primary
  std::array<Bucket, kBuckets> buckets_;
};

}  // namespace arcly
