// RecordingExport — one MP4 of recorded footage, made while it is being sent.
//
// splitmuxsrc reads the plan's segment files as one timeline (its format-location
// signal hands it the list); each elementary stream goes, through a parser where
// one is needed (TS segments carry byte-stream H.264 and ADTS AAC), into mp4mux —
// fragmented (fragment-duration) and streamable (no index at the end, nothing
// written twice) — and the bytes come out of an appsink. No decoder, no encoder.
//
// The range is a flushing seek on splitmuxsrc (KEY_UNIT|SNAP_BEFORE, start..stop):
// the file starts at the keyframe at or before `from`, on whatever segment that is.
// The seek can only be sent once splitmuxsrc has measured its parts and runs, and
// mp4mux must see no data before it (a muxer that wrote a header and then gets a
// flush writes a broken file). So each of splitmuxsrc's pads is blocked at its
// first buffer; once every pad is blocked and no more will come, the seek goes out
// from a GStreamer thread (gst_element_call_async). Its flush releases and drops the
// blocked buffers; from the flush on the pads pass what the seek delivers. Buffers
// past `stop` (a demuxer finishes the GOP it is in) are dropped.
//
// Flow: the appsink holds a few fragments at most (max-buffers, no drop), so a
// consumer that reads slowly slows the pipeline down instead of filling memory.
// The consumer is woken on `context` and calls take() until it has enough.
//
// Threads: start(), take(), finished(), error(), the destructor and the wake-up
// callback are all on the thread that runs `context`; streaming threads only wake it.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api.hpp"

namespace arcly::host::http {

class RecordingExport : public std::enable_shared_from_this<RecordingExport> {
 public:
  // Builds and starts the pipeline; null (and `why`) when it cannot be built.
  static std::shared_ptr<RecordingExport> start(const ExportPlan& plan, GMainContext* context,
                                                std::function<void()> wake, std::string& why);
  // Stops the pipeline (a client that went away): no callback after this.
  ~RecordingExport();
  RecordingExport(const RecordingExport&) = delete;
  RecordingExport& operator=(const RecordingExport&) = delete;

  // The next piece of the MP4, or null when none is ready now. (transfer full)
  GBytes* take();
  // Every byte of the MP4 has been taken.
  bool finished() const;
  // Why the export failed ("" while it has not).
  std::string error() const;
  // The failure is that the recording holds a stream MP4 cannot carry.
  bool unexportable() const;

 private:
  // One of splitmuxsrc's pads. The flags are guarded by the owner's mutex_ (the
  // seek's flush comes from the seek's thread, the data from the pad's).
  struct Branch {
    RecordingExport* owner = nullptr;
    GstPad* pad = nullptr;    // a reference of ours
    gulong block_id = 0;      // the blocking probe
    bool block_gone = false;  // removed (by itself after the seek, or by the destructor)
    bool blocked = false;     // its first buffer waits for the seek
    bool passing = false;     // the seek's flush went by: its data goes on
    GstClockTime stop = GST_CLOCK_TIME_NONE;  // the segment's stop
  };

  RecordingExport(GMainContext* context, std::function<void()> wake);
  bool build(const ExportPlan& plan, std::string& why);
  void fail(const std::string& message, bool unexportable = false);
  void wake();
  void seek_when_ready_locked();

  static gchar** on_format_location(GstElement*, gpointer self);
  static void on_pad_added(GstElement*, GstPad* pad, gpointer self);
  static void on_no_more_pads(GstElement*, gpointer self);
  static GstPadProbeReturn on_block(GstPad*, GstPadProbeInfo* info, gpointer branch);
  static GstPadProbeReturn on_data(GstPad*, GstPadProbeInfo* info, gpointer branch);
  static void do_seek(GstElement*, gpointer self);
  static GstBusSyncReply on_bus(GstBus*, GstMessage* msg, gpointer self);

  GMainContext* context_;
  std::function<void()> wake_callback_;
  std::atomic<bool> wake_pending_{false};

  GstElement* pipeline_ = nullptr;
  GstElement* source_ = nullptr;  // splitmuxsrc
  GstElement* mux_ = nullptr;
  GstElement* sink_ = nullptr;  // appsink
  std::vector<std::string> files_;
  std::int64_t start_ns_ = 0;
  std::int64_t stop_ns_ = 0;
  std::string key_;

  mutable std::mutex mutex_;  // guards what follows
  std::condition_variable seek_done_;
  std::vector<std::unique_ptr<Branch>> branches_;
  bool no_more_pads_ = false;
  bool seek_sent_ = false;
  bool seeking_ = false;   // do_seek runs now
  bool stopping_ = false;  // the destructor runs: no seek any more
  std::string error_;
  bool unexportable_ = false;
};

}  // namespace arcly::host::http
