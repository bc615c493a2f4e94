// QoS: counters and sliding-window rates, with injected time (no sleeping).
#include "check_main.hpp"

using namespace std::chrono_literals;
using arcly::QosCounters;
using arcly::QosSnapshot;

START_TEST(counters_count_frames_bytes_keyframes_and_gop_length) {
  QosCounters q;
  auto t = q.started_at();
  for (int i = 0; i < 90; ++i) {
    auto f = testing::video(i, i % 30 == 0);
    q.on_frame(f, true, i % 30 == 0, t + i * 33ms);
  }
  QosSnapshot s;
  q.fill(s, t + 90 * 33ms);
  ck_assert_uint_eq(s.frames, 90);
  ck_assert_uint_eq(s.keyframes, 3);
  ck_assert_uint_eq(s.last_gop_frames, 30);
  ck_assert_uint_gt(s.bytes, 90 * 7);
  ck_assert_int_ge(s.since_last_frame.count(), 0);
}
END_TEST

START_TEST(rates_follow_the_sliding_window) {
  QosCounters q;
  auto t0 = q.started_at();
  // 25 fps, 1000-byte frames, for 10 s: 200 kbit/s.
  std::vector<std::uint8_t> payload(1000);
  for (int i = 0; i < 250; ++i) {
    auto f = testing::video(i, false);
    f.payload = arcly::Bytes::from_vector(payload);
    q.on_frame(f, true, false, t0 + i * 40ms);
  }
  QosSnapshot s;
  q.fill(s, t0 + 10s);
  ck_assert_msg(s.fps > 23 && s.fps < 27, "fps %f", s.fps);
  ck_assert_msg(s.bitrate_bps > 180'000 && s.bitrate_bps < 220'000, "bitrate %f", s.bitrate_bps);
  // Silence: the window empties.
  QosSnapshot later;
  q.fill(later, t0 + 20s);
  ck_assert(later.fps == 0 && later.bitrate_bps == 0);
  ck_assert_uint_eq(later.frames, 250);
}
END_TEST

START_TEST(stream_snapshot_reports_subscribers_and_their_counters) {
  auto engine =
      arcly::Engine::builder().application(arcly::AppSpec("live").gop_cache(8).ring(16)).build();
  auto stream = engine->start_publish(arcly::StreamKey::parse("live/cam"));
  auto a = stream->subscribe({arcly::StartAt::Now, {}, false});
  auto b = stream->subscribe({arcly::StartAt::Now, {}, false});
  for (int i = 0; i < 4; ++i) stream->publish_frame(testing::video(i, i == 0));
  while (a.try_recv()) {
  }
  auto q = stream->qos();
  ck_assert_uint_eq(q.subscribers, 2);
  ck_assert_uint_eq(q.per_subscriber.size(), 2);
  std::uint64_t delivered = 0;
  for (const auto& s : q.per_subscriber) delivered += s.delivered;
  ck_assert_uint_eq(delivered, 4);
  ck_assert_uint_eq(q.frames, 4);
}
END_TEST

// Audio that arrives before the first video (a camera's audio caps often come
// first) is the primary track for a while, each frame a GOP start; once video
// shows up those were not keyframes of the stream.
START_TEST(keyframes_count_video_keyframes_once_video_arrives) {
  auto engine = arcly::Engine::builder().application(arcly::AppSpec("live")).build();
  auto stream = engine->start_publish(arcly::StreamKey::parse("live/cam"));
  for (int i = 0; i < 10; ++i) stream->publish_frame(testing::audio(i));
  ck_assert_uint_eq(stream->qos().keyframes, 10);  // audio only: its frames start the GOPs
  for (int i = 0; i < 60; ++i) {
    stream->publish_frame(testing::video(i, i % 30 == 0));
    stream->publish_frame(testing::audio(10 + i));
  }
  ck_assert_uint_eq(stream->qos().keyframes, 2);
}
END_TEST

int main() {
  return testing::run_suite(
      "qos", {counters_count_frames_bytes_keyframes_and_gop_length, rates_follow_the_sliding_window,
              stream_snapshot_reports_subscribers_and_their_counters,
              keyframes_count_video_keyframes_once_video_arrives});
}
