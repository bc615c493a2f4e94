#include "rtsp_server.hpp"

#include <gst/rtsp-server/rtsp-server.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "arcly/engine.hpp"
#include "arcly/error.hpp"
#include "arcly/stream_key.hpp"
#include "capture_time_reports.hpp"
#include "engine_registry.hpp"
#include "media_threads.hpp"
#include "reader_sender.hpp"
#include "rtp_gop_cache.hpp"
#include "srt_worker.hpp"  // key_matches

GST_DEBUG_CATEGORY_STATIC(arcly_egress_debug);
#define GST_CAT_DEFAULT arcly_egress_debug

namespace arcly::egress {

using Clock = std::chrono::steady_clock;

// Connection loops per core (without wait=): a connection's loop handles its
// requests and RTCP; a media that takes long to prepare holds up the DESCRIBEs
// of the connections on its loop only.
constexpr unsigned kConnectionLoopsPerCore = 2;

namespace {

void ensure_debug_category() {
  static std::once_flag once;
  std::call_once(once, [] {
    GST_DEBUG_CATEGORY_INIT(arcly_egress_debug, "arclyegress", 0, "arcly network egress");
  });
}

// "/live/cam/stream=0" -> "live/cam" (the first two path segments, unvalidated).
std::string key_text(const char* abspath) {
  std::string_view p = abspath ? abspath : "";
  while (p.starts_with('/')) p.remove_prefix(1);
  const auto first = p.find('/');
  if (first == std::string_view::npos) return std::string(p);
  const auto second = p.find('/', first + 1);
  return std::string(p.substr(0, second));
}

// The value of `name` in a query "a=1&start=keyframe" (nullopt if absent).
std::optional<std::string> query_value(const char* query, std::string_view name) {
  std::string_view q = query ? query : "";
  while (!q.empty()) {
    const auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    // A control suffix ("start=keyframe/stream=0") is not part of the value.
    pair = pair.substr(0, pair.find('/'));
    const auto eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return std::string(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
  }
  return std::nullopt;
}

std::optional<RtspStart> parse_start(const std::string& value) {
  return parse_reader_start(value);
}

const char* start_name(RtspStart s) {
  return reader_start_name(s);
}

bool any_match(const std::vector<std::string>& patterns, const std::string& key) {
  for (const auto& p : patterns)
    if (ingest::key_matches(p, key)) return true;
  return false;
}

// The RTP sent is counted by a pad probe of a per-reader media, or by the
// ReaderSender of a shared media's reader; the send queue by a TCP reader's
// ReaderSender. Outlives either if stats hold it.
using ReaderCounters = ReaderSender::Counters;

}  // namespace

struct RtspServer::Shared {
  RtspServerSettings settings;
  std::shared_ptr<Engine> engine;
  GMainContext* context = nullptr;  // the server thread's (set by start())
  ~Shared() {
    if (context) g_main_context_unref(context);
  }

  struct Reader {
    std::string key;
    std::string address;
    std::string transport;
    std::string start;
    std::shared_ptr<ReaderCounters> counters;
    Clock::time_point since;
    bool shared_media = false;
    const void* media_element = nullptr;  // identity only: the readers of one media
  };

  mutable std::mutex mutex;
  mutable std::condition_variable changed;
  std::map<GstRTSPClient*, Reader> readers;  // playing readers
  std::set<std::string> mounted;             // paths the factory is mounted at
  RtspServerStats counts;                    // refusal counters (reader list filled on demand)

  // The request being answered by one of our refusals (the client thread's
  // current context), so that its error response is not logged a second time.
  static inline thread_local const GstRTSPContext* refused_request = nullptr;

  // Logs once and counts a refusal. `peer` is an address, never a credential.
  void refuse(std::uint64_t RtspServerStats::*counter, const std::string& peer,
              const std::string& why) {
    refused_request = gst_rtsp_context_get_current();
    const std::string line = "rtsp: refused " + peer + ": " + why;
    {
      std::lock_guard lock(mutex);
      ++(counts.*counter);
      counts.last_refusal = line;
    }
    changed.notify_all();
    warn(line);
  }
  void warn(const std::string& line) {
    GST_WARNING("%s", line.c_str());
    if (settings.log) settings.log(line);
  }
  void note(const std::string& line) {
    GST_INFO("%s", line.c_str());
    if (settings.log) settings.log(line);
  }
  // Reader limits; empty = room for one more reader of `key`. Caller holds mutex.
  std::string limit_reached(const std::string& key) const {
    if (settings.max_readers && readers.size() >= settings.max_readers)
      return "the server's reader limit (" + std::to_string(settings.max_readers) + ") is reached";
    if (settings.max_readers_per_key) {
      std::size_t n = 0;
      for (const auto& [c, r] : readers) n += r.key == key;
      if (n >= settings.max_readers_per_key)
        return "the reader limit of " + key + " (" + std::to_string(settings.max_readers_per_key) +
               ") is reached";
    }
    return {};
  }
};

// ---------------------------------------------------------------------------
// GObject subclasses. Each instance holds the Shared state as qdata (a heap
// std::shared_ptr freed with the object), so a connection that finishes after
// stop() still finds it alive.

namespace {

using SharedPtr = std::shared_ptr<RtspServer::Shared>;

GQuark shared_quark() {
  static const GQuark q = g_quark_from_static_string("arcly-egress-shared");
  return q;
}
void attach_shared(gpointer object, const SharedPtr& shared) {
  g_object_set_qdata_full(G_OBJECT(object), shared_quark(), new SharedPtr(shared),
                          [](gpointer p) { delete static_cast<SharedPtr*>(p); });
}
SharedPtr* shared_holder_of(gpointer object) {
  return static_cast<SharedPtr*>(g_object_get_qdata(G_OBJECT(object), shared_quark()));
}
RtspServer::Shared* shared_of(gpointer object) {
  SharedPtr* p = shared_holder_of(object);
  return p ? p->get() : nullptr;
}
std::weak_ptr<RtspServer::Shared> weak_shared_of(gpointer object) {
  SharedPtr* p = shared_holder_of(object);
  return p ? std::weak_ptr<RtspServer::Shared>(*p) : std::weak_ptr<RtspServer::Shared>();
}

std::string peer_of(GstRTSPContext* ctx) {
  if (!ctx || !ctx->conn) return "unknown peer";
  const gchar* ip = gst_rtsp_connection_get_ip(ctx->conn);
  return ip ? ip : "unknown peer";
}

void send_status(GstRTSPContext* ctx, GstRTSPStatusCode code) {
  gst_rtsp_message_init_response(ctx->response, code, gst_rtsp_status_as_text(code), ctx->request);
  gst_rtsp_client_send_message(ctx->client, ctx->session, ctx->response);
}

// --- media factory: arclysrc + payloaders, one media per reader -------------

struct ArclyMediaFactory {
  GstRTSPMediaFactory parent;
};
struct ArclyMediaFactoryClass {
  GstRTSPMediaFactoryClass parent_class;
};
G_DEFINE_TYPE(ArclyMediaFactory, arcly_media_factory, GST_TYPE_RTSP_MEDIA_FACTORY)

struct PayloaderChoice {
  const char* parser = nullptr;  // optional
  const char* payloader = nullptr;
  bool dynamic_pt = true;
  bool video = false;
};

PayloaderChoice choose_payloader(const GstStructure* s) {
  const std::string_view name = gst_structure_get_name(s);
  if (name == "video/x-h264") return {"h264parse", "rtph264pay", true, true};
  if (name == "video/x-h265") return {"h265parse", "rtph265pay", true, true};
  if (name == "image/jpeg") return {nullptr, "rtpjpegpay", false, true};
  if (name == "audio/x-opus") return {nullptr, "rtpopuspay"};
  if (name == "audio/x-alaw") return {nullptr, "rtppcmapay", false};
  if (name == "audio/x-mulaw") return {nullptr, "rtppcmupay", false};
  if (name == "audio/mpeg") {
    gint version = 0;
    gst_structure_get_int(s, "mpegversion", &version);
    if (version == 4 || version == 2) return {"aacparse", "rtpmp4gpay"};
    if (version == 1) return {"mpegaudioparse", "rtpmpapay"};
  }
  return {};
}

// Whether `pay` takes `caps` as they are: every field its sink template
// constrains (stream-format, alignment) is present and allowed.
bool payloader_accepts(GstElement* pay, GstCaps* caps) {
  GstPad* sink = gst_element_get_static_pad(pay, "sink");
  if (!sink) return false;
  GstCaps* accepted = gst_pad_get_pad_template_caps(sink);
  gst_object_unref(sink);
  const bool ok = gst_caps_is_fixed(caps) && gst_caps_is_subset(caps, accepted);
  gst_caps_unref(accepted);
  return ok;
}

// Per reader media, touched only by arclysrc's streaming thread (pad-added,
// no-more-pads) except `eos` (any payloader's thread).
struct MediaBuild {
  GstElement* bin = nullptr;  // "dynpay0"
  std::shared_ptr<ReaderCounters> counters;
  std::weak_ptr<Stream> stream;     // to know how many tracks the publisher has
  GWeakRef client;                  // the reader's connection, closed at the end of the stream
  GMainContext* context = nullptr;  // the server's, where the connection is closed
  bool shared = false;              // a media of every live-edge reader of the key
  std::weak_ptr<RtspServer::Shared> server;
  int pads = 0;    // arclysrc pads seen (offered or not)
  int tracks = 0;  // RTP streams exposed
  int dynamic_pts = 0;
  bool complete = false;
  std::atomic<int> eos{0};
  MediaBuild() { g_weak_ref_init(&client, nullptr); }
  ~MediaBuild() {
    g_weak_ref_clear(&client);
    if (context) g_main_context_unref(context);
  }
};

// The media is complete when every track of the publisher has its pad: the
// cached configs say how many there are. (arclysrc's own no-more-pads may come
// before a track whose config followed the keyframe; a stream just starting
// has no second track yet, and waiting for one would hold the first keyframe.)
void maybe_complete(MediaBuild* build, bool source_says_complete) {
  if (build->complete) return;
  std::size_t expected = 0;
  if (auto stream = build->stream.lock()) expected = stream->cached_configs().size();
  const bool all_pads = build->pads > 0 && static_cast<std::size_t>(build->pads) >= expected;
  if (all_pads || (source_says_complete && build->pads > 0 && expected == 0)) {
    build->complete = true;
    gst_element_no_more_pads(build->bin);
  }
}

gboolean close_client(gpointer data) {
  gst_rtsp_client_close(GST_RTSP_CLIENT(data));
  return G_SOURCE_REMOVE;
}

// The readers of a shared media whose publisher left (on the server's thread).
struct EndedMedia {
  std::weak_ptr<RtspServer::Shared> server;
  const void* element;
};
gboolean close_readers_of(gpointer data) {
  auto* ended = static_cast<EndedMedia*>(data);
  std::vector<GstRTSPClient*> clients;
  if (auto shared = ended->server.lock()) {
    std::lock_guard lock(shared->mutex);
    for (const auto& [client, reader] : shared->readers)
      if (reader.media_element == ended->element)
        clients.push_back(GST_RTSP_CLIENT(g_object_ref(client)));
  }
  for (GstRTSPClient* client : clients) {
    gst_rtsp_client_close(client);
    g_object_unref(client);
  }
  return G_SOURCE_REMOVE;
}

// Every track ended (the publisher left): close the reader's connection from the
// server's thread (never from a streaming thread: closing unprepares this media).
GstPadProbeReturn watch_eos(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* build = static_cast<MediaBuild*>(data);
  if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) != GST_EVENT_EOS) return GST_PAD_PROBE_OK;
  if (build->eos.fetch_add(1) + 1 < build->tracks || !build->context) return GST_PAD_PROBE_OK;
  if (build->shared) {
    g_main_context_invoke_full(build->context, G_PRIORITY_DEFAULT, close_readers_of,
                               new EndedMedia{build->server, GST_ELEMENT_PARENT(build->bin)},
                               [](gpointer p) { delete static_cast<EndedMedia*>(p); });
    return GST_PAD_PROBE_OK;
  }
  if (gpointer client = g_weak_ref_get(&build->client)) {
    g_main_context_invoke_full(build->context, G_PRIORITY_DEFAULT, close_client, client,
                               g_object_unref);
  }
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn count_rtp(GstPad*, GstPadProbeInfo* info, gpointer data) {
  auto* counters = static_cast<ReaderCounters*>(data);
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER) {
    counters->bytes.fetch_add(gst_buffer_get_size(GST_PAD_PROBE_INFO_BUFFER(info)),
                              std::memory_order_relaxed);
    counters->packets.fetch_add(1, std::memory_order_relaxed);
  } else if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
    GstBufferList* list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
    const guint n = gst_buffer_list_length(list);
    std::uint64_t bytes = 0;
    for (guint i = 0; i < n; ++i) bytes += gst_buffer_get_size(gst_buffer_list_get(list, i));
    counters->bytes.fetch_add(bytes, std::memory_order_relaxed);
    counters->packets.fetch_add(n, std::memory_order_relaxed);
  }
  return GST_PAD_PROBE_OK;
}

// arclysrc exposed a track (its streaming thread): payload it and expose RTP.
void add_track(GstElement* src, GstPad* pad, MediaBuild* build);

void on_track_pad(GstElement* src, GstPad* pad, gpointer data) {
  auto* build = static_cast<MediaBuild*>(data);
  ++build->pads;
  add_track(src, pad, build);
  maybe_complete(build, false);
}

void add_track(GstElement* src, GstPad* pad, MediaBuild* build) {
  GstCaps* caps = gst_pad_get_current_caps(pad);
  if (!caps) {
    GST_WARNING_OBJECT(src, "track %s without caps: not offered", GST_PAD_NAME(pad));
    return;
  }
  const PayloaderChoice choice = choose_payloader(gst_caps_get_structure(caps, 0));
  if (!choice.payloader) {
    gchar* desc = gst_caps_to_string(caps);
    GST_INFO_OBJECT(src, "track %s (%s): no RTP payloader, not offered", GST_PAD_NAME(pad), desc);
    g_free(desc);
    gst_caps_unref(caps);
    return;
  }
  GstBin* bin = GST_BIN(build->bin);
  GstElement* pay = gst_element_factory_make(choice.payloader, nullptr);
  // A parser only where the payloader cannot take the publisher's caps as they
  // are (no stream-format/alignment, ADTS AAC): a parser per reader is the
  // largest part of its media (h264parse alone allocates 240 KiB), and the
  // payloader repeats the parameter sets itself (config-interval=-1 below).
  const bool parse = choice.parser && !(pay && payloader_accepts(pay, caps));
  gst_caps_unref(caps);
  GstElement* parser = parse ? gst_element_factory_make(choice.parser, nullptr) : nullptr;
  if (!pay || (parse && !parser)) {
    GST_WARNING_OBJECT(src, "track %s: element %s is missing", GST_PAD_NAME(pad),
                       pay ? choice.parser : choice.payloader);
    if (pay) gst_object_unref(pay);
    if (parser) gst_object_unref(parser);
    return;
  }
  if (choice.dynamic_pt) g_object_set(pay, "pt", 96 + build->dynamic_pts++, nullptr);
  if (g_object_class_find_property(G_OBJECT_GET_CLASS(pay), "config-interval"))
    g_object_set(pay, "config-interval", -1, nullptr);  // SPS/PPS with every IDR
  if (parser && g_object_class_find_property(G_OBJECT_GET_CLASS(parser), "config-interval"))
    g_object_set(parser, "config-interval", -1, nullptr);
  // Until PLAY the media holds each stream's first packet, and with it whatever
  // thread pushed it: a queue per track keeps arclysrc's thread free to expose
  // the tracks whose config follows the keyframe. Bounded in bytes only (a GOP
  // replay is many buffers); the limit is a backstop for a reader that never plays.
  GstElement* queue = gst_element_factory_make("queue", nullptr);
  g_object_set(queue, "max-size-buffers", 0, "max-size-time", G_GUINT64_CONSTANT(0),
               "max-size-bytes", 32u << 20, nullptr);
  gst_bin_add_many(bin, queue, pay, nullptr);
  if (parser) {
    gst_bin_add(bin, parser);
    gst_element_link_many(queue, parser, pay, nullptr);
  } else {
    gst_element_link(queue, pay);
  }
  GstElement* first = queue;
  GstPad* sink = gst_element_get_static_pad(first, "sink");
  const GstPadLinkReturn linked = gst_pad_link(pad, sink);
  gst_object_unref(sink);
  if (linked != GST_PAD_LINK_OK) {
    GST_WARNING_OBJECT(src, "track %s: cannot link to %s", GST_PAD_NAME(pad), choice.payloader);
    gst_bin_remove_many(bin, queue, pay, nullptr);
    if (parser) gst_bin_remove(bin, parser);
    return;
  }
  GstPad* rtp = gst_element_get_static_pad(pay, "src");
  gst_pad_add_probe(
      rtp, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
      count_rtp, build->counters.get(), nullptr);
  gst_pad_add_probe(rtp, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, watch_eos, build, nullptr);
  gchar* name = g_strdup_printf("src_%d", build->tracks++);
  GstPad* ghost = gst_ghost_pad_new(name, rtp);
  g_free(name);
  gst_object_unref(rtp);
  watch_capture_time(pad, ghost);  // the stream's SRs carry the publisher's time
  // A joining reader of a shared media starts with the GOP of its video.
  if (build->shared && choice.video) RtpGopCache::attach(pay, ghost);
  gst_element_sync_state_with_parent(pay);
  if (parser) gst_element_sync_state_with_parent(parser);
  gst_element_sync_state_with_parent(queue);
  gst_pad_set_active(ghost, TRUE);
  gst_element_add_pad(build->bin, ghost);  // gst-rtsp-media makes a stream of it
}

void on_tracks_complete(GstElement*, gpointer data) {
  maybe_complete(static_cast<MediaBuild*>(data), true);
}

// The reader start a URL asks for (?start=, else the server's default).
RtspStart start_of(const RtspServer::Shared& shared, const GstRTSPUrl* url) {
  if (auto v = query_value(url->query, "start"))
    if (auto s = parse_start(*v)) return *s;
  return shared.settings.start;
}

// Whether the readers of `url` share one media.
bool shares_media(const RtspServer::Shared& shared, const GstRTSPUrl* url) {
  return shared.settings.shared_media && start_of(shared, url) == RtspStart::LiveEdge;
}

GstElement* factory_create_element(GstRTSPMediaFactory* factory, const GstRTSPUrl* url) {
  RtspServer::Shared* shared = shared_of(factory);
  if (!shared || !url) return nullptr;
  const std::string key = key_text(url->abspath);
  const RtspStart start = start_of(*shared, url);

  GstElement* src = gst_element_factory_make("arclysrc", nullptr);
  if (!src) {
    GST_ERROR("the arclysrc element is missing (is the arcly plugin on GST_PLUGIN_PATH?)");
    return nullptr;
  }
  gst_util_set_object_arg(G_OBJECT(src), "start", start_name(start));
  g_object_set(src, "stream", key.c_str(), "engine", shared->settings.engine.c_str(), "wait", 0,
               nullptr);
  GstElement* top = gst_bin_new(nullptr);
  GstElement* dyn = gst_bin_new("dynpay0");
  gst_bin_add(GST_BIN(dyn), src);
  gst_bin_add(GST_BIN(top), dyn);

  auto* build = new MediaBuild;
  build->bin = dyn;
  build->counters = std::make_shared<ReaderCounters>();
  build->shared = shares_media(*shared, url);
  build->server = weak_shared_of(factory);
  if (auto parsed = StreamKey::try_parse(key)) build->stream = shared->engine->find_stream(*parsed);
  if (GstRTSPContext* ctx = gst_rtsp_context_get_current(); ctx && ctx->client)
    g_weak_ref_set(&build->client, ctx->client);
  if (shared->context) build->context = g_main_context_ref(shared->context);
  // The counters travel with the media so that pre-play finds them.
  g_object_set_data_full(
      G_OBJECT(top), "arcly-reader-counters", new std::shared_ptr<ReaderCounters>(build->counters),
      [](gpointer p) { delete static_cast<std::shared_ptr<ReaderCounters>*>(p); });
  g_object_set_data_full(G_OBJECT(top), "arcly-start", g_strdup(start_name(start)), g_free);
  if (build->shared) g_object_set_data(G_OBJECT(top), "arcly-shared", GINT_TO_POINTER(1));
  g_object_set_data_full(G_OBJECT(dyn), "arcly-media-build", build,
                         [](gpointer p) { delete static_cast<MediaBuild*>(p); });
  g_signal_connect(src, "pad-added", G_CALLBACK(on_track_pad), build);
  g_signal_connect(src, "no-more-pads", G_CALLBACK(on_tracks_complete), build);
  return top;
}

// One shared media per key (however the client spells the host); the readers
// of every other URL get a media of their own (not cached by this key).
gchar* factory_gen_key(GstRTSPMediaFactory* factory, const GstRTSPUrl* url) {
  RtspServer::Shared* shared = shared_of(factory);
  if (!shared || !url) return nullptr;
  return g_strdup(
      (key_text(url->abspath) + "?start=" + start_name(start_of(*shared, url))).c_str());
}

void factory_configure(GstRTSPMediaFactory* factory, GstRTSPMedia* media) {
  GST_RTSP_MEDIA_FACTORY_CLASS(arcly_media_factory_parent_class)->configure(factory, media);
  GstElement* element = gst_rtsp_media_get_element(media);
  if (!element) return;
  if (g_object_get_data(G_OBJECT(element), "arcly-shared")) {
    gst_rtsp_media_set_shared(media, TRUE);
    // Joining readers get their GOP over their RTSP connection (reader_sender.hpp).
    gst_rtsp_media_set_protocols(media, GST_RTSP_LOWER_TRANS_TCP);
  }
  // No latency: gst-rtsp-server's RTP sinks sync on the clock and so hold every
  // packet for the pipeline's latency (arclysrc's 30 ms and the sink's 20 ms
  // processing deadline), 50 ms before a joining reader's first packet and 50 ms
  // more behind live for every packet. arclysrc's data is live and encoded, and
  // RTP and RTCP carry its timing: the wait buys nothing. The sinks still sync,
  // so a keyframe-start reader's cached GOP still goes out at its spacing.
  GstObject* pipeline = gst_object_get_parent(GST_OBJECT(element));  // the media's
  if (pipeline && GST_IS_PIPELINE(pipeline)) gst_pipeline_set_latency(GST_PIPELINE(pipeline), 0);
  if (pipeline) gst_object_unref(pipeline);
  gst_object_unref(element);
}

void arcly_media_factory_class_init(ArclyMediaFactoryClass* klass) {
  auto* f = GST_RTSP_MEDIA_FACTORY_CLASS(klass);
  f->create_element = factory_create_element;
  f->gen_key = factory_gen_key;
  f->configure = factory_configure;
}
void arcly_media_factory_init(ArclyMediaFactory*) {}

// --- auth: Basic/Digest users, per-key read permissions ---------------------

struct ArclyRtspAuth {
  GstRTSPAuth parent;
};
struct ArclyRtspAuthClass {
  GstRTSPAuthClass parent_class;
};
G_DEFINE_TYPE(ArclyRtspAuth, arcly_rtsp_auth, GST_TYPE_RTSP_AUTH)

constexpr const char* kUserField = "arcly.user";

gboolean authorize_request(GstRTSPAuth* auth, GstRTSPContext* ctx) {
  RtspServer::Shared* shared = shared_of(auth);
  if (!shared) return FALSE;
  // Requests that read media need a reader; the rest (OPTIONS, keep-alives,
  // TEARDOWN of one's own session) do not.
  constexpr int kReads =
      GST_RTSP_DESCRIBE | GST_RTSP_SETUP | GST_RTSP_PLAY | GST_RTSP_ANNOUNCE | GST_RTSP_RECORD;
  if (!(ctx->method & kReads)) return TRUE;
  const std::string key = key_text(ctx->uri ? ctx->uri->abspath : nullptr);
  gchar* header = nullptr;
  const bool has_credentials = gst_rtsp_message_get_header(ctx->request, GST_RTSP_HDR_AUTHORIZATION,
                                                           &header, 0) == GST_RTSP_OK;
  ctx->token = nullptr;
  GST_RTSP_AUTH_CLASS(arcly_rtsp_auth_parent_class)->authenticate(auth, ctx);
  const gchar* user = ctx->token ? gst_rtsp_token_get_string(ctx->token, kUserField) : nullptr;
  const auto challenge = [&] {
    gst_rtsp_message_init_response(ctx->response, GST_RTSP_STS_UNAUTHORIZED,
                                   gst_rtsp_status_as_text(GST_RTSP_STS_UNAUTHORIZED),
                                   ctx->request);
    GST_RTSP_AUTH_CLASS(arcly_rtsp_auth_parent_class)->generate_authenticate_header(auth, ctx);
    gst_rtsp_client_send_message(ctx->client, ctx->session, ctx->response);
  };
  if (!user) {
    if (has_credentials) {
      shared->refuse(&RtspServerStats::refused_unauthorized, peer_of(ctx),
                     "401 wrong credentials for " + key);
      challenge();
      return FALSE;
    }
    if (any_match(shared->settings.anonymous_read, key)) return TRUE;
    GST_DEBUG("rtsp: %s: credentials required for %s", peer_of(ctx).c_str(), key.c_str());
    challenge();  // the usual first round of an authenticating client
    return FALSE;
  }
  for (const auto& u : shared->settings.users) {
    if (u.name == user && any_match(u.read, key)) return TRUE;
  }
  shared->refuse(&RtspServerStats::refused_forbidden, peer_of(ctx),
                 "403 user " + std::string(user) + " may not read " + key);
  send_status(ctx, GST_RTSP_STS_FORBIDDEN);
  return FALSE;
}

gboolean auth_check(GstRTSPAuth* auth, GstRTSPContext* ctx, const gchar* check) {
  if (g_str_equal(check, GST_RTSP_AUTH_CHECK_URL)) return authorize_request(auth, ctx);
  // Factory access is decided per key by the URL check above.
  if (g_str_has_prefix(check, "auth.check.media.factory.")) return TRUE;
  // TLS set-up of a new connection stays the base class's.
  if (g_str_equal(check, GST_RTSP_AUTH_CHECK_CONNECT))
    return GST_RTSP_AUTH_CLASS(arcly_rtsp_auth_parent_class)->check(auth, ctx, check);
  return FALSE;  // e.g. client-chosen UDP destinations: never
}

void arcly_rtsp_auth_class_init(ArclyRtspAuthClass* klass) {
  GST_RTSP_AUTH_CLASS(klass)->check = auth_check;
}
void arcly_rtsp_auth_init(ArclyRtspAuth*) {}

// --- client: key paths, 404/limits, readers ---------------------------------

struct ArclyRtspClient {
  GstRTSPClient parent;
  GstRTSPMediaFactory* factory;  // the one factory, mounted per key on demand
  ReaderSender* sender;          // owned by the client's send function, once installed
  bool prepared;                 // by the first PLAY response
};
struct ArclyRtspClientClass {
  GstRTSPClientClass parent_class;
};
G_DEFINE_TYPE(ArclyRtspClient, arcly_rtsp_client, GST_TYPE_RTSP_CLIENT)

// SETUP/PLAY paths: "/app/stream" plus the control part, with any query removed;
// a client that resolved the control against "…/app/stream?start=x/" sends it
// inside the query ("start=x/stream=0").
gchar* client_make_path(GstRTSPClient*, const GstRTSPUrl* uri) {
  std::string path = uri->abspath ? uri->abspath : "/";
  if (uri->query) {
    const std::string_view q = uri->query;
    const auto slash = q.find('/');
    if (slash != std::string_view::npos) path += q.substr(slash);
  }
  return g_strdup(path.c_str());
}

GstRTSPStatusCode client_pre_describe(GstRTSPClient* client, GstRTSPContext* ctx) {
  RtspServer::Shared* shared = shared_of(client);
  if (!shared) return GST_RTSP_STS_INTERNAL_SERVER_ERROR;
  const std::string peer = peer_of(ctx);
  const std::string text = key_text(ctx->uri->abspath);
  std::string why;
  const auto key = StreamKey::try_parse(text, &why);
  if (!key) {
    shared->refuse(&RtspServerStats::refused_not_found, peer,
                   "404 path '" + text + "' is no stream key: " + why);
    return GST_RTSP_STS_NOT_FOUND;
  }
  if (auto v = query_value(ctx->uri->query, "start"); v && !parse_start(*v)) {
    shared->refuse(&RtspServerStats::refused_bad_request, peer,
                   "400 start=" + *v + " for " + text + " (expected keyframe or live-edge)");
    return GST_RTSP_STS_BAD_REQUEST;
  }
  try {
    if (shared->settings.wait.count() > 0)
      shared->engine->wait_for_stream(*key, shared->settings.wait);
    else
      shared->engine->get_stream(*key);
  } catch (const Error&) {
    shared->refuse(&RtspServerStats::refused_not_found, peer,
                   "404 stream " + text + " is not published");
    return GST_RTSP_STS_NOT_FOUND;
  }
  std::string limit;
  bool mount = false;
  {
    std::lock_guard lock(shared->mutex);
    if (!shared->readers.contains(client)) limit = shared->limit_reached(text);
    mount = shared->mounted.insert("/" + text).second;
  }
  if (!limit.empty()) {
    shared->refuse(&RtspServerStats::refused_limit, peer, "503 " + limit);
    return GST_RTSP_STS_SERVICE_UNAVAILABLE;
  }
  if (mount) {
    GstRTSPMountPoints* mounts = gst_rtsp_client_get_mount_points(client);
    GstRTSPMediaFactory* factory = reinterpret_cast<ArclyRtspClient*>(client)->factory;
    gst_rtsp_mount_points_add_factory(mounts, ("/" + text).c_str(),
                                      GST_RTSP_MEDIA_FACTORY(g_object_ref(factory)));
    g_object_unref(mounts);
  }
  return GST_RTSP_STS_OK;
}

std::string transport_of(GstRTSPSessionMedia* sessmedia) {
  if (!sessmedia) return "unknown";
  GPtrArray* transports = gst_rtsp_session_media_get_transports(sessmedia);
  std::string name = "unknown";
  if (transports && transports->len > 0) {
    auto* st = static_cast<GstRTSPStreamTransport*>(g_ptr_array_index(transports, 0));
    const GstRTSPTransport* t = st ? gst_rtsp_stream_transport_get_transport(st) : nullptr;
    if (t) {
      switch (t->lower_transport) {
        case GST_RTSP_LOWER_TRANS_TCP:
          name = "tcp";
          break;
        case GST_RTSP_LOWER_TRANS_UDP:
          name = "udp";
          break;
        case GST_RTSP_LOWER_TRANS_UDP_MCAST:
          name = "udp-multicast";
          break;
        default:
          break;
      }
    }
  }
  if (transports) g_ptr_array_unref(transports);
  return name;
}

// What a TCP reader's connection may queue beyond its socket: kSendBacklog of
// the stream at its bitrate now (gst-rtsp-server's own per-reader backlog
// lasts 10 s), at least kMinSendBacklog (a low-bitrate stream's catch-up). Asked
// again as the reader reads (reader_sender.hpp, "Back pressure").
constexpr auto kSendBacklog = std::chrono::seconds(10);
constexpr gsize kMinSendBacklog = 256 * 1024;
constexpr gsize kMaxSendBacklog = 64u << 20;

// The published stream's bitrate now, bits/s (0 when nobody publishes `key`).
double bitrate_of(const RtspServer::Shared& shared, const std::string& key) {
  if (auto k = StreamKey::try_parse(key))
    if (auto stream = shared.engine ? shared.engine->find_stream(*k) : nullptr)
      return stream->qos().bitrate_bps;
  return 0;
}

gsize send_backlog_bytes(const RtspServer::Shared& shared, const std::string& key) {
  const double bytes = bitrate_of(shared, key) / 8 * static_cast<double>(kSendBacklog.count());
  return std::clamp(static_cast<gsize>(bytes), kMinSendBacklog, kMaxSendBacklog);
}

// A TCP reader's connection sends through a ReaderSender, which closes it if it
// stops reading (logged once, counted). On a shared media it also counts the
// reader's bytes and sends it the GOP first.
void take_over_sending(GstRTSPClient* client, RtspServer::Shared::Reader& reader,
                       bool shared_media) {
  auto* self = reinterpret_cast<ArclyRtspClient*>(client);
  if (self->sender) return;
  // A per-reader media's pad probe counts the RTP; the sender adds the send queue.
  auto counters =
      shared_media || !reader.counters ? std::make_shared<ReaderCounters>() : reader.counters;
  auto backlog = [weak = weak_shared_of(client), key = reader.key]() -> gsize {
    auto shared = weak.lock();
    return shared ? send_backlog_bytes(*shared, key) : 0;
  };
  auto slow = [weak = weak_shared_of(client),
               who = reader.address + " reads " + reader.key](gsize bound) {
    auto shared = weak.lock();
    if (!shared) return;
    {
      std::lock_guard lock(shared->mutex);
      ++shared->counts.dropped_slow;
    }
    shared->warn("rtsp: " + who + " too slowly: closed (its connection's send backlog of " +
                 std::to_string(bound / 1024) + " KiB is full)");
  };
  self->sender = ReaderSender::install(client, counters, counters != reader.counters,
                                       std::move(backlog), std::move(slow));
  if (!self->sender) {
    GST_WARNING("rtsp: %s: cannot take over the connection's sending: %s", reader.address.c_str(),
                shared_media ? "no GOP at join, no slow-reader close" : "no slow-reader close");
    return;
  }
  if (counters == reader.counters) return;
  reader.counters = counters;
  reader.shared_media = shared_media;
  RtspServer::Shared* shared = shared_of(client);
  std::lock_guard lock(shared->mutex);
  if (auto it = shared->readers.find(client); it != shared->readers.end()) {
    it->second.counters = counters;
    it->second.shared_media = shared_media;
  }
}

// The first PLAY response of a TCP reader: its sender learns the channels and,
// on a shared media, snapshots the GOP and rewrites RTP-Info.
GstRTSPStatusCode client_adjust_play_response(GstRTSPClient* client, GstRTSPContext* ctx) {
  auto* self = reinterpret_cast<ArclyRtspClient*>(client);
  if (self->sender && !std::exchange(self->prepared, true)) self->sender->prepare(ctx);
  return GST_RTSP_STS_OK;
}

GstRTSPStatusCode client_pre_play(GstRTSPClient* client, GstRTSPContext* ctx) {
  RtspServer::Shared* shared = shared_of(client);
  if (!shared) return GST_RTSP_STS_INTERNAL_SERVER_ERROR;
  const std::string key = key_text(ctx->uri ? ctx->uri->abspath : nullptr);
  RtspServer::Shared::Reader reader;
  reader.key = key;
  reader.address = peer_of(ctx);
  reader.transport = transport_of(ctx->sessmedia);
  reader.since = Clock::now();
  if (ctx->media) {
    GstElement* element = gst_rtsp_media_get_element(ctx->media);
    if (element) {
      if (auto* c = static_cast<std::shared_ptr<ReaderCounters>*>(
              g_object_get_data(G_OBJECT(element), "arcly-reader-counters")))
        reader.counters = *c;
      if (auto* s = static_cast<const gchar*>(g_object_get_data(G_OBJECT(element), "arcly-start")))
        reader.start = s;
      reader.media_element = element;
      gst_object_unref(element);
    }
  }
  std::string limit;
  {
    std::lock_guard lock(shared->mutex);
    if (shared->readers.contains(client)) return GST_RTSP_STS_OK;  // PLAY after PAUSE
    limit = shared->limit_reached(key);
    if (limit.empty()) {
      shared->readers.emplace(client, reader);
      ++shared->counts.readers_total;
    }
  }
  if (!limit.empty()) {
    shared->refuse(&RtspServerStats::refused_limit, reader.address, "503 " + limit);
    return GST_RTSP_STS_SERVICE_UNAVAILABLE;
  }
  const bool shared_media = ctx->media && gst_rtsp_media_is_shared(ctx->media);
  if (shared_media || reader.transport == "tcp") take_over_sending(client, reader, shared_media);
  shared->changed.notify_all();
  shared->note("rtsp: " + reader.address + " reads " + key + " over " + reader.transport +
               " (start=" + reader.start + ")");
  return GST_RTSP_STS_OK;
}

void forget_reader(GstRTSPClient* client, const char* why) {
  RtspServer::Shared* shared = shared_of(client);
  if (!shared) return;
  std::optional<RtspServer::Shared::Reader> gone;
  {
    std::lock_guard lock(shared->mutex);
    auto it = shared->readers.find(client);
    if (it == shared->readers.end()) return;
    gone = std::move(it->second);
    shared->readers.erase(it);
  }
  shared->changed.notify_all();
  shared->note("rtsp: " + gone->address + " stopped reading " + gone->key + " (" + why + ", " +
               std::to_string(gone->counters ? gone->counters->bytes.load() : 0) + " bytes)");
}

// Every error response goes through here. Ours were logged when refused; a
// server error of gst-rtsp-server's own (a reader's media that cannot be
// prepared: 503, e.g. a track its payloader rejects) is logged here, once, with
// the peer and the key, so an operator sees why a reader got nothing.
GstRTSPStatusCode client_adjust_error_code(GstRTSPClient* client, GstRTSPContext* ctx,
                                           GstRTSPStatusCode code) {
  const bool ours = std::exchange(RtspServer::Shared::refused_request, nullptr) == ctx;
  RtspServer::Shared* shared = shared_of(client);
  if (ours || !shared || code < 500) return code;
  const char* method = ctx && ctx->request
                           ? gst_rtsp_method_as_text(ctx->request->type_data.request.method)
                           : nullptr;
  const std::string line = "rtsp: " + peer_of(ctx) + ": " + std::to_string(code) + " " +
                           gst_rtsp_status_as_text(code) + " for " +
                           (method ? method : "a request") + " of " +
                           key_text(ctx && ctx->uri ? ctx->uri->abspath : nullptr) +
                           ": the server could not serve it (a media that cannot be prepared: "
                           "GST_DEBUG=rtspmedia:4 says why)";
  shared->warn(line);
  return code;
}

GstRTSPStatusCode client_pre_teardown(GstRTSPClient* client, GstRTSPContext*) {
  forget_reader(client, "teardown");
  return GST_RTSP_STS_OK;
}

void on_client_closed(GstRTSPClient* client, gpointer) {
  forget_reader(client, "connection closed");
}

void arcly_rtsp_client_finalize(GObject* object) {
  auto* self = reinterpret_cast<ArclyRtspClient*>(object);
  if (self->factory) g_object_unref(self->factory);
  G_OBJECT_CLASS(arcly_rtsp_client_parent_class)->finalize(object);
}

void arcly_rtsp_client_class_init(ArclyRtspClientClass* klass) {
  G_OBJECT_CLASS(klass)->finalize = arcly_rtsp_client_finalize;
  auto* c = GST_RTSP_CLIENT_CLASS(klass);
  c->make_path_from_uri = client_make_path;
  c->pre_describe_request = client_pre_describe;
  c->pre_play_request = client_pre_play;
  c->pre_teardown_request = client_pre_teardown;
  c->adjust_error_code = client_adjust_error_code;
  c->adjust_play_response = client_adjust_play_response;
}
void arcly_rtsp_client_init(ArclyRtspClient* self) {
  self->factory = nullptr;
  self->sender = nullptr;
  self->prepared = false;
}

// --- server: makes our clients ----------------------------------------------

struct ArclyRtspServer {
  GstRTSPServer parent;
  GstRTSPMediaFactory* factory;
};
struct ArclyRtspServerClass {
  GstRTSPServerClass parent_class;
};
G_DEFINE_TYPE(ArclyRtspServer, arcly_rtsp_server, GST_TYPE_RTSP_SERVER)

GstRTSPClient* server_create_client(GstRTSPServer* server) {
  auto* self = reinterpret_cast<ArclyRtspServer*>(server);
  auto* client = static_cast<ArclyRtspClient*>(g_object_new(arcly_rtsp_client_get_type(), nullptr));
  GstRTSPClient* c = GST_RTSP_CLIENT(client);
  client->factory = GST_RTSP_MEDIA_FACTORY(g_object_ref(self->factory));
  if (SharedPtr* s = shared_holder_of(server)) attach_shared(client, *s);
  GstRTSPSessionPool* pool = gst_rtsp_server_get_session_pool(server);
  gst_rtsp_client_set_session_pool(c, pool);
  g_object_unref(pool);
  GstRTSPMountPoints* mounts = gst_rtsp_server_get_mount_points(server);
  gst_rtsp_client_set_mount_points(c, mounts);
  g_object_unref(mounts);
  gst_rtsp_client_set_content_length_limit(c, gst_rtsp_server_get_content_length_limit(server));
  if (GstRTSPAuth* auth = gst_rtsp_server_get_auth(server)) {
    gst_rtsp_client_set_auth(c, auth);
    g_object_unref(auth);
  }
  GstRTSPThreadPool* threads = gst_rtsp_server_get_thread_pool(server);
  gst_rtsp_client_set_thread_pool(c, threads);
  g_object_unref(threads);
  g_signal_connect(c, "closed", G_CALLBACK(on_client_closed), nullptr);
  return c;
}

void arcly_rtsp_server_finalize(GObject* object) {
  auto* self = reinterpret_cast<ArclyRtspServer*>(object);
  if (self->factory) g_object_unref(self->factory);
  G_OBJECT_CLASS(arcly_rtsp_server_parent_class)->finalize(object);
}

void arcly_rtsp_server_class_init(ArclyRtspServerClass* klass) {
  G_OBJECT_CLASS(klass)->finalize = arcly_rtsp_server_finalize;
  GST_RTSP_SERVER_CLASS(klass)->create_client = server_create_client;
}
void arcly_rtsp_server_init(ArclyRtspServer* self) {
  self->factory = nullptr;
}

GstRTSPFilterResult remove_client(GstRTSPServer*, GstRTSPClient*, gpointer) {
  return GST_RTSP_FILTER_REMOVE;
}

}  // namespace

// ---------------------------------------------------------------------------

struct RtspServer::Objects {
  GstRTSPServer* server = nullptr;
  GMainContext* context = nullptr;
  GMainLoop* loop = nullptr;
  GSource* source = nullptr;
  std::thread thread;
  int port = 0;
};

RtspServer::RtspServer(RtspServerSettings settings) : shared_(std::make_shared<Shared>()) {
  ensure_debug_category();
  validate(settings);
  shared_->settings = std::move(settings);
}

RtspServer::~RtspServer() {
  stop();
}

const RtspServerSettings& RtspServer::settings() const {
  return shared_->settings;
}

void RtspServer::start() {
  if (objects_) return;
  const RtspServerSettings& s = shared_->settings;
  shared_->engine = gst::engine_for(s.engine);
  if (!s.users.empty() || s.anonymous_read.empty()) {
    if (s.users.empty()) GST_WARNING("rtsp: no users and no anonymous_read: nobody can read");
  }
  auto objects = std::make_unique<Objects>();
  auto* server = static_cast<ArclyRtspServer*>(g_object_new(arcly_rtsp_server_get_type(), nullptr));
  objects->server = GST_RTSP_SERVER(server);
  attach_shared(server, shared_);

  auto* factory =
      static_cast<GstRTSPMediaFactory*>(g_object_new(arcly_media_factory_get_type(), nullptr));
  attach_shared(factory, shared_);
  gst_rtsp_media_factory_set_shared(factory, FALSE);  // every reader starts at its own keyframe
  gst_rtsp_media_factory_set_media_gtype(factory, capture_time_media_get_type());
  gst_rtsp_media_factory_set_transport_mode(factory, GST_RTSP_TRANSPORT_MODE_PLAY);
  gst_rtsp_media_factory_set_suspend_mode(factory, GST_RTSP_SUSPEND_MODE_NONE);
  int protocols = 0;
  if (s.tcp) protocols |= GST_RTSP_LOWER_TRANS_TCP;
  if (s.udp) protocols |= GST_RTSP_LOWER_TRANS_UDP;
  gst_rtsp_media_factory_set_protocols(factory, static_cast<GstRTSPLowerTrans>(protocols));
  server->factory = factory;

  auto* auth = static_cast<GstRTSPAuth*>(g_object_new(arcly_rtsp_auth_get_type(), nullptr));
  attach_shared(auth, shared_);
  int methods = 0;
  if (s.basic) methods |= GST_RTSP_AUTH_BASIC;
  if (s.digest) methods |= GST_RTSP_AUTH_DIGEST;
  gst_rtsp_auth_set_supported_methods(auth, static_cast<GstRTSPAuthMethod>(methods));
  gst_rtsp_auth_set_realm(auth, s.realm.c_str());
  for (const auto& u : s.users) {
    GstRTSPToken* token = gst_rtsp_token_new(kUserField, G_TYPE_STRING, u.name.c_str(), nullptr);
    if (s.basic) {
      gchar* basic = gst_rtsp_auth_make_basic(u.name.c_str(), u.password.c_str());
      gst_rtsp_auth_add_basic(auth, basic, token);
      g_free(basic);
    }
    if (s.digest) gst_rtsp_auth_add_digest(auth, u.name.c_str(), u.password.c_str(), token);
    gst_rtsp_token_unref(token);
  }
  gst_rtsp_server_set_auth(objects->server, auth);
  g_object_unref(auth);

  // Connections share a few loops, round robin (a thread is ~45 KiB, the
  // largest part of a shared-media reader); with wait=, a DESCRIBE waiting for
  // its publisher blocks its loop, so then each connection gets a thread of its
  // own. The readers' medias share a loop per core.
  GstRTSPThreadPool* threads = media_sharing_thread_pool_new();
  gst_rtsp_thread_pool_set_max_threads(
      threads, s.wait.count() > 0 ? -1
                                  : static_cast<gint>(kConnectionLoopsPerCore *
                                                      std::max(1u, g_get_num_processors())));
  gst_rtsp_server_set_thread_pool(objects->server, threads);
  g_object_unref(threads);

  const std::string where = (s.host.empty() ? std::string("0.0.0.0") : s.host);
  gst_rtsp_server_set_address(objects->server, where.c_str());
  gst_rtsp_server_set_service(objects->server, std::to_string(s.port).c_str());
  GError* error = nullptr;
  objects->source = gst_rtsp_server_create_source(objects->server, nullptr, &error);
  if (!objects->source) {
    const std::string msg = "rtsp: cannot listen on " + where + ":" + std::to_string(s.port) +
                            ": " + (error ? error->message : "unknown error");
    g_clear_error(&error);
    g_object_unref(objects->server);
    throw Error(Errc::Io, msg);
  }
  objects->port = gst_rtsp_server_get_bound_port(objects->server);
  objects->context = g_main_context_new();
  objects->loop = g_main_loop_new(objects->context, FALSE);
  if (shared_->context) g_main_context_unref(shared_->context);
  shared_->context = g_main_context_ref(objects->context);
  g_source_attach(objects->source, objects->context);
  GMainLoop* loop = objects->loop;
  GMainContext* context = objects->context;
  objects->thread = std::thread([loop, context] {
    g_main_context_push_thread_default(context);
    g_main_loop_run(loop);
    g_main_context_pop_thread_default(context);
  });
  shared_->note("rtsp: serving on " + where + ":" + std::to_string(objects->port));
  objects_ = std::move(objects);
}

void RtspServer::stop() {
  if (!objects_) return;
  gst_rtsp_server_client_filter(objects_->server, remove_client, nullptr);
  g_source_destroy(objects_->source);
  g_source_unref(objects_->source);
  // Quit from inside the loop: a quit before the thread reached
  // g_main_loop_run() would be forgotten.
  GSource* quit = g_idle_source_new();
  g_source_set_callback(
      quit,
      [](gpointer loop) {
        g_main_loop_quit(static_cast<GMainLoop*>(loop));
        return G_SOURCE_REMOVE;
      },
      objects_->loop, nullptr);
  g_source_attach(quit, objects_->context);
  g_source_unref(quit);
  objects_->thread.join();
  g_main_loop_unref(objects_->loop);
  g_main_context_unref(objects_->context);
  g_object_unref(objects_->server);
  objects_.reset();
}

int RtspServer::port() const {
  return objects_ ? objects_->port : 0;
}

RtspServerStats RtspServer::stats() const {
  RtspServerStats out;
  {
    std::lock_guard lock(shared_->mutex);
    out = shared_->counts;
    out.readers = shared_->readers.size();
    for (const auto& [client, r] : shared_->readers) {
      RtspReaderStats rs;
      rs.key = r.key;
      rs.address = r.address;
      rs.transport = r.transport;
      rs.start = r.start;
      rs.since = r.since;
      rs.shared_media = r.shared_media;
      if (r.counters) {
        rs.bytes = r.counters->bytes.load(std::memory_order_relaxed);
        rs.packets = r.counters->packets.load(std::memory_order_relaxed);
        rs.queued_bytes = r.counters->queued.load(std::memory_order_relaxed);
        rs.queue_limit_bytes = r.counters->queue_limit.load(std::memory_order_relaxed);
      }
      out.reader_list.push_back(std::move(rs));
    }
  }
  // Lag: the send queue in time at the stream's bitrate (a UDP reader has none).
  std::map<std::string, double> bitrates;
  for (RtspReaderStats& rs : out.reader_list) {
    if (rs.transport != "tcp") {
      rs.lag_ms = 0;
      continue;
    }
    auto [it, added] = bitrates.try_emplace(rs.key, 0.0);
    if (added) it->second = bitrate_of(*shared_, rs.key);
    if (it->second > 0)
      rs.lag_ms =
          static_cast<std::int64_t>(static_cast<double>(rs.queued_bytes) * 8000.0 / it->second);
  }
  return out;
}

bool RtspServer::wait_for(const std::function<bool(const RtspServerStats&)>& pred,
                          std::chrono::milliseconds timeout) const {
  const auto deadline = Clock::now() + timeout;
  std::unique_lock lock(shared_->mutex);
  for (;;) {
    lock.unlock();
    if (pred(stats())) return true;
    lock.lock();
    // Byte counters change without a notification: poll them every 50 ms.
    if (shared_->changed.wait_until(
            lock, std::min(deadline, Clock::now() + std::chrono::milliseconds(50))) ==
            std::cv_status::timeout &&
        Clock::now() >= deadline) {
      lock.unlock();
      return pred(stats());
    }
  }
}

}  // namespace arcly::egress
