// libFuzzer target: the RTMP server session (handshake, chunk stream, protocol
// control, AMF0 commands and data, FLV tag headers) fed arbitrary bytes.
//
// Input: byte 0 picks the mode — bit 0: prepend a valid C0+C1+C2 so that the
// fuzzer spends its time on the chunk stream; bits 1-7: the size of each feed()
// call (1..128, times 37), so chunk boundaries fall anywhere. Invariants: only
// ProtocolError escapes; a publish is answered either way; bounded buffering.
#include <cstddef>
#include <cstdint>
#include <utility>
#include <variant>
#include <vector>

#include "flv.hpp"
#include "session.hpp"

using namespace arcly::rtmp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  std::vector<std::uint8_t> input;
  if (mode & 1) {
    input.assign(1 + 2 * kHandshakeSize, 0x42);
    input[0] = 3;
  }
  input.insert(input.end(), data + 1, data + size);
  const std::size_t step = static_cast<std::size_t>((mode >> 1) + 1) * 37;

  SessionOptions opts;
  opts.seed = 1;
  opts.limits.max_message = 1 << 20;
  opts.limits.max_buffered = 4 << 20;
  ServerSession s(opts);
  bool reject_next = false;
  try {
    for (std::size_t off = 0; off < input.size(); off += step) {
      const std::size_t n = std::min(step, input.size() - off);
      std::span<const std::uint8_t> in = std::span(input).subspan(off, n);
      do {
        auto events = s.feed(std::exchange(in, {}));
        for (auto& ev : events) {
          if (std::holds_alternative<PublishEvent>(ev)) {
            // Alternate the answers so that both paths are explored.
            if (reject_next) {
              s.reject_publish("NetStream.Publish.BadName", "taken");
            } else {
              s.accept_publish();
            }
            reject_next = !reject_next;
          } else if (auto* m = std::get_if<MediaEvent>(&ev)) {
            try {
              if (m->type == kVideo) {
                auto t = parse_video_tag(m->payload);
                if (t.data_offset > m->payload.size()) __builtin_trap();
              } else {
                auto t = parse_audio_tag(m->payload);
                if (t.data_offset > m->payload.size()) __builtin_trap();
                if (t.sequence_header)
                  parse_aac_config(std::span(m->payload).subspan(t.data_offset));
              }
            } catch (const ProtocolError&) {
            }
          }
        }
        s.take_output();
      } while (s.paused());
    }
  } catch (const ProtocolError&) {
  }
  return 0;
}
