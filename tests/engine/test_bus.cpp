// Bus: order, exact lag counts, close-then-drain, waking, trimming, reclamation.
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "check_main.hpp"

using namespace std::chrono_literals;
using arcly::Bus;
using arcly::FrameRef;

namespace {
struct Reader {
  Bus& bus;
  Bus::Hazard* hazard;
  std::uint64_t cursor = 0;
  explicit Reader(Bus& b, std::uint64_t from = 0)
      : bus(b), hazard(b.acquire_hazard()), cursor(from) {}
  ~Reader() { bus.release_hazard(hazard); }
  Bus::Read read(FrameRef& f, std::uint64_t& skipped) {
    return bus.try_read(*hazard, cursor, f, skipped);
  }
};
}  // namespace

START_TEST(frames_arrive_in_order_and_shared) {
  Bus bus(16);
  Reader r(bus);
  FrameRef mine = bus.publish(testing::video(0, true));
  bus.publish(testing::video(1, false));
  FrameRef f;
  std::uint64_t skipped = 0;
  ck_assert(r.read(f, skipped) == Bus::Read::Frame);
  ck_assert_ptr_eq(f.id(), mine.id());  // the same node, not a copy
  ck_assert_uint_eq(f.position(), 0);
  ck_assert(r.read(f, skipped) == Bus::Read::Frame);
  ck_assert_text(testing::text(f), "frame-1");
  ck_assert(r.read(f, skipped) == Bus::Read::Empty);
}
END_TEST

START_TEST(a_lagging_reader_learns_exactly_how_many_it_missed) {
  Bus bus(16);
  Reader r(bus);
  for (int i = 0; i < 40; ++i) bus.publish(testing::video(i, false));
  FrameRef f;
  std::uint64_t skipped = 0;
  ck_assert(r.read(f, skipped) == Bus::Read::Lagged);
  ck_assert_uint_eq(skipped, 40 - 16);
  ck_assert(r.read(f, skipped) == Bus::Read::Frame);
  ck_assert_uint_eq(f.position(), 24);
  std::uint64_t n = 1;
  while (r.read(f, skipped) == Bus::Read::Frame) ++n;
  ck_assert_uint_eq(n, 16);  // 24 skipped + 16 read = 40: nothing lost silently
}
END_TEST

START_TEST(close_lets_readers_drain_then_reports_closed) {
  Bus bus(16);
  Reader r(bus);
  bus.publish(testing::video(0, true));
  bus.publish(testing::video(1, false));
  bus.close();
  ck_assert_throws_code(bus.publish(testing::video(2, false)), arcly::Errc::StreamClosed, "ended");
  FrameRef f;
  std::uint64_t skipped = 0;
  ck_assert(r.read(f, skipped) == Bus::Read::Frame);
  ck_assert(r.read(f, skipped) == Bus::Read::Frame);
  ck_assert(r.read(f, skipped) == Bus::Read::Closed);
  ck_assert(r.read(f, skipped) == Bus::Read::Closed);
}
END_TEST

START_TEST(wait_wakes_on_publish_close_timeout_and_stop) {
  Bus bus(16);
  // Timeout: nothing comes.
  ck_assert(!bus.wait(0, std::chrono::steady_clock::now() + 20ms, {}));
  // Stop: a stop request wakes a sleeper with no deadline.
  std::stop_source stop;
  std::thread stopper([&] { stop.request_stop(); });
  ck_assert(!bus.wait(0, std::chrono::steady_clock::time_point::max(), stop.get_token()));
  stopper.join();
  // Publish wakes.
  std::thread pub([&] { bus.publish(testing::video(0, true)); });
  ck_assert(bus.wait(0, std::chrono::steady_clock::time_point::max(), {}));
  pub.join();
  // Close wakes.
  std::thread closer([&] { bus.close(); });
  ck_assert(bus.wait(1, std::chrono::steady_clock::time_point::max(), {}));
  closer.join();
  ck_assert(bus.closed());
}
END_TEST

START_TEST(the_byte_bound_trims_oldest_frames_and_readers_see_the_lag) {
  Bus bus(64, 10 * 7);  // each payload "frame-N" is 7 bytes for N < 10
  Reader r(bus);
  for (int i = 0; i < 10; ++i) bus.publish(testing::video(i, false));
  ck_assert_uint_le(bus.bytes_held(), 70);
  bus.publish(testing::video(1, false));  // "frame-1": 7 more bytes -> trim one
  ck_assert_uint_le(bus.bytes_held(), 70);
  ck_assert_uint_eq(bus.oldest(), 1);
  FrameRef f;
  std::uint64_t skipped = 0;
  ck_assert(r.read(f, skipped) == Bus::Read::Lagged);
  ck_assert_uint_eq(skipped, 1);
  ck_assert(r.read(f, skipped) == Bus::Read::Frame);
  ck_assert_uint_eq(f.position(), 1);
}
END_TEST

START_TEST(every_payload_is_released_once_the_ring_and_readers_let_go) {
  testing::ReleaseCounter rc;
  FrameRef kept;
  {
    Bus bus(16);
    Reader r(bus);
    for (int i = 0; i < 1000; ++i) {
      auto f = testing::video(i, i % 30 == 0);
      f.payload = rc.wrap("x");
      bus.publish(std::move(f));
      if (i == 500) {
        std::uint64_t skipped = 0;
        r.cursor = 500;
        ck_assert(r.read(kept, skipped) == Bus::Read::Frame);
      }
    }
    // Overwritten frames were reclaimed along the way (not all kept until the end).
    ck_assert_int_ge(rc.released.load(), 1000 - 16 - 2 * 64 - 1);
  }
  ck_assert_int_eq(rc.released.load(), 999);  // all but the one a subscriber still holds
  ck_assert_uint_eq(kept.position(), 500);
  kept = FrameRef();
  ck_assert_int_eq(rc.released.load(), 1000);
}
END_TEST

START_TEST(hazards_are_recycled) {
  Bus bus(16);
  auto* a = bus.acquire_hazard();
  bus.release_hazard(a);
  auto* b = bus.acquire_hazard();
  ck_assert_ptr_eq(a, b);
  bus.release_hazard(b);
}
END_TEST

namespace {
struct PayloadCounter {
  std::atomic<std::uint64_t> released{0};
  static void release(void* self) {
    static_cast<PayloadCounter*>(self)->released.fetch_add(1, std::memory_order_relaxed);
  }
};
}  // namespace

// Issue 9, defect 2: what is retired but not yet freed is bounded by bytes (not
// only by a count that grows with the number of hazards) and it is accounted.
START_TEST(retired_payloads_are_bounded_by_bytes_and_accounted) {
  static const std::vector<std::uint8_t> big(16 * 1024, 0x42);
  PayloadCounter pc;
  {
    Bus bus(16, 16 * 1024);
    std::vector<Bus::Hazard*> idle;
    for (int i = 0; i < 1000; ++i) idle.push_back(bus.acquire_hazard());
    std::uint64_t most_alive = 0;
    for (std::uint64_t i = 0; i < 1900; ++i) {
      auto f = testing::video(i, i % 30 == 0);
      f.payload = arcly::Bytes::wrap(big.data(), big.size(), &PayloadCounter::release, &pc);
      bus.publish(std::move(f));
      const std::uint64_t alive = (i + 1) - pc.released.load();
      most_alive = std::max(most_alive, alive);
      ck_assert_uint_eq(alive * big.size(), bus.bytes_held() + bus.bytes_retired());
    }
    // The ring's bound plus the retired bound (the larger of max_bytes and 256 KiB).
    ck_assert_uint_le(most_alive * big.size(), 16 * 1024 + 256 * 1024 + 16 * 1024);
    for (auto* h : idle) bus.release_hazard(h);
  }
  ck_assert_uint_eq(pc.released.load(), 1900);
}
END_TEST

// Issue 9, defect 8: a close that races an in-flight publish leaves one final
// tail: every reader that sees Closed stopped at the same position, and no frame
// appears after any reader saw Closed.
START_TEST(close_racing_a_publish_gives_every_reader_the_same_last_frame) {
  for (int round = 0; round < 300; ++round) {
    Bus bus(16);
    constexpr int kReaders = 2;
    std::uint64_t closed_at[kReaders] = {};
    std::atomic<int> started{0};
    std::vector<std::thread> readers;
    for (int i = 0; i < kReaders; ++i) {
      readers.emplace_back([&, i] {
        Reader r(bus);
        started.fetch_add(1);
        FrameRef f;
        std::uint64_t skipped = 0;
        for (;;) {
          auto res = r.read(f, skipped);
          if (res == Bus::Read::Closed) break;
        }
        closed_at[i] = r.cursor;
      });
    }
    std::thread publisher([&] {
      try {
        for (std::uint64_t i = 0;; ++i) bus.publish(testing::video(i, false));
      } catch (const arcly::Error&) {
      }
    });
    while (started.load() < kReaders) std::this_thread::yield();
    std::atomic<int> spin{0};
    while (spin.fetch_add(1, std::memory_order_relaxed) < round * 37) {
    }
    bus.close();
    publisher.join();
    for (auto& t : readers) t.join();
    for (int i = 0; i < kReaders; ++i) {
      ck_assert_msg(closed_at[i] == bus.tail(), "round %d: reader %d saw Closed at %llu, tail %llu",
                    round, i, static_cast<unsigned long long>(closed_at[i]),
                    static_cast<unsigned long long>(bus.tail()));
    }
  }
}
END_TEST

// FrameRef::attach: of readers racing to attach, one wins and every reader
// gets the winner's; the losers' are freed at once, the winner's with the node.
namespace {
std::atomic<int> g_attachments{0};
struct Counted final : arcly::FrameAttachment {
  explicit Counted(int i) : id(i) { g_attachments.fetch_add(1); }
  ~Counted() override { g_attachments.fetch_sub(1); }
  int id;
};
}  // namespace

START_TEST(the_first_attachment_wins_and_lives_as_long_as_the_frame) {
  {
    Bus bus(16);
    FrameRef f = bus.publish(testing::video(0, true));
    ck_assert_ptr_null(f.attachment());
    constexpr int kThreads = 4;
    std::vector<const arcly::FrameAttachment*> got(kThreads);
    {
      std::vector<std::jthread> threads;
      for (int i = 0; i < kThreads; ++i)
        threads.emplace_back([&, i] { got[i] = f.attach(std::make_unique<Counted>(i)); });
    }
    for (int i = 0; i < kThreads; ++i) ck_assert_ptr_eq(got[i], got[0]);
    ck_assert_ptr_eq(f.attachment(), got[0]);
    ck_assert_int_eq(g_attachments.load(), 1);
  }
  ck_assert_int_eq(g_attachments.load(), 0);  // freed with the node
}
END_TEST

int main() {
  return testing::run_suite(
      "bus",
      {frames_arrive_in_order_and_shared, a_lagging_reader_learns_exactly_how_many_it_missed,
       close_lets_readers_drain_then_reports_closed, wait_wakes_on_publish_close_timeout_and_stop,
       the_byte_bound_trims_oldest_frames_and_readers_see_the_lag,
       every_payload_is_released_once_the_ring_and_readers_let_go, hazards_are_recycled,
       retired_payloads_are_bounded_by_bytes_and_accounted,
       close_racing_a_publish_gives_every_reader_the_same_last_frame,
       the_first_attachment_wins_and_lives_as_long_as_the_frame});
}
