#include "media_threads.hpp"

#include <algorithm>
#include <mutex>
#include <vector>

namespace arcly::egress {

namespace {

struct ArclyThreadPool {
  GstRTSPThreadPool parent;
  std::mutex* mutex;
  // One slot per loop (empty until used), one ref each, dropped when the loop
  // ends (thread_leave): a thread holds its pool, so a ref kept past that would
  // keep both alive.
  std::vector<GstRTSPThread*>* loops;
  unsigned next;
};
struct ArclyThreadPoolClass {
  GstRTSPThreadPoolClass parent_class;
};

G_DEFINE_TYPE(ArclyThreadPool, arcly_thread_pool, GST_TYPE_RTSP_THREAD_POOL)

GstRTSPThread* pool_get_thread(GstRTSPThreadPool* pool, GstRTSPThreadType type,
                               GstRTSPContext* ctx) {
  auto* parent = GST_RTSP_THREAD_POOL_CLASS(arcly_thread_pool_parent_class);
  if (type != GST_RTSP_THREAD_TYPE_MEDIA) return parent->get_thread(pool, type, ctx);
  auto* self = reinterpret_cast<ArclyThreadPool*>(pool);
  std::lock_guard lock(*self->mutex);
  GstRTSPThread*& loop = (*self->loops)[self->next++ % self->loops->size()];
  // reuse() refs it for the media; it fails once the loop's last media stopped
  // it (the loop is quitting): a new loop takes the slot.
  if (loop && gst_rtsp_thread_reuse(loop)) return loop;
  if (loop) gst_rtsp_thread_unref(loop);
  GstRTSPThread* fresh = parent->get_thread(pool, type, ctx);
  loop = fresh ? gst_rtsp_thread_ref(fresh) : nullptr;
  return fresh;
}

// On the loop's own thread, after its main loop returned.
void pool_thread_leave(GstRTSPThreadPool* pool, GstRTSPThread* thread) {
  auto* parent = GST_RTSP_THREAD_POOL_CLASS(arcly_thread_pool_parent_class);
  if (parent->thread_leave) parent->thread_leave(pool, thread);
  if (thread->type != GST_RTSP_THREAD_TYPE_MEDIA) return;
  auto* self = reinterpret_cast<ArclyThreadPool*>(pool);
  std::lock_guard lock(*self->mutex);
  for (GstRTSPThread*& t : *self->loops) {
    if (t != thread) continue;
    gst_rtsp_thread_unref(t);
    t = nullptr;
  }
}

void pool_finalize(GObject* object) {
  auto* self = reinterpret_cast<ArclyThreadPool*>(object);
  for (GstRTSPThread* t : *self->loops)
    if (t) gst_rtsp_thread_unref(t);
  delete self->loops;
  delete self->mutex;
  G_OBJECT_CLASS(arcly_thread_pool_parent_class)->finalize(object);
}

void arcly_thread_pool_class_init(ArclyThreadPoolClass* klass) {
  G_OBJECT_CLASS(klass)->finalize = pool_finalize;
  GST_RTSP_THREAD_POOL_CLASS(klass)->get_thread = pool_get_thread;
  GST_RTSP_THREAD_POOL_CLASS(klass)->thread_leave = pool_thread_leave;
}

void arcly_thread_pool_init(ArclyThreadPool* self) {
  self->mutex = new std::mutex;
  self->loops = new std::vector<GstRTSPThread*>(1, nullptr);
  self->next = 0;
}

}  // namespace

GstRTSPThreadPool* media_sharing_thread_pool_new(unsigned loops) {
  auto* pool = static_cast<ArclyThreadPool*>(g_object_new(arcly_thread_pool_get_type(), nullptr));
  pool->loops->assign(loops ? loops : std::max(1u, g_get_num_processors()), nullptr);
  return GST_RTSP_THREAD_POOL(pool);
}

}  // namespace arcly::egress
