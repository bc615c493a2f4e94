// Engine time — what a publisher timestamp means, for every publisher.
//
// A frame's pts/dts are engine time: nanoseconds of CLOCK_MONOTONIC (the time
// GStreamer's system clock keeps by default; std::chrono::steady_clock) of the
// frame's timestamp in the publisher's pipeline (running time + base time) — its
// capture or arrival time, without the latency a sink would add to render it.
// Every publisher says the same:
// * arclysink: its buffers' clock time (running time + base time), translated
//   from its pipeline's clock through a ClockBridge;
// * the RTSP/SRT/any-source ingest workers: their pipeline's running time
//   placed on engine time at the attempt's start (the pipeline runs on the
//   system clock);
// * RTMP: the sender's timestamps placed on engine time at its first frame.
// So `engine_now() - pts` is how long ago a frame was captured (or arrived), for
// every stream, and two cameras line up by it. The `timestamp/x-arcly-publisher`
// meta carries it to subscribers.
//
// ClockBridge relates one GstClock to engine time while the two drift apart (an
// audio device's clock, a clock slaved to the network): offset = engine - clock.
// It is sampled at most every kSampleInterval; a sample replaces the offset only
// when it moved by more than kStep, so the reading's own jitter never reaches
// the timestamps. GStreamer's plain monotonic system clock (the default) is
// engine time itself: offset 0 exactly, never sampled.
//
// Threads: ClockBridge::offset() from any thread at once (arclysink's pads);
// relaxed atomics: the fields are independent numbers, and an offset one sample
// old is as good as a fresh one.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <cstdint>

namespace arcly::gst {

// CLOCK_MONOTONIC, ns.
std::int64_t engine_now();

// Whether `clock` keeps engine time exactly (a plain monotonic GstSystemClock,
// not calibrated).
bool is_engine_clock(GstClock* clock);

class ClockBridge {
 public:
  static constexpr std::int64_t kSampleInterval = 100 * GST_MSECOND;
  static constexpr std::int64_t kStep = 1 * GST_MSECOND;

  // engine time - `clock`'s time (ns), now. A clock other than the last one's
  // (compared by address, never dereferenced) starts over.
  std::int64_t offset(GstClock* clock);
  // Forget the clock (a new one, a new run).
  void reset();

 private:
  std::atomic<bool> have_{false};
  std::atomic<GstClock*> clock_{nullptr};
  std::atomic<std::int64_t> offset_{0};
  std::atomic<std::int64_t> next_sample_{0};  // engine time
};

}  // namespace arcly::gst
