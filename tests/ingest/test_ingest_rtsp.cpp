// The RTSP worker against a real gst-rtsp-server camera (a separate process that
// the tests kill and restart, and one inside the test process).
#include <gst/rtsp-server/rtsp-server.h>

#include <atomic>
#include <mutex>

#include "buffer_frame.hpp"
#include "ingest_helpers.hpp"
#include "rtsp_worker.hpp"

using namespace std::chrono_literals;
using namespace arcly::ingest;
using namespace ingest_testing;
using arcly::StreamKey;

namespace {

WorkerSettings fast_settings(const char* key) {
  WorkerSettings s;
  s.name = std::string("rtsp-test-") + key;
  s.key = StreamKey::parse(key);
  s.timeout = 2000ms;
  s.backoff_initial = 200ms;
  s.backoff_max = 1000ms;
  s.grace = 15000ms;
  return s;
}

struct Running {
  std::shared_ptr<arcly::Engine> engine = arcly::Engine::builder().accept_any_application().build();
  std::shared_ptr<RtspWorker> worker;
  std::jthread thread;
  Running(WorkerSettings s, RtspSettings r) : worker(std::make_shared<RtspWorker>(s, r)) {
    thread = std::jthread(
        [this](std::stop_token stop) { worker->serve(arcly::IngestContext(engine), stop); });
  }
  // Stops the worker and returns how long serve() took to return.
  std::chrono::milliseconds stop() {
    const auto t0 = std::chrono::steady_clock::now();
    thread.request_stop();
    thread.join();
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                 t0);
  }
};

// Captures every arcly* debug line, to prove no credential is ever logged.
std::mutex log_mutex;
std::string captured_log;
void capture_log(GstDebugCategory* cat, GstDebugLevel, const gchar*, const gchar*, gint, GObject*,
                 GstDebugMessage* msg, gpointer) {
  const char* name = gst_debug_category_get_name(cat);
  if (std::strncmp(name, "arcly", 5) != 0) return;
  std::lock_guard lock(log_mutex);
  captured_log += gst_debug_message_get(msg);
  captured_log += '\n';
}

}  // namespace

START_TEST(frames_reach_a_subscriber_over_tcp_and_udp_with_audio) {
  const int port = free_port();
  auto server = rtsp_server(port, {"--audio"});
  for (const char* transport : {"tcp", "udp"}) {
    RtspSettings r{"rtsp://127.0.0.1:" + std::to_string(port) + "/cam"};
    r.transport = transport;
    Running run(fast_settings("live/cam"), r);
    auto stream = run.engine->wait_for_stream(StreamKey::parse("live/cam"), 20000ms);
    auto sub = stream->subscribe();
    auto seen = read_frames(sub, 20, 10);
    ck_assert_msg(seen.video >= 20 && seen.audio >= 10, "%s: %d video, %d audio frames", transport,
                  seen.video, seen.audio);
    ck_assert_int_ge(seen.configs, 2);  // one per track, first
    seen.assert_engine_time();
    auto stats = run.worker->stats();
    ck_assert(stats.state == WorkerState::Live);
    ck_assert_text(stats.key->str(), "live/cam");
    const auto took = run.stop();
    std::printf("rtsp %s: shutdown while live took %lld ms\n", transport,
                static_cast<long long>(took.count()));
    ck_assert(run.worker->stats().state == WorkerState::Stopped);
    ck_assert(!run.engine->find_stream(StreamKey::parse("live/cam")));
  }
}
END_TEST

// The camera's NTP capture time (from its RTCP sender reports) travels with the
// frames as a `timestamp/x-ntp` reference timestamp meta.
START_TEST(the_cameras_ntp_capture_time_travels_with_the_frames) {
  const int port = free_port();
  auto server = rtsp_server(port);
  RtspSettings r{"rtsp://127.0.0.1:" + std::to_string(port) + "/cam"};
  Running run(fast_settings("live/ntp"), r);
  auto stream = run.engine->wait_for_stream(StreamKey::parse("live/ntp"), 20000ms);
  auto sub = stream->subscribe();
  std::int64_t capture = -1;  // Unix ns
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (capture < 0) {
    auto got = sub.recv(deadline);
    if (got.status == arcly::RecvStatus::Lagged) continue;
    ck_assert_msg(got.status == arcly::RecvStatus::Frame, "no frame with the camera's NTP time");
    if (got.frame->is_config()) continue;
    GstBuffer* carrier = gst_buffer_new();
    arcly::gst::copy_carried_metas(*got.frame, carrier);
    capture = ntp_meta_unix_ns(carrier);
    gst_buffer_unref(carrier);
  }
  // The test camera's clock is this machine's.
  const std::int64_t now = g_get_real_time() * GST_USECOND;
  const auto apart = static_cast<double>(std::abs(capture - now)) / 1e9;
  ck_assert_msg(apart < 10.0, "the frame's NTP time is %.3f s from now", apart);
}
END_TEST

START_TEST(h265_with_opus_and_h264_with_g711_cameras) {
  struct Case {
    std::vector<std::string> args;
    arcly::CodecId video, audio;
  } cases[] = {{{"--h265", "--audio-codec", "opus"}, arcly::CodecId::H265, arcly::CodecId::Opus},
               {{"--audio-codec", "pcma"}, arcly::CodecId::H264, arcly::CodecId::PCMA}};
  for (const auto& c : cases) {
    const int port = free_port();
    auto server = rtsp_server(port, c.args);
    Running run(fast_settings("live/codec"), {"rtsp://127.0.0.1:" + std::to_string(port) + "/cam"});
    auto stream = run.engine->wait_for_stream(StreamKey::parse("live/codec"), 20000ms);
    auto sub = stream->subscribe();
    ck_assert_int_ge(read_frames(sub, 10, 10).video, 10);
    bool video = false, audio = false;
    for (const auto& cfg : stream->cached_configs()) {
      video = video || cfg->codec == c.video;
      audio = audio || cfg->codec == c.audio;
    }
    ck_assert_msg(video && audio, "codecs %s/%s not both seen",
                  std::string(arcly::codec_name(c.video)).c_str(),
                  std::string(arcly::codec_name(c.audio)).c_str());
    run.stop();
  }
}
END_TEST

START_TEST(a_camera_reboot_inside_grace_keeps_the_stream_and_flags_discont) {
  const int port = free_port();
  auto server = rtsp_server(port);
  RtspSettings r{"rtsp://127.0.0.1:" + std::to_string(port) + "/cam"};
  r.transport = "tcp";
  Running run(fast_settings("live/door"), r);
  auto stream = run.engine->wait_for_stream(StreamKey::parse("live/door"), 20000ms);
  auto sub = stream->subscribe({arcly::StartAt::Now, {}, true});
  ck_assert_int_ge(read_frames(sub, 15).video, 15);

  server.stop();  // the camera reboots
  ck_assert(run.worker->wait_for(
      [](const WorkerStats& s) { return s.state == WorkerState::Retrying && s.in_grace; }, 20s));
  server = rtsp_server(port);  // ... and comes back on the same port

  auto seen = read_frames(sub, 15);
  ck_assert_msg(!seen.closed, "the stream ended during grace");
  ck_assert_int_ge(seen.video, 15);
  ck_assert_int_ge(seen.disconts, 1);
  ck_assert(run.engine->find_stream(StreamKey::parse("live/door")) == stream);  // same publish
  ck_assert_uint_ge(run.worker->stats().reconnects, 1);
  run.stop();
  ck_assert(read_frames(sub, 1000, 0, 5s).closed);  // stopping the worker ends the stream
}
END_TEST

// The camera is off for a measured while inside grace. The frames after the gap
// are stamped where real time puts them: the gap in publisher timestamps between
// the last frame before and the first after (DISCONT) is the outage, not erased.
// Bounds: the last frame before was captured at or before the kill (T_kill), the
// first after at or after the restart (T_spawn) and before the worker was seen
// live again (T_live), give or take kJitter: one 33 ms frame interval plus the
// jitterbuffer's skew estimate and TCP/scheduling delay of the new session's first
// packets on 2 loaded cores (ASan); the old behaviour left a gap of ~34 ms.
START_TEST(a_camera_reboot_inside_grace_leaves_the_outage_in_the_timeline) {
  using Clock = std::chrono::steady_clock;
  constexpr double kJitter = 0.25;
  const int port = free_port();
  auto server = rtsp_server(port);
  RtspSettings r{"rtsp://127.0.0.1:" + std::to_string(port) + "/cam"};
  r.transport = "tcp";
  Running run(fast_settings("live/yard"), r);
  auto stream = run.engine->wait_for_stream(StreamKey::parse("live/yard"), 20000ms);
  auto sub = stream->subscribe({arcly::StartAt::Now, {}, true});
  ck_assert_int_ge(read_frames(sub, 15).video, 15);
  // The last frame before the kill: one is received now, so that the kill cannot
  // come before the next frame is published (then none would be seen before it).
  std::int64_t last_before = -1, first_after = -1;
  while (last_before < 0) {
    auto got = sub.recv(Clock::now() + 10s);
    ck_assert_msg(got.status == arcly::RecvStatus::Frame, "no frame before the kill");
    if (!got.frame->is_config() && got.frame->kind == arcly::MediaKind::Video)
      last_before = got.frame->pts;
  }

  const auto t_kill = Clock::now();
  server.stop();
  const auto attempts = run.worker->stats().attempts;
  // Stay off for a few refused attempts (a reboot of about a second or two).
  ck_assert(run.worker->wait_for(
      [&](const WorkerStats& s) { return s.in_grace && s.attempts >= attempts + 4; }, 30s));
  const auto t_spawn = Clock::now();
  server = rtsp_server(port);
  ck_assert(run.worker->wait_for([](const WorkerStats& s) { return s.reconnects >= 1; }, 30s));
  const auto t_live = Clock::now();

  // Everything published since: the frames before the gap, then the DISCONT one.
  const auto deadline = Clock::now() + 20s;
  while (first_after < 0 && Clock::now() < deadline) {
    auto got = sub.recv(deadline);
    ck_assert_msg(got.status != arcly::RecvStatus::Closed, "the stream ended during grace");
    if (got.status != arcly::RecvStatus::Frame) continue;
    const auto& f = *got.frame;
    if (f.is_config() || f.kind != arcly::MediaKind::Video) continue;
    if (f.is_discont())
      first_after = f.pts;
    else
      last_before = f.pts;
  }
  ck_assert_int_ge(last_before, 0);
  ck_assert_int_ge(first_after, 0);
  auto secs = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  const double gap = static_cast<double>(first_after - last_before) / 1e9;
  const double off_at_least = secs(t_spawn - t_kill), off_at_most = secs(t_live - t_kill);
  std::fprintf(stderr, "reboot: gap in the timeline %.3f s; the camera was off %.3f..%.3f s\n", gap,
               off_at_least, off_at_most);
  ck_assert_msg(gap >= off_at_least - kJitter && gap <= off_at_most + kJitter,
                "gap in the timeline %.3f s; the camera was off %.3f..%.3f s", gap, off_at_least,
                off_at_most);
  ck_assert(run.engine->find_stream(StreamKey::parse("live/yard")) == stream);  // same publish
  run.stop();
}
END_TEST

START_TEST(past_grace_the_stream_ends_and_a_new_one_starts) {
  const int port = free_port();
  auto server = rtsp_server(port);
  auto settings = fast_settings("live/gate");
  settings.grace = 300ms;
  Running run(settings, {"rtsp://127.0.0.1:" + std::to_string(port) + "/cam"});
  auto first = run.engine->wait_for_stream(StreamKey::parse("live/gate"), 20000ms);
  auto sub = first->subscribe();
  ck_assert_int_ge(read_frames(sub, 5).video, 5);
  server.stop();
  ck_assert(read_frames(sub, 100000, 0, 30s).closed);  // grace ran out: subscribers see the end
  server = rtsp_server(port);
  ck_assert(
      run.worker->wait_for([](const WorkerStats& s) { return s.state == WorkerState::Live; }, 30s));
  auto second = run.engine->get_stream(StreamKey::parse("live/gate"));
  ck_assert(second != first);
  run.stop();
}
END_TEST

START_TEST(wrong_credentials_are_reported_and_retried_with_backoff_never_leaked) {
  gst_debug_add_log_function(capture_log, nullptr, nullptr);
  gst_debug_set_threshold_for_name("arcly*", GST_LEVEL_LOG);
  const int port = free_port();
  auto server = rtsp_server(port, {"--user", "admin", "--password", "right-pw"});
  {
    auto settings = fast_settings("live/locked");
    settings.backoff_max = 2000ms;
    Running run(settings, {"rtsp://admin:Wr0ngPa55@127.0.0.1:" + std::to_string(port) + "/cam"});
    ck_assert(run.worker->wait_for(
        [](const WorkerStats& s) { return s.attempts >= 3 && s.state == WorkerState::Retrying; },
        60s));
    auto stats = run.worker->stats();
    ck_assert_msg(stats.last_failure.kind == FailureKind::Auth, "failure: %s (%s)",
                  std::string(failure_name(stats.last_failure.kind)).c_str(),
                  stats.last_failure.message.c_str());
    // Backoff, not a hot loop: the third retry waits about 4x the first.
    ck_assert_int_ge(stats.retry_in.count(), 200 * 4 * 8 / 10);
    ck_assert(stats.last_failure.message.find("Wr0ngPa55") == std::string::npos);
    ck_assert(run.worker->display_url().find("Wr0ngPa55") == std::string::npos);
    ck_assert(!run.engine->find_stream(StreamKey::parse("live/locked")));
    run.stop();
  }
  {
    RtspSettings right{"rtsp://127.0.0.1:" + std::to_string(port) + "/cam"};
    right.user = "admin";
    right.password = "right-pw";
    Running run(fast_settings("live/locked"), right);
    auto stream = run.engine->wait_for_stream(StreamKey::parse("live/locked"), 20000ms);
    auto sub = stream->subscribe();
    ck_assert_int_ge(read_frames(sub, 5).video, 5);
    run.stop();
  }
  gst_debug_remove_log_function(capture_log);
  std::lock_guard lock(log_mutex);
  ck_assert_msg(!captured_log.empty(), "nothing was logged");
  ck_assert(captured_log.find("Wr0ngPa55") == std::string::npos);
  ck_assert(captured_log.find("right-pw") == std::string::npos);
}
END_TEST

START_TEST(shutdown_is_prompt_in_every_state) {
  // connecting (nothing listens), retrying (between attempts), live.
  const int port = free_port();
  {
    auto s = fast_settings("live/nobody");
    s.backoff_initial = 60000ms;
    Running run(s, {"rtsp://127.0.0.1:" + std::to_string(port) + "/cam"});
    ck_assert(run.worker->wait_for(
        [](const WorkerStats& st) { return st.state == WorkerState::Retrying; }, 20s));
    const auto took = run.stop();
    std::printf("rtsp: shutdown while retrying took %lld ms\n",
                static_cast<long long>(took.count()));
    ck_assert_int_lt(took.count(), 5000);  // a hang guard; the figure is printed above
  }
  {
    // A listener that accepts TCP but never answers: rtspsrc stays connecting.
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    ck_assert_int_eq(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    listen(fd, 4);
    Running run(fast_settings("live/mute"), {"rtsp://127.0.0.1:" + std::to_string(port) + "/cam"});
    // rtspsrc has connected and waits for an answer to its first request.
    const int peer = accept(fd, nullptr, nullptr);
    ck_assert_int_ge(peer, 0);
    ck_assert(run.worker->stats().state == WorkerState::Connecting);
    const auto took = run.stop();
    std::printf("rtsp: shutdown while connecting took %lld ms\n",
                static_cast<long long>(took.count()));
    ck_assert_int_lt(took.count(), 5000);
    close(peer);
    close(fd);
  }
}
END_TEST

START_TEST(an_in_process_server_and_several_cameras_per_engine) {
  // gst-rtsp-server inside this process, two mounts, two workers on one engine.
  GMainContext* context = g_main_context_new();
  GMainLoop* loop = g_main_loop_new(context, FALSE);
  GstRTSPServer* server = gst_rtsp_server_new();
  const int port = free_port();
  gst_rtsp_server_set_address(server, "127.0.0.1");
  gst_rtsp_server_set_service(server, std::to_string(port).c_str());
  GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(server);
  for (const char* path : {"/a", "/b"}) {
    GstRTSPMediaFactory* f = gst_rtsp_media_factory_new();
    gst_rtsp_media_factory_set_launch(
        f,
        "( videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! "
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! rtph264pay name=pay0 )");
    gst_rtsp_media_factory_set_shared(f, TRUE);
    gst_rtsp_mount_points_add_factory(mounts, path, f);
  }
  g_object_unref(mounts);
  const guint source = gst_rtsp_server_attach(server, context);
  ck_assert_uint_ne(source, 0);
  std::jthread main_loop([loop] { g_main_loop_run(loop); });
  {
    auto engine = arcly::Engine::builder().accept_any_application().build();
    std::vector<std::shared_ptr<arcly::InboundProtocol>> workers;
    for (const char* cam : {"a", "b"}) {
      workers.push_back(std::make_shared<RtspWorker>(
          fast_settings((std::string("site/") + cam).c_str()),
          RtspSettings{"rtsp://127.0.0.1:" + std::to_string(port) + "/" + cam}));
    }
    std::stop_source stop;
    std::jthread serve([&] { engine->serve(workers, stop.get_token()); });
    for (const char* key : {"site/a", "site/b"}) {
      auto stream = engine->wait_for_stream(StreamKey::parse(key), 20000ms);
      auto sub = stream->subscribe();
      ck_assert_int_ge(read_frames(sub, 10).video, 10);
    }
    stop.request_stop();
    serve.join();
    ck_assert(engine->streams().empty());
  }
  GSource* s = g_main_context_find_source_by_id(context, source);
  if (s) g_source_destroy(s);
  g_main_loop_quit(loop);
  main_loop.join();
  g_object_unref(server);
  g_main_loop_unref(loop);
  g_main_context_unref(context);
}
END_TEST

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  return testing::run_suite(
      "ingest-rtsp",
      {frames_reach_a_subscriber_over_tcp_and_udp_with_audio,
       the_cameras_ntp_capture_time_travels_with_the_frames,
       h265_with_opus_and_h264_with_g711_cameras,
       a_camera_reboot_inside_grace_keeps_the_stream_and_flags_discont,
       a_camera_reboot_inside_grace_leaves_the_outage_in_the_timeline,
       past_grace_the_stream_ends_and_a_new_one_starts,
       wrong_credentials_are_reported_and_retried_with_backoff_never_leaked,
       shutdown_is_prompt_in_every_state, an_in_process_server_and_several_cameras_per_engine},
      300);
}
