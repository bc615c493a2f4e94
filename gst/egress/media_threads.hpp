// Media threads — a GstRTSPThreadPool whose medias share a few main loops
// instead of getting a thread each.
//
// gst-rtsp-server 1.22 gives every GstRTSPMedia a thread of its own
// (GST_RTSP_THREAD_TYPE_MEDIA is never recycled): a main loop that carries the
// media's bus watch, its prepare and unprepare. With a media per reader (RTSP
// egress: every reader starts at its own cached keyframe) that is one idle
// thread per reader — its stack and TLS, ~45 KiB of a reader's memory. Here
// medias are handed, round robin, to one loop per core; a loop's work per media
// is a bus message or a state change, short, so medias sharing a loop do not
// wait on each other in practice. Client threads are the parent class's
// (max-threads, unchanged).
//
// Threads: get_thread is called from client threads (a DESCRIBE); the pool's
// list is guarded by its own mutex. A loop stops when its last media stops it
// (gst_rtsp_thread_stop); the next media then gets a new one.
#pragma once

#include <gst/rtsp-server/rtsp-thread-pool.h>

namespace arcly::egress {

// A new pool (transfer full) sharing `loops` media loops (0 = one per core).
GstRTSPThreadPool* media_sharing_thread_pool_new(unsigned loops = 0);

}  // namespace arcly::egress
