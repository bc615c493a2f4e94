// arcly::FrameRef — a shared, read-only handle on a frame published to a bus.
//
// Every subscriber of a stream receives the *same* frame node: handing a frame to
// a subscriber costs one atomic increment, never a copy of the frame or its bytes.
// `position()` is the frame's sequence number on its bus (0, 1, 2, ... per publish).
// Copy, move and destroy from any thread.
//
// FrameView is a borrowed look at the same node: no reference is taken, so it is
// valid only while its lender keeps the node alive (Subscription::try_drain: until
// the callback returns). ref() takes a reference that outlives the view.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>

#include "arcly/media_frame.hpp"

namespace arcly {

class FrameAttachment {
 public:
  virtual ~FrameAttachment() = default;
};

namespace detail {
// Marks the stream sets at publish time (never changed afterwards).
inline constexpr std::uint8_t kMarkAnchor = 1;      // a joiner may start here (primary track)
inline constexpr std::uint8_t kMarkTrackStart = 2;  // its track may start here (a keyframe, or
                                                    // any frame of a track without keyframes)
struct FrameNode {
  FrameNode(std::uint64_t pos, MediaFrame f, std::uint8_t m = 0)
      : position(pos), marks(m), frame(std::move(f)) {}
  ~FrameNode() { delete attachment.load(std::memory_order_acquire); }
  FrameNode(const FrameNode&) = delete;
  FrameNode& operator=(const FrameNode&) = delete;
  std::atomic<std::uint32_t> refs{1};
  // Null until the first attach(); set once, never replaced.
  std::atomic<FrameAttachment*> attachment{nullptr};
  const std::uint64_t position;
  const std::uint8_t marks;
  const MediaFrame frame;
};

inline void node_ref(FrameNode* n) {
  n->refs.fetch_add(1, std::memory_order_relaxed);
}
inline void node_unref(FrameNode* n) {
  if (n->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete n;
}

// Acquire pairs with the release of the CAS in attach_to(): whoever sees the
// pointer sees the attachment fully built.
inline FrameAttachment* attachment_of(const FrameNode* n) {
  return n->attachment.load(std::memory_order_acquire);
}
// Publishes `a` unless another thread was first; returns the one that won (the
// loser's is deleted). Release on success publishes the built object; acquire on
// failure makes the winner's visible. Readers hold a reference to the node, so
// it (and its attachment) outlive the call.
inline FrameAttachment* attach_to(FrameNode* n, std::unique_ptr<FrameAttachment> a) {
  FrameAttachment* expected = nullptr;
  if (n->attachment.compare_exchange_strong(expected, a.get(), std::memory_order_acq_rel,
                                            std::memory_order_acquire))
    return a.release();
  return expected;
}
}  // namespace detail

class FrameRef {
 public:
  FrameRef() = default;
  FrameRef(const FrameRef& o) : node_(o.node_) {
    if (node_) detail::node_ref(node_);
  }
  FrameRef(FrameRef&& o) noexcept : node_(std::exchange(o.node_, nullptr)) {}
  FrameRef& operator=(FrameRef o) noexcept {
    std::swap(node_, o.node_);
    return *this;
  }
  ~FrameRef() {
    if (node_) detail::node_unref(node_);
  }

  explicit operator bool() const { return node_ != nullptr; }
  const MediaFrame& operator*() const { return node_->frame; }
  const MediaFrame* operator->() const { return &node_->frame; }
  const MediaFrame& frame() const { return node_->frame; }
  std::uint64_t position() const { return node_->position; }
  // Decided by the stream when the frame was published: a late joiner may start
  // here (a keyframe of the stream's primary track) ...
  bool is_anchor() const { return (node_->marks & detail::kMarkAnchor) != 0; }
  // ... and a track may start here (a keyframe, or any frame of a track that
  // has no keyframes, e.g. data).
  bool starts_track() const { return (node_->marks & detail::kMarkTrackStart) != 0; }
  // Identity of the shared node (two refs to the same publish compare equal).
  const void* id() const { return node_; }
  // The frame's attachment (see above), null until someone attached one.
  FrameAttachment* attachment() const { return detail::attachment_of(node_); }
  // Attaches `a` unless one is there already; returns the one that stays.
  FrameAttachment* attach(std::unique_ptr<FrameAttachment> a) const {
    return detail::attach_to(node_, std::move(a));
  }

  // Takes over one reference the caller already owns.
  static FrameRef adopt(detail::FrameNode* n) {
    FrameRef r;
    r.node_ = n;
    return r;
  }

 private:
  friend class FrameView;
  detail::FrameNode* node_ = nullptr;
};

class FrameView {
 public:
  FrameView() = default;
  explicit FrameView(detail::FrameNode* n) : node_(n) {}
  explicit FrameView(const FrameRef& r) : node_(r.node_) {}

  explicit operator bool() const { return node_ != nullptr; }
  const MediaFrame& operator*() const { return node_->frame; }
  const MediaFrame* operator->() const { return &node_->frame; }
  const MediaFrame& frame() const { return node_->frame; }
  std::uint64_t position() const { return node_->position; }
  bool is_anchor() const { return (node_->marks & detail::kMarkAnchor) != 0; }
  bool starts_track() const { return (node_->marks & detail::kMarkTrackStart) != 0; }
  const void* id() const { return node_; }
  // A reference of its own (one atomic increment), valid after the view is not.
  FrameRef ref() const {
    if (!node_) return {};
    detail::node_ref(node_);
    return FrameRef::adopt(node_);
  }

 private:
  detail::FrameNode* node_ = nullptr;
};

}  // namespace arcly
