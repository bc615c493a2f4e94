#include "host.hpp"

#include <gst/pbutils/pbutils.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <map>
#include <sstream>
#include <thread>

#include "arcly/error.hpp"
#include "engine_registry.hpp"
#include "http/server.hpp"

GST_DEBUG_CATEGORY_STATIC(arcly_host_debug);
#define GST_CAT_DEFAULT arcly_host_debug

namespace arcly::host {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

std::string json_escape(std::string_view s) {
  std::string out;
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
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string iso_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string iso_ns(std::int64_t ns) {
  if (ns < 0) return "";
  const std::time_t t = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ns / 1'000'000 % 1000));
  return out;
}

std::string human_duration(std::chrono::seconds s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s.count() / 3600),
                static_cast<long long>(s.count() / 60 % 60),
                static_cast<long long>(s.count() % 60));
  return buf;
}

}  // namespace

// An [output]: `arclysrc stream=KEY persist=true ! <pipeline>`, rebuilt after an error.
struct Host::Output {
  OutputConfig config;
  GstElement* pipeline = nullptr;
  std::string state = "starting";
  std::string error;
  Clock::time_point retry_at{};

  void start() {
    const std::string desc = "arclysrc engine=default stream=" + config.key.str() +
                             " persist=true wait=-1 ! " + config.pipeline;
    GError* err = nullptr;
    pipeline = gst_parse_launch(desc.c_str(), &err);
    if (!pipeline) {
      fail(std::string("cannot build: ") + (err ? err->message : "?"));
      g_clear_error(&err);
      return;
    }
    g_clear_error(&err);
    if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
      fail("cannot start");
      return;
    }
    state = "playing";
  }
  void fail(std::string why) {
    error = std::move(why);
    state = "error";
    GST_WARNING("[output %s] %s", config.name.c_str(), error.c_str());
    stop();
    retry_at = Clock::now() + 2s;
  }
  void poll() {
    if (!pipeline) {
      if (state == "error" && Clock::now() >= retry_at) start();
      return;
    }
    GstBus* bus = gst_element_get_bus(pipeline);
    while (GstMessage* m = gst_bus_pop_filtered(
               bus, static_cast<GstMessageType>(GST_MESSAGE_ERROR | GST_MESSAGE_EOS))) {
      if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
        GError* e = nullptr;
        gst_message_parse_error(m, &e, nullptr);
        const std::string why =
            std::string(GST_MESSAGE_SRC_NAME(m)) + ": " + (e ? e->message : "error");
        g_clear_error(&e);
        gst_message_unref(m);
        gst_object_unref(bus);
        fail(why);
        return;
      }
      state = "ended";
      gst_message_unref(m);
    }
    gst_object_unref(bus);
  }
  void stop() {
    if (!pipeline) return;
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(pipeline);
    pipeline = nullptr;
  }
};

struct Host::Seen {
  struct Worker {
    ingest::WorkerState state = ingest::WorkerState::Idle;
    std::uint64_t attempts = 0;
    std::uint64_t rejected = 0;
  };
  std::map<std::string, Worker> workers;       // by section
  std::map<std::string, std::uint64_t> drops;  // subscriber lag drops by stream key
};

Host::Host(Config config, HostOptions options)
    : config_(std::move(config)), options_(std::move(options)), seen_(std::make_unique<Seen>()) {
  static std::once_flag once;
  std::call_once(once,
                 [] { GST_DEBUG_CATEGORY_INIT(arcly_host_debug, "arclyhost", 0, "arcly host"); });
  auto builder = Engine::builder();
  for (const auto& app : config_.apps) builder.application(app);
  builder.accept_any_application();
  engine_ = builder.build();
  gst::unregister_engine(gst::kDefaultEngineName);
  gst::register_engine(gst::kDefaultEngineName, engine_);
  if (options_.stats_json == "-") {
    json_ = stdout;
  } else if (!options_.stats_json.empty()) {
    json_ = std::fopen(options_.stats_json.c_str(), "w");
    if (!json_) throw Error(Errc::Io, "--stats-json: cannot write '" + options_.stats_json + "'");
  }
  tty_ = json_ != stdout && isatty(STDOUT_FILENO);
  // journald stamps each line itself; elsewhere the event log carries the time.
  stamp_lines_ = !g_getenv("JOURNAL_STREAM");
}

Host::~Host() {
  http_.reset();
  if (json_ && json_ != stdout) std::fclose(json_);
  gst::unregister_engine(gst::kDefaultEngineName);
}

void Host::on_event(const RecorderEvent& e) {
  {
    std::lock_guard lock(events_mutex_);
    if (e.type == "segment-opened") segment_locations_.push_back(e.location);
    pending_events_.push_back(e);
    note_recorder_event(e);
  }
  std::string line = "[record " + e.recorder + "] " + e.type + " " + e.key;
  if (!e.location.empty()) line += " " + e.location;
  if (!e.message.empty()) line += ": " + e.message;
  GST_INFO("%s", line.c_str());
  log(line);
}

void Host::log(const std::string& line) {
  if (tty_ || json_ == stdout) return;  // the table / the JSON own stdout
  std::lock_guard lock(log_mutex_);
  if (stamp_lines_)
    std::printf("%s %s\n", iso_now().c_str(), line.c_str());
  else
    std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// What changed since the last look, one line each: worker state changes (with the
// reason), refused callers, subscribers that lagged.
void Host::log_events() {
  using ingest::WorkerState;
  for (const auto& [section, run] : workers_) {
    const auto s = run->worker->stats();
    auto& seen = seen_->workers[section];
    const std::string key = s.key ? s.key->str() : "";
    if (s.state != seen.state || s.attempts != seen.attempts) {
      std::string line;
      const std::string why = s.last_failure.message.empty()
                                  ? std::string(ingest::failure_name(s.last_failure.kind))
                                  : s.last_failure.message;
      char retry[32];
      std::snprintf(retry, sizeof retry, "%.1f", static_cast<double>(s.retry_in.count()) / 1000.0);
      if (s.state == WorkerState::Live && seen.state != WorkerState::Live) {
        line = std::string(s.reconnects ? "reconnected" : "connected") + ": publishing " + key;
      } else if (s.state == WorkerState::Retrying && seen.state == WorkerState::Live) {
        line = "lost " + key + ": " + why + "; retrying in " + retry + " s" +
               (s.in_grace ? " (the stream waits in grace)" : "");
      } else if (s.state == WorkerState::Retrying) {
        line = "attempt " + std::to_string(s.attempts) + " failed: " + why + "; retrying in " +
               retry + " s";
      } else if (s.state == WorkerState::Listening && seen.state != WorkerState::Listening) {
        line = "listening";
      } else if (s.state == WorkerState::Stopped && seen.state != WorkerState::Stopped) {
        line = "stopped";
      }
      if (!line.empty()) log("[" + section + "] " + line);
    }
    if (s.rejected > seen.rejected) {
      const auto n = s.rejected - seen.rejected;
      log("[" + section + "] refused " + std::to_string(n) +
          (n == 1 ? " caller: " : " callers, the last: ") + s.last_rejection);
    }
    seen.state = s.state;
    seen.attempts = s.attempts;
    seen.rejected = s.rejected;
  }
  for (const auto& st : engine_->streams()) {
    std::uint64_t drops = 0;
    for (const auto& sub : st->qos().per_subscriber) drops += sub.dropped;
    auto& seen = seen_->drops[st->key().str()];
    if (drops > seen) {
      log("[stream " + st->key().str() + "] subscribers lagged: " + std::to_string(drops - seen) +
          " frames dropped (" + std::to_string(drops) + " in all)");
    }
    seen = drops;
  }
}

// What changed on each RTMP server since the last look: listening, publishers
// accepted and refused (with the last reason), connections cut off.
void Host::log_rtmp_events() {
  for (auto& [section, run] : rtmp_) {
    const auto s = run->worker->stats();
    auto& seen = run->seen;
    const std::string tag = "[" + section + "] ";
    if (s.listening && !seen.listening) log(tag + "listening on port " + std::to_string(s.port));
    if (s.publishes > seen.publishes)
      log(tag + std::to_string(s.publishes - seen.publishes) + " publish(es) accepted; " +
          std::to_string(s.live) + " live");
    if (s.refused > seen.refused) {
      const auto n = s.refused - seen.refused;
      log(tag + "refused " + std::to_string(n) +
          (n == 1 ? " publisher: " : " publishers, the last: ") + s.last_refusal);
    }
    if (s.accept_starved > seen.accept_starved) {
      log(tag +
          "ran out of file descriptors: new connections wait until one is freed "
          "(raise the limit: LimitNOFILE= in the unit, ulimit -n)");
    }
    if (s.timeouts + s.protocol_errors + s.over_limit >
        seen.timeouts + seen.protocol_errors + seen.over_limit) {
      log(tag + "connections cut off so far: " + std::to_string(s.timeouts) + " timed out, " +
          std::to_string(s.protocol_errors) + " broke the protocol, " +
          std::to_string(s.over_limit) + " over the limit");
    }
    {
      std::lock_guard lock(run->mutex);
      if (!run->failure.empty() && !run->failure_logged) {
        log(tag + "failed: " + run->failure);
        run->failure_logged = true;
      }
    }
    seen = s;
  }
}

namespace {
// Runs `run.worker` under its own Engine::serve thread until `run.stop`; a serve
// that throws leaves its reason in `run.failure` (under `run.mutex`).
template <class Run>
void serve_on_own_thread(const std::shared_ptr<Engine>& engine, Run& run) {
  Run* r = &run;
  run.thread = std::jthread([r, engine] {
    try {
      engine->serve({r->worker}, r->stop.get_token());
    } catch (const std::exception& e) {
      std::lock_guard lock(r->mutex);
      r->failure = e.what();
    }
  });
}
}  // namespace

void Host::start_worker(const std::string& section, std::shared_ptr<ingest::SourceWorker> worker) {
  auto run = std::make_unique<WorkerRun>();
  run->worker = std::move(worker);
  serve_on_own_thread(engine_, *run);
  std::lock_guard lock(sections_mutex_);
  workers_[section] = std::move(run);
}

std::vector<std::string> Host::start_egress(const Config& c, const std::set<std::string>& only,
                                            bool all) {
  std::vector<std::string> failures;
  auto wanted = [&](const std::string& s) { return all || only.contains(s); };
  // One server from its section's settings into `slot`; a failure is collected.
  const auto start = [&]<class Server>(const auto& config, const std::string& section,
                                       std::unique_ptr<Server>& slot, const std::string& serving,
                                       const std::string& suffix) {
    if (!config || !wanted(section + " ")) return;
    const std::string tag = "[" + section + "]";
    auto settings = *config;
    settings.engine = gst::kDefaultEngineName;
    settings.log = [this, tag](const std::string& line) {
      // The servers say "rtsp: ..." / "srt: ...": the section names them here.
      const auto colon = line.find(": ");
      log(tag + " " + (colon != std::string::npos && colon <= 4 ? line.substr(colon + 2) : line));
    };
    try {
      auto server = std::make_unique<Server>(settings);
      server->start();
      log(tag + " " + serving + (settings.host.empty() ? std::string("HOST") : settings.host) +
          ":" + std::to_string(server->port()) + suffix);
      std::lock_guard lock(sections_mutex_);
      slot = std::move(server);
    } catch (const std::exception& e) {
      failures.push_back(tag + " " + e.what());
    }
  };
  start(c.rtsp_server, "rtsp-server", rtsp_server_, "serving every stream at rtsp://",
        "/APP/STREAM");
  start(c.srt_server, "srt-server", srt_server_, "serving on srt://",
        " (streamid #!::r=APP/STREAM,m=request|publish)");
  for (const auto& f : failures) log(f);
  return failures;
}

// Starts the sections of `c` named in `only` (every section when `all`).
void Host::start_sections(const Config& c, const std::set<std::string>& only, bool all) {
  auto wanted = [&](const std::string& s) { return all || only.contains(s); };
  for (const auto& r : c.rtsp) {
    if (wanted("rtsp " + r.worker.name))
      start_worker("rtsp " + r.worker.name, std::make_shared<ingest::RtspWorker>(r.worker, r.rtsp));
  }
  for (const auto& sc : c.srt) {
    if (wanted("srt " + sc.worker.name))
      start_worker("srt " + sc.worker.name, std::make_shared<ingest::SrtWorker>(sc.worker, sc.srt));
  }
  for (const auto& rc : c.rtmp) {
    const std::string section = "rtmp " + rc.rtmp.name;
    if (!wanted(section)) continue;
    auto run = std::make_unique<RtmpRun>();
    run->worker = std::make_shared<ingest::RtmpWorker>(rc.rtmp);
    serve_on_own_thread(engine_, *run);
    std::lock_guard lock(sections_mutex_);
    rtmp_[section] = std::move(run);
  }
  for (const auto& p : c.pipelines) {
    if (wanted("pipeline " + p.worker.name))
      start_worker("pipeline " + p.worker.name,
                   std::make_shared<ingest::PipelineWorker>(p.worker, p.source));
  }
  for (const auto& rc : c.records) {
    if (!wanted("record " + rc.name)) continue;
    auto set = std::make_unique<RecorderSet>(rc, engine_, gst::kDefaultEngineName,
                                             [this](const RecorderEvent& e) { on_event(e); });
    std::lock_guard lock(sections_mutex_);
    recorders_["record " + rc.name] = std::move(set);
  }
  for (const auto& oc : c.outputs) {
    if (!wanted("output " + oc.name)) continue;
    auto out = std::make_unique<Output>();
    out->config = oc;
    out->start();
    std::lock_guard lock(sections_mutex_);
    outputs_["output " + oc.name] = std::move(out);
  }
}

// Stops the named sections all at once: ingest first (their streams end), then
// every recorder in parallel (each finalizes within 10 s, so the slowest bounds
// the whole stop, not their sum), then outputs.
void Host::stop_sections(const std::set<std::string>& sections, bool streams_live) {
  std::unique_lock lock(sections_mutex_);
  std::vector<std::unique_ptr<WorkerRun>> workers;
  for (auto it = workers_.begin(); it != workers_.end();) {
    if (!sections.contains(it->first)) {
      ++it;
      continue;
    }
    it->second->stop.request_stop();
    workers.push_back(std::move(it->second));
    it = workers_.erase(it);
  }
  std::vector<std::unique_ptr<RtmpRun>> servers;
  for (auto it = rtmp_.begin(); it != rtmp_.end();) {
    if (!sections.contains(it->first)) {
      ++it;
      continue;
    }
    it->second->stop.request_stop();
    servers.push_back(std::move(it->second));
    it = rtmp_.erase(it);
  }
  std::vector<std::unique_ptr<RecorderSet>> sets;
  for (auto it = recorders_.begin(); it != recorders_.end();) {
    if (!sections.contains(it->first)) {
      ++it;
      continue;
    }
    sets.push_back(std::move(it->second));
    it = recorders_.erase(it);
  }
  std::vector<std::unique_ptr<Output>> outputs;
  for (auto it = outputs_.begin(); it != outputs_.end();) {
    if (!sections.contains(it->first)) {
      ++it;
      continue;
    }
    outputs.push_back(std::move(it->second));
    it = outputs_.erase(it);
  }
  std::unique_ptr<egress::RtspServer> rtsp_server;
  std::unique_ptr<egress::SrtServer> srt_server;
  if (sections.contains("rtsp-server ")) rtsp_server = std::move(rtsp_server_);
  if (sections.contains("srt-server ")) srt_server = std::move(srt_server_);
  lock.unlock();
  // Readers first: each ends its own session (the streams they read may still run).
  if (rtsp_server) rtsp_server->stop();
  if (srt_server) srt_server->stop();
  rtsp_server.reset();
  srt_server.reset();
  workers.clear();  // joins every serve thread (all were asked to stop first)
  servers.clear();
  {
    std::vector<std::jthread> stoppers;
    for (auto& set : sets) {
      RecorderSet* r = set.get();
      stoppers.emplace_back([r, streams_live] { r->stop(10s, streams_live); });
    }
  }
  sets.clear();
  for (auto& o : outputs) o->stop();
}

// [http]: the control plane, on its own thread (see http/server.hpp for why).
void Host::start_http() {
  http_.reset();
  if (!config_.http) return;
  http::ServerConfig sc;
  sc.listen = config_.http->listen;
  sc.token = config_.http->token;
  sc.read_token = config_.http->read_token;
  sc.web_dir = config_.http->web_dir;
  sc.player_idle = config_.http->player_idle;
  if (sc.web_dir.empty()) {
    std::error_code ec;
    sc.web_dir = std::filesystem::exists(ARCLY_WEB_DIR "/index.html", ec) ? ARCLY_WEB_DIR
                                                                          : ARCLY_SOURCE_WEB_DIR;
  }
  http_ = std::make_unique<http::Server>(sc, *this);
  const bool tokens = !sc.token.empty() || !sc.read_token.empty();
  log("[http] listening on http://" + http_->address() + "/" +
      (tokens ? " (bearer tokens required)" : " (no token: loopback clients only)"));
}

namespace {
std::string section_list(const std::set<std::string>& set) {
  std::string out;
  for (const auto& s : set) {
    // "http " (a section without a name) reads "[http]".
    const std::string name = s.ends_with(' ') ? s.substr(0, s.size() - 1) : s;
    out += (out.empty() ? "[" : ", [") + name + "]";
  }
  return out.empty() ? std::string("none") : out;
}
}  // namespace

void Host::reload() {
  if (options_.config_path.empty()) {
    log("reload: nothing to reload (no configuration file)");
    return;
  }
  Config next = load_file(options_.config_path);
  if (!next.ok()) {
    log("reload refused: " + options_.config_path + " has " + std::to_string(next.problems.size()) +
        " problem" + (next.problems.size() == 1 ? "" : "s") + "; the running configuration stays");
    for (const auto& p : next.problems) log("  " + p);
    return;
  }
  std::set<std::string> removed, added, changed;
  for (const auto& [section, text] : config_.sections) {
    auto it = next.sections.find(section);
    if (it == next.sections.end())
      removed.insert(section);
    else if (it->second != text)
      changed.insert(section);
  }
  for (const auto& [section, text] : next.sections) {
    if (!config_.sections.contains(section)) added.insert(section);
  }
  std::set<std::string> apps;
  for (const auto* set : {&removed, &added, &changed}) {
    for (const auto& s : *set) {
      if (s.rfind("app ", 0) == 0) apps.insert(s);
    }
  }
  if (!apps.empty()) {
    log("reload refused: " + section_list(apps) +
        " changed, and an application's cache and limits are fixed while its streams run: restart "
        "arcly to change them; the running configuration stays");
    return;
  }
  std::set<std::string> to_stop = removed, to_start = added;
  to_stop.insert(changed.begin(), changed.end());
  to_start.insert(changed.begin(), changed.end());
  const bool http_changed =
      removed.contains("http ") || added.contains("http ") || changed.contains("http ");
  to_stop.erase("http ");
  to_start.erase("http ");
  stop_sections(to_stop, true);
  start_sections(next, to_start, false);
  start_egress(next, to_start, false);  // a server that cannot start stays off (logged)
  const std::size_t kept = next.sections.size() - added.size() - changed.size();
  log("reloaded " + options_.config_path + ": " + std::to_string(kept) + " section" +
      (kept == 1 ? "" : "s") + " unchanged; started " + section_list(added) + "; stopped " +
      section_list(removed) + "; restarted " + section_list(changed));
  config_ = std::move(next);
  if (http_changed) {
    try {
      start_http();
    } catch (const Error& e) {
      log(std::string("[http] ") + e.what() + "; the control plane is off");
    }
  }
}

int Host::run(const std::atomic<bool>& stop_flag, std::atomic<bool>* reload_flag) {
  started_ = Clock::now();
  try {
    start_http();
  } catch (const Error& e) {
    std::fprintf(stderr, "arcly: %s\n", e.what());
    return 1;
  }
  if (auto failed = start_egress(config_, {}, true); !failed.empty()) {
    for (const auto& f : failed) std::fprintf(stderr, "arcly: %s\n", f.c_str());
    stop_sections({"rtsp-server ", "srt-server "}, false);
    http_.reset();
    return 1;
  }
  start_sections(config_, {}, true);
  auto next_tick = Clock::now() + 1s;
  while (!stop_flag.load()) {
    if (options_.run_for && Clock::now() - started_ >= *options_.run_for) break;
    std::this_thread::sleep_for(50ms);
    if (reload_flag && reload_flag->exchange(false)) reload();
    for (auto& [section, o] : outputs_) o->poll();
    if (Clock::now() >= next_tick) {
      next_tick += 1s;
      if (tty_)
        print_status(false);
      else
        log_events();
      log_rtmp_events();
      write_json();
    }
  }
  // Stop ingest first: every stream ends, so recorders and outputs see EOS and
  // finalize what they write — every recorder at once.
  http_.reset();  // no API calls into sections being stopped
  log("stopping: ingest, then recorders");
  if (tty_) std::printf("stopping: ingest, then recorders...\n");
  std::string serve_error;
  std::set<std::string> ingest, rest;
  for (auto& [section, w] : workers_) {
    ingest.insert(section);
    std::lock_guard lock(w->mutex);
    if (!w->failure.empty()) serve_error = w->failure;
  }
  for (auto& [section, r] : rtmp_) {
    ingest.insert(section);
    std::lock_guard lock(r->mutex);
    if (!r->failure.empty()) serve_error = r->failure;
  }
  stop_sections(ingest, false);
  engine_->close_all();
  for (const auto& [section, r] : recorders_) rest.insert(section);
  for (const auto& [section, o] : outputs_) rest.insert(section);
  rest.insert("rtsp-server ");
  rest.insert("srt-server ");
  stop_sections(rest, false);
  write_json();
  if (options_.list_recordings) list_recordings();
  if (!serve_error.empty()) {
    std::fprintf(stderr, "arcly: %s\n", serve_error.c_str());
    return 1;
  }
  return 0;
}

void Host::print_status(bool) {
  if (json_ == stdout) return;
  std::map<std::string, std::string> source_state;
  for (const auto& [section, w] : workers_) {
    auto s = w->worker->stats();
    if (s.key) source_state[s.key->str()] = std::string(ingest::state_name(s.state));
  }
  std::ostringstream out;
  char line[256];
  const auto now = Clock::now();
  if (tty_) {
    out << "\033[H\033[2J";
    std::snprintf(
        line, sizeof line, "arcly — %s — up %s\n", iso_now().c_str(),
        human_duration(std::chrono::duration_cast<std::chrono::seconds>(now - started_)).c_str());
    out << line;
    std::snprintf(line, sizeof line, "%-24s %-10s %10s %6s %5s %5s %7s %9s\n", "STREAM", "SOURCE",
                  "KBIT/S", "FPS", "GOP", "SUBS", "DROPS", "UPTIME");
    out << line;
  }
  for (const auto& s : engine_->streams()) {
    const auto q = s->qos();
    std::uint64_t drops = 0;
    for (const auto& sub : q.per_subscriber) drops += sub.dropped;
    const auto uptime = std::chrono::duration_cast<std::chrono::seconds>(now - s->started_at());
    const std::string state =
        source_state.contains(s->key().str()) ? source_state[s->key().str()] : "publish";
    if (tty_) {
      std::snprintf(line, sizeof line, "%-24s %-10s %10.0f %6.1f %5llu %5zu %7llu %9s\n",
                    s->key().str().c_str(), state.c_str(), q.bitrate_bps / 1000, q.fps,
                    static_cast<unsigned long long>(q.last_gop_frames), q.subscribers,
                    static_cast<unsigned long long>(drops), human_duration(uptime).c_str());
    } else {
      std::snprintf(line, sizeof line,
                    "stream %s source=%s kbit/s=%.0f fps=%.1f gop=%llu subscribers=%zu drops=%llu "
                    "uptime=%s\n",
                    s->key().str().c_str(), state.c_str(), q.bitrate_bps / 1000, q.fps,
                    static_cast<unsigned long long>(q.last_gop_frames), q.subscribers,
                    static_cast<unsigned long long>(drops), human_duration(uptime).c_str());
    }
    out << line;
  }
  for (const auto& [section, run] : workers_) {
    const auto& w = run->worker;
    auto s = w->stats();
    if (s.state == ingest::WorkerState::Live) continue;
    std::snprintf(line, sizeof line, "%s %s %s: %s%s%s\n", tty_ ? "  !" : "worker",
                  std::string(w->name()).c_str(), w->settings().name.c_str(),
                  std::string(ingest::state_name(s.state)).c_str(),
                  s.last_failure.message.empty() ? "" : " — ", s.last_failure.message.c_str());
    out << line;
  }
  for (const auto& [section, r] : recorders_) {
    for (const auto& st : r->status()) {
      std::string extra;
      if (st.lag_events > 0)
        extra += " lagged=" + std::to_string(st.lag_events) +
                 " lost-frames=" + std::to_string(st.dropped_frames);
      if (!st.error.empty()) extra += " error: " + st.error;
      if (st.retry_in_ms >= 0)
        extra += " (retry in " + std::to_string(st.retry_in_ms / 1000) + " s)";
      std::snprintf(line, sizeof line, "%s[record %s] %s %s segments=%llu %s", tty_ ? "  " : "",
                    st.recorder.c_str(), st.key.c_str(), st.state.c_str(),
                    static_cast<unsigned long long>(st.segments), st.current.c_str());
      out << line << extra << "\n";
    }
  }
  std::fputs(out.str().c_str(), stdout);
  std::fflush(stdout);
}

// "egress":{"rtsp":{...},"srt":{...}}: readers now and in total, refusals by kind,
// and one entry per reader (address, transport, bytes).
void Host::write_egress_json(std::ostream& o) {
  std::lock_guard lock(sections_mutex_);
  o << "\"egress\":{";
  bool first = true;
  if (rtsp_server_) {
    const auto st = rtsp_server_->stats();
    o << "\"rtsp\":{\"port\":" << rtsp_server_->port() << ",\"readers\":" << st.readers
      << ",\"readers_total\":" << st.readers_total
      << ",\"refused_unauthorized\":" << st.refused_unauthorized
      << ",\"refused_forbidden\":" << st.refused_forbidden
      << ",\"refused_not_found\":" << st.refused_not_found
      << ",\"refused_bad_request\":" << st.refused_bad_request
      << ",\"refused_limit\":" << st.refused_limit << ",\"dropped_slow\":" << st.dropped_slow
      << ",\"last_refusal\":\"" << json_escape(st.last_refusal) << "\",\"reader_list\":[";
    bool f = true;
    for (const auto& r : st.reader_list) {
      o << (f ? "" : ",") << "{\"key\":\"" << json_escape(r.key) << "\",\"address\":\""
        << json_escape(r.address) << "\",\"transport\":\"" << r.transport << "\",\"start\":\""
        << r.start << "\",\"shared_media\":" << (r.shared_media ? "true" : "false")
        << ",\"bytes\":" << r.bytes << ",\"packets\":" << r.packets
        << ",\"queued_bytes\":" << r.queued_bytes << ",\"lag_ms\":" << r.lag_ms
        << ",\"queue_limit_bytes\":" << r.queue_limit_bytes << "}";
      f = false;
    }
    o << "]}";
    first = false;
  }
  if (srt_server_) {
    const auto st = srt_server_->stats();
    o << (first ? "" : ",") << "\"srt\":{\"port\":" << srt_server_->port()
      << ",\"readers\":" << st.readers << ",\"publishers\":" << st.publishers
      << ",\"accepted\":" << st.accepted << ",\"refused\":" << st.refused
      << ",\"refused_streamid\":" << st.refused_streamid
      << ",\"refused_not_found\":" << st.refused_not_found
      << ",\"refused_forbidden\":" << st.refused_forbidden
      << ",\"refused_busy\":" << st.refused_busy
      << ",\"refused_passphrase\":" << st.refused_passphrase
      << ",\"handshake_failed\":" << st.handshake_failed << ",\"slow_readers\":" << st.slow_readers
      << ",\"last_refusal\":\"" << json_escape(st.last_refusal) << "\",\"sessions\":[";
    bool f = true;
    for (const auto& r : st.sessions) {
      o << (f ? "" : ",") << "{\"key\":\"" << json_escape(r.key) << "\",\"address\":\""
        << json_escape(r.address) << "\",\"mode\":\"" << r.mode << "\",\"bytes\":" << r.bytes
        << ",\"dropped\":" << r.dropped << ",\"lag_ms\":" << r.lag_ms << "}";
      f = false;
    }
    o << "]}";
  }
  o << "}";
}

void Host::write_json() {
  if (!json_) return;
  std::ostringstream o;
  o << "{\"time\":\"" << iso_now() << "\",\"streams\":[";
  bool first = true;
  for (const auto& s : engine_->streams()) {
    const auto q = s->qos();
    std::uint64_t drops = 0;
    for (const auto& sub : q.per_subscriber) drops += sub.dropped;
    o << (first ? "" : ",") << "{\"key\":\"" << json_escape(s->key().str())
      << "\",\"bitrate\":" << static_cast<long long>(q.bitrate_bps) << ",\"fps\":" << q.fps
      << ",\"gop\":" << q.last_gop_frames << ",\"frames\":" << q.frames << ",\"bytes\":" << q.bytes
      << ",\"keyframes\":" << q.keyframes << ",\"subscribers\":" << q.subscribers
      << ",\"drops\":" << drops << ",\"uptime\":"
      << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - s->started_at())
                 .count() /
             1000.0
      << "}";
    first = false;
  }
  o << "],\"workers\":[";
  first = true;
  for (const auto& [section, run] : workers_) {
    const auto& w = run->worker;
    const auto s = w->stats();
    o << (first ? "" : ",") << "{\"name\":\"" << json_escape(w->settings().name)
      << "\",\"protocol\":\"" << w->name() << "\",\"state\":\"" << ingest::state_name(s.state)
      << "\",\"key\":\"" << (s.key ? s.key->str() : "") << "\",\"attempts\":" << s.attempts
      << ",\"reconnects\":" << s.reconnects << ",\"last_failure\":\""
      << ingest::failure_name(s.last_failure.kind) << "\",\"last_error\":\""
      << json_escape(s.last_failure.message) << "\",\"rejected\":" << s.rejected << "}";
    first = false;
  }
  for (const auto& [section, run] : rtmp_) {
    const auto s = run->worker->stats();
    std::string failure;
    {
      std::lock_guard lock(run->mutex);
      failure = run->failure;
    }
    o << (first ? "" : ",") << "{\"name\":\"" << json_escape(run->worker->settings().name)
      << "\",\"protocol\":\"rtmp\",\"state\":\""
      << (s.listening       ? "listening"
          : failure.empty() ? "idle"
                            : "failed")
      << "\",\"port\":" << s.port << ",\"connections\":" << s.connections
      << ",\"publishes\":" << s.publishes << ",\"live\":" << s.live << ",\"rejected\":" << s.refused
      << ",\"last_error\":\"" << json_escape(failure.empty() ? s.last_refusal : failure)
      << "\",\"timeouts\":" << s.timeouts << ",\"protocol_errors\":" << s.protocol_errors
      << ",\"over_limit\":" << s.over_limit << ",\"accept_starved\":" << s.accept_starved
      << ",\"frames\":" << s.frames << "}";
    first = false;
  }
  o << "],";
  write_egress_json(o);
  o << ",\"recorders\":[";
  first = true;
  for (const auto& [section, r] : recorders_) {
    for (const auto& st : r->status()) {
      o << (first ? "" : ",") << "{\"recorder\":\"" << json_escape(st.recorder) << "\",\"key\":\""
        << json_escape(st.key) << "\",\"state\":\"" << st.state << "\",\"segments\":" << st.segments
        << ",\"current\":\"" << json_escape(st.current) << "\",\"capture_start\":\""
        << iso_ns(st.capture_start_ns) << "\",\"lag_events\":" << st.lag_events
        << ",\"dropped_frames\":" << st.dropped_frames << ",\"preroll\":"
        << (st.preroll_ms < 0 ? -1.0 : static_cast<double>(st.preroll_ms) / 1000.0)
        << ",\"retry_in\":"
        << (st.retry_in_ms < 0 ? -1.0 : static_cast<double>(st.retry_in_ms) / 1000.0)
        << ",\"error\":\"" << json_escape(st.error) << "\"}";
      first = false;
    }
  }
  o << "],\"storage\":[";
  {
    std::set<std::string> dirs;
    first = true;
    for (const auto& [section, r] : recorders_) {
      const auto st = r->storage_status();
      if (!dirs.insert(st.dir).second) continue;
      o << (first ? "" : ",") << "{\"dir\":\"" << json_escape(st.dir)
        << "\",\"indexed\":" << (st.indexed ? "true" : "false") << ",\"segments\":" << st.segments
        << ",\"bytes\":" << st.bytes << ",\"free\":" << st.free_bytes
        << ",\"min_free\":" << st.min_free_bytes << ",\"deleted\":" << st.deleted << ",\"error\":\""
        << json_escape(st.error) << "\"}";
      first = false;
    }
  }
  o << "],\"events\":[";
  {
    std::lock_guard lock(events_mutex_);
    first = true;
    for (const auto& e : pending_events_) {
      o << (first ? "" : ",") << "{\"type\":\"" << e.type << "\",\"recorder\":\""
        << json_escape(e.recorder) << "\",\"key\":\"" << json_escape(e.key) << "\",\"location\":\""
        << json_escape(e.location) << "\",\"message\":\"" << json_escape(e.message)
        << "\",\"running_time\":" << e.running_time_ns
        << ",\"first_publisher_ts\":" << e.first_publisher_ts
        << ",\"trigger_publisher_ts\":" << e.trigger_publisher_ts << ",\"capture_start\":\""
        << iso_ns(e.capture_start_ns) << "\",\"dropped\":" << e.dropped << "}";
      first = false;
    }
    pending_events_.clear();
  }
  o << "]}\n";
  std::fputs(o.str().c_str(), json_);
  std::fflush(json_);
}

void Host::list_recordings() {
  std::vector<std::string> files;
  {
    std::lock_guard lock(events_mutex_);
    files = segment_locations_;
  }
  std::printf("recordings:\n");
  GstDiscoverer* disc = gst_discoverer_new(10 * GST_SECOND, nullptr);
  for (const auto& f : files) {
    std::error_code ec;
    if (!std::filesystem::exists(f, ec)) continue;
    gchar* uri = gst_filename_to_uri(f.c_str(), nullptr);
    GstDiscovererInfo* info = disc ? gst_discoverer_discover_uri(disc, uri, nullptr) : nullptr;
    const double seconds =
        info ? static_cast<double>(gst_discoverer_info_get_duration(info)) / GST_SECOND : 0.0;
    std::printf("  %s  %.2f s  %llu bytes\n", f.c_str(), seconds,
                static_cast<unsigned long long>(std::filesystem::file_size(f, ec)));
    if (info) gst_discoverer_info_unref(info);
    g_free(uri);
  }
  if (disc) g_object_unref(disc);
}

}  // namespace arcly::host
