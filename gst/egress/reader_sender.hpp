// ReaderSender — the sending of a TCP reader's RTSP connection: a reader who
// stops reading is closed and logged once, and a reader who joins a shared
// media starts with a picture.
//
// It takes over the connection's sending (gst_rtsp_client_set_send_messages_func)
// and writes to the client's own GstRTSPWatch, as gst-rtsp-server's default does.
//
// Back pressure: the default send function feeds gst-rtsp-server's per-transport
// backlog (100 items or 10 s), and a reader who fills it is only dropped from
// its stream ("Dropping slow transport", at ERROR in rtspstream's debug log):
// its connection stays open, silent, and nothing tells the operator. Here every
// packet goes straight to the watch, with its backlog bound set in bytes (the
// caller's budget, e.g. 10 s of the stream; gst-rtsp-server's 100 writes would
// be 100 packets here, less than one keyframe). The budget is asked again every
// kBoundRefreshUs and the bound only grows: a camera whose bitrate rises (a
// still scene that starts to move) must not leave its readers a bound of a
// fraction of a second, and one that falls must not close a reader who is
// behind by what was fine a moment ago. A reader who lets it fill, after the
// socket's own buffer, is closed by gst-rtsp-server, and `slow` is called once
// (with the bound) so that it is logged and counted.
//
// Joining a shared media: gst-rtsp-server sends a shared media's packets to every
// reader from one payloader per stream; a reader who joins mid-GOP would wait
// for the next keyframe, as with any plain server. So, for such a reader:
// * when the PLAY response is built (prepare()), each video stream's current GOP
//   (RtpGopCache) is snapshot and RTP-Info points at the snapshot's first packet;
// * before that stream's first live packet, the snapshot and the packets sent
//   meanwhile go out in one write, and live packets the burst covered are skipped;
// * the burst is restamped (copies; the live packets are untouched) so that it
//   plays within kSqueeze before its newest packet: the decoder shows the
//   keyframe at once and is at the live edge kSqueeze later, as arclysrc's
//   live-edge start is for a media of its own.
// A per-reader media has no RtpGopCache: its packets pass unchanged.
//
// Queued: what a reader has not yet received is in two places, the watch's own
// queue (up to the backlog bound) and the kernel's send queue. gst-rtsp-server
// has no getter for the first, so it is counted: the bytes this function handed
// to the watch (data messages with their 4-byte interleave header) less the
// bytes the connection has written to its socket since install() (TCP_INFO's
// bytes acknowledged plus SIOCOUTQ). RTSP responses after install() are not
// counted (a few hundred bytes: the figure errs low by that).
//
// Waking the stream: gst-rtsp-server's send thread handles a pending RTCP sample
// before a pending RTP one and then sleeps until something changes; the default
// send function wakes it by reporting each sent message (message_sent). So this
// one reports the RTCP messages it sends (from the watch's loop, outside the
// client's send lock, which the report may take again): without that, RTP stalls
// for every reader of the stream the first time RTCP goes first.
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

class ReaderSender {
 public:
  static constexpr GstClockTime kSqueeze = 100 * GST_MSECOND;
  static constexpr guint kMessagesPerWrite = 512;
  static constexpr gint64 kQueueSampleUs = 100'000;
  static constexpr gint64 kBoundRefreshUs = 2'000'000;

  struct Counters {
    std::atomic<std::uint64_t> bytes{0};    // RTP sent
    std::atomic<std::uint64_t> packets{0};  // RTP sent
    // Bytes sent to the reader and not yet acknowledged by it: what the
    // connection's watch holds plus its kernel send queue. Sampled at most every
    // kQueueSampleUs while sending (see "Queued" above).
    std::atomic<std::uint64_t> queued{0};
    // The bound on the connection's own queue (see "Back pressure").
    std::atomic<std::uint64_t> queue_limit{0};
  };

  // Takes over `client`'s sending. Called while the client handles a request
  // (the watch is the source being dispatched); null if that is not a watch.
  // `slow` is called once, with the bound, if the reader cannot keep up.
  // `counters` get the send queue, and the RTP sent if `count_sent` (a
  // per-reader media's own pad probe counts that). `backlog_bytes` is the bound
  // on what the watch queues beyond the socket (asked now and then: see "Back
  // pressure"; called with the client's send lock held).
  static ReaderSender* install(GstRTSPClient* client, std::shared_ptr<Counters> counters,
                               bool count_sent, std::function<gsize()> backlog_bytes,
                               std::function<void(gsize)> slow);

  // For the first PLAY response, in ctx->response: learns the TCP channels of
  // ctx->sessmedia and, for each stream with an RtpGopCache, snapshots its GOP
  // and rewrites RTP-Info.
  void prepare(GstRTSPContext* ctx);

  ~ReaderSender();

 private:
  struct Burst {
    RtpPackets packets;  // the snapshot, restamped when sent
    std::uint16_t last_seq = 0;
    std::uint32_t first_ts = 0;  // the snapshot's oldest and newest RTP time
    std::uint32_t edge_ts = 0;
    std::shared_ptr<RtpGopCache> cache;
  };
  ReaderSender(GstRTSPWatch* watch, GSocket* socket, std::shared_ptr<Counters> counters,
               bool count_sent, std::function<gsize()> backlog_bytes,
               std::function<void(gsize)> slow);
  static gboolean send(GstRTSPClient*, GstRTSPMessage* messages, guint n, gboolean close,
                       gpointer self);
  gboolean send(GstRTSPMessage* messages, guint n);
  static std::vector<GstRTSPMessage> join(const Burst& burst, guint8 channel, GstRTSPMessage* live,
                                          guint n);

  void report_sent(guint8 rtcp_channel);  // see "Waking the stream"
  void sample_queue();                    // under the client's send lock
  void refresh_bound(gint64 now);         // under the client's send lock
  static std::uint64_t wire_bytes(GstRTSPMessage* messages, guint n);

  GstRTSPWatch* watch_;  // a reference
  GSocket* socket_;      // a reference (may be null): the connection's, for its send queue
  std::shared_ptr<Counters> counters_;
  bool count_sent_;
  gint64 next_sample_us_ = 0;             // under the client's send lock
  std::uint64_t handed_ = 0;              // under the client's send lock: data bytes the watch took
  std::uint64_t written_at_install_ = 0;  // the socket's bytes written before install()
  std::function<gsize()> backlog_bytes_;
  gsize bound_ = 0;           // under the client's send lock: the watch's backlog bound
  gint64 next_bound_us_ = 0;  // under the client's send lock
  std::function<void(gsize)> slow_;
  bool slow_reported_ = false;  // under the client's send lock
  std::mutex mutex_;
  std::atomic<int> pending_{0};     // bursts_.size(), read without the mutex
  std::map<guint8, Burst> bursts_;  // by RTP channel
  std::map<guint8, GstRTSPStreamTransport*> rtcp_transports_;  // by RTCP channel, references
  std::atomic<std::uint64_t> rtp_channels_[4]{};               // bit per channel that carries RTP
};

}  // namespace arcly::egress
