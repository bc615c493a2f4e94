// RtpGopCache — the RTP packets a shared media's video payloader sent since its
// previous keyframe, so that a reader who joins the shared media can be sent the
// current GOP before the live packets: instant start without a media of its own.
//
// A probe on the payloader's sink pad notes a keyframe (a buffer without
// DELTA_UNIT); a probe on its source pad records every packet it pushes (the
// payloader pushes a frame's packets, parameter sets first, from its chain
// function, so the packets after the note are the keyframe's). The cache keeps
// the packets from the start of the GOP before the current one: a reader
// snapshots the current GOP when its PLAY response is built, and the packets
// sent between then and its first live packet are still there to close the gap.
// Entries are references to the packets the live readers get (no copies);
// kMaxBytes bounds a GOP that never ends.
//
// Threads: the probes run on the payloader's streaming thread; snapshot() and
// after() from any thread (one mutex, held for a copy of the refs).
#pragma once

#include <gst/gst.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

namespace arcly::egress {

// References to packets; unrefs them when destroyed.
class RtpPackets {
 public:
  RtpPackets() = default;
  RtpPackets(RtpPackets&& o) noexcept : buffers_(std::move(o.buffers_)) {}
  RtpPackets& operator=(RtpPackets&& o) noexcept;
  RtpPackets(const RtpPackets&) = delete;
  RtpPackets& operator=(const RtpPackets&) = delete;
  ~RtpPackets();
  void push(GstBuffer* ref) { buffers_.push_back(ref); }  // takes the ref
  bool empty() const { return buffers_.empty(); }
  std::size_t size() const { return buffers_.size(); }
  GstBuffer* operator[](std::size_t i) const { return buffers_[i]; }
  GstBuffer* back() const { return buffers_.back(); }

 private:
  std::vector<GstBuffer*> buffers_;
};

// An RTP packet's sequence number and timestamp (0 if it is too short).
std::uint16_t rtp_seq(GstBuffer* packet);
std::uint32_t rtp_timestamp(GstBuffer* packet);
// `a` comes before `b` in RTP sequence order (modulo 2^16).
inline bool seq_before(std::uint16_t a, std::uint16_t b) {
  return static_cast<std::int16_t>(static_cast<std::uint16_t>(a - b)) < 0;
}

class RtpGopCache {
 public:
  static constexpr std::size_t kMaxBytes = 64u << 20;
  ~RtpGopCache();

  // Installs the probes on `payloader` and keeps the cache on `rtp_pad` (the
  // ghost pad gst-rtsp-server makes a stream of) for find().
  static void attach(GstElement* payloader, GstPad* rtp_pad);
  // The cache of a stream's pad (gst_rtsp_stream_get_srcpad: a ghost of
  // `rtp_pad`), or null.
  static std::shared_ptr<RtpGopCache> find(GstPad* rtp_pad);

  // The current GOP, from its first packet (empty before the first keyframe).
  RtpPackets snapshot() const;
  // The packets after `seq` (exclusive) that are older than `until` (exclusive).
  RtpPackets between(std::uint16_t seq, std::uint16_t until) const;

 private:
  struct Entry {
    GstBuffer* packet;
    std::uint16_t seq;
    bool starts_gop;
  };
  static GstPadProbeReturn on_input(GstPad*, GstPadProbeInfo* info, gpointer self);
  static GstPadProbeReturn on_output(GstPad*, GstPadProbeInfo* info, gpointer self);
  void record(GstBuffer* packet);
  void trim();  // with mutex_

  bool keyframe_next_ = false;  // streaming thread only
  mutable std::mutex mutex_;
  std::deque<Entry> entries_;
  std::size_t bytes_ = 0;
  std::size_t gops_ = 0;  // entries that start a GOP
};

}  // namespace arcly::egress
