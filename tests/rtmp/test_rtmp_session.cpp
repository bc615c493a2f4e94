// The RTMP session layer byte by byte: AMF0, the handshake, the chunk stream
// (all four header formats, extended timestamps, chunk size, abort,
// acknowledgements), the publish command flow and FLV tag headers.
#include <cstring>
#include <string>
#include <variant>
#include <vector>

#include "../engine/check_main.hpp"
#include "amf0.hpp"
#include "chunk.hpp"
#include "flv.hpp"
#include "session.hpp"

using namespace arcly::rtmp;
using Bytes8 = std::vector<std::uint8_t>;

#define ck_assert_protocol_error(expr, needle)                                          \
  do {                                                                                  \
    bool thrown_ = false;                                                               \
    try {                                                                               \
      (void)(expr);                                                                     \
    } catch (const ProtocolError& e_) {                                                 \
      thrown_ = true;                                                                   \
      ck_assert_msg(std::string(e_.what()).find(needle) != std::string::npos,           \
                    "message '%s' lacks '%s'", e_.what(), std::string(needle).c_str()); \
    }                                                                                   \
    ck_assert_msg(thrown_, "%s did not throw", #expr);                                  \
  } while (0)

namespace {

Bytes8 amf(const std::vector<AmfValue>& values) {
  Bytes8 out;
  for (const auto& v : values) encode(v, out);
  return out;
}

AmfProperty p(std::string n, AmfValue v) {
  return AmfProperty{std::move(n), std::move(v)};
}

Bytes8 hex(const char* text) {
  Bytes8 out;
  for (const char* c = text; *c;) {
    if (*c == ' ') {
      ++c;
      continue;
    }
    out.push_back(static_cast<std::uint8_t>(std::stoi(std::string(c, 2), nullptr, 16)));
    c += 2;
  }
  return out;
}

Bytes8 cat(std::initializer_list<Bytes8> parts) {
  Bytes8 out;
  for (const auto& x : parts) out.insert(out.end(), x.begin(), x.end());
  return out;
}

// C0 + C1 (+ C2): what a client opens with.
Bytes8 client_handshake(bool with_c2 = true) {
  Bytes8 out(1 + kHandshakeSize + (with_c2 ? kHandshakeSize : 0));
  out[0] = 3;
  for (std::size_t i = 1; i < out.size(); ++i) out[i] = static_cast<std::uint8_t>(i * 7);
  return out;
}

// A client's side: writes commands and reads the server's replies.
struct Client {
  ChunkWriter writer;
  ChunkReader reader;
  std::vector<Message> replies;

  Bytes8 command(std::uint32_t stream_id, const std::vector<AmfValue>& v, std::uint32_t csid = 3) {
    Bytes8 out;
    writer.write(out, csid, kCommandAmf0, stream_id, 0, amf(v));
    return out;
  }
  Bytes8 message(std::uint32_t csid, std::uint8_t type, std::uint32_t sid, std::uint32_t ts,
                 const Bytes8& body) {
    Bytes8 out;
    writer.write(out, csid, type, sid, ts, body);
    return out;
  }
  // Parses server output (after the handshake) into messages.
  void read(const Bytes8& out) {
    std::size_t off = 0;
    while (off < out.size()) {
      std::optional<Message> m;
      const std::size_t n = reader.read(std::span(out).subspan(off), m);
      ck_assert_msg(n > 0, "server output ends in a partial chunk");
      off += n;
      if (m) {
        if (m->type == kSetChunkSize) {
          reader.set_chunk_size((std::uint32_t{m->payload[2]} << 8) | m->payload[3] |
                                (std::uint32_t{m->payload[1]} << 16));
        }
        replies.push_back(std::move(*m));
      }
    }
  }
  std::vector<AmfValue> command_reply(std::size_t i) {
    ck_assert_uint_gt(replies.size(), i);
    ck_assert_uint_eq(replies[i].type, kCommandAmf0);
    return decode_all(replies[i].payload);
  }
};

Bytes8 connect_cmd(Client& c, const std::string& app = "live") {
  return c.command(
      0, {AmfValue::str("connect"), AmfValue::num(1),
          AmfValue::object({p("app", AmfValue::str(app)), p("flashVer", AmfValue::str("FMLE/3.0")),
                            p("tcUrl", AmfValue::str("rtmp://127.0.0.1/" + app))})});
}

SessionOptions seeded(std::uint64_t seed) {
  SessionOptions o;
  o.seed = seed;
  return o;
}

template <class T>
const T& event_at(const std::vector<Event>& events, std::size_t i) {
  ck_assert_uint_gt(events.size(), i);
  ck_assert_msg(std::holds_alternative<T>(events[i]), "event %zu has another type", i);
  return std::get<T>(events[i]);
}

// A session through connect, createStream and publish of `name`.
ServerSession published(Client& c, const std::string& name = "cam") {
  ServerSession s(seeded(1));
  s.feed(client_handshake());
  s.take_output();
  s.feed(connect_cmd(c));
  s.feed(c.command(0, {AmfValue::str("createStream"), AmfValue::num(2), AmfValue::null()}));
  auto ev = s.feed(c.command(1,
                             {AmfValue::str("publish"), AmfValue::num(3), AmfValue::null(),
                              AmfValue::str(name), AmfValue::str("live")},
                             4));
  event_at<PublishEvent>(ev, 0);
  s.accept_publish();
  s.take_output();
  return s;
}

}  // namespace

START_TEST(amf0_encodes_byte_exact_and_decodes_back) {
  ck_assert(amf({AmfValue::str("connect")}) == hex("02 0007 636f6e6e656374"));
  ck_assert(amf({AmfValue::num(1)}) == hex("00 3ff0000000000000"));
  ck_assert(amf({AmfValue::boolean_value(true), AmfValue::null(), AmfValue::undefined()}) ==
            hex("0101 05 06"));
  ck_assert(amf({AmfValue::object({p("app", AmfValue::str("live"))})}) ==
            hex("03 0003 617070 02 0004 6c697665 000009"));
  AmfValue arr;
  arr.type = AmfType::EcmaArray;
  arr.properties.push_back(p("width", AmfValue::num(640)));
  ck_assert(amf({arr}) == hex("08 00000001 0005 7769647468 00 4084000000000000 000009"));

  auto back =
      decode_all(hex("02 0007 636f6e6e656374 00 3ff0000000000000 "
                     "03 0003 617070 02 0004 6c697665 0000 09 "
                     "0a 00000002 05 0101 0b 0000000000000000 0000 0c 00000002 6869"));
  ck_assert_uint_eq(back.size(), 6);
  ck_assert_text(std::string(back[0].text()), "connect");
  ck_assert(back[1].number == 1.0);
  ck_assert_text(std::string(back[2].get("app")->text()), "live");
  ck_assert_uint_eq(back[3].items.size(), 2);
  ck_assert(back[3].items[1].boolean);
  ck_assert(back[4].type == AmfType::Date);
  ck_assert_text(back[5].string, "hi");
}
END_TEST

START_TEST(amf0_rejects_broken_values_naming_the_offset) {
  ck_assert_protocol_error(decode_all(hex("02 0010 6869")), "truncated string at offset 3");
  ck_assert_protocol_error(decode_all(hex("07 0001")), "unsupported value marker 0x07 at offset 0");
  ck_assert_protocol_error(decode_all(hex("11 00")), "marker 0x11");
  ck_assert_protocol_error(decode_all(hex("0a ffffffff 05")), "truncated strict array item");
  ck_assert_protocol_error(decode_all(hex("03 0001 61")), "truncated value marker");
  Bytes8 deep;
  for (int i = 0; i < 100; ++i) deep.insert(deep.end(), {0x0a, 0, 0, 0, 1});
  ck_assert_protocol_error(decode_all(deep), "nested deeper than 32");
  Bytes8 many(70000, 0x05);
  ck_assert_protocol_error(decode_all(many), "more than 65536 values");
}
END_TEST

START_TEST(handshake_answers_s0_s1_s2_and_waits_for_c2) {
  ServerSession s(seeded(42));
  const Bytes8 hs = client_handshake(false);
  // Byte by byte: nothing happens until C0+C1 are complete.
  for (std::size_t i = 0; i + 1 < hs.size(); ++i) {
    s.feed(std::span(hs).subspan(i, 1));
    ck_assert(!s.has_output());
  }
  s.feed(std::span(hs).subspan(hs.size() - 1));
  const Bytes8 out = s.take_output();
  ck_assert_uint_eq(out.size(), 1 + 2 * kHandshakeSize);
  ck_assert_uint_eq(out[0], 3);  // S0
  ck_assert(std::all_of(out.begin() + 1, out.begin() + 9,
                        [](auto b) { return b == 0; }));  // S1 time, zero
  ck_assert(std::equal(out.begin() + 1 + kHandshakeSize, out.end(), hs.begin() + 1));  // S2 = C1
  ck_assert(s.phase() == ServerSession::Phase::AwaitC2);
  s.feed(Bytes8(kHandshakeSize - 1, 0));
  ck_assert(s.phase() == ServerSession::Phase::AwaitC2);
  s.feed(Bytes8(1, 0));
  ck_assert(s.phase() == ServerSession::Phase::Chunks);

  ServerSession bad;
  Bytes8 v6 = hs;
  v6[0] = 6;  // RTMPE
  ck_assert_protocol_error(bad.feed(v6), "unsupported RTMP version 6");
}
END_TEST

START_TEST(chunk_reader_reads_all_four_header_formats) {
  ChunkReader r;
  // fmt 0, csid 3, ts 1000, 300 bytes, type 9, stream 1: three chunks at size 128.
  Bytes8 body(300);
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<std::uint8_t>(i);
  Bytes8 wire = hex("03 0003e8 00012c 09 01000000");
  wire.insert(wire.end(), body.begin(), body.begin() + 128);
  wire.push_back(0xc3);
  wire.insert(wire.end(), body.begin() + 128, body.begin() + 256);
  wire.push_back(0xc3);
  wire.insert(wire.end(), body.begin() + 256, body.end());
  // fmt 1: delta 40, 2 bytes, type 8 (stream id kept); fmt 2: delta 40, same length;
  // fmt 3 starting a message: delta 40 again.
  wire = cat({wire, hex("43 000028 000002 08 aabb"), hex("83 000028 ccdd"), hex("c3 eeff")});

  std::vector<Message> got;
  std::size_t off = 0;
  while (off < wire.size()) {
    std::optional<Message> m;
    const std::size_t n = r.read(std::span(wire).subspan(off), m);
    ck_assert_uint_gt(n, 0);
    off += n;
    if (m) got.push_back(std::move(*m));
  }
  ck_assert_uint_eq(got.size(), 4);
  ck_assert(got[0].payload == body);
  ck_assert_uint_eq(got[0].timestamp, 1000);
  ck_assert_uint_eq(got[0].type, 9);
  ck_assert_uint_eq(got[0].stream_id, 1);
  ck_assert_uint_eq(got[1].timestamp, 1040);
  ck_assert_uint_eq(got[1].type, 8);
  ck_assert_uint_eq(got[1].stream_id, 1);
  ck_assert(got[1].payload == hex("aabb"));
  ck_assert_uint_eq(got[2].timestamp, 1080);
  ck_assert(got[2].payload == hex("ccdd"));
  ck_assert_uint_eq(got[3].timestamp, 1120);
  ck_assert(got[3].payload == hex("eeff"));
  ck_assert_uint_eq(r.buffered(), 0);
}
END_TEST

START_TEST(chunk_reader_handles_extended_timestamps_and_long_chunk_stream_ids) {
  ChunkReader r;
  // csid 320 in the 3-byte form (1, then 320-64 = 256 little-endian), extended
  // timestamp 0x01000000, 200 bytes: the format-3 continuation repeats it.
  Bytes8 body(200, 0x5a);
  Bytes8 wire = hex("01 0001 ffffff 0000c8 09 01000000 01000000");
  wire.insert(wire.end(), body.begin(), body.begin() + 128);
  wire = cat({wire, hex("c1 0001 01000000")});
  wire.insert(wire.end(), body.begin() + 128, body.end());
  // csid 70 in the 2-byte form (0, 6), fmt 0, ts 5.
  wire = cat({wire, hex("00 06 000005 000001 08 01000000 11")});
  // Split anywhere: whole chunks only are consumed.
  std::vector<Message> got;
  Bytes8 pending;
  for (std::uint8_t b : wire) {
    pending.push_back(b);
    for (;;) {
      std::optional<Message> m;
      const std::size_t n = r.read(pending, m);
      if (n == 0) break;
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(n));
      if (m) got.push_back(std::move(*m));
    }
  }
  ck_assert_uint_eq(got.size(), 2);
  ck_assert_uint_eq(got[0].chunk_stream, 320);
  ck_assert_uint_eq(got[0].timestamp, 0x01000000);
  ck_assert(got[0].payload == body);
  ck_assert_uint_eq(got[1].chunk_stream, 70);
  ck_assert_uint_eq(got[1].timestamp, 5);

  // The writer produces the same framing.
  ChunkWriter w;
  Bytes8 out;
  w.write(out, 4, 9, 1, 0x01000000, body);
  ck_assert(std::equal(out.begin(), out.begin() + 16,
                       hex("04 ffffff 0000c8 09 01000000 01000000").begin()));
  ck_assert(out[16 + 128] == 0xc4);
}
END_TEST

START_TEST(chunk_reader_refuses_what_it_cannot_follow) {
  ChunkReader r(ChunkLimits{.max_message = 1000, .max_chunk_streams = 2, .max_buffered = 1500});
  std::optional<Message> m;
  ck_assert_protocol_error(r.read(hex("83 000028"), m),
                           "chunk stream 3 starts with a format-2 header");
  ck_assert_protocol_error(r.read(hex("03 000000 0003e9 09 01000000"), m),
                           "message of 1001 bytes on chunk stream 3 exceeds the limit of 1000");
  r.read(hex("04 000000 000001 09 01000000 00"), m);
  r.read(hex("05 000000 000001 09 01000000 00"), m);
  ck_assert_protocol_error(r.read(hex("06 000000 000001 09 01000000 00"), m),
                           "more than 2 chunk streams");
  Bytes8 first = hex("04 000000 0003e8 09 01000000");
  first.resize(first.size() + 128);
  r.read(first, m);
  ck_assert_uint_eq(r.buffered(), 1000);
  Bytes8 second = hex("05 000000 0003e8 09 01000000");
  second.resize(second.size() + 128);
  ck_assert_protocol_error(r.read(second, m), "partial messages would exceed 1500 bytes");
}
END_TEST

START_TEST(set_chunk_size_and_abort_apply_to_what_follows) {
  Client c;
  ServerSession s = published(c);
  // Set Chunk Size 4096, then a 3000-byte video message in one chunk.
  Bytes8 wire = c.message(2, kSetChunkSize, 0, 0, hex("00001000"));
  c.writer.set_chunk_size(4096);
  Bytes8 video(3000, 0x17);
  wire = cat({wire, c.message(6, kVideo, 1, 33, video)});
  ck_assert_uint_eq(wire.size(), 16 + 12 + 3000);  // one chunk: no format-3 headers
  auto ev = s.feed(wire);
  ck_assert_uint_eq(ev.size(), 1);
  ck_assert(event_at<MediaEvent>(ev, 0).payload == video);
  ck_assert_uint_eq(event_at<MediaEvent>(ev, 0).timestamp, 33);

  // Abort: the first half of a message on csid 7 is dropped, the next one is whole.
  c.writer.set_chunk_size(128);
  s.feed(c.message(2, kSetChunkSize, 0, 0, hex("00000080")));
  Bytes8 half = c.message(7, kVideo, 1, 66, Bytes8(200, 1));
  half.resize(12 + 128);
  ev = s.feed(cat({half, c.message(2, kAbort, 0, 0, hex("00000007")),
                   c.message(7, kVideo, 1, 99, Bytes8(10, 2))}));
  ck_assert_uint_eq(ev.size(), 1);
  ck_assert(event_at<MediaEvent>(ev, 0).payload == Bytes8(10, 2));

  ck_assert_protocol_error(s.feed(c.message(2, kSetChunkSize, 0, 0, hex("00000000"))),
                           "chunk size 0 out of range");
}
END_TEST

START_TEST(acknowledgements_follow_the_peer_window) {
  Client c;
  ServerSession s = published(c);
  ck_assert(!s.has_output());
  // Without a window from the peer, no acknowledgements.
  s.feed(c.message(6, kVideo, 1, 0, Bytes8(5000, 0x27)));
  ck_assert(!s.has_output());
  s.feed(c.message(2, kWindowAckSize, 0, 0, hex("00001000")));  // 4096
  std::vector<std::uint32_t> seqs;
  auto collect = [&] {
    Client reply;
    reply.read(s.take_output());
    for (const auto& m : reply.replies) {
      ck_assert_uint_eq(m.type, kAcknowledgement);
      seqs.push_back(std::uint32_t{m.payload[0]} << 24 | std::uint32_t{m.payload[1]} << 16 |
                     std::uint32_t{m.payload[2]} << 8 | m.payload[3]);
    }
  };
  collect();
  ck_assert_uint_eq(seqs.size(), 1);  // more than a window arrived since the start
  ck_assert_uint_eq(seqs[0], s.bytes_received());
  for (int i = 0; i < 40; ++i) {
    s.feed(c.message(6, kVideo, 1, static_cast<std::uint32_t>(i), Bytes8(500, 0x27)));
    collect();
  }
  ck_assert_uint_ge(seqs.size(), 5);
  for (std::size_t i = 1; i < seqs.size(); ++i) {
    ck_assert_uint_ge(seqs[i] - seqs[i - 1], 4096);
    ck_assert_uint_lt(seqs[i] - seqs[i - 1], 4096 + 600);  // at the first chunk past the window
  }
  ck_assert_uint_lt(s.bytes_received() - seqs.back(), 4096);
}
END_TEST

START_TEST(publish_flow_replies_like_a_media_server) {
  ServerSession s(seeded(7));
  Client c;
  s.feed(client_handshake());
  s.take_output();
  auto ev = s.feed(connect_cmd(c, "live?token=s3cret"));
  ck_assert_text(event_at<ConnectEvent>(ev, 0).app, "live?token=s3cret");
  ck_assert_text(event_at<ConnectEvent>(ev, 0).tc_url, "rtmp://127.0.0.1/live?token=s3cret");
  Bytes8 out = s.take_output();
  // Window Acknowledgement Size 2500000, Set Peer Bandwidth (dynamic), Set Chunk Size 4096.
  ck_assert(std::equal(out.begin(), out.begin() + 45,
                       cat({hex("02 000000 000004 05 00000000 002625a0"),
                            hex("02 000000 000005 06 00000000 002625a0 02"),
                            hex("02 000000 000004 01 00000000 00001000")})
                           .begin()));
  c.read(out);
  auto result = c.command_reply(3);
  ck_assert_text(std::string(result[0].text()), "_result");
  ck_assert(result[1].number == 1);
  ck_assert_text(std::string(result[3].get("code")->text()), "NetConnection.Connect.Success");

  s.feed(c.command(0, {AmfValue::str("releaseStream"), AmfValue::num(2), AmfValue::null(),
                       AmfValue::str("cam")}));
  s.feed(c.command(
      0, {AmfValue::str("FCPublish"), AmfValue::num(3), AmfValue::null(), AmfValue::str("cam")}));
  s.feed(c.command(0, {AmfValue::str("createStream"), AmfValue::num(4), AmfValue::null()}));
  c.read(s.take_output());
  ck_assert_uint_eq(c.replies.size(), 7);
  auto created = c.command_reply(6);
  ck_assert(created[1].number == 4);
  ck_assert(created[3].number == 1);  // message stream id 1

  ev = s.feed(c.command(1,
                        {AmfValue::str("publish"), AmfValue::num(5), AmfValue::null(),
                         AmfValue::str("cam?token=s3cret"), AmfValue::str("live")},
                        4));
  const auto& pub = event_at<PublishEvent>(ev, 0);
  ck_assert_text(pub.name, "cam?token=s3cret");
  ck_assert_uint_eq(pub.stream_id, 1);
  // Media before the answer is dropped.
  ck_assert_uint_eq(s.feed(c.message(6, kVideo, 1, 0, hex("17 00 000000 01"))).size(), 0);
  s.accept_publish();
  out = s.take_output();
  ck_assert(std::equal(out.begin(), out.begin() + 18,
                       hex("02 000000 000006 04 00000000 0000 00000001").begin()));
  c.read(out);
  auto status = c.command_reply(8);
  ck_assert_uint_eq(c.replies[8].stream_id, 1);
  ck_assert_text(std::string(status[0].text()), "onStatus");
  ck_assert_text(std::string(status[3].get("level")->text()), "status");
  ck_assert_text(std::string(status[3].get("code")->text()), "NetStream.Publish.Start");
  ck_assert_text(std::string(status[3].get("description")->text()), "cam is now published.");
  ck_assert(std::search(out.begin(), out.end(), "s3cret", "s3cret" + 6) == out.end());

  Bytes8 meta = amf({AmfValue::str("@setDataFrame"), AmfValue::str("onMetaData"),
                     AmfValue::object({p("width", AmfValue::num(1280))})});
  ev = s.feed(cat({c.message(4, kDataAmf0, 1, 0, meta),
                   c.message(6, kVideo, 1, 40, hex("17 01 000000 00000001 65")),
                   c.message(4, kAudio, 1, 41, hex("af 01 21")),
                   c.message(6, kVideo, 2, 40, hex("17 01 000000"))}));  // other stream: dropped
  ck_assert_uint_eq(ev.size(), 3);
  ck_assert(event_at<MetadataEvent>(ev, 0).metadata.get("width")->number == 1280);
  ck_assert_uint_eq(event_at<MediaEvent>(ev, 1).type, kVideo);
  ck_assert_uint_eq(event_at<MediaEvent>(ev, 1).timestamp, 40);
  ck_assert_uint_eq(event_at<MediaEvent>(ev, 2).type, kAudio);

  ev = s.feed(c.command(
      0, {AmfValue::str("FCUnpublish"), AmfValue::num(6), AmfValue::null(), AmfValue::str("cam")}));
  ck_assert_text(event_at<UnpublishEvent>(ev, 0).command, "FCUnpublish");
  ev = s.feed(c.command(
      0, {AmfValue::str("deleteStream"), AmfValue::num(7), AmfValue::null(), AmfValue::num(1)}));
  ck_assert_uint_eq(ev.size(), 0);  // already unpublished
  ck_assert(s.publish_state() == ServerSession::PublishState::None);
}
END_TEST

START_TEST(bytes_pipelined_behind_a_publish_wait_for_its_answer) {
  ServerSession s(seeded(5));
  Client c;
  Bytes8 all = client_handshake();
  all =
      cat({all, connect_cmd(c),
           c.command(0, {AmfValue::str("createStream"), AmfValue::num(2), AmfValue::null()}),
           c.command(1, {AmfValue::str("publish"), AmfValue::num(3), AmfValue::null(),
                         AmfValue::str("cam"), AmfValue::str("live")}),
           c.message(
               4, kDataAmf0, 1, 0,
               amf({AmfValue::str("onMetaData"), AmfValue::object({p("fps", AmfValue::num(30))})})),
           c.message(6, kVideo, 1, 0, hex("17 00 000000 01640028"))});
  auto ev = s.feed(all);  // everything at once, as a pipelining client sends it
  ck_assert_uint_eq(ev.size(), 2);
  event_at<ConnectEvent>(ev, 0);
  event_at<PublishEvent>(ev, 1);
  ck_assert(s.paused());
  s.accept_publish();
  ev = s.feed({});
  ck_assert(!s.paused());
  ck_assert_uint_eq(ev.size(), 2);  // nothing lost
  event_at<MetadataEvent>(ev, 0);
  ck_assert_uint_eq(event_at<MediaEvent>(ev, 1).type, kVideo);
}
END_TEST

START_TEST(rejected_publish_gets_an_error_status) {
  ServerSession s(seeded(3));
  Client c;
  s.feed(client_handshake());
  s.feed(connect_cmd(c));
  s.feed(c.command(0, {AmfValue::str("createStream"), AmfValue::num(2), AmfValue::null()}));
  s.feed(c.command(1, {AmfValue::str("publish"), AmfValue::num(3), AmfValue::null(),
                       AmfValue::str("cam"), AmfValue::str("live")}));
  s.take_output();
  s.reject_publish("NetStream.Publish.BadName", "stream live/cam is already being published");
  Client r;
  r.reader.set_chunk_size(4096);  // announced at connect
  r.read(s.take_output());
  auto status = r.command_reply(0);
  ck_assert_text(std::string(status[3].get("level")->text()), "error");
  ck_assert_text(std::string(status[3].get("code")->text()), "NetStream.Publish.BadName");
  ck_assert(s.publish_state() == ServerSession::PublishState::Rejected);
  ck_assert_uint_eq(s.feed(c.message(6, kVideo, 1, 0, hex("17 01 000000"))).size(), 0);
}
END_TEST

START_TEST(protocol_errors_name_what_the_peer_did) {
  Client c;
  ServerSession s;
  s.feed(client_handshake());
  ck_assert_protocol_error(s.feed(c.command(0, {AmfValue::str("publish"), AmfValue::num(1),
                                                AmfValue::null(), AmfValue::str("x")})),
                           "command 'publish' before connect");
  ServerSession t;
  t.feed(client_handshake());
  ck_assert_protocol_error(t.feed(c.command(0, {AmfValue::num(1)})),
                           "command message without a name");
  ServerSession u;
  u.feed(client_handshake());
  ck_assert_protocol_error(u.feed(c.command(0, {AmfValue::str("connect"), AmfValue::num(1)})),
                           "connect without a command object");
  Client d;
  ServerSession v = published(d);
  ck_assert_protocol_error(v.feed(d.command(1, {AmfValue::str("publish"), AmfValue::num(9),
                                                AmfValue::null(), AmfValue::str("other")})),
                           "a second publish on one connection");
}
END_TEST

START_TEST(flv_tag_headers_map_to_codecs) {
  auto seq = parse_video_tag(hex("17 00 000000 01640028"));
  ck_assert(seq.codec == VideoCodec::H264 && seq.sequence_header && seq.keyframe);
  ck_assert_uint_eq(seq.data_offset, 5);
  auto nalu = parse_video_tag(hex("27 01 000050 00000002 4101"));
  ck_assert(!nalu.keyframe && !nalu.sequence_header);
  ck_assert_int_eq(nalu.composition_ms, 80);
  ck_assert_int_eq(parse_video_tag(hex("27 01 ffffd8")).composition_ms, -40);
  auto hevc = parse_video_tag(hex("91 68766331 000021 00000002"));  // ex header, key, CodedFrames
  ck_assert(hevc.codec == VideoCodec::H265 && hevc.keyframe);
  ck_assert_int_eq(hevc.composition_ms, 33);
  ck_assert_uint_eq(hevc.data_offset, 8);
  auto hevc_seq = parse_video_tag(hex("90 68766331 01"));
  ck_assert(hevc_seq.sequence_header && hevc_seq.data_offset == 5);
  ck_assert(parse_video_tag(hex("22 00")).codec == VideoCodec::Other);  // Sorenson
  ck_assert_protocol_error(parse_video_tag(hex("17 00")), "AVC video tag of 2 bytes");

  auto aac = parse_audio_tag(hex("af 00 1210"));
  ck_assert(aac.codec == AudioCodec::AAC && aac.sequence_header && aac.data_offset == 2);
  auto asc = parse_aac_config(hex("1210"));
  ck_assert(asc.has_value());
  ck_assert_int_eq(asc->object_type, 2);
  ck_assert_int_eq(asc->rate, 44100);
  ck_assert_int_eq(asc->channels, 2);
  auto asc48 = parse_aac_config(hex("1188"));
  ck_assert_int_eq(asc48->rate, 48000);
  ck_assert_int_eq(asc48->channels, 1);
  ck_assert(!parse_aac_config(hex("12")).has_value());
  ck_assert(!parse_aac_config(hex("16 80")).has_value());  // reserved index 13
}
END_TEST

int main() {
  return testing::run_suite(
      "rtmp_session",
      {amf0_encodes_byte_exact_and_decodes_back, amf0_rejects_broken_values_naming_the_offset,
       handshake_answers_s0_s1_s2_and_waits_for_c2, chunk_reader_reads_all_four_header_formats,
       chunk_reader_handles_extended_timestamps_and_long_chunk_stream_ids,
       chunk_reader_refuses_what_it_cannot_follow, set_chunk_size_and_abort_apply_to_what_follows,
       acknowledgements_follow_the_peer_window, publish_flow_replies_like_a_media_server,
       bytes_pipelined_behind_a_publish_wait_for_its_answer, rejected_publish_gets_an_error_status,
       protocol_errors_name_what_the_peer_did, flv_tag_headers_map_to_codecs});
}
