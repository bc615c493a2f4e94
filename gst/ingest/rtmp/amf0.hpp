// AMF0 — the value encoding of RTMP commands and metadata (Action Message
// Format 0, Adobe's "AMF 0 File Format Specification").
//
// decode_all() reads every value of a command or data message. It accepts
// number, boolean, string, object, null, undefined, ECMA array, strict array,
// date, long string and typed object; references, AMF3 switches and anything
// unknown throw ProtocolError naming the marker and the offset. Nesting
// and the value count are limited (kMaxDepth, kMaxValues) so that a hostile
// peer can exhaust neither the stack nor the memory.
// encode() writes what the server needs to answer (number, boolean, string,
// object, null, undefined, ECMA array).
//
// Pure C++: no GStreamer, no engine; fuzzed by fuzz/rtmp_session.cpp.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace arcly::rtmp {

// A peer broke the RTMP protocol; what() says how.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class AmfType : std::uint8_t {
  Number = 0x00,
  Boolean = 0x01,
  String = 0x02,
  Object = 0x03,
  Null = 0x05,
  Undefined = 0x06,
  EcmaArray = 0x08,
  StrictArray = 0x0a,
  Date = 0x0b,
  LongString = 0x0c,
};

struct AmfProperty;

struct AmfValue {
  AmfType type = AmfType::Null;
  double number = 0;                    // Number, Date (ms since the epoch)
  bool boolean = false;                 // Boolean
  std::string string;                   // String, LongString
  std::vector<AmfProperty> properties;  // Object, EcmaArray (in wire order)
  std::vector<AmfValue> items;          // StrictArray

  static AmfValue num(double v);
  static AmfValue boolean_value(bool v);
  static AmfValue str(std::string v);
  static AmfValue null();
  static AmfValue undefined();
  static AmfValue object(std::vector<AmfProperty> props);

  bool is_string() const { return type == AmfType::String || type == AmfType::LongString; }
  // The named property of an Object/EcmaArray, or null.
  const AmfValue* get(std::string_view name) const;
  // The string value, or `fallback` when this is no string.
  std::string_view text(std::string_view fallback = {}) const;
};

struct AmfProperty {
  std::string name;
  AmfValue value;
};

inline constexpr int kMaxDepth = 32;
inline constexpr std::size_t kMaxValues = 65536;  // per decode_all()

std::vector<AmfValue> decode_all(std::span<const std::uint8_t> bytes);
void encode(const AmfValue& value, std::vector<std::uint8_t>& out);

}  // namespace arcly::rtmp
