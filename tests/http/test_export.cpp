// GET /v1/recordings/export end to end: a real `arcly run` records a synthetic
// camera in 1 s segments (fMP4 and Matroska side by side), and a range that starts
// inside one segment and ends inside another is exported over HTTP (curl). The
// answer is proven with GstDiscoverer and ffprobe: playable, starting on a
// keyframe, as long as the range (within one GOP at the start and one frame at
// the end), and not re-encoded — every video packet is bit for bit a packet of
// the segments. Then the errors, and a client that goes away mid-export.
#include <sys/socket.h>

#include <set>

#include "arcly_host.hpp"

using namespace std::chrono_literals;
using namespace http_testing;
namespace fs = std::filesystem;

namespace {

const char* kAdmin = "exp0rt-adm1n-T0KEN-1234";
const char* kRead = "exp0rt-r3ad-T0KEN-5678";
constexpr double kFrame = 1.0 / 30;  // the camera's frame interval, s
constexpr double kGop = 0.5;         // key-int-max=15 at 30 fps
constexpr int kSegments = 6;         // finalized segments before exporting

// Noise at 5 Mbit/s: an export of the whole recording is larger than what the
// server and the sockets buffer, so a client that stops reading holds the
// pipeline up (the disconnect case needs a pipeline still running).
std::string export_config(const std::string& dir) {
  return std::string(
             "[app live]\ncache-window=2\n\n"
             "[pipeline cam]\nkey=live/cam\n"
             "source=videotestsrc is-live=true pattern=snow ! "
             "video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! x264enc "
             "tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=5000 ! "
             "h264parse config-interval=-1  audiotestsrc is-live=true ! avenc_aac\n"
             "backoff-initial=0.2\nbackoff-max=0.5\n\n"
             // G.711 audio, as many RTSP cameras send: Matroska holds it, MP4 cannot.
             "[pipeline g711]\nkey=live/g711\n"
             "source=videotestsrc is-live=true ! "
             "video/x-raw,format=I420,width=160,height=120,framerate=15/1 ! x264enc "
             "tune=zerolatency speed-preset=ultrafast key-int-max=15 ! "
             "h264parse config-interval=-1  audiotestsrc is-live=true ! alawenc\n"
             "backoff-initial=0.2\nbackoff-max=0.5\n\n"
             "[record a-mp4]\nkey=live/cam\nformat=mp4\nsegment=1\ndir=") +
         dir + "/mp4\n\n[record b-mkv]\nkey=live/*\nformat=mkv\nsegment=1\ndir=" + dir +
         "/mkv\n\n[http]\nlisten=127.0.0.1:0\ntoken=" + kAdmin + "\nread-token=" + kRead + "\n";
}

struct Segment {
  std::string file;
  std::int64_t start_ms;
};

// The finalized segments of one recorder, oldest first.
std::vector<Segment> segments(int port, const std::string& recorder,
                              const std::string& key = "live/cam") {
  std::vector<Segment> out;
  Doc d(request(port, "GET", "/v1/recordings?key=" + key, "", kRead).body);
  if (!d.obj()) return out;
  JsonArray* list = json_object_get_array_member(d.obj(), "recordings");
  for (guint i = 0; list && i < json_array_get_length(list); ++i) {
    JsonObject* r = json_array_get_object_element(list, i);
    if (str(r, "recorder") == recorder)
      out.push_back({str(r, "file"), static_cast<std::int64_t>(num(r, "start_unix_ms"))});
  }
  return out;
}

std::string seconds(std::int64_t unix_ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(unix_ms / 1000),
                static_cast<long long>(unix_ms % 1000));
  return buf;
}

std::string export_path(const std::string& query) {
  return "/v1/recordings/export?" + query;
}

// Downloads with curl (chunked transfer decoded by an independent client).
int download(int port, const std::string& query, const std::string& file, std::string* headers) {
  const std::string head = file + ".headers";
  const std::string code = run(
      "curl -s -o '" + file + "' -D '" + head + "' -w '%{http_code}' -H 'Authorization: Bearer " +
      kRead + "' 'http://127.0.0.1:" + std::to_string(port) + export_path(query) + "'");
  if (headers) *headers = read_file(head);
  return std::atoi(code.c_str());
}

// ffprobe's video packets: pts, whether a keyframe, MD5 of the data.
struct Packet {
  double pts;
  double duration;
  bool key;
  std::string md5;
};
std::vector<Packet> packets(const std::string& file) {
  std::vector<Packet> out;
  const std::string csv =
      run("ffprobe -v error -select_streams v:0 -show_entries "
          "packet=pts_time,duration_time,flags,data_hash -show_data_hash MD5 -of csv=p=0 '" +
          file + "'");
  std::istringstream in(csv);
  std::string line;
  while (std::getline(in, line)) {
    // pts_time,duration_time,flags,MD5:hash (ffprobe's field order)
    std::vector<std::string> f;
    std::stringstream ls(line);
    std::string part;
    while (std::getline(ls, part, ',')) f.push_back(part);
    if (f.size() < 4) continue;
    Packet p{};
    p.pts = std::atof(f[0].c_str());
    p.duration = std::atof(f[1].c_str());
    p.key = f[2].find('K') != std::string::npos;
    p.md5 = f[3];
    out.push_back(p);
  }
  return out;
}

// "codec_name,profile,width,height" of the first video stream.
std::string video_format(const std::string& file) {
  return run(
      "ffprobe -v error -select_streams v:0 -show_entries "
      "stream=codec_name,profile,width,height -of csv=p=0 '" +
      file + "'");
}

// GstDiscoverer plays it: the video stream's caps name and size, or "" when not.
std::string discovered_video(const std::string& file) {
  GstDiscoverer* d = gst_discoverer_new(15 * GST_SECOND, nullptr);
  gchar* uri = gst_filename_to_uri(file.c_str(), nullptr);
  GstDiscovererInfo* info = gst_discoverer_discover_uri(d, uri, nullptr);
  std::string out;
  if (info && gst_discoverer_info_get_result(info) == GST_DISCOVERER_OK) {
    GList* videos = gst_discoverer_info_get_video_streams(info);
    if (videos) {
      auto* v = static_cast<GstDiscovererVideoInfo*>(videos->data);
      GstCaps* caps = gst_discoverer_stream_info_get_caps(GST_DISCOVERER_STREAM_INFO(v));
      out = std::string(gst_structure_get_name(gst_caps_get_structure(caps, 0))) + " " +
            std::to_string(gst_discoverer_video_info_get_width(v)) + "x" +
            std::to_string(gst_discoverer_video_info_get_height(v));
      gst_caps_unref(caps);
    }
    gst_discoverer_stream_info_list_free(videos);
  }
  if (info) gst_discoverer_info_unref(info);
  g_free(uri);
  g_object_unref(d);
  return out;
}

// Exports [from, to] of `recorder` and proves the file: playable, a keyframe
// first, the range's length, the segments' own packets.
void expect_export(int port, const std::string& dir, const std::string& recorder,
                   const std::vector<Segment>& segs, std::int64_t from, std::int64_t to,
                   const std::string& query_extra) {
  const std::string out = dir + "/export-" + recorder + ".mp4";
  std::string headers;
  const int status =
      download(port, "key=live/cam&from=" + seconds(from) + "&to=" + seconds(to) + query_extra, out,
               &headers);
  ck_assert_msg(status == 200, "%s: status %d:\n%s\n%s", recorder.c_str(), status, headers.c_str(),
                read_file(out).substr(0, 500).c_str());
  ck_assert_msg(headers.find("video/mp4") != std::string::npos &&
                    headers.find("chunked") != std::string::npos,
                "%s: not a streamed MP4:\n%s", recorder.c_str(), headers.c_str());

  const std::string discovered = discovered_video(out);
  ck_assert_msg(discovered == "video/x-h264 320x240", "%s: GstDiscoverer says '%s' of %s",
                recorder.c_str(), discovered.c_str(), out.c_str());
  // Not re-encoded: the same stream format as the segments, and every packet one of theirs.
  const std::string format = video_format(out);
  ck_assert_msg(!format.empty() && format == video_format(segs.front().file),
                "%s: format '%s', the segments' '%s'", recorder.c_str(), format.c_str(),
                video_format(segs.front().file).c_str());
  // The camera's AAC track came along (audio and video cut by the same seek).
  const std::string audio =
      run("ffprobe -v error -select_streams a:0 -show_entries "
          "stream=codec_name -of csv=p=0 '" +
          out + "'");
  ck_assert_msg(audio.rfind("aac", 0) == 0, "%s: audio '%s'", recorder.c_str(), audio.c_str());
  std::set<std::string> source;
  for (const auto& s : segs)
    for (const auto& p : packets(s.file)) source.insert(p.md5);
  const auto got = packets(out);
  ck_assert_msg(got.size() > 10, "%s: %zu packets", recorder.c_str(), got.size());
  ck_assert_msg(got.front().key, "%s: the first frame is not a keyframe", recorder.c_str());
  std::size_t foreign = 0;
  for (const auto& p : got) foreign += !source.contains(p.md5);
  ck_assert_msg(foreign == 0, "%s: %zu of %zu packets are not the recording's own (re-encoded?)",
                recorder.c_str(), foreign, got.size());

  // Length: from the keyframe at or before `from` (at most one GOP early) to
  // `to` (within a frame).
  double first = 1e18, end = -1e18;
  for (const auto& p : got) {
    first = std::min(first, p.pts);
    end = std::max(end, p.pts + (p.duration > 0 ? p.duration : kFrame));
  }
  const double duration = end - first;
  const double range = static_cast<double>(to - from) / 1000.0;
  std::printf("%s: %zu packets, %.3f s for a %.3f s range (%s)\n", recorder.c_str(), got.size(),
              duration, range, format.c_str());
  ck_assert_msg(duration >= range - kFrame * 1.5 && duration <= range + kGop + kFrame * 1.5,
                "%s: the export lasts %.3f s, the range %.3f s", recorder.c_str(), duration, range);
}

}  // namespace

START_TEST(export_cuts_a_range_across_segments_without_reencoding) {
  const std::string dir = scratch("export");
  Arcly a(dir, export_config(dir));
  ck_assert_msg(a.wait_for("connected: publishing live/cam", 30s),
                "the camera never went live:\n%s", a.log().c_str());
  const int port = a.port;
  std::vector<Segment> mp4, mkv, g711;
  ck_assert_msg(wait_until(
                    [&] {
                      mp4 = segments(port, "record a-mp4");
                      mkv = segments(port, "record b-mkv");
                      g711 = segments(port, "record b-mkv", "live/g711");
                      return mp4.size() >= kSegments && mkv.size() >= kSegments && g711.size() >= 2;
                    },
                    40s),
                "not %d segments of each recorder: %zu mp4, %zu mkv\n%s", kSegments, mp4.size(),
                mkv.size(), a.log().c_str());
  for (const auto& s : mp4) ck_assert_msg(s.start_ms > 0, "%s: no capture time", s.file.c_str());

  // From 0.7 s into the second segment (a keyframe at 0.5 s in it is the start)
  // to 0.6 s into the fifth: four segments, three boundaries.
  for (const auto* segs : {&mp4, &mkv}) {
    const std::string recorder = segs == &mp4 ? "record a-mp4" : "record b-mkv";
    const std::int64_t from = (*segs)[1].start_ms + 700;
    const std::int64_t to = (*segs)[4].start_ms + 600;
    std::vector<Segment> used(segs->begin() + 1, segs->begin() + 5);
    char* escaped = g_uri_escape_string(recorder.c_str(), nullptr, FALSE);
    expect_export(port, dir, segs == &mp4 ? "mp4" : "mkv", used, from, to,
                  segs == &mp4 ? std::string() : std::string("&recorder=") + escaped);
    g_free(escaped);
  }

  // Errors, each naming its field.
  const std::string from = seconds(mp4[1].start_ms), to = seconds(mp4[3].start_ms);
  auto get = [&](const std::string& query, const char* token = kRead) {
    return request(port, "GET", export_path(query), "", token);
  };
  expect_error(get("from=" + from + "&to=" + to), 400, "key", "no key");
  expect_error(get("key=../../etc&from=" + from + "&to=" + to), 400, "key", "key traversal");
  expect_error(get("key=live/..%2F..%2Fetc&from=" + from + "&to=" + to), 400, "key",
               "escaped traversal");
  expect_error(get("key=live/cam&to=" + to), 400, "from", "no from");
  expect_error(get("key=live/cam&from=" + from), 400, "to", "no to");
  expect_error(get("key=live/cam&from=yesterday&to=" + to), 400, "from", "bad from");
  expect_error(get("key=live/cam&from=" + from + "&to=soon"), 400, "to", "bad to");
  expect_error(get("key=live/cam&from=" + to + "&to=" + from), 400, "from", "from after to");
  expect_error(get("key=live/cam&from=" + from + "&to=" + from), 400, "from", "from = to");
  expect_error(get("key=live/cam&from=1000&to=2000"), 404, "key", "no footage then");
  expect_error(get("key=live/nope&from=" + from + "&to=" + to), 404, "key", "unknown key");
  expect_error(get("key=live/cam&from=" + from + "&to=" + to + "&recorder=nope"), 404, "recorder",
               "unknown recorder");
  expect_error(get("key=live/cam&from=" + from + "&to=" + to, ""), 401, "Authorization",
               "no token");
  // A recording MP4 cannot carry: said so, naming the stream.
  Reply r = get("key=live/g711&from=" + seconds(g711.front().start_ms) +
                "&to=" + seconds(g711.back().start_ms + 500) + "&recorder=record%20b-mkv");
  expect_error(r, 422, "key", "G.711 into MP4");
  ck_assert_msg(r.body.find("audio/x-alaw") != std::string::npos, "%s", r.body.c_str());
  r = request(port, "POST", export_path("key=live/cam&from=" + from + "&to=" + to), "", kAdmin);
  ck_assert_msg(r.status == 405, "POST: %d", r.status);

  // A client that stops reading and goes away: the pipeline stops, the host goes on.
  std::uint64_t total_bytes = 0;
  {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    const int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    ck_assert_int_eq(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const auto all = segments(port, "record a-mp4");
    for (const auto& seg : all) total_bytes += fs::file_size(seg.file);
    send_all(fd, request_text("GET",
                              export_path("key=live/cam&from=" + seconds(all.front().start_ms) +
                                          "&to=" + seconds(all.back().start_ms + 1000)),
                              "", kRead));
    std::string head;
    char buf[1024];
    while (head.find("\r\n\r\n") == std::string::npos) {
      pollfd p{fd, POLLIN, 0};
      ck_assert_msg(poll(&p, 1, 20000) == 1, "no answer to the export");
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      ck_assert_msg(n > 0, "the export's connection closed early");
      head.append(buf, static_cast<std::size_t>(n));
    }
    ck_assert_msg(head.rfind("HTTP/1.1 200", 0) == 0, "%s", head.c_str());
    close(fd);
  }
  // The line is only written when the pipeline had not finished: it was stopped.
  std::smatch gone;
  ck_assert_msg(a.wait_for("the client went away after ([0-9]+) bytes: export stopped", 20s, &gone),
                "the export went on after its client left:\n%s", a.log().c_str());
  std::printf("disconnect: the client went away after %s bytes of %" G_GUINT64_FORMAT " recorded\n",
              gone[1].str().c_str(), total_bytes);
  // Three pipelines (mp4, mkv, the one left): all three stopped.
  auto stopped = [&] {
    const std::string log = a.log();
    int n = 0;
    for (auto at = log.find("export live/cam: pipeline stopped"); at != std::string::npos;
         at = log.find("export live/cam: pipeline stopped", at + 1))
      ++n;
    return n;
  };
  ck_assert_msg(wait_until([&] { return stopped() == 3; }, 20s), "%d pipelines stopped:\n%s",
                stopped(), a.log().c_str());
  ck_assert_int_eq(request(port, "GET", "/healthz").status, 200);

  ck_assert_msg(a.stop() == 0, "arcly %s", a.why_stopped().c_str());
  const std::string log = a.log();
  ck_assert_msg(log.find(kRead) == std::string::npos && log.find(kAdmin) == std::string::npos,
                "a token is in the log");
  fs::remove_all(dir);
}
END_TEST

int main(int argc, char** argv) {
  gst_init(&argc, &argv);
  gst_pb_utils_init();
  return testing::run_suite("http-export", {export_cuts_a_range_across_segments_without_reencoding},
                            200);
}
