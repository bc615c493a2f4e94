// The shared GstBuffer of a frame (see shared_buffer.hpp).
#include "shared_buffer.hpp"

#include <memory>

#include "buffer_frame.hpp"
#include "timeline.hpp"

namespace arcly::gst {

GstCaps* publisher_meta_caps() {
  static GstCaps* caps = gst_caps_new_empty_simple("timestamp/x-arcly-publisher");
  return caps;
}

namespace {

struct SharedBuffer final : FrameAttachment {
  explicit SharedBuffer(GstBuffer* b) : buffer(b) {}
  ~SharedBuffer() override { gst_buffer_unref(buffer); }
  SharedBuffer(const SharedBuffer&) = delete;
  SharedBuffer& operator=(const SharedBuffer&) = delete;
  GstBuffer* buffer;
};

// One publisher-timestamp meta per buffer: a publisher that re-publishes an
// arcly stream carried one along with its other metas; ours replaces it.
void set_publisher_ts(GstBuffer* buffer, GstClockTime ts) {
  gpointer state = nullptr;
  while (GstMeta* m = gst_buffer_iterate_meta_filtered(buffer, &state,
                                                       GST_REFERENCE_TIMESTAMP_META_API_TYPE)) {
    auto* r = reinterpret_cast<GstReferenceTimestampMeta*>(m);
    if (gst_caps_is_equal(r->reference, publisher_meta_caps())) {
      r->timestamp = ts;
      r->duration = GST_CLOCK_TIME_NONE;
      return;
    }
  }
  gst_buffer_add_reference_timestamp_meta(buffer, publisher_meta_caps(), ts, GST_CLOCK_TIME_NONE);
}

GstBuffer* build(const MediaFrame& f) {
  // The memory holds the payload's Bytes, not a FrameRef: the node owns this
  // buffer, and a FrameRef inside it would keep the node alive for ever.
  GstBuffer* buffer = buffer_from_bytes(f.payload);
  GST_BUFFER_PTS(buffer) = Timeline::shared(f.pts);
  GST_BUFFER_DTS(buffer) = f.dts ? Timeline::shared(*f.dts) : GST_CLOCK_TIME_NONE;
  if (f.duration > 0) GST_BUFFER_DURATION(buffer) = static_cast<GstClockTime>(f.duration);
  if (!f.is_keyframe()) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DELTA_UNIT);
  if (any(f.flags & FrameFlags::Corrupt)) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_CORRUPTED);
  if (any(f.flags & FrameFlags::Header)) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_HEADER);
  // A gap or restart at the publisher (a camera that reconnected in grace) is a
  // discontinuity for every subscriber: parsers and muxers must not join across it.
  if (f.is_discont()) GST_BUFFER_FLAG_SET(buffer, GST_BUFFER_FLAG_DISCONT);
  copy_carried_metas(f, buffer);  // the publisher's metas
  set_publisher_ts(buffer, static_cast<GstClockTime>(f.pts));
  return buffer;
}

}  // namespace

GstBuffer* shared_buffer(const FrameRef& frame) {
  // Hot path: one acquire load (FrameRef::attachment) once the first subscriber
  // built it. Two subscribers racing on a new frame both build; attach() keeps
  // the first and deletes the other's (rare, and cheaper than a lock).
  if (FrameAttachment* a = frame.attachment()) return static_cast<SharedBuffer*>(a)->buffer;
  auto built = std::make_unique<SharedBuffer>(build(*frame));
  return static_cast<SharedBuffer*>(frame.attach(std::move(built)))->buffer;
}

}  // namespace arcly::gst
