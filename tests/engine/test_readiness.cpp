// Readiness: one thread serves many subscriptions; a publish notifies each
// watching Waker once, however many subscriptions it watches.
#include <poll.h>

#include <thread>

#include "check_main.hpp"

using namespace std::chrono_literals;
using arcly::AppSpec;
using arcly::Engine;
using arcly::RecvStatus;
using arcly::StartAt;
using arcly::StreamKey;
using arcly::Waker;

START_TEST(a_publish_notifies_each_watching_waker_once) {
  auto engine = Engine::builder().application(AppSpec("live")).build();
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  auto many = std::make_shared<Waker>();
  auto one = std::make_shared<Waker>();
  std::vector<arcly::Subscription> subs;
  for (int i = 0; i < 100; ++i) {
    subs.push_back(stream->subscribe({StartAt::Now, {}, false}));
    subs.back().watch(many);
  }
  auto single = stream->subscribe({StartAt::Now, {}, false});
  single.watch(one);
  ck_assert(!many->notified());
  stream->publish_frame(testing::video(0, true));
  ck_assert(many->notified() && one->notified());
  ck_assert_uint_eq(many->signals(), 1);  // once per waker, not per subscription
  stream->publish_frame(testing::video(1, false));
  ck_assert_uint_eq(many->signals(), 1);  // still pending: no second signal
  ck_assert(many->reset());
  for (auto& s : subs) {
    ck_assert(s.ready());
    ck_assert_text(testing::text(s.try_recv().frame), "frame-0");
    ck_assert_text(testing::text(s.try_recv().frame), "frame-1");
    ck_assert(s.try_recv().status == RecvStatus::Empty);
    ck_assert(!s.ready());
  }
  stream->publish_frame(testing::video(2, false));
  ck_assert_uint_eq(many->signals(), 2);
  // Unwatched (and destroyed) subscriptions no longer notify their waker.
  single.unwatch();
  one->reset();
  stream->publish_frame(testing::video(3, false));
  ck_assert(!one->notified());
  subs.clear();
  many->reset();
  stream->publish_frame(testing::video(4, false));
  ck_assert(!many->notified());
}
END_TEST

START_TEST(the_end_of_a_stream_notifies_its_wakers) {
  auto engine = Engine::builder().application(AppSpec("live")).build();
  auto key = StreamKey::parse("live/cam");
  auto stream = engine->start_publish(key);
  auto waker = std::make_shared<Waker>();
  auto sub = stream->subscribe({StartAt::Now, {}, false});
  sub.watch(waker);
  engine->end_publish(key);
  ck_assert(waker->notified());
  ck_assert(sub.try_recv().status == RecvStatus::Closed);
}
END_TEST

START_TEST(an_eventfd_waker_is_readable_while_notified) {
  auto engine = Engine::builder().application(AppSpec("live")).build();
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  auto waker = std::make_shared<Waker>(true);
  ck_assert_int_ge(waker->fd(), 0);
  auto sub = stream->subscribe({StartAt::Now, {}, false});
  sub.watch(waker);
  auto readable = [&] {
    pollfd p{waker->fd(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  };
  ck_assert(!readable());
  stream->publish_frame(testing::video(0, true));
  ck_assert(readable());
  waker->reset();
  ck_assert(!readable());
}
END_TEST

// One dispatcher thread serves 64 subscriptions of two streams: every frame is
// delivered or counted as skipped, and every subscription sees the end.
START_TEST(one_dispatcher_thread_serves_many_subscriptions_without_losing_a_frame) {
  constexpr int kFrames = 20000;
  constexpr int kSubs = 64;
  auto engine = Engine::builder().application(AppSpec("live").gop_cache(256).ring(512)).build();
  const StreamKey keys[] = {StreamKey::parse("live/a"), StreamKey::parse("live/b")};
  arcly::StreamHandle streams[] = {engine->start_publish(keys[0]), engine->start_publish(keys[1])};
  auto waker = std::make_shared<Waker>();
  std::vector<arcly::Subscription> subs;
  for (int i = 0; i < kSubs; ++i) {
    subs.push_back(streams[i % 2]->subscribe({StartAt::Now, {}, false}));
    subs.back().watch(waker);
  }
  std::vector<std::uint64_t> got(kSubs), skipped(kSubs), expect(kSubs);
  std::string failure;
  std::jthread dispatcher([&] {
    int open = kSubs;
    std::vector<bool> closed(kSubs);
    while (open > 0) {
      waker->reset();
      for (int i = 0; i < kSubs; ++i) {
        if (closed[i]) continue;
        for (;;) {
          auto r = subs[i].try_recv();
          if (r.status == RecvStatus::Frame) {
            if (r.frame.position() != expect[i]) failure = "a frame out of order";
            expect[i] = r.frame.position() + 1;
            ++got[i];
          } else if (r.status == RecvStatus::Lagged) {
            skipped[i] += r.skipped;
            expect[i] += r.skipped;
          } else {
            if (r.status == RecvStatus::Closed) {
              closed[i] = true;
              --open;
            }
            break;
          }
        }
      }
      if (open > 0) waker->wait();
    }
  });
  for (int i = 0; i < kFrames; ++i) {
    streams[0]->publish_frame(testing::video(i, i % 30 == 0));
    streams[1]->publish_frame(testing::video(i, i % 30 == 0));
  }
  engine->end_publish(keys[0]);
  engine->end_publish(keys[1]);
  dispatcher.join();  // would hang if a notification were lost
  ck_assert_msg(failure.empty(), "%s", failure.c_str());
  for (int i = 0; i < kSubs; ++i) ck_assert_uint_eq(got[i] + skipped[i], kFrames);
}
END_TEST

START_TEST(waker_wait_honours_deadline_and_stop) {
  Waker waker;
  ck_assert(!waker.wait(std::chrono::steady_clock::now() + 10ms));
  std::stop_source stop;
  std::jthread t([&] { stop.request_stop(); });
  ck_assert(!waker.wait(std::chrono::steady_clock::time_point::max(), stop.get_token()));
  std::jthread n([&] { waker.notify(); });
  ck_assert(waker.wait());
}
END_TEST

int main() {
  return testing::run_suite(
      "readiness",
      {a_publish_notifies_each_watching_waker_once, the_end_of_a_stream_notifies_its_wakers,
       an_eventfd_waker_is_readable_while_notified,
       one_dispatcher_thread_serves_many_subscriptions_without_losing_a_frame,
       waker_wait_honours_deadline_and_stop});
}
