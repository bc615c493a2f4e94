// GstBuffer <-> arcly frame payloads, without copying media.
//
// * bytes_from_buffer(): the returned Bytes points into the buffer's mapped
//   memory and holds a buffer reference (plus the map) until the last Bytes
//   sharing it is gone. A buffer spanning several memories is mapped merged
//   (GStreamer copies once in that case). A buffer from a GstBufferPool is
//   copied: the GOP cache holds frames for seconds, a pool has a few buffers.
// * buffer_from_frame(): a new GstBuffer whose single READONLY memory wraps the
//   frame's payload and holds a FrameRef copy until the memory is freed — the
//   subscriber pushes the publisher's bytes.
// Both functions are safe on any thread. Timestamps are not touched here.
#pragma once

#include <gst/gst.h>

#include "arcly/bytes.hpp"
#include "arcly/frame_ref.hpp"

namespace arcly::gst {

// Throws arcly::Error{InvalidArgument} if the buffer cannot be mapped.
Bytes bytes_from_buffer(GstBuffer* buffer);

// Transfer full. An empty payload gives an empty buffer (no memory).
GstBuffer* buffer_from_frame(const FrameRef& frame);

// Wraps any Bytes (e.g. a config payload) the same way.
GstBuffer* buffer_from_bytes(const Bytes& bytes);

}  // namespace arcly::gst
