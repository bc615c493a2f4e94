#include "arcly/gop_cache.hpp"

#include <algorithm>
#include <deque>

namespace arcly {

struct GopCache::Index {
  std::deque<GopAnchor> anchors;  // oldest first
  std::vector<FrameRef> configs;  // newest config per track, sorted by track
  std::vector<FrameRef> history;  // configs by position: each still current somewhere held
};

namespace {
int rank_of(MediaKind kind) {
  switch (kind) {
    case MediaKind::Video:
      return 3;
    case MediaKind::Audio:
      return 2;
    case MediaKind::Data:
      return 1;
  }
  return 1;
}

// Clears a hazard's aux slot when a reader is done with the index it protected.
struct AuxGuard {
  Bus::Hazard& hazard;
  ~AuxGuard() { hazard.aux.store(nullptr, std::memory_order_release); }
};

// Borrows a hazard of `bus` for one call.
struct BorrowedHazard {
  Bus& bus;
  Bus::Hazard* hazard;
  explicit BorrowedHazard(Bus& b) : bus(b), hazard(b.acquire_hazard()) {}
  ~BorrowedHazard() { bus.release_hazard(hazard); }
};
}  // namespace

GopCache::GopCache(CacheBounds bounds, Bus& bus) : bounds_(bounds), bus_(bus), index_(new Index) {}

GopCache::~GopCache() {
  free_index(index_.load(std::memory_order_relaxed));
}

void GopCache::free_index(const void* index) {
  delete static_cast<const Index*>(index);
}

const GopCache::Index* GopCache::load(Bus::Hazard& hazard) const {
  return static_cast<const Index*>(bus_.protect_aux(hazard, index_));
}

// Publisher only: the publisher is the only one that frees indices, so it reads
// the current one without a hazard.
void GopCache::replace(Index* next) {
  const void* old = index_.exchange(next, std::memory_order_seq_cst);
  bus_.retire_aux(old, &GopCache::free_index);
}

bool GopCache::is_anchor(const MediaFrame& frame) const {
  if (frame.is_config() || !frame.is_keyframe()) return false;
  return rank_of(frame.kind) >= primary_kind_.load(std::memory_order_acquire);
}

// Publisher only.
std::uint8_t GopCache::classify(const MediaFrame& f) {
  if (f.is_config()) return 0;
  const int rank = rank_of(f.kind);
  if (rank > primary_kind_.load(std::memory_order_relaxed)) {
    const bool had_anchors =
        !static_cast<const Index*>(index_.load(std::memory_order_relaxed))->anchors.empty();
    primary_kind_.store(rank, std::memory_order_release);
    primary_track_ = f.track;
    if (had_anchors) {
      // Anchors of a lesser kind would start a joiner without this track.
      auto* next = new Index(*static_cast<const Index*>(index_.load(std::memory_order_relaxed)));
      next->anchors.clear();
      replace(next);
    }
  }
  const bool keyed_before =
      std::find(keyed_tracks_.begin(), keyed_tracks_.end(), f.track) != keyed_tracks_.end();
  if (f.is_keyframe() && !keyed_before) keyed_tracks_.push_back(f.track);
  const bool starts = f.is_keyframe() || (f.kind != MediaKind::Video && !keyed_before);
  std::uint8_t marks = starts ? detail::kMarkTrackStart : 0;
  if (starts && f.track == primary_track_) marks |= detail::kMarkAnchor;
  return marks;
}

// Publisher only.
void GopCache::note_published(const FrameRef& ref, std::uint64_t bytes_total) {
  const MediaFrame& f = *ref;
  bytes_total_.store(bytes_total, std::memory_order_relaxed);
  const auto* cur = static_cast<const Index*>(index_.load(std::memory_order_relaxed));
  const std::uint64_t oldest = bus_.oldest();
  // Drops configs no held position needs: an older config of a track whose
  // successor is itself below the oldest held position.
  auto prune_history = [oldest](std::vector<FrameRef>& history) {
    std::vector<FrameRef> kept;
    kept.reserve(history.size());
    for (std::size_t i = 0; i < history.size(); ++i) {
      bool superseded = false;
      for (std::size_t j = i + 1; j < history.size(); ++j) {
        if (history[j]->track == history[i]->track && history[j].position() < oldest) {
          superseded = true;
          break;
        }
      }
      if (!superseded) kept.push_back(history[i]);
    }
    history.swap(kept);
  };

  if (f.is_config()) {
    auto* next = new Index(*cur);
    auto it = std::lower_bound(next->configs.begin(), next->configs.end(), f.track,
                               [](const FrameRef& c, std::uint32_t t) { return c->track < t; });
    if (it != next->configs.end() && (*it)->track == f.track) {
      *it = ref;
    } else {
      next->configs.insert(it, ref);
    }
    next->history.push_back(ref);
    prune_history(next->history);
    replace(next);
    noted_.store(ref.position() + 1, std::memory_order_release);
    return;
  }
  if (f.track == primary_track_) newest_pts_.store(f.pts, std::memory_order_relaxed);
  if (ref.is_anchor()) {
    auto* next = new Index(*cur);
    next->anchors.push_back(
        GopAnchor{ref.position(), f.pts, bytes_total - f.payload.size(), next->configs});
    // Keep the oldest anchor only while the next one does not yet cover the window.
    const std::int64_t horizon = f.pts - bounds_.window.count();
    while (next->anchors.size() > 1 && next->anchors[1].pts <= horizon) {
      next->anchors.pop_front();
    }
    // And never keep an anchor the frame or byte bound already excludes.
    while (!next->anchors.empty()) {
      const auto& a = next->anchors.front();
      const bool too_many = ref.position() + 1 - a.position > bounds_.max_frames;
      const bool too_big = bytes_total - a.bytes_before > bounds_.max_bytes;
      if (!too_many && !too_big) break;
      next->anchors.pop_front();
    }
    prune_history(next->history);
    replace(next);
  }
  noted_.store(ref.position() + 1, std::memory_order_release);
}

bool GopCache::usable(const GopAnchor& a, std::uint64_t oldest, std::uint64_t tail) const {
  if (a.position < oldest || a.position >= tail) return false;
  if (tail - a.position > bounds_.max_frames) return false;
  return bytes_total_.load(std::memory_order_relaxed) - a.bytes_before <= bounds_.max_bytes;
}

std::optional<GopAnchor> GopCache::newest(Bus::Hazard& hazard, std::uint64_t oldest,
                                          std::uint64_t tail) const {
  AuxGuard guard{hazard};
  const Index* index = load(hazard);
  // The newest anchor may be past `tail` if the publisher moved on meanwhile.
  for (auto it = index->anchors.rbegin(); it != index->anchors.rend(); ++it) {
    if (usable(*it, oldest, tail)) return *it;
    if (it->position < tail) break;
  }
  return std::nullopt;
}

std::optional<GopAnchor> GopCache::newest(std::uint64_t oldest, std::uint64_t tail) const {
  BorrowedHazard h(bus_);
  return newest(*h.hazard, oldest, tail);
}

std::optional<GopAnchor> GopCache::covering(Bus::Hazard& hazard, std::chrono::nanoseconds preroll,
                                            std::uint64_t oldest, std::uint64_t tail) const {
  AuxGuard guard{hazard};
  const Index* index = load(hazard);
  const std::int64_t target = newest_pts_.load(std::memory_order_relaxed) - preroll.count();
  const GopAnchor* best = nullptr;
  for (const auto& a : index->anchors) {
    if (!usable(a, oldest, tail)) continue;
    if (!best || a.pts <= target) best = &a;  // oldest usable, then newer ones still covering
    if (a.pts > target) break;
  }
  if (!best) return std::nullopt;
  return *best;
}

std::optional<GopAnchor> GopCache::covering(std::chrono::nanoseconds preroll, std::uint64_t oldest,
                                            std::uint64_t tail) const {
  BorrowedHazard h(bus_);
  return covering(*h.hazard, preroll, oldest, tail);
}

std::vector<FrameRef> GopCache::configs(Bus::Hazard& hazard, std::uint64_t* noted) const {
  if (noted) *noted = noted_.load(std::memory_order_acquire);  // before the index: see header
  AuxGuard guard{hazard};
  return load(hazard)->configs;
}

std::vector<FrameRef> GopCache::configs(std::uint64_t* noted) const {
  BorrowedHazard h(bus_);
  return configs(*h.hazard, noted);
}

std::vector<FrameRef> GopCache::configs_at(Bus::Hazard& hazard, std::uint64_t position) const {
  AuxGuard guard{hazard};
  const Index* index = load(hazard);
  std::vector<FrameRef> out;
  for (const auto& c : index->history) {  // ascending positions: later ones replace
    if (c.position() >= position) break;
    auto it = std::lower_bound(out.begin(), out.end(), c->track,
                               [](const FrameRef& x, std::uint32_t t) { return x->track < t; });
    if (it != out.end() && (*it)->track == c->track) {
      *it = c;
    } else {
      out.insert(it, c);
    }
  }
  return out;
}

}  // namespace arcly
