// The one GstBuffer per published media frame that every subscriber pushes.
//
// shared_buffer(frame) builds it the first time any subscriber asks (payload:
// the publisher's memory, READONLY, zero-copy; timestamps on the shared scale,
// Timeline::shared(); DELTA_UNIT, CORRUPTED, HEADER, and DISCONT where the
// publisher marked the frame; the publisher's metas and the publisher-timestamp
// reference meta) and hangs it on the frame node (FrameRef::attach), so the
// other subscribers take a reference instead of building their own: tee's cost
// model. The attachment keeps one reference for the frame's lifetime, so the
// buffer is never writable for anyone who receives it: downstream copies before
// writing (gst_buffer_make_writable), as with tee. Never write to it; for the
// rare per-subscriber difference (DISCONT after a join or a lag, DECODE_ONLY
// catch-up, in-band configs in front of a keyframe) make a shallow copy
// (gst_buffer_copy: memory shared, metas copied).
//
// This layer owns the frame attachment slot of every frame it reads. Any thread.
#pragma once

#include <gst/gst.h>

#include "arcly/frame_ref.hpp"

namespace arcly::gst {

// The caps of the publisher-timestamp meta (`timestamp/x-arcly-publisher`).
GstCaps* publisher_meta_caps();

// Borrowed: valid while `frame` is held. Media frames only.
GstBuffer* shared_buffer(const FrameRef& frame);

}  // namespace arcly::gst
