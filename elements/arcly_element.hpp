// Helpers shared by the arcly elements' GObject shells: enforcing the
// GST_PARAM_MUTABLE_* flag of a property (GStreamer documents the flags but
// leaves enforcing them to the element).
#pragma once

#include <gst/gst.h>

namespace arcly::elements {

// Called with the object lock held (GST_STATE and GST_STATE_NEXT are protected
// by it). TRUE when a property flagged `flags` may change now: a
// GST_PARAM_MUTABLE_READY property only in NULL or READY and not while a change
// to PAUSED is under way (the settings are snapshotted in READY->PAUSED);
// GST_PARAM_MUTABLE_PAUSED also in PAUSED; anything else always.
inline bool property_mutable_locked(GstElement* element, GParamFlags flags) {
  GstState limit = GST_STATE_PLAYING;
  if (flags & GST_PARAM_MUTABLE_READY)
    limit = GST_STATE_READY;
  else if (flags & GST_PARAM_MUTABLE_PAUSED)
    limit = GST_STATE_PAUSED;
  const GstState current = GST_STATE(element);
  const GstState next = GST_STATE_NEXT(element);
  return current <= limit && (next == GST_STATE_VOID_PENDING || next <= limit);
}

// Logs the refusal; the property keeps its value.
inline void warn_immutable(GstDebugCategory* category, GstElement* element, GParamSpec* pspec) {
  GST_CAT_WARNING_OBJECT(
      category, element, "property '%s' cannot be changed in state %s (only in %s)", pspec->name,
      gst_element_state_get_name(GST_STATE(element)),
      (pspec->flags & GST_PARAM_MUTABLE_READY) ? "NULL or READY" : "NULL, READY or PAUSED");
}

}  // namespace arcly::elements
