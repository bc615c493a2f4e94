// The config loader: a table of section readers over the value types of
// config_values.hpp.
//
// Each section type is a list of fields — key, value type, where the value goes —
// read by one generic routine, so every key is parsed, reported and listed the same
// way: a missing required key, a bad value (quoting it), an unknown key (listing the
// known ones). Defaults live in the config structs (config.hpp), never here; a value
// the user wrote is used as written or refused — never raised, clamped or rounded.
// Checks that need several sections (keys published twice, recorders writing into
// each other's files, pre-roll the cache cannot hold) run after every section is read.
#include "config.hpp"

#include <glib.h>
#include <gst/gst.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <regex>
#include <set>
#include <sstream>

#include "arcly/error.hpp"
#include "config_values.hpp"
#include "requirements.hpp"
#include "url.hpp"

namespace arcly::host {
namespace {

using namespace std::chrono_literals;
namespace v = values;

std::string trim_copy(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// One section of the key file, and where its problems go.
class Section {
 public:
  Section(GKeyFile* kf, std::string group, std::vector<std::string>& problems)
      : kf_(kf), group_(std::move(group)), problems_(problems) {}

  std::optional<std::string> raw(const std::string& key) const {
    gchar* v = g_key_file_get_value(kf_, group_.c_str(), key.c_str(), nullptr);
    if (!v) return std::nullopt;
    std::string out = trim_copy(v);
    g_free(v);
    return out;
  }
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    gsize n = 0;
    gchar** keys = g_key_file_get_keys(kf_, group_.c_str(), &n, nullptr);
    for (gsize i = 0; i < n; ++i) out.emplace_back(keys[i]);
    g_strfreev(keys);
    return out;
  }
  void problem(const std::string& key, const std::string& what) {
    problems_.push_back("[" + group_ + "] " + key + ": " + what);
  }
  void section_problem(const std::string& what) { problems_.push_back("[" + group_ + "] " + what); }
  const std::string& group() const { return group_; }

 private:
  GKeyFile* kf_;
  std::string group_;
  std::vector<std::string>& problems_;
};

// A key of a section of type T: parses its text and stores the value in T, or
// reports why it cannot.
template <class T>
struct Field {
  std::string key;
  bool required = false;
  std::function<void(Section&, const std::string& text, T&)> read;
};

template <class V>
using Parser = std::function<std::optional<V>(std::string_view, std::string*)>;

template <class T, class V>
Field<T> field(std::string key, Parser<V> parse, std::function<void(T&, V)> set,
               bool required = false) {
  return {key, required, [key, parse, set](Section& s, const std::string& text, T& target) {
            std::string why;
            if (auto value = parse(text, &why))
              set(target, std::move(*value));
            else
              s.problem(key, why);
          }};
}

const Parser<std::chrono::milliseconds> kDuration = v::parse_duration;
const Parser<std::uint64_t> kSize = v::parse_size;
const Parser<StreamKey> kKey = v::parse_key;
const Parser<std::string> kPattern = v::parse_key_pattern;
const Parser<std::string> kText = [](std::string_view t, std::string*) {
  return std::optional<std::string>(t);
};
Parser<std::uint64_t> count(std::uint64_t min, std::uint64_t max) {
  return
      [min, max](std::string_view t, std::string* why) { return v::parse_count(t, why, min, max); };
}
Parser<std::string> choice(std::vector<std::string> choices) {
  return
      [choices](std::string_view t, std::string* why) { return v::parse_choice(t, choices, why); };
}

// Reads every field of `fields` present in `s` into `target`; reports missing
// required keys and unknown keys (listing the known ones).
template <class T>
void read_fields(Section& s, const std::vector<Field<T>>& fields, T& target) {
  std::set<std::string> known;
  for (const auto& f : fields) {
    known.insert(f.key);
    if (auto text = s.raw(f.key))
      f.read(s, *text, target);
    else if (f.required)
      s.problem(f.key, "is required");
  }
  for (const auto& k : s.keys()) {
    if (known.contains(k)) continue;
    std::string list;
    for (const auto& f : fields) list += (list.empty() ? "" : ", ") + f.key;
    s.problem(k, "unknown key (known here: " + list + ")");
  }
}

// The keys every ingest section shares.
template <class T>
void add_worker_fields(std::vector<Field<T>>& fields, ingest::WorkerSettings T::*worker) {
  fields.push_back(field<T, std::chrono::milliseconds>(
      "timeout", kDuration, [worker](T& t, auto d) { (t.*worker).timeout = d; }));
  fields.push_back(field<T, std::chrono::milliseconds>(
      "grace", kDuration, [worker](T& t, auto d) { (t.*worker).grace = d; }));
  fields.push_back(field<T, std::chrono::milliseconds>(
      "backoff-initial", kDuration, [worker](T& t, auto d) { (t.*worker).backoff_initial = d; }));
  fields.push_back(field<T, std::chrono::milliseconds>(
      "backoff-max", kDuration, [worker](T& t, auto d) { (t.*worker).backoff_max = d; }));
}

void check_worker(Section& s, const ingest::WorkerSettings& w) {
  if (w.timeout.count() == 0) s.problem("timeout", "must be more than 0 seconds");
  if (w.backoff_initial > w.backoff_max) {
    s.problem("backoff-initial", v::show_duration(w.backoff_initial) +
                                     " is more than backoff-max (" +
                                     v::show_duration(w.backoff_max) + ")");
  }
}

// A gst-launch description that must parse; the error names a missing element's package.
void check_launch(Section& s, const std::string& key, const std::string& description,
                  const char* what) {
  GError* err = nullptr;
  GstElement* bin = gst_parse_bin_from_description(description.c_str(), FALSE, &err);
  if (!bin) s.problem(key, std::string(what) + explain_parse_error(err ? err->message : "?"));
  if (bin) gst_object_unref(bin);
  g_clear_error(&err);
}

// `tokens=PATTERN:TOKEN;…` of a listener into `tokens`. A problem quotes only the
// pattern part, never a token.
void read_tokens(Section& s, const std::string& key, const std::string& text,
                 std::map<std::string, std::string>& tokens, bool empty_token_ok) {
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ';')) {
    const std::string t = trim_copy(item);
    if (t.empty()) continue;
    const auto colon = t.rfind(':');
    if (colon == std::string::npos || colon == 0 || (!empty_token_ok && colon + 1 == t.size())) {
      s.problem(key, "'" + t.substr(0, t.find(':')) + "…' should be PATTERN:TOKEN");
    } else {
      tokens[t.substr(0, colon)] = t.substr(colon + 1);
    }
  }
}

// ---- the section readers ---------------------------------------------------------

const std::vector<Field<AppSpec>>& app_fields() {
  static const std::vector<Field<AppSpec>> fields{
      field<AppSpec, std::chrono::milliseconds>("cache-window", kDuration,
                                                [](AppSpec& a, auto d) { a.cache_window = d; }),
      field<AppSpec, std::uint64_t>("cache-frames", count(1, 10'000'000),
                                    [](AppSpec& a, auto n) { a.cache_frames = n; }),
      field<AppSpec, std::uint64_t>("cache-bytes", kSize,
                                    [](AppSpec& a, auto n) { a.cache_bytes = n; }),
      field<AppSpec, std::uint64_t>("max-publishers", count(0, 1'000'000),
                                    [](AppSpec& a, auto n) { a.max_publishers = n; }),
      field<AppSpec, std::uint64_t>("max-subscribers", count(0, 1'000'000),
                                    [](AppSpec& a, auto n) { a.max_subscribers = n; }),
      field<AppSpec, std::chrono::milliseconds>("idle-timeout", kDuration,
                                                [](AppSpec& a, auto d) { a.idle_timeout = d; }),
  };
  return fields;
}

void read_app(Section& s, const std::string& name, Config& c) {
  AppSpec app(name);
  if (auto why = StreamKey::check_part(name); !why.empty())
    s.section_problem("application name '" + name + "': " + why);
  bool frames_written = false;
  read_fields(s, app_fields(), app);
  frames_written = s.raw("cache-frames").has_value();
  if (app.cache_bytes == 0) s.problem("cache-bytes", "must be at least 1 byte");
  if (!frames_written && app.cache_window.count() > 0) {
    // The default follows the window: room for it at 90 frames/s (30 fps video and
    // its audio) plus a GOP. A value the user wrote is never raised.
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(app.cache_window).count() + 2;
    app.cache_frames = std::max<std::size_t>(
        app.cache_frames, static_cast<std::size_t>(seconds) * kFramesPerSecondBound);
  }
  c.apps.push_back(app);
}

const std::vector<Field<RtspConfig>>& rtsp_fields() {
  static const std::vector<Field<RtspConfig>> fields = [] {
    std::vector<Field<RtspConfig>> f{
        {"url", true,
         [](Section& s, const std::string& url, RtspConfig& r) {
           r.rtsp.url = url;
           try {
             auto u = ingest::parse_url(url);
             if (u.scheme != "rtsp" && u.scheme != "rtsps")
               s.problem("url", "'" + u.redacted() + "' is not an rtsp:// or rtsps:// URL");
             else if (u.host.empty())
               s.problem("url", "'" + u.redacted() + "' has no host");
           } catch (const Error& e) {
             s.problem("url", e.what());
           }
         }},
        field<RtspConfig, StreamKey>(
            "key", kKey, [](RtspConfig& r, StreamKey k) { r.worker.key = k; }, true),
        field<RtspConfig, std::string>("transport", choice({"tcp", "udp", "auto"}),
                                       [](RtspConfig& r, std::string t) { r.rtsp.transport = t; }),
        field<RtspConfig, std::uint64_t>(
            "latency", count(0, 60000),
            [](RtspConfig& r, auto ms) { r.rtsp.latency_ms = static_cast<unsigned>(ms); }),
        field<RtspConfig, std::string>("user", kText,
                                       [](RtspConfig& r, std::string u) { r.rtsp.user = u; }),
        field<RtspConfig, std::string>("password", kText,
                                       [](RtspConfig& r, std::string p) { r.rtsp.password = p; }),
    };
    add_worker_fields(f, &RtspConfig::worker);
    return f;
  }();
  return fields;
}

void read_rtsp(Section& s, const std::string& name, Config& c) {
  RtspConfig r;
  r.worker.name = name;
  read_fields(s, rtsp_fields(), r);
  check_worker(s, r.worker);
  c.rtsp.push_back(std::move(r));
}

const std::vector<Field<SrtConfig>>& srt_fields() {
  static const std::vector<Field<SrtConfig>> fields = [] {
    auto uri = [](const char* key) {
      return Field<SrtConfig>{key, false,
                              [key](Section& s, const std::string& text, SrtConfig& sc) {
                                sc.srt.uri = text;
                                try {
                                  auto u = ingest::parse_url(text);
                                  if (u.scheme != "srt")
                                    s.problem(key, "'" + u.redacted() + "' is not an srt:// URI");
                                  else if (u.port <= 0)
                                    s.problem(key, "'" + u.redacted() + "' has no port");
                                } catch (const Error& e) {
                                  s.problem(key, e.what());
                                }
                              }};
    };
    std::vector<Field<SrtConfig>> f{
        uri("listen"),
        uri("connect"),
        {"passphrase", false,
         [](Section& s, const std::string& p, SrtConfig& sc) {
           sc.srt.passphrase = p;
           if (p.size() < 10 || p.size() > 79)
             s.problem("passphrase", "SRT needs 10 to 79 characters");
         }},
        {"pbkeylen", false,
         [](Section& s, const std::string& text, SrtConfig& sc) {
           std::string why;
           auto n = v::parse_count(text, &why, 0, 32);
           if (!n || (*n != 16 && *n != 24 && *n != 32))
             s.problem("pbkeylen", "must be 16, 24 or 32");
           else
             sc.srt.pbkeylen = static_cast<int>(*n);
         }},
        field<SrtConfig, std::uint64_t>(
            "latency", count(0, 60000),
            [](SrtConfig& sc, auto ms) { sc.srt.latency_ms = static_cast<int>(ms); }),
        field<SrtConfig, StreamKey>("default-key", kKey,
                                    [](SrtConfig& sc, StreamKey k) { sc.srt.default_key = k; }),
        {"allow", false,
         [](Section& s, const std::string& text, SrtConfig& sc) {
           sc.srt.allow.clear();  // the default allows any key
           for (const auto& p : v::split_list(text)) {
             std::string why;
             if (v::parse_key_pattern(p, &why))
               sc.srt.allow.push_back(p);
             else
               s.problem("allow", why);
           }
         }},
        {"tokens", false,
         [](Section& s, const std::string& text, SrtConfig& sc) {
           read_tokens(s, "tokens", text, sc.srt.tokens, /*empty_token_ok=*/true);
         }},
        field<SrtConfig, std::string>("streamid", kText,
                                      [](SrtConfig& sc, std::string id) { sc.srt.streamid = id; }),
        field<SrtConfig, StreamKey>("key", kKey,
                                    [](SrtConfig& sc, StreamKey k) { sc.worker.key = k; }),
    };
    add_worker_fields(f, &SrtConfig::worker);
    return f;
  }();
  return fields;
}

void read_srt(Section& s, const std::string& name, Config& c) {
  SrtConfig sc;
  sc.worker.name = name;
  auto listen = s.raw("listen");
  auto connect = s.raw("connect");
  if (listen.has_value() == connect.has_value()) {
    s.section_problem("needs exactly one of listen=srt://:PORT or connect=srt://HOST:PORT");
  }
  sc.srt.listener = listen.has_value();
  read_fields(s, srt_fields(), sc);
  if (connect && !sc.worker.key && !s.raw("key")) s.problem("key", "is required");
  if (listen && !sc.srt.uri.empty()) {
    try {
      auto u = ingest::parse_url(sc.srt.uri);
      if (u.port > 0)
        c.listeners.push_back(
            {"srt " + name, "listen", "udp", {u.host, static_cast<std::uint16_t>(u.port)}});
    } catch (const Error&) {
    }
  }
  check_worker(s, sc.worker);
  c.srt.push_back(std::move(sc));
}

// [rtmp NAME]: an RTMP publish server; rtmp://HOST:PORT/APP/STREAM publishes APP/STREAM.
const std::vector<Field<RtmpConfig>>& rtmp_fields() {
  static const std::vector<Field<RtmpConfig>> fields{
      {"listen", true,
       [](Section& s, const std::string& text, RtmpConfig& rc) {
         std::string why;
         if (v::parse_listen(text, &why))
           rc.rtmp.listen = text;
         else
           s.problem("listen", why);
       }},
      field<RtmpConfig, StreamKey>("key", kKey,
                                   [](RtmpConfig& rc, StreamKey k) { rc.rtmp.key = k; }),
      {"allow", false,
       [](Section& s, const std::string& text, RtmpConfig& rc) {
         rc.rtmp.allow.clear();
         for (const auto& p : v::split_list(text)) {
           std::string why;
           if (v::parse_key_pattern(p, &why))
             rc.rtmp.allow.push_back(p);
           else
             s.problem("allow", why);
         }
         if (rc.rtmp.allow.empty())
           s.problem("allow", "names no key pattern (leave it out to allow any key)");
       }},
      {"tokens", false,
       [](Section& s, const std::string& text, RtmpConfig& rc) {
         read_tokens(s, "tokens", text, rc.rtmp.tokens, /*empty_token_ok=*/false);
       }},
      field<RtmpConfig, std::uint64_t>(
          "max-connections", count(1, 100000),
          [](RtmpConfig& rc, auto n) { rc.rtmp.max_connections = static_cast<std::size_t>(n); }),
      field<RtmpConfig, std::chrono::milliseconds>(
          "handshake-timeout", kDuration,
          [](RtmpConfig& rc, auto d) { rc.rtmp.handshake_timeout = d; }),
      field<RtmpConfig, std::chrono::milliseconds>(
          "idle-timeout", kDuration, [](RtmpConfig& rc, auto d) { rc.rtmp.idle_timeout = d; }),
  };
  return fields;
}

void read_rtmp(Section& s, const std::string& name, Config& c) {
  RtmpConfig rc;
  rc.rtmp.name = name;
  read_fields(s, rtmp_fields(), rc);
  if (rc.rtmp.handshake_timeout.count() <= 0)
    s.problem("handshake-timeout", "must be more than 0 seconds");
  if (rc.rtmp.idle_timeout.count() <= 0) s.problem("idle-timeout", "must be more than 0 seconds");
  std::string why;
  if (auto a = v::parse_listen(rc.rtmp.listen, &why); a && s.raw("listen"))
    c.listeners.push_back({"rtmp " + name, "listen", "tcp", *a});
  c.rtmp.push_back(std::move(rc));
}

const std::vector<Field<PipelineConfig>>& pipeline_fields() {
  static const std::vector<Field<PipelineConfig>> fields = [] {
    std::vector<Field<PipelineConfig>> f{
        field<PipelineConfig, StreamKey>(
            "key", kKey, [](PipelineConfig& p, StreamKey k) { p.worker.key = k; }, true),
        {"source", true,
         [](Section& s, const std::string& src, PipelineConfig& p) {
           p.source = src;
           check_launch(s, "source", src, "is not a valid gst-launch description: ");
         }},
    };
    add_worker_fields(f, &PipelineConfig::worker);
    return f;
  }();
  return fields;
}

void read_pipeline(Section& s, const std::string& name, Config& c) {
  PipelineConfig p;
  p.worker.name = name;
  read_fields(s, pipeline_fields(), p);
  check_worker(s, p.worker);
  c.pipelines.push_back(std::move(p));
}

const std::vector<Field<RecordConfig>>& record_fields() {
  static const std::vector<Field<RecordConfig>> fields{
      field<RecordConfig, std::string>(
          "key", kPattern, [](RecordConfig& r, std::string p) { r.pattern = p; }, true),
      {"dir", false,
       [](Section& s, const std::string& d, RecordConfig& r) {
         r.dir = d;
         if (d.empty()) s.problem("dir", "is empty");
       }},
      field<RecordConfig, std::string>("format", choice({"mp4", "mkv", "ts"}),
                                       [](RecordConfig& r, std::string f) {
                                         r.format = f == "mkv"  ? RecordFormat::Mkv
                                                    : f == "ts" ? RecordFormat::Ts
                                                                : RecordFormat::Mp4;
                                       }),
      {"segment", false,
       [](Section& s, const std::string& text, RecordConfig& r) {
         std::string why;
         auto d = v::parse_duration(text, &why);
         if (!d)
           s.problem("segment", why);
         else if (d->count() < 1000 || d->count() % 1000 != 0)
           s.problem("segment", "must be a whole number of seconds, at least 1");
         else
           r.segment = std::chrono::duration_cast<std::chrono::seconds>(*d);
       }},
      field<RecordConfig, std::chrono::milliseconds>(
          "pre-roll", kDuration, [](RecordConfig& r, auto d) { r.preroll = d; }),
      field<RecordConfig, std::chrono::milliseconds>(
          "join-delay", kDuration, [](RecordConfig& r, auto d) { r.join_delay = d; }),
      {"max-age", false,
       [](Section& s, const std::string& text, RecordConfig& r) {
         std::string why;
         auto d = v::parse_duration(text, &why);
         if (!d)
           s.problem("max-age", why);
         else if (d->count() % 1000 != 0)
           s.problem("max-age", "must be a whole number of seconds");
         else
           r.max_age = std::chrono::duration_cast<std::chrono::seconds>(*d);
       }},
      field<RecordConfig, std::uint64_t>("max-bytes", kSize,
                                         [](RecordConfig& r, auto n) { r.max_bytes = n; }),
      field<RecordConfig, std::string>("mode", choice({"continuous", "events"}),
                                       [](RecordConfig& r, const std::string& m) {
                                         r.mode = m == "events" ? RecordMode::Events
                                                                : RecordMode::Continuous;
                                       }),
      {"min-free", false,
       [](Section& s, const std::string& text, RecordConfig& r) {
         // Bytes, or a share of the filesystem ("5%").
         if (!text.empty() && text.back() == '%') {
           char* end = nullptr;
           const double pct = std::strtod(text.c_str(), &end);
           if (end != text.c_str() + text.size() - 1 || !(pct > 0 && pct < 100)) {
             s.problem("min-free", "'" + text + "' is not a size or a percentage from 0 to 100");
           } else {
             r.min_free_percent = pct;
           }
           return;
         }
         std::string why;
         if (auto b = v::parse_size(text, &why))
           r.min_free_bytes = *b;
         else
           s.problem("min-free", why + ", nor a percentage such as 5%");
       }},
  };
  return fields;
}

void read_record(Section& s, const std::string& name, Config& c, const std::string& base_dir) {
  RecordConfig r;
  r.name = name;
  read_fields(s, record_fields(), r);
  if (!base_dir.empty() && !r.dir.empty() && !g_path_is_absolute(r.dir.c_str())) {
    r.dir = (std::filesystem::path(base_dir) / r.dir).lexically_normal().string();
  }
  c.records.push_back(std::move(r));
}

const std::vector<Field<OutputConfig>>& output_fields() {
  static const std::vector<Field<OutputConfig>> fields{
      field<OutputConfig, StreamKey>(
          "key", kKey, [](OutputConfig& o, StreamKey k) { o.key = k; }, true),
      {"pipeline", true,
       [](Section& s, const std::string& p, OutputConfig& o) {
         o.pipeline = p;
         check_launch(s, "pipeline", "fakesrc ! " + p, "is not valid gst-launch syntax: ");
       }},
  };
  return fields;
}

void read_output(Section& s, const std::string& name, Config& c) {
  OutputConfig o;
  o.name = name;
  read_fields(s, output_fields(), o);
  c.outputs.push_back(std::move(o));
}

// [http] (no name): the control plane. listen= takes port 0 (any free port, which
// the log names) as well, so its parse is the server's own.
const std::vector<Field<HttpConfig>>& http_fields() {
  static const std::vector<Field<HttpConfig>> fields{
      {"listen", false,
       [](Section& s, const std::string& text, HttpConfig& h) {
         std::string why;
         if (v::parse_ip_listen(text, &why))
           h.listen = text;
         else
           s.problem("listen", why);
       }},
      field<HttpConfig, std::string>("token", kText,
                                     [](HttpConfig& h, std::string t) { h.token = t; }),
      field<HttpConfig, std::string>("read-token", kText,
                                     [](HttpConfig& h, std::string t) { h.read_token = t; }),
      field<HttpConfig, std::string>("web-dir", kText,
                                     [](HttpConfig& h, std::string d) { h.web_dir = d; }),
      {"player-idle", false,
       [](Section& s, const std::string& text, HttpConfig& h) {
         std::string why;
         auto d = v::parse_duration(text, &why);
         if (!d)
           s.problem("player-idle", why);
         else if (d->count() < 1000)
           s.problem("player-idle", "must be at least 1 s (a player asks every segment)");
         else
           h.player_idle = *d;
       }},
  };
  return fields;
}

void read_http(Section& s, const std::string&, Config& c, const std::string& base_dir) {
  HttpConfig h;
  read_fields(s, http_fields(), h);
  if (!h.token.empty() && h.token == h.read_token)
    s.problem("read-token", "is the same as token (give read-only clients their own)");
  if (!base_dir.empty() && !h.web_dir.empty() && !g_path_is_absolute(h.web_dir.c_str()))
    h.web_dir = (std::filesystem::path(base_dir) / h.web_dir).lexically_normal().string();
  if (auto a = v::parse_ip_listen(h.listen, nullptr); a && a->port > 0)
    c.listeners.push_back({"http", "listen", "tcp", *a});
  c.http = h;
}

// Patterns of a list key into `out` (each checked); an empty list is a problem.
void read_patterns(Section& s, const std::string& key, const std::string& text,
                   std::vector<std::string>& out) {
  out.clear();
  for (const auto& p : v::split_list(text)) {
    std::string why;
    if (v::parse_key_pattern(p, &why))
      out.push_back(p);
    else
      s.problem(key, why);
  }
  if (out.empty()) s.problem(key, "names no key pattern");
}

// A listen= address into host and port (port 0: any free port, which the log names).
template <class T>
Field<T> listen_field() {
  return {"listen", false, [](Section& s, const std::string& text, T& t) {
            std::string why;
            if (auto a = v::parse_listen(text, &why)) {
              t.host = a->host;
              t.port = a->port;
            } else {
              s.problem("listen", why);
            }
          }};
}

std::vector<Field<RtspServerConfig>> rtsp_server_fields() {
  return {
      listen_field<RtspServerConfig>(),
      {"anonymous-read", false,
       [](Section& s, const std::string& text, RtspServerConfig& r) {
         read_patterns(s, "anonymous-read", text, r.anonymous_read);
       }},
      {"auth", false,
       [](Section& s, const std::string& text, RtspServerConfig& r) {
         r.basic = r.digest = false;
         for (const auto& m : v::split_list(text)) {
           std::string why;
           auto kind = v::parse_choice(m, {"basic", "digest"}, &why);
           if (!kind)
             s.problem("auth", why);
           else
             (*kind == "basic" ? r.basic : r.digest) = true;
         }
         if (!r.basic && !r.digest) s.problem("auth", "names no method (basic, digest)");
       }},
      field<RtspServerConfig, std::uint64_t>(
          "max-readers", count(0, 1'000'000),
          [](RtspServerConfig& r, auto n) { r.max_readers = static_cast<std::size_t>(n); }),
      field<RtspServerConfig, std::uint64_t>(
          "max-readers-per-key", count(0, 1'000'000),
          [](RtspServerConfig& r, auto n) { r.max_readers_per_key = static_cast<std::size_t>(n); }),
      field<RtspServerConfig, std::chrono::milliseconds>(
          "wait", kDuration, [](RtspServerConfig& r, auto d) { r.wait = d; }),
      field<RtspServerConfig, std::string>("start", choice({"live-edge", "keyframe"}),
                                           [](RtspServerConfig& r, const std::string& m) {
                                             r.start = m == "keyframe"
                                                           ? egress::RtspStart::Keyframe
                                                           : egress::RtspStart::LiveEdge;
                                           }),
      field<RtspServerConfig, std::string>(
          "media", choice({"per-reader", "shared"}),
          [](RtspServerConfig& r, const std::string& m) { r.shared_media = m == "shared"; }),
      {"transports", false,
       [](Section& s, const std::string& text, RtspServerConfig& r) {
         r.tcp = r.udp = false;
         for (const auto& t : v::split_list(text)) {
           std::string why;
           auto kind = v::parse_choice(t, {"tcp", "udp"}, &why);
           if (!kind)
             s.problem("transports", why);
           else
             (*kind == "tcp" ? r.tcp : r.udp) = true;
         }
         if (!r.tcp && !r.udp) s.problem("transports", "names no transport (tcp, udp)");
       }},
  };
}

// [rtsp-server] (no name): rtsp://HOST:PORT/APP/STREAM plays APP/STREAM. Users are
// `user.NAME = PASSWORD` with `read.NAME = PATTERNS` (default: every key); a
// password is never quoted back.
void read_rtsp_server(Section& section, const std::string&, Config& c, const std::string&) {
  RtspServerConfig server;
  auto fields = rtsp_server_fields();
  // One pair of fields per user named in the section.
  std::set<std::string> users, readers;
  for (const auto& k : section.keys()) {
    if (k.starts_with("user.")) users.insert(k.substr(5));
    if (k.starts_with("read.")) readers.insert(k.substr(5));
  }
  for (const auto& name : users) {
    server.users.push_back({name, "", {"*"}});
    const std::size_t i = server.users.size() - 1;
    fields.push_back(
        {"user." + name, false, [i](Section&, const std::string& password, RtspServerConfig& cfg) {
           cfg.users[i].password = password;
         }});
    if (readers.contains(name)) {
      fields.push_back({"read." + name, false,
                        [i](Section& sec, const std::string& text, RtspServerConfig& cfg) {
                          read_patterns(sec, "read." + cfg.users[i].name, text, cfg.users[i].read);
                        }});
    }
  }
  for (const auto& name : readers) {
    if (!users.contains(name))
      section.problem("read." + name, "names no user (add user." + name + " = PASSWORD)");
  }
  // Keys handled above are known to read_fields; read.NAME without a user was reported.
  for (const auto& name : readers) {
    if (!users.contains(name))
      fields.push_back({"read." + name, false, [](auto&, auto&, auto&) {}});
  }
  read_fields(section, fields, server);
  try {
    egress::validate(server);
  } catch (const std::exception& e) {
    section.section_problem(e.what());
  }
  if (server.users.empty() && server.anonymous_read.empty())
    section.section_problem(
        "serves nobody: add user.NAME = PASSWORD, or anonymous-read = PATTERNS");
  if (server.port > 0)
    c.listeners.push_back(
        {"rtsp-server", "listen", "tcp", {server.host, static_cast<std::uint16_t>(server.port)}});
  c.rtsp_server = std::move(server);
}

// [srt-server] (no name): one SRT port for many readers (m=request) and publishers
// (m=publish) of many keys, chosen by streamid.
const std::vector<Field<SrtServerConfig>>& srt_server_fields() {
  static const std::vector<Field<SrtServerConfig>> fields{
      listen_field<SrtServerConfig>(),
      {"passphrase", false,
       [](Section& s, const std::string& p, SrtServerConfig& r) {
         r.passphrase = p;
         if (p.size() < 10 || p.size() > 79)
           s.problem("passphrase", "SRT needs 10 to 79 characters");
       }},
      {"pbkeylen", false,
       [](Section& s, const std::string& text, SrtServerConfig& r) {
         std::string why;
         auto n = v::parse_count(text, &why, 0, 32);
         if (!n || (*n != 16 && *n != 24 && *n != 32))
           s.problem("pbkeylen", "must be 16, 24 or 32");
         else
           r.pbkeylen = static_cast<int>(*n);
       }},
      field<SrtServerConfig, std::uint64_t>(
          "latency", count(0, 60000),
          [](SrtServerConfig& r, auto ms) { r.latency_ms = static_cast<int>(ms); }),
      {"read-allow", false,
       [](Section& s, const std::string& text, SrtServerConfig& r) {
         read_patterns(s, "read-allow", text, r.read_allow);
       }},
      {"read-tokens", false,
       [](Section& s, const std::string& text, SrtServerConfig& r) {
         read_tokens(s, "read-tokens", text, r.read_tokens, /*empty_token_ok=*/false);
       }},
      field<SrtServerConfig, std::string>(
          "publish", choice({"yes", "no"}),
          [](SrtServerConfig& r, const std::string& m) { r.publish = m == "yes"; }),
      {"publish-allow", false,
       [](Section& s, const std::string& text, SrtServerConfig& r) {
         read_patterns(s, "publish-allow", text, r.publish_allow);
       }},
      {"publish-tokens", false,
       [](Section& s, const std::string& text, SrtServerConfig& r) {
         read_tokens(s, "publish-tokens", text, r.publish_tokens, /*empty_token_ok=*/false);
       }},
      field<SrtServerConfig, std::uint64_t>(
          "max-readers", count(0, 1'000'000),
          [](SrtServerConfig& r, auto n) { r.max_readers = static_cast<std::size_t>(n); }),
      field<SrtServerConfig, std::uint64_t>(
          "max-readers-per-key", count(0, 1'000'000),
          [](SrtServerConfig& r, auto n) { r.max_readers_per_key = static_cast<std::size_t>(n); }),
      field<SrtServerConfig, std::chrono::milliseconds>(
          "publish-timeout", kDuration, [](SrtServerConfig& r, auto d) { r.publish_timeout = d; }),
      field<SrtServerConfig, std::string>(
          "start", choice({"live-edge", "keyframe"}),
          [](SrtServerConfig& r, std::string m) { r.start = *egress::parse_reader_start(m); }),
  };
  return fields;
}

void read_srt_server(Section& s, const std::string&, Config& c, const std::string&) {
  SrtServerConfig r;
  read_fields(s, srt_server_fields(), r);
  if (r.publish_timeout.count() <= 0) s.problem("publish-timeout", "must be more than 0 seconds");
  try {
    egress::validate(r);
  } catch (const std::exception& e) {
    s.section_problem(e.what());
  }
  if (r.port > 0)
    c.listeners.push_back(
        {"srt-server", "listen", "udp", {r.host, static_cast<std::uint16_t>(r.port)}});
  c.srt_server = std::move(r);
}

struct SectionType {
  const char* type;
  std::function<void(Section&, const std::string& name, Config&, const std::string& base_dir)> read;
  bool named = true;  // [type NAME]; else [type] alone
};

const std::vector<SectionType>& section_types() {
  static const std::vector<SectionType> types{
      {"app",
       [](Section& s, const std::string& n, Config& c, const std::string&) { read_app(s, n, c); }},
      {"rtsp",
       [](Section& s, const std::string& n, Config& c, const std::string&) { read_rtsp(s, n, c); }},
      {"srt",
       [](Section& s, const std::string& n, Config& c, const std::string&) { read_srt(s, n, c); }},
      {"rtmp",
       [](Section& s, const std::string& n, Config& c, const std::string&) { read_rtmp(s, n, c); }},
      {"pipeline", [](Section& s, const std::string& n, Config& c,
                      const std::string&) { read_pipeline(s, n, c); }},
      {"record", [](Section& s, const std::string& n, Config& c,
                    const std::string& b) { read_record(s, n, c, b); }},
      {"output", [](Section& s, const std::string& n, Config& c,
                    const std::string&) { read_output(s, n, c); }},
      {"http", read_http, false},
      {"rtsp-server", read_rtsp_server, false},
      {"srt-server", read_srt_server, false},
  };
  return types;
}

// ---- checks across sections --------------------------------------------------------

// Duplicate sections and keys, which GKeyFile would merge silently (the second
// [rtsp cam1] would replace the first camera): found on the text, with line numbers.
void check_duplicates(const std::string& text, std::vector<std::string>& problems) {
  std::map<std::string, int> groups;
  std::map<std::string, int> keys;  // "group@first line\nkey" -> line
  std::string group;
  int group_line = 0;
  std::istringstream in(text);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const std::string t = trim_copy(line);
    if (t.empty() || t[0] == '#') continue;
    if (t.front() == '[' && t.back() == ']') {
      group = trim_copy(t.substr(1, t.size() - 2));
      group_line = n;
      if (auto [it, fresh] = groups.try_emplace(group, n); !fresh) {
        problems.push_back("[" + group + "] appears twice (lines " + std::to_string(it->second) +
                           " and " + std::to_string(n) + "); give each section its own name");
      }
      continue;
    }
    const auto eq = t.find('=');
    if (eq == std::string::npos || group.empty()) continue;
    const std::string key = trim_copy(t.substr(0, eq));
    if (auto [it, fresh] =
            keys.try_emplace(group + "@" + std::to_string(group_line) + "\n" + key, n);
        !fresh) {
      problems.push_back("[" + group + "] " + key + ": set twice (lines " +
                         std::to_string(it->second) + " and " + std::to_string(n) + ")");
    }
  }
}

const AppSpec* app_for(const Config& c, const std::string& app) {
  for (const auto& a : c.apps) {
    if (a.name == app) return &a;
  }
  return nullptr;
}

// Who can publish keys matching `pattern`: a configured source, or a listener
// whose allow patterns (anything, when it has none) reach it.
bool publishable(const Config& c, const std::string& pattern) {
  auto key_ok = [&](const std::optional<StreamKey>& k) {
    return k && v::pattern_matches(pattern, k->str());
  };
  for (const auto& r : c.rtsp)
    if (key_ok(r.worker.key)) return true;
  for (const auto& p : c.pipelines)
    if (key_ok(p.worker.key)) return true;
  for (const auto& s : c.srt) {
    if (!s.srt.listener) {
      if (key_ok(s.worker.key)) return true;
      continue;
    }
    if (s.srt.allow.empty() || key_ok(s.srt.default_key)) return true;
    for (const auto& a : s.srt.allow)
      if (v::patterns_overlap(a, pattern)) return true;
  }
  for (const auto& r : c.rtmp) {
    if (r.rtmp.key) {
      if (key_ok(r.rtmp.key)) return true;
      continue;
    }
    for (const auto& a : r.rtmp.allow)
      if (v::patterns_overlap(a, pattern)) return true;
  }
  return false;
}

// The highest video bitrate a [pipeline] source states (x264enc/x265enc bitrate=
// in kbit/s), for keys matching `pattern`; 0 when none says.
double stated_bitrate(const Config& c, const std::string& pattern) {
  double best = 0;
  static const std::regex re(R"((x264enc|x265enc)[^!]*\bbitrate=([0-9]+))");
  for (const auto& p : c.pipelines) {
    if (!p.worker.key || !v::pattern_matches(pattern, p.worker.key->str())) continue;
    std::smatch m;
    if (std::regex_search(p.source, m, re)) best = std::max(best, std::stod(m[2]) * 1000);
  }
  return best;
}

void check_across(Config& c) {
  auto& problems = c.problems;
  for (const auto& r : c.records) {
    const std::string app = r.pattern.substr(0, r.pattern.find('/'));
    const AppSpec* spec = app_for(c, app);
    const AppSpec defaults(app);
    const AppSpec& a = spec ? *spec : defaults;
    const std::string where =
        spec ? "[app " + app + "]"
             : "application " + app + " (no [app " + app + "] section: its defaults)";
    const double preroll_s = static_cast<double>(r.preroll.count()) / 1000.0;
    if (r.preroll.count() > 0 && r.preroll > a.cache_window) {
      problems.push_back("[record " + r.name + "] pre-roll: " + v::show_duration(r.preroll) +
                         " is longer than the cache window of " + where + " (" +
                         v::show_duration(a.cache_window) + "); set cache-window there");
    } else if (r.preroll.count() > 0) {
      // The window is in time; the cache's frame and byte bounds must hold it too.
      const double frames_s = static_cast<double>(a.cache_frames) / kFramesPerSecondBound;
      if (frames_s < preroll_s + 2) {
        problems.push_back(
            "[record " + r.name + "] pre-roll: " + v::show_duration(r.preroll) + " needs about " +
            std::to_string(static_cast<long long>((preroll_s + 2) * kFramesPerSecondBound)) +
            " cached frames at 30 fps video + audio plus a GOP, but cache-frames of " + where +
            " is " + std::to_string(a.cache_frames));
      }
      const double stated = stated_bitrate(c, r.pattern);
      const double bits_needed = (stated > 0 ? stated : kAssumedBitrate) * (preroll_s + 2);
      if (static_cast<double>(a.cache_bytes) * 8 < bits_needed) {
        const std::string holds =
            v::show_size(a.cache_bytes) + " holds " + v::show_duration(r.preroll) +
            " + a GOP only below " +
            std::to_string(static_cast<long long>(static_cast<double>(a.cache_bytes) * 8 /
                                                  (preroll_s + 2) / 1000)) +
            " kbit/s";
        problems.push_back(
            "[record " + r.name + "] pre-roll: cache-bytes of " + where + " = " + holds +
            (stated > 0
                 ? ", but the source states " +
                       std::to_string(static_cast<long long>(stated / 1000)) + " kbit/s"
                 : std::string(
                       ", less than the 1 Mbit/s assumed for a camera that states no bitrate")) +
            "; raise cache-bytes");
      }
    }
    if (!publishable(c, r.pattern)) {
      c.warnings.push_back(
          "[record " + r.name + "] key: nothing configured here publishes " + r.pattern +
          " (no ingest section's key or listener's allow matches it); only in-process "
          "publishers could");
    }
  }
  // Two recorders writing the same key into the same directory would write the same
  // file names and delete each other's files.
  for (std::size_t i = 0; i < c.records.size(); ++i) {
    for (std::size_t j = i + 1; j < c.records.size(); ++j) {
      const auto& a = c.records[i];
      const auto& b = c.records[j];
      if (std::filesystem::path(a.dir).lexically_normal() ==
              std::filesystem::path(b.dir).lexically_normal() &&
          v::patterns_overlap(a.pattern, b.pattern)) {
        problems.push_back(
            "[record " + b.name + "] dir: [record " + a.name + "] also records " +
            (a.pattern == b.pattern ? a.pattern
                                    : "keys matching both " + a.pattern + " and " + b.pattern) +
            " into " + a.dir + "; they would overwrite and delete each other's files");
      }
    }
  }
  std::map<std::string, std::string> keys;
  auto claim = [&](const std::optional<StreamKey>& k, const std::string& who) {
    if (!k) return;
    if (keys.contains(k->str())) {
      problems.push_back("[" + who + "] key: " + k->str() + " is already published by [" +
                         keys[k->str()] + "]");
    }
    keys[k->str()] = who;
  };
  for (const auto& r : c.rtsp) claim(r.worker.key, "rtsp " + r.worker.name);
  for (const auto& p : c.pipelines) claim(p.worker.key, "pipeline " + p.worker.name);
  for (const auto& s : c.srt) {
    if (!s.srt.listener) claim(s.worker.key, "srt " + s.worker.name);
  }
  std::map<std::string, std::string> ports;  // "udp 9000" -> section
  for (const auto& l : c.listeners) {
    const std::string id = l.protocol + " " + std::to_string(l.address.port);
    if (auto it = ports.find(id); it != ports.end()) {
      problems.push_back("[" + l.section + "] " + l.key + ": port " +
                         std::to_string(l.address.port) + " is already used by [" + it->second +
                         "]");
    } else {
      ports[id] = l.section;
    }
  }
  for (auto& p : missing_elements(c)) problems.push_back(std::move(p));
}

Config parse(GKeyFile* kf, const std::string& base_dir) {
  Config c;
  gsize ngroups = 0;
  gchar** groups = g_key_file_get_groups(kf, &ngroups);
  for (gsize i = 0; i < ngroups; ++i) {
    const std::string group = groups[i];
    const auto space = group.find(' ');
    const std::string type = group.substr(0, space);
    const std::string name = space == std::string::npos ? "" : trim_copy(group.substr(space + 1));
    Section s(kf, group, c.problems);
    std::string text;
    for (const auto& k : s.keys()) text += k + "=" + s.raw(k).value_or("") + "\n";
    c.sections[type + " " + name] = text;
    const auto& types = section_types();
    auto it = std::find_if(types.begin(), types.end(),
                           [&](const SectionType& t) { return type == t.type; });
    if (it == types.end()) {
      std::string list;
      for (std::size_t k = 0; k < types.size(); ++k) {
        list += std::string(k == 0 ? "" : k + 1 == types.size() ? " or " : ", ") + types[k].type;
      }
      s.section_problem("unknown section type '" + type + "' (expected " + list + ")");
      continue;
    }
    if (name.empty() && it->named) {
      s.section_problem("needs a name, e.g. [" + type + " main]");
      continue;
    }
    if (!name.empty() && !it->named) {
      s.section_problem("takes no name: write [" + type + "]");
      continue;
    }
    it->read(s, name, c, base_dir);
  }
  g_strfreev(groups);
  check_across(c);
  return c;
}

}  // namespace

std::string_view format_extension(RecordFormat f) {
  switch (f) {
    case RecordFormat::Mp4:
      return "mp4";
    case RecordFormat::Mkv:
      return "mkv";
    case RecordFormat::Ts:
      return "ts";
  }
  return "mp4";
}

Config load_text(const std::string& text, const std::string& origin, const std::string& base_dir) {
  GKeyFile* kf = g_key_file_new();
  GError* err = nullptr;
  Config c;
  if (!g_key_file_load_from_data(kf, text.c_str(), text.size(), G_KEY_FILE_NONE, &err)) {
    c.problems.push_back(origin + ": " + (err ? err->message : "cannot be read"));
    g_clear_error(&err);
  } else {
    c = parse(kf, base_dir);
    std::vector<std::string> duplicates;
    check_duplicates(text, duplicates);
    c.problems.insert(c.problems.begin(), duplicates.begin(), duplicates.end());
  }
  g_key_file_free(kf);
  return c;
}

Config load_file(const std::string& path) {
  gchar* contents = nullptr;
  gsize len = 0;
  GError* err = nullptr;
  if (!g_file_get_contents(path.c_str(), &contents, &len, &err)) {
    Config c;
    c.problems.push_back(path + ": " + (err ? err->message : "cannot be read"));
    g_clear_error(&err);
    return c;
  }
  std::error_code ec;
  auto base = std::filesystem::absolute(path, ec).parent_path();
  Config c = load_text(std::string(contents, len), path, ec ? "" : base.string());
  g_free(contents);
  return c;
}

std::vector<std::string> check_environment(const Config& c) {
  std::vector<std::string> problems;
  for (const auto& r : c.records) {
    // The nearest directory that exists must be one we can create the rest in.
    std::filesystem::path p = std::filesystem::absolute(r.dir);
    std::error_code ec;
    while (!p.empty() && !std::filesystem::exists(p, ec) && p != p.root_path()) p = p.parent_path();
    const char* reason = nullptr;
    if (!std::filesystem::is_directory(p, ec))
      reason = std::strerror(ENOTDIR);
    else if (access(p.c_str(), W_OK | X_OK) != 0)
      reason = std::strerror(errno);
    if (reason)
      problems.push_back("[record " + r.name + "] dir: " + r.dir + " cannot be written (" +
                         p.string() + ": " + reason + ")");
  }
  for (const auto& l : c.listeners) {
    const bool udp = l.protocol == "udp";
    const int fd = socket(AF_INET6, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
    if (fd < 0) continue;
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(static_cast<uint16_t>(l.address.port));
    a.sin6_addr = in6addr_any;
    int off = 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      const int e = errno;
      problems.push_back("[" + l.section + "] " + l.key + ": " + (udp ? "UDP" : "TCP") + " port " +
                         std::to_string(l.address.port) + " cannot be used: " +
                         (e == EADDRINUSE
                              ? std::string("address in use (another process listens there)")
                              : std::strerror(e)));
    }
    close(fd);
  }
  return problems;
}

std::string explain(const Config& c) {
  std::ostringstream out;
  for (const auto& a : c.apps) {
    out << "app " << a.name << ": cache " << a.cache_frames << " frames / "
        << v::show_size(a.cache_bytes) << ", window " << v::show_duration(a.cache_window)
        << (a.idle_timeout.count() ? ", idle timeout " + v::show_duration(a.idle_timeout) : "")
        << "\n";
  }
  for (const auto& r : c.rtsp) {
    std::string shown = r.rtsp.url;
    try {
      shown = ingest::parse_url(r.rtsp.url).redacted();
    } catch (...) {
    }
    out << "rtsp " << r.worker.name << ": " << shown << " -> "
        << (r.worker.key ? r.worker.key->str() : "?") << " (" << r.rtsp.transport << ", grace "
        << v::show_duration(r.worker.grace) << ")\n";
  }
  for (const auto& s : c.srt) {
    std::string uri = s.srt.uri;
    try {
      uri = ingest::parse_url(s.srt.uri).redacted();
    } catch (...) {
    }
    out << "srt " << s.worker.name << ": " << (s.srt.listener ? "listen " : "connect ") << uri
        << ", " << (s.srt.passphrase.empty() ? "no passphrase (unencrypted)" : "passphrase set")
        << ", ";
    if (s.srt.listener) {
      out << (s.srt.allow.empty() ? "any key allowed"
                                  : "allow " + std::to_string(s.srt.allow.size()) + " pattern(s)")
          << ", "
          << (s.srt.tokens.empty() ? "no tokens"
                                   : std::to_string(s.srt.tokens.size()) + " token(s)");
    } else {
      out << "-> " << (s.worker.key ? s.worker.key->str() : "?");
    }
    out << "\n";
  }
  for (const auto& r : c.rtmp) {
    // Patterns and timeouts only: tokens are counted, never shown.
    out << "rtmp " << r.rtmp.name << ": listen " << r.rtmp.listen << ", "
        << (r.rtmp.key ? "every publish -> " + r.rtmp.key->str()
                       : "allow " + std::to_string(r.rtmp.allow.size()) + " pattern(s)")
        << ", "
        << (r.rtmp.tokens.empty() ? "no tokens"
                                  : std::to_string(r.rtmp.tokens.size()) + " token(s)")
        << ", at most " << r.rtmp.max_connections << " connections, publish within "
        << v::show_duration(r.rtmp.handshake_timeout) << ", idle "
        << v::show_duration(r.rtmp.idle_timeout) << "\n";
  }
  for (const auto& p : c.pipelines)
    out << "pipeline " << p.worker.name << ": -> " << (p.worker.key ? p.worker.key->str() : "?")
        << "\n";
  for (const auto& r : c.records) {
    out << "record " << r.name << ": " << r.pattern << " -> " << r.dir << " ("
        << format_extension(r.format) << ", " << r.segment.count() << " s segments, pre-roll "
        << v::show_duration(r.preroll) << ", join delay " << v::show_duration(r.join_delay)
        << ", keep " << (r.max_age.count() ? v::show_duration(r.max_age) : std::string("forever"))
        << " / " << (r.max_bytes ? v::show_size(r.max_bytes) : std::string("no size bound"))
        << ", min-free "
        << (r.min_free_percent > 0 ? std::to_string(r.min_free_percent).substr(0, 4) + " %"
            : r.min_free_bytes     ? v::show_size(r.min_free_bytes)
                                   : std::string("none"))
        << (r.mode == RecordMode::Events ? ", on events only" : "") << ")\n";
  }
  for (const auto& o : c.outputs)
    out << "output " << o.name << ": " << o.key.str() << " ! " << o.pipeline << "\n";
  if (c.http) {
    // The tokens are secrets: only whether they are set.
    const bool tokens = !c.http->token.empty() || !c.http->read_token.empty();
    out << "http: " << c.http->listen << ", admin token "
        << (c.http->token.empty() ? "not set" : "set") << ", read-only token "
        << (c.http->read_token.empty() ? "not set" : "set")
        << (tokens ? "" : " (loopback clients only)") << "\n";
  }
  auto joined = [](const std::vector<std::string>& items) {
    std::string o;
    for (const auto& i : items) o += (o.empty() ? "" : ", ") + i;
    return o;
  };
  auto address = [](const std::string& host, int port) {
    return v::ListenAddress{host, static_cast<std::uint16_t>(port)}.to_string();
  };
  if (const auto& r = c.rtsp_server) {
    // Users by name and what they read; passwords never.
    out << "rtsp-server: rtsp://" << address(r->host, r->port) << "/APP/STREAM, "
        << (r->start == egress::RtspStart::Keyframe ? "start at the cached keyframe"
                                                    : "start at the live edge")
        << ", "
        << (r->tcp && r->udp ? "tcp and udp"
            : r->tcp         ? "tcp only"
                             : "udp only")
        << (r->shared_media ? ", live-edge readers share a media (tcp)" : "");
    for (const auto& u : r->users) out << ", user " << u.name << " reads " << joined(u.read);
    out << (r->anonymous_read.empty() ? ", no anonymous reading"
                                      : ", anonymous reads " + joined(r->anonymous_read))
        << (r->max_readers ? ", at most " + std::to_string(r->max_readers) + " readers" : "")
        << (r->max_readers_per_key
                ? ", at most " + std::to_string(r->max_readers_per_key) + " per key"
                : "")
        << (r->wait.count() ? ", an unpublished key waits " + v::show_duration(r->wait) : "")
        << "\n";
  }
  if (const auto& r = c.srt_server) {
    out << "srt-server: srt://" << address(r->host, r->port) << ", passphrase "
        << (r->passphrase.empty() ? "not set" : "set") << ", read " << joined(r->read_allow)
        << (r->read_tokens.empty() ? ""
                                   : " (" + std::to_string(r->read_tokens.size()) + " token(s))")
        << ", publish "
        << (r->publish ? joined(r->publish_allow) +
                             (r->publish_tokens.empty()
                                  ? ""
                                  : " (" + std::to_string(r->publish_tokens.size()) + " token(s))")
                       : std::string("off"))
        << (r->max_readers ? ", at most " + std::to_string(r->max_readers) + " readers" : "")
        << "\n";
  }
  for (const auto& w : c.warnings) out << "warning: " << w << "\n";
  return out.str();
}

}  // namespace arcly::host
