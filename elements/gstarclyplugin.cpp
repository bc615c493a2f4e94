// The `arcly` plugin: arclysink, arclysrc (and its arcly:// URI handler).
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <gst/gst.h>

#include "gstarclysink.h"
#include "gstarclysrc.h"

GST_DEBUG_CATEGORY(gst_arcly_debug);

static gboolean plugin_init(GstPlugin* plugin) {
  GST_DEBUG_CATEGORY_INIT(gst_arcly_debug, "arcly", 0, "arcly plugin");
  gboolean ok = FALSE;
  ok |= GST_ELEMENT_REGISTER(arclysink, plugin);
  ok |= GST_ELEMENT_REGISTER(arclysrc, plugin);
  return ok;
}

#ifndef PACKAGE
#define PACKAGE "arcly"
#endif

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wold-style-cast"
#pragma GCC diagnostic ignored "-Wpedantic"
GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, arcly,
                  "arcly live-stream hub: publish and subscribe to stream keys in-process",
                  plugin_init, ARCLY_VERSION, "LGPL", "arcly", "https://example.invalid/arcly")
#pragma GCC diagnostic pop
