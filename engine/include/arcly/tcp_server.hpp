// arcly::TcpServer — the reusable TCP accept loop of the ingest contract (the
// seed's run_tcp_ingest_server): most push protocols (RTMP, ...) are a thin
// per-connection handler over it.
//
// Contract:
// - The constructor binds and listens (SO_REUSEADDR; IPv4 or IPv6; ":PORT" and
//   "" listen on every address, dual-stack when the host has IPv6). A failure
//   throws Error{Io} naming the address and the OS reason ("cannot listen on
//   127.0.0.1:1935: Address already in use").
// - run(stop, handler) accepts until `stop` is requested. Each connection runs
//   `handler` on a thread of its own with a stop token of its own. At most
//   `max_connections` handlers run at once: a connection beyond that is closed
//   at once and counted as rejected. A handler that throws ends only its own
//   connection (counted, reported through on_handler_error).
// - Stop: run() closes the listener, requests stop on every connection and
//   shuts its socket down (a handler blocked in recv() sees end-of-stream,
//   one blocked in send() sees an error), then returns only after every
//   handler has returned. The server closes each connection's socket after its
//   handler returned; handlers never close it themselves.
// - No timers and no polling: the accept thread sleeps in poll() on the
//   listener and a wake-up pipe. Per-connection timeouts are the handler's
//   (e.g. SO_RCVTIMEO, a one-shot kernel timer per blocking read).
// - Out of descriptors (accept fails with EMFILE, ENFILE, ENOBUFS or ENOMEM):
//   the connection stays queued in the kernel and the loop neither spins nor
//   ends. It reports the shortage once (on_accept_starved) and sleeps on the
//   wake-up pipe alone until one of its own connections ends (which frees a
//   descriptor and wakes it), `accept_retry` passes (descriptors freed
//   elsewhere in the process) or stop; then it tries accept() once more.
//
// Threads: run() is called once, from one thread. port(), address() and
// stats() may be called from any thread. Handlers run concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>

namespace arcly {

// "HOST:PORT", ":PORT", "[V6]:PORT" or "PORT". Throws Error{InvalidArgument}
// naming the text when it is none of these or the port is not 0..65535.
struct ListenAddress {
  std::string host;  // empty = every address
  std::uint16_t port = 0;
  static ListenAddress parse(std::string_view text);
  std::string to_string() const;  // ":1935", "127.0.0.1:1935", "[::1]:1935"
};

// One accepted connection, as its handler sees it.
class TcpConnection {
 public:
  TcpConnection(int fd, std::string peer, std::stop_token stop)
      : fd_(fd), peer_(std::move(peer)), stop_(std::move(stop)) {}

  int fd() const { return fd_; }
  // "203.0.113.7:51234" or "[2001:db8::1]:51234".
  const std::string& peer() const { return peer_; }
  const std::stop_token& stop_token() const { return stop_; }

  // Blocking reads and writes that retry on EINTR. read_some() returns 0 at the
  // end of the stream (or after stop); it throws Error{Timeout} when a receive
  // timeout set by set_read_timeout() ran out and Error{Io} naming the peer on
  // other failures. write_all() throws Error{Io} (also after stop).
  std::size_t read_some(std::span<std::uint8_t> into);
  void write_all(std::span<const std::uint8_t> bytes);
  // Arms (or, with 0, disarms) the kernel's receive timeout for each read.
  void set_read_timeout(std::chrono::milliseconds timeout);

 private:
  int fd_;
  std::string peer_;
  std::stop_token stop_;
};

struct TcpServerOptions {
  std::size_t max_connections = 256;  // concurrent handlers; excess connections are closed
  int backlog = 128;
  // Called (on the connection's thread) when a handler throws; what() of the error.
  std::function<void(const std::string& peer, const std::string& what)> on_handler_error;
  // Called (on the accept thread) when a connection is refused at the limit.
  std::function<void(const std::string& peer)> on_rejected;
  // Called (on the accept thread) once when accept() starts failing for want of
  // descriptors or memory, naming the listener and the reason; again only after
  // an accept has succeeded since.
  std::function<void(const std::string& what)> on_accept_starved;
  // How long a starved accept loop waits before it tries again when none of
  // its own connections ends meanwhile.
  std::chrono::milliseconds accept_retry{100};
};

struct TcpServerStats {
  std::uint64_t accepted = 0;        // connections handed to a handler
  std::uint64_t rejected = 0;        // closed at once: the connection limit was reached
  std::uint64_t handler_errors = 0;  // handlers that threw
  std::uint64_t accept_starved = 0;  // accept() calls that failed for want of descriptors/memory
  std::size_t active = 0;            // handlers running now
};

class TcpServer {
 public:
  using Handler = std::function<void(TcpConnection&)>;

  // Binds and listens; throws Error{Io} or Error{InvalidArgument} (see above).
  TcpServer(std::string_view listen_address, TcpServerOptions options = {});
  ~TcpServer();
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;

  // The bound port (useful with port 0) and the address as given, normalized.
  std::uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }

  // Accepts until `stop`; returns when every handler has returned. Throws
  // Error{Io} if accepting fails for a reason other than a peer's.
  void run(std::stop_token stop, const Handler& handler);

  TcpServerStats stats() const;

 private:
  struct Connection;
  void reap(bool all);
  void wake() noexcept;

  std::string address_;
  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // self-pipe: stop and ending handlers write, the accept loop polls
  TcpServerOptions options_;

  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> handler_errors_{0};
  std::atomic<std::uint64_t> accept_starved_{0};
  std::atomic<std::size_t> active_{0};

  std::mutex mutex_;  // guards connections_ and each Connection::fd
  std::list<std::unique_ptr<Connection>> connections_;
};

// The seed's run_tcp_ingest_server: binds `listen_address`, runs `handler`
// per connection until `stop`, returns when every handler has returned.
void serve_tcp(std::stop_token stop, std::string_view listen_address,
               const TcpServer::Handler& handler, TcpServerOptions options = {});

}  // namespace arcly
