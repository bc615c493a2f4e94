#include "api.hpp"

#include <filesystem>

#include <set>

#include <glib.h>
#include <gst/pbutils/pbutils.h>
#include <json-glib/json-glib.h>

#include <algorithm>
#include <cmath>

#include "arcly/error.hpp"
#include "json.hpp"

namespace arcly::host::http {

using namespace std::chrono_literals;

namespace {

// Event bounds: pre is bounded by the cache window anyway; post by what a clip
// should hold before an operator asks again (a second event extends it).
constexpr double kMaxPreSeconds = 3600;
constexpr double kMaxPostSeconds = 3600;
constexpr std::size_t kMaxLabel = 200;

std::int64_t ms(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// "from"/"to" query values: unix seconds (decimals allowed) or ISO 8601 with a zone.
std::optional<std::int64_t> parse_time_ms(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (!text.empty() && *end == '\0' && std::isfinite(v) && v >= 0 && v < 1e11)
    return static_cast<std::int64_t>(v * 1000);
  GDateTime* dt = g_date_time_new_from_iso8601(text.c_str(), nullptr);
  if (!dt) return std::nullopt;
  const std::int64_t out = g_date_time_to_unix(dt) * 1000 + g_date_time_get_microsecond(dt) / 1000;
  g_date_time_unref(dt);
  return out;
}

struct TimeRange {
  std::int64_t from = 0;
  std::int64_t to = INT64_MAX;
};

// Reads ?from=&to=; an error response when either is malformed.
std::optional<Response> read_range(const Request& r, TimeRange& range) {
  for (const char* name : {"from", "to"}) {
    auto it = r.query.find(name);
    if (it == r.query.end()) continue;
    auto v = parse_time_ms(it->second);
    if (!v)
      return error_response(400,
                            "'" + it->second +
                                "' is not a time (unix seconds or ISO 8601, e.g. "
                                "2026-01-31T12:00:00Z)",
                            name);
    (std::string_view(name) == "from" ? range.from : range.to) = *v;
  }
  if (range.from > range.to) return error_response(400, "'from' is after 'to'", "from");
  return std::nullopt;
}

void write_worker(Json& j, const WorkerView& w) {
  j.begin_object()
      .field("section", w.section)
      .field("protocol", w.protocol)
      .field("name", w.name)
      .field("state", w.state)
      .field("key", w.key)
      .field("peer", w.peer)
      .field("attempts", w.attempts)
      .field("reconnects", w.reconnects)
      .field("frames", w.frames)
      .field("bytes", w.bytes)
      .field("last_failure", w.last_failure)
      .field("last_error", w.last_error)
      .field("rejected", w.rejected)
      .field("in_grace", w.in_grace)
      .end_object();
}

void write_event(Json& j, const EventView& e) {
  j.begin_object()
      .field("id", e.id)
      .field("key", e.key)
      .field("label", e.label)
      .field("recorder", e.recorder)
      .field("state", e.state)
      .field("file", e.file)
      .field("error", e.error)
      .field("created_unix_ms", e.created_unix_ms)
      .field("pre", static_cast<double>(e.pre_ms) / 1000.0)
      .field("post", static_cast<double>(e.post_ms) / 1000.0);
  j.key("pre_obtained");
  if (e.pre_obtained_ms >= 0)
    j.value(static_cast<double>(e.pre_obtained_ms) / 1000.0);
  else
    j.null();
  j.field("trigger_ts", e.trigger_ts)
      .field("first_ts", e.first_ts)
      .field("end_ts", e.end_ts)
      .field("extended", e.extended)
      .end_object();
}

}  // namespace

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  std::size_t start = 1;
  if (path.empty() || path[0] != '/') return out;
  while (start <= path.size()) {
    const auto slash = path.find('/', start);
    const auto end = slash == std::string::npos ? path.size() : slash;
    gchar* part = g_uri_unescape_segment(path.c_str() + start, path.c_str() + end, nullptr);
    // A segment with an escaped NUL or "/" cannot be decoded: keep it invalid.
    out.push_back(part ? part : std::string("\x01"));
    g_free(part);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

Response json_response(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

Response error_response(int status, std::string_view message, std::string_view field) {
  return json_response(status, json_error(message, field));
}

bool Api::is_snapshot(const Request& r) {
  const auto p = split_path(r.path);
  return r.method == "GET" && p.size() == 5 && p[0] == "v1" && p[1] == "streams" &&
         p[4] == "snapshot.jpg";
}

Response Api::handle(const Request& r) {
  const auto p = split_path(r.path);
  const bool get = r.method == "GET" || r.method == "HEAD";
  auto method_not_allowed = [&](const char* allowed) {
    Response resp =
        error_response(405, r.method + " is not allowed on " + r.path + " (use " + allowed + ")");
    resp.headers.emplace_back("Allow", allowed);
    return resp;
  };
  auto need_admin = [&]() -> std::optional<Response> {
    if (r.role == Role::Admin) return std::nullopt;
    return error_response(403, "this needs the admin token (token=), not the read-only one",
                          "Authorization");
  };

  if (p.size() == 1 && p[0] == "healthz") {
    if (!get) return method_not_allowed("GET");
    return json_response(200, "{\"status\":\"ok\"}");
  }
  if (p.size() == 1 && p[0] == "metrics") {
    if (!get) return method_not_allowed("GET");
    return metrics();
  }
  if (p.empty() || p[0] != "v1") return error_response(404, "no such resource: " + r.path);

  if (p.size() >= 2 && p[1] == "streams") {
    if (p.size() == 2) {
      if (!get) return method_not_allowed("GET");
      return streams();
    }
    if (p.size() < 4) return error_response(404, "no such resource: " + r.path);
    std::string why;
    auto key = StreamKey::try_parse(p[2] + "/" + p[3], &why);
    if (!key) return error_response(400, why, "key");
    if (p.size() == 4) {
      if (!get) return method_not_allowed("GET");
      return stream(*key);
    }
    if (p.size() == 5 && p[4] == "kick") {
      if (r.method != "POST") return method_not_allowed("POST");
      if (auto denied = need_admin()) return *denied;
      return kick(*key);
    }
    if (p.size() == 5 && p[4] == "snapshot.jpg") {
      if (!get) return method_not_allowed("GET");
      return snapshot(r);
    }
    return error_response(404, "no such resource: " + r.path);
  }
  if (p.size() == 2 && p[1] == "workers") {
    if (!get) return method_not_allowed("GET");
    return workers();
  }
  if (p.size() == 2 && p[1] == "egress") {
    if (!get) return method_not_allowed("GET");
    return egress();
  }
  if (p.size() == 2 && p[1] == "recorders") {
    if (!get) return method_not_allowed("GET");
    return recorders();
  }
  if (p.size() == 2 && p[1] == "events") {
    if (r.method == "POST") {
      if (auto denied = need_admin()) return *denied;
      return post_event(r);
    }
    if (!get) return method_not_allowed("GET, POST");
    return events(r);
  }
  if (p.size() == 3 && p[1] == "events") {
    if (!get) return method_not_allowed("GET");
    return event(p[2]);
  }
  if (p.size() == 2 && p[1] == "recordings") {
    if (!get) return method_not_allowed("GET");
    return recordings(r);
  }
  if (p.size() == 3 && p[1] == "recordings" && p[2] == "export") {
    if (!get) return method_not_allowed("GET");
    // The server streams a valid export itself (is_export); here only its errors.
    ExportPlan plan;
    if (auto bad = plan_export(r, plan)) return *bad;
    return error_response(500, "the export is streamed by the HTTP server, not answered here");
  }
  return error_response(404, "no such resource: " + r.path);
}

Response Api::streams() {
  Json j;
  j.begin_object().key("streams").begin_array();
  auto engine = target_.engine();
  std::vector<StreamHandle> list = engine->streams();
  std::sort(list.begin(), list.end(),
            [](const StreamHandle& a, const StreamHandle& b) { return a->key() < b->key(); });
  for (const auto& s : list) {
    Response one = stream(s->key());
    if (one.status == 200) j.raw(one.body);  // ended meanwhile: left out
  }
  j.end_array().end_object();
  return json_response(200, j.str());
}

Response Api::stream(const StreamKey& key) {
  auto engine = target_.engine();
  StreamHandle s = engine->find_stream(key);
  if (!s) return error_response(404, "no stream '" + key.str() + "' is being published", "key");
  const auto q = s->qos();
  std::uint64_t drops = 0, lag_events = 0;
  for (const auto& sub : q.per_subscriber) {
    drops += sub.dropped;
    lag_events += sub.lag_events;
  }
  Json j;
  j.begin_object().field("key", key.str()).field("app", key.app()).field("stream", key.stream());
  j.key("tracks").begin_array();
  for (const auto& config : s->cached_configs()) {
    const auto& f = config.frame();
    j.begin_object()
        .field("track", static_cast<std::uint64_t>(f.track))
        .field("kind", media_kind_name(f.kind))
        .field("codec", codec_name(f.codec))
        .field("caps", f.info ? f.info->description : std::string())
        .end_object();
  }
  j.end_array();
  j.field("bitrate_bps", q.bitrate_bps)
      .field("fps", q.fps)
      .field("gop_frames", q.last_gop_frames)
      .field("frames", q.frames)
      .field("bytes", q.bytes)
      .field("keyframes", q.keyframes);
  j.key("last_frame_age_ms");
  if (q.since_last_frame.count() >= 0)
    j.value(ms(q.since_last_frame));
  else
    j.null();
  j.field("uptime_ms", ms(std::chrono::steady_clock::now() - s->started_at()))
      .field("publish_started_unix_ms", unix_ms(q.publish_started));
  j.key("publisher");
  const WorkerView* publisher = nullptr;
  const auto workers = target_.workers();
  for (const auto& w : workers) {
    if (w.key == key.str()) publisher = &w;
  }
  if (publisher) {
    j.begin_object()
        .field("worker", publisher->section)
        .field("protocol", publisher->protocol)
        .field("peer", publisher->peer)
        .field("state", publisher->state)
        .end_object();
  } else {
    j.null();
  }
  j.field("subscribers", static_cast<std::uint64_t>(q.subscribers))
      .field("lag_drops", drops)
      .field("lag_events", lag_events);
  // The cache window held: from the oldest keyframe a joiner could start at to
  // the live edge (what an event recording can reach back).
  auto& gop = s->gop();
  const auto newest = gop.newest_pts();
  auto oldest = gop.covering(std::chrono::hours(24 * 365), s->bus().oldest(), s->bus().tail());
  j.key("cache")
      .begin_object()
      .field("frames", q.cached_frames)
      .field("window_held_ms", oldest ? (newest - oldest->pts) / 1'000'000 : std::int64_t{0})
      .field("window_configured_ms", ms(gop.bounds().window))
      .end_object();
  j.end_object();
  return json_response(200, j.str());
}

Response Api::kick(const StreamKey& key) {
  auto result = target_.kick(key);
  if (!result.found)
    return error_response(404, "no stream '" + key.str() + "' is being published", "key");
  Json j;
  j.begin_object().field("key", key.str()).field("kicked", result.publisher).end_object();
  return json_response(200, j.str());
}

Response Api::workers() {
  Json j;
  j.begin_object().key("workers").begin_array();
  for (const auto& w : target_.workers()) write_worker(j, w);
  j.end_array().end_object();
  return json_response(200, j.str());
}

Response Api::egress() {
  Json j;
  j.begin_object().key("servers").begin_array();
  for (const auto& e : target_.egress()) {
    j.begin_object()
        .field("protocol", e.protocol)
        .field("port", static_cast<std::int64_t>(e.port))
        .field("readers", e.readers)
        .field("readers_total", e.readers_total)
        .field("last_refusal", e.last_refusal)
        .field("slow_readers", e.slow_readers)
        .key("refused")
        .begin_object();
    for (const auto& [reason, n] : e.refused) j.field(reason, n);
    j.end_object().key("sessions").begin_array();
    for (const auto& r : e.sessions) {
      j.begin_object()
          .field("key", r.key)
          .field("address", r.address)
          .field("transport", r.transport)
          .field("mode", r.mode)
          .field("bytes", r.bytes)
          .field("lag_ms", r.lag_ms)
          .end_object();
    }
    j.end_array().end_object();
  }
  j.end_array().end_object();
  return json_response(200, j.str());
}

Response Api::recorders() {
  Json j;
  j.begin_object().key("recorders").begin_array();
  for (const auto& r : target_.recorders()) {
    j.begin_object()
        .field("section", r.section)
        .field("name", r.name)
        .field("mode", r.mode)
        .field("dir", r.dir)
        .field("key", r.key)
        .field("state", r.state)
        .field("error", r.error)
        .field("segments", r.segments)
        .field("bytes", r.bytes)
        .field("errors", r.errors)
        .field("current_segment", r.current)
        .field("last_closed", r.last_closed);
    j.key("last_closed_unix_ms");
    if (r.last_closed_unix_ms >= 0)
      j.value(r.last_closed_unix_ms);
    else
      j.null();
    j.end_object();
  }
  j.end_array().end_object();
  return json_response(200, j.str());
}

Response Api::post_event(const Request& r) {
  JsonParser* parser = json_parser_new();
  GError* err = nullptr;
  struct Unref {
    JsonParser* p;
    ~Unref() { g_object_unref(p); }
  } unref{parser};
  if (!json_parser_load_from_data(parser, r.body.data(), static_cast<gssize>(r.body.size()),
                                  &err)) {
    std::string why = err ? err->message : "?";
    g_clear_error(&err);
    return error_response(400, "the body is not valid JSON: " + why, "body");
  }
  JsonNode* root = json_parser_get_root(parser);
  if (!root || !JSON_NODE_HOLDS_OBJECT(root))
    return error_response(
        400, "the body must be a JSON object {\"key\", \"pre\", \"post\", \"label\"}", "body");
  JsonObject* o = json_node_get_object(root);
  static const char* const kKnown[] = {"key", "pre", "post", "label"};
  GList* members = json_object_get_members(o);
  for (GList* m = members; m; m = m->next) {
    const char* name = static_cast<const char*>(m->data);
    if (std::none_of(std::begin(kKnown), std::end(kKnown),
                     [&](const char* k) { return std::string_view(k) == name; })) {
      g_list_free(members);
      return error_response(
          400, std::string("unknown field '") + name + "' (expected key, pre, post, label)", name);
    }
  }
  g_list_free(members);

  JsonNode* key_node = json_object_get_member(o, "key");
  if (!key_node || !JSON_NODE_HOLDS_VALUE(key_node) ||
      json_node_get_value_type(key_node) != G_TYPE_STRING)
    return error_response(400, "'key' is required: a stream key such as \"live/cam3\"", "key");
  std::string why;
  auto key = StreamKey::try_parse(json_node_get_string(key_node), &why);
  if (!key) return error_response(400, why, "key");

  EventRequest req{*key};
  auto seconds = [&](const char* name, double max, double fallback,
                     std::chrono::milliseconds& out) -> std::optional<Response> {
    JsonNode* n = json_object_get_member(o, name);
    double v = fallback;
    if (n) {
      const GType t = JSON_NODE_HOLDS_VALUE(n) ? json_node_get_value_type(n) : G_TYPE_INVALID;
      if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE)
        return error_response(400, std::string("'") + name + "' must be a number of seconds", name);
      v = json_node_get_double(n);
    }
    if (!std::isfinite(v) || v < 0 || v > max)
      return error_response(400,
                            std::string("'") + name + "' must be from 0 to " +
                                std::to_string(static_cast<int>(max)) + " seconds",
                            name);
    out = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(v * 1000.0)));
    return std::nullopt;
  };
  if (auto bad = seconds("pre", kMaxPreSeconds, 10, req.pre)) return *bad;
  if (auto bad = seconds("post", kMaxPostSeconds, 30, req.post)) return *bad;
  if (JsonNode* n = json_object_get_member(o, "label")) {
    if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
      return error_response(400, "'label' must be a string", "label");
    req.label = json_node_get_string(n);
    if (req.label.size() > kMaxLabel)
      return error_response(400, "'label' is longer than 200 bytes", "label");
    if (!g_utf8_validate(req.label.data(), static_cast<gssize>(req.label.size()), nullptr))
      return error_response(400, "'label' is not UTF-8", "label");
  }
  try {
    const EventView e = target_.trigger_event(req);
    Json j;
    write_event(j, e);
    Response resp = json_response(201, j.str());
    resp.headers.emplace_back("Location", "/v1/events/" + e.id);
    return resp;
  } catch (const Error& e) {
    switch (e.code()) {
      case Errc::StreamNotFound:
        return error_response(404, e.what(), "key");
      case Errc::InvalidArgument:
        return error_response(409, e.what(), "key");
      default:
        return error_response(500, e.what());
    }
  }
}

Response Api::events(const Request& r) {
  TimeRange range;
  if (auto bad = read_range(r, range)) return *bad;
  std::string key;
  if (auto it = r.query.find("key"); it != r.query.end()) {
    std::string why;
    if (!StreamKey::try_parse(it->second, &why)) return error_response(400, why, "key");
    key = it->second;
  }
  Json j;
  j.begin_object().key("events").begin_array();
  for (const auto& e : target_.events()) {
    if (!key.empty() && e.key != key) continue;
    if (e.created_unix_ms < range.from || e.created_unix_ms > range.to) continue;
    write_event(j, e);
  }
  j.end_array().end_object();
  return json_response(200, j.str());
}

Response Api::event(const std::string& id) {
  for (const auto& e : target_.events()) {
    if (e.id == id) {
      Json j;
      write_event(j, e);
      return json_response(200, j.str());
    }
  }
  return error_response(404, "no event '" + id + "'", "id");
}

Response Api::recordings(const Request& r) {
  TimeRange range;
  if (auto bad = read_range(r, range)) return *bad;
  std::string key;
  if (auto it = r.query.find("key"); it != r.query.end()) {
    std::string why;
    if (!StreamKey::try_parse(it->second, &why)) return error_response(400, why, "key");
    key = it->second;
  }
  Json j;
  j.begin_object().key("recordings").begin_array();
  for (const auto& rec : target_.recordings()) {
    if (!key.empty() && rec.key != key) continue;
    if (rec.start_unix_ms < range.from || rec.start_unix_ms > range.to) continue;
    j.begin_object()
        .field("key", rec.key)
        .field("recorder", rec.recorder)
        .field("file", rec.file)
        .field("bytes", rec.bytes)
        .field("start_unix_ms", rec.start_unix_ms)
        .end_object();
  }
  j.end_array().end_object();
  return json_response(200, j.str());
}

bool Api::is_export(const Request& r) {
  const auto p = split_path(r.path);
  return (r.method == "GET" || r.method == "HEAD") && p.size() == 3 && p[0] == "v1" &&
         p[1] == "recordings" && p[2] == "export";
}

namespace {

// How long a recording file plays (GstDiscoverer reads its headers), -1 if unknown.
std::int64_t file_duration_ms(const std::string& file) {
  GstDiscoverer* d = gst_discoverer_new(5 * GST_SECOND, nullptr);
  if (!d) return -1;
  gchar* uri = gst_filename_to_uri(file.c_str(), nullptr);
  GstDiscovererInfo* info = uri ? gst_discoverer_discover_uri(d, uri, nullptr) : nullptr;
  std::int64_t out = -1;
  if (info && gst_discoverer_info_get_result(info) == GST_DISCOVERER_OK &&
      GST_CLOCK_TIME_IS_VALID(gst_discoverer_info_get_duration(info)))
    out = static_cast<std::int64_t>(gst_discoverer_info_get_duration(info) / GST_MSECOND);
  if (info) gst_discoverer_info_unref(info);
  g_free(uri);
  g_object_unref(d);
  return out;
}

std::string utc_stamp(std::int64_t unix_ms) {
  GDateTime* t = g_date_time_new_from_unix_utc(unix_ms / 1000);
  if (!t) return "0";
  gchar* s = g_date_time_format(t, "%Y%m%dT%H%M%SZ");
  std::string out = s ? s : "0";
  g_free(s);
  g_date_time_unref(t);
  return out;
}

}  // namespace

std::optional<Response> Api::plan_export(const Request& r, ExportPlan& plan) {
  auto key_it = r.query.find("key");
  if (key_it == r.query.end() || key_it->second.empty())
    return error_response(400, "'key' is required: the stream key, e.g. live/cam3", "key");
  std::string why;
  auto key = StreamKey::try_parse(key_it->second, &why);
  if (!key) return error_response(400, why, "key");
  for (const char* name : {"from", "to"}) {
    if (!r.query.contains(name))
      return error_response(
          400,
          std::string("'") + name +
              "' is required (unix seconds or ISO 8601, e.g. 2026-01-31T12:00:00Z)",
          name);
  }
  TimeRange range;
  if (auto bad = read_range(r, range)) return *bad;
  if (range.from >= range.to) return error_response(400, "'from' must be before 'to'", "from");

  std::optional<std::string> wanted;
  if (auto it = r.query.find("recorder"); it != r.query.end()) wanted = it->second;
  std::map<std::string, std::string> modes;  // section -> mode
  // A segment still being written is not exported: its file is not finalized yet
  // (splitmuxsrc cannot open it reliably), and a range reaching "now" ends with the
  // last finalized segment.
  std::set<std::pair<std::string, std::string>> open;  // (section, file name)
  for (const auto& rv : target_.recorders()) {
    modes[rv.section] = rv.mode;
    if (!rv.current.empty())
      open.emplace(rv.section, std::filesystem::path(rv.current).filename().string());
  }
  if (wanted && !modes.contains(*wanted))
    return error_response(404, "no recorder '" + *wanted + "' (see GET /v1/recorders)", "recorder");

  // One recorder's segments (event clips are files of their own: not by default).
  std::map<std::string, std::vector<RecordingView>> by_recorder;
  for (auto& rec : target_.recordings()) {
    if (rec.key != key->str() || rec.start_unix_ms < 0) continue;
    if (wanted ? rec.recorder != *wanted : modes[rec.recorder] == "events") continue;
    if (open.contains({rec.recorder, std::filesystem::path(rec.file).filename().string()}))
      continue;
    by_recorder[rec.recorder].push_back(std::move(rec));
  }
  for (auto& [recorder, list] : by_recorder) {
    std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) {
      return a.start_unix_ms != b.start_unix_ms ? a.start_unix_ms < b.start_unix_ms
                                                : a.file < b.file;
    });
    // The first segment: the one holding `from` (the last to start at or before
    // it, if it lasts past `from`: after a gap it may not), else the first after.
    std::size_t first =
        static_cast<std::size_t>(std::upper_bound(list.begin(), list.end(), range.from,
                                                  [](std::int64_t t, const RecordingView& v) {
                                                    return t < v.start_unix_ms;
                                                  }) -
                                 list.begin());
    if (first > 0) {
      const auto& before = list[first - 1];
      const std::int64_t d = file_duration_ms(before.file);
      if (d < 0 || before.start_unix_ms + d > range.from) --first;
    }
    plan.files.clear();
    for (std::size_t i = first; i < list.size() && list[i].start_unix_ms < range.to; ++i)
      plan.files.push_back(list[i].file);
    if (plan.files.empty()) continue;
    const std::int64_t origin = list[first].start_unix_ms;
    plan.key = key->str();
    plan.recorder = recorder;
    plan.start_ns = std::max<std::int64_t>(0, range.from - origin) * 1'000'000;
    plan.stop_ns = (range.to - origin) * 1'000'000;
    plan.from_unix_ms = range.from;
    plan.to_unix_ms = range.to;
    plan.filename = key->app() + "_" + key->stream() + "-" + utc_stamp(range.from) + ".mp4";
    return std::nullopt;
  }
  return error_response(404,
                        "no recorded footage of '" + key->str() + "' between " +
                            utc_stamp(range.from) + " and " + utc_stamp(range.to) +
                            (wanted ? " in recorder '" + *wanted + "'" : std::string()),
                        "key");
}

Response Api::metrics() {
  Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = render_metrics(target_);
  return r;
}

}  // namespace arcly::host::http
