#include "amf0.hpp"

#include <bit>
#include <cstring>

namespace arcly::rtmp {

AmfValue AmfValue::num(double v) {
  AmfValue a;
  a.type = AmfType::Number;
  a.number = v;
  return a;
}
AmfValue AmfValue::boolean_value(bool v) {
  AmfValue a;
  a.type = AmfType::Boolean;
  a.boolean = v;
  return a;
}
AmfValue AmfValue::str(std::string v) {
  AmfValue a;
  a.type = AmfType::String;
  a.string = std::move(v);
  return a;
}
AmfValue AmfValue::null() {
  return AmfValue{};
}
AmfValue AmfValue::undefined() {
  AmfValue a;
  a.type = AmfType::Undefined;
  return a;
}
AmfValue AmfValue::object(std::vector<AmfProperty> props) {
  AmfValue a;
  a.type = AmfType::Object;
  a.properties = std::move(props);
  return a;
}

const AmfValue* AmfValue::get(std::string_view name) const {
  for (const auto& p : properties) {
    if (p.name == name) return &p.value;
  }
  return nullptr;
}

std::string_view AmfValue::text(std::string_view fallback) const {
  return is_string() ? std::string_view(string) : fallback;
}

namespace {

class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> b) : b_(b) {}
  bool done() const { return pos_ == b_.size(); }
  std::size_t pos() const { return pos_; }

  void need(std::size_t n, const char* what) const {
    if (b_.size() - pos_ < n) {
      throw ProtocolError("AMF0: truncated " + std::string(what) + " at offset " +
                          std::to_string(pos_));
    }
  }
  std::uint8_t u8(const char* what) {
    need(1, what);
    return b_[pos_++];
  }
  std::uint32_t be(std::size_t n, const char* what) {
    need(n, what);
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | b_[pos_++];
    return v;
  }
  double f64() {
    need(8, "number");
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | b_[pos_++];
    return std::bit_cast<double>(v);
  }
  std::string text(std::size_t n, const char* what) {
    need(n, what);
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }

  AmfValue value(int depth) {
    if (depth > kMaxDepth) {
      throw ProtocolError("AMF0: values nested deeper than " + std::to_string(kMaxDepth));
    }
    if (++values_ > kMaxValues) {
      throw ProtocolError("AMF0: more than " + std::to_string(kMaxValues) + " values");
    }
    const std::size_t at = pos_;
    const std::uint8_t marker = u8("value marker");
    AmfValue v;
    switch (marker) {
      case 0x00:
        v.type = AmfType::Number;
        v.number = f64();
        return v;
      case 0x01:
        v.type = AmfType::Boolean;
        v.boolean = u8("boolean") != 0;
        return v;
      case 0x02:
        v.type = AmfType::String;
        v.string = text(be(2, "string length"), "string");
        return v;
      case 0x0c:
        v.type = AmfType::LongString;
        v.string = text(be(4, "long string length"), "long string");
        return v;
      case 0x05:
        v.type = AmfType::Null;
        return v;
      case 0x06:
      case 0x0d:  // unsupported: carries no value, read as undefined
        v.type = AmfType::Undefined;
        return v;
      case 0x03:
        v.type = AmfType::Object;
        properties(v, depth);
        return v;
      case 0x10:  // typed object: a class name, then an object
        text(be(2, "class name length"), "class name");
        v.type = AmfType::Object;
        properties(v, depth);
        return v;
      case 0x08:
        v.type = AmfType::EcmaArray;
        be(4, "ECMA array count");  // a hint only; the end marker ends it
        properties(v, depth);
        return v;
      case 0x0a: {
        v.type = AmfType::StrictArray;
        const std::uint32_t count = be(4, "strict array count");
        for (std::uint32_t i = 0; i < count; ++i) {
          need(1, "strict array item");  // a count larger than the bytes fails here
          v.items.push_back(value(depth + 1));
        }
        return v;
      }
      case 0x0b:
        v.type = AmfType::Date;
        v.number = f64();
        be(2, "date time zone");
        return v;
      default:
        throw ProtocolError("AMF0: unsupported value marker 0x" + hex(marker) + " at offset " +
                            std::to_string(at));
    }
  }

 private:
  static std::string hex(std::uint8_t b) {
    static const char digits[] = "0123456789abcdef";
    return {digits[b >> 4], digits[b & 15]};
  }

  void properties(AmfValue& v, int depth) {
    for (;;) {
      std::string name = text(be(2, "property name length"), "property name");
      if (name.empty()) {
        // An empty name before the object-end marker (0x09) ends the object.
        need(1, "object end");
        if (b_[pos_] == 0x09) {
          ++pos_;
          return;
        }
      }
      AmfValue child = value(depth + 1);
      v.properties.push_back(AmfProperty{std::move(name), std::move(child)});
    }
  }

  std::span<const std::uint8_t> b_;
  std::size_t pos_ = 0;
  std::size_t values_ = 0;
};

void put_be(std::vector<std::uint8_t>& out, std::uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

void put_name(std::vector<std::uint8_t>& out, std::string_view s) {
  put_be(out, s.size(), 2);
  out.insert(out.end(), s.begin(), s.end());
}

}  // namespace

std::vector<AmfValue> decode_all(std::span<const std::uint8_t> bytes) {
  Reader r(bytes);
  std::vector<AmfValue> out;
  while (!r.done()) out.push_back(r.value(0));
  return out;
}

void encode(const AmfValue& v, std::vector<std::uint8_t>& out) {
  switch (v.type) {
    case AmfType::Number:
      out.push_back(0x00);
      put_be(out, std::bit_cast<std::uint64_t>(v.number), 8);
      return;
    case AmfType::Boolean:
      out.push_back(0x01);
      out.push_back(v.boolean ? 1 : 0);
      return;
    case AmfType::String:
    case AmfType::LongString:
      if (v.string.size() > 0xffff) {
        out.push_back(0x0c);
        put_be(out, v.string.size(), 4);
        out.insert(out.end(), v.string.begin(), v.string.end());
      } else {
        out.push_back(0x02);
        put_name(out, v.string);
      }
      return;
    case AmfType::Null:
      out.push_back(0x05);
      return;
    case AmfType::Undefined:
      out.push_back(0x06);
      return;
    case AmfType::Object:
    case AmfType::EcmaArray:
      if (v.type == AmfType::Object) {
        out.push_back(0x03);
      } else {
        out.push_back(0x08);
        put_be(out, v.properties.size(), 4);
      }
      for (const auto& p : v.properties) {
        put_name(out, p.name);
        encode(p.value, out);
      }
      out.insert(out.end(), {0x00, 0x00, 0x09});
      return;
    case AmfType::StrictArray:
      out.push_back(0x0a);
      put_be(out, v.items.size(), 4);
      for (const auto& item : v.items) encode(item, out);
      return;
    case AmfType::Date:
      out.push_back(0x0b);
      put_be(out, std::bit_cast<std::uint64_t>(v.number), 8);
      put_be(out, 0, 2);
      return;
  }
}

}  // namespace arcly::rtmp
