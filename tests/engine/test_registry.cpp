// Registries: duplicates, limits, unknown apps, lookup, waiting, reaping.
#include <thread>

#include "check_main.hpp"

using namespace std::chrono_literals;
using arcly::AppSpec;
using arcly::Engine;
using arcly::Errc;
using arcly::StreamKey;

START_TEST(duplicate_publish_is_refused_naming_the_key) {
  auto engine = Engine::builder().application(AppSpec("live")).build();
  auto key = StreamKey::parse("live/cam");
  auto s = engine->start_publish(key);
  ck_assert_throws_code(engine->start_publish(key), Errc::StreamAlreadyPublishing,
                        "stream live/cam is already being published");
  engine->end_publish(key);
  auto again = engine->start_publish(key);
  ck_assert(again != s);
  ck_assert_uint_gt(again->instance(), s->instance());
}
END_TEST

START_TEST(publisher_limit_is_enforced_per_application) {
  auto engine = Engine::builder().application(AppSpec("live").publishers(2)).build();
  auto a = engine->start_publish(StreamKey::parse("live/a"));
  auto b = engine->start_publish(StreamKey::parse("live/b"));
  ck_assert_throws_code(engine->start_publish(StreamKey::parse("live/c")),
                        Errc::PublisherLimitReached, "live/c");
  engine->end_publish(a);
  auto c = engine->start_publish(StreamKey::parse("live/c"));
  ck_assert(c);
}
END_TEST

START_TEST(unknown_applications_are_refused_unless_any_is_accepted) {
  auto strict = Engine::builder().application(AppSpec("live")).build();
  ck_assert_throws_code(strict->start_publish(StreamKey::parse("vod/x")), Errc::UnknownApplication,
                        "'vod'");
  auto open = Engine::builder().accept_any_application(AppSpec().subscribers(3)).build();
  auto s = open->start_publish(StreamKey::parse("vod/x"));
  ck_assert(s);
  ck_assert_uint_eq(open->application("vod")->max_subscribers, 3);
}
END_TEST

START_TEST(invalid_app_specs_are_refused_naming_the_field) {
  ck_assert_throws_code(Engine::builder().application(AppSpec("live").gop_cache(0)).build(),
                        Errc::InvalidArgument, "cache_frames");
  ck_assert_throws_code(Engine::builder().application(AppSpec("li/ve")).build(),
                        Errc::InvalidArgument, "name");
}
END_TEST

START_TEST(get_stream_finds_only_live_streams) {
  auto engine = Engine::builder().application(AppSpec("live")).build();
  auto key = StreamKey::parse("live/cam");
  ck_assert_throws_code(engine->get_stream(key), Errc::StreamNotFound,
                        "stream live/cam is not being published");
  auto s = engine->start_publish(key);
  ck_assert(engine->get_stream(key) == s);
  ck_assert_uint_eq(engine->streams().size(), 1);
  engine->end_publish(key);
  ck_assert(!engine->find_stream(key));
}
END_TEST

START_TEST(wait_for_stream_returns_when_published_times_out_or_is_cancelled) {
  auto engine = Engine::builder().application(AppSpec("live")).build();
  auto key = StreamKey::parse("live/cam");
  ck_assert_throws_code(engine->wait_for_stream(key, 10ms), Errc::Timeout, "live/cam");
  std::jthread publisher([&] { engine->start_publish(key); });
  auto s = engine->wait_for_stream(key, -1ms);
  ck_assert(s->key() == key);
  std::stop_source stop;
  std::jthread stopper([&] { stop.request_stop(); });
  ck_assert_throws_code(
      engine->wait_for_stream(StreamKey::parse("live/other"), -1ms, stop.get_token()),
      Errc::Cancelled, "live/other");
}
END_TEST

START_TEST(ending_a_stale_handle_does_not_end_its_successor) {
  auto engine = Engine::builder().application(AppSpec("live")).build();
  auto key = StreamKey::parse("live/cam");
  auto first = engine->start_publish(key);
  engine->end_publish(key);
  auto second = engine->start_publish(key);
  ck_assert(!engine->end_publish(first));
  ck_assert(!second->closed());
  ck_assert(engine->end_publish(second));
  ck_assert(second->closed());
}
END_TEST

START_TEST(reaper_ends_silent_streams_and_their_subscribers_see_the_end) {
  // Driven by hand here: the engine's own reaper is off.
  auto engine = Engine::builder()
                    .application(AppSpec("fast").idle(1s))
                    .application(AppSpec("live").idle(5s))
                    .application(AppSpec("keep"))
                    .reap_in_background(false)
                    .build();
  auto quiet = engine->start_publish(StreamKey::parse("fast/quiet"));
  auto busy = engine->start_publish(StreamKey::parse("live/busy"));
  auto forever = engine->start_publish(StreamKey::parse("keep/cam"));
  auto sub = quiet->subscribe();
  busy->publish_frame(testing::video(0, true));
  // Two seconds after busy's frame: quiet (never a frame, 1 s timeout) is idle, busy is not.
  ck_assert_uint_eq(engine->reap_idle(busy->last_frame_at() + 2s), 1);
  ck_assert(quiet->closed());
  ck_assert(!busy->closed());
  ck_assert(sub.try_recv().status == arcly::RecvStatus::Closed);
  ck_assert_uint_eq(engine->reap_idle(busy->last_frame_at() + 6s), 1);
  ck_assert(busy->closed());
  ck_assert(!forever->closed());  // no idle timeout: never reaped
  ck_assert_uint_eq(engine->reap_idle(forever->started_at() + 1000s), 0);
}
END_TEST

START_TEST(close_all_ends_every_stream) {
  auto engine = Engine::builder().accept_any_application().build();
  auto a = engine->start_publish(StreamKey::parse("a/x"));
  auto b = engine->start_publish(StreamKey::parse("b/y"));
  engine->close_all();
  ck_assert(a->closed() && b->closed());
  ck_assert(engine->streams().empty());
}
END_TEST

// The reaper closes a stream (atomically with its idle check) before it takes it
// out of the map. In between, the stream is gone for everyone: not found, not
// listed, not waited for, and its key may be published again at once (a camera
// that reconnects just then is not refused). The late unregistering leaves the
// new publisher alone.
START_TEST(a_closed_stream_is_gone_before_it_is_unregistered) {
  auto engine = Engine::builder()
                    .application(AppSpec("live").publishers(1))
                    .reap_in_background(false)
                    .build();
  const auto key = StreamKey::parse("live/cam");
  auto old = engine->start_publish(key);
  old->close();  // what Stream::close_if_idle does first
  ck_assert(!engine->find_stream(key));
  ck_assert(engine->streams().empty());
  ck_assert_throws_code(engine->wait_for_stream(key, 0ms), arcly::Errc::Timeout, "live/cam");
  auto fresh = engine->start_publish(key);  // neither "already published" nor the limit of 1
  ck_assert(!engine->end_publish(old));     // the reaper's unregistering, late: a no-op
  ck_assert(!fresh->closed());
  ck_assert(engine->find_stream(key) == fresh);
  ck_assert(engine->wait_for_stream(key, 0ms) == fresh);
  engine->close_all();
  ck_assert(fresh->closed());
  ck_assert(engine->start_publish(StreamKey::parse("live/other")));  // the count went back
}
END_TEST

// Issue 9, defect 3: the engine's own reaper ends a publisher that went silent
// (no frame, no finish) after its application's idle timeout.
START_TEST(the_engine_reaps_a_session_that_goes_silent) {
  auto engine = Engine::builder().application(AppSpec("live").idle(100ms)).build();
  auto key = StreamKey::parse("live/wedged");
  arcly::IngestContext ctx(engine);
  auto session = ctx.open_publish(key);
  session.publish_frame(testing::config(0, "sps"));
  session.publish_frame(testing::video(0, true));
  auto sub = session.handle()->subscribe();
  // The session stays open and silent; nothing but the reaper can end it.
  arcly::Received r;
  do {
    r = sub.recv(std::chrono::steady_clock::now() + 10s);
  } while (r.status == arcly::RecvStatus::Frame);
  ck_assert_msg(r.status == arcly::RecvStatus::Closed, "status %d", static_cast<int>(r.status));
  ck_assert(!engine->find_stream(key));
  ck_assert_throws_code(session.publish_frame(testing::video(1, false)), arcly::Errc::StreamClosed,
                        "live/wedged");
}
END_TEST

// Issue 9, defect 3: the reaper's check and its end are one step under the
// stream's publish lock: a stream whose newest frame is younger than the
// timeout at the reaper's `now` is never ended.
START_TEST(reap_idle_does_not_end_a_stream_that_published_after_now) {
  auto engine =
      Engine::builder().application(AppSpec("live").idle(1s)).reap_in_background(false).build();
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  ck_assert(!stream->close_if_idle(stream->started_at() + 500ms));
  stream->publish_frame(testing::video(0, true));
  ck_assert(!stream->close_if_idle(stream->last_frame_at() + 1s));
  ck_assert(stream->close_if_idle(stream->last_frame_at() + 1s + 1ns));
  ck_assert(stream->closed());
}
END_TEST

int main() {
  return testing::run_suite(
      "registry",
      {duplicate_publish_is_refused_naming_the_key, publisher_limit_is_enforced_per_application,
       unknown_applications_are_refused_unless_any_is_accepted,
       invalid_app_specs_are_refused_naming_the_field, get_stream_finds_only_live_streams,
       wait_for_stream_returns_when_published_times_out_or_is_cancelled,
       ending_a_stale_handle_does_not_end_its_successor,
       reaper_ends_silent_streams_and_their_subscribers_see_the_end, close_all_ends_every_stream,
       the_engine_reaps_a_session_that_goes_silent,
       a_closed_stream_is_gone_before_it_is_unregistered,
       reap_idle_does_not_end_a_stream_that_published_after_now});
}
