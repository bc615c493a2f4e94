// GstBuffer <-> arcly frame payloads, without copying media.
//
// * bytes_from_buffer(): the returned Bytes points into the buffer's mapped
//   memory and holds a buffer reference (plus the map) until the last Bytes
//   sharing it is gone. A buffer spanning several memories is mapped merged
//   (GStreamer copies once in that case). A buffer from a GstBufferPool is
//   copied: the GOP cache holds frames for seconds, a pool has a few buffers.
// * buffer_from_bytes(): a new GstBuffer whose single READONLY memory wraps the
//   payload and holds a Bytes copy until the memory is freed — subscribers push
//   the publisher's bytes (shared_buffer.hpp builds one such buffer per frame).
// * meta_carrier() / copy_carried_metas(): the publisher's metas (reference
//   timestamps such as rtspsrc's x-ntp capture time, timecodes, captions, KLV)
//   travel with a media frame as its `info` — a TrackInfo subtype holding a
//   GstBuffer that carries them: the publisher's own buffer (already held by the
//   payload), or for a pooled buffer an empty one with copies of its metas. The
//   engine treats `info` of a media frame as opaque. (A dedicated attachment
//   field on MediaFrame would say this better; that is an engine change.)
// All functions are safe on any thread. Timestamps are not touched here.
#pragma once

#include <gst/gst.h>

#include "arcly/bytes.hpp"
#include "arcly/frame_ref.hpp"
#include "arcly/media_frame.hpp"

#include <memory>

namespace arcly::gst {

// Throws arcly::Error{InvalidArgument} if the buffer cannot be mapped.
Bytes bytes_from_buffer(GstBuffer* buffer);

// Transfer full. An empty payload gives an empty buffer (no memory).
GstBuffer* buffer_from_bytes(const Bytes& bytes);

// Null when `buffer` has no metas (nothing to carry).
std::shared_ptr<const TrackInfo> meta_carrier(GstBuffer* buffer);
// Copies the metas a media frame carries onto `out` (writable); no-op without.
void copy_carried_metas(const MediaFrame& frame, GstBuffer* out);

}  // namespace arcly::gst
