#include "requirements.hpp"

#include <gst/gst.h>

#include <map>
#include <regex>

#include "config.hpp"

namespace arcly::host {
namespace {

const std::map<std::string, std::string>& packages() {
  static const std::map<std::string, std::string> table{
      {"timeoverlay", "gstreamer1.0-x"},
      {"clockoverlay", "gstreamer1.0-x"},
      {"textoverlay", "gstreamer1.0-x"},
      {"x264enc", "gstreamer1.0-plugins-ugly"},
      {"x265enc", "gstreamer1.0-plugins-bad"},
      {"avenc_aac", "gstreamer1.0-libav"},
      {"avdec_h264", "gstreamer1.0-libav"},
      {"avdec_h265", "gstreamer1.0-libav"},
      {"avdec_aac", "gstreamer1.0-libav"},
      {"rtspsrc", "gstreamer1.0-plugins-good"},
      {"srtsrc", "gstreamer1.0-plugins-bad"},
      {"srtsink", "gstreamer1.0-plugins-bad"},
      {"splitmuxsink", "gstreamer1.0-plugins-good"},
      {"mp4mux", "gstreamer1.0-plugins-good"},
      {"matroskamux", "gstreamer1.0-plugins-good"},
      {"mpegtsmux", "gstreamer1.0-plugins-bad"},
      {"h264parse", "gstreamer1.0-plugins-bad"},
      {"h265parse", "gstreamer1.0-plugins-bad"},
      {"aacparse", "gstreamer1.0-plugins-good"},
      {"opusparse", "gstreamer1.0-plugins-bad"},
      {"opusenc", "gstreamer1.0-plugins-base"},
      {"parsebin", "gstreamer1.0-plugins-base"},
      {"videotestsrc", "gstreamer1.0-plugins-base"},
      {"audiotestsrc", "gstreamer1.0-plugins-base"},
      {"videoconvert", "gstreamer1.0-plugins-base"},
      {"jpegenc", "gstreamer1.0-plugins-good"},
      {"arclysrc", "arcly (its plugin: set GST_PLUGIN_PATH or install it)"},
      {"arclysink", "arcly (its plugin: set GST_PLUGIN_PATH or install it)"},
  };
  return table;
}

bool have(const char* element) {
  GstElementFactory* f = gst_element_factory_find(element);
  if (!f) return false;
  gst_object_unref(f);
  return true;
}

}  // namespace

std::string package_hint(const std::string& element) {
  auto it = packages().find(element);
  return it == packages().end() ? "" : " (Debian package " + it->second + ")";
}

std::string explain_parse_error(const std::string& message) {
  // GStreamer says: no element "timeoverlay"
  static const std::regex missing(R"(no element \"([^\"]+)\")");
  std::smatch m;
  if (std::regex_search(message, m, missing)) {
    const std::string hint = package_hint(m[1].str());
    if (!hint.empty()) return message + " — install the" + hint.substr(1, hint.size() - 2);
  }
  return message;
}

std::vector<std::string> missing_elements(const Config& config) {
  std::vector<std::string> problems;
  auto need = [&](const std::string& where, const char* element) {
    if (have(element)) return;
    std::string hint = package_hint(element);
    problems.push_back(where + ": element " + element + " is missing" +
                       (hint.empty() ? "" : " — install the" + hint.substr(1, hint.size() - 2)));
  };
  for (const auto& r : config.rtsp) need("[rtsp " + r.worker.name + "] url", "rtspsrc");
  for (const auto& s : config.srt) need("[srt " + s.worker.name + "]", "srtsrc");
  if (!config.rtsp.empty() || !config.srt.empty() || !config.pipelines.empty()) {
    need("ingest", "parsebin");
  }
  for (const auto& r : config.records) {
    const std::string where = "[record " + r.name + "] format";
    need("[record " + r.name + "]", "arclysrc");
    need(where, "splitmuxsink");
    switch (r.format) {
      case RecordFormat::Mp4:
        need(where, "mp4mux");
        break;
      case RecordFormat::Mkv:
        need(where, "matroskamux");
        break;
      case RecordFormat::Ts:
        need(where, "mpegtsmux");
        break;
    }
  }
  for (const auto& o : config.outputs) need("[output " + o.name + "]", "arclysrc");
  return problems;
}

}  // namespace arcly::host
