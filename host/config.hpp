// The arcly host's configuration: a GLib key file, one section per thing to run.
//
//   [app live]          cache-window, cache-frames, cache-bytes, max-publishers,
//                       max-subscribers, idle-timeout
//   [rtsp cam1]         url, key, transport, latency, timeout, user, password,
//                       grace, backoff-initial, backoff-max
//   [srt contrib]       listen=srt://:9000 | connect=srt://host:port (+ streamid, key),
//                       passphrase, pbkeylen, latency, default-key, allow, tokens,
//                       timeout, grace, backoff-initial, backoff-max
//   [rtmp in]           listen=:1935 (HOST:PORT or :PORT), allow, tokens, key,
//                       max-connections, handshake-timeout, idle-timeout
//   [pipeline test]     source=<gst-launch description ending in encoded streams>, key,
//                       timeout, grace, backoff-initial, backoff-max
//   [record cam1]       key (or a pattern such as live/*), dir, format=mp4|mkv|ts,
//                       segment, pre-roll, join-delay, max-age, max-bytes,
//                       min-free (bytes, or % of the filesystem),
//                       mode=continuous|events
//   [output monitor]    key, pipeline=<what follows arclysrc, gst-launch syntax>
//   [http]              listen=127.0.0.1:9090, token, read-token, web-dir
//   [rtsp-server]       listen=:8554, user.NAME=PASSWORD, read.NAME=PATTERNS,
//                       anonymous-read, auth=basic,digest, max-readers,
//                       max-readers-per-key, wait, start=live-edge|keyframe,
//                       transports=tcp,udp
//   [srt-server]        listen=:8890, passphrase, pbkeylen, latency, read-allow,
//                       read-tokens, publish=yes|no, publish-allow, publish-tokens,
//                       max-readers, max-readers-per-key, publish-timeout,
//                       start=live-edge|keyframe (a reader without start= in its streamid)
//
// load() never throws for a bad file: every problem is collected, each naming its
// section and key, so `arcly check` can list them all at once. Values are read by
// one table per section type (config.cpp) over the value types of config_values.hpp;
// the defaults are the member initializers below. Problems refuse the file;
// warnings (things that work but probably not as meant) are listed by `check`.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "arcly/engine.hpp"
#include "config_values.hpp"
#include "rtmp_worker.hpp"
#include "rtsp_server.hpp"
#include "rtsp_worker.hpp"
#include "source_worker.hpp"
#include "srt_server.hpp"
#include "srt_worker.hpp"

namespace arcly::host {

enum class RecordFormat { Mp4, Mkv, Ts };
// continuous: every matching stream, always. events: nothing on disk until an
// event (POST /v1/events) asks for a clip.
enum class RecordMode { Continuous, Events };
std::string_view format_extension(RecordFormat f);

struct RecordConfig {
  std::string name;
  std::string pattern;  // a key or a glob over keys
  std::string dir = "recordings";
  RecordFormat format = RecordFormat::Mp4;
  RecordMode mode = RecordMode::Continuous;
  std::chrono::seconds segment{60};
  std::chrono::milliseconds preroll{0};
  std::chrono::milliseconds join_delay{0};  // join a stream this long after it appears
  std::chrono::seconds max_age{0};          // 0 = keep forever
  std::uint64_t max_bytes = 0;              // per camera, open segment included; 0 = no bound
  std::uint64_t min_free_bytes = 0;         // keep this much free on dir's filesystem
  double min_free_percent = 0;              // ... or this share of it (min-free=5%)
};

struct OutputConfig {
  std::string name;
  StreamKey key{"live", "out"};
  std::string pipeline;  // what follows arclysrc
};

struct RtspConfig {
  ingest::WorkerSettings worker;
  ingest::RtspSettings rtsp;
};
struct SrtConfig {
  ingest::WorkerSettings worker;
  ingest::SrtSettings srt;
};
struct RtmpConfig {
  ingest::RtmpSettings rtmp;  // rtmp.name is the section name
};
struct PipelineConfig {
  ingest::WorkerSettings worker;
  std::string source;
};

// Frames per second a cache must be sized for: 30 fps video and its audio (~47/s).
inline constexpr std::size_t kFramesPerSecondBound = 90;
// The bitrate assumed for a camera whose configuration does not state one (bit/s).
inline constexpr double kAssumedBitrate = 1e6;

// A port a section listens on (checked for clashes, and for "address in use").
struct ListenerUse {
  std::string section;   // "srt contrib"
  std::string key;       // "listen"
  std::string protocol;  // "udp" or "tcp"
  values::ListenAddress address;
};

// [http]: the control plane (host/http/). Off unless the section is there.
struct HttpConfig {
  std::string listen = "127.0.0.1:9090";
  std::string token;       // admin bearer token; never printed
  std::string read_token;  // read-only bearer token; never printed
  std::string web_dir;     // the page's static files ("" = the installed ones)
  std::chrono::milliseconds player_idle{30000};  // the web player's HLS stops this long unasked
};

// [rtsp-server] and [srt-server]: every stream served to the network (gst/egress/).
// Off unless the section is there. The settings' `log` callbacks are the host's.
using RtspServerConfig = egress::RtspServerSettings;
using SrtServerConfig = egress::SrtServerSettings;

struct Config {
  std::vector<AppSpec> apps;
  std::vector<RtspConfig> rtsp;
  std::vector<SrtConfig> srt;
  std::vector<RtmpConfig> rtmp;
  std::vector<PipelineConfig> pipelines;
  std::vector<RecordConfig> records;
  std::vector<OutputConfig> outputs;
  std::vector<ListenerUse> listeners;
  std::optional<HttpConfig> http;
  std::optional<RtspServerConfig> rtsp_server;
  std::optional<SrtServerConfig> srt_server;
  std::vector<std::string> problems;  // "[section] key: what is wrong"
  std::vector<std::string> warnings;  // "[section] key: what may not be meant"
  // Every section as written ("rtsp cam1" -> its keys and values, in order): what a
  // reload compares to tell unchanged sections from changed ones.
  std::map<std::string, std::string> sections;
  bool ok() const { return problems.empty(); }
};

// Parses and checks a key file (from a path, or from text for the embedded demo).
// Relative `dir=` paths resolve against `base_dir` — for a file, the directory the
// file is in (under systemd the current directory is /); for text, as given.
Config load_file(const std::string& path);
Config load_text(const std::string& text, const std::string& origin = "<text>",
                 const std::string& base_dir = "");

// What only `arcly check` looks at, because a running arcly holds these itself:
// recording directories that cannot be written (with the OS reason) and listen
// ports another process holds ("address in use").
std::vector<std::string> check_environment(const Config& config);

// Human summary for `arcly check` (what would run): retention, join delay, each
// listener's passphrase and allow state (never their values); then the warnings.
std::string explain(const Config& config);

}  // namespace arcly::host
