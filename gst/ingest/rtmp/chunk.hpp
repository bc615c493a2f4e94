// The RTMP chunk stream (RTMP 1.0 specification, section 5.3): messages are cut
// into chunks of at most `chunk size` payload bytes, each with a basic header
// (format and chunk stream id, 1–3 bytes) and a message header of 11, 7, 3 or 0
// bytes (formats 0–3), plus a 4-byte extended timestamp when the 24-bit field
// is 0xFFFFFF. A format-3 chunk repeats the extended timestamp when the header
// it continues had one.
//
// ChunkReader reads one chunk at a time from the front of a byte range and
// hands back a message once its last chunk is in. It owns the per-chunk-stream
// state (timestamp, delta, length, type, message stream id, partial payload),
// created on first use and bounded: at most `max_chunk_streams` chunk streams,
// `max_message` bytes per message and `max_buffered` bytes of messages in progress
// (counted at their announced length) in all; exceeding any is a ProtocolError. Set Chunk Size and
// Abort are applied by the owner (the session) through set_chunk_size() and abort().
//
// ChunkWriter cuts outgoing messages into chunks (format 0, then format 3).
//
// Not thread-safe: one connection's thread owns each instance.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <vector>

#include "amf0.hpp"

namespace arcly::rtmp {

struct Message {
  std::uint32_t chunk_stream = 0;
  std::uint8_t type = 0;
  std::uint32_t stream_id = 0;
  std::uint32_t timestamp = 0;  // ms, wraps at 2^32
  std::vector<std::uint8_t> payload;
};

struct ChunkLimits {
  std::uint32_t max_message = 16u << 20;
  std::size_t max_chunk_streams = 64;
  std::size_t max_buffered = 32u << 20;
};

class ChunkReader {
 public:
  explicit ChunkReader(ChunkLimits limits = {}) : limits_(limits) {}

  // Reads at most one chunk from the front of `in`. Returns the bytes it used
  // (0: the chunk is not complete yet, nothing used) and sets `out` when that
  // chunk completed a message. Throws ProtocolError.
  std::size_t read(std::span<const std::uint8_t> in, std::optional<Message>& out);

  void set_chunk_size(std::uint32_t size) { chunk_size_ = size; }
  std::uint32_t chunk_size() const { return chunk_size_; }
  // Drops the partial message of `chunk_stream` (Abort Message).
  void abort(std::uint32_t chunk_stream);
  // Announced bytes of the messages in progress.
  std::size_t buffered() const { return buffered_; }

 private:
  struct State {
    std::uint32_t timestamp = 0;
    std::uint32_t delta = 0;
    std::uint32_t length = 0;
    std::uint8_t type = 0;
    std::uint32_t stream_id = 0;
    bool extended = false;  // the last header's timestamp field was 0xFFFFFF
    std::vector<std::uint8_t> partial;
  };

  ChunkLimits limits_;
  std::uint32_t chunk_size_ = 128;
  std::map<std::uint32_t, State> streams_;
  std::size_t buffered_ = 0;
};

class ChunkWriter {
 public:
  // Appends `payload` as chunks on `chunk_stream` (2..63) to `out`.
  void write(std::vector<std::uint8_t>& out, std::uint32_t chunk_stream, std::uint8_t type,
             std::uint32_t stream_id, std::uint32_t timestamp,
             std::span<const std::uint8_t> payload) const;
  void set_chunk_size(std::uint32_t size) { chunk_size_ = size; }
  std::uint32_t chunk_size() const { return chunk_size_; }

 private:
  std::uint32_t chunk_size_ = 128;
};

}  // namespace arcly::rtmp
