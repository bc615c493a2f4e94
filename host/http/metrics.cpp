// GET /metrics: the Prometheus text exposition format (version 0.0.4).
//
// One `# HELP` and `# TYPE` per family, base units (seconds, bytes), counters
// end in `_total`, labels `app`/`stream` (streams), `worker`, `recorder`. Label
// values are escaped (backslash, quote, newline) as the format requires.
#include <sys/statvfs.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "api.hpp"

namespace arcly::host::http {
namespace {

std::string label_escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

// Collects samples per family, so each family's HELP/TYPE comes once with all
// of its samples together (the format requires that).
class Exposition {
 public:
  void family(const std::string& name, const char* type, const char* help) {
    order_.push_back(name);
    families_[name] = {type, help, {}};
  }
  void sample(const std::string& name, const Labels& labels, double value) {
    std::string line = name;
    if (!labels.empty()) {
      line += '{';
      bool first = true;
      for (const auto& [k, v] : labels) {
        line += (first ? "" : ",") + k + "=\"" + label_escape(v) + "\"";
        first = false;
      }
      line += '}';
    }
    line += ' ' + number(value) + '\n';
    families_.at(name).samples += line;
  }
  std::string str() const {
    std::string out;
    for (const auto& name : order_) {
      const auto& f = families_.at(name);
      out += "# HELP " + name + " " + f.help + "\n# TYPE " + name + " " + f.type + "\n" + f.samples;
    }
    return out;
  }

 private:
  struct Family {
    const char* type;
    const char* help;
    std::string samples;
  };
  std::vector<std::string> order_;
  std::map<std::string, Family> families_;
};

// utime + stime (clock ticks) and resident pages, from /proc/self/stat.
void process_usage(double& cpu_seconds, double& rss_bytes) {
  cpu_seconds = rss_bytes = 0;
  std::ifstream in("/proc/self/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto close = text.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return;
  std::istringstream fields(text.substr(close + 2));
  std::vector<std::string> f;
  for (std::string s; fields >> s;) f.push_back(s);
  // Fields after the name start at field 3 (state): utime=14, stime=15, rss=24.
  if (f.size() < 22) return;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  cpu_seconds = (std::stod(f[14 - 3]) + std::stod(f[15 - 3])) / tick;
  rss_bytes = std::stod(f[24 - 3]) * static_cast<double>(sysconf(_SC_PAGESIZE));
}

}  // namespace

std::string render_metrics(ControlTarget& target) {
  Exposition x;
  x.family("arcly_up", "gauge", "1 while the engine runs.");
  x.sample("arcly_up", {}, 1);

  x.family("arcly_stream_frames_total", "counter", "Frames published on the stream.");
  x.family("arcly_stream_bytes_total", "counter", "Payload bytes published on the stream.");
  x.family("arcly_stream_keyframes_total", "counter",
           "Keyframes (GOP starts) of the stream's primary track.");
  x.family("arcly_stream_bitrate_bytes_per_second", "gauge",
           "Payload rate over the last two seconds, in bytes per second.");
  x.family("arcly_stream_frames_per_second", "gauge",
           "Primary-track frame rate over the last two seconds.");
  x.family("arcly_stream_gop_frames", "gauge", "Frames in the last complete GOP.");
  x.family("arcly_stream_last_frame_age_seconds", "gauge", "Time since the newest frame.");
  x.family("arcly_stream_subscribers", "gauge", "Subscribers reading the stream.");
  x.family("arcly_stream_lag_dropped_frames_total", "counter",
           "Frames skipped by subscribers that fell behind.");
  x.family("arcly_stream_cache_window_seconds", "gauge",
           "Footage the GOP cache holds from its oldest keyframe to the live edge.");
  auto engine = target.engine();
  for (const auto& s : engine->streams()) {
    const auto q = s->qos();
    const Labels l{{"app", s->key().app()}, {"stream", s->key().stream()}};
    std::uint64_t drops = 0;
    for (const auto& sub : q.per_subscriber) drops += sub.dropped;
    x.sample("arcly_stream_frames_total", l, static_cast<double>(q.frames));
    x.sample("arcly_stream_bytes_total", l, static_cast<double>(q.bytes));
    x.sample("arcly_stream_keyframes_total", l, static_cast<double>(q.keyframes));
    x.sample("arcly_stream_bitrate_bytes_per_second", l, q.bitrate_bps / 8);
    x.sample("arcly_stream_frames_per_second", l, q.fps);
    x.sample("arcly_stream_gop_frames", l, static_cast<double>(q.last_gop_frames));
    if (q.since_last_frame.count() >= 0)
      x.sample("arcly_stream_last_frame_age_seconds", l,
               static_cast<double>(q.since_last_frame.count()) / 1e9);
    x.sample("arcly_stream_subscribers", l, static_cast<double>(q.subscribers));
    x.sample("arcly_stream_lag_dropped_frames_total", l, static_cast<double>(drops));
    auto& gop = s->gop();
    auto oldest = gop.covering(std::chrono::hours(24 * 365), s->bus().oldest(), s->bus().tail());
    x.sample("arcly_stream_cache_window_seconds", l,
             oldest ? static_cast<double>(gop.newest_pts() - oldest->pts) / 1e9 : 0.0);
  }

  x.family("arcly_worker_state", "gauge",
           "1 for the state the ingest worker is in (label state), 0 for the others.");
  x.family("arcly_worker_attempts_total", "counter", "Connection attempts of the worker.");
  x.family("arcly_worker_reconnects_total", "counter",
           "Times the worker went live again after a failure.");
  x.family("arcly_worker_frames_total", "counter", "Frames the worker published.");
  x.family("arcly_worker_bytes_total", "counter", "Payload bytes the worker published.");
  x.family("arcly_worker_rejected_total", "counter", "Publishers refused before any media.");
  static const char* const kStates[] = {"idle", "connecting", "listening",
                                        "live", "retrying",   "stopped"};
  for (const auto& w : target.workers()) {
    const Labels l{{"worker", w.section}};
    for (const char* st : kStates) {
      Labels ls = l;
      ls.emplace_back("state", st);
      x.sample("arcly_worker_state", ls, w.state == st ? 1 : 0);
    }
    x.sample("arcly_worker_attempts_total", l, static_cast<double>(w.attempts));
    x.sample("arcly_worker_reconnects_total", l, static_cast<double>(w.reconnects));
    x.sample("arcly_worker_frames_total", l, static_cast<double>(w.frames));
    x.sample("arcly_worker_bytes_total", l, static_cast<double>(w.bytes));
    x.sample("arcly_worker_rejected_total", l, static_cast<double>(w.rejected));
  }

  x.family("arcly_egress_readers", "gauge", "Network readers of the egress server now.");
  x.family("arcly_egress_readers_accepted_total", "counter", "Network readers the egress server accepted.");
  x.family("arcly_egress_refused_total", "counter",
           "Connections the egress server refused, by reason.");
  x.family("arcly_egress_slow_readers_total", "counter",
           "Readers that could not keep up, each logged once: RTSP readers closed, SRT readers "
           "that lost chunks.");
  x.family("arcly_egress_stream_readers", "gauge", "Network readers of one stream now.");
  for (const auto& e : target.egress()) {
    const Labels l{{"protocol", e.protocol}};
    x.sample("arcly_egress_readers", l, static_cast<double>(e.readers));
    x.sample("arcly_egress_readers_accepted_total", l, static_cast<double>(e.readers_total));
    x.sample("arcly_egress_slow_readers_total", l, static_cast<double>(e.slow_readers));
    for (const auto& [reason, n] : e.refused)
      x.sample("arcly_egress_refused_total", {{"protocol", e.protocol}, {"reason", reason}},
               static_cast<double>(n));
    std::map<std::string, std::uint64_t> per_key;
    for (const auto& r : e.sessions) {
      if (r.mode == "read") ++per_key[r.key];
    }
    for (const auto& [key, n] : per_key) {
      const auto slash = key.find('/');
      x.sample("arcly_egress_stream_readers",
               {{"protocol", e.protocol},
                {"app", key.substr(0, slash)},
                {"stream", slash == std::string::npos ? "" : key.substr(slash + 1)}},
               static_cast<double>(n));
    }
  }

  x.family("arcly_recorder_recording", "gauge",
           "1 while the recorder writes the stream, 0 when it failed or finished.");
  x.family("arcly_recorder_bytes_total", "counter", "Bytes of the segments the recorder wrote.");
  x.family("arcly_recorder_segments_total", "counter", "Segments the recorder opened.");
  x.family("arcly_recorder_last_segment_age_seconds", "gauge",
           "Time since the recorder last finalized a segment.");
  x.family("arcly_recorder_errors_total", "counter", "Recording errors (each retried).");
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (const auto& r : target.recorders()) {
    Labels l{{"recorder", r.name}};
    if (r.key.find('/') != std::string::npos) {
      l.emplace_back("app", r.key.substr(0, r.key.find('/')));
      l.emplace_back("stream", r.key.substr(r.key.find('/') + 1));
    } else {
      l.emplace_back("app", "");
      l.emplace_back("stream", "");
    }
    x.sample("arcly_recorder_recording", l, r.state == "recording" ? 1 : 0);
    x.sample("arcly_recorder_bytes_total", l, static_cast<double>(r.bytes));
    x.sample("arcly_recorder_segments_total", l, static_cast<double>(r.segments));
    if (r.last_closed_unix_ms >= 0)
      x.sample("arcly_recorder_last_segment_age_seconds", l,
               static_cast<double>(now_ms - r.last_closed_unix_ms) / 1000.0);
    x.sample("arcly_recorder_errors_total", l, static_cast<double>(r.errors));
  }

  x.family("arcly_recording_filesystem_free_bytes", "gauge",
           "Bytes available to arcly on the filesystem of each recording directory.");
  std::map<std::string, bool> seen;
  for (const auto& r : target.recorders()) {
    if (seen[r.name]) continue;
    seen[r.name] = true;
    // A directory not made yet (no recording so far) lives on its parent's filesystem.
    std::filesystem::path dir = r.dir;
    std::error_code ec;
    while (!dir.empty() && !std::filesystem::exists(dir, ec) && dir.has_parent_path() &&
           dir.parent_path() != dir)
      dir = dir.parent_path();
    struct statvfs st {};
    if (statvfs(dir.c_str(), &st) == 0)
      x.sample("arcly_recording_filesystem_free_bytes", {{"recorder", r.name}, {"dir", r.dir}},
               static_cast<double>(st.f_bavail) * static_cast<double>(st.f_frsize));
  }

  double cpu = 0, rss = 0;
  process_usage(cpu, rss);
  x.family("process_cpu_seconds_total", "counter", "User and system CPU time of the process.");
  x.sample("process_cpu_seconds_total", {}, cpu);
  x.family("process_resident_memory_bytes", "gauge", "Resident memory of the process.");
  x.sample("process_resident_memory_bytes", {}, rss);
  return x.str();
}

}  // namespace arcly::host::http
