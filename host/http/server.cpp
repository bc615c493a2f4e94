#include "server.hpp"

#include <gst/gst.h>
#include <libsoup/soup.h>
#include <sys/resource.h>

#include <fstream>
#include <future>
#include <map>
#include <sstream>
#include <thread>

#include "api.hpp"
#include "arcly/error.hpp"
#include "json.hpp"

GST_DEBUG_CATEGORY_STATIC(arcly_http_debug);
#define GST_CAT_DEFAULT arcly_http_debug

namespace arcly::host::http {
namespace {

// The web page: a fixed list, so no request path ever names a file itself.
struct StaticFile {
  const char* file;
  const char* type;
};
const std::map<std::string, StaticFile>& static_files() {
  static const std::map<std::string, StaticFile> files{
      {"/", {"index.html", "text/html; charset=utf-8"}},
      {"/index.html", {"index.html", "text/html; charset=utf-8"}},
      {"/app.js", {"app.js", "text/javascript; charset=utf-8"}},
      {"/style.css", {"style.css", "text/css; charset=utf-8"}},
      {"/hls.min.js", {"hls.min.js", "text/javascript; charset=utf-8"}},
  };
  return files;
}

bool equal_constant_time(const std::string& a, const std::string& b) {
  // Length is not secret enough to hide; the contents are compared in full.
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

void respond(SoupServerMessage* msg, const Response& r) {
  soup_server_message_set_status(msg, static_cast<guint>(r.status), nullptr);
  SoupMessageHeaders* h = soup_server_message_get_response_headers(msg);
  for (const auto& [k, v] : r.headers) soup_message_headers_replace(h, k.c_str(), v.c_str());
  soup_message_headers_replace(h, "Cache-Control", "no-store");
  soup_server_message_set_response(msg, r.content_type.c_str(), SOUP_MEMORY_COPY, r.body.data(),
                                   r.body.size());
}

// Lets 1000 clients connect at once: the default soft limit is often 1024 fds.
void raise_fd_limit() {
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max && rl.rlim_cur < 16384) {
    rl.rlim_cur = std::min<rlim_t>(rl.rlim_max, 16384);
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

}  // namespace

bool parse_listen(const std::string& text, std::string& host, std::uint16_t& port,
                  std::string* why) {
  auto bad = [&](const std::string& w) {
    if (why)
      *why = "'" + text + "' " + w + " (expected IP:port, e.g. 127.0.0.1:9090 or [::1]:9090)";
    return false;
  };
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) return bad("has no port");
  std::string h = text.substr(0, colon);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (h == "localhost") h = "127.0.0.1";
  GInetAddress* addr = g_inet_address_new_from_string(h.c_str());
  if (!addr) return bad("does not start with an IP address");
  g_object_unref(addr);
  const std::string p = text.substr(colon + 1);
  char* end = nullptr;
  const long v = std::strtol(p.c_str(), &end, 10);
  if (*end != '\0' || v < 0 || v > 65535) return bad("has no port from 0 to 65535");
  host = h;
  port = static_cast<std::uint16_t>(v);
  return true;
}

struct Server::Impl {
  ServerConfig config;
  ControlTarget& target;
  Api api;
  GMainContext* context = nullptr;
  GMainLoop* loop = nullptr;
  SoupServer* server = nullptr;
  GThreadPool* pool = nullptr;
  std::thread thread;
  std::string bound;
  bool loopback = true;

  Impl(ServerConfig c, ControlTarget& t) : config(std::move(c)), target(t), api(t) {}

  // On the server thread: creates the server and listens; the promise tells the
  // constructor the address or the error.
  void run(std::promise<std::string>& started) {
    g_main_context_push_thread_default(context);
    server = soup_server_new("server-header", "arcly", nullptr);
    soup_server_add_early_handler(server, nullptr, &Impl::on_early, this, nullptr);
    soup_server_add_handler(server, nullptr, &Impl::on_request, this, nullptr);
    pool = g_thread_pool_new(&Impl::on_snapshot_task, this, 2, FALSE, nullptr);
    std::string host;
    std::uint16_t port = 0;
    std::string why;
    GError* err = nullptr;
    if (!parse_listen(config.listen, host, port, &why)) {
      started.set_exception(
          std::make_exception_ptr(Error(Errc::InvalidArgument, "[http] listen: " + why)));
    } else {
      GInetAddress* ia = g_inet_address_new_from_string(host.c_str());
      loopback = g_inet_address_get_is_loopback(ia);
      GSocketAddress* sa = g_inet_socket_address_new(ia, port);
      g_object_unref(ia);
      const bool ok = soup_server_listen(server, sa, static_cast<SoupServerListenOptions>(0), &err);
      g_object_unref(sa);
      if (!ok) {
        started.set_exception(std::make_exception_ptr(
            Error(Errc::Io, "[http] listen: cannot listen on " + config.listen + ": " +
                                (err ? err->message : "?"))));
        g_clear_error(&err);
      } else {
        GSList* uris = soup_server_get_uris(server);
        if (uris) {
          auto* uri = static_cast<GUri*>(uris->data);
          const std::string h = g_uri_get_host(uri);
          bound = (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" +
                  std::to_string(g_uri_get_port(uri));
        }
        g_slist_free_full(uris, reinterpret_cast<GDestroyNotify>(g_uri_unref));
        started.set_value(bound);
        g_main_loop_run(loop);
      }
    }
    // Wait for snapshots in flight, then deliver their answers.
    g_thread_pool_free(pool, FALSE, TRUE);
    pool = nullptr;
    while (g_main_context_pending(context)) g_main_context_iteration(context, FALSE);
    soup_server_disconnect(server);
    g_object_unref(server);
    server = nullptr;
    g_main_context_pop_thread_default(context);
  }

  // Who is asking, from the Authorization header and the peer address.
  // Sets `denied` when the request may not proceed.
  Role role_of(SoupServerMessage* msg, std::optional<Response>& denied) {
    const bool tokens = !config.token.empty() || !config.read_token.empty();
    if (!tokens) {
      GSocketAddress* remote = soup_server_message_get_remote_address(msg);
      bool local = false;
      if (remote && G_IS_INET_SOCKET_ADDRESS(remote))
        local = g_inet_address_get_is_loopback(
            g_inet_socket_address_get_address(G_INET_SOCKET_ADDRESS(remote)));
      if (!local)
        denied = error_response(403,
                                "no token is configured ([http] token=), so only loopback clients "
                                "may use the API");
      return local ? Role::Admin : Role::None;
    }
    const char* auth =
        soup_message_headers_get_one(soup_server_message_get_request_headers(msg), "Authorization");
    if (!auth) {
      denied = error_response(401, "an \"Authorization: Bearer <token>\" header is required",
                              "Authorization");
      denied->headers.emplace_back("WWW-Authenticate", "Bearer realm=\"arcly\"");
      return Role::None;
    }
    std::string value = auth;
    if (value.size() < 7 || g_ascii_strncasecmp(value.c_str(), "Bearer ", 7) != 0) {
      denied = error_response(401, "the Authorization header must be \"Bearer <token>\"",
                              "Authorization");
      denied->headers.emplace_back("WWW-Authenticate", "Bearer realm=\"arcly\"");
      return Role::None;
    }
    const std::string given = value.substr(7);
    if (!config.token.empty() && equal_constant_time(given, config.token)) return Role::Admin;
    if (!config.read_token.empty() && equal_constant_time(given, config.read_token))
      return Role::Read;
    denied = error_response(401, "the bearer token is not valid", "Authorization");
    denied->headers.emplace_back("WWW-Authenticate",
                                 "Bearer realm=\"arcly\", error=\"invalid_token\"");
    return Role::None;
  }

  static bool is_public(const std::string& method, const char* path) {
    if (method != "GET" && method != "HEAD") return false;
    return std::string_view(path) == "/healthz" || static_files().contains(path);
  }

  // A refusal before the body: libsoup would still read (and buffer) the whole
  // body before answering, so when one is coming the connection is taken over,
  // the answer written on it and the connection closed.
  void refuse_early(SoupServerMessage* msg, const char* path, const Response& r,
                    bool body_follows) {
    log(msg, path, r.status);
    if (!body_follows) {
      respond(msg, r);
      return;
    }
    std::string text = "HTTP/1.1 " + std::to_string(r.status) + " " +
                       soup_status_get_phrase(static_cast<guint>(r.status)) +
                       "\r\nServer: arcly\r\nContent-Type: " + r.content_type +
                       "\r\nContent-Length: " + std::to_string(r.body.size()) +
                       "\r\nConnection: close\r\n";
    for (const auto& [k, v] : r.headers) text += k + ": " + v + "\r\n";
    text += "\r\n" + r.body;
    GIOStream* stream = soup_server_message_steal_connection(msg);
    if (!stream) return;
    g_output_stream_write_all(g_io_stream_get_output_stream(stream), text.data(), text.size(),
                              nullptr, nullptr, nullptr);
    g_io_stream_close(stream, nullptr, nullptr);
    g_object_unref(stream);
  }

  // After the headers, before the body: refuse early what needs no body read.
  static void on_early(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable*,
                       gpointer self) {
    auto* impl = static_cast<Impl*>(self);
    const std::string method = soup_server_message_get_method(msg);
    SoupMessageHeaders* h = soup_server_message_get_request_headers(msg);
    const goffset length = soup_message_headers_get_content_length(h);
    const auto encoding = soup_message_headers_get_encoding(h);
    const bool chunked = encoding == SOUP_ENCODING_CHUNKED || encoding == SOUP_ENCODING_EOF;
    const bool body_follows = chunked || (encoding == SOUP_ENCODING_CONTENT_LENGTH && length > 0);
    if (chunked) {
      impl->refuse_early(
          msg, path, error_response(411, "a request body needs a Content-Length", "Content-Length"),
          true);
      return;
    }
    if (length > static_cast<goffset>(impl->config.max_body)) {
      impl->refuse_early(
          msg, path,
          error_response(413,
                         "the body is " + std::to_string(length) + " bytes; at most " +
                             std::to_string(impl->config.max_body) + " are accepted",
                         "body"),
          true);
      return;
    }
    if (!is_public(method, path)) {
      std::optional<Response> denied;
      impl->role_of(msg, denied);
      if (denied) impl->refuse_early(msg, path, *denied, body_follows);
    }
  }

  void log(SoupServerMessage* msg, const char* path, int status) {
    // The path only: never headers (the token) nor the query.
    GST_INFO("%s %s -> %d", soup_server_message_get_method(msg), path, status);
  }

  static void on_request(SoupServer*, SoupServerMessage* msg, const char* path, GHashTable* query,
                         gpointer self) {
    auto* impl = static_cast<Impl*>(self);
    Request r;
    r.method = soup_server_message_get_method(msg);
    // The raw (still escaped) path: Api decodes per segment, so an escaped "/"
    // stays inside its segment.
    GUri* uri = soup_server_message_get_uri(msg);
    r.path = uri ? g_uri_get_path(uri) : path;
    if (query) {
      GHashTableIter it;
      gpointer k, v;
      g_hash_table_iter_init(&it, query);
      while (g_hash_table_iter_next(&it, &k, &v))
        r.query[static_cast<const char*>(k)] = v ? static_cast<const char*>(v) : "";
    }
    if (auto f = static_files().find(path);
        f != static_files().end() && (r.method == "GET" || r.method == "HEAD")) {
      impl->serve_static(msg, path, f->second);
      return;
    }
    std::optional<Response> denied;
    r.role = is_public(r.method, path) ? Role::Read : impl->role_of(msg, denied);
    if (denied) {
      impl->log(msg, path, denied->status);
      respond(msg, *denied);
      return;
    }
    SoupMessageBody* body = soup_server_message_get_request_body(msg);
    if (body && body->length > 0) {
      GBytes* bytes = soup_message_body_flatten(body);
      gsize n = 0;
      const auto* data = static_cast<const char*>(g_bytes_get_data(bytes, &n));
      r.body.assign(data, n);
      g_bytes_unref(bytes);
    }
    if (Api::is_snapshot(r)) {
      // Off this thread: the answer comes back through the context.
      soup_server_message_pause(msg);
      auto* task = new SnapshotTask{impl, SOUP_SERVER_MESSAGE(g_object_ref(msg)), std::move(r), {}};
      g_thread_pool_push(impl->pool, task, nullptr);
      return;
    }
    Response resp;
    try {
      resp = impl->api.handle(r);
    } catch (const std::exception& e) {
      resp = error_response(500, e.what());
    }
    impl->log(msg, path, resp.status);
    respond(msg, resp);
  }

  struct SnapshotTask {
    Impl* impl;
    SoupServerMessage* msg;
    Request request;
    Response response;
  };

  static void on_snapshot_task(gpointer data, gpointer) {
    auto* task = static_cast<SnapshotTask*>(data);
    try {
      task->response = task->impl->api.snapshot(task->request);
    } catch (const std::exception& e) {
      task->response = error_response(500, e.what());
    }
    g_main_context_invoke_full(
        task->impl->context, G_PRIORITY_DEFAULT,
        [](gpointer d) -> gboolean {
          auto* t = static_cast<SnapshotTask*>(d);
          t->impl->log(t->msg, t->request.path.c_str(), t->response.status);
          respond(t->msg, t->response);
          soup_server_message_unpause(t->msg);
          g_object_unref(t->msg);
          delete t;
          return G_SOURCE_REMOVE;
        },
        task, nullptr);
  }

  void serve_static(SoupServerMessage* msg, const char* path, const StaticFile& f) {
    Response r;
    std::ifstream in(config.web_dir + "/" + f.file, std::ios::binary);
    if (config.web_dir.empty() || !in) {
      r = error_response(404, std::string("the web page is not installed (") + f.file + ")");
    } else {
      std::stringstream ss;
      ss << in.rdbuf();
      r.body = ss.str();
      r.content_type = f.type;
    }
    log(msg, path, r.status);
    respond(msg, r);
  }
};

Server::Server(ServerConfig config, ControlTarget& target)
    : impl_(std::make_unique<Impl>(std::move(config), target)) {
  static std::once_flag once;
  std::call_once(once, [] {
    GST_DEBUG_CATEGORY_INIT(arcly_http_debug, "arclyhttp", 0, "arcly HTTP control plane");
  });
  raise_fd_limit();
  impl_->context = g_main_context_new();
  impl_->loop = g_main_loop_new(impl_->context, FALSE);
  std::promise<std::string> started;
  auto bound = started.get_future();
  impl_->thread = std::thread([this, &started] { impl_->run(started); });
  try {
    bound.get();
  } catch (...) {
    impl_->thread.join();
    g_main_loop_unref(impl_->loop);
    g_main_context_unref(impl_->context);
    throw;
  }
}

Server::~Server() {
  g_main_context_invoke(
      impl_->context,
      [](gpointer loop) -> gboolean {
        g_main_loop_quit(static_cast<GMainLoop*>(loop));
        return G_SOURCE_REMOVE;
      },
      impl_->loop);
  impl_->thread.join();
  g_main_loop_unref(impl_->loop);
  g_main_context_unref(impl_->context);
}

std::string Server::address() const {
  return impl_->bound;
}
bool Server::loopback_only() const {
  return impl_->loopback;
}

}  // namespace arcly::host::http
