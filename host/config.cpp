#include "config.hpp"

#include <glib.h>
#include <gst/gst.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <set>
#include <sstream>

#include "arcly/error.hpp"
#include "http/server.hpp"
#include "requirements.hpp"
#include "url.hpp"

namespace arcly::host {
namespace {

using namespace std::chrono_literals;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Reads one section, recording problems with "[type name] key: ...".
class Section {
 public:
  Section(GKeyFile* kf, std::string group, std::vector<std::string>& problems)
      : kf_(kf), group_(std::move(group)), problems_(problems) {}

  std::optional<std::string> str(const char* key, bool required = false) {
    used_.insert(key);
    gchar* v = g_key_file_get_string(kf_, group_.c_str(), key, nullptr);
    if (!v) {
      if (required) problem(key, "is required");
      return std::nullopt;
    }
    std::string out(trim(v));
    g_free(v);
    return out;
  }

  // A non-negative number (decimals allowed); `unit` names it in messages.
  std::optional<double> number(const char* key, const char* unit, double max = 1e12) {
    auto s = str(key);
    if (!s) return std::nullopt;
    char* end = nullptr;
    const double v = std::strtod(s->c_str(), &end);
    if (s->empty() || *end != '\0' || !(v >= 0) || v > max) {
      problem(key,
              "'" + *s + "' is not a number of " + unit +
                  (max < 1e12 ? " from 0 to " + std::to_string(static_cast<long long>(max)) : ""));
      return std::nullopt;
    }
    return v;
  }

  std::optional<std::chrono::milliseconds> seconds(const char* key) {
    auto v = number(key, "seconds");
    if (!v) return std::nullopt;
    return std::chrono::milliseconds(static_cast<long long>(*v * 1000.0));
  }

  // Bytes with an optional K/M/G/T suffix (powers of 1024).
  std::optional<std::uint64_t> bytes(const char* key) {
    auto s = str(key);
    if (!s) return std::nullopt;
    std::string digits = *s;
    std::uint64_t scale = 1;
    if (!digits.empty() && std::isalpha(static_cast<unsigned char>(digits.back()))) {
      const char u = static_cast<char>(std::toupper(static_cast<unsigned char>(digits.back())));
      const std::string units = "KMGT";
      const auto pos = units.find(u);
      if (pos == std::string::npos) {
        problem(key, "'" + *s + "' is not a size (a number with an optional K, M, G or T)");
        return std::nullopt;
      }
      scale = 1ull << (10 * (pos + 1));
      digits.pop_back();
    }
    char* end = nullptr;
    const double v = std::strtod(digits.c_str(), &end);
    if (digits.empty() || *end != '\0' || !(v >= 0)) {
      problem(key, "'" + *s + "' is not a size (a number with an optional K, M, G or T)");
      return std::nullopt;
    }
    return static_cast<std::uint64_t>(v * static_cast<double>(scale));
  }

  std::optional<StreamKey> key(const char* key, bool required = false) {
    auto s = str(key, required);
    if (!s) return std::nullopt;
    std::string why;
    auto k = StreamKey::try_parse(*s, &why);
    if (!k) problem(key, why);
    return k;
  }

  std::vector<std::string> list(const char* key) {
    std::vector<std::string> out;
    auto s = str(key);
    if (!s) return out;
    std::string item;
    std::istringstream in(*s);
    while (std::getline(in, item, ';')) {
      for (auto& part : std::vector<std::string>{item}) {
        std::istringstream in2(part);
        std::string piece;
        while (std::getline(in2, piece, ',')) {
          if (auto t = trim(piece); !t.empty()) out.emplace_back(t);
        }
      }
    }
    return out;
  }

  void problem(const std::string& key, const std::string& what) {
    problems_.push_back("[" + group_ + "] " + key + ": " + what);
  }
  void section_problem(const std::string& what) { problems_.push_back("[" + group_ + "] " + what); }

  // Every key present but never read is unknown.
  void check_unknown_keys() {
    gsize n = 0;
    gchar** keys = g_key_file_get_keys(kf_, group_.c_str(), &n, nullptr);
    for (gsize i = 0; i < n; ++i) {
      if (!used_.contains(keys[i])) {
        std::string known;
        for (const auto& k : used_) known += (known.empty() ? "" : ", ") + k;
        problem(keys[i], "unknown key (known here: " + known + ")");
      }
    }
    g_strfreev(keys);
  }

  const std::string& group() const { return group_; }

 private:
  GKeyFile* kf_;
  std::string group_;
  std::vector<std::string>& problems_;
  std::set<std::string> used_;
};

void read_worker_common(Section& s, ingest::WorkerSettings& w) {
  if (auto v = s.seconds("timeout")) w.timeout = *v;
  if (auto v = s.seconds("grace")) w.grace = *v;
  if (auto v = s.seconds("backoff-initial")) w.backoff_initial = *v;
  if (auto v = s.seconds("backoff-max")) w.backoff_max = *v;
  if (w.timeout.count() == 0) s.problem("timeout", "must be more than 0 seconds");
}

bool valid_pattern(const std::string& p) {
  if (p.find('/') == std::string::npos) return false;
  for (char c : p) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
          c == '/' || c == '*' || c == '?')) {
      return false;
    }
  }
  return p.find("..") == std::string::npos;
}

// The section's keys and values as written, for reload comparisons.
std::string section_text(GKeyFile* kf, const char* group) {
  std::string out;
  gsize n = 0;
  gchar** keys = g_key_file_get_keys(kf, group, &n, nullptr);
  for (gsize i = 0; i < n; ++i) {
    gchar* v = g_key_file_get_value(kf, group, keys[i], nullptr);
    out += std::string(keys[i]) + "=" + (v ? v : "") + "\n";
    g_free(v);
  }
  g_strfreev(keys);
  return out;
}

Config parse(GKeyFile* kf, const std::string& base_dir) {
  Config c;
  auto& problems = c.problems;
  std::map<int, std::string> srt_ports;
  gsize ngroups = 0;
  gchar** groups = g_key_file_get_groups(kf, &ngroups);
  for (gsize i = 0; i < ngroups; ++i) {
    const std::string group = groups[i];
    const auto space = group.find(' ');
    const std::string type = group.substr(0, space);
    const std::string name =
        space == std::string::npos ? "" : std::string(trim(group.substr(space + 1)));
    Section s(kf, group, problems);
    c.sections[type + " " + name] = section_text(kf, groups[i]);
    static const std::set<std::string> kTypes{"app",    "rtsp",   "srt", "pipeline",
                                              "record", "output", "http"};
    if (!kTypes.contains(type)) {
      s.section_problem("unknown section type '" + type +
                        "' (expected app, rtsp, srt, pipeline, record, output or http)");
      continue;
    }
    if (type == "http") {
      if (!name.empty()) s.section_problem("takes no name: write [http]");
      HttpConfig h;
      if (auto v = s.str("listen")) {
        h.listen = *v;
        std::string host, why;
        std::uint16_t port = 0;
        if (!http::parse_listen(*v, host, port, &why)) s.problem("listen", why);
      }
      if (auto v = s.str("token")) h.token = *v;
      if (auto v = s.str("read-token")) h.read_token = *v;
      if (auto v = s.str("web-dir")) h.web_dir = *v;
      if (!base_dir.empty() && !h.web_dir.empty() && !g_path_is_absolute(h.web_dir.c_str()))
        h.web_dir = (std::filesystem::path(base_dir) / h.web_dir).lexically_normal().string();
      if (!h.token.empty() && h.token == h.read_token)
        s.problem("read-token", "is the same as token (give read-only clients their own)");
      c.http = h;
      s.check_unknown_keys();
      continue;
    }
    if (name.empty()) {
      s.section_problem("needs a name, e.g. [" + type + " main]");
      continue;
    }
    if (type == "app") {
      AppSpec app(name);
      if (auto why = StreamKey::check_part(name); !why.empty()) {
        s.section_problem("application name '" + name + "': " + why);
      }
      if (auto v = s.seconds("cache-window")) app.cache_window = *v;
      if (auto v = s.number("cache-frames", "frames"))
        app.cache_frames = static_cast<std::size_t>(*v);
      if (auto v = s.bytes("cache-bytes")) app.cache_bytes = *v;
      if (auto v = s.number("max-publishers", "publishers"))
        app.max_publishers = static_cast<std::size_t>(*v);
      if (auto v = s.number("max-subscribers", "subscribers"))
        app.max_subscribers = static_cast<std::size_t>(*v);
      if (auto v = s.seconds("idle-timeout")) app.idle_timeout = *v;
      if (app.cache_frames == 0) s.problem("cache-frames", "must be at least 1");
      if (app.cache_bytes == 0) s.problem("cache-bytes", "must be at least 1");
      if (app.cache_window.count() > 0) {
        // Enough ring for the window at 30 fps video plus audio.
        const auto seconds =
            std::chrono::duration_cast<std::chrono::seconds>(app.cache_window).count() + 2;
        app.cache_frames =
            std::max<std::size_t>(app.cache_frames, static_cast<std::size_t>(seconds) * 90);
      }
      c.apps.push_back(app);
    } else if (type == "rtsp") {
      RtspConfig r;
      r.worker.name = name;
      r.worker.key = s.key("key", true);
      if (auto url = s.str("url", true)) {
        r.rtsp.url = *url;
        try {
          auto u = ingest::parse_url(*url);
          if (u.scheme != "rtsp" && u.scheme != "rtsps")
            s.problem("url", "'" + u.redacted() + "' is not an rtsp:// or rtsps:// URL");
          else if (u.host.empty())
            s.problem("url", "'" + u.redacted() + "' has no host");
        } catch (const Error& e) {
          s.problem("url", e.what());
        }
      }
      if (auto v = s.str("transport")) {
        if (*v != "tcp" && *v != "udp" && *v != "auto")
          s.problem("transport", "'" + *v + "' is not tcp, udp or auto");
        r.rtsp.transport = *v;
      }
      if (auto v = s.number("latency", "milliseconds", 60000))
        r.rtsp.latency_ms = static_cast<unsigned>(*v);
      if (auto v = s.str("user")) r.rtsp.user = *v;
      if (auto v = s.str("password")) r.rtsp.password = *v;
      read_worker_common(s, r.worker);
      c.rtsp.push_back(std::move(r));
    } else if (type == "srt") {
      SrtConfig sc;
      sc.worker.name = name;
      auto listen = s.str("listen");
      auto connect = s.str("connect");
      if (listen.has_value() == connect.has_value()) {
        s.section_problem("needs exactly one of listen=srt://:PORT or connect=srt://HOST:PORT");
      }
      sc.srt.listener = listen.has_value();
      sc.srt.uri = listen ? *listen : connect.value_or("");
      if (!sc.srt.uri.empty()) {
        try {
          auto u = ingest::parse_url(sc.srt.uri);
          if (u.scheme != "srt")
            s.problem(listen ? "listen" : "connect", "'" + u.redacted() + "' is not an srt:// URI");
          else if (u.port <= 0)
            s.problem(listen ? "listen" : "connect", "'" + u.redacted() + "' has no port");
          else if (listen) {
            if (srt_ports.contains(u.port)) {
              s.problem("listen", "port " + std::to_string(u.port) + " is already used by [" +
                                      srt_ports[u.port] + "]");
            }
            srt_ports[u.port] = group;
          }
        } catch (const Error& e) {
          s.problem(listen ? "listen" : "connect", e.what());
        }
      }
      if (auto v = s.str("passphrase")) {
        sc.srt.passphrase = *v;
        if (v->size() < 10 || v->size() > 79)
          s.problem("passphrase", "SRT needs 10 to 79 characters");
      }
      if (auto v = s.number("pbkeylen", "bytes", 32)) {
        sc.srt.pbkeylen = static_cast<int>(*v);
        if (*v != 16 && *v != 24 && *v != 32) s.problem("pbkeylen", "must be 16, 24 or 32");
      }
      if (auto v = s.number("latency", "milliseconds", 60000))
        sc.srt.latency_ms = static_cast<int>(*v);
      sc.srt.default_key = s.key("default-key");
      if (auto allow = s.list("allow"); !allow.empty()) {
        sc.srt.allow = allow;
        for (const auto& p : allow) {
          if (!valid_pattern(p)) s.problem("allow", "'" + p + "' is not a key pattern like live/*");
        }
      }
      for (const auto& t : s.list("tokens")) {
        const auto colon = t.rfind(':');
        if (colon == std::string::npos || colon == 0) {
          s.problem("tokens", "'" + t.substr(0, t.find(':')) + "…' should be PATTERN:TOKEN");
        } else {
          sc.srt.tokens[t.substr(0, colon)] = t.substr(colon + 1);
        }
      }
      if (auto v = s.str("streamid")) sc.srt.streamid = *v;
      sc.worker.key = s.key("key", connect.has_value());
      read_worker_common(s, sc.worker);
      c.srt.push_back(std::move(sc));
    } else if (type == "pipeline") {
      PipelineConfig p;
      p.worker.name = name;
      p.worker.key = s.key("key", true);
      if (auto src = s.str("source", true)) {
        p.source = *src;
        GError* err = nullptr;
        GstElement* bin = gst_parse_bin_from_description(src->c_str(), FALSE, &err);
        if (!bin)
          s.problem("source", "is not a valid gst-launch description: " +
                                  explain_parse_error(err ? err->message : "?"));
        if (bin) gst_object_unref(bin);
        g_clear_error(&err);
      }
      read_worker_common(s, p.worker);
      c.pipelines.push_back(std::move(p));
    } else if (type == "record") {
      RecordConfig r;
      r.name = name;
      if (auto k = s.str("key", true)) {
        r.pattern = *k;
        if (!valid_pattern(*k))
          s.problem("key", "'" + *k + "' is not a stream key or a pattern like live/*");
      }
      if (auto v = s.str("dir")) {
        r.dir = *v;
        if (v->empty()) s.problem("dir", "is empty");
      }
      if (!base_dir.empty() && !r.dir.empty() && !g_path_is_absolute(r.dir.c_str())) {
        r.dir = (std::filesystem::path(base_dir) / r.dir).lexically_normal().string();
      }
      if (auto v = s.str("format")) {
        if (*v == "mp4")
          r.format = RecordFormat::Mp4;
        else if (*v == "mkv")
          r.format = RecordFormat::Mkv;
        else if (*v == "ts")
          r.format = RecordFormat::Ts;
        else
          s.problem("format", "'" + *v + "' is not mp4, mkv or ts");
      }
      if (auto v = s.seconds("segment")) {
        r.segment = std::chrono::duration_cast<std::chrono::seconds>(*v);
        if (r.segment.count() < 1) s.problem("segment", "must be at least 1 second");
      }
      if (auto v = s.seconds("pre-roll")) r.preroll = *v;
      if (auto v = s.seconds("join-delay")) r.join_delay = *v;
      if (auto v = s.seconds("max-age"))
        r.max_age = std::chrono::duration_cast<std::chrono::seconds>(*v);
      if (auto v = s.bytes("max-bytes")) r.max_bytes = *v;
      if (auto v = s.str("mode")) {
        if (*v == "continuous")
          r.mode = RecordMode::Continuous;
        else if (*v == "events")
          r.mode = RecordMode::Events;
        else
          s.problem("mode", "'" + *v + "' is not continuous or events");
      }
      c.records.push_back(std::move(r));
    } else if (type == "output") {
      OutputConfig o;
      o.name = name;
      if (auto k = s.key("key", true)) o.key = *k;
      if (auto p = s.str("pipeline", true)) {
        o.pipeline = *p;
        const std::string desc = "fakesrc ! " + *p;
        GError* err = nullptr;
        GstElement* bin = gst_parse_bin_from_description(desc.c_str(), FALSE, &err);
        if (!bin)
          s.problem("pipeline", "is not valid gst-launch syntax: " +
                                    explain_parse_error(err ? err->message : "?"));
        if (bin) gst_object_unref(bin);
        g_clear_error(&err);
      }
      c.outputs.push_back(std::move(o));
    }
    s.check_unknown_keys();
  }
  g_strfreev(groups);

  // Cross-section checks.
  for (const auto& r : c.records) {
    if (r.preroll.count() == 0) continue;
    const std::string app = r.pattern.substr(0, r.pattern.find('/'));
    const AppSpec* spec = nullptr;
    for (const auto& a : c.apps) {
      if (a.name == app) spec = &a;
    }
    const auto window = spec ? spec->cache_window : std::chrono::nanoseconds(0);
    if (r.preroll > window) {
      problems.push_back(
          "[record " + r.name +
          "] pre-roll: " + std::to_string(r.preroll.count() / 1000.0).substr(0, 5) +
          " s is longer than the cache window of [app " + app + "] (" +
          std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(window).count() /
                         1000.0)
              .substr(0, 5) +
          " s); set cache-window there");
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
  for (auto& p : missing_elements(c)) problems.push_back(std::move(p));
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

std::string explain(const Config& c) {
  std::ostringstream out;
  for (const auto& a : c.apps) {
    out << "app " << a.name << ": cache " << a.cache_frames << " frames / " << (a.cache_bytes >> 20)
        << " MiB, window "
        << std::chrono::duration_cast<std::chrono::milliseconds>(a.cache_window).count() / 1000.0
        << " s\n";
  }
  for (const auto& r : c.rtsp) {
    std::string shown = r.rtsp.url;
    try {
      shown = ingest::parse_url(r.rtsp.url).redacted();
    } catch (...) {
    }
    out << "rtsp " << r.worker.name << ": " << shown << " -> "
        << (r.worker.key ? r.worker.key->str() : "?") << " (" << r.rtsp.transport << ")\n";
  }
  for (const auto& s : c.srt) {
    out << "srt " << s.worker.name << ": " << (s.srt.listener ? "listen " : "connect ") << s.srt.uri
        << "\n";
  }
  for (const auto& p : c.pipelines) {
    out << "pipeline " << p.worker.name << ": -> " << (p.worker.key ? p.worker.key->str() : "?")
        << "\n";
  }
  for (const auto& r : c.records) {
    out << "record " << r.name << ": " << r.pattern << " -> " << r.dir << " ("
        << format_extension(r.format) << ", " << r.segment.count() << " s segments, pre-roll "
        << r.preroll.count() / 1000.0 << " s"
        << (r.mode == RecordMode::Events ? ", on events only" : "") << ")\n";
  }
  for (const auto& o : c.outputs)
    out << "output " << o.name << ": " << o.key.str() << " ! " << o.pipeline << "\n";
  if (c.http) {
    // The tokens are secrets: only whether they are set.
    out << "http: " << c.http->listen << ", admin token "
        << (c.http->token.empty() ? "not set" : "set") << ", read-only token "
        << (c.http->read_token.empty() ? "not set" : "set")
        << (c.http->token.empty() && c.http->read_token.empty() ? " (loopback clients only)" : "")
        << "\n";
  }
  return out.str();
}

}  // namespace arcly::host
