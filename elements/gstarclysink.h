// arclysink — publishes a pipeline into an arcly stream key (see gstarclysink.cpp).
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_ARCLY_SINK (gst_arcly_sink_get_type())
G_DECLARE_FINAL_TYPE(GstArclySink, gst_arcly_sink, GST, ARCLY_SINK, GstElement)

GST_ELEMENT_REGISTER_DECLARE(arclysink);

G_END_DECLS
