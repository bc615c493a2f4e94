// The SRT worker against real peers: srtsink callers in this process, ffmpeg and
// srt-live-transmit as external callers, and an srtsink listener for caller mode.
#include <fstream>
#include <random>

#include "ingest_helpers.hpp"
#include "srt_worker.hpp"

using namespace std::chrono_literals;
using namespace arcly::ingest;
using namespace ingest_testing;
using arcly::StreamKey;

namespace {

struct Listener {
  std::shared_ptr<arcly::Engine> engine = arcly::Engine::builder().accept_any_application().build();
  std::shared_ptr<SrtWorker> worker;
  std::jthread thread;
  int port;
  explicit Listener(SrtSettings s = {}, std::chrono::milliseconds timeout = 2000ms)
      : port(free_port(SOCK_DGRAM)) {
    WorkerSettings w;
    w.name = "srt-test";
    w.timeout = timeout;
    w.backoff_initial = 100ms;
    w.backoff_max = 500ms;
    w.grace = 1000ms;
    s.uri = "srt://:" + std::to_string(port);
    s.listener = true;
    worker = std::make_shared<SrtWorker>(w, s);
    thread = std::jthread(
        [this](std::stop_token stop) { worker->serve(arcly::IngestContext(engine), stop); });
    ck_assert(worker->wait_for(
        [](const WorkerStats& st) { return st.state == WorkerState::Listening; }, 10s));
  }
  ~Listener() {
    thread.request_stop();
    thread.join();
  }
};

// An in-process SRT caller: live H.264 + AAC in MPEG-TS, through srtsink.
class Caller {
 public:
  Caller(int port, const std::string& streamid, const std::string& passphrase = "") {
    std::string desc =
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! "
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! h264parse ! mux. "
        "audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=1 ! avenc_aac ! aacparse ! "
        "mux. mpegtsmux name=mux alignment=7 ! srtsink name=out uri=srt://127.0.0.1:" +
        std::to_string(port) + "?mode=caller wait-for-connection=false";
    GError* err = nullptr;
    pipeline_ = gst_parse_launch(desc.c_str(), &err);
    ck_assert_msg(pipeline_ != nullptr, "caller pipeline: %s", err ? err->message : "?");
    GstElement* out = gst_bin_get_by_name(GST_BIN(pipeline_), "out");
    g_object_set(out, "streamid", streamid.c_str(), nullptr);
    if (!passphrase.empty()) g_object_set(out, "passphrase", passphrase.c_str(), nullptr);
    gst_object_unref(out);
    gst_element_set_state(pipeline_, GST_STATE_PLAYING);
  }
  ~Caller() {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    gst_object_unref(pipeline_);
  }
  // True when the caller's pipeline reported an error (e.g. rejected) within `limit`.
  bool failed_within(std::chrono::milliseconds limit) {
    GstBus* bus = gst_element_get_bus(pipeline_);
    GstMessage* m = gst_bus_timed_pop_filtered(
        bus, static_cast<GstClockTime>(limit.count()) * GST_MSECOND, GST_MESSAGE_ERROR);
    gst_object_unref(bus);
    if (m) gst_message_unref(m);
    return m != nullptr;
  }

 private:
  GstElement* pipeline_ = nullptr;
};

std::string make_ts_file() {
  const std::string path = "/tmp/arcly-srt-test-" + std::to_string(getpid()) + ".ts";
  Process ff({"ffmpeg",  "-loglevel", "error", "-y",
              "-f",      "lavfi",     "-i",    "testsrc=size=320x240:rate=30",
              "-f",      "lavfi",     "-i",    "sine=frequency=440",
              "-t",      "6",         "-c:v",  "libx264",
              "-preset", "ultrafast", "-g",    "30",
              "-c:a",    "aac",       "-f",    "mpegts",
              path});
  ck_assert_int_eq(ff.wait(), 0);
  return path;
}

}  // namespace

START_TEST(an_srtsink_caller_publishes_audio_and_video_under_its_streamid) {
  Listener l;
  Caller c(l.port, "#!::r=live/srt1,m=publish,u=studio");
  auto stream = l.engine->wait_for_stream(StreamKey::parse("live/srt1"), 20000ms);
  auto sub = stream->subscribe();
  auto seen = read_frames(sub, 20, 10);
  ck_assert_msg(seen.video >= 20 && seen.audio >= 10, "%d video, %d audio", seen.video, seen.audio);
  ck_assert_int_ge(seen.configs, 2);
  seen.assert_engine_time();
}
END_TEST

START_TEST(callers_publish_one_after_another_on_one_port) {
  Listener l;
  {
    Caller first(l.port, "live/one");
    auto stream = l.engine->wait_for_stream(StreamKey::parse("live/one"), 20000ms);
    auto sub = stream->subscribe();
    ck_assert_int_ge(read_frames(sub, 10).video, 10);
  }  // the first caller hangs up
  // One caller per socket: the next one is accepted once srtsrc has seen this one go.
  ck_assert(l.worker->wait_for(
      [](const WorkerStats& st) { return st.state == WorkerState::Listening; }, 20s));
  Caller second(l.port, "#!::r=live/two,m=publish");
  auto stream = l.engine->wait_for_stream(StreamKey::parse("live/two"), 20000ms);
  auto sub = stream->subscribe();
  ck_assert_int_ge(read_frames(sub, 10).video, 10);
  ck_assert(!l.engine->find_stream(StreamKey::parse("live/one")));  // ended for its successor
}
END_TEST

START_TEST(ffmpeg_publishes_as_an_external_caller) {
  Listener l;
  Process ff({"ffmpeg",
              "-loglevel",
              "error",
              "-re",
              "-f",
              "lavfi",
              "-i",
              "testsrc=size=320x240:rate=30",
              "-f",
              "lavfi",
              "-i",
              "sine",
              "-t",
              "20",
              "-c:v",
              "libx264",
              "-preset",
              "ultrafast",
              "-g",
              "30",
              "-c:a",
              "aac",
              "-f",
              "mpegts",
              "-srt_streamid",
              "#!::r=live/ff,m=publish",
              "srt://127.0.0.1:" + std::to_string(l.port)});
  auto stream = l.engine->wait_for_stream(StreamKey::parse("live/ff"), 20000ms);
  auto sub = stream->subscribe();
  auto seen = read_frames(sub, 20, 10);
  ck_assert_msg(seen.video >= 20 && seen.audio >= 10, "%d video, %d audio", seen.video, seen.audio);
}
END_TEST

START_TEST(srt_live_transmit_publishes_a_recording) {
  const std::string ts = make_ts_file();
  Listener l;
  // srt-live-transmit reads stdin with poll(): feed it through a pipe, paced like live.
  Process slt({"sh", "-c",
               "ffmpeg -loglevel error -re -i " + ts +
                   " -c copy -f mpegts - | srt-live-transmit -q "
                   "file://con 'srt://127.0.0.1:" +
                   std::to_string(l.port) + "?streamid=live/slt'"});
  auto stream = l.engine->wait_for_stream(StreamKey::parse("live/slt"), 20000ms);
  auto sub = stream->subscribe({arcly::StartAt::Keyframe, {}, false});
  auto seen = read_frames(sub, 1, 0, 20s);
  ck_assert_int_ge(seen.video, 1);
  std::remove(ts.c_str());
}
END_TEST

START_TEST(bad_callers_are_rejected_before_any_media) {
  SrtSettings s;
  s.allow = {"live/*"};
  s.tokens = {{"live/vip", "sesame"}};
  Listener l(s);
  auto busy = l.engine->start_publish(StreamKey::parse("live/busy"));
  struct Case {
    const char* streamid;
    const char* reason;
  } cases[] = {{"#!::r=vod/x,m=publish", "not in the allowed keys"},
               {"#!::r=live/x,m=request", "m=request"},
               {"#!::r=live/vip,m=publish,token=wrong", "token"},
               {"#!::r=live/busy,m=publish", "already being published"},
               {"#!::r=live/../etc", "invalid stream key"}};
  std::uint64_t expected = 0;
  for (const auto& c : cases) {
    Caller caller(l.port, c.streamid);
    ++expected;
    ck_assert_msg(
        l.worker->wait_for([&](const WorkerStats& st) { return st.rejected >= expected; }, 15s),
        "%s was not rejected", c.streamid);
    const auto why = l.worker->stats().last_rejection;
    ck_assert_msg(why.find(c.reason) != std::string::npos, "%s: %s", c.streamid, why.c_str());
    ck_assert(caller.failed_within(10s));
  }
  ck_assert_uint_eq(l.engine->streams().size(), 1);  // only live/busy
  Caller vip(l.port, "#!::r=live/vip,m=publish,token=sesame");
  auto stream = l.engine->wait_for_stream(StreamKey::parse("live/vip"), 20000ms);
  auto sub = stream->subscribe();
  ck_assert_int_ge(read_frames(sub, 5).video, 5);
}
END_TEST

START_TEST(a_wrong_passphrase_is_refused_and_the_right_one_publishes) {
  SrtSettings s;
  s.passphrase = "correct horse battery";
  Listener l(s);
  {
    Caller wrong(l.port, "live/enc", "some other passphrase");
    ck_assert(wrong.failed_within(15s));
    ck_assert(!l.engine->find_stream(StreamKey::parse("live/enc")));
  }
  Caller right(l.port, "live/enc", "correct horse battery");
  auto stream = l.engine->wait_for_stream(StreamKey::parse("live/enc"), 20000ms);
  auto sub = stream->subscribe();
  ck_assert_int_ge(read_frames(sub, 5).video, 5);
}
END_TEST

START_TEST(a_caller_sending_garbage_does_not_hurt_the_next_one) {
  Listener l({}, 1500ms);
  const std::string junk_path = "/tmp/arcly-junk-" + std::to_string(getpid());
  {
    std::ofstream junk(junk_path);
    std::mt19937 rng(42);
    for (int i = 0; i < 2'000'000; ++i) junk.put(static_cast<char>(rng()));
  }
  {
    Process slt({"sh", "-c",
                 "cat " + junk_path + " | srt-live-transmit -q file://con 'srt://127.0.0.1:" +
                     std::to_string(l.port) + "?streamid=live/junk'"});
    // The worker notices (nothing decodable within the watchdog) and listens again.
    ck_assert(l.worker->wait_for([](const WorkerStats& st) { return st.attempts >= 2; }, 20s));
  }  // the junk caller is gone
  std::remove(junk_path.c_str());
  ck_assert(!l.engine->find_stream(StreamKey::parse("live/junk")));
  Caller good(l.port, "live/good");
  auto stream = l.engine->wait_for_stream(StreamKey::parse("live/good"), 20000ms);
  auto sub = stream->subscribe();
  ck_assert_int_ge(read_frames(sub, 10).video, 10);
}
END_TEST

START_TEST(caller_mode_pulls_from_a_remote_listener_and_reconnects) {
  // The remote listener is ffmpeg (its encoder starts with a keyframe for each caller).
  const int port = free_port(SOCK_DGRAM);
  auto remote = [&] {
    return Process({"ffmpeg", "-loglevel", "error", "-re", "-f", "lavfi", "-i",
                    "testsrc=size=320x240:rate=30", "-t", "60", "-c:v", "libx264", "-preset",
                    "ultrafast", "-g", "30", "-f", "mpegts",
                    "srt://127.0.0.1:" + std::to_string(port) + "?mode=listener"});
  };
  Process listener = remote();
  auto engine = arcly::Engine::builder().accept_any_application().build();
  WorkerSettings w;
  w.name = "srt-caller";
  w.key = StreamKey::parse("live/pulled");
  w.timeout = 2000ms;
  w.backoff_initial = 100ms;
  w.backoff_max = 500ms;
  w.grace = 20000ms;
  SrtSettings s;
  s.uri = "srt://127.0.0.1:" + std::to_string(port);
  s.listener = false;
  s.streamid = "#!::r=live/remote,m=request";
  auto worker = std::make_shared<SrtWorker>(w, s);
  std::jthread t([&](std::stop_token stop) { worker->serve(arcly::IngestContext(engine), stop); });
  auto stream = engine->wait_for_stream(StreamKey::parse("live/pulled"), 20000ms);
  auto sub = stream->subscribe({arcly::StartAt::Now, {}, true});
  ck_assert_int_ge(read_frames(sub, 10).video, 10);
  listener.stop();
  ck_assert(worker->wait_for(
      [](const WorkerStats& st) { return st.state == WorkerState::Retrying; }, 20s));
  listener = remote();
  auto seen = read_frames(sub, 10);
  ck_assert(!seen.closed);
  ck_assert_int_ge(seen.video, 10);
  ck_assert_int_ge(seen.disconts, 1);
  ck_assert(engine->find_stream(StreamKey::parse("live/pulled")) == stream);
  t.request_stop();
  t.join();
}
END_TEST

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  return testing::run_suite(
      "ingest-srt",
      {an_srtsink_caller_publishes_audio_and_video_under_its_streamid,
       callers_publish_one_after_another_on_one_port, ffmpeg_publishes_as_an_external_caller,
       srt_live_transmit_publishes_a_recording, bad_callers_are_rejected_before_any_media,
       a_wrong_passphrase_is_refused_and_the_right_one_publishes,
       a_caller_sending_garbage_does_not_hurt_the_next_one,
       caller_mode_pulls_from_a_remote_listener_and_reconnects},
      300);
}
