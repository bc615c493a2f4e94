// The RTMP worker against real publishers: ffmpeg (-f flv rtmp://...) and
// GStreamer's flvmux ! rtmp2sink; an arclysrc subscriber decodes the stream;
// tokens, a second publisher, kill -9, slow-loris and garbage peers.
#include <gst/app/gstappsink.h>
#include <gst/pbutils/pbutils.h>

#include <cstdlib>
#include <fstream>

#include "engine_registry.hpp"
#include "ingest_helpers.hpp"
#include "rtmp_worker.hpp"

using namespace std::chrono_literals;
using namespace arcly::ingest;
using namespace ingest_testing;
using arcly::StreamKey;

namespace {

struct Server {
  std::shared_ptr<arcly::Engine> engine = arcly::Engine::builder().accept_any_application().build();
  std::shared_ptr<RtmpWorker> worker;
  std::jthread thread;
  int port = 0;
  explicit Server(RtmpSettings s = {}) {
    s.name = "rtmp-test";
    s.listen = "127.0.0.1:0";
    worker = std::make_shared<RtmpWorker>(s);
    thread = std::jthread(
        [this](std::stop_token stop) { worker->serve(arcly::IngestContext(engine), stop); });
    ck_assert(worker->wait_for([](const RtmpStats& st) { return st.listening; }, 10s));
    port = worker->stats().port;
  }
  ~Server() {
    thread.request_stop();
    thread.join();
  }
  std::string url(const std::string& path) const {
    return "rtmp://127.0.0.1:" + std::to_string(port) + "/" + path;
  }
};

Process ffmpeg_publisher(const std::string& url, int seconds = 30) {
  return Process({"ffmpeg",  "-loglevel",
                  "error",   "-re",
                  "-f",      "lavfi",
                  "-i",      "testsrc=size=320x240:rate=30",
                  "-f",      "lavfi",
                  "-i",      "sine=frequency=440",
                  "-t",      std::to_string(seconds),
                  "-c:v",    "libx264",
                  "-preset", "ultrafast",
                  "-tune",   "zerolatency",
                  "-g",      "30",
                  "-c:a",    "aac",
                  "-b:a",    "64k",
                  "-f",      "flv",
                  url});
}

// Pulls decoded video frames from `appsink` until `want` or `limit`.
int decoded_frames(GstElement* pipeline, int want, std::chrono::seconds limit = 20s) {
  GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "out");
  int got = 0;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (got < want && std::chrono::steady_clock::now() < deadline) {
    GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), GST_SECOND);
    if (!s) {
      if (gst_app_sink_is_eos(GST_APP_SINK(sink))) break;
      continue;
    }
    GstCaps* caps = gst_sample_get_caps(s);
    if (caps && gst_structure_has_name(gst_caps_get_structure(caps, 0), "video/x-raw")) ++got;
    gst_sample_unref(s);
  }
  gst_object_unref(sink);
  return got;
}

}  // namespace

START_TEST(ffmpeg_publishes_and_an_arclysrc_subscriber_decodes) {
  Server srv;
  arcly::gst::register_engine("rtmp-ffmpeg", srv.engine);
  Process ff = ffmpeg_publisher(srv.url("live/x"));
  auto stream = srv.engine->wait_for_stream(StreamKey::parse("live/x"), 20000ms);
  auto sub = stream->subscribe();
  auto seen = read_frames(sub, 30, 20);
  ck_assert_msg(seen.video >= 30 && seen.audio >= 20, "%d video, %d audio", seen.video, seen.audio);
  ck_assert_int_ge(seen.configs, 2);  // H.264 (avcC) and AAC (AudioSpecificConfig)
  seen.assert_engine_time();

  GError* err = nullptr;
  GstElement* p = gst_parse_launch(
      "arclysrc engine=rtmp-ffmpeg stream=live/x ! decodebin ! videoconvert ! "
      "appsink name=out sync=false max-buffers=8",
      &err);
  ck_assert_msg(p != nullptr, "%s", err ? err->message : "?");
  gst_element_set_state(p, GST_STATE_PLAYING);
  const int frames = decoded_frames(p, 10);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  ck_assert_msg(frames >= 10, "decoded %d frames", frames);
  const auto st = srv.worker->stats();
  ck_assert_uint_eq(st.publishes, 1);
  ck_assert_uint_eq(st.live, 1);
  arcly::gst::unregister_engine("rtmp-ffmpeg");
}
END_TEST

START_TEST(an_rtmp_publish_is_recorded_playable) {
  Server srv;
  arcly::gst::register_engine("rtmp-rec", srv.engine);
  Process ff = ffmpeg_publisher(srv.url("live/rec"));
  auto stream = srv.engine->wait_for_stream(StreamKey::parse("live/rec"), 20000ms);
  const std::string path = "/tmp/arcly-rtmp-rec-" + std::to_string(getpid()) + ".mp4";
  const std::string desc =
      "arclysrc name=src engine=rtmp-rec stream=live/rec "
      "src.video_0 ! queue ! h264parse ! mux. "
      "src.audio_0 ! queue ! aacparse ! mux. "
      "mp4mux name=mux ! filesink location=" +
      path;
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(desc.c_str(), &err);
  ck_assert_msg(p != nullptr, "%s", err ? err->message : "?");
  gst_element_set_state(p, GST_STATE_PLAYING);
  auto sub = stream->subscribe();
  ck_assert_int_ge(read_frames(sub, 60, 40).video, 60);  // about two seconds went by
  // The publisher stops: its session ends, arclysrc sees the end of the stream
  // and pushes EOS, the muxer finalizes the file.
  ff.stop(SIGINT);
  GstBus* bus = gst_element_get_bus(p);
  GstMessage* m = gst_bus_timed_pop_filtered(
      bus, 20 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  if (m && GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
    GError* e = nullptr;
    gst_message_parse_error(m, &e, nullptr);
    ck_abort_msg("recording failed: %s", e ? e->message : "?");
  }
  ck_assert_msg(m != nullptr, "the recording did not finish");
  gst_message_unref(m);
  gst_object_unref(bus);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);

  // GstDiscoverer sees both tracks ...
  GstDiscoverer* disc = gst_discoverer_new(10 * GST_SECOND, &err);
  ck_assert(disc != nullptr);
  gchar* uri = gst_filename_to_uri(path.c_str(), nullptr);
  GstDiscovererInfo* info = gst_discoverer_discover_uri(disc, uri, &err);
  ck_assert_msg(info && gst_discoverer_info_get_result(info) == GST_DISCOVERER_OK, "discoverer: %s",
                err ? err->message : "?");
  GList* video = gst_discoverer_info_get_video_streams(info);
  GList* audio = gst_discoverer_info_get_audio_streams(info);
  ck_assert_uint_eq(g_list_length(video), 1);
  ck_assert_uint_eq(g_list_length(audio), 1);
  ck_assert_uint_ge(gst_discoverer_info_get_duration(info), GST_SECOND);
  gst_discoverer_stream_info_list_free(video);
  gst_discoverer_stream_info_list_free(audio);
  gst_discoverer_info_unref(info);
  g_free(uri);
  g_object_unref(disc);

  // ... and ffprobe decodes every frame of it without an error.
  const std::string probe_out = path + ".probe";
  const std::string cmd =
      "ffprobe -v error -count_frames -show_entries stream=codec_name,nb_read_frames "
      "-of csv=p=0 " +
      path + " > " + probe_out + " 2>&1";
  ck_assert_int_eq(std::system(cmd.c_str()), 0);
  std::ifstream in(probe_out);
  std::string text, line;
  while (std::getline(in, line)) text += line + "\n";
  ck_assert_msg(text.find("h264,") != std::string::npos && text.find("aac,") != std::string::npos,
                "ffprobe: %s", text.c_str());
  ck_assert_msg(text.find("rror") == std::string::npos, "ffprobe: %s", text.c_str());
  std::remove(path.c_str());
  std::remove(probe_out.c_str());
  arcly::gst::unregister_engine("rtmp-rec");
}
END_TEST

START_TEST(rtmp2sink_publishes_audio_and_video) {
  Server srv;
  const std::string desc =
      "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! "
      "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! h264parse ! mux. "
      "audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! "
      "mux. flvmux name=mux streamable=true ! rtmp2sink location=" +
      srv.url("live/gst");
  GError* err = nullptr;
  GstElement* p = gst_parse_launch(desc.c_str(), &err);
  ck_assert_msg(p != nullptr, "%s", err ? err->message : "?");
  gst_element_set_state(p, GST_STATE_PLAYING);
  auto stream = srv.engine->wait_for_stream(StreamKey::parse("live/gst"), 20000ms);
  auto sub = stream->subscribe();
  auto seen = read_frames(sub, 30, 20);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
  ck_assert_msg(seen.video >= 30 && seen.audio >= 20, "%d video, %d audio", seen.video, seen.audio);
  ck_assert_int_ge(seen.configs, 2);
}
END_TEST

START_TEST(a_wrong_token_is_refused_and_the_right_one_publishes) {
  RtmpSettings s;
  s.tokens["live/*"] = "s3cret";
  Server srv(s);
  Process bad = ffmpeg_publisher(srv.url("live/t?token=nope"), 5);
  ck_assert_int_ne(bad.wait(), 0);  // ffmpeg gives up on the error status
  auto st = srv.worker->stats();
  ck_assert_uint_eq(st.refused, 1);
  ck_assert_msg(
      st.last_refusal.find("wrong or missing token for stream live/t") != std::string::npos, "%s",
      st.last_refusal.c_str());
  ck_assert(st.last_refusal.find("nope") == std::string::npos);
  ck_assert(!srv.engine->find_stream(StreamKey::parse("live/t")));

  Process good = ffmpeg_publisher(srv.url("live/t?token=s3cret"));
  auto stream = srv.engine->wait_for_stream(StreamKey::parse("live/t"), 20000ms);
  auto sub = stream->subscribe();
  ck_assert_int_ge(read_frames(sub, 10).video, 10);
}
END_TEST

START_TEST(a_second_publisher_of_a_live_key_is_refused_and_the_first_keeps_going) {
  Server srv;
  Process first = ffmpeg_publisher(srv.url("live/dup"));
  auto stream = srv.engine->wait_for_stream(StreamKey::parse("live/dup"), 20000ms);
  auto sub = stream->subscribe();
  ck_assert_int_ge(read_frames(sub, 5).video, 5);
  Process second = ffmpeg_publisher(srv.url("live/dup"), 5);
  ck_assert_int_ne(second.wait(), 0);
  const auto st = srv.worker->stats();
  ck_assert_uint_eq(st.refused, 1);
  ck_assert_msg(st.last_refusal.find("already") != std::string::npos, "%s",
                st.last_refusal.c_str());
  auto more = read_frames(sub, 20);
  ck_assert_msg(more.video >= 20 && !more.closed, "first publisher: %d frames after", more.video);
  ck_assert(srv.engine->find_stream(StreamKey::parse("live/dup")) == stream);
}
END_TEST

START_TEST(a_killed_publisher_ends_its_session_cleanly) {
  Server srv;
  Process ff = ffmpeg_publisher(srv.url("live/kill"));
  auto stream = srv.engine->wait_for_stream(StreamKey::parse("live/kill"), 20000ms);
  auto sub = stream->subscribe();
  ck_assert_int_ge(read_frames(sub, 10).video, 10);
  ff.stop(SIGKILL);
  auto rest = read_frames(sub, 1000000, 0, 20s);
  ck_assert_msg(rest.closed, "the subscriber saw the end");
  ck_assert(srv.worker->wait_for([](const RtmpStats& st) { return st.live == 0; }, 10s));
  ck_assert(!srv.engine->find_stream(StreamKey::parse("live/kill")));
  // The key is free again.
  Process again = ffmpeg_publisher(srv.url("live/kill"));
  auto next = srv.engine->wait_for_stream(StreamKey::parse("live/kill"), 20000ms);
  ck_assert(next != stream);
}
END_TEST

START_TEST(slow_loris_and_garbage_peers_are_cut_off) {
  RtmpSettings s;
  s.handshake_timeout = 500ms;
  Server srv(s);
  auto connect_raw = [&] {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(srv.port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ck_assert_int_eq(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return fd;
  };
  // Sends C0 and a byte of C1 now and then, never the rest.
  const int loris = connect_raw();
  const char c0[2] = {3, 0};
  ck_assert_int_eq(send(loris, c0, 2, MSG_NOSIGNAL), 2);
  char b;
  ck_assert_int_le(recv(loris, &b, 1, 0), 0);  // the server hangs up
  close(loris);
  ck_assert(srv.worker->wait_for([](const RtmpStats& st) { return st.timeouts == 1; }, 10s));

  // RTMPE (version 6) is not spoken: a protocol error, the connection closes.
  const int garbage = connect_raw();
  std::vector<char> hs(1537, 'x');
  hs[0] = 6;
  ck_assert_int_eq(send(garbage, hs.data(), hs.size(), MSG_NOSIGNAL), 1537);
  ck_assert_int_le(recv(garbage, &b, 1, 0), 0);
  close(garbage);
  ck_assert(srv.worker->wait_for([](const RtmpStats& st) { return st.protocol_errors == 1; }, 10s));

  // A real publisher is not affected.
  Process ff = ffmpeg_publisher(srv.url("live/after"));
  auto stream = srv.engine->wait_for_stream(StreamKey::parse("live/after"), 20000ms);
  auto sub = stream->subscribe();
  ck_assert_int_ge(read_frames(sub, 5).video, 5);
}
END_TEST

START_TEST(a_taken_port_is_a_worker_failure_naming_it) {
  Server first;
  RtmpSettings s;
  s.listen = "127.0.0.1:" + std::to_string(first.port);
  auto worker = std::make_shared<RtmpWorker>(s);
  auto engine = arcly::Engine::builder().accept_any_application().protocol(worker).build();
  ck_assert_throws_code(
      engine->serve(), arcly::Errc::WorkerFailed,
      "ingest worker 'rtmp' failed: cannot listen on " + s.listen + ": Address already in use");
  ck_assert_msg(worker->stats().listen_error.find("Address already in use") != std::string::npos,
                "%s", worker->stats().listen_error.c_str());
  RtmpSettings bad;
  bad.listen = "nowhere";
  ck_assert_throws_code(RtmpWorker{bad}, arcly::Errc::InvalidArgument, "rtmp 'rtmp': listen");
}
END_TEST

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  return testing::run_suite(
      "ingest_rtmp",
      {ffmpeg_publishes_and_an_arclysrc_subscriber_decodes, an_rtmp_publish_is_recorded_playable,
       rtmp2sink_publishes_audio_and_video, a_wrong_token_is_refused_and_the_right_one_publishes,
       a_second_publisher_of_a_live_key_is_refused_and_the_first_keeps_going,
       a_killed_publisher_ends_its_session_cleanly, slow_loris_and_garbage_peers_are_cut_off,
       a_taken_port_is_a_worker_failure_naming_it},
      300);
}
