// ServerSession — the server side of one RTMP connection as a pure state
// machine: bytes in, events and reply bytes out. No sockets, no threads, no
// GStreamer; the RTMP worker drives it from a TcpServer connection, the unit
// tests byte by byte, the fuzzer with arbitrary input.
//
// Phases: handshake (C0+C1 in -> S0+S1+S2 out, then C2), then chunks. The
// handshake is the plain one (version 3, no digest): S2 echoes C1, C2 is read
// and not checked.
//
// Messages handled on the chunk stream:
// - protocol control: Set Chunk Size (1), Abort (2), Acknowledgement (3, ignored),
//   User Control (4: Ping Request answered), Window Acknowledgement Size (5:
//   the session acknowledges every `window` received bytes), Set Peer Bandwidth (6);
// - AMF0 commands (20, and 17 with its format byte): connect, releaseStream,
//   FCPublish, createStream, publish, deleteStream, FCUnpublish, closeStream;
//   other commands are ignored (their names in ignored_commands());
// - data (18, 15): @setDataFrame/onMetaData -> MetadataEvent;
// - audio (8) and video (9) of the accepted publish -> MediaEvent.
// connect is answered at once (window, peer bandwidth, chunk size, _result).
// publish is answered by the owner: after a PublishEvent it calls
// accept_publish() or reject_publish(code, description) (an onStatus with
// level "error", e.g. NetStream.Publish.BadName for a key already live).
// Media before the publish is accepted (feed() pauses at the publish so that
// nothing pipelined behind it is lost), or of another message stream, is dropped.
//
// Errors: feed() throws ProtocolError naming what the peer did wrong (bad
// version, oversized message, broken AMF0, publish before connect, ...).
//
// Not thread-safe: one connection's thread owns a session.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "amf0.hpp"
#include "chunk.hpp"

namespace arcly::rtmp {

enum MessageType : std::uint8_t {
  kSetChunkSize = 1,
  kAbort = 2,
  kAcknowledgement = 3,
  kUserControl = 4,
  kWindowAckSize = 5,
  kSetPeerBandwidth = 6,
  kAudio = 8,
  kVideo = 9,
  kDataAmf3 = 15,
  kCommandAmf3 = 17,
  kDataAmf0 = 18,
  kCommandAmf0 = 20,
};

inline constexpr std::size_t kHandshakeSize = 1536;

struct ConnectEvent {
  std::string app;     // "live" (may carry a query: "live?token=...")
  std::string tc_url;  // "rtmp://host:1935/live"
  std::string flash_ver;
};
struct PublishEvent {
  std::string name;  // the stream name as sent ("cam?token=...")
  std::string type;  // "live", "record", "append"
  std::uint32_t stream_id = 0;
};
struct MediaEvent {
  std::uint8_t type = 0;              // kAudio or kVideo
  std::uint32_t timestamp = 0;        // ms, wraps at 2^32
  std::vector<std::uint8_t> payload;  // the FLV tag body
};
struct MetadataEvent {
  AmfValue metadata;  // the onMetaData object or ECMA array
};
struct UnpublishEvent {
  std::string command;  // "deleteStream", "FCUnpublish" or "closeStream"
};
using Event = std::variant<ConnectEvent, PublishEvent, MediaEvent, MetadataEvent, UnpublishEvent>;

struct SessionOptions {
  ChunkLimits limits;
  std::uint32_t out_chunk_size = 4096;
  std::uint32_t window_ack_size = 2500000;  // what we announce
  std::uint32_t max_chunk_size = 1u << 24;  // largest Set Chunk Size accepted
  std::uint64_t seed = 0;                   // S1 random bytes; 0 = random_device
};

class ServerSession {
 public:
  enum class Phase { AwaitC0C1, AwaitC2, Chunks };
  enum class PublishState { None, Pending, Accepted, Rejected };

  explicit ServerSession(SessionOptions options = {});

  // Consumes `bytes` (keeping an incomplete chunk for the next call) and returns
  // the events they completed, in order. Stops right after a PublishEvent: the
  // bytes behind it stay buffered (paused() is true) until the owner has
  // answered and calls feed() again (with more bytes or none). Throws
  // ProtocolError.
  std::vector<Event> feed(std::span<const std::uint8_t> bytes);
  bool paused() const { return paused_; }

  // The reply bytes produced so far (moved out).
  std::vector<std::uint8_t> take_output() { return std::exchange(output_, {}); }
  bool has_output() const { return !output_.empty(); }

  // Answers the pending publish (after a PublishEvent).
  void accept_publish();
  void reject_publish(std::string_view code, std::string_view description);

  Phase phase() const { return phase_; }
  PublishState publish_state() const { return publish_; }
  const std::string& app() const { return app_; }
  std::uint64_t bytes_received() const { return received_; }
  const std::vector<std::string>& ignored_commands() const { return ignored_; }

 private:
  void on_message(Message& m, std::vector<Event>& events);
  void on_command(std::span<const std::uint8_t> body, std::uint32_t stream_id,
                  std::vector<Event>& events);
  void send(std::uint32_t csid, std::uint8_t type, std::uint32_t stream_id,
            std::span<const std::uint8_t> payload);
  void send_control(std::uint8_t type, std::uint32_t value, int extra = -1);
  void send_command(std::uint32_t csid, std::uint32_t stream_id, const std::vector<AmfValue>& v);
  void on_status(std::string_view level, std::string_view code, std::string_view description);

  SessionOptions options_;
  Phase phase_ = Phase::AwaitC0C1;
  std::vector<std::uint8_t> input_;  // unconsumed bytes
  bool paused_ = false;              // feed() stopped at a publish
  std::vector<std::uint8_t> output_;
  ChunkReader reader_;
  ChunkWriter writer_;
  std::vector<std::uint8_t> s1_;

  bool connected_ = false;
  std::string app_;
  std::uint32_t next_stream_id_ = 1;
  PublishState publish_ = PublishState::None;
  std::uint32_t publish_stream_ = 0;
  std::string publish_name_;

  std::uint64_t received_ = 0;     // bytes after the handshake
  std::uint32_t peer_window_ = 0;  // 0 = the peer asked for no acknowledgements
  std::uint64_t last_ack_ = 0;
  std::vector<std::string> ignored_;
};

}  // namespace arcly::rtmp
