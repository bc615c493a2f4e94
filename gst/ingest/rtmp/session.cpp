#include "session.hpp"

#include <random>
#include <string>
#include <utility>

namespace arcly::rtmp {

namespace {

std::uint32_t be32(std::span<const std::uint8_t> b, std::size_t at = 0) {
  return static_cast<std::uint32_t>(b[at]) << 24 | static_cast<std::uint32_t>(b[at + 1]) << 16 |
         static_cast<std::uint32_t>(b[at + 2]) << 8 | b[at + 3];
}

void need(const Message& m, std::size_t n, const char* what) {
  if (m.payload.size() < n) {
    throw ProtocolError(std::string(what) + " message of " + std::to_string(m.payload.size()) +
                        " bytes (" + std::to_string(n) + " expected)");
  }
}

AmfProperty prop(std::string name, AmfValue v) {
  return AmfProperty{std::move(name), std::move(v)};
}

constexpr std::size_t kMaxIgnoredNames = 16;

}  // namespace

ServerSession::ServerSession(SessionOptions options)
    : options_(options), reader_(options.limits), s1_(kHandshakeSize, 0) {
  std::uint64_t seed = options_.seed;
  if (seed == 0) seed = (std::uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  std::mt19937_64 rng(seed);
  for (std::size_t i = 8; i < kHandshakeSize; ++i) s1_[i] = static_cast<std::uint8_t>(rng());
}

std::vector<Event> ServerSession::feed(std::span<const std::uint8_t> bytes) {
  std::vector<Event> events;
  input_.insert(input_.end(), bytes.begin(), bytes.end());
  paused_ = false;
  std::size_t off = 0;
  while (!paused_) {
    const std::span<const std::uint8_t> rest(input_.data() + off, input_.size() - off);
    if (phase_ == Phase::AwaitC0C1) {
      if (rest.size() < 1 + kHandshakeSize) break;
      if (rest[0] != 3) {
        throw ProtocolError("unsupported RTMP version " + std::to_string(rest[0]) +
                            " (only 3, plain RTMP, is served)");
      }
      output_.push_back(3);                                                                // S0
      output_.insert(output_.end(), s1_.begin(), s1_.end());                               // S1
      output_.insert(output_.end(), rest.begin() + 1, rest.begin() + 1 + kHandshakeSize);  // S2
      off += 1 + kHandshakeSize;
      received_ += 1 + kHandshakeSize;
      phase_ = Phase::AwaitC2;
    } else if (phase_ == Phase::AwaitC2) {
      if (rest.size() < kHandshakeSize) break;
      off += kHandshakeSize;
      received_ += kHandshakeSize;
      phase_ = Phase::Chunks;
    } else {
      std::optional<Message> m;
      const std::size_t n = reader_.read(rest, m);
      if (n == 0) break;
      off += n;
      received_ += n;
      if (m) {
        on_message(*m, events);
        // A publish waits for its answer: what follows (metadata, media) is
        // read once the owner has accepted or refused it.
        paused_ = publish_ == PublishState::Pending;
      }
      if (peer_window_ != 0 && received_ - last_ack_ >= peer_window_) {
        send_control(kAcknowledgement, static_cast<std::uint32_t>(received_));
        last_ack_ = received_;
      }
    }
  }
  input_.erase(input_.begin(), input_.begin() + static_cast<std::ptrdiff_t>(off));
  return events;
}

void ServerSession::on_message(Message& m, std::vector<Event>& events) {
  switch (m.type) {
    case kSetChunkSize: {
      need(m, 4, "Set Chunk Size");
      const std::uint32_t size = be32(m.payload) & 0x7fffffff;
      if (size == 0 || size > options_.max_chunk_size) {
        throw ProtocolError("chunk size " + std::to_string(size) + " out of range (1.." +
                            std::to_string(options_.max_chunk_size) + ")");
      }
      reader_.set_chunk_size(size);
      return;
    }
    case kAbort:
      need(m, 4, "Abort");
      reader_.abort(be32(m.payload));
      return;
    case kAcknowledgement:
    case kSetPeerBandwidth:
      return;
    case kUserControl:
      need(m, 2, "User Control");
      if (m.payload[0] == 0 && m.payload[1] == 6 && m.payload.size() >= 6) {  // Ping Request
        std::vector<std::uint8_t> pong = {0, 7};
        pong.insert(pong.end(), m.payload.begin() + 2, m.payload.begin() + 6);
        send(2, kUserControl, 0, pong);
      }
      return;
    case kWindowAckSize:
      need(m, 4, "Window Acknowledgement Size");
      peer_window_ = be32(m.payload);
      return;
    case kCommandAmf3:
      need(m, 1, "AMF3 command");
      on_command(std::span(m.payload).subspan(1), m.stream_id, events);
      return;
    case kCommandAmf0:
      on_command(m.payload, m.stream_id, events);
      return;
    case kDataAmf3:
    case kDataAmf0: {
      if (publish_ != PublishState::Accepted || m.stream_id != publish_stream_) return;
      std::span<const std::uint8_t> body = m.payload;
      if (m.type == kDataAmf3) {
        need(m, 1, "AMF3 data");
        body = body.subspan(1);
      }
      auto values = decode_all(body);
      std::size_t i = 0;
      if (i < values.size() && values[i].text() == "@setDataFrame") ++i;
      if (i + 1 < values.size() && values[i].text() == "onMetaData" &&
          (values[i + 1].type == AmfType::Object || values[i + 1].type == AmfType::EcmaArray)) {
        events.emplace_back(MetadataEvent{std::move(values[i + 1])});
      }
      return;
    }
    case kAudio:
    case kVideo:
      if (publish_ != PublishState::Accepted || m.stream_id != publish_stream_) return;
      if (m.payload.empty()) return;
      events.emplace_back(MediaEvent{m.type, m.timestamp, std::move(m.payload)});
      return;
    default:
      return;  // shared objects, aggregates, ...: not used by publishers
  }
}

void ServerSession::on_command(std::span<const std::uint8_t> body, std::uint32_t stream_id,
                               std::vector<Event>& events) {
  auto v = decode_all(body);
  if (v.empty() || !v[0].is_string()) throw ProtocolError("command message without a name");
  const std::string name = v[0].string;
  const double txn = v.size() > 1 && v[1].type == AmfType::Number ? v[1].number : 0;

  if (name == "connect") {
    if (connected_) throw ProtocolError("a second connect on one connection");
    if (v.size() < 3 || v[2].type != AmfType::Object) {
      throw ProtocolError("connect without a command object");
    }
    const AmfValue& obj = v[2];
    ConnectEvent ev;
    if (const auto* a = obj.get("app")) ev.app = a->text();
    if (const auto* t = obj.get("tcUrl")) ev.tc_url = t->text();
    if (const auto* f = obj.get("flashVer")) ev.flash_ver = f->text();
    double encoding = 0;
    if (const auto* e = obj.get("objectEncoding"); e && e->type == AmfType::Number) {
      encoding = e->number;
    }
    connected_ = true;
    app_ = ev.app;
    send_control(kWindowAckSize, options_.window_ack_size);
    send_control(kSetPeerBandwidth, options_.window_ack_size, 2);  // dynamic
    send_control(kSetChunkSize, options_.out_chunk_size);
    writer_.set_chunk_size(options_.out_chunk_size);
    send_command(3, 0,
                 {AmfValue::str("_result"), AmfValue::num(txn),
                  AmfValue::object({prop("fmsVer", AmfValue::str("FMS/3,0,1,123")),
                                    prop("capabilities", AmfValue::num(31))}),
                  AmfValue::object({prop("level", AmfValue::str("status")),
                                    prop("code", AmfValue::str("NetConnection.Connect.Success")),
                                    prop("description", AmfValue::str("Connection succeeded.")),
                                    prop("objectEncoding", AmfValue::num(encoding))})});
    events.emplace_back(std::move(ev));
    return;
  }
  if (!connected_) throw ProtocolError("command '" + name + "' before connect");

  if (name == "releaseStream" || name == "FCPublish") {
    send_command(
        3, 0,
        {AmfValue::str("_result"), AmfValue::num(txn), AmfValue::null(), AmfValue::undefined()});
  } else if (name == "createStream") {
    if (next_stream_id_ > 64) throw ProtocolError("more than 64 createStream calls");
    const std::uint32_t id = next_stream_id_++;
    send_command(
        3, 0, {AmfValue::str("_result"), AmfValue::num(txn), AmfValue::null(), AmfValue::num(id)});
  } else if (name == "publish") {
    if (publish_ == PublishState::Pending || publish_ == PublishState::Accepted) {
      throw ProtocolError("a second publish on one connection");
    }
    if (v.size() < 4 || !v[3].is_string() || v[3].string.empty()) {
      throw ProtocolError("publish without a stream name");
    }
    PublishEvent ev;
    ev.name = v[3].string;
    ev.type = v.size() > 4 ? std::string(v[4].text("live")) : "live";
    ev.stream_id = stream_id;
    publish_ = PublishState::Pending;
    publish_stream_ = stream_id;
    publish_name_ = ev.name;
    events.emplace_back(std::move(ev));
  } else if (name == "deleteStream" || name == "FCUnpublish" || name == "closeStream") {
    if (publish_ == PublishState::Pending || publish_ == PublishState::Accepted) {
      events.emplace_back(UnpublishEvent{name});
      publish_ = PublishState::None;
    }
  } else if (name == "play") {
    publish_stream_ = stream_id;
    on_status("error", "NetStream.Play.StreamNotFound", "this server only accepts publishers");
  } else if (ignored_.size() < kMaxIgnoredNames) {
    ignored_.push_back(name.substr(0, 64));
  }
}

void ServerSession::accept_publish() {
  if (publish_ != PublishState::Pending) return;
  publish_ = PublishState::Accepted;
  std::vector<std::uint8_t> begin = {0, 0};  // Stream Begin
  for (int i = 3; i >= 0; --i)
    begin.push_back(static_cast<std::uint8_t>(publish_stream_ >> (8 * i)));
  send(2, kUserControl, 0, begin);
  // The name without its query: a token never travels back, not even to its sender.
  on_status("status", "NetStream.Publish.Start",
            publish_name_.substr(0, publish_name_.find('?')) + " is now published.");
}

void ServerSession::reject_publish(std::string_view code, std::string_view description) {
  if (publish_ != PublishState::Pending) return;
  publish_ = PublishState::Rejected;
  on_status("error", code, description);
}

void ServerSession::send(std::uint32_t csid, std::uint8_t type, std::uint32_t stream_id,
                         std::span<const std::uint8_t> payload) {
  writer_.write(output_, csid, type, stream_id, 0, payload);
}

void ServerSession::send_control(std::uint8_t type, std::uint32_t value, int extra) {
  std::vector<std::uint8_t> p;
  for (int i = 3; i >= 0; --i) p.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
  if (extra >= 0) p.push_back(static_cast<std::uint8_t>(extra));
  send(2, type, 0, p);
}

void ServerSession::send_command(std::uint32_t csid, std::uint32_t stream_id,
                                 const std::vector<AmfValue>& values) {
  std::vector<std::uint8_t> body;
  for (const auto& v : values) encode(v, body);
  send(csid, kCommandAmf0, stream_id, body);
}

void ServerSession::on_status(std::string_view level, std::string_view code,
                              std::string_view description) {
  send_command(5, publish_stream_,
               {AmfValue::str("onStatus"), AmfValue::num(0), AmfValue::null(),
                AmfValue::object({prop("level", AmfValue::str(std::string(level))),
                                  prop("code", AmfValue::str(std::string(code))),
                                  prop("description", AmfValue::str(std::string(description)))})});
}

}  // namespace arcly::rtmp
