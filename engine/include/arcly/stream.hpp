// arcly::Stream — one live stream: its Bus, GOP cache and QoS counters.
//
// A Stream exists from start_publish to end_publish. The engine hands out
// StreamHandle (shared ownership); subscriptions keep the stream alive until
// they are gone, so a subscriber can always drain and observe the end.
//
// Threads: publish_frame() may be called from any thread; concurrent publishers
// (e.g. the audio and video pads of one sink) are serialized by a short,
// uncontended-in-practice publish lock — the Bus underneath is single-producer.
// Waking subscribers happens after that lock is released. Subscribers never take
// it. Everything else may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "arcly/bus.hpp"
#include "arcly/gop_cache.hpp"
#include "arcly/qos.hpp"
#include "arcly/stream_key.hpp"
#include "arcly/subscription.hpp"

namespace arcly {

struct AppSpec;

class Stream : public std::enable_shared_from_this<Stream> {
 public:
  Stream(StreamKey key, const AppSpec& app, std::uint64_t instance);
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  const StreamKey& key() const { return key_; }
  // Unique per publish (a key republished gets a new instance number).
  std::uint64_t instance() const { return instance_; }

  // Publishes to every subscriber; returns the live subscriber count. Throws
  // Error{StreamClosed} once the publish has ended.
  std::size_t publish_frame(MediaFrame frame);

  // Throws Error{SubscriberLimitReached} at the app's per-stream limit. After the
  // publish ended it still succeeds: the subscription drains what the ring holds,
  // then sees Closed.
  Subscription subscribe(const SubscribeOptions& options = {});
  Subscription subscribe_resilient(StartAt start = StartAt::Keyframe);

  // The frames a late joiner would replay now (from the newest cached keyframe
  // to the live edge), configs excluded.
  std::vector<FrameRef> replay_buffer();
  // The newest config frame of each track.
  std::vector<FrameRef> cached_configs() const { return gop_.configs(); }

  // The publisher's word that every track it will have is announced: each
  // track's config is published (so it is in cached_configs()). A subscriber
  // may then close its set of outputs (GStreamer's no-more-pads) as soon as it
  // has seen those configs, instead of waiting for tracks that come late (an
  // audio track whose caps follow the first video keyframe). Publishers that
  // cannot tell never declare it; subscribers then wait a bounded time. Call it
  // after publishing the last config (release: the configs happen before).
  void declare_tracks_complete() { tracks_complete_.store(true, std::memory_order_release); }
  bool tracks_complete() const { return tracks_complete_.load(std::memory_order_acquire); }

  // Publisher timestamp (ns) of the newest media frame published, kNoPts before
  // the first. Subscribers measure their lag behind the publisher with it.
  static constexpr std::int64_t kNoPts = INT64_MIN;
  std::int64_t newest_pts() const { return newest_pts_.load(std::memory_order_acquire); }

  // Key-unit requests (a subscriber's decoder needs a keyframe now: a WebRTC
  // PLI, a splitmuxsink split, a late joiner with next-keyframe). Subscribers
  // ask; the publisher polls the count and asks its encoder, rate-limited as it
  // sees fit (arclysink: at most one per `key-unit-interval`). A counter, not a
  // queue: requests that arrive before the publisher looks are merged.
  void request_key_unit() { key_unit_requests_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t key_unit_requests() const {
    return key_unit_requests_.load(std::memory_order_relaxed);
  }

  // The latency (ns) the publisher's own upstream adds before a frame is
  // published (capture, encoder lookahead), as its pipeline reports it; 0 until
  // the publisher knows. Subscribers add it to the latency they report.
  void set_upstream_latency(std::chrono::nanoseconds latency) {
    upstream_latency_ns_.store(latency.count(), std::memory_order_relaxed);
  }
  std::chrono::nanoseconds upstream_latency() const {
    return std::chrono::nanoseconds(upstream_latency_ns_.load(std::memory_order_relaxed));
  }

  QosSnapshot qos() const;
  std::size_t subscriber_count() const { return subscribers_.load(std::memory_order_acquire); }
  std::chrono::steady_clock::time_point last_frame_at() const { return qos_.last_frame_at(); }
  std::chrono::steady_clock::time_point started_at() const { return qos_.started_at(); }
  std::chrono::nanoseconds idle_timeout() const { return idle_timeout_; }

  // Ends the stream: publishing is refused, subscribers drain then see Closed.
  void close() { bus_.close(); }
  // The idle reaper's step: ends the stream if its newest frame (or its start)
  // is older than the idle timeout at `now`, deciding and ending under the
  // publish lock so that a publish cannot slip in between. Returns true if it
  // ended the stream (false with no timeout, or if already ended).
  bool close_if_idle(std::chrono::steady_clock::time_point now);
  bool closed() const { return bus_.closed(); }

  // For Subscription (same module).
  Bus& bus() { return bus_; }
  GopCache& gop() { return gop_; }
  // Counts a subscriber in (throws Error{SubscriberLimitReached}) and lists its
  // counters (they live in its hazard, so they outlive it) until detach, which
  // must come before the hazard is released.
  void attach_subscriber(SubscriberCounters& counters);
  void detach_subscriber(const SubscriberCounters& counters);

 private:
  const StreamKey key_;
  const std::uint64_t instance_;
  const std::size_t max_subscribers_;
  const std::chrono::nanoseconds idle_timeout_;

  Bus bus_;
  GopCache gop_;
  QosCounters qos_;

  std::mutex publish_mutex_;
  std::uint64_t bytes_total_ = 0;  // guarded by publish_mutex_

  std::atomic<std::size_t> subscribers_{0};
  std::atomic<bool> tracks_complete_{false};
  std::atomic<std::int64_t> newest_pts_{kNoPts};  // written under publish_mutex_
  std::atomic<std::uint64_t> key_unit_requests_{0};
  std::atomic<std::int64_t> upstream_latency_ns_{0};
  mutable std::mutex subscribers_mutex_;
  std::vector<const SubscriberCounters*> subscriber_counters_;
  std::uint64_t next_subscriber_id_ = 1;
};

using StreamHandle = std::shared_ptr<Stream>;

}  // namespace arcly
