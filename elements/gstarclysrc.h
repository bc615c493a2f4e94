// arclysrc — subscribes a pipeline to an arcly stream key (see gstarclysrc.cpp).
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_ARCLY_SRC (gst_arcly_src_get_type())
G_DECLARE_FINAL_TYPE(GstArclySrc, gst_arcly_src, GST, ARCLY_SRC, GstElement)

#define GST_TYPE_ARCLY_SRC_START (gst_arcly_src_start_get_type())
GType gst_arcly_src_start_get_type(void);

GST_ELEMENT_REGISTER_DECLARE(arclysrc);

G_END_DECLS
