// Api — the control plane's routes, independent of the HTTP library.
//
// A Request (method, decoded path, query, body, the caller's role) goes in, a
// Response (status, content type, body) comes out; server.cpp does HTTP with
// libsoup and decides the role from the bearer token. Routes:
//
//   GET  /healthz                                 200 while the engine runs
//   GET  /metrics                                 Prometheus text format
//   GET  /v1/streams                              every stream
//   GET  /v1/streams/{app}/{stream}               one stream (404 unknown key)
//   POST /v1/streams/{app}/{stream}/kick          end its publisher (admin)
//   GET  /v1/streams/{app}/{stream}/snapshot.jpg  JPEG of the live edge (?width=)
//   GET  /v1/workers, /v1/recorders
//   POST /v1/events {"key","pre","post","label"}  201 + the event (admin)
//   GET  /v1/events?key=&from=&to=, /v1/events/{id}
//   GET  /v1/recordings?key=&from=&to=
//
// Every error is JSON {"error": "...", "field": "..."} with its status: 400 bad
// input (naming the field), 401/403 (role), 404 unknown route/key/id, 405 wrong
// method, 409 nothing can serve it (no events recorder), 413 (server.cpp).
//
// Threads: handle() is called on the server's thread; it reads the target
// through ControlTarget, whose methods are thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "control_target.hpp"

namespace arcly::host::http {

enum class Role { None, Read, Admin };

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // decoded, without the query
  std::map<std::string, std::string> query;
  std::string body;
  Role role = Role::None;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

Response json_response(int status, std::string body);
Response error_response(int status, std::string_view message, std::string_view field = {});

// Snapshots are slow work (a decoder): handle() answers them through this hook,
// which server.cpp runs off the server thread. Null = 404.
struct Snapshot {
  std::string jpeg;  // empty = failed (error says why)
  int status = 200;
  std::string error;
};

class Api {
 public:
  explicit Api(ControlTarget& target) : target_(target) {}
  Response handle(const Request& request);
  // True when the request is a snapshot (the server runs it on a worker thread).
  static bool is_snapshot(const Request& request);
  Response snapshot(const Request& request);

 private:
  Response streams();
  Response stream(const StreamKey& key);
  Response kick(const StreamKey& key);
  Response workers();
  Response egress();
  Response recorders();
  Response post_event(const Request& request);
  Response events(const Request& request);
  Response event(const std::string& id);
  Response recordings(const Request& request);
  Response metrics();

  ControlTarget& target_;
};

// Renders every metric in the Prometheus text exposition format (metrics.cpp).
std::string render_metrics(ControlTarget& target);

}  // namespace arcly::host::http
