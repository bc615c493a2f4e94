// GstBuffer <-> frame payloads (see buffer_frame.hpp).
#include "buffer_frame.hpp"

#include <new>

#include "arcly/error.hpp"

namespace arcly::gst {
namespace {

// Keeps a buffer mapped for as long as the Bytes that point into it live.
struct MappedBuffer {
  GstBuffer* buffer;
  GstMapInfo map;
};

void release_mapped(void* context) {
  auto* m = static_cast<MappedBuffer*>(context);
  gst_buffer_unmap(m->buffer, &m->map);
  gst_buffer_unref(m->buffer);
  delete m;
}

template <class Holder>
void release_holder(gpointer data) {
  delete static_cast<Holder*>(data);
}

GstBuffer* wrap(const std::uint8_t* data, std::size_t size, void* holder, GDestroyNotify free_fn) {
  // GStreamer's wrapped memory API takes a non-const pointer; READONLY forbids writes.
  auto* bytes = const_cast<std::uint8_t*>(data);
  return gst_buffer_new_wrapped_full(GST_MEMORY_FLAG_READONLY, bytes, size, 0, size, holder,
                                     free_fn);
}

constexpr const char* kMetaCarrierTag = "x-arcly/buffer-metas";

struct MetaCarrier final : TrackInfo {
  explicit MetaCarrier(GstBuffer* b) : holder(b) {
    kind = MediaKind::Data;
    description = kMetaCarrierTag;
  }
  ~MetaCarrier() { gst_buffer_unref(holder); }
  MetaCarrier(const MetaCarrier&) = delete;
  MetaCarrier& operator=(const MetaCarrier&) = delete;
  GstBuffer* holder;
};

gboolean any_meta(GstBuffer*, GstMeta**, gpointer found) {
  *static_cast<bool*>(found) = true;
  return FALSE;  // stop at the first
}

}  // namespace

std::shared_ptr<const TrackInfo> meta_carrier(GstBuffer* buffer) {
  bool found = false;
  gst_buffer_foreach_meta(buffer, any_meta, &found);
  if (!found) return nullptr;
  GstBuffer* holder = nullptr;
  if (buffer->pool) {
    // Do not keep a pooled buffer for the GOP cache's lifetime (see above).
    holder = gst_buffer_new();
    gst_buffer_copy_into(holder, buffer, GST_BUFFER_COPY_META, 0, 0);
  } else {
    holder = gst_buffer_ref(buffer);
  }
  return std::make_shared<const MetaCarrier>(holder);
}

void copy_carried_metas(const MediaFrame& frame, GstBuffer* out) {
  if (!frame.info || frame.is_config() || frame.info->description != kMetaCarrierTag) return;
  const auto* carrier = static_cast<const MetaCarrier*>(frame.info.get());
  gst_buffer_copy_into(out, carrier->holder, GST_BUFFER_COPY_META, 0, 0);
}

Bytes bytes_from_buffer(GstBuffer* buffer) {
  if (buffer->pool) {
    // A pooled buffer goes back to a small fixed pool (capture devices, some
    // hardware encoders): keeping it for the GOP cache would starve upstream.
    GstMapInfo map;
    if (!gst_buffer_map(buffer, &map, GST_MAP_READ))
      throw Error(Errc::InvalidArgument, "cannot map a buffer for reading");
    Bytes out = Bytes::copy_from(map.data, map.size);
    gst_buffer_unmap(buffer, &map);
    return out;
  }
  auto* m = new MappedBuffer{gst_buffer_ref(buffer), {}};
  if (!gst_buffer_map(m->buffer, &m->map, GST_MAP_READ)) {
    gst_buffer_unref(m->buffer);
    delete m;
    throw Error(Errc::InvalidArgument, "cannot map a buffer for reading");
  }
  if (m->map.size == 0) {
    release_mapped(m);
    return {};
  }
  return Bytes::wrap(m->map.data, m->map.size, release_mapped, m);
}

GstBuffer* buffer_from_bytes(const Bytes& bytes) {
  if (bytes.empty()) return gst_buffer_new();
  return wrap(bytes.data(), bytes.size(), new Bytes(bytes), release_holder<Bytes>);
}

}  // namespace arcly::gst
