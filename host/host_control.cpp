// Host as the control plane's ControlTarget: what the HTTP thread may read and do.
//
// Every method runs on the HTTP server's thread. The section maps are read under
// sections_mutex_ (run() and reload() take it only to insert or erase); workers,
// recorder sets and the engine are thread-safe themselves.
#include <filesystem>

#include "arcly/error.hpp"
#include "host.hpp"
#include "http/server.hpp"
#include "segment_file.hpp"

namespace arcly::host {

namespace {

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string peer_of(const ingest::SourceWorker& w) {
  if (auto* rtsp = dynamic_cast<const ingest::RtspWorker*>(&w)) return rtsp->display_url();
  if (auto* srt = dynamic_cast<const ingest::SrtWorker*>(&w)) return srt->settings().name;
  return "";
}

// "20260131T120000.250Z-0001.mp4" (segment_file.hpp's names, to the millisecond) /
// "20260131T120000Z-event-3.mp4" -> unix ms, or -1.
std::int64_t stamp_of(const std::string& file) {
  if (auto name = SegmentName::parse(file)) return name->capture_ns / 1'000'000;
  if (file.size() < 16) return -1;
  std::tm tm{};
  const char* end = strptime(file.c_str(), "%Y%m%dT%H%M%SZ", &tm);
  if (!end) return -1;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

}  // namespace

std::vector<http::WorkerView> Host::workers() const {
  std::vector<http::WorkerView> out;
  std::lock_guard lock(sections_mutex_);
  for (const auto& [section, run] : workers_) {
    const auto& w = *run->worker;
    const auto s = w.stats();
    http::WorkerView v;
    v.section = section;
    v.protocol = std::string(w.name());
    v.name = w.settings().name;
    v.state = std::string(ingest::state_name(s.state));
    v.key = s.key ? s.key->str() : "";
    v.peer = peer_of(w);
    v.attempts = s.attempts;
    v.reconnects = s.reconnects;
    v.frames = s.frames;
    v.bytes = s.bytes;
    v.last_failure = std::string(ingest::failure_name(s.last_failure.kind));
    v.last_error = s.last_failure.message;
    v.rejected = s.rejected;
    v.in_grace = s.in_grace;
    out.push_back(std::move(v));
  }
  // An [rtmp NAME] server is one row: publishers come and go under it.
  for (const auto& [section, run] : rtmp_) {
    const auto s = run->worker->stats();
    http::WorkerView v;
    v.section = section;
    v.protocol = "rtmp";
    v.name = run->worker->settings().name;
    std::string failure;
    {
      std::lock_guard run_lock(run->mutex);
      failure = run->failure;
    }
    v.state = s.live > 0 ? "live" : s.listening ? "listening" : failure.empty() ? "idle" : "failed";
    v.peer = s.listening ? ":" + std::to_string(s.port) : "";
    v.attempts = s.connections;
    v.frames = s.frames;
    v.bytes = s.bytes;
    v.last_failure = failure.empty() ? (s.last_refusal.empty() ? "none" : "refused") : "error";
    v.last_error = failure.empty() ? s.last_refusal : failure;
    v.rejected = s.refused + s.over_limit;
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<http::RecorderView> Host::recorders() const {
  std::vector<http::RecorderView> out;
  std::map<std::string, RecorderTotals> totals;
  {
    std::lock_guard lock(events_mutex_);
    totals = recorder_totals_;
  }
  std::lock_guard lock(sections_mutex_);
  for (const auto& [section, set] : recorders_) {
    const auto& c = set->config();
    auto base = [&] {
      http::RecorderView v;
      v.section = section;
      v.name = c.name;
      v.mode = c.mode == RecordMode::Events ? "events" : "continuous";
      v.dir = c.dir;
      return v;
    };
    const auto status = set->status();
    if (status.empty()) {
      auto v = base();
      v.state = "idle";
      out.push_back(std::move(v));
    }
    for (const auto& st : status) {
      auto v = base();
      v.key = st.key;
      v.state = st.state;
      v.error = st.error;
      v.segments = st.segments;
      v.current = st.current;
      const auto& t = totals[c.name + " " + st.key];
      v.errors = t.errors;
      v.last_closed = t.last_closed;
      v.last_closed_unix_ms = t.last_closed_unix_ms;
      std::error_code ec;
      const auto open = st.current.empty() ? 0 : std::filesystem::file_size(st.current, ec);
      v.bytes = t.bytes_closed + (ec ? 0 : open);
      out.push_back(std::move(v));
    }
  }
  return out;
}

void Host::note_recorder_event(const RecorderEvent& e) {
  // Called with events_mutex_ held (on_event).
  auto& t = recorder_totals_[e.recorder + " " + e.key];
  if (e.type == "segment-closed") {
    ++t.segments_closed;
    std::error_code ec;
    const auto size = std::filesystem::file_size(e.location, ec);
    if (!ec) t.bytes_closed += size;
    t.last_closed = e.location;
    t.last_closed_unix_ms = unix_ms_now();
  } else if (e.type == "recorder-error") {
    ++t.errors;
  }
}

http::KickResult Host::kick(const StreamKey& key) {
  http::KickResult r;
  {
    std::lock_guard lock(sections_mutex_);
    for (const auto& [section, run] : workers_) {
      const auto s = run->worker->stats();
      if (s.key && *s.key == key && run->worker->kick("by the control plane")) {
        r.found = true;
        r.publisher = section;
        log("[" + section + "] kicked " + key.str() + " by the control plane");
        return r;
      }
    }
  }
  // A publisher without a worker (an arclysink in an application): end the stream.
  if (engine_->find_stream(key)) {
    engine_->end_publish(key);
    r.found = true;
    r.publisher = "publisher";
    log("[stream " + key.str() + "] ended by the control plane");
  }
  return r;
}

http::EventView Host::trigger_event(const http::EventRequest& req) {
  if (!engine_->find_stream(req.key))
    throw Error(Errc::StreamNotFound, "no stream '" + req.key.str() + "' is being published");
  std::lock_guard lock(sections_mutex_);
  for (const auto& [section, set] : recorders_) {
    const auto& c = set->config();
    if (c.mode != RecordMode::Events || !ingest::key_matches(c.pattern, req.key.str())) continue;
    const EventClip e = set->trigger(req.key, req.pre, req.post, req.label);
    log("[" + section + "] event " + e.id + " on " + e.key +
        (e.extended.empty() ? " -> " + e.file : " extends " + e.extended));
    http::EventView v;
    v.id = e.id;
    v.key = e.key;
    v.label = e.label;
    v.recorder = section;
    v.state = e.state;
    v.file = e.file;
    v.error = e.error;
    v.created_unix_ms = e.created_unix_ms;
    v.pre_ms = e.pre_ms;
    v.post_ms = e.post_ms;
    v.pre_obtained_ms = e.pre_obtained_ms;
    v.trigger_ts = e.trigger_ts;
    v.first_ts = e.first_ts;
    v.end_ts = e.end_ts;
    v.extended = e.extended;
    return v;
  }
  throw Error(Errc::InvalidArgument,
              "no [record] section with mode=events records '" + req.key.str() + "'");
}

std::vector<http::EventView> Host::events() const {
  std::vector<http::EventView> out;
  std::lock_guard lock(sections_mutex_);
  for (const auto& [section, set] : recorders_) {
    for (const auto& e : set->events()) {
      http::EventView v;
      v.id = e.id;
      v.key = e.key;
      v.label = e.label;
      v.recorder = section;
      v.state = e.state;
      v.file = e.file;
      v.error = e.error;
      v.created_unix_ms = e.created_unix_ms;
      v.pre_ms = e.pre_ms;
      v.post_ms = e.post_ms;
      v.pre_obtained_ms = e.pre_obtained_ms;
      v.trigger_ts = e.trigger_ts;
      v.first_ts = e.first_ts;
      v.end_ts = e.end_ts;
      v.extended = e.extended;
      out.push_back(std::move(v));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.created_unix_ms < b.created_unix_ms; });
  return out;
}

// Finalized files under every recorder's directory ({dir}/{app}/{stream}/{stamp}…),
// by capture time from the name; open segments and set-aside .partial files are not listed.
std::vector<http::RecordingView> Host::recordings() const {
  std::vector<http::RecordingView> out;
  std::lock_guard lock(sections_mutex_);
  for (const auto& [section, set] : recorders_) {
    const auto& c = set->config();
    const auto open = set->open_files();
    const std::string ext = "." + std::string(format_extension(c.format));
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(c.dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (!it->is_regular_file(ec) || it->path().extension() != ext) continue;
      const auto rel = std::filesystem::relative(it->path(), c.dir, ec);
      auto parts = std::vector<std::string>(rel.begin(), rel.end());
      if (ec || parts.size() != 3) continue;
      const std::string key = parts[0] + "/" + parts[1];
      if (!ingest::key_matches(c.pattern, key)) continue;
      const std::string file = it->path().string();
      if (std::find(open.begin(), open.end(), file) != open.end()) continue;
      http::RecordingView v;
      v.key = key;
      v.recorder = section;
      v.file = file;
      v.bytes = it->file_size(ec);
      v.start_unix_ms = stamp_of(parts[2]);
      out.push_back(std::move(v));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.start_unix_ms < b.start_unix_ms; });
  return out;
}

std::vector<http::EgressView> Host::egress() const {
  std::vector<http::EgressView> out;
  std::lock_guard lock(sections_mutex_);
  if (rtsp_server_) {
    const auto st = rtsp_server_->stats();
    http::EgressView v;
    v.protocol = "rtsp";
    v.port = rtsp_server_->port();
    v.readers = st.readers;
    v.readers_total = st.readers_total;
    v.refused = {{"unauthorized", st.refused_unauthorized},
                 {"forbidden", st.refused_forbidden},
                 {"not-found", st.refused_not_found},
                 {"bad-request", st.refused_bad_request},
                 {"limit", st.refused_limit}};
    v.last_refusal = st.last_refusal;
    for (const auto& r : st.reader_list)
      v.sessions.push_back({r.key, r.address, r.transport, "read", r.bytes, r.lag_ms});
    v.slow_readers = st.dropped_slow;
    out.push_back(std::move(v));
  }
  if (srt_server_) {
    const auto st = srt_server_->stats();
    http::EgressView v;
    v.protocol = "srt";
    v.port = srt_server_->port();
    v.readers = st.readers;
    v.readers_total = st.accepted;
    v.refused = {{"streamid", st.refused_streamid},     {"forbidden", st.refused_forbidden},
                 {"not-found", st.refused_not_found},   {"busy", st.refused_busy},
                 {"passphrase", st.refused_passphrase}, {"handshake", st.handshake_failed}};
    v.last_refusal = st.last_refusal;
    for (const auto& r : st.sessions)
      v.sessions.push_back(
          {r.key, r.address, "srt", r.mode == "publish" ? "publish" : "read", r.bytes, r.lag_ms});
    v.slow_readers = st.slow_readers;
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace arcly::host
