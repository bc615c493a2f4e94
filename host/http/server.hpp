// Server — the HTTP control plane: libsoup 3 serving Api on its own thread.
//
// Why its own thread and GMainContext, not the host's loop: the host's run loop
// is a 50 ms polling loop that also reloads the configuration and stops sections
// (a recorder may take up to 10 s to finalize); an API served from it would stall
// for that long and answer no faster than the poll. On its own thread with its
// own GMainContext (pushed as thread default before the server listens, so every
// socket source lands there), the API answers at once and during a reload; the
// host's side of ControlTarget locks what it shares. Snapshots, which run a
// decoder, go to a small thread pool so one slow decode does not hold the rest.
//
// Access: `token` (admin: everything) and `read_token` (GET only) as
// "Authorization: Bearer …", compared in constant time and never logged. With
// no token configured only loopback clients are served (403 for the others).
// /healthz and the web page's static files need no token. Request bodies are
// bounded (`max_body`, 413 before the body is read; 411 without a length).
//
// Threads: construct and destroy on one thread (the host's); the handlers run
// on the server thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "control_target.hpp"

namespace arcly::host::http {

struct ServerConfig {
  std::string listen = "127.0.0.1:9090";  // IP:port, [IPv6]:port; port 0 = any free port
  std::string token;                      // admin bearer token ("" = none)
  std::string read_token;                 // read-only bearer token ("" = none)
  std::string web_dir;                    // the web page's static files ("" = no page)
  std::size_t max_body = 64 * 1024;
};

// Parses "IP:port" / "[IPv6]:port" / "localhost:port"; "" and sets `why` when bad.
bool parse_listen(const std::string& text, std::string& host, std::uint16_t& port,
                  std::string* why = nullptr);

class Server {
 public:
  // Listens or throws arcly::Error (Io / InvalidArgument) naming the address.
  Server(ServerConfig config, ControlTarget& target);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The address actually bound ("127.0.0.1:40123").
  std::string address() const;
  bool loopback_only() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace arcly::host::http
