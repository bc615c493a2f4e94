// arcly-engine-demo: the kernel at work with nothing but itself.
//
// A synthetic camera publishes live/demo (30 fps video with a 2 s GOP, 50 fps
// audio, codec configs first). Late joiners subscribe at odd moments of the GOP
// and report what they got first (configs, then the cached keyframe: an instant
// start) and how far behind the live edge they began. Live QoS is printed once a
// second. Usage: arcly-engine-demo [--for SECONDS]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "arcly/arcly.hpp"

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

arcly::MediaFrame config(std::uint32_t track, arcly::MediaKind kind, arcly::CodecId codec,
                         const char* caps) {
  auto info = std::make_shared<arcly::TrackInfo>();
  info->track = track;
  info->kind = kind;
  info->codec = codec;
  info->description = caps;
  return arcly::MediaFrame::config(kind, codec, track, arcly::Bytes::copy_from(caps), info);
}

void publisher(std::stop_token stop, arcly::PublishSession session) {
  session.publish_frame(config(0, arcly::MediaKind::Video, arcly::CodecId::H264,
                               "video/x-h264, width=1280, height=720, framerate=30/1"));
  session.publish_frame(config(1, arcly::MediaKind::Audio, arcly::CodecId::AAC,
                               "audio/mpeg, mpegversion=4, rate=48000, channels=2"));
  const auto start = Clock::now();
  const auto idr = arcly::Bytes::from_vector(std::vector<std::uint8_t>(60'000, 0x65));
  const auto delta = arcly::Bytes::from_vector(std::vector<std::uint8_t>(12'000, 0x41));
  const auto aac = arcly::Bytes::from_vector(std::vector<std::uint8_t>(400, 0x21));
  std::uint64_t v = 0, a = 0;
  while (!stop.stop_requested()) {
    const auto vt = start + v * 33'333us;
    const auto at = start + a * 20ms;
    if (vt <= at) {
      std::this_thread::sleep_until(vt);
      const bool key = v % 60 == 0;
      session.publish_frame(arcly::MediaFrame::video(static_cast<std::int64_t>(v) * 33'333'333,
                                                     std::nullopt, key ? idr : delta,
                                                     arcly::CodecId::H264, key, 0));
      ++v;
    } else {
      std::this_thread::sleep_until(at);
      session.publish_frame(arcly::MediaFrame::audio(static_cast<std::int64_t>(a) * 20'000'000, aac,
                                                     arcly::CodecId::AAC, 1));
      ++a;
    }
  }
  session.finish();  // subscribers drain and see the end
}

void late_joiner(const std::shared_ptr<arcly::Engine>& engine, int id) {
  auto stream = engine->wait_for_stream(arcly::StreamKey::parse("live/demo"), 2000ms);
  const auto t0 = Clock::now();
  auto sub = stream->subscribe_resilient();
  std::string first;
  std::uint64_t cached = 0, frames = 0;
  double first_key_ms = -1;
  for (;;) {
    auto f = sub.next_frame();
    if (!f) break;
    ++frames;
    if (f->is_config()) {
      first += std::string(arcly::media_kind_name(f->kind)) + "-config ";
      continue;
    }
    if (first_key_ms < 0 && f->is_keyframe() && f->kind == arcly::MediaKind::Video) {
      first_key_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      first += "keyframe(pts " + std::to_string(f->pts / 1'000'000) + " ms)";
    }
    if (sub.from_cache(f)) ++cached;
  }
  std::printf(
      "  joiner %d: first out: %s after %.2f ms; %llu cached frames replayed, %llu frames "
      "in all, %llu dropped; saw the end of the stream\n",
      id, first.c_str(), first_key_ms, static_cast<unsigned long long>(cached),
      static_cast<unsigned long long>(frames), static_cast<unsigned long long>(sub.dropped()));
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 8;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--for") == 0 && i + 1 < argc) {
      seconds = std::atof(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--for SECONDS]\n", argv[0]);
      return 2;
    }
  }
  if (seconds <= 0) {
    std::fprintf(stderr, "--for: expected a positive number of seconds\n");
    return 2;
  }
  auto engine =
      arcly::Engine::builder().application(arcly::AppSpec("live").window(4s).idle(5s)).build();
  arcly::IngestContext ctx(engine);
  std::printf("arcly engine demo: publishing live/demo for %.0f s (30 fps, 2 s GOP, + audio)\n",
              seconds);
  std::jthread pub(publisher, ctx.open_publish(arcly::StreamKey::parse("live/demo")));
  std::vector<std::jthread> joiners;
  const auto start = Clock::now();
  const double join_at[] = {1.3, 2.7, 4.1};
  int next_join = 0;
  auto stream = engine->get_stream(arcly::StreamKey::parse("live/demo"));
  for (int tick = 1; Clock::now() - start < std::chrono::duration<double>(seconds); ++tick) {
    while (next_join < 3 &&
           Clock::now() - start >= std::chrono::duration<double>(join_at[next_join])) {
      joiners.emplace_back(late_joiner, engine, next_join + 1);
      std::printf("  joiner %d subscribes at %.1f s\n", next_join + 1, join_at[next_join]);
      ++next_join;
    }
    std::this_thread::sleep_until(start + tick * 500ms);
    if (tick % 2 == 0) {
      auto q = stream->qos();
      std::printf(
          "  qos live/demo: %6.0f kbit/s  %5.1f fps  gop %llu  frames %llu  keyframes %llu"
          "  subscribers %zu  cached %llu frames\n",
          q.bitrate_bps / 1000, q.fps, static_cast<unsigned long long>(q.last_gop_frames),
          static_cast<unsigned long long>(q.frames), static_cast<unsigned long long>(q.keyframes),
          q.subscribers, static_cast<unsigned long long>(q.cached_frames));
    }
  }
  pub.request_stop();
  pub.join();
  joiners.clear();
  std::printf("done: the publisher finished, every joiner saw the end of the stream\n");
  return 0;
}
