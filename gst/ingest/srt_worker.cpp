#include "srt_worker.hpp"

#include "arcly/error.hpp"
#include "url.hpp"

GST_DEBUG_CATEGORY_STATIC(arcly_srt_debug);
#define GST_CAT_DEFAULT arcly_srt_debug

namespace arcly::ingest {

SrtWorker::SrtWorker(WorkerSettings settings, SrtSettings srt)
    : SourceWorker(std::move(settings)), srt_(std::move(srt)) {
  static std::once_flag once;
  std::call_once(once, [] {
    GST_DEBUG_CATEGORY_INIT(arcly_srt_debug, "arclysrt", 0, "arcly SRT ingest worker");
  });
  const UrlParts u = parse_url(srt_.uri);
  if (u.scheme != "srt") {
    throw Error(Errc::InvalidArgument, "uri '" + u.redacted() + "': expected an srt:// URI");
  }
  if (u.port <= 0) throw Error(Errc::InvalidArgument, "uri '" + u.redacted() + "': no port");
  if (!srt_.listener && u.host.empty()) {
    throw Error(Errc::InvalidArgument, "uri '" + u.redacted() + "': a caller needs a host");
  }
  if (!srt_.passphrase.empty() && (srt_.passphrase.size() < 10 || srt_.passphrase.size() > 79)) {
    throw Error(Errc::InvalidArgument, "passphrase: SRT requires 10 to 79 characters");
  }
  if (srt_.pbkeylen != 0 && srt_.pbkeylen != 16 && srt_.pbkeylen != 24 && srt_.pbkeylen != 32) {
    throw Error(Errc::InvalidArgument,
                "pbkeylen " + std::to_string(srt_.pbkeylen) + ": expected 16, 24 or 32");
  }
  if (!srt_.listener && !this->settings().key) {
    throw Error(Errc::InvalidArgument, "key: a caller must be given the stream key to publish");
  }
  source_uri_ = "srt://" + (u.host.empty() ? std::string() : u.host) + ":" +
                std::to_string(u.port) + "?mode=" + (srt_.listener ? "listener" : "caller");
}

GstElement* SrtWorker::make_source() {
  GstElement* src = gst_element_factory_make("srtsrc", nullptr);
  if (!src)
    throw Error(Errc::InvalidArgument, "the srtsrc element is missing (gstreamer1.0-plugins-bad)");
  // srtsrc's unlock does not always wake a read blocked on an infinite SRT poll
  // (seen with 1.22 while a caller streams undecodable data): a bounded poll
  // lets the read loop notice the flush, so teardown stays prompt.
  g_object_set(src, "uri", source_uri_.c_str(), "poll-timeout", 100, nullptr);
  if (!srt_.passphrase.empty()) g_object_set(src, "passphrase", srt_.passphrase.c_str(), nullptr);
  if (srt_.pbkeylen != 0)
    gst_util_set_object_arg(G_OBJECT(src), "pbkeylen", std::to_string(srt_.pbkeylen).c_str());
  if (srt_.latency_ms >= 0) g_object_set(src, "latency", srt_.latency_ms, nullptr);
  if (srt_.listener) {
    g_object_set(src, "keep-listening", TRUE, "authentication", TRUE, nullptr);
    g_signal_connect(src, "caller-connecting", G_CALLBACK(&SrtWorker::on_caller_connecting), this);
    g_signal_connect(src, "caller-added", G_CALLBACK(&SrtWorker::on_caller_added), this);
    g_signal_connect(src, "caller-removed", G_CALLBACK(&SrtWorker::on_caller_removed), this);
    std::lock_guard lock(caller_mutex_);
    caller_key_.reset();
    pending_key_.reset();
    set_state(WorkerState::Listening);
  } else {
    if (!srt_.streamid.empty()) g_object_set(src, "streamid", srt_.streamid.c_str(), nullptr);
    g_object_set(src, "auto-reconnect", FALSE, nullptr);
  }
  return src;
}

std::string SrtWorker::vet_caller(std::string_view streamid) {
  StreamIdRequest req;
  std::string why;
  try {
    req = parse_stream_id(streamid);
  } catch (const Error& e) {
    why = e.what();
  }
  {
    // srtsrc serves one caller per listening socket.
    std::lock_guard lock(caller_mutex_);
    if (caller_key_) why = "stream " + caller_key_->str() + " is being published on this port";
  }
  if (why.empty() && !req.key) req.key = srt_.default_key;
  if (why.empty() && !req.key) why = "no stream key in the streamid and no default key configured";
  if (why.empty() && req.mode != "publish") {
    why = "m=" + req.mode + ": this listener only accepts publishers (m=publish)";
  }
  if (why.empty()) {
    const std::string key = req.key->str();
    bool allowed = false;
    for (const auto& pattern : srt_.allow) allowed = allowed || key_matches(pattern, key);
    if (!allowed) why = "stream " + key + " is not in the allowed keys";
    for (const auto& [pattern, token] : srt_.tokens) {
      if (why.empty() && key_matches(pattern, key) && req.token != token) {
        why = "wrong or missing token for stream " + key;
      }
    }
  }
  if (why.empty()) {
    const auto reg = registry();
    auto* engine = dynamic_cast<PlaybackRegistry*>(reg.get());
    if (engine && !holds_key(*req.key)) {
      try {
        engine->get_stream(*req.key);
        why = "stream " + req.key->str() + " is already being published";
      } catch (const Error&) {
      }
    }
  }
  if (!why.empty()) {
    GST_WARNING("%s: caller rejected: %s", settings().name.c_str(), why.c_str());
    note_rejected(why);
    return why;
  }
  std::lock_guard lock(caller_mutex_);
  pending_key_ = req.key;
  GST_INFO("%s: caller accepted for %s%s", settings().name.c_str(), req.key->str().c_str(),
           req.user.empty() ? "" : (" (u=" + req.user + ")").c_str());
  return {};
}

void SrtWorker::on_caller_added(GstElement*, gint, GObject*, gpointer self) {
  auto* w = static_cast<SrtWorker*>(self);
  {
    std::lock_guard lock(w->caller_mutex_);
    w->caller_key_ = std::exchange(w->pending_key_, std::nullopt);
  }
  w->touch_watchdog();
  w->set_state(WorkerState::Connecting);
}

void SrtWorker::on_caller_removed(GstElement*, gint, GObject*, gpointer self) {
  auto* w = static_cast<SrtWorker*>(self);
  std::lock_guard lock(w->caller_mutex_);
  w->caller_key_.reset();
}

gboolean SrtWorker::on_caller_connecting(GstElement*, GObject*, gchar* streamid, gpointer self) {
  auto* w = static_cast<SrtWorker*>(self);
  return w->vet_caller(streamid ? streamid : "").empty();
}

std::optional<Failure> SrtWorker::on_element_message(GstMessage* message) {
  const GstStructure* s = gst_message_get_structure(message);
  if (srt_.listener && s && gst_structure_has_name(s, "connection-removed")) {
    // keep-listening: srtsrc already waits for the next caller on the same
    // socket, so the pipeline stays; the stream waits in grace for its caller.
    GST_INFO("%s: the caller left; listening for the next one", settings().name.c_str());
    publisher_left();
  }
  return std::nullopt;
}

std::optional<StreamKey> SrtWorker::current_key() {
  if (!srt_.listener) return settings().key;
  std::lock_guard lock(caller_mutex_);
  return caller_key_;
}

bool SrtWorker::expects_media() {
  if (!srt_.listener) return true;
  std::lock_guard lock(caller_mutex_);
  return caller_key_.has_value();
}

}  // namespace arcly::ingest
