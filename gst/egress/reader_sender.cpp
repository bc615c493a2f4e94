#include "reader_sender.hpp"

#include <linux/sockios.h>
#include <linux/tcp.h>  // tcp_info's tcpi_bytes_acked
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace arcly::egress {

namespace {

// The GSourceFuncs of a GstRTSPWatch, to recognise the source being dispatched
// (taken from a watch made once on an unconnected socket).
const GSourceFuncs* watch_source_funcs() {
  static const GSourceFuncs* const funcs = []() -> const GSourceFuncs* {
    GSocket* socket =
        g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, nullptr);
    if (!socket) return nullptr;
    const GSourceFuncs* out = nullptr;
    GstRTSPConnection* conn = nullptr;
    if (gst_rtsp_connection_create_from_socket(socket, "127.0.0.1", 0, nullptr, &conn) ==
        GST_RTSP_OK) {
      GstRTSPWatchFuncs callbacks{};
      if (GstRTSPWatch* watch = gst_rtsp_watch_new(conn, &callbacks, nullptr, nullptr)) {
        out = reinterpret_cast<GSource*>(watch)->source_funcs;
        gst_rtsp_watch_unref(watch);
      }
      gst_rtsp_connection_free(conn);
    }
    g_object_unref(socket);
    return out;
  }();
  return funcs;
}

constexpr std::uint32_t kVideoClockRate = 90000;  // every RTP video payload format we offer

// ReaderSender::kSqueeze in RTP time.
std::uint32_t squeeze_ticks() {
  return static_cast<std::uint32_t>(
      gst_util_uint64_scale(ReaderSender::kSqueeze, kVideoClockRate, GST_SECOND));
}

void write_timestamp(GstBuffer* packet, std::uint32_t ts) {
  const guint8 bytes[4] = {static_cast<guint8>(ts >> 24), static_cast<guint8>(ts >> 16),
                           static_cast<guint8>(ts >> 8), static_cast<guint8>(ts)};
  gst_buffer_fill(packet, 4, bytes, 4);  // copies only the memory that holds the header
}

// The client's watch: requests are handled while its read source (a child of
// the watch, whose callback data is the watch) is dispatched.
GstRTSPWatch* dispatching_watch() {
  GSource* current = g_main_current_source();
  const GSourceFuncs* funcs = watch_source_funcs();
  if (!current || !funcs || !current->callback_funcs || !current->callback_funcs->get)
    return nullptr;
  GSourceFunc func = nullptr;
  gpointer data = nullptr;
  current->callback_funcs->get(current->callback_data, current, &func, &data);
  auto* watch = static_cast<GSource*>(data);
  if (!watch || watch->source_funcs != funcs) return nullptr;
  return reinterpret_cast<GstRTSPWatch*>(watch);
}

// Bytes written to the TCP socket `fd` since it connected: those acknowledged and
// those still in its send queue. 0 if unknown.
std::uint64_t socket_bytes_written(int fd, int* in_kernel_queue) {
  int outq = 0;
  if (ioctl(fd, SIOCOUTQ, &outq) != 0 || outq < 0) outq = 0;
  if (in_kernel_queue) *in_kernel_queue = outq;
  tcp_info info{};
  socklen_t len = sizeof info;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
      len < offsetof(tcp_info, tcpi_bytes_acked) + sizeof info.tcpi_bytes_acked)
    return 0;
  return info.tcpi_bytes_acked + static_cast<std::uint64_t>(outq);
}

std::string request_uri(GstRTSPStreamTransport* trans) {
  const GstRTSPUrl* url = gst_rtsp_stream_transport_get_url(trans);
  if (!url) return {};
  gchar* s = gst_rtsp_url_get_request_uri(url);
  std::string out = s ? s : "";
  g_free(s);
  return out;
}

}  // namespace

ReaderSender::ReaderSender(GstRTSPWatch* watch, GSocket* socket, std::shared_ptr<Counters> counters,
                           bool count_sent, std::function<gsize()> backlog_bytes,
                           std::function<void(gsize)> slow)
    : watch_(watch),
      socket_(socket),
      counters_(std::move(counters)),
      count_sent_(count_sent),
      backlog_bytes_(std::move(backlog_bytes)),
      slow_(std::move(slow)) {}

ReaderSender::~ReaderSender() {
  for (auto& [channel, trans] : rtcp_transports_) g_object_unref(trans);
  if (socket_) g_object_unref(socket_);
  gst_rtsp_watch_unref(watch_);
}

ReaderSender* ReaderSender::install(GstRTSPClient* client, std::shared_ptr<Counters> counters,
                                    bool count_sent, std::function<gsize()> backlog_bytes,
                                    std::function<void(gsize)> slow) {
  GstRTSPWatch* watch = dispatching_watch();
  if (!watch) return nullptr;
  g_source_ref(reinterpret_cast<GSource*>(watch));
  GstRTSPConnection* conn = gst_rtsp_client_get_connection(client);
  GSocket* socket = conn ? gst_rtsp_connection_get_write_socket(conn) : nullptr;
  if (socket) g_object_ref(socket);
  auto* self = new ReaderSender(watch, socket, std::move(counters), count_sent,
                                std::move(backlog_bytes), std::move(slow));
  self->refresh_bound(g_get_monotonic_time());
  if (socket) self->written_at_install_ = socket_bytes_written(g_socket_get_fd(socket), nullptr);
  // The client's reference to its watch goes with its old send function; ours
  // keeps the watch alive until the client drops this function (on close).
  gst_rtsp_client_set_send_messages_func(client, &ReaderSender::send, self,
                                         [](gpointer p) { delete static_cast<ReaderSender*>(p); });
  // gst-rtsp-server (1.22 to 1.26) calls a send-messages function with the
  // data of the plain send function (priv->send_data), so set that too (no
  // function, no notify: the one above owns `self`).
  gst_rtsp_client_set_send_func(client, nullptr, self, nullptr);
  return self;
}

void ReaderSender::prepare(GstRTSPContext* ctx) {
  if (!ctx || !ctx->sessmedia || !ctx->response) return;
  struct Part {
    std::string url;
    std::string info;
  };
  std::vector<Part> ours;
  GPtrArray* transports = gst_rtsp_session_media_get_transports(ctx->sessmedia);
  for (guint i = 0; transports && i < transports->len; ++i) {
    auto* trans = static_cast<GstRTSPStreamTransport*>(g_ptr_array_index(transports, i));
    const GstRTSPTransport* t = gst_rtsp_stream_transport_get_transport(trans);
    if (!t || t->lower_transport != GST_RTSP_LOWER_TRANS_TCP) continue;
    const auto channel = static_cast<guint8>(t->interleaved.min);
    rtp_channels_[channel / 64].fetch_or(std::uint64_t{1} << (channel % 64),
                                         std::memory_order_relaxed);
    {
      std::lock_guard lock(mutex_);
      auto& slot = rtcp_transports_[static_cast<guint8>(t->interleaved.max)];
      if (slot) g_object_unref(slot);
      slot = GST_RTSP_STREAM_TRANSPORT(g_object_ref(trans));
    }
    GstPad* pad = gst_rtsp_stream_get_srcpad(gst_rtsp_stream_transport_get_stream(trans));
    std::shared_ptr<RtpGopCache> cache = RtpGopCache::find(pad);
    if (pad) gst_object_unref(pad);
    if (!cache) continue;
    Burst burst{cache->snapshot(), 0, 0, 0, cache};
    if (burst.packets.empty()) continue;
    burst.last_seq = rtp_seq(burst.packets.back());
    burst.first_ts = rtp_timestamp(burst.packets[0]);
    burst.edge_ts = rtp_timestamp(burst.packets.back());
    const std::uint32_t squeeze = squeeze_ticks();
    const std::uint32_t start_ts =
        burst.edge_ts - burst.first_ts > squeeze ? burst.edge_ts - squeeze : burst.first_ts;
    const std::string url = request_uri(trans);
    ours.push_back({url, "url=" + url + ";seq=" + std::to_string(rtp_seq(burst.packets[0])) +
                             ";rtptime=" + std::to_string(start_ts)});
    std::lock_guard lock(mutex_);
    if (bursts_.insert_or_assign(channel, std::move(burst)).second)
      pending_.fetch_add(1, std::memory_order_release);
  }
  if (transports) g_ptr_array_unref(transports);
  if (ours.empty()) return;

  // RTP-Info: ours for the streams with a burst, gst-rtsp-server's for the rest.
  std::string info;
  gchar* old = nullptr;
  if (gst_rtsp_message_get_header(ctx->response, GST_RTSP_HDR_RTP_INFO, &old, 0) == GST_RTSP_OK &&
      old) {
    std::string_view rest = old;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      std::string_view part = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      while (part.starts_with(' ')) part.remove_prefix(1);
      const std::string_view url = part.substr(0, part.find(';'));
      bool replaced = false;
      for (const Part& p : ours) replaced |= url == "url=" + p.url;
      if (replaced || part.empty()) continue;
      info += (info.empty() ? "" : ", ") + std::string(part);
    }
  }
  for (const Part& p : ours) info += (info.empty() ? "" : ", ") + p.info;
  gst_rtsp_message_remove_header(ctx->response, GST_RTSP_HDR_RTP_INFO, -1);
  gst_rtsp_message_add_header(ctx->response, GST_RTSP_HDR_RTP_INFO, info.c_str());
}

gboolean ReaderSender::send(GstRTSPClient*, GstRTSPMessage* messages, guint n, gboolean,
                            gpointer self) {
  return static_cast<ReaderSender*>(self)->send(messages, n);
}

gboolean ReaderSender::send(GstRTSPMessage* messages, guint n) {
  guint8 channel = 0;
  const bool data = n > 0 && gst_rtsp_message_get_type(&messages[0]) == GST_RTSP_MESSAGE_DATA &&
                    gst_rtsp_message_parse_data(&messages[0], &channel) == GST_RTSP_OK;
  const bool rtp =
      data && (rtp_channels_[channel / 64].load(std::memory_order_relaxed) >> (channel % 64) & 1);
  std::optional<Burst> burst;
  if (data && pending_.load(std::memory_order_acquire) > 0) {
    std::lock_guard lock(mutex_);
    if (auto it = bursts_.find(channel); it != bursts_.end()) {
      burst = std::move(it->second);
      bursts_.erase(it);
      pending_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  std::vector<GstRTSPMessage> joined;
  GstRTSPMessage* out = messages;
  guint count = n;
  if (burst) {
    joined = join(*burst, channel, messages, n);
    out = joined.data();
    count = static_cast<guint>(joined.size());
  }
  if (rtp && count_sent_) {
    std::uint64_t bytes = 0;
    for (guint i = 0; i < count; ++i) {
      GstBuffer* body = nullptr;
      if (gst_rtsp_message_get_body_buffer(&out[i], &body) == GST_RTSP_OK && body)
        bytes += gst_buffer_get_size(body);
    }
    counters_->bytes.fetch_add(bytes, std::memory_order_relaxed);
    counters_->packets.fetch_add(count, std::memory_order_relaxed);
  }
  // gst_rtsp_watch_send_messages keeps per-message state on the stack (alloca):
  // a long GOP goes in parts, each one entry of the watch's backlog.
  GstRTSPResult res = GST_RTSP_OK;
  for (guint done = 0; done < count && res == GST_RTSP_OK;) {
    const guint part = std::min(count - done, kMessagesPerWrite);
    guint id = 0;
    res = gst_rtsp_watch_send_messages(watch_, out + done, part, &id);
    if (res == GST_RTSP_OK && data) handed_ += wire_bytes(out + done, part);
    done += part;
  }
  for (GstRTSPMessage& m : joined) gst_rtsp_message_unset(&m);
  if (rtp) sample_queue();
  if (res == GST_RTSP_ENOMEM && !std::exchange(slow_reported_, true) && slow_) slow_(bound_);
  if (data && !rtp && res == GST_RTSP_OK) report_sent(channel);
  return res == GST_RTSP_OK;
}

// See "Back pressure": the bound only grows.
void ReaderSender::refresh_bound(gint64 now) {
  next_bound_us_ = now + kBoundRefreshUs;
  const gsize wanted = backlog_bytes_ ? backlog_bytes_() : 0;
  if (wanted <= bound_) return;
  bound_ = wanted;
  gst_rtsp_watch_set_send_backlog(watch_, bound_, 0);  // bytes, not writes
  counters_->queue_limit.store(bound_, std::memory_order_relaxed);
}

void ReaderSender::sample_queue() {
  const gint64 now = g_get_monotonic_time();
  if (now >= next_bound_us_) refresh_bound(now);
  if (now < next_sample_us_ || !socket_ || g_socket_is_closed(socket_)) return;
  next_sample_us_ = now + kQueueSampleUs;
  int in_kernel = 0;
  const std::uint64_t total = socket_bytes_written(g_socket_get_fd(socket_), &in_kernel);
  const std::uint64_t written = total > written_at_install_ ? total - written_at_install_ : 0;
  const std::uint64_t in_watch = total > 0 && handed_ > written ? handed_ - written : 0;
  counters_->queued.store(static_cast<std::uint64_t>(in_kernel) + in_watch,
                          std::memory_order_relaxed);
}

// What `n` data messages take on the wire: '$', channel, length, body.
std::uint64_t ReaderSender::wire_bytes(GstRTSPMessage* messages, guint n) {
  std::uint64_t bytes = 0;
  for (guint i = 0; i < n; ++i) {
    GstBuffer* body = nullptr;
    if (gst_rtsp_message_get_type(&messages[i]) == GST_RTSP_MESSAGE_DATA &&
        gst_rtsp_message_get_body_buffer(&messages[i], &body) == GST_RTSP_OK && body)
      bytes += 4 + gst_buffer_get_size(body);
  }
  return bytes;
}

void ReaderSender::report_sent(guint8 rtcp_channel) {
  GstRTSPStreamTransport* trans = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (auto it = rtcp_transports_.find(rtcp_channel); it != rtcp_transports_.end())
      trans = GST_RTSP_STREAM_TRANSPORT(g_object_ref(it->second));
  }
  GMainContext* context = g_source_get_context(reinterpret_cast<GSource*>(watch_));
  if (!trans || !context) {
    if (trans) g_object_unref(trans);
    return;
  }
  GSource* idle = g_idle_source_new();
  g_source_set_callback(
      idle,
      [](gpointer t) {
        gst_rtsp_stream_transport_message_sent(GST_RTSP_STREAM_TRANSPORT(t));
        return G_SOURCE_REMOVE;
      },
      trans, g_object_unref);
  g_source_attach(idle, context);
  g_source_unref(idle);
}

// The burst (restamped), the packets sent since its snapshot, then the live
// messages it does not cover.
std::vector<GstRTSPMessage> ReaderSender::join(const Burst& burst, guint8 channel,
                                               GstRTSPMessage* live, guint n) {
  std::uint16_t first_live = burst.last_seq + 1;
  std::vector<GstBuffer*> live_bodies;
  for (guint i = 0; i < n; ++i) {
    GstBuffer* body = nullptr;
    if (gst_rtsp_message_get_body_buffer(&live[i], &body) != GST_RTSP_OK || !body) continue;
    if (live_bodies.empty()) first_live = rtp_seq(body);
    live_bodies.push_back(body);
  }
  RtpPackets gap = burst.cache->between(burst.last_seq, first_live);

  const std::uint32_t span = burst.edge_ts - burst.first_ts;
  const std::uint32_t squeeze = squeeze_ticks();
  std::vector<GstRTSPMessage> out;
  out.reserve(burst.packets.size() + gap.size() + live_bodies.size());
  const auto add = [&](GstBuffer* body, bool take) {
    GstRTSPMessage m{};
    gst_rtsp_message_init_data(&m, channel);
    if (take)
      gst_rtsp_message_take_body_buffer(&m, body);
    else
      gst_rtsp_message_set_body_buffer(&m, body);
    out.push_back(m);
  };
  for (std::size_t i = 0; i < burst.packets.size(); ++i) {
    GstBuffer* packet = burst.packets[i];
    if (span <= squeeze) {
      add(packet, false);
      continue;
    }
    const std::uint32_t offset = rtp_timestamp(packet) - burst.first_ts;
    const auto squeezed =
        static_cast<std::uint32_t>(gst_util_uint64_scale(std::min(offset, span), squeeze, span));
    GstBuffer* copy = gst_buffer_copy(packet);
    write_timestamp(copy, burst.edge_ts - squeeze + squeezed);
    add(copy, true);
  }
  for (std::size_t i = 0; i < gap.size(); ++i) add(gap[i], false);
  const std::uint16_t covered = gap.empty() ? burst.last_seq : rtp_seq(gap.back());
  for (GstBuffer* body : live_bodies)
    if (seq_before(covered, rtp_seq(body))) add(body, false);
  return out;
}

}  // namespace arcly::egress
