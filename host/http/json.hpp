// Json — writes one JSON text, value by value; the control plane's only JSON writer.
//
//   Json j; j.begin_object().field("key", "live/cam").field("fps", 30.0).end_object();
//
// Commas and escaping are handled here; non-finite numbers become null. Parsing
// request bodies is json-glib's job (see api.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace arcly::host::http {

// JSON string escaping (quotes, backslash, control characters; UTF-8 passes through).
std::string json_escape(std::string_view s);

class Json {
 public:
  Json& begin_object();
  Json& end_object();
  Json& begin_array();
  Json& end_array();
  Json& key(std::string_view k);
  Json& value(std::string_view v);
  Json& value(const char* v) { return value(std::string_view(v)); }
  Json& value(const std::string& v) { return value(std::string_view(v)); }
  Json& value(bool v);
  Json& value(std::int64_t v);
  Json& value(std::uint64_t v);
  Json& value(int v) { return value(static_cast<std::int64_t>(v)); }
  Json& value(long long v) { return value(static_cast<std::int64_t>(v)); }
  Json& value(unsigned long long v) { return value(static_cast<std::uint64_t>(v)); }
  Json& value(double v);
  Json& null();
  // A value already written as JSON (e.g. by another Json).
  Json& raw(std::string_view json);
  template <class T>
  Json& field(std::string_view k, const T& v) {
    key(k);
    return value(v);
  }
  const std::string& str() const { return out_; }

 private:
  void separate();
  std::string out_;
  std::vector<bool> has_items_;  // per open container
  bool after_key_ = false;
};

// {"error": message, "field": field} (field omitted when empty).
std::string json_error(std::string_view message, std::string_view field = {});

}  // namespace arcly::host::http
