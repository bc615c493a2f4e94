// Origin → edge cascade over SRT, end to end: two real `arcly run` processes in two
// network namespaces joined by a veth pair, the link impaired with 2 % loss and
// 40 ms delay each way. The origin publishes a camera with a 10 s GOP and serves it
// on its [srt-server]; the edge pulls the key with the SRT caller ingest
// (`#!::r=live/cam,m=request`, latency set for the link), serves it over RTSP and
// records it. Proven, on frames rather than on time:
// - instant start: a viewer joining the edge decodes a picture (the keyframe) from
//   its first packets while the edge has seen exactly one keyframe before and after
//   the viewer started — only the edge's GOP cache can have given it that picture;
// - the origin restarting within the edge's grace keeps the edge's viewer attached:
//   the same viewer keeps decoding after the origin came back;
// - the edge's recording is one file across the restart, playable (GstDiscoverer,
//   ffprobe), with no hole in its video timeline.
//
// The edge pulls with start=keyframe (the origin's cached GOP at its spacing), the
// way the edge pulled when its recorder stalled, and what a recording edge uses.
// The camera has audio (AAC) too. The edge's recorder used to stall with it (the
// file ended after ~2.5 s of a ~8 s run): the edge's audio arrives ~1.1 s ahead of
// its video, arclysrc pushes both tracks from one thread, and the recorder's
// per-track queue held only 1 s while splitmuxsink waited for the video — the
// full audio queue blocked the thread that would have brought it. The recorder's
// queues are bounded in buffers and bytes now, not in time; this test proves the recording has both
// streams and that each is continuous.
//
// The impairment is `tc netem` on both veth ends where the kernel has sch_netem;
// otherwise a UDP relay in this test, on the origin's side of the veth, drops 2 %
// of the datagrams each way and delays the rest by 40 ms (SRT is UDP, so this is
// the same impairment for it). Which one was used is printed. Without root or
// namespaces the binary exits 77 (meson: SKIP) saying why. The namespaces, and
// every process in them, are removed by main() after the suite, also when a test
// failed or timed out (Check forks each test).
#include <fcntl.h>
#include <poll.h>
#include <sched.h>

#include <atomic>
#include <deque>
#include <future>
#include <map>
#include <random>

#include "host_helpers.hpp"

using namespace host_testing;

namespace {

// Fixed per run of this binary (main sets them before the suite forks).
std::string g_origin_ns, g_edge_ns, g_origin_veth, g_edge_veth;
bool g_netem = false;

const char* const kOriginAddress = "10.77.0.1";
const char* const kEdgeAddress = "10.77.0.2";
constexpr int kOriginSrtPort = 9000;  // namespaces have ports of their own: fixed ports are safe
constexpr int kRelayPort = 9001;
constexpr int kEdgeRtspPort = 8554;
constexpr double kLoss = 0.02;
constexpr auto kDelay = 40ms;

std::string ip_bin() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/bin/ip", "/usr/bin/ip"})
    if (access(p, X_OK) == 0) return p;
  return "ip";
}

std::string in_ns(const std::string& ns, const std::string& cmd) {
  return ip_bin() + " netns exec " + ns + " " + cmd;
}

// Kills every process left in our namespaces (by the pids the kernel lists for
// them) and deletes the namespaces; their veth ends go with them.
void remove_namespaces() {
  for (const auto& ns : {g_origin_ns, g_edge_ns}) {
    std::string pids;
    if (sh(ip_bin() + " netns pids " + ns, &pids) == 0) {
      std::istringstream in(pids);
      for (long pid; in >> pid;) kill(static_cast<pid_t>(pid), SIGKILL);
    }
    sh(ip_bin() + " netns del " + ns);
  }
}

// Builds origin ns <-veth-> edge ns. Returns "" or why namespaces are unavailable.
std::string make_namespaces() {
  const std::string ip = ip_bin();
  std::string out;
  if (sh(ip + " netns add " + g_origin_ns, &out) != 0) return "ip netns add: " + out;
  const std::vector<std::string> steps{
      ip + " netns add " + g_edge_ns,
      ip + " link add " + g_origin_veth + " type veth peer name " + g_edge_veth,
      ip + " link set " + g_origin_veth + " netns " + g_origin_ns,
      ip + " link set " + g_edge_veth + " netns " + g_edge_ns,
      ip + " -n " + g_origin_ns + " addr add " + kOriginAddress + "/24 dev " + g_origin_veth,
      ip + " -n " + g_edge_ns + " addr add " + kEdgeAddress + "/24 dev " + g_edge_veth,
      ip + " -n " + g_origin_ns + " link set " + g_origin_veth + " up",
      ip + " -n " + g_edge_ns + " link set " + g_edge_veth + " up",
      ip + " -n " + g_origin_ns + " link set lo up",
      ip + " -n " + g_edge_ns + " link set lo up",
  };
  for (const auto& step : steps)
    if (sh(step, &out) != 0) return step + ": " + out;
  // netem on both ends: loss and delay in each direction.
  g_netem = true;
  for (const auto& [ns, dev] : {std::pair{g_origin_ns, g_origin_veth}, {g_edge_ns, g_edge_veth}}) {
    if (sh(in_ns(ns, "tc qdisc add dev " + dev + " root netem loss 2% delay 40ms"), &out) != 0) {
      g_netem = false;
      std::printf("cascade: tc netem unavailable: %s", out.c_str());
      std::fflush(stdout);
      break;
    }
  }
  return "";
}

// A UDP relay inside the origin's namespace: listens on the origin's veth address
// and forwards each peer's datagrams to the origin's SRT port over a socket of its
// own (so replies find their peer), both ways dropping `kLoss` of the datagrams and
// delaying the rest by `kDelay`. Seeded: the same traffic loses the same datagrams.
class LossyRelay {
 public:
  struct Counts {
    std::uint64_t forwarded = 0, dropped = 0;
  };

  LossyRelay(const std::string& ns, int listen_port, int target_port) {
    std::promise<std::string> ready;
    auto started = ready.get_future();
    thread_ = std::thread(
        [this, ns, listen_port, target_port, &ready] { run(ns, listen_port, target_port, ready); });
    const std::string why = started.get();
    ck_assert_msg(why.empty(), "relay: %s", why.c_str());
  }
  ~LossyRelay() {
    stop_.store(true, std::memory_order_relaxed);
    if (thread_.joinable()) thread_.join();
  }
  Counts to_origin() const { return {to_origin_fwd_.load(), to_origin_drop_.load()}; }
  Counts to_edge() const { return {to_edge_fwd_.load(), to_edge_drop_.load()}; }

 private:
  struct Pending {
    std::chrono::steady_clock::time_point due;
    int fd;
    sockaddr_in to;  // port 0: the socket is connected
    std::string data;
  };

  void run(const std::string& ns, int listen_port, int target_port,
           std::promise<std::string>& ready) {
    // setns moves only this thread; sockets keep the namespace they were made in.
    const int nsfd = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0 || setns(nsfd, CLONE_NEWNET) != 0) {
      ready.set_value("cannot enter " + ns + ": " + std::strerror(errno));
      if (nsfd >= 0) close(nsfd);
      return;
    }
    close(nsfd);
    const int outer = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(listen_port));
    inet_pton(AF_INET, kOriginAddress, &a.sin_addr);
    if (bind(outer, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ready.set_value(std::string("bind: ") + std::strerror(errno));
      close(outer);
      return;
    }
    sockaddr_in target{};
    target.sin_family = AF_INET;
    target.sin_port = htons(static_cast<std::uint16_t>(target_port));
    target.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ready.set_value("");

    std::map<std::pair<std::uint32_t, std::uint16_t>, int> inner_of;  // peer -> socket
    std::map<int, sockaddr_in> peer_of;                               // socket -> peer
    std::deque<Pending> queue;  // constant delay: due times stay in order
    std::mt19937 rng(11);
    std::bernoulli_distribution lose(kLoss);
    char buf[2048];
    while (!stop_.load(std::memory_order_relaxed)) {
      const auto now = std::chrono::steady_clock::now();
      while (!queue.empty() && queue.front().due <= now) {
        const Pending& p = queue.front();
        if (p.to.sin_port == 0)
          send(p.fd, p.data.data(), p.data.size(), MSG_DONTWAIT);
        else
          sendto(p.fd, p.data.data(), p.data.size(), MSG_DONTWAIT,
                 reinterpret_cast<const sockaddr*>(&p.to), sizeof p.to);
        queue.pop_front();
      }
      int wait_ms = 20;
      if (!queue.empty())
        wait_ms = static_cast<int>(std::clamp<long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(queue.front().due - now).count() +
                1,
            1, 20));
      std::vector<pollfd> fds{{outer, POLLIN, 0}};
      for (const auto& [fd, peer] : peer_of) fds.push_back({fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), wait_ms) <= 0) continue;
      const auto due = std::chrono::steady_clock::now() + kDelay;
      for (const auto& pfd : fds) {
        if (!(pfd.revents & POLLIN)) continue;
        sockaddr_in from{};
        socklen_t len = sizeof from;
        const ssize_t n = recvfrom(pfd.fd, buf, sizeof buf, MSG_DONTWAIT,
                                   reinterpret_cast<sockaddr*>(&from), &len);
        if (n < 0) continue;  // e.g. ECONNREFUSED while the origin restarts
        if (pfd.fd == outer) {
          const auto id = std::make_pair(from.sin_addr.s_addr, from.sin_port);
          auto it = inner_of.find(id);
          if (it == inner_of.end()) {
            const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            connect(fd, reinterpret_cast<const sockaddr*>(&target), sizeof target);
            it = inner_of.emplace(id, fd).first;
            peer_of[fd] = from;
          }
          if (lose(rng)) {
            to_origin_drop_.fetch_add(1, std::memory_order_relaxed);
            continue;
          }
          to_origin_fwd_.fetch_add(1, std::memory_order_relaxed);
          queue.push_back({due, it->second, sockaddr_in{}, std::string(buf, n)});
        } else {
          if (lose(rng)) {
            to_edge_drop_.fetch_add(1, std::memory_order_relaxed);
            continue;
          }
          to_edge_fwd_.fetch_add(1, std::memory_order_relaxed);
          queue.push_back({due, outer, peer_of[pfd.fd], std::string(buf, n)});
        }
      }
    }
    for (const auto& [fd, peer] : peer_of) close(fd);
    close(outer);
  }

  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> to_origin_fwd_{0}, to_origin_drop_{0}, to_edge_fwd_{0},
      to_edge_drop_{0};
};

std::unique_ptr<Service> run_in(const std::string& ns, const std::string& conf,
                                const std::string& json = "") {
  std::vector<std::string> args{ip_bin(), "netns", "exec", ns, arcly_bin(), "run", conf};
  if (!json.empty()) {
    args.push_back("--stats-json");
    args.push_back(json);
  }
  return std::make_unique<Service>(args);
}

struct StreamStats {
  bool found = false;
  long frames = 0, keyframes = 0;
  int lines = 0;  // stats objects written so far
};

// The edge's newest stats object for live/cam.
StreamStats stream_stats(const std::string& json) {
  StreamStats s;
  const std::string text = read_all(json);
  std::istringstream in(text);
  std::string line, last;
  while (std::getline(in, line)) {
    if (line.empty() || line.back() != '}') continue;  // a line still being written
    ++s.lines;
    last = line;
  }
  std::smatch m;
  if (std::regex_search(
          last, m,
          std::regex("\"key\":\"live/cam\"[^}]*\"frames\":([0-9]+)[^}]*\"keyframes\":([0-9]+)"))) {
    s.found = true;
    s.frames = std::stol(m[1]);
    s.keyframes = std::stol(m[2]);
  }
  return s;
}

// Waits (bounded) for a stats object that satisfies `pred`.
template <typename Pred>
StreamStats wait_stats(const std::string& json, Pred pred, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  StreamStats s;
  while (std::chrono::steady_clock::now() < deadline) {
    s = stream_stats(json);
    if (pred(s)) return s;
    std::this_thread::sleep_for(100ms);  // polling a file for an event, not a timing assertion
  }
  return s;
}

// Decoded video frames in the viewer's framecrc output so far.
int viewer_frames(const std::string& crc) {
  std::istringstream in(read_all(crc));
  int n = 0;
  for (std::string line; std::getline(in, line);)
    if (line.rfind("0,", 0) == 0 && line.back() != ',') ++n;
  return n;
}

int wait_viewer_frames(const std::string& crc, int at_least, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  int n = 0;
  while (std::chrono::steady_clock::now() < deadline && (n = viewer_frames(crc)) < at_least)
    std::this_thread::sleep_for(100ms);  // polling a file for an event
  return n;
}

}  // namespace

START_TEST(edge_serves_instant_start_survives_an_origin_restart_and_records) {
  const std::string dir = scratch("cascade");
  std::unique_ptr<LossyRelay> relay;
  const std::string origin_listen =
      g_netem ? std::string(kOriginAddress) + ":" + std::to_string(kOriginSrtPort)
              : "127.0.0.1:" + std::to_string(kOriginSrtPort);  // reachable only through the relay
  const int edge_connects_to = g_netem ? kOriginSrtPort : kRelayPort;
  if (g_netem) {
    std::printf("cascade: link impaired by tc netem on both veth ends (loss 2%%, delay 40 ms)\n");
    std::fflush(stdout);
  } else {
    relay = std::make_unique<LossyRelay>(g_origin_ns, kRelayPort, kOriginSrtPort);
    std::printf(
        "cascade: this kernel has no sch_netem: link impaired by the test's UDP relay on the "
        "origin's side of the veth (loss 2%%, delay 40 ms, each way)\n");
  }
  std::fflush(stdout);

  // The origin: a camera with a 10 s GOP, served on its SRT port.
  fs::create_directories(dir + "/origin");
  fs::create_directories(dir + "/edge");
  const std::string oconf =
      write_config(dir + "/origin",
                   "[pipeline cam]\nkey=live/cam\nsource=videotestsrc is-live=true ! "
                   "video/x-raw,width=320,height=240,framerate=30/1 ! x264enc tune=zerolatency "
                   "speed-preset=ultrafast key-int-max=300 ! h264parse config-interval=-1  "
                   "audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=1 ! avenc_aac\n"
                   "[srt-server]\nlisten=" +
                       origin_listen + "\npublish=no\nlatency=400\n");
  // The edge: pulls live/cam from the origin, serves it over RTSP, records it.
  const std::string json = dir + "/edge/stats.json";
  const std::string econf = write_config(
      dir + "/edge", "[srt origin]\nconnect=srt://" + std::string(kOriginAddress) + ":" +
                         std::to_string(edge_connects_to) +
                         "\nstreamid=#!::r=live/cam,m=request,start=keyframe\nkey=live/cam\n"
                         "latency=400\ngrace=15\nbackoff-max=2\n"
                         "[rtsp-server]\nlisten=:" +
                         std::to_string(kEdgeRtspPort) +
                         "\nanonymous-read=live/*\n"
                         "[record cam]\nkey=live/cam\ndir=" +
                         dir + "/edge/rec\nsegment=60\nformat=mp4\n");

  auto origin = run_in(g_origin_ns, oconf);
  ck_assert_msg(origin->wait_for("[pipeline cam] connected", 30s), "%s", origin->text().c_str());
  ck_assert_msg(origin->wait_for("[srt-server] serving on", 30s), "%s", origin->text().c_str());
  auto edge_ptr = run_in(g_edge_ns, econf, json);
  Service& edge = *edge_ptr;
  ck_assert_msg(edge.wait_for("[srt origin] connected: publishing live/cam", 30s), "edge:\n%s",
                edge.text().c_str());
  ck_assert_msg(edge.wait_for("[rtsp-server] serving every stream", 30s), "%s",
                edge.text().c_str());

  // Instant start. Wait until the edge has published at least 60 frames (2 s after
  // the keyframe it started with), so its next keyframe is still ~8 s away; then the
  // edge's keyframe count must not move while the viewer gets its picture.
  const StreamStats before = wait_stats(
      json, [](const StreamStats& s) { return s.found && s.frames >= 60; }, 30s);
  ck_assert_msg(before.found && before.frames >= 60, "edge stream: %ld frames\n%s", before.frames,
                edge.text().c_str());
  const std::string url = "rtsp://127.0.0.1:" + std::to_string(kEdgeRtspPort) + "/live/cam";
  std::string frames;
  const int rc =
      sh(in_ns(g_edge_ns,
               "timeout 30 ffprobe -v error -rtsp_transport tcp -select_streams v "
               "-show_entries frame=key_frame,pict_type -read_intervals %+#12 -of csv '" +
                   url + "'"),
         &frames);
  std::istringstream frame_lines(frames);
  std::vector<std::string> decoded;
  for (std::string line; std::getline(frame_lines, line);)
    if (line.rfind("frame,", 0) == 0) decoded.push_back(line);
  ck_assert_msg(rc == 0 && !decoded.empty(),
                "the viewer decoded nothing from its first packets "
                "(rc %d):\n%s\nedge:\n%s",
                rc, frames.c_str(), edge.text().c_str());
  ck_assert_msg(decoded.front().rfind("frame,1,I", 0) == 0,
                "the viewer's first picture is not the keyframe: %s", frames.c_str());
  // The edge still had seen only that one keyframe after the viewer's picture: it
  // came from the edge's cache, not from the next keyframe.
  const int lines_after_probe = stream_stats(json).lines;
  const StreamStats after = wait_stats(
      json, [&](const StreamStats& s) { return s.lines >= lines_after_probe + 2; }, 10s);
  ck_assert_msg(after.keyframes == before.keyframes,
                "a keyframe reached the edge while the viewer started (%ld, then %ld): "
                "inconclusive",
                before.keyframes, after.keyframes);
  std::printf(
      "cascade: the viewer decoded %zu pictures from its first 12 packets, the first the "
      "cached keyframe (the edge had %ld frames, no new keyframe meanwhile)\n",
      decoded.size(), before.frames);
  std::fflush(stdout);

  // A viewer that stays: decodes every frame (framecrc, flushed per frame).
  const std::string crc = dir + "/viewer.crc";
  Process viewer({ip_bin(), "netns", "exec", g_edge_ns, "ffmpeg", "-nostdin", "-v", "error",
                  "-rtsp_transport", "tcp", "-i", url, "-map", "0:v", "-flush_packets", "1", "-f",
                  "framecrc", crc});
  ck_assert_msg(viewer.running(), "ffmpeg did not start");
  int seen = wait_viewer_frames(crc, 30, 30s);
  ck_assert_msg(seen >= 30, "the viewer decoded %d frames\n%s", seen, edge.text().c_str());

  // The origin restarts (stop, start again) within the edge's 15 s grace.
  const auto went_down = std::chrono::steady_clock::now();
  origin->signal(SIGTERM);
  const int ostatus = origin->wait();
  ck_assert_msg(WIFEXITED(ostatus) && WEXITSTATUS(ostatus) == 0, "origin: status %d\n%s", ostatus,
                origin->text().c_str());
  origin.reset();
  const int before_restart = viewer_frames(crc);
  origin = run_in(g_origin_ns, oconf);
  ck_assert_msg(edge.wait_for("[srt origin] reconnected: publishing live/cam", 30s), "edge:\n%s",
                edge.text().c_str());
  // Grace keeps real time: the outage stays in the recording as one gap no longer
  // than the time from the origin's stop to the edge's reconnect.
  const double outage =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - went_down).count();
  const int at_reconnect = viewer_frames(crc);
  seen = wait_viewer_frames(crc, at_reconnect + 60, 30s);
  ck_assert_msg(seen >= at_reconnect + 60,
                "the edge's viewer stopped at %d frames after the origin came back (%d at the "
                "reconnect, %d before the restart)\nedge:\n%s",
                seen, at_reconnect, before_restart, edge.text().c_str());
  ck_assert_msg(count_text(edge.text(), "stopped reading") == 1,  // the first probe's teardown
                "the viewer was detached:\n%s", edge.text().c_str());
  std::printf("cascade: the viewer decoded %d frames before the origin restarted, %d in all\n",
              before_restart, seen);
  std::fflush(stdout);

  viewer.stop(SIGINT);
  edge.signal(SIGTERM);
  const int estatus = edge.wait();
  ck_assert_msg(WIFEXITED(estatus) && WEXITSTATUS(estatus) == 0, "edge: status %d\n%s", estatus,
                edge.text().c_str());
  origin->signal(SIGTERM);
  origin->wait();
  if (relay) {
    const auto up = relay->to_origin(), down = relay->to_edge();
    std::printf(
        "cascade: relay edge->origin %llu forwarded, %llu dropped; origin->edge %llu "
        "forwarded, %llu dropped\n",
        static_cast<unsigned long long>(up.forwarded), static_cast<unsigned long long>(up.dropped),
        static_cast<unsigned long long>(down.forwarded),
        static_cast<unsigned long long>(down.dropped));
    std::fflush(stdout);
    std::fflush(stdout);
    ck_assert_msg(down.dropped > 0 && up.dropped > 0, "the relay dropped nothing");
    relay.reset();
  }

  // The edge's recording: one file across the restart, playable, no hole but the
  // outage's.
  const auto files = files_under(dir + "/edge/rec", ".mp4");
  ck_assert_msg(files.size() == 1, "%zu recordings (one expected across the restart)\n%s",
                files.size(), edge.text().c_str());
  const double discovered = discover(files[0]);
  const Probe probe = ffprobe(files[0]);
  ck_assert_msg(discovered > 0 && probe.ok && probe.video && probe.audio && probe.first_is_key,
                "%s: discoverer %.2f s, ffprobe ok %d video %d audio %d first key %d",
                files[0].c_str(), discovered, probe.ok, probe.video, probe.audio,
                probe.first_is_key);
  // One stream's packet times, sorted (presentation order), and its keyframes.
  const auto packet_times = [&](const char* stream, int* keys) {
    std::string packets;
    ck_assert_int_eq(sh(std::string("ffprobe -v error -select_streams ") + stream +
                            " -show_entries packet=pts_time,flags -of csv=p=0 '" + files[0] + "'",
                        &packets),
                     0);
    std::vector<double> times;
    std::istringstream pl(packets);
    for (std::string line; std::getline(pl, line);) {
      const auto comma = line.find(',');
      if (comma == std::string::npos || line.compare(0, 3, "N/A") == 0) continue;
      times.push_back(std::stod(line.substr(0, comma)));
      if (keys && line.find('K', comma) != std::string::npos) ++*keys;
    }
    std::sort(times.begin(), times.end());  // x264 zerolatency has no B-frames
    return times;
  };
  const auto gaps = [](const std::vector<double>& times, double* max_gap) {
    int holes = 0;
    *max_gap = 0;
    for (size_t i = 1; i < times.size(); ++i) {
      *max_gap = std::max(*max_gap, times[i] - times[i - 1]);
      if (times[i] - times[i - 1] >= 0.5) ++holes;
    }
    return holes;
  };
  int keys = 0;
  const std::vector<double> pts = packet_times("v", &keys);
  const std::vector<double> apts = packet_times("a", nullptr);
  double max_gap = 0, audio_gap = 0;
  const int holes = gaps(pts, &max_gap);
  const int audio_holes = gaps(apts, &audio_gap);
  ck_assert_msg(pts.size() > 1 && apts.size() > 1, "%zu video and %zu audio packets", pts.size(),
                apts.size());
  const double vspan = pts.back() - pts.front(), aspan = apts.back() - apts.front();
  std::printf("cascade: audio %zu packets over %.2f s (video %.2f s), largest gap %.3f s\n",
              apts.size(), aspan, vspan, audio_gap);
  std::fflush(stdout);
  // Both streams run through the whole recording (the stall cut both at ~2.5 s).
  ck_assert_msg(aspan > vspan - 1.0 && std::abs(apts.front() - pts.front()) < 1.5,
                "the audio covers %.2f s from %.2f, the video %.2f s from %.2f", aspan,
                apts.front(), vspan, pts.front());
  ck_assert_msg(audio_holes <= 1 && audio_gap < outage + 0.5,
                "%d hole(s) in the recording's audio, the largest %.3f s, for an outage of %.3f s",
                audio_holes, audio_gap, outage);
  std::printf(
      "cascade: recording %s: %.2f s, %zu video frames, %d keyframes, largest gap %.3f s "
      "(origin stop to edge reconnect %.3f s)\n",
      files[0].c_str(), discovered, pts.size(), keys, max_gap, outage);
  std::fflush(stdout);
  ck_assert_msg(keys >= 2, "the recording holds %d keyframe(s): it does not span the restart\n%s",
                keys, edge.text().c_str());
  ck_assert_msg(pts.size() >= static_cast<size_t>(seen),
                "the recording holds %zu video frames, the viewer decoded %d", pts.size(), seen);
  ck_assert_msg(holes <= 1 && max_gap < outage + 0.5,
                "%d hole(s) in the recording's video, the largest %.3f s, for an outage of %.3f s",
                holes, max_gap, outage);
  fs::remove_all(dir);
}
END_TEST

int main(int argc, char** argv) {
  const std::string id = std::to_string(getpid());
  g_origin_ns = "arcly-origin-" + id;
  g_edge_ns = "arcly-edge-" + id;
  g_origin_veth = "aco" + id;  // interface names: at most 15 characters
  g_edge_veth = "ace" + id;
  if (geteuid() != 0) {
    std::printf("SKIP cascade: network namespaces need root (ip netns add)\n");
    return 77;
  }
  const std::string why = make_namespaces();
  if (!why.empty()) {
    remove_namespaces();
    std::printf("SKIP cascade: network namespaces are unavailable here: %s\n", why.c_str());
    return 77;
  }
  gst_init(&argc, &argv);
  gst_pb_utils_init();
  const int rc = testing::run_suite(
      "cascade", {edge_serves_instant_start_survives_an_origin_restart_and_records}, 240);
  remove_namespaces();
  return rc;
}
