#include "chunk.hpp"

#include <algorithm>
#include <string>

namespace arcly::rtmp {

namespace {
std::uint32_t be(std::span<const std::uint8_t> b, std::size_t at, std::size_t n) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | b[at + i];
  return v;
}
std::uint32_t le32(std::span<const std::uint8_t> b, std::size_t at) {
  return static_cast<std::uint32_t>(b[at]) | static_cast<std::uint32_t>(b[at + 1]) << 8 |
         static_cast<std::uint32_t>(b[at + 2]) << 16 | static_cast<std::uint32_t>(b[at + 3]) << 24;
}
constexpr std::size_t kHeaderSize[4] = {11, 7, 3, 0};
}  // namespace

std::size_t ChunkReader::read(std::span<const std::uint8_t> in, std::optional<Message>& out) {
  out.reset();
  if (in.empty()) return 0;
  const unsigned fmt = in[0] >> 6;
  std::uint32_t csid = in[0] & 0x3f;
  std::size_t pos = 1;
  if (csid == 0) {
    if (in.size() < 2) return 0;
    csid = 64 + in[1];
    pos = 2;
  } else if (csid == 1) {
    if (in.size() < 3) return 0;
    csid = 64 + in[1] + 256u * in[2];
    pos = 3;
  }
  if (in.size() < pos + kHeaderSize[fmt]) return 0;

  auto it = streams_.find(csid);
  const bool known = it != streams_.end();
  if (!known && fmt >= 2) {
    throw ProtocolError("chunk stream " + std::to_string(csid) + " starts with a format-" +
                        std::to_string(fmt) + " header (no previous header to continue)");
  }
  if (!known && streams_.size() >= limits_.max_chunk_streams) {
    throw ProtocolError("more than " + std::to_string(limits_.max_chunk_streams) +
                        " chunk streams in use");
  }
  // Parse into a copy: nothing changes until the whole chunk is there.
  State s = known ? State{it->second.timestamp,
                          it->second.delta,
                          it->second.length,
                          it->second.type,
                          it->second.stream_id,
                          it->second.extended,
                          {}}
                  : State{};
  const bool continuing = known && !it->second.partial.empty();
  std::uint32_t ts_field = 0;
  if (fmt <= 2) ts_field = be(in, pos, 3);
  if (fmt <= 1) {
    s.length = be(in, pos + 3, 3);
    s.type = in[pos + 6];
  }
  if (fmt == 0) s.stream_id = le32(in, pos + 7);
  pos += kHeaderSize[fmt];

  if (fmt <= 2) s.extended = ts_field == 0xffffff;
  if (s.extended) {
    if (in.size() < pos + 4) return 0;
    if (fmt <= 2) ts_field = be(in, pos, 4);
    pos += 4;  // format 3 repeats it; its value is the one already known
  }

  if (fmt <= 2 && continuing) {
    // A new header in the middle of a message: the peer gave up on it.
    buffered_ -= it->second.length;
    it->second.partial.clear();
  }
  const bool starts_message = fmt <= 2 || !continuing;
  if (starts_message) {
    if (fmt == 0) {
      s.timestamp = ts_field;
      s.delta = 0;
    } else if (fmt == 1 || fmt == 2) {
      s.delta = ts_field;
      s.timestamp += s.delta;
    } else {
      s.timestamp += s.delta;
    }
    if (s.length > limits_.max_message) {
      throw ProtocolError("message of " + std::to_string(s.length) + " bytes on chunk stream " +
                          std::to_string(csid) + " exceeds the limit of " +
                          std::to_string(limits_.max_message));
    }
  }

  const std::size_t have = continuing && !(fmt <= 2) ? it->second.partial.size() : 0;
  const std::size_t take = std::min<std::size_t>(chunk_size_, s.length - have);
  if (in.size() < pos + take) return 0;
  const bool multi_chunk = have == 0 && take < s.length;
  if (multi_chunk && buffered_ + s.length > limits_.max_buffered) {
    throw ProtocolError("partial messages would exceed " + std::to_string(limits_.max_buffered) +
                        " bytes");
  }

  State& st = known ? it->second : streams_[csid];
  std::vector<std::uint8_t> partial = std::move(st.partial);
  st = std::move(s);
  partial.insert(partial.end(), in.begin() + static_cast<std::ptrdiff_t>(pos),
                 in.begin() + static_cast<std::ptrdiff_t>(pos + take));
  pos += take;
  if (partial.size() == st.length) {
    if (have > 0) buffered_ -= st.length;
    out = Message{csid, st.type, st.stream_id, st.timestamp, std::move(partial)};
  } else {
    if (multi_chunk) buffered_ += st.length;  // reserved until the message completes
    st.partial = std::move(partial);
  }
  return pos;
}

void ChunkReader::abort(std::uint32_t chunk_stream) {
  auto it = streams_.find(chunk_stream);
  if (it == streams_.end() || it->second.partial.empty()) return;
  buffered_ -= it->second.length;
  it->second.partial.clear();
}

void ChunkWriter::write(std::vector<std::uint8_t>& out, std::uint32_t csid, std::uint8_t type,
                        std::uint32_t stream_id, std::uint32_t timestamp,
                        std::span<const std::uint8_t> payload) const {
  const bool extended = timestamp >= 0xffffff;
  auto put_ext = [&] {
    if (!extended) return;
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(timestamp >> (8 * i)));
  };
  out.push_back(static_cast<std::uint8_t>(csid & 0x3f));  // format 0
  const std::uint32_t ts = extended ? 0xffffff : timestamp;
  const auto len = static_cast<std::uint32_t>(payload.size());
  out.insert(
      out.end(),
      {static_cast<std::uint8_t>(ts >> 16), static_cast<std::uint8_t>(ts >> 8),
       static_cast<std::uint8_t>(ts), static_cast<std::uint8_t>(len >> 16),
       static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len), type,
       static_cast<std::uint8_t>(stream_id), static_cast<std::uint8_t>(stream_id >> 8),
       static_cast<std::uint8_t>(stream_id >> 16), static_cast<std::uint8_t>(stream_id >> 24)});
  put_ext();
  std::size_t off = 0;
  for (;;) {
    const std::size_t n = std::min<std::size_t>(chunk_size_, payload.size() - off);
    out.insert(out.end(), payload.begin() + static_cast<std::ptrdiff_t>(off),
               payload.begin() + static_cast<std::ptrdiff_t>(off + n));
    off += n;
    if (off >= payload.size()) break;
    out.push_back(static_cast<std::uint8_t>(0xc0 | (csid & 0x3f)));  // format 3
    put_ext();
  }
}

}  // namespace arcly::rtmp
