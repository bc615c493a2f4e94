// Small RAII owners for GStreamer references, so C++ code never leaks a ref on
// an early return or an exception. `Ptr<T>` owns exactly one reference and
// releases it with the matching unref function.
#pragma once

#include <gst/gst.h>

#include <utility>

namespace arcly::gst {

template <class T, void (*Unref)(T*)>
class Ptr {
 public:
  Ptr() = default;
  // Takes over a reference the caller owns (transfer full).
  explicit Ptr(T* owned) : p_(owned) {}
  Ptr(const Ptr&) = delete;
  Ptr& operator=(const Ptr&) = delete;
  Ptr(Ptr&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Ptr& operator=(Ptr&& o) noexcept {
    reset(std::exchange(o.p_, nullptr));
    return *this;
  }
  ~Ptr() { reset(); }

  void reset(T* owned = nullptr) {
    if (p_) Unref(p_);
    p_ = owned;
  }
  // Gives the reference back to the caller (transfer full).
  T* release() { return std::exchange(p_, nullptr); }
  T* get() const { return p_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  T* p_ = nullptr;
};

namespace detail {
inline void unref_object(GstObject* o) {
  gst_object_unref(o);
}
inline void unref_caps(GstCaps* c) {
  gst_caps_unref(c);
}
inline void unref_buffer(GstBuffer* b) {
  gst_buffer_unref(b);
}
inline void unref_pad(GstPad* p) {
  gst_object_unref(p);
}
inline void unref_element(GstElement* e) {
  gst_object_unref(e);
}
inline void unref_clock(GstClock* c) {
  gst_object_unref(c);
}
inline void unref_message(GstMessage* m) {
  gst_message_unref(m);
}
inline void free_structure(GstStructure* s) {
  gst_structure_free(s);
}
inline void unref_event(GstEvent* e) {
  gst_event_unref(e);
}
}  // namespace detail

using ObjectPtr = Ptr<GstObject, detail::unref_object>;
using CapsPtr = Ptr<GstCaps, detail::unref_caps>;
using BufferPtr = Ptr<GstBuffer, detail::unref_buffer>;
using PadPtr = Ptr<GstPad, detail::unref_pad>;
using ElementPtr = Ptr<GstElement, detail::unref_element>;
using ClockPtr = Ptr<GstClock, detail::unref_clock>;
using MessagePtr = Ptr<GstMessage, detail::unref_message>;
using StructurePtr = Ptr<GstStructure, detail::free_structure>;
using EventPtr = Ptr<GstEvent, detail::unref_event>;

}  // namespace arcly::gst
