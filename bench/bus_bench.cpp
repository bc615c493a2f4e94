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
// Usage: bus-bench [frames-per-run]   (default 200000; a tenth at 256 subscribers)
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
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

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t frames = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200'000;
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
  std::printf("bus-vs-mutex ratio at 16 subscribers: %.2f\n", ratio16);
  return 0;
}
