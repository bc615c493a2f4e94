// bus-bench: arcly's lock-free bus against a baseline fan-out made of one
// std::mutex + std::condition_variable + std::deque per subscriber.
//
// For 1, 16 and 256 subscribers, one publisher pushes frames flat out to both
// designs with the same capacity (1024 frames per subscriber; the baseline drops
// the oldest frame of a full queue, as the bus does). Reported per run: frames
// delivered per second summed over subscribers (drops reported, never counted as
// delivered), CPU nanoseconds spent per delivered frame, and the drop share.
// Each figure is the median of 3 runs (scheduling on 2 cores makes single runs
// noisy). The last line is the ratio at 16 subscribers.
//
// Then, in the same run (issue 9), the scale figures:
// * Paced fan-out: 30 fps video + 47 fps audio published in real time to 1, 100,
//   1 000 and 10 000 subscribers served by 2 dispatcher threads (one per core)
//   through the readiness interface (Subscription::watch + Waker, try_recv), and
//   by the baseline (a mutex + deque per subscriber, the same 2 dispatcher
//   threads woken through a mutex + condition variable each). Reported: process
//   CPU-ns per delivered subscriber-frame and the publisher thread's CPU-ns per
//   publish.
// * Memory: the resident bytes per stream of 10 000 idle streams (published,
//   one config and two frames each, default application settings).
//
// Usage: bus-bench [frames-per-run] [paced-seconds]
//        (defaults 200000, a tenth at 256 subscribers; 3 s per paced run)
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "arcly/arcly.hpp"

namespace {

constexpr std::size_t kCapacity = 1024;

struct Result {
  double delivered_per_s = 0;
  double cpu_ns_per_delivered = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dropped = 0;
};

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto tv = [](timeval t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(u.ru_utime) + tv(u.ru_stime);
}

arcly::MediaFrame make_frame(std::uint64_t i, const arcly::Bytes& payload) {
  auto f = arcly::MediaFrame::video(static_cast<std::int64_t>(i) * 33'000'000, std::nullopt,
                                    payload, arcly::CodecId::H264, i % 60 == 0);
  return f;
}

template <class Run>
Result measure(Run&& run) {
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  Result r = run();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  r.delivered_per_s = static_cast<double>(r.delivered) / wall;
  r.cpu_ns_per_delivered = r.delivered ? cpu * 1e9 / static_cast<double>(r.delivered) : 0;
  return r;
}

Result run_bus(int subscribers, std::uint64_t frames, const arcly::Bytes& payload) {
  auto engine = arcly::Engine::builder()
                    .application(arcly::AppSpec("bench").gop_cache(kCapacity / 2).ring(kCapacity))
                    .build();
  auto key = arcly::StreamKey::parse("bench/bus");
  auto stream = engine->start_publish(key);
  std::vector<std::uint64_t> delivered(static_cast<std::size_t>(subscribers));
  std::vector<std::uint64_t> dropped(static_cast<std::size_t>(subscribers));
  std::atomic<int> ready{0};
  std::vector<std::jthread> threads;
  for (int s = 0; s < subscribers; ++s) {
    threads.emplace_back([&, s] {
      auto sub = stream->subscribe({arcly::StartAt::Now, {}, false});
      ready.fetch_add(1);
      std::uint64_t n = 0, d = 0;
      for (;;) {
        auto r = sub.recv();
        if (r.status == arcly::RecvStatus::Frame) {
          ++n;
        } else if (r.status == arcly::RecvStatus::Lagged) {
          d += r.skipped;
        } else {
          break;
        }
      }
      delivered[static_cast<std::size_t>(s)] = n;
      dropped[static_cast<std::size_t>(s)] = d;
    });
  }
  while (ready.load() < subscribers) std::this_thread::yield();
  return measure([&] {
    for (std::uint64_t i = 0; i < frames; ++i) stream->publish_frame(make_frame(i, payload));
    engine->end_publish(key);
    threads.clear();
    Result r;
    for (int s = 0; s < subscribers; ++s) {
      r.delivered += delivered[static_cast<std::size_t>(s)];
      r.dropped += dropped[static_cast<std::size_t>(s)];
    }
    return r;
  });
}

// The baseline: what a straightforward fan-out looks like.
struct MutexQueue {
  std::mutex m;
  std::condition_variable cv;
  std::deque<std::shared_ptr<const arcly::MediaFrame>> q;
  bool closed = false;
  std::uint64_t dropped = 0;
};

Result run_baseline(int subscribers, std::uint64_t frames, const arcly::Bytes& payload) {
  std::vector<std::unique_ptr<MutexQueue>> queues;
  for (int s = 0; s < subscribers; ++s) queues.push_back(std::make_unique<MutexQueue>());
  std::vector<std::uint64_t> delivered(static_cast<std::size_t>(subscribers));
  std::vector<std::jthread> threads;
  for (int s = 0; s < subscribers; ++s) {
    threads.emplace_back([&, s] {
      MutexQueue& mq = *queues[static_cast<std::size_t>(s)];
      std::uint64_t n = 0;
      for (;;) {
        std::unique_lock lock(mq.m);
        mq.cv.wait(lock, [&] { return !mq.q.empty() || mq.closed; });
        if (mq.q.empty()) break;
        auto f = std::move(mq.q.front());
        mq.q.pop_front();
        lock.unlock();
        ++n;
      }
      delivered[static_cast<std::size_t>(s)] = n;
    });
  }
  return measure([&] {
    for (std::uint64_t i = 0; i < frames; ++i) {
      auto f = std::make_shared<const arcly::MediaFrame>(make_frame(i, payload));
      for (auto& mq : queues) {
        {
          std::lock_guard lock(mq->m);
          if (mq->q.size() >= kCapacity) {
            mq->q.pop_front();
            ++mq->dropped;
          }
          mq->q.push_back(f);
        }
        mq->cv.notify_one();
      }
    }
    for (auto& mq : queues) {
      {
        std::lock_guard lock(mq->m);
        mq->closed = true;
      }
      mq->cv.notify_one();
    }
    threads.clear();
    Result r;
    for (int s = 0; s < subscribers; ++s) {
      r.delivered += delivered[static_cast<std::size_t>(s)];
      r.dropped += queues[static_cast<std::size_t>(s)]->dropped;
    }
    return r;
  });
}

void print(const char* name, int subs, std::uint64_t frames, const Result& r) {
  const double offered = static_cast<double>(frames) * subs;
  std::printf("  %-9s %4d subs: %12.0f frames/s delivered, %8.1f CPU-ns/frame, %5.1f%% dropped\n",
              name, subs, r.delivered_per_s, r.cpu_ns_per_delivered,
              100.0 * static_cast<double>(r.dropped) / offered);
}

// ---- Paced fan-out through the readiness interface (issue 9) ----

// One dispatcher thread per core by default; ARCLY_BENCH_DISPATCHERS overrides.
const int kDispatchers = [] {
  const char* v = std::getenv("ARCLY_BENCH_DISPATCHERS");
  return v ? std::max(1, std::atoi(v)) : 2;
}();

struct PacedResult {
  double cpu_ns_per_subscriber_frame = 0;
  double publisher_ns_per_publish = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dropped = 0;
  std::uint64_t publishes = 0;
};

double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// Publishes 30 fps video and 47 fps audio in real time for `seconds`, calling
// `publish(frame)` and timing each call on the publisher thread's CPU clock.
template <class Publish>
void publish_paced(double seconds, const arcly::Bytes& video, const arcly::Bytes& audio,
                   PacedResult& out, Publish&& publish) {
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto end =
      start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds));
  const auto video_period = std::chrono::nanoseconds(1'000'000'000 / 30);
  const auto audio_period = std::chrono::nanoseconds(1'000'000'000 / 47);
  auto next_video = start, next_audio = start;
  std::uint64_t v = 0, a = 0;
  double cpu = 0;
  for (;;) {
    const bool video_next = next_video <= next_audio;
    const auto due = video_next ? next_video : next_audio;
    if (due >= end) break;
    std::this_thread::sleep_until(due);
    arcly::MediaFrame f =
        video_next
            ? arcly::MediaFrame::video(static_cast<std::int64_t>(v) * 33'333'333, std::nullopt,
                                       video, arcly::CodecId::H264, v % 60 == 0, 0)
            : arcly::MediaFrame::audio(static_cast<std::int64_t>(a) * 21'276'595, audio,
                                       arcly::CodecId::AAC, 1);
    const double c0 = thread_cpu_ns();
    publish(std::move(f));
    cpu += thread_cpu_ns() - c0;
    ++out.publishes;
    if (video_next) {
      ++v;
      next_video += video_period;
    } else {
      ++a;
      next_audio += audio_period;
    }
  }
  out.publisher_ns_per_publish = cpu / static_cast<double>(out.publishes);
}

// `drain`: the dispatcher reads with try_drain (borrowed frames), as a consumer
// that copies or forwards each frame at once would (a socket write); otherwise
// with try_recv (a reference per frame), as one that keeps frames would.
PacedResult run_paced_bus(int subscribers, double seconds, const arcly::Bytes& video,
                          const arcly::Bytes& audio, bool drain) {
  auto engine = arcly::Engine::builder().application(arcly::AppSpec("bench")).build();
  auto key = arcly::StreamKey::parse("bench/paced");
  auto stream = engine->start_publish(key);
  std::vector<std::shared_ptr<arcly::Waker>> wakers;
  std::vector<std::vector<arcly::Subscription>> shards(kDispatchers);
  for (int d = 0; d < kDispatchers; ++d) wakers.push_back(std::make_shared<arcly::Waker>());
  for (int s = 0; s < subscribers; ++s) {
    auto& shard = shards[static_cast<std::size_t>(s % kDispatchers)];
    shard.push_back(stream->subscribe({arcly::StartAt::Now, {}, false}));
    shard.back().watch(wakers[static_cast<std::size_t>(s % kDispatchers)]);
  }
  std::vector<std::uint64_t> delivered(kDispatchers), dropped(kDispatchers);
  std::vector<std::jthread> threads;
  PacedResult out;
  const double cpu0 = cpu_seconds();
  for (int d = 0; d < kDispatchers; ++d) {
    threads.emplace_back([&, d] {
      auto& subs = shards[static_cast<std::size_t>(d)];
      arcly::Waker& waker = *wakers[static_cast<std::size_t>(d)];
      std::uint64_t n = 0, dr = 0;
      std::size_t open = subs.size();
      std::vector<bool> closed(subs.size());
      while (open > 0) {
        waker.reset();
        for (std::size_t i = 0; i < subs.size(); ++i) {
          if (closed[i]) continue;
          if (drain) {
            const auto end = subs[i].try_drain([&](const arcly::Drained& r) {
              if (r.status == arcly::RecvStatus::Frame) {
                ++n;
              } else {
                dr += r.skipped;
              }
            });
            if (end == arcly::RecvStatus::Closed) {
              closed[i] = true;
              --open;
            }
            continue;
          }
          for (;;) {
            auto r = subs[i].try_recv();
            if (r.status == arcly::RecvStatus::Frame) {
              ++n;
            } else if (r.status == arcly::RecvStatus::Lagged) {
              dr += r.skipped;
            } else {
              if (r.status == arcly::RecvStatus::Closed) {
                closed[i] = true;
                --open;
              }
              break;
            }
          }
        }
        if (open > 0) waker.wait();
      }
      delivered[static_cast<std::size_t>(d)] = n;
      dropped[static_cast<std::size_t>(d)] = dr;
    });
  }
  publish_paced(seconds, video, audio, out,
                [&](arcly::MediaFrame f) { stream->publish_frame(std::move(f)); });
  engine->end_publish(key);
  threads.clear();
  const double cpu = cpu_seconds() - cpu0;
  for (int d = 0; d < kDispatchers; ++d) {
    out.delivered += delivered[static_cast<std::size_t>(d)];
    out.dropped += dropped[static_cast<std::size_t>(d)];
  }
  out.cpu_ns_per_subscriber_frame = cpu * 1e9 / static_cast<double>(out.delivered);
  return out;
}

// The baseline: a mutex + deque per subscriber; each dispatcher sleeps on its
// own mutex + condition variable, which the publisher signals after pushing.
PacedResult run_paced_baseline(int subscribers, double seconds, const arcly::Bytes& video,
                               const arcly::Bytes& audio) {
  struct Queue {
    std::mutex m;
    std::deque<std::shared_ptr<const arcly::MediaFrame>> q;
    std::uint64_t dropped = 0;
  };
  struct Dispatcher {
    std::mutex m;
    std::condition_variable cv;
    bool signalled = false;
    bool closed = false;
  };
  std::vector<std::unique_ptr<Queue>> queues;
  for (int s = 0; s < subscribers; ++s) queues.push_back(std::make_unique<Queue>());
  std::vector<std::unique_ptr<Dispatcher>> dispatchers;
  for (int d = 0; d < kDispatchers; ++d) dispatchers.push_back(std::make_unique<Dispatcher>());
  std::vector<std::uint64_t> delivered(kDispatchers);
  std::vector<std::jthread> threads;
  PacedResult out;
  const double cpu0 = cpu_seconds();
  for (int d = 0; d < kDispatchers; ++d) {
    threads.emplace_back([&, d] {
      Dispatcher& me = *dispatchers[static_cast<std::size_t>(d)];
      std::uint64_t n = 0;
      for (;;) {
        bool closing;
        {
          std::unique_lock lock(me.m);
          me.cv.wait(lock, [&] { return me.signalled || me.closed; });
          me.signalled = false;
          closing = me.closed;
        }
        for (std::size_t i = static_cast<std::size_t>(d); i < queues.size(); i += kDispatchers) {
          Queue& q = *queues[i];
          std::lock_guard lock(q.m);
          while (!q.q.empty()) {
            q.q.pop_front();
            ++n;
          }
        }
        if (closing) break;
      }
      delivered[static_cast<std::size_t>(d)] = n;
    });
  }
  publish_paced(seconds, video, audio, out, [&](arcly::MediaFrame f) {
    auto shared = std::make_shared<const arcly::MediaFrame>(std::move(f));
    for (auto& q : queues) {
      std::lock_guard lock(q->m);
      if (q->q.size() >= kCapacity) {
        q->q.pop_front();
        ++q->dropped;
      }
      q->q.push_back(shared);
    }
    for (auto& d : dispatchers) {
      {
        std::lock_guard lock(d->m);
        d->signalled = true;
      }
      d->cv.notify_one();
    }
  });
  for (auto& d : dispatchers) {
    {
      std::lock_guard lock(d->m);
      d->closed = true;
    }
    d->cv.notify_one();
  }
  threads.clear();
  const double cpu = cpu_seconds() - cpu0;
  for (int d = 0; d < kDispatchers; ++d) out.delivered += delivered[static_cast<std::size_t>(d)];
  for (auto& q : queues) out.dropped += q->dropped;
  out.cpu_ns_per_subscriber_frame = cpu * 1e9 / static_cast<double>(out.delivered);
  return out;
}

void print_paced(const char* name, int subs, const PacedResult& r) {
  const double offered = static_cast<double>(r.publishes) * subs;
  std::printf(
      "  %-9s %5d subs: %7.1f CPU-ns per subscriber-frame, publisher %8.0f CPU-ns per publish, "
      "%llu delivered, %.1f%% dropped\n",
      name, subs, r.cpu_ns_per_subscriber_frame, r.publisher_ns_per_publish,
      static_cast<unsigned long long>(r.delivered),
      100.0 * static_cast<double>(r.dropped) / offered);
}

// ---- Memory of idle streams (issue 9) ----

std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

double idle_stream_bytes(int streams) {
  auto engine = arcly::Engine::builder().accept_any_application().build();
  const auto config = arcly::Bytes::from_static("sps");
  const auto payload = arcly::Bytes::from_static("frame");
  std::vector<arcly::StreamHandle> handles;
  handles.reserve(static_cast<std::size_t>(streams));
  const std::size_t before = resident_bytes();
  for (int i = 0; i < streams; ++i) {
    auto s = engine->start_publish(arcly::StreamKey("live", "s" + std::to_string(i)));
    s->publish_frame(
        arcly::MediaFrame::config(arcly::MediaKind::Video, arcly::CodecId::H264, 0, config));
    s->publish_frame(
        arcly::MediaFrame::video(0, std::nullopt, payload, arcly::CodecId::H264, true));
    s->publish_frame(
        arcly::MediaFrame::video(33'333'333, std::nullopt, payload, arcly::CodecId::H264, false));
    handles.push_back(std::move(s));
  }
  const std::size_t after = resident_bytes();
  return static_cast<double>(after - before) / streams;
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t frames = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200'000;
  const double paced_seconds = argc > 2 ? std::strtod(argv[2], nullptr) : 3.0;
  const auto payload = arcly::Bytes::from_vector(std::vector<std::uint8_t>(16 * 1024, 0x42));
  std::printf("bus-bench: %llu frames per run, capacity %zu, %u hardware threads\n",
              static_cast<unsigned long long>(frames), kCapacity,
              std::thread::hardware_concurrency());
  double ratio16 = 0;
  auto median = [](std::vector<Result> runs) {
    std::sort(runs.begin(), runs.end(), [](const Result& a, const Result& b) {
      return a.delivered_per_s < b.delivered_per_s;
    });
    return runs[runs.size() / 2];
  };
  for (int subs : {1, 16, 256}) {
    const std::uint64_t n = subs == 256 ? frames / 10 : frames;
    std::vector<Result> bus_runs, base_runs;
    for (int rep = 0; rep < 3; ++rep) {
      bus_runs.push_back(run_bus(subs, n, payload));
      base_runs.push_back(run_baseline(subs, n, payload));
    }
    Result bus = median(bus_runs);
    Result base = median(base_runs);
    print("arcly-bus", subs, n, bus);
    print("mutex+cv", subs, n, base);
    const double ratio = bus.delivered_per_s / base.delivered_per_s;
    std::printf("  ratio at %d subscribers: %.2f\n", subs, ratio);
    if (subs == 16) ratio16 = ratio;
  }

  std::printf("paced 30 fps video + 47 fps audio, %.1f s per run, %d dispatcher threads:\n",
              paced_seconds, kDispatchers);
  const auto video = arcly::Bytes::from_vector(std::vector<std::uint8_t>(16 * 1024, 0x42));
  const auto audio = arcly::Bytes::from_vector(std::vector<std::uint8_t>(300, 0x41));
  std::printf(
      "  (readiness: try_recv, a reference per frame; +drain: try_drain, borrowed frames)\n");
  double pub_1 = 0, pub_10k = 0, sub_10k = 0, drain_10k = 0;
  for (int subs : {1, 100, 1000, 10000}) {
    PacedResult bus = run_paced_bus(subs, paced_seconds, video, audio, false);
    PacedResult drained = run_paced_bus(subs, paced_seconds, video, audio, true);
    PacedResult base = run_paced_baseline(subs, paced_seconds, video, audio);
    print_paced("readiness", subs, bus);
    print_paced("+drain", subs, drained);
    print_paced("mutex+cv", subs, base);
    if (subs == 1) pub_1 = bus.publisher_ns_per_publish;
    if (subs == 10000) {
      pub_10k = bus.publisher_ns_per_publish;
      sub_10k = bus.cpu_ns_per_subscriber_frame;
      drain_10k = drained.cpu_ns_per_subscriber_frame;
    }
  }
  std::printf(
      "  at 10000 subscribers: %.1f CPU-ns per subscriber-frame with try_drain, %.1f with "
      "try_recv (target <= 100); publisher cost 10000 vs 1 subscriber: %.2fx (target <= 2)\n",
      drain_10k, sub_10k, pub_10k / pub_1);
  const double per_stream = idle_stream_bytes(10000);
  std::printf("memory: %.0f resident bytes per idle stream over 10000 streams (target <= 16384)\n",
              per_stream);
  std::printf("bus-vs-mutex ratio at 16 subscribers: %.2f\n", ratio16);
  return 0;
}
