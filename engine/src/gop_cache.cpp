#include "arcly/gop_cache.hpp"

#include <algorithm>

namespace arcly {

bool GopCache::is_anchor(const MediaFrame& frame) const {
  if (!frame.is_keyframe() || frame.is_config()) return false;
  if (frame.kind == MediaKind::Video) return true;
  return frame.kind == MediaKind::Audio && !has_video_.load(std::memory_order_relaxed);
}

// Publisher only.
void GopCache::note_published(const FrameRef& ref, std::uint64_t bytes_total) {
  const MediaFrame& f = *ref;
  bytes_total_.store(bytes_total, std::memory_order_relaxed);
  if (f.is_config()) {
    std::lock_guard lock(mutex_);
    auto it = std::lower_bound(configs_.begin(), configs_.end(), f.track,
                               [](const FrameRef& c, std::uint32_t t) { return c->track < t; });
    if (it != configs_.end() && (*it)->track == f.track) {
      *it = ref;
    } else {
      configs_.insert(it, ref);
    }
    noted_.store(ref.position() + 1, std::memory_order_release);
    return;
  }
  struct NoteOnExit {
    std::atomic<std::uint64_t>& noted;
    std::uint64_t next;
    ~NoteOnExit() { noted.store(next, std::memory_order_release); }
  } note_on_exit{noted_, ref.position() + 1};
  if (f.kind == MediaKind::Video && !has_video_.load(std::memory_order_relaxed)) {
    has_video_.store(true, std::memory_order_release);
    // Audio anchors taken before the video appeared would start a joiner
    // without a picture: forget them.
    std::lock_guard lock(mutex_);
    anchors_.clear();
  }
  const bool primary = f.kind == MediaKind::Video || !has_video_.load(std::memory_order_relaxed);
  if (primary) newest_pts_.store(f.pts, std::memory_order_relaxed);
  if (!is_anchor(f)) return;

  std::lock_guard lock(mutex_);
  anchors_.push_back(GopAnchor{ref.position(), f.pts, bytes_total - f.payload.size(), configs_});
  // Keep the oldest anchor only while the next one does not yet cover the window.
  const std::int64_t horizon = f.pts - bounds_.window.count();
  while (anchors_.size() > 1 && anchors_[1].pts <= horizon) anchors_.pop_front();
  // And never keep an anchor the frame or byte bound already excludes.
  while (!anchors_.empty()) {
    const auto& a = anchors_.front();
    const bool too_many = ref.position() + 1 - a.position > bounds_.max_frames;
    const bool too_big = bytes_total - a.bytes_before > bounds_.max_bytes;
    if (!too_many && !too_big) break;
    anchors_.pop_front();
  }
}

bool GopCache::usable(const GopAnchor& a, std::uint64_t oldest, std::uint64_t tail) const {
  if (a.position < oldest || a.position >= tail) return false;
  if (tail - a.position > bounds_.max_frames) return false;
  return bytes_total_.load(std::memory_order_relaxed) - a.bytes_before <= bounds_.max_bytes;
}

std::optional<GopAnchor> GopCache::newest(std::uint64_t oldest, std::uint64_t tail) const {
  std::lock_guard lock(mutex_);
  // The newest anchor may be past `tail` if the publisher moved on meanwhile.
  for (auto it = anchors_.rbegin(); it != anchors_.rend(); ++it) {
    if (usable(*it, oldest, tail)) return *it;
    if (it->position < tail) break;
  }
  return std::nullopt;
}

std::optional<GopAnchor> GopCache::covering(std::chrono::nanoseconds preroll, std::uint64_t oldest,
                                            std::uint64_t tail) const {
  std::lock_guard lock(mutex_);
  const std::int64_t target = newest_pts_.load(std::memory_order_relaxed) - preroll.count();
  const GopAnchor* best = nullptr;
  for (const auto& a : anchors_) {
    if (!usable(a, oldest, tail)) continue;
    if (!best || a.pts <= target) best = &a;  // oldest usable, then newer ones still covering
    if (a.pts > target) break;
  }
  if (!best) return std::nullopt;
  return *best;
}

std::vector<FrameRef> GopCache::configs(std::uint64_t* noted) const {
  std::lock_guard lock(mutex_);
  if (noted) *noted = noted_.load(std::memory_order_acquire);
  return configs_;
}

}  // namespace arcly
