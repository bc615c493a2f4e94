// JoiningReader — a TCP reader who joins a shared media starts with a picture.
//
// gst-rtsp-server sends a shared media's packets to every reader from one
// payloader per stream; a reader who joins mid-GOP would wait for the next
// keyframe, as with any plain server. So, for such a reader, this object takes
// over the connection's sending (gst_rtsp_client_set_send_messages_func), writing
// to the client's own GstRTSPWatch as gst-rtsp-server's default does, and:
// * when the PLAY response is built (prepare()), snapshots each video stream's
//   current GOP (RtpGopCache) and points RTP-Info at the snapshot's first packet;
// * before that stream's first live packet, sends the snapshot and the packets
//   sent meanwhile, in one write, and skips live packets the burst covered;
// * restamps the burst (copies; the live packets are untouched) so that it plays
//   within kSqueeze before its newest packet: the decoder shows the keyframe at
//   once and is at the live edge kSqueeze later, as arclysrc's live-edge start is
//   for a media of its own.
// Everything else goes to the watch unchanged.
//
// Waking the stream: gst-rtsp-server's send thread handles a pending RTCP sample
// before a pending RTP one and then sleeps until something changes; the default
// send function wakes it by reporting each sent message (message_sent). So this
// one reports the RTCP messages it sends (from the watch's loop, outside the
// client's send lock, which the report may take again): without that, RTP stalls
// for every reader of the stream the first time RTCP goes first.
//
// Back pressure: gst-rtsp-server keeps a TCP reader's packets in a per-transport
// backlog driven by its default send function's private bookkeeping. Here every
// packet goes straight to the watch, whose backlog (100 writes) is the bound: a
// reader who lets it fill is closed by gst-rtsp-server, and logged once here.
//
// Threads: install() and prepare() on the client's thread, inside the request's
// dispatch; send() with the client's send lock held, from the client's thread
// (responses) and the streams' send threads (data). One mutex guards the bursts.
#pragma once

#include <gst/rtsp-server/rtsp-server.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rtp_gop_cache.hpp"

namespace arcly::egress {

class JoiningReader {
 public:
  static constexpr GstClockTime kSqueeze = 100 * GST_MSECOND;
  static constexpr guint kMessagesPerWrite = 512;

  struct Counters {
    std::atomic<std::uint64_t> bytes{0};
    std::atomic<std::uint64_t> packets{0};
  };

  // Takes over `client`'s sending. Called while the client handles a request
  // (the watch is the source being dispatched); null if that is not a watch.
  // `slow` is called once if the reader cannot keep up.
  static JoiningReader* install(GstRTSPClient* client, std::shared_ptr<Counters> counters,
                                std::function<void()> slow);

  // For the PLAY response in ctx->response: snapshots the GOP of each TCP
  // stream of ctx->sessmedia that has an RtpGopCache and rewrites RTP-Info.
  void prepare(GstRTSPContext* ctx);

  ~JoiningReader();

 private:
  struct Burst {
    RtpPackets packets;  // the snapshot, restamped when sent
    std::uint16_t last_seq = 0;
    std::uint32_t first_ts = 0;  // the snapshot's oldest and newest RTP time
    std::uint32_t edge_ts = 0;
    std::shared_ptr<RtpGopCache> cache;
  };
  JoiningReader(GstRTSPWatch* watch, std::shared_ptr<Counters> counters,
                std::function<void()> slow);
  static gboolean send(GstRTSPClient*, GstRTSPMessage* messages, guint n, gboolean close,
                       gpointer self);
  gboolean send(GstRTSPMessage* messages, guint n);
  static std::vector<GstRTSPMessage> join(const Burst& burst, guint8 channel, GstRTSPMessage* live,
                                          guint n);

  void report_sent(guint8 rtcp_channel);  // see "Waking the stream"

  GstRTSPWatch* watch_;  // a reference
  std::shared_ptr<Counters> counters_;
  std::function<void()> slow_;
  bool slow_reported_ = false;  // under the client's send lock
  std::mutex mutex_;
  std::atomic<int> pending_{0};     // bursts_.size(), read without the mutex
  std::map<guint8, Burst> bursts_;  // by RTP channel
  std::map<guint8, GstRTSPStreamTransport*> rtcp_transports_;  // by RTCP channel, references
  std::atomic<std::uint64_t> rtp_channels_[4]{};               // bit per channel that carries RTP
};

}  // namespace arcly::egress
