#include "rtsp_worker.hpp"

#include "arcly/error.hpp"

namespace arcly::ingest {

RtspWorker::RtspWorker(WorkerSettings settings, RtspSettings rtsp)
    : SourceWorker(std::move(settings)), rtsp_(std::move(rtsp)), url_(parse_url(rtsp_.url)) {
  if (url_.scheme != "rtsp" && url_.scheme != "rtsps" && url_.scheme != "rtspt") {
    throw Error(Errc::InvalidArgument,
                "url '" + url_.redacted() + "': expected an rtsp:// or rtsps:// URL");
  }
  if (url_.host.empty())
    throw Error(Errc::InvalidArgument, "url '" + url_.redacted() + "': no host");
  if (rtsp_.transport != "tcp" && rtsp_.transport != "udp" && rtsp_.transport != "auto") {
    throw Error(Errc::InvalidArgument,
                "transport '" + rtsp_.transport + "': expected tcp, udp or auto");
  }
  if (!rtsp_.user.empty()) url_.user = rtsp_.user;
  if (!rtsp_.password.empty()) url_.password = rtsp_.password;
  display_url_ = url_.redacted();
}

GstElement* RtspWorker::make_source() {
  GstElement* src = gst_element_factory_make("rtspsrc", nullptr);
  if (!src) {
    throw Error(Errc::InvalidArgument,
                "the rtspsrc element is missing (gstreamer1.0-plugins-good)");
  }
  const std::string location = url_.without_credentials();
  g_object_set(src, "location", location.c_str(), "latency", rtsp_.latency_ms, nullptr);
  if (!url_.user.empty()) g_object_set(src, "user-id", url_.user.c_str(), nullptr);
  if (!url_.password.empty()) g_object_set(src, "user-pw", url_.password.c_str(), nullptr);
  // The camera's capture time: once its RTCP sender reports arrive, each frame
  // carries a `timestamp/x-ntp` reference timestamp meta (the camera's NTP clock),
  // which travels with the frame to every subscriber (gst/engine_time.hpp).
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(src), "add-reference-timestamp-meta"))
    g_object_set(src, "add-reference-timestamp-meta", TRUE, nullptr);
  if (rtsp_.transport == "tcp") {
    gst_util_set_object_arg(G_OBJECT(src), "protocols", "tcp");
  } else if (rtsp_.transport == "udp") {
    gst_util_set_object_arg(G_OBJECT(src), "protocols", "udp+udp-mcast");
  }
  return src;
}

}  // namespace arcly::ingest
