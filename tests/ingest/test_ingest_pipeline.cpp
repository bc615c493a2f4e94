// The generic pipeline worker (any gst-launch source), configuration errors, and
// shutdown of many workers in every state with no thread or fd left behind.
#include <dirent.h>

#include "ingest_helpers.hpp"
#include "rtsp_worker.hpp"
#include "source_worker.hpp"

using namespace std::chrono_literals;
using namespace arcly::ingest;
using namespace ingest_testing;
using arcly::StreamKey;

namespace {
WorkerSettings settings_for(const char* key) {
  WorkerSettings s;
  s.name = std::string("pipeline-test-") + key;
  s.key = StreamKey::parse(key);
  s.timeout = 3000ms;
  s.backoff_initial = 100ms;
  s.backoff_max = 400ms;
  s.grace = 10000ms;
  return s;
}

int count_entries(const char* dir) {
  int n = 0;
  if (DIR* d = opendir(dir)) {
    while (readdir(d)) ++n;
    closedir(d);
  }
  return n;
}
}  // namespace

START_TEST(a_launch_description_becomes_a_stream) {
  auto engine = arcly::Engine::builder().accept_any_application().build();
  auto worker = std::make_shared<PipelineWorker>(
      settings_for("live/test"),
      "videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=30/1 ! "
      "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15");
  std::jthread t([&](std::stop_token stop) { worker->serve(arcly::IngestContext(engine), stop); });
  auto stream = engine->wait_for_stream(StreamKey::parse("live/test"), 20000ms);
  auto sub = stream->subscribe();
  auto seen = read_frames(sub, 20);
  ck_assert_int_ge(seen.video, 20);
  ck_assert_int_ge(seen.configs, 1);
  seen.assert_engine_time();
  ck_assert(stream->cached_configs().at(0)->info->description.find("video/x-h264") == 0);
}
END_TEST

START_TEST(a_file_with_audio_and_video_is_demuxed_parsed_and_replayed_after_eos) {
  const std::string mp4 = "/tmp/arcly-pipeline-" + std::to_string(getpid()) + ".mp4";
  Process ff({"ffmpeg",  "-loglevel", "error", "-y",
              "-f",      "lavfi",     "-i",    "testsrc=size=160x120:rate=30",
              "-f",      "lavfi",     "-i",    "sine",
              "-t",      "2",         "-c:v",  "libx264",
              "-preset", "ultrafast", "-g",    "15",
              "-c:a",    "aac",       mp4});
  ck_assert_int_eq(ff.wait(), 0);
  auto engine = arcly::Engine::builder().accept_any_application().build();
  auto worker = std::make_shared<PipelineWorker>(settings_for("vod/file"),
                                                 "filesrc location=" + mp4 + " ! qtdemux");
  std::jthread t([&](std::stop_token stop) { worker->serve(arcly::IngestContext(engine), stop); });
  auto stream = engine->wait_for_stream(StreamKey::parse("vod/file"), 20000ms);
  auto sub = stream->subscribe({arcly::StartAt::Keyframe, {}, false});
  auto seen = read_frames(sub, 30, 20);
  ck_assert_msg(seen.video >= 30 && seen.audio >= 20, "%d video, %d audio", seen.video, seen.audio);
  // The file ends (EOS): the worker starts it again within grace; same stream.
  ck_assert(worker->wait_for(
      [](const WorkerStats& s) { return s.last_failure.kind == FailureKind::EndOfStream; }, 20s));
  ck_assert(engine->find_stream(StreamKey::parse("vod/file")) == stream);
  t.request_stop();
  t.join();
  std::remove(mp4.c_str());
}
END_TEST

START_TEST(a_bad_description_is_reported_and_retried_not_fatal) {
  auto engine = arcly::Engine::builder().accept_any_application().build();
  auto worker =
      std::make_shared<PipelineWorker>(settings_for("live/bad"), "nosuchelement ! x264enc");
  std::jthread t([&](std::stop_token stop) { worker->serve(arcly::IngestContext(engine), stop); });
  ck_assert(worker->wait_for([](const WorkerStats& s) { return s.attempts >= 2; }, 20s));
  auto s = worker->stats();
  ck_assert(s.last_failure.kind == FailureKind::Error);
  ck_assert_msg(s.last_failure.message.find("nosuchelement") != std::string::npos, "%s",
                s.last_failure.message.c_str());
}
END_TEST

START_TEST(a_second_publisher_of_the_key_is_refused_while_the_worker_holds_it) {
  auto engine = arcly::Engine::builder().accept_any_application().build();
  auto worker = std::make_shared<PipelineWorker>(
      settings_for("live/held"),
      "videotestsrc is-live=true ! video/x-raw,width=160,height=120 ! x264enc tune=zerolatency "
      "speed-preset=ultrafast key-int-max=15");
  std::jthread t([&](std::stop_token stop) { worker->serve(arcly::IngestContext(engine), stop); });
  engine->wait_for_stream(StreamKey::parse("live/held"), 20000ms);
  ck_assert_throws_code(engine->start_publish(StreamKey::parse("live/held")),
                        arcly::Errc::StreamAlreadyPublishing, "live/held");
}
END_TEST

START_TEST(serve_stops_every_worker_in_every_state_without_leaking_threads_or_fds) {
  const int port = free_port();
  auto server = rtsp_server(port);
  auto cycle = [&] {
    auto engine = arcly::Engine::builder().accept_any_application().build();
    auto dead = settings_for("live/dead");
    dead.backoff_initial = 60000ms;  // stays retrying
    std::vector<std::shared_ptr<arcly::InboundProtocol>> workers{
        std::make_shared<RtspWorker>(
            settings_for("live/cam"),
            RtspSettings{"rtsp://127.0.0.1:" + std::to_string(port) + "/cam"}),
        std::make_shared<RtspWorker>(dead, RtspSettings{"rtsp://127.0.0.1:1/nothing"}),
        std::make_shared<PipelineWorker>(
            settings_for("live/synthetic"),
            "videotestsrc is-live=true ! video/x-raw,width=160,height=120 ! x264enc "
            "tune=zerolatency speed-preset=ultrafast")};
    std::stop_source stop;
    std::jthread serve([&] { engine->serve(workers, stop.get_token()); });
    engine->wait_for_stream(StreamKey::parse("live/cam"), 20000ms);
    engine->wait_for_stream(StreamKey::parse("live/synthetic"), 20000ms);
    ck_assert(
        std::static_pointer_cast<SourceWorker>(workers[1])
            ->wait_for([](const WorkerStats& s) { return s.state == WorkerState::Retrying; }, 20s));
    const auto t0 = std::chrono::steady_clock::now();
    stop.request_stop();
    serve.join();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - t0);
    std::printf("Engine::serve stopped 3 workers (live, retrying, live) in %lld ms\n",
                static_cast<long long>(ms.count()));
    ck_assert(engine->streams().empty());
  };
  cycle();  // warm-up: GStreamer's own pools and registries settle
  const int threads = count_entries("/proc/self/task");
  const int fds = count_entries("/proc/self/fd");
  for (int i = 0; i < 3; ++i) cycle();
  // Allow GLib's thread pool a few idle threads; a leak would grow with cycles.
  ck_assert_int_le(count_entries("/proc/self/task"), threads + 2);
  ck_assert_int_eq(count_entries("/proc/self/fd"), fds);
}
END_TEST

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  return testing::run_suite(
      "ingest-pipeline",
      {a_launch_description_becomes_a_stream,
       a_file_with_audio_and_video_is_demuxed_parsed_and_replayed_after_eos,
       a_bad_description_is_reported_and_retried_not_fatal,
       a_second_publisher_of_the_key_is_refused_while_the_worker_holds_it,
       serve_stops_every_worker_in_every_state_without_leaking_threads_or_fds},
      300);
}
