// GET /v1/streams/{app}/{stream}/snapshot.jpg?width=N
//
// A decoder for the one request, fed from the GOP cache: arclysrc start=keyframe
// replays the newest cached GOP at once, the decoder runs through it to the live
// edge (the newest frame published when the request came, recognised by its
// publisher timestamp), and that last picture is scaled and encoded to JPEG.
// No waiting for the next keyframe, and no decoder kept per camera.
// ?start=next-keyframe instead waits for the next keyframe (the benchmark's baseline).
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include "api.hpp"
#include "engine_registry.hpp"

namespace arcly::host::http {
namespace {

constexpr int kMinWidth = 16;
constexpr int kMaxWidth = 3840;
constexpr auto kDeadline = std::chrono::seconds(3);

std::int64_t publisher_ts(GstBuffer* buf) {
  static GstCaps* ref = gst_caps_new_empty_simple("timestamp/x-arcly-publisher");
  if (auto* meta = gst_buffer_get_reference_timestamp_meta(buf, ref))
    return static_cast<std::int64_t>(meta->timestamp);
  return -1;
}

struct Decode {
  GstElement* pipeline = nullptr;
  GstElement* sink = nullptr;
  bool video_linked = false;
};

// decodebin's picture -> videoconvert ! appsink (added with the decoder).
void on_decoded_pad(GstElement*, GstPad* pad, gpointer convert) {
  GstPad* sinkpad = gst_element_get_static_pad(GST_ELEMENT(convert), "sink");
  if (!gst_pad_is_linked(sinkpad)) gst_pad_link(pad, sinkpad);
  gst_object_unref(sinkpad);
}

// arclysrc's tracks: the first video track to the decoder, the others to fakesink.
void on_pad_added(GstElement*, GstPad* pad, gpointer data) {
  auto* d = static_cast<Decode*>(data);
  GstCaps* caps = gst_pad_get_current_caps(pad);
  if (!caps) caps = gst_pad_query_caps(pad, nullptr);
  const bool video =
      caps && gst_caps_get_size(caps) > 0 &&
      g_str_has_prefix(gst_structure_get_name(gst_caps_get_structure(caps, 0)), "video/");
  if (caps) gst_caps_unref(caps);
  GstBin* bin = GST_BIN(d->pipeline);
  GstElement* first = nullptr;
  if (video && !d->video_linked) {
    d->video_linked = true;
    GstElement* queue = gst_element_factory_make("queue", nullptr);
    GstElement* decode = gst_element_factory_make("decodebin", nullptr);
    GstElement* convert = gst_element_factory_make("videoconvert", nullptr);
    GstElement* sink = gst_element_factory_make("appsink", nullptr);
    if (!queue || !decode || !convert || !sink) {
      for (GstElement* e : {queue, decode, convert, sink}) {
        if (e) gst_object_unref(gst_object_ref_sink(e));
      }
      return;
    }
    g_object_set(queue, "max-size-buffers", 0u, "max-size-time", guint64{0}, "max-size-bytes", 0u,
                 nullptr);
    g_object_set(sink, "sync", FALSE, "max-buffers", 2u, nullptr);
    gst_bin_add_many(bin, queue, decode, convert, sink, nullptr);
    gst_element_link(queue, decode);
    gst_element_link(convert, sink);
    g_signal_connect(decode, "pad-added", G_CALLBACK(on_decoded_pad), convert);
    for (GstElement* e : {sink, convert, decode, queue}) gst_element_sync_state_with_parent(e);
    GST_OBJECT_LOCK(d->pipeline);
    d->sink = GST_ELEMENT(gst_object_ref(sink));
    GST_OBJECT_UNLOCK(d->pipeline);
    first = queue;
  } else {
    first = gst_element_factory_make("fakesink", nullptr);
    if (!first) return;
    g_object_set(first, "sync", FALSE, "async", FALSE, nullptr);
    gst_bin_add(bin, first);
    gst_element_sync_state_with_parent(first);
  }
  GstPad* sinkpad = gst_element_get_static_pad(first, "sink");
  gst_pad_link(pad, sinkpad);
  gst_object_unref(sinkpad);
}

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> out;
  std::size_t start = 1;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    auto end = slash == std::string::npos ? path.size() : slash;
    gchar* part = g_uri_unescape_segment(path.c_str() + start, path.c_str() + end, nullptr);
    out.push_back(part ? part : "\x01");
    g_free(part);
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

}  // namespace

Response Api::snapshot(const Request& r) {
  const auto p = split(r.path);
  if (p.size() != 5) return error_response(404, "no such resource: " + r.path);
  std::string why;
  auto key = StreamKey::try_parse(p[2] + "/" + p[3], &why);
  if (!key) return error_response(400, why, "key");
  int width = 0;
  if (auto it = r.query.find("width"); it != r.query.end()) {
    char* end = nullptr;
    const long w = std::strtol(it->second.c_str(), &end, 10);
    if (it->second.empty() || *end != '\0' || w < kMinWidth || w > kMaxWidth)
      return error_response(400, "'width' must be a number of pixels from 16 to 3840", "width");
    width = static_cast<int>(w);
  }
  // start=next-keyframe: what a hub without a cache must do (wait for the next
  // keyframe) — the baseline the snapshot benchmark compares against.
  bool from_cache = true;
  if (auto it = r.query.find("start"); it != r.query.end()) {
    if (it->second != "cache" && it->second != "next-keyframe")
      return error_response(400, "'start' must be cache or next-keyframe", "start");
    from_cache = it->second == "cache";
  }
  auto engine = target_.engine();
  StreamHandle stream = engine->find_stream(*key);
  if (!stream)
    return error_response(404, "no stream '" + key->str() + "' is being published", "key");
  if (!stream->gop().has_video())
    return error_response(409, "stream '" + key->str() + "' has no video track", "key");
  const std::int64_t live_edge = stream->gop().newest_pts();

  Decode d;
  d.pipeline = gst_pipeline_new("snapshot");
  GstElement* src = gst_element_factory_make("arclysrc", nullptr);
  if (!src) {
    gst_object_unref(d.pipeline);
    return error_response(500, "the arclysrc element is missing: check the installation");
  }
  g_object_set(src, "engine", gst::kDefaultEngineName, "stream", key->str().c_str(), "wait", 1000,
               nullptr);
  gst_util_set_object_arg(G_OBJECT(src), "start", from_cache ? "keyframe" : "next-keyframe");
  g_signal_connect(src, "pad-added", G_CALLBACK(on_pad_added), &d);
  gst_bin_add(GST_BIN(d.pipeline), src);
  gst_element_set_state(d.pipeline, GST_STATE_PLAYING);

  GstSample* last = nullptr;
  std::string error;
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  GstBus* bus = gst_element_get_bus(d.pipeline);
  while (std::chrono::steady_clock::now() < deadline) {
    if (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
      GError* err = nullptr;
      gst_message_parse_error(m, &err, nullptr);
      error = std::string(GST_MESSAGE_SRC_NAME(m)) + ": " + (err ? err->message : "error");
      g_clear_error(&err);
      gst_message_unref(m);
      break;
    }
    GstElement* sink = nullptr;
    GST_OBJECT_LOCK(d.pipeline);  // pad-added runs on the streaming thread
    if (d.sink) sink = GST_ELEMENT(gst_object_ref(d.sink));
    GST_OBJECT_UNLOCK(d.pipeline);
    if (!sink) {
      g_usleep(5000);
      continue;
    }
    GstSample* s = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 50 * GST_MSECOND);
    gst_object_unref(sink);
    if (!s) continue;
    if (last) gst_sample_unref(last);
    last = s;
    const std::int64_t ts = publisher_ts(gst_sample_get_buffer(s));
    // The live edge of the request, or (no timestamps) the first frame is all we know.
    if (ts < 0 || ts >= live_edge || !from_cache) break;
  }
  gst_object_unref(bus);
  gst_element_set_state(d.pipeline, GST_STATE_NULL);
  if (d.sink) gst_object_unref(d.sink);
  gst_object_unref(d.pipeline);
  if (!last)
    return error_response(
        error.empty() ? 504 : 502,
        error.empty() ? "no picture decoded within 3 s" : "decoding failed: " + error, "key");

  GstCaps* in_caps = gst_sample_get_caps(last);
  GstVideoInfo info;
  int out_w = 0, out_h = 0;
  if (in_caps && gst_video_info_from_caps(&info, in_caps)) {
    out_w = width ? width : GST_VIDEO_INFO_WIDTH(&info);
    out_h = static_cast<int>(static_cast<double>(GST_VIDEO_INFO_HEIGHT(&info)) * out_w /
                             std::max(1, GST_VIDEO_INFO_WIDTH(&info)));
    out_h = std::max(2, out_h & ~1);
  }
  GstCaps* jpeg = gst_caps_new_simple("image/jpeg", nullptr, nullptr);
  if (out_w > 0)
    gst_caps_set_simple(jpeg, "width", G_TYPE_INT, out_w, "height", G_TYPE_INT, out_h,
                        "pixel-aspect-ratio", GST_TYPE_FRACTION, 1, 1, nullptr);
  GError* err = nullptr;
  GstSample* out = gst_video_convert_sample(last, jpeg, 2 * GST_SECOND, &err);
  gst_caps_unref(jpeg);
  gst_sample_unref(last);
  if (!out) {
    std::string w = err ? err->message : "?";
    g_clear_error(&err);
    return error_response(500, "JPEG encoding failed: " + w);
  }
  GstMapInfo map;
  Response resp;
  resp.content_type = "image/jpeg";
  GstBuffer* buf = gst_sample_get_buffer(out);
  if (gst_buffer_map(buf, &map, GST_MAP_READ)) {
    resp.body.assign(reinterpret_cast<const char*>(map.data), map.size);
    gst_buffer_unmap(buf, &map);
  }
  gst_sample_unref(out);
  return resp;
}

}  // namespace arcly::host::http
