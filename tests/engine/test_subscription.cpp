// Subscriptions: late join (configs, cached GOP, live), start modes, lag policies, end.
#include <thread>

#include "check_main.hpp"

using namespace std::chrono_literals;
using arcly::AppSpec;
using arcly::Engine;
using arcly::RecvStatus;
using arcly::StartAt;
using arcly::StreamKey;
using arcly::SubscribeOptions;

namespace {
std::shared_ptr<Engine> engine_with(AppSpec spec) {
  return Engine::builder().application(spec).build();
}

std::string next_text(arcly::Subscription& s) {
  auto r = s.try_recv();
  ck_assert_msg(r.status == RecvStatus::Frame, "expected a frame, got status %d",
                static_cast<int>(r.status));
  return testing::text(r.frame);
}
}  // namespace

START_TEST(late_joiner_gets_configs_then_cached_gop_then_live_without_gap) {
  auto engine = engine_with(AppSpec("live"));
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  stream->publish_frame(testing::config(0, "sps-old"));
  stream->publish_frame(testing::video(0, true));
  stream->publish_frame(testing::video(1, false));
  stream->publish_frame(testing::config(0, "sps"));
  stream->publish_frame(testing::config(1, "asc", arcly::MediaKind::Audio));
  stream->publish_frame(testing::video(2, true));  // the newest keyframe
  stream->publish_frame(testing::audio(100));
  stream->publish_frame(testing::video(3, false));

  auto sub = stream->subscribe();
  ck_assert_text(next_text(sub), "sps");
  ck_assert_text(next_text(sub), "asc");
  auto first = sub.try_recv();
  ck_assert(first.frame->is_keyframe());
  ck_assert_text(testing::text(first.frame), "frame-2");
  ck_assert(sub.from_cache(first.frame));
  ck_assert_text(next_text(sub), "frame-100");  // cached audio is included
  ck_assert_text(next_text(sub), "frame-3");
  ck_assert(sub.try_recv().status == RecvStatus::Empty);
  stream->publish_frame(testing::video(4, false));
  auto live = sub.try_recv();
  ck_assert_text(testing::text(live.frame), "frame-4");
  ck_assert(!sub.from_cache(live.frame));
}
END_TEST

START_TEST(a_config_change_inside_the_cached_gop_arrives_in_order_once) {
  auto engine = engine_with(AppSpec("live"));
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  stream->publish_frame(testing::config(0, "caps-a"));
  stream->publish_frame(testing::video(0, true));
  stream->publish_frame(testing::config(0, "caps-b"));
  stream->publish_frame(testing::video(1, false));
  auto sub = stream->subscribe();
  ck_assert_text(next_text(sub), "caps-a");
  ck_assert_text(next_text(sub), "frame-0");
  ck_assert_text(next_text(sub), "caps-b");
  ck_assert_text(next_text(sub), "frame-1");
  ck_assert(sub.try_recv().status == RecvStatus::Empty);
}
END_TEST

START_TEST(next_keyframe_skips_the_cache_and_waits) {
  auto engine = engine_with(AppSpec("live"));
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  stream->publish_frame(testing::config(0, "sps"));
  stream->publish_frame(testing::video(0, true));
  stream->publish_frame(testing::video(1, false));
  auto sub = stream->subscribe({StartAt::NextKeyframe, {}, false});
  ck_assert_text(next_text(sub), "sps");
  stream->publish_frame(testing::video(2, false));
  ck_assert(sub.try_recv().status == RecvStatus::Empty);
  stream->publish_frame(testing::video(3, true));
  ck_assert_text(next_text(sub), "frame-3");
  ck_assert_uint_eq(sub.dropped(), 0);  // waiting for the first keyframe is not a drop
}
END_TEST

START_TEST(start_now_takes_the_live_edge) {
  auto engine = engine_with(AppSpec("live"));
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  stream->publish_frame(testing::video(0, true));
  auto sub = stream->subscribe({StartAt::Now, {}, false});
  stream->publish_frame(testing::video(1, false));
  ck_assert_text(next_text(sub), "frame-1");
}
END_TEST

START_TEST(preroll_starts_at_an_older_keyframe_covering_the_window) {
  // 30 fps, keyframe every 30 frames (~1 s); keep 5 s of keyframes.
  auto engine = engine_with(AppSpec("live").window(5s).gop_cache(4096));
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  for (int i = 0; i < 300; ++i) stream->publish_frame(testing::video(i, i % 30 == 0));
  // Newest pts: 299*33ms = 9.867 s. Preroll 3 s -> newest keyframe at or before 6.867 s: frame 180.
  auto sub = stream->subscribe({StartAt::Keyframe, 3s, false});
  ck_assert_text(next_text(sub), "frame-180");
  // Without preroll: the newest GOP.
  auto plain = stream->subscribe();
  ck_assert_text(next_text(plain), "frame-270");
  // More preroll than the window holds: the oldest keyframe kept.
  auto deep = stream->subscribe({StartAt::Keyframe, 60s, false});
  auto first = deep.try_recv();
  ck_assert(first.frame->is_keyframe());
  ck_assert_int_le(9'867'000'000 - first.frame->pts, 7'000'000'000);  // window + 2 GOPs
  ck_assert_int_ge(9'867'000'000 - first.frame->pts, 5'000'000'000);
}
END_TEST

START_TEST(without_window_only_the_newest_gop_is_cached) {
  auto engine = engine_with(AppSpec("live"));
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  for (int i = 0; i < 100; ++i) stream->publish_frame(testing::video(i, i % 30 == 0));
  auto sub = stream->subscribe({StartAt::Keyframe, 10s, false});
  ck_assert_text(next_text(sub), "frame-90");
  ck_assert_uint_eq(stream->replay_buffer().size(), 10);
  ck_assert_uint_eq(stream->qos().cached_frames, 10);
}
END_TEST

START_TEST(frame_and_byte_bounds_limit_what_is_replayed) {
  auto engine = Engine::builder()
                    .application(AppSpec("small").gop_cache(8))
                    .application(AppSpec("tiny").cache_limit_bytes(50))
                    .build();
  auto a = engine->start_publish(StreamKey::parse("small/cam"));
  for (int i = 0; i < 20; ++i) a->publish_frame(testing::video(i, i % 10 == 0));
  // The GOP at frame 10 spans 10 frames > 8: nothing to replay, wait for a keyframe.
  ck_assert_uint_eq(a->replay_buffer().size(), 0);
  auto sa = a->subscribe();
  ck_assert(sa.try_recv().status == RecvStatus::Empty);
  a->publish_frame(testing::video(20, true));
  ck_assert_text(next_text(sa), "frame-20");

  auto b = engine->start_publish(StreamKey::parse("tiny/cam"));
  for (int i = 0; i < 20; ++i) b->publish_frame(testing::video(i, i % 2 == 0));
  ck_assert_uint_le(b->qos().ring_bytes, 50);
  ck_assert_uint_eq(b->replay_buffer().size(), 2);  // the newest keyframe and its follower
}
END_TEST

START_TEST(a_stream_without_keyframes_holds_a_bounded_amount) {
  auto engine = engine_with(AppSpec("live").gop_cache(64).cache_limit_bytes(4096));
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  for (int i = 0; i < 20000; ++i) stream->publish_frame(testing::video(i, false));
  auto q = stream->qos();
  ck_assert_uint_le(q.ring_bytes, 4096);
  ck_assert_uint_eq(q.cached_frames, 0);
  ck_assert_uint_eq(stream->replay_buffer().size(), 0);
}
END_TEST

START_TEST(audio_only_streams_anchor_on_audio_frames) {
  auto engine = engine_with(AppSpec("live"));
  auto stream = engine->start_publish(StreamKey::parse("live/radio"));
  stream->publish_frame(testing::config(1, "asc", arcly::MediaKind::Audio));
  for (int i = 0; i < 5; ++i) stream->publish_frame(testing::audio(i));
  auto sub = stream->subscribe();
  ck_assert_text(next_text(sub), "asc");
  ck_assert_text(next_text(sub), "frame-4");
}
END_TEST

START_TEST(strict_subscriber_gets_lagged_with_the_skip_count) {
  auto engine = engine_with(AppSpec("live").gop_cache(8).ring(16));
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  auto sub = stream->subscribe({StartAt::Now, {}, false});
  for (int i = 0; i < 50; ++i) stream->publish_frame(testing::video(i, i % 10 == 0));
  auto r = sub.try_recv();
  ck_assert(r.status == RecvStatus::Lagged);
  ck_assert_uint_eq(r.skipped, 50 - 16);
  ck_assert_text(next_text(sub), "frame-34");
  ck_assert_uint_eq(sub.dropped(), 34);
  ck_assert_uint_eq(stream->qos().per_subscriber.at(0).dropped, 34);
}
END_TEST

START_TEST(resilient_subscriber_resumes_at_the_newest_keyframe_and_counts_drops) {
  auto engine = engine_with(AppSpec("live").gop_cache(12).ring(16));
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  stream->publish_frame(testing::config(0, "sps"));
  auto sub = stream->subscribe({StartAt::Keyframe, {}, true});
  ck_assert_text(next_text(sub), "sps");
  for (int i = 0; i < 50; ++i) stream->publish_frame(testing::video(i, i % 10 == 0));
  auto r = sub.try_recv();
  ck_assert(r.status == RecvStatus::Frame);
  ck_assert(r.discont);
  ck_assert_text(testing::text(r.frame), "frame-40");
  // Positions: sps = 0, frame-i = i + 1. It had read position 0; frame-40 is position 41.
  ck_assert_uint_eq(r.skipped, 40);
  ck_assert_uint_eq(sub.dropped(), 40);
  ck_assert_uint_eq(sub.try_recv().frame.position(), 42);
}
END_TEST

START_TEST(resilient_subscriber_without_a_usable_keyframe_waits_for_one) {
  auto engine = engine_with(AppSpec("live").gop_cache(4).ring(16));
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  auto sub = stream->subscribe({StartAt::Now, {}, true});
  for (int i = 0; i < 40; ++i) stream->publish_frame(testing::video(i, i == 0));
  ck_assert(sub.try_recv().status == RecvStatus::Empty);  // everything held is mid-GOP
  stream->publish_frame(testing::video(40, true));
  auto r = sub.try_recv();
  ck_assert(r.discont);
  ck_assert_text(testing::text(r.frame), "frame-40");
  ck_assert_uint_eq(r.skipped, 40);
  ck_assert_uint_eq(sub.dropped(), 40);
}
END_TEST

START_TEST(ending_the_publish_drains_then_closes_every_subscriber) {
  auto engine = engine_with(AppSpec("live"));
  auto key = StreamKey::parse("live/cam");
  auto stream = engine->start_publish(key);
  auto sub = stream->subscribe({StartAt::Now, {}, false});
  stream->publish_frame(testing::video(0, true));
  engine->end_publish(key);
  ck_assert_text(next_text(sub), "frame-0");
  ck_assert(sub.try_recv().status == RecvStatus::Closed);
  ck_assert(!sub.next_frame());
  ck_assert_throws_code(stream->publish_frame(testing::video(1, false)), arcly::Errc::StreamClosed,
                        "live/cam");
}
END_TEST

START_TEST(close_wakes_every_blocked_subscriber) {
  auto engine = engine_with(AppSpec("live"));
  auto key = StreamKey::parse("live/cam");
  auto stream = engine->start_publish(key);
  std::atomic<int> closed{0};
  std::vector<std::jthread> threads;
  std::atomic<int> ready{0};
  for (int i = 0; i < 16; ++i) {
    threads.emplace_back([&] {
      auto sub = stream->subscribe();
      ready.fetch_add(1);
      if (sub.recv().status == RecvStatus::Closed) closed.fetch_add(1);
    });
  }
  while (ready.load() < 16) std::this_thread::yield();
  engine->end_publish(key);
  threads.clear();  // joins: would hang if any waiter were not woken
  ck_assert_int_eq(closed.load(), 16);
}
END_TEST

START_TEST(recv_honours_deadline_and_stop_token) {
  auto engine = engine_with(AppSpec("live"));
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  auto sub = stream->subscribe();
  ck_assert(sub.recv_for(10ms).status == RecvStatus::Timeout);
  std::stop_source stop;
  std::jthread t([&] { stop.request_stop(); });
  ck_assert(sub.recv(std::chrono::steady_clock::time_point::max(), stop.get_token()).status ==
            RecvStatus::Cancelled);
}
END_TEST

START_TEST(subscriptions_can_move_and_release_their_slot) {
  auto engine = engine_with(AppSpec("live").subscribers(1));
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  {
    auto a = stream->subscribe();
    auto b = std::move(a);
    ck_assert_uint_eq(stream->subscriber_count(), 1);
    ck_assert_throws_code(stream->subscribe(), arcly::Errc::SubscriberLimitReached, "live/cam");
  }
  ck_assert_uint_eq(stream->subscriber_count(), 0);
  auto c = stream->subscribe();
  ck_assert_uint_eq(stream->subscriber_count(), 1);
}
END_TEST

// Issue 9, defect 1: a resync that must wait for a keyframe still delivers the
// configs that changed inside the overwritten range, in front of that keyframe.
START_TEST(a_resync_waiting_for_a_keyframe_delivers_the_changed_config_first) {
  auto engine = engine_with(AppSpec("live").gop_cache(4).ring(16));
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  auto sub = stream->subscribe({StartAt::Keyframe, {}, true});
  stream->publish_frame(testing::config(0, "sps-a"));
  stream->publish_frame(testing::video(0, true));
  ck_assert_text(next_text(sub), "sps-a");
  ck_assert_text(next_text(sub), "frame-0");
  for (int i = 1; i <= 20; ++i) stream->publish_frame(testing::video(i, false));
  stream->publish_frame(testing::config(0, "sps-b"));
  for (int i = 21; i <= 40; ++i) stream->publish_frame(testing::video(i, false));
  ck_assert(sub.try_recv().status == RecvStatus::Empty);
  stream->publish_frame(testing::video(41, true));
  ck_assert_text(next_text(sub), "sps-b");
  auto key = sub.try_recv();
  ck_assert_text(testing::text(key.frame), "frame-41");
  ck_assert(key.discont);
}
END_TEST

// Issue 9, defect 1: a strict subscriber that lagged past a config change gets
// that config before the first frame it reads after Lagged.
START_TEST(a_strict_subscriber_gets_the_changed_config_after_lagged) {
  auto engine = engine_with(AppSpec("live").gop_cache(4).ring(16));
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  auto sub = stream->subscribe({StartAt::Keyframe, {}, false});
  stream->publish_frame(testing::config(0, "sps-a"));
  stream->publish_frame(testing::video(0, true));
  ck_assert_text(next_text(sub), "sps-a");
  ck_assert_text(next_text(sub), "frame-0");
  for (int i = 1; i <= 20; ++i) stream->publish_frame(testing::video(i, false));
  stream->publish_frame(testing::config(0, "sps-b"));  // position 22
  for (int i = 21; i <= 40; ++i) stream->publish_frame(testing::video(i, false));
  auto r = sub.try_recv();
  ck_assert(r.status == RecvStatus::Lagged);
  ck_assert_text(next_text(sub), "sps-b");
  ck_assert_text(next_text(sub), "frame-" + std::to_string(43 - 16 - 2));  // oldest held
}
END_TEST

// Issue 9, defect 4: anchors belong to the primary track, and every other track
// a joiner receives starts at a keyframe of that track.
START_TEST(a_joiner_starts_every_track_at_a_keyframe_of_that_track) {
  auto engine = engine_with(AppSpec("live"));
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  stream->publish_frame(testing::video(0, true, 0));
  stream->publish_frame(testing::video(1, false, 1));  // track 1 before its first keyframe
  stream->publish_frame(testing::video(2, false, 0));
  stream->publish_frame(testing::video(3, true, 1));  // track 1's keyframe: not an anchor
  stream->publish_frame(testing::video(4, false, 0));
  auto sub = stream->subscribe();
  ck_assert_text(next_text(sub), "frame-0");
  ck_assert_text(next_text(sub), "frame-2");  // frame-1 skipped: track 1 has not started
  ck_assert_text(next_text(sub), "frame-3");
  ck_assert_text(next_text(sub), "frame-4");
  ck_assert(sub.try_recv().status == RecvStatus::Empty);
  ck_assert_uint_eq(sub.dropped(), 0);
}
END_TEST

START_TEST(a_data_only_stream_starts_a_joiner_at_its_newest_frame) {
  auto engine = engine_with(AppSpec("live"));
  auto stream = engine->start_publish(StreamKey::parse("live/telemetry"));
  for (int i = 0; i < 3; ++i) {
    arcly::MediaFrame f;
    f.kind = arcly::MediaKind::Data;
    f.track = 2;
    f.pts = i * 1'000'000;
    f.payload = testing::seq_payload(static_cast<std::uint64_t>(i));
    stream->publish_frame(std::move(f));
  }
  auto sub = stream->subscribe();
  ck_assert_text(next_text(sub), "frame-2");
}
END_TEST

// Issue 9, defect 9: subscribing after the end is allowed and sees the end.
START_TEST(a_subscription_taken_after_the_end_drains_then_sees_closed) {
  auto engine = engine_with(AppSpec("live"));
  auto key = StreamKey::parse("live/cam");
  auto stream = engine->start_publish(key);
  stream->publish_frame(testing::video(0, true));
  engine->end_publish(key);
  auto sub = stream->subscribe();
  ck_assert_text(next_text(sub), "frame-0");
  ck_assert(sub.try_recv().status == RecvStatus::Closed);
}
END_TEST

// Issue 10: what subscribers read about their publisher — the newest media
// pts (max-lag), key-unit requests (force-key-unit), its upstream latency.
START_TEST(a_stream_reports_newest_pts_key_unit_requests_and_latency) {
  auto engine = engine_with(AppSpec("live"));
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  ck_assert(stream->newest_pts() == arcly::Stream::kNoPts);
  stream->publish_frame(testing::config(0, "sps"));
  ck_assert(stream->newest_pts() == arcly::Stream::kNoPts);  // configs are no media
  stream->publish_frame(testing::video(0, true));
  stream->publish_frame(testing::video(3, false));
  ck_assert_int_eq(stream->newest_pts(), 3 * 33'000'000);
  stream->publish_frame(testing::audio(1));  // older than the newest: kept
  ck_assert_int_eq(stream->newest_pts(), 3 * 33'000'000);

  ck_assert_uint_eq(stream->key_unit_requests(), 0);
  for (int i = 0; i < 3; ++i) stream->request_key_unit();
  ck_assert_uint_eq(stream->key_unit_requests(), 3);

  ck_assert_int_eq(stream->upstream_latency().count(), 0);
  stream->set_upstream_latency(150ms);
  ck_assert(stream->upstream_latency() == 150ms);
}
END_TEST

int main() {
  return testing::run_suite("subscription",
                            {late_joiner_gets_configs_then_cached_gop_then_live_without_gap,
                             a_config_change_inside_the_cached_gop_arrives_in_order_once,
                             next_keyframe_skips_the_cache_and_waits,
                             start_now_takes_the_live_edge,
                             preroll_starts_at_an_older_keyframe_covering_the_window,
                             without_window_only_the_newest_gop_is_cached,
                             frame_and_byte_bounds_limit_what_is_replayed,
                             a_stream_without_keyframes_holds_a_bounded_amount,
                             audio_only_streams_anchor_on_audio_frames,
                             strict_subscriber_gets_lagged_with_the_skip_count,
                             resilient_subscriber_resumes_at_the_newest_keyframe_and_counts_drops,
                             resilient_subscriber_without_a_usable_keyframe_waits_for_one,
                             ending_the_publish_drains_then_closes_every_subscriber,
                             close_wakes_every_blocked_subscriber,
                             recv_honours_deadline_and_stop_token,
                             subscriptions_can_move_and_release_their_slot,
                             a_resync_waiting_for_a_keyframe_delivers_the_changed_config_first,
                             a_strict_subscriber_gets_the_changed_config_after_lagged,
                             a_joiner_starts_every_track_at_a_keyframe_of_that_track,
                             a_data_only_stream_starts_a_joiner_at_its_newest_frame,
                             a_subscription_taken_after_the_end_drains_then_sees_closed,
                             a_stream_reports_newest_pts_key_unit_requests_and_latency});
}
