// arcly::GopCache — the keyframe index that gives a late joiner an instant start.
//
// The frames themselves live in the stream's Bus ring; the cache records *where*
// a joiner may start: "anchors", the frames of the stream's primary track that a
// decoder can start at, each with the config frames (SPS/PPS, codec_data, per
// track) that were current at that point. A joiner takes an anchor, sends its
// configs first, then reads the ring from the anchor's position on: cached GOP
// then live frames, one sequence, no gap and no duplicate.
//
// Tracks. Everything is decided when a frame is published, and stamped on it
// (FrameRef::is_anchor(), FrameRef::starts_track()):
// * The primary track is the first video track; until one appears, the first
//   audio track; until then, the first data track. When a better kind appears it
//   becomes primary and the older anchors are forgotten (an audio anchor would
//   start a joiner without a picture).
// * A frame starts its track if it is a keyframe, or — for audio and data — if
//   its track has not had a keyframe so far (a data track never has one: every
//   frame starts it). A video delta never starts a track.
// * An anchor is a frame that starts the primary track. A joiner starts there;
//   every other track it receives begins at a frame that starts that track
//   (Subscription skips the frames of a track before that).
//
// Bounds (per application): an anchor is offered only while the frames from it
// to the live edge fit in `max_frames` and `max_bytes` and it is still held by
// the ring. `window` keeps older anchors so that the last `window` of time can be
// replayed from a keyframe (pre-event recording); with window 0 only the newest
// GOP is kept. A stream that never sends a keyframe on a video primary has no
// anchor and holds nothing beyond the ring, which is bounded.
//
// Threads and memory orders: classify() and note_published() are called by the
// publisher (under the stream's publish lock). Readers (newest(), covering(),
// configs(), configs_at()) may run on any thread and never lock: the anchors and
// config sets form an immutable index that the publisher replaces (once per
// anchor or config, never per frame) by storing a new pointer; readers load it
// under a Bus hazard (Bus::protect_aux) and the old one is freed through the
// Bus's hazard scan. noted_ (release) follows the index store, so a reader that
// loads noted_ (acquire) and then the index sees every config below it.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "arcly/bus.hpp"
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
  // `bus` is the ring the anchors point into; it outlives the cache.
  GopCache(CacheBounds bounds, Bus& bus);
  ~GopCache();
  GopCache(const GopCache&) = delete;
  GopCache& operator=(const GopCache&) = delete;

  // Publisher only, before publishing `frame`: decides its marks
  // (detail::kMarkAnchor / kMarkTrackStart) and updates the primary track.
  std::uint8_t classify(const MediaFrame& frame);
  // Publisher only: `frame` was just published; `bytes_total` counts payload
  // bytes published so far including it.
  void note_published(const FrameRef& frame, std::uint64_t bytes_total);

  // Any thread, lock-free. `oldest`/`tail` describe what the ring still holds.
  // With a hazard of the bus (owned by the caller's thread) or without (one is
  // borrowed for the call).
  std::optional<GopAnchor> newest(Bus::Hazard& hazard, std::uint64_t oldest,
                                  std::uint64_t tail) const;
  std::optional<GopAnchor> newest(std::uint64_t oldest, std::uint64_t tail) const;
  // The newest anchor whose pts is at least `preroll` before the newest frame's pts
  // (or the oldest anchor held when none is that old).
  std::optional<GopAnchor> covering(Bus::Hazard& hazard, std::chrono::nanoseconds preroll,
                                    std::uint64_t oldest, std::uint64_t tail) const;
  std::optional<GopAnchor> covering(std::chrono::nanoseconds preroll, std::uint64_t oldest,
                                    std::uint64_t tail) const;
  // The newest config frame of every track, ordered by track id. With `noted`:
  // every config published below that position is in the returned set (frames
  // are noted just after they are published; a joiner reads the ring from there).
  std::vector<FrameRef> configs(Bus::Hazard& hazard, std::uint64_t* noted = nullptr) const;
  std::vector<FrameRef> configs(std::uint64_t* noted = nullptr) const;
  // The config of every track that was current at `position` (the newest one
  // published below it), ordered by track id. Exact for any position the ring
  // still holds.
  std::vector<FrameRef> configs_at(Bus::Hazard& hazard, std::uint64_t position) const;

  // Publisher only: is `track` the primary track (see above)?
  bool is_primary(std::uint32_t track) const {
    return primary_kind_.load(std::memory_order_relaxed) != kNone && track == primary_track_;
  }
  bool has_video() const { return primary_kind_.load(std::memory_order_acquire) == kVideo; }
  std::int64_t newest_pts() const { return newest_pts_.load(std::memory_order_relaxed); }
  std::uint64_t noted() const { return noted_.load(std::memory_order_acquire); }
  const CacheBounds& bounds() const { return bounds_; }

  // True when `frame`, published now, would be an anchor (see classify()).
  bool is_anchor(const MediaFrame& frame) const;

 private:
  struct Index;
  static void free_index(const void* index);
  bool usable(const GopAnchor& a, std::uint64_t oldest, std::uint64_t tail) const;
  const Index* load(Bus::Hazard& hazard) const;
  void replace(Index* next);  // publisher only

  static constexpr int kNone = 0, kData = 1, kAudio = 2, kVideo = 3;

  const CacheBounds bounds_;
  Bus& bus_;
  std::atomic<const void*> index_;  // const Index*
  std::atomic<int> primary_kind_{kNone};
  std::atomic<std::int64_t> newest_pts_{0};
  std::atomic<std::uint64_t> bytes_total_{0};
  std::atomic<std::uint64_t> noted_{0};  // positions below have been noted

  // Publisher-private.
  std::uint32_t primary_track_ = 0;
  std::vector<std::uint32_t> keyed_tracks_;  // tracks that have had a keyframe
};

}  // namespace arcly
