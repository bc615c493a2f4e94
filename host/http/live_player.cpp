#include "live_player.hpp"

#include <gst/gst.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "engine_registry.hpp"

GST_DEBUG_CATEGORY_STATIC(arcly_player_debug);
#define GST_CAT_DEFAULT arcly_player_debug

namespace arcly::host::http {
namespace {

// hls.js starts a live playlist three target durations from its end; short
// segments keep that (and the first playlist's wait) near one GOP.
constexpr guint kTargetDurationS = 1;
constexpr guint kPlaylistLength = 4;
constexpr guint kMaxFiles = 8;  // a player still fetching a segment just out of the list finds it
constexpr auto kFirstPlaylistDeadline = std::chrono::seconds(15);
constexpr std::size_t kMaxSessions = 16;
constexpr guint kTickMs = 50;
constexpr const char* kPlaylist = "index.m3u8";

// The names hlssink2 gives segments with location=segment%05d.ts, and nothing else.
bool is_segment_name(const std::string& name) {
  if (name.size() != 15 || name.rfind("segment", 0) != 0 || !name.ends_with(".ts")) return false;
  for (std::size_t i = 7; i < 12; ++i)
    if (!g_ascii_isdigit(name[i])) return false;
  return true;
}

std::string read_whole(const std::string& path, bool& ok) {
  std::ifstream in(path, std::ios::binary);
  ok = static_cast<bool>(in);
  if (!ok) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A playlist hlssink2 finished writing: the first one is written in place, so a
// reader may see it empty or cut; later ones replace it whole (a rename).
bool is_complete_playlist(const std::string& text) {
  return text.rfind("#EXTM3U", 0) == 0 && text.find("#EXTINF") != std::string::npos &&
         text.back() == '\n';
}

// The `profile` of H.264 caps ("" when they do not say).
std::string h264_profile(const std::string& caps_text) {
  std::string out;
  if (caps_text.empty()) return out;
  GstCaps* caps = gst_caps_from_string(caps_text.c_str());
  if (caps && gst_caps_get_size(caps) > 0)
    if (const char* p = gst_structure_get_string(gst_caps_get_structure(caps, 0), "profile"))
      out = p;
  if (caps) gst_caps_unref(caps);
  return out;
}

// What MSE in browsers decodes: 8-bit 4:2:0 (not high-10, high-4:2:2, high-4:4:4).
bool browser_profile(const std::string& profile) {
  return profile.empty() || profile == "constrained-baseline" || profile == "baseline" ||
         profile == "main" || profile == "high" || profile == "constrained-high" ||
         profile == "progressive-high";
}

}  // namespace

struct LivePlayer::Session {
  std::string key;
  std::string dir;
  GstElement* pipeline = nullptr;
  GstElement* queue = nullptr;  // where arclysrc's video pad goes
  bool video_linked = false;
  bool ready = false;  // the first playlist is there
  std::chrono::steady_clock::time_point started;
  std::chrono::steady_clock::time_point last_request;
  std::vector<Done> waiters;

  // arclysrc's first video track into the queue; other tracks stay unlinked
  // (arclysrc goes on without them).
  static void on_pad_added(GstElement*, GstPad* pad, gpointer data) {
    auto* s = static_cast<Session*>(data);
    GstCaps* caps = gst_pad_get_current_caps(pad);
    if (!caps) caps = gst_pad_query_caps(pad, nullptr);
    const bool h264 = caps && gst_caps_get_size(caps) > 0 &&
                      gst_structure_has_name(gst_caps_get_structure(caps, 0), "video/x-h264");
    if (caps) gst_caps_unref(caps);
    GST_OBJECT_LOCK(s->pipeline);  // pad-added runs on arclysrc's streaming thread
    const bool take = h264 && !s->video_linked;
    if (take) s->video_linked = true;
    GST_OBJECT_UNLOCK(s->pipeline);
    if (!take) return;
    GstPad* sinkpad = gst_element_get_static_pad(s->queue, "sink");
    gst_pad_link(pad, sinkpad);
    gst_object_unref(sinkpad);
  }

  // Builds and starts the pipeline; "" or the reason it cannot.
  std::string start(const std::string& stream_key) {
    key = stream_key;
    gchar* tmp = g_dir_make_tmp("arcly-hls-XXXXXX", nullptr);
    if (!tmp) return "cannot create a temporary directory for the segments";
    dir = tmp;
    g_free(tmp);
    pipeline = gst_pipeline_new(("hls-" + key).c_str());
    GstElement* src = gst_element_factory_make("arclysrc", nullptr);
    queue = gst_element_factory_make("queue", nullptr);
    GstElement* parse = gst_element_factory_make("h264parse", nullptr);
    GstElement* sink = gst_element_factory_make("hlssink2", nullptr);
    if (!src || !queue || !parse || !sink) {
      for (GstElement* e : {src, queue, parse, sink})
        if (e) gst_object_unref(gst_object_ref_sink(e));
      queue = nullptr;
      return std::string("an element is missing (") +
             (!src     ? "arclysrc"
              : !parse ? "h264parse"
              : !sink  ? "hlssink2"
                       : "queue") +
             "): check the installation";
    }
    g_object_set(src, "engine", gst::kDefaultEngineName, "stream", key.c_str(), "wait", 1000,
                 nullptr);
    gst_util_set_object_arg(G_OBJECT(src), "start", "keyframe");
    g_object_set(parse, "config-interval", -1, nullptr);
    const std::string location = dir + "/segment%05d.ts";
    const std::string playlist = dir + "/" + kPlaylist;
    g_object_set(sink, "location", location.c_str(), "playlist-location", playlist.c_str(),
                 "target-duration", kTargetDurationS, "playlist-length", kPlaylistLength,
                 "max-files", kMaxFiles, "send-keyframe-requests", FALSE, nullptr);
    gst_bin_add_many(GST_BIN(pipeline), src, queue, parse, sink, nullptr);
    GstPad* video = gst_element_request_pad_simple(sink, "video");
    GstPad* parse_src = gst_element_get_static_pad(parse, "src");
    const bool linked = gst_element_link(queue, parse) && video &&
                        gst_pad_link(parse_src, video) == GST_PAD_LINK_OK;
    gst_object_unref(parse_src);
    if (video) gst_object_unref(video);
    if (!linked) return "cannot link h264parse to hlssink2";
    g_signal_connect(src, "pad-added", G_CALLBACK(&Session::on_pad_added), this);
    started = last_request = std::chrono::steady_clock::now();
    if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
      return "the HLS pipeline did not start";
    GST_INFO("live player for %s started in %s", key.c_str(), dir.c_str());
    return {};
  }

  // The first error or the end of the stream on the bus; "" while it runs.
  std::string poll_bus() {
    if (!pipeline) return {};
    GstBus* bus = gst_element_get_bus(pipeline);
    std::string why;
    while (GstMessage* m = gst_bus_pop_filtered(
               bus, static_cast<GstMessageType>(GST_MESSAGE_ERROR | GST_MESSAGE_EOS))) {
      if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR) {
        GError* err = nullptr;
        gst_message_parse_error(m, &err, nullptr);
        if (why.empty())
          why = std::string(GST_MESSAGE_SRC_NAME(m)) + ": " + (err ? err->message : "error");
        g_clear_error(&err);
      } else if (why.empty()) {
        why = "the stream ended";
      }
      gst_message_unref(m);
    }
    gst_object_unref(bus);
    return why;
  }

  std::string playlist_text() const {
    bool ok = false;
    std::string text = read_whole(dir + "/" + kPlaylist, ok);
    return ok && is_complete_playlist(text) ? text : std::string();
  }

  void answer_waiters(const Response& r) {
    auto waiters_now = std::move(waiters);
    waiters.clear();
    for (auto& w : waiters_now) w(r);
  }

  // Stops the pipeline and removes the directory (only what hlssink2 wrote there).
  ~Session() {
    if (pipeline) {
      gst_element_set_state(pipeline, GST_STATE_NULL);
      gst_object_unref(pipeline);
    }
    if (!dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir, ec);
      if (ec) GST_WARNING("cannot remove %s: %s", dir.c_str(), ec.message().c_str());
    }
    GST_INFO("live player for %s stopped", key.c_str());
  }
};

LivePlayer::LivePlayer(ControlTarget& target, std::chrono::milliseconds idle)
    : target_(target), idle_(idle), context_(g_main_context_ref_thread_default()) {
  static std::once_flag once;
  std::call_once(once, [] {
    GST_DEBUG_CATEGORY_INIT(arcly_player_debug, "arclyplayer", 0, "arcly HLS live player");
  });
}

LivePlayer::~LivePlayer() {
  if (timer_) {
    g_source_destroy(timer_);
    g_source_unref(timer_);
  }
  for (auto& [key, s] : sessions_) s->answer_waiters(error_response(503, "the server is stopping"));
  sessions_.clear();
  g_main_context_unref(context_);
}

bool LivePlayer::is_player(const Request& r) {
  const auto p = split_path(r.path);
  return p.size() == 6 && p[0] == "v1" && p[1] == "streams" && p[4] == "live";
}

std::optional<Response> LivePlayer::serve(const Request& r, Done done) {
  if (r.method != "GET" && r.method != "HEAD") {
    Response resp = error_response(405, r.method + " is not allowed on " + r.path + " (use GET)");
    resp.headers.emplace_back("Allow", "GET");
    return resp;
  }
  const auto p = split_path(r.path);
  std::string why;
  auto key = StreamKey::try_parse(p[2] + "/" + p[3], &why);
  if (!key) return error_response(400, why, "key");
  const std::string& file = p[5];
  const bool playlist = file == kPlaylist;
  if (!playlist && !is_segment_name(file))
    return error_response(
        404, "no such file in the live playlist: '" + file + "' (index.m3u8 or segmentNNNNN.ts)",
        "file");

  auto it = sessions_.find(key->str());
  if (it == sessions_.end()) {
    if (!playlist)
      return error_response(
          404, "no live playlist runs for '" + key->str() + "': ask for index.m3u8 first", "key");
    StreamHandle stream = target_.engine()->find_stream(*key);
    if (!stream)
      return error_response(404, "no stream '" + key->str() + "' is being published", "key");
    std::optional<CodecId> video;
    std::string caps;
    for (const auto& config : stream->cached_configs()) {
      const auto& f = config.frame();
      if (f.kind != MediaKind::Video || video) continue;
      video = f.codec;
      if (f.info) caps = f.info->description;
    }
    if (!video) return error_response(409, "stream '" + key->str() + "' has no video track", "key");
    if (*video != CodecId::H264)
      return error_response(415,
                            "stream '" + key->str() + "' is " + std::string(codec_name(*video)) +
                                "; the live player plays h264 only",
                            "codec");
    if (const std::string profile = h264_profile(caps); !browser_profile(profile))
      return error_response(415,
                            "stream '" + key->str() + "' is h264 of the " + profile +
                                " profile; browsers play constrained-baseline, baseline, main "
                                "and high only",
                            "codec");
    if (sessions_.size() >= kMaxSessions)
      return error_response(503, "already " + std::to_string(kMaxSessions) +
                                     " live players run; try again when one stops");
    auto s = std::make_unique<Session>();
    const std::string failed = s->start(key->str());
    if (!failed.empty())
      return error_response(500, "live player for '" + key->str() + "': " + failed);
    it = sessions_.emplace(key->str(), std::move(s)).first;
    ensure_timer();
  }
  Session& s = *it->second;
  s.last_request = std::chrono::steady_clock::now();
  if (!s.ready) {
    if (!playlist)
      return error_response(404, "the live playlist of '" + key->str() + "' has no segment yet",
                            "file");
    s.waiters.push_back(std::move(done));
    return std::nullopt;
  }
  Response resp;
  bool ok = false;
  if (playlist) {
    resp.body = s.playlist_text();
    ok = !resp.body.empty();
    resp.content_type = "application/vnd.apple.mpegurl";
  } else {
    resp.body = read_whole(s.dir + "/" + file, ok);
    resp.content_type = "video/mp2t";
  }
  if (!ok)
    return error_response(
        404, "'" + file + "' is not (or no longer) in the live playlist of '" + key->str() + "'",
        "file");
  return resp;
}

void LivePlayer::ensure_timer() {
  if (timer_) return;
  timer_ = g_timeout_source_new(kTickMs);
  g_source_set_callback(timer_, &LivePlayer::on_tick, this, nullptr);
  g_source_attach(timer_, context_);
}

gboolean LivePlayer::on_tick(gpointer self) {
  static_cast<LivePlayer*>(self)->tick();
  return G_SOURCE_CONTINUE;
}

void LivePlayer::tick() {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    Session& s = *it->second;
    const std::string failed = s.poll_bus();
    bool stop = false;
    if (!failed.empty()) {
      GST_INFO("live player for %s: %s", s.key.c_str(), failed.c_str());
      s.answer_waiters(
          error_response(502, "the live player of '" + s.key + "' stopped: " + failed, "key"));
      stop = true;
    } else if (!s.ready) {
      std::string text = s.playlist_text();
      if (!text.empty()) {
        s.ready = true;
        GST_INFO(
            "live player for %s: first playlist after %lld ms", s.key.c_str(),
            static_cast<long long>(
                std::chrono::duration_cast<std::chrono::milliseconds>(now - s.started).count()));
        Response r;
        r.content_type = "application/vnd.apple.mpegurl";
        r.body = std::move(text);
        s.answer_waiters(r);
      } else if (now - s.started > kFirstPlaylistDeadline) {
        s.answer_waiters(error_response(
            504, "no segment of '" + s.key + "' within 15 s (is its GOP that long?)", "key"));
        stop = true;
      }
    } else if (now - s.last_request > idle_) {
      GST_INFO("live player for %s: no request for %lld ms", s.key.c_str(),
               static_cast<long long>(idle_.count()));
      stop = true;
    }
    it = stop ? sessions_.erase(it) : std::next(it);
  }
  if (sessions_.empty() && timer_) {
    g_source_destroy(timer_);
    g_source_unref(timer_);
    timer_ = nullptr;
  }
}

}  // namespace arcly::host::http
