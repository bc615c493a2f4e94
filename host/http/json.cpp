#include "json.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace arcly::host::http {

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

void Json::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_items_.empty()) {
    if (has_items_.back()) out_ += ',';
    has_items_.back() = true;
  }
}

Json& Json::begin_object() {
  separate();
  out_ += '{';
  has_items_.push_back(false);
  return *this;
}

Json& Json::end_object() {
  out_ += '}';
  has_items_.pop_back();
  return *this;
}

Json& Json::begin_array() {
  separate();
  out_ += '[';
  has_items_.push_back(false);
  return *this;
}

Json& Json::end_array() {
  out_ += ']';
  has_items_.pop_back();
  return *this;
}

Json& Json::key(std::string_view k) {
  separate();
  out_ += '"';
  out_ += json_escape(k);
  out_ += "\":";
  after_key_ = true;
  return *this;
}

Json& Json::value(std::string_view v) {
  separate();
  out_ += '"';
  out_ += json_escape(v);
  out_ += '"';
  return *this;
}

Json& Json::value(bool v) {
  separate();
  out_ += v ? "true" : "false";
  return *this;
}

Json& Json::value(std::int64_t v) {
  separate();
  out_ += std::to_string(v);
  return *this;
}

Json& Json::value(std::uint64_t v) {
  separate();
  out_ += std::to_string(v);
  return *this;
}

Json& Json::value(double v) {
  separate();
  if (!std::isfinite(v)) {
    out_ += "null";
    return *this;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, ec == std::errc() ? end : buf);
  return *this;
}

Json& Json::raw(std::string_view json) {
  separate();
  out_ += json;
  return *this;
}

Json& Json::null() {
  separate();
  out_ += "null";
  return *this;
}

std::string json_error(std::string_view message, std::string_view field) {
  Json j;
  j.begin_object().field("error", message);
  if (!field.empty()) j.field("field", field);
  j.end_object();
  return j.str();
}

}  // namespace arcly::host::http
