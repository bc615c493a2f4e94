#include "rtp_gop_cache.hpp"

#include <utility>

namespace arcly::egress {

RtpPackets& RtpPackets::operator=(RtpPackets&& o) noexcept {
  if (this != &o) {
    for (GstBuffer* b : buffers_) gst_buffer_unref(b);
    buffers_ = std::move(o.buffers_);
  }
  return *this;
}

RtpPackets::~RtpPackets() {
  for (GstBuffer* b : buffers_) gst_buffer_unref(b);
}

namespace {

// The fixed RTP header: sequence number at bytes 2-3, timestamp at 4-7.
std::uint32_t header_field(GstBuffer* packet, gsize offset, gsize size) {
  guint8 bytes[4] = {};
  if (gst_buffer_extract(packet, offset, bytes, size) != size) return 0;
  std::uint32_t v = 0;
  for (gsize i = 0; i < size; ++i) v = (v << 8) | bytes[i];
  return v;
}

using Holder = std::shared_ptr<RtpGopCache>;  // qdata and probe data: a heap shared_ptr
void delete_holder(gpointer p) {
  delete static_cast<Holder*>(p);
}

GQuark cache_quark() {
  static const GQuark q = g_quark_from_static_string("arcly-rtp-gop-cache");
  return q;
}

}  // namespace

std::uint16_t rtp_seq(GstBuffer* packet) {
  return static_cast<std::uint16_t>(header_field(packet, 2, 2));
}

std::uint32_t rtp_timestamp(GstBuffer* packet) {
  return header_field(packet, 4, 4);
}

RtpGopCache::~RtpGopCache() {
  for (const Entry& e : entries_) gst_buffer_unref(e.packet);
}

void RtpGopCache::attach(GstElement* payloader, GstPad* rtp_pad) {
  auto* holder = new Holder(std::make_shared<RtpGopCache>());
  g_object_set_qdata_full(G_OBJECT(rtp_pad), cache_quark(), holder, delete_holder);
  // The probes hold the cache too: the pad's qdata may go before the payloader.
  GstPad* sink = gst_element_get_static_pad(payloader, "sink");
  gst_pad_add_probe(sink, GST_PAD_PROBE_TYPE_BUFFER, on_input, new Holder(*holder), delete_holder);
  gst_object_unref(sink);
  GstPad* src = gst_element_get_static_pad(payloader, "src");
  gst_pad_add_probe(
      src, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
      on_output, new Holder(*holder), delete_holder);
  gst_object_unref(src);
}

std::shared_ptr<RtpGopCache> RtpGopCache::find(GstPad* rtp_pad) {
  // gst-rtsp-media ghosts our pad again on its own bin: follow the targets.
  GstPad* pad = rtp_pad ? GST_PAD(gst_object_ref(rtp_pad)) : nullptr;
  std::shared_ptr<RtpGopCache> found;
  while (pad && !found) {
    if (auto* holder = static_cast<Holder*>(g_object_get_qdata(G_OBJECT(pad), cache_quark())))
      found = *holder;
    GstPad* next = GST_IS_GHOST_PAD(pad) ? gst_ghost_pad_get_target(GST_GHOST_PAD(pad)) : nullptr;
    gst_object_unref(pad);
    pad = next;
  }
  if (pad) gst_object_unref(pad);
  return found;
}

GstPadProbeReturn RtpGopCache::on_input(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto& self = **static_cast<Holder*>(data);
  if (!GST_BUFFER_FLAG_IS_SET(GST_PAD_PROBE_INFO_BUFFER(info), GST_BUFFER_FLAG_DELTA_UNIT))
    self.keyframe_next_ = true;
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn RtpGopCache::on_output(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto& self = **static_cast<Holder*>(data);
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER) {
    self.record(GST_PAD_PROBE_INFO_BUFFER(info));
  } else if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    GstBufferList* list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
    for (guint i = 0, n = gst_buffer_list_length(list); i < n; ++i)
      self.record(gst_buffer_list_get(list, i));
  }
  return GST_PAD_PROBE_OK;
}

void RtpGopCache::record(GstBuffer* packet) {
  const bool starts_gop = std::exchange(keyframe_next_, false);
  Entry e{gst_buffer_ref(packet), rtp_seq(packet), starts_gop};
  std::lock_guard lock(mutex_);
  if (entries_.empty() && !starts_gop) {  // nothing to start a reader at yet
    gst_buffer_unref(e.packet);
    return;
  }
  bytes_ += gst_buffer_get_size(packet);
  gops_ += starts_gop;
  entries_.push_back(e);
  trim();
}

// Keeps the GOP before the current one (its packets may still be owed to a
// reader that snapshotted it) and at most kMaxBytes.
void RtpGopCache::trim() {
  const auto drop_front = [this] {
    const Entry& e = entries_.front();
    bytes_ -= gst_buffer_get_size(e.packet);
    gops_ -= e.starts_gop;
    gst_buffer_unref(e.packet);
    entries_.pop_front();
  };
  while (gops_ > 2) {
    drop_front();
    while (!entries_.empty() && !entries_.front().starts_gop) drop_front();
  }
  while (bytes_ > kMaxBytes && entries_.size() > 1) drop_front();
}

RtpPackets RtpGopCache::snapshot() const {
  RtpPackets out;
  std::lock_guard lock(mutex_);
  auto it = entries_.end();
  while (it != entries_.begin()) {
    --it;
    if (it->starts_gop) break;
  }
  if (it == entries_.end() || !it->starts_gop) return out;
  for (; it != entries_.end(); ++it) out.push(gst_buffer_ref(it->packet));
  return out;
}

RtpPackets RtpGopCache::between(std::uint16_t seq, std::uint16_t until) const {
  RtpPackets out;
  std::lock_guard lock(mutex_);
  for (const Entry& e : entries_) {
    if (seq_before(seq, e.seq) && seq_before(e.seq, until)) out.push(gst_buffer_ref(e.packet));
  }
  return out;
}

}  // namespace arcly::egress
