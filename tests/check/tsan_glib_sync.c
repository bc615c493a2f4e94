/* GLib's GMutex and GCond made visible to ThreadSanitizer (test-only, TSan builds).
 *
 * Debian's GLib implements GMutex and GCond on raw futexes, which TSan cannot see:
 * every GST_OBJECT_LOCK, pad stream lock hand-off and GstTask start looks like no
 * synchronisation at all, and the plugin suites drown in false reports. This file
 * defines the same functions, compiled with -fsanitize=thread, so that a library
 * that calls them through its PLT (GStreamer does: 400+ call sites) gets these.
 *
 * The protocol is GLib 2.74's own (gthread-posix.c, the futex variant): the lock
 * word 0 free / 1 held / 2 held with waiters, the condition a sequence counter.
 * GLib's internal calls bind to its own copies directly; both work on the same
 * words the same way, so mixing them is safe — TSan just cannot see GLib's half.
 *
 * GstTask runs its function on a GThreadPool thread, handed over through GLib's
 * internal queue: g_thread_pool_new/push are wrapped so that a push happens-before
 * the pool function's run on that item (__tsan_release/__tsan_acquire on the item).
 *
 * Linked into the plugin test binaries only when b_sanitize=thread.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <glib.h>
#include <linux/futex.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void __tsan_acquire(void* addr);
void __tsan_release(void* addr);

static long futex_wait(guint* word, guint expected, const struct timespec* timeout) {
  return syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, timeout, NULL, 0);
}

static void futex_wake(guint* word, int how_many) {
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, how_many, NULL, NULL, 0);
}

void g_mutex_init(GMutex* mutex) {
  __atomic_store_n(&mutex->i[0], 0, __ATOMIC_RELAXED);
}

void g_mutex_clear(GMutex* mutex) {
  (void)mutex;
}

gboolean g_mutex_trylock(GMutex* mutex) {
  guint free_word = 0;
  return __atomic_compare_exchange_n(&mutex->i[0], &free_word, 1, FALSE, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED);
}

void g_mutex_lock(GMutex* mutex) {
  if (g_mutex_trylock(mutex)) return;
  /* Contended: announce a waiter (2) and sleep until the word is ours. */
  while (__atomic_exchange_n(&mutex->i[0], 2, __ATOMIC_ACQUIRE) != 0)
    futex_wait(&mutex->i[0], 2, NULL);
}

void g_mutex_unlock(GMutex* mutex) {
  if (__atomic_exchange_n(&mutex->i[0], 0, __ATOMIC_RELEASE) == 2) futex_wake(&mutex->i[0], 1);
}

void g_cond_init(GCond* cond) {
  __atomic_store_n(&cond->i[0], 0, __ATOMIC_RELAXED);
}

void g_cond_clear(GCond* cond) {
  (void)cond;
}

void g_cond_wait(GCond* cond, GMutex* mutex) {
  const guint sampled = __atomic_load_n(&cond->i[0], __ATOMIC_RELAXED);
  g_mutex_unlock(mutex);
  futex_wait(&cond->i[0], sampled, NULL);
  g_mutex_lock(mutex);
}

void g_cond_signal(GCond* cond) {
  __atomic_fetch_add(&cond->i[0], 1, __ATOMIC_RELAXED);
  futex_wake(&cond->i[0], 1);
}

void g_cond_broadcast(GCond* cond) {
  __atomic_fetch_add(&cond->i[0], 1, __ATOMIC_RELAXED);
  futex_wake(&cond->i[0], INT32_MAX);
}

gboolean g_cond_wait_until(GCond* cond, GMutex* mutex, gint64 end_time) {
  /* end_time is g_get_monotonic_time()'s clock, in microseconds. */
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  gint64 left_us = end_time - ((gint64)now.tv_sec * 1000000 + now.tv_nsec / 1000);
  if (left_us < 0) left_us = 0;
  const struct timespec span = {(time_t)(left_us / 1000000), (long)(left_us % 1000000) * 1000};
  const guint sampled = __atomic_load_n(&cond->i[0], __ATOMIC_RELAXED);
  g_mutex_unlock(mutex);
  const gboolean timed_out = futex_wait(&cond->i[0], sampled, &span) < 0 && errno == ETIMEDOUT;
  g_mutex_lock(mutex);
  return !timed_out; /* as GLib: a spurious wake-up counts as signalled */
}

/* The next definition of `name` (GLib's), cached: dlsym answers the same to every
 * thread, so a relaxed cache is enough. Returned as a data pointer, converted by
 * the caller with memcpy (ISO C has no object-to-function pointer cast). */
static void* glib_symbol(void** cache, const char* name) {
  void* found = __atomic_load_n(cache, __ATOMIC_RELAXED);
  if (!found) {
    found = dlsym(RTLD_NEXT, name);
    __atomic_store_n(cache, found, __ATOMIC_RELAXED);
  }
  return found;
}

/* The pool's function and data, behind a trampoline that acquires what the push released. */
typedef struct {
  GFunc func;
  gpointer user_data;
} PoolCall;

static void pool_trampoline(gpointer item, gpointer call) {
  PoolCall* c = call;
  __tsan_acquire(item);
  c->func(item, c->user_data);
}

GThreadPool* g_thread_pool_new(GFunc func, gpointer user_data, gint max_threads, gboolean exclusive,
                               GError** error) {
  static void* cache;
  GThreadPool* (*real)(GFunc, gpointer, gint, gboolean, GError**);
  void* sym = glib_symbol(&cache, "g_thread_pool_new");
  memcpy(&real, &sym, sizeof real);
  PoolCall* call = g_new(PoolCall, 1); /* lives as long as the pool; test-only */
  call->func = func;
  call->user_data = user_data;
  return real(pool_trampoline, call, max_threads, exclusive, error);
}

gboolean g_thread_pool_push(GThreadPool* pool, gpointer data, GError** error) {
  static void* cache;
  gboolean (*real)(GThreadPool*, gpointer, GError**);
  void* sym = glib_symbol(&cache, "g_thread_pool_push");
  memcpy(&real, &sym, sizeof real);
  __tsan_release(data);
  return real(pool, data, error);
}
