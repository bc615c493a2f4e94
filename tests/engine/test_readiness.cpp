// Readiness: one thread serves many subscriptions; a publish notifies each
// watching Waker once, however many subscriptions it watches.
#include <poll.h>

#include <stdexcept>
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

// What a try_recv reader and a try_drain reader of the same stream see, as text.
std::string describe(RecvStatus status, const arcly::FrameRef& frame, std::uint64_t skipped,
                     bool discont) {
  std::string d = std::to_string(static_cast<int>(status));
  if (frame) d += " " + testing::text(frame) + "@" + std::to_string(frame.position());
  return d + " skipped=" + std::to_string(skipped) + (discont ? " discont" : "") + "\n";
}

std::string read_with_try_recv(arcly::Subscription& s, std::size_t max = 1000000) {
  std::string out;
  for (std::size_t n = 0; n < max; ++n) {
    auto r = s.try_recv();
    if (r.status != RecvStatus::Frame && r.status != RecvStatus::Lagged) {
      return out + "end " + std::to_string(static_cast<int>(r.status)) + "\n";
    }
    out += describe(r.status, r.frame, r.skipped, r.discont);
  }
  return out + "end max\n";
}

std::string read_with_try_drain(arcly::Subscription& s, std::size_t max = 1000000) {
  std::string out;
  const RecvStatus end = s.try_drain(
      [&](const arcly::Drained& d) {
        out += describe(d.status, d.frame.ref(), d.skipped, d.discont);
      },
      max);
  return out + (end == RecvStatus::Frame ? std::string("end max\n")
                                         : "end " + std::to_string(static_cast<int>(end)) + "\n");
}

// Every start mode, strict and resilient, through configs on two tracks, a lag
// with and without a usable anchor, a config change inside the lag, and the end:
// try_drain hands over exactly what try_recv returns, and counts the same.
START_TEST(try_drain_delivers_what_try_recv_delivers_under_lag_and_close) {
  auto engine = Engine::builder().application(AppSpec("live").gop_cache(4).ring(16)).build();
  auto key = StreamKey::parse("live/cam");
  auto stream = engine->start_publish(key);
  const arcly::SubscribeOptions modes[] = {
      {StartAt::Keyframe, {}, false},     {StartAt::Keyframe, {}, true},
      {StartAt::NextKeyframe, {}, false}, {StartAt::NextKeyframe, {}, true},
      {StartAt::Now, {}, false},          {StartAt::Now, {}, true}};
  stream->publish_frame(testing::config(0, "sps-a"));
  stream->publish_frame(testing::config(1, "aac-a", arcly::MediaKind::Audio));
  stream->publish_frame(testing::video(0, true));
  stream->publish_frame(testing::audio(1));
  std::vector<arcly::Subscription> by_recv, by_drain;
  for (const auto& m : modes) {
    by_recv.push_back(stream->subscribe(m));
    by_drain.push_back(stream->subscribe(m));
  }
  std::uint64_t seq = 2;
  auto publish_run = [&](int frames, int key_every) {
    for (int i = 0; i < frames; ++i, ++seq) {
      stream->publish_frame(seq % 3 == 0 ? testing::audio(seq)
                                         : testing::video(seq, key_every && i % key_every == 0));
    }
  };
  std::vector<std::string> seen_recv(std::size(modes)), seen_drain(std::size(modes));
  auto read_all = [&](std::size_t max) {
    for (std::size_t i = 0; i < std::size(modes); ++i) {
      seen_recv[i] += read_with_try_recv(by_recv[i], max);
      seen_drain[i] += read_with_try_drain(by_drain[i], max);
    }
  };
  publish_run(5, 0);
  read_all(3);  // stop part-way (max)
  read_all(1000);
  publish_run(12, 0);                                  // no anchor in the ring: lag without one
  stream->publish_frame(testing::config(0, "sps-b"));  // a config change inside the lag
  publish_run(12, 0);
  read_all(1000);
  publish_run(6, 5);  // keyframes come back
  read_all(1000);
  publish_run(40, 7);  // lag with an anchor in the cache
  read_all(2);
  read_all(1000);
  publish_run(3, 0);
  engine->end_publish(key);
  read_all(1000);
  read_all(1000);  // Closed forever after
  for (std::size_t i = 0; i < std::size(modes); ++i) {
    ck_assert_msg(seen_recv[i] == seen_drain[i], "mode %zu: try_recv saw\n%s\ntry_drain saw\n%s", i,
                  seen_recv[i].c_str(), seen_drain[i].c_str());
    ck_assert_uint_eq(by_recv[i].delivered(), by_drain[i].delivered());
    ck_assert_uint_eq(by_recv[i].dropped(), by_drain[i].dropped());
  }
  // The scenario did exercise lag (status 1) and the end (status 3) in every mode.
  for (const auto& s : seen_drain) {
    ck_assert(s.find("\n1 skipped=") != std::string::npos ||
              s.find(" discont") != std::string::npos);
    ck_assert(s.find("end 3") != std::string::npos);
  }
}
END_TEST

// A callback that throws: what it was handed counts as delivered, the frame
// after it comes next, and no frame stays pinned by the subscriber's hazard.
START_TEST(try_drain_survives_a_throwing_callback) {
  auto engine = Engine::builder().application(AppSpec("live").gop_cache(4).ring(16)).build();
  auto stream = engine->start_publish(StreamKey::parse("live/cam"));
  auto sub = stream->subscribe({StartAt::Now, {}, false});
  stream->publish_frame(testing::video(0, true));
  stream->publish_frame(testing::video(1, false));
  bool thrown = false;
  try {
    sub.try_drain([](const arcly::Drained&) { throw std::runtime_error("consumer failed"); });
  } catch (const std::runtime_error&) {
    thrown = true;
  }
  ck_assert(thrown);
  ck_assert_uint_eq(sub.delivered(), 1);
  ck_assert_text(testing::text(sub.try_recv().frame), "frame-1");
  // Overwrite the ring many times: frame 0 must be freed (nothing pins it).
  for (int i = 2; i < 2000; ++i) stream->publish_frame(testing::video(i, false));
  ck_assert_uint_lt(stream->bus().bytes_retired(), 256 * 1024);
}
END_TEST

// One dispatcher drains many subscriptions while two publishers run: every frame
// is delivered in order with its own payload (read inside the callback, so a
// freed node shows under ASan/TSan) or counted as skipped, and all see the end.
START_TEST(a_draining_dispatcher_loses_no_frame_under_concurrent_publish) {
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
        const RecvStatus end = subs[i].try_drain([&](const arcly::Drained& d) {
          if (d.status == RecvStatus::Lagged) {
            skipped[i] += d.skipped;
            expect[i] += d.skipped;
            return;
          }
          if (d.frame.position() != expect[i]) failure = "a frame out of order";
          if (d.frame->payload.view() != "frame-" + std::to_string(d.frame.position())) {
            failure = "a frame with another frame's payload";
          }
          expect[i] = d.frame.position() + 1;
          ++got[i];
        });
        if (end == RecvStatus::Closed) {
          closed[i] = true;
          --open;
        }
      }
      if (open > 0) waker->wait();
    }
  });
  std::jthread second([&] {
    for (int i = 0; i < kFrames; ++i) streams[1]->publish_frame(testing::video(i, i % 30 == 0));
    engine->end_publish(keys[1]);
  });
  for (int i = 0; i < kFrames; ++i) streams[0]->publish_frame(testing::video(i, i % 30 == 0));
  engine->end_publish(keys[0]);
  second.join();
  dispatcher.join();  // would hang if a notification were lost
  ck_assert_msg(failure.empty(), "%s", failure.c_str());
  for (int i = 0; i < kSubs; ++i) {
    ck_assert_uint_eq(got[i] + skipped[i], kFrames);
    ck_assert_uint_eq(subs[i].delivered(), got[i]);
  }
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
       waker_wait_honours_deadline_and_stop,
       try_drain_delivers_what_try_recv_delivers_under_lag_and_close,
       try_drain_survives_a_throwing_callback,
       a_draining_dispatcher_loses_no_frame_under_concurrent_publish});
}
