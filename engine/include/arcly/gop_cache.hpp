// arcly::GopCache — the keyframe index that gives a late joiner an instant start.
//
// The frames themselves live in the stream's Bus ring; the cache records *where*
// a joiner may start: "anchors", one per keyframe of the stream's primary track
// (video if the stream has video, else every audio keyframe), each with the
// config frames (SPS/PPS, codec_data, per track) that were current at that point.
// A joiner takes an anchor, sends its configs first, then reads the ring from the
// anchor's position on: cached GOP then live frames, one sequence, no gap and no
// duplicate.
//
// Bounds (per application): an anchor is offered only while the frames from it
// to the live edge fit in `max_frames` and `max_bytes` and it is still held by
// the ring. `window` keeps older anchors so that the last `window` of time can be
// replayed from a keyframe (pre-event recording); with window 0 only the newest
// GOP is kept. A stream that never sends a keyframe has no anchor and holds
// nothing beyond the ring, which is bounded.
//
// Threads: note_published() is called by the publisher (under the stream's publish
// lock). The readers (newest(), covering(), configs()) may run on any thread; they
// take a short mutex that the publisher also takes once per keyframe or config,
// never per frame.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <vector>

#include "arcly/frame_ref.hpp"

namespace arcly {

struct CacheBounds {
  std::size_t max_frames = 1024;
  std::size_t max_bytes = 64u << 20;
  std::chrono::nanoseconds window{0};
};

struct GopAnchor {
  std::uint64_t position = 0;      // bus position of the keyframe
  std::int64_t pts = 0;            // its pts (ns)
  std::uint64_t bytes_before = 0;  // payload bytes published before it
  std::vector<FrameRef> configs;   // newest config per track at that point
};

class GopCache {
 public:
  explicit GopCache(CacheBounds bounds) : bounds_(bounds) {}

  // Publisher only: `frame` was just published; `bytes_total` counts payload
  // bytes published so far including it.
  void note_published(const FrameRef& frame, std::uint64_t bytes_total);

  // Any thread. `oldest`/`tail` describe what the ring still holds.
  std::optional<GopAnchor> newest(std::uint64_t oldest, std::uint64_t tail) const;
  // The newest anchor whose pts is at least `preroll` before the newest frame's pts
  // (or the oldest anchor held when none is that old).
  std::optional<GopAnchor> covering(std::chrono::nanoseconds preroll, std::uint64_t oldest,
                                    std::uint64_t tail) const;
  // The newest config frame of every track, ordered by track id. With `noted`:
  // every config published below that position is in the returned set (frames
  // are noted just after they are published; a joiner reads the ring from there).
  std::vector<FrameRef> configs(std::uint64_t* noted = nullptr) const;

  bool has_video() const { return has_video_.load(std::memory_order_acquire); }
  std::int64_t newest_pts() const { return newest_pts_.load(std::memory_order_relaxed); }
  const CacheBounds& bounds() const { return bounds_; }

  // True when `frame` starts a GOP a joiner could begin decoding at.
  bool is_anchor(const MediaFrame& frame) const;

 private:
  bool usable(const GopAnchor& a, std::uint64_t oldest, std::uint64_t tail) const;

  const CacheBounds bounds_;
  mutable std::mutex mutex_;
  std::deque<GopAnchor> anchors_;  // guarded by mutex_
  std::vector<FrameRef> configs_;  // guarded by mutex_, sorted by track
  std::atomic<bool> has_video_{false};
  std::atomic<std::int64_t> newest_pts_{0};
  std::atomic<std::uint64_t> bytes_total_{0};
  std::atomic<std::uint64_t> noted_{0};  // positions below have been noted
};

}  // namespace arcly
