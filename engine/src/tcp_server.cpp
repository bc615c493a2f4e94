#include "arcly/tcp_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <limits>
#include <thread>
#include <vector>

#include "arcly/error.hpp"

namespace arcly {

namespace {

std::string os_reason(int err) {
  return std::strerror(err);
}

// Numeric "host:port" of a socket address; IPv4-mapped IPv6 shown as IPv4.
std::string format_peer(const sockaddr* sa, socklen_t len) {
  char host[NI_MAXHOST] = {};
  char serv[NI_MAXSERV] = {};
  if (getnameinfo(sa, len, host, sizeof host, serv, sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV) !=
      0) {
    return "unknown peer";
  }
  std::string h = host;
  if (h.rfind("::ffff:", 0) == 0 && h.find('.') != std::string::npos) h = h.substr(7);
  if (h.find(':') != std::string::npos) return "[" + h + "]:" + serv;
  return h + ":" + serv;
}

std::uint16_t parse_port(std::string_view text, std::string_view whole) {
  unsigned value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end || value > 65535) {
    throw Error(Errc::InvalidArgument, "listen address '" + std::string(whole) +
                                           "': port must be a number from 0 to 65535");
  }
  return static_cast<std::uint16_t>(value);
}

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace

ListenAddress ListenAddress::parse(std::string_view text) {
  ListenAddress out;
  if (text.find_first_not_of("0123456789") == std::string_view::npos) {
    out.port = parse_port(text, text);
    return out;
  }
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    throw Error(Errc::InvalidArgument,
                "listen address '" + std::string(text) + "' needs a port (HOST:PORT or :PORT)");
  }
  std::string_view host = text.substr(0, colon);
  out.port = parse_port(text.substr(colon + 1), text);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    if (host.empty() || host.find(':') == std::string_view::npos) {
      throw Error(Errc::InvalidArgument,
                  "listen address '" + std::string(text) + "': brackets are for IPv6 addresses");
    }
  } else if (host.find_first_of(":[]") != std::string_view::npos) {
    throw Error(Errc::InvalidArgument, "listen address '" + std::string(text) +
                                           "': write IPv6 addresses in brackets, as [::1]:1935");
  }
  out.host = std::string(host);
  return out;
}

std::string ListenAddress::to_string() const {
  const std::string p = ":" + std::to_string(port);
  if (host.empty()) return p;
  if (host.find(':') != std::string::npos) return "[" + host + "]" + p;
  return host + p;
}

std::size_t TcpConnection::read_some(std::span<std::uint8_t> into) {
  for (;;) {
    if (stop_.stop_requested()) return 0;
    const ssize_t n = ::recv(fd_, into.data(), into.size(), 0);
    if (n >= 0) return static_cast<std::size_t>(n);
    const int err = errno;
    if (err == EINTR) continue;
    if (stop_.stop_requested()) return 0;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      throw Error(Errc::Timeout, "peer " + peer_ + " sent nothing in time");
    }
    throw Error(Errc::Io, "reading from " + peer_ + ": " + os_reason(err));
  }
}

void TcpConnection::write_all(std::span<const std::uint8_t> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      throw Error(Errc::Io, "writing to " + peer_ + ": " + os_reason(err));
    }
    bytes = bytes.subspan(static_cast<std::size_t>(n));
  }
}

void TcpConnection::set_read_timeout(std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  if (::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
    throw Error(Errc::Io, "setting a receive timeout for " + peer_ + ": " + os_reason(errno));
  }
}

struct TcpServer::Connection {
  int fd = -1;  // guarded by TcpServer::mutex_; -1 once closed
  std::stop_source stop;
  std::thread thread;
  bool done = false;  // guarded by TcpServer::mutex_
};

TcpServer::TcpServer(std::string_view listen_address, TcpServerOptions options)
    : options_(std::move(options)) {
  const ListenAddress where = ListenAddress::parse(listen_address);
  address_ = where.to_string();
  if (options_.max_connections == 0) {
    throw Error(Errc::InvalidArgument, "listener " + address_ + ": max_connections must be > 0");
  }
  auto fail = [&](int err) -> Error {
    return Error(Errc::Io, "cannot listen on " + address_ + ": " + os_reason(err));
  };

  auto try_bind = [&](const sockaddr* sa, socklen_t len, int family) -> int {
    int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return errno;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6 && where.host.empty()) {
      const int zero = 0;  // dual-stack: IPv4 peers arrive as IPv4-mapped addresses
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    if (::bind(fd, sa, len) != 0 || ::listen(fd, options_.backlog) != 0) {
      const int err = errno;
      ::close(fd);
      return err;
    }
    listen_fd_ = fd;
    return 0;
  };

  int err = 0;
  if (where.host.empty()) {
    sockaddr_in6 any6{};
    any6.sin6_family = AF_INET6;
    any6.sin6_addr = in6addr_any;
    any6.sin6_port = htons(where.port);
    err = try_bind(reinterpret_cast<const sockaddr*>(&any6), sizeof any6, AF_INET6);
    if (err == EAFNOSUPPORT) {  // no IPv6 on this host
      sockaddr_in any4{};
      any4.sin_family = AF_INET;
      any4.sin_addr.s_addr = htonl(INADDR_ANY);
      any4.sin_port = htons(where.port);
      err = try_bind(reinterpret_cast<const sockaddr*>(&any4), sizeof any4, AF_INET);
    }
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(where.port);
    const int gai = ::getaddrinfo(where.host.c_str(), port.c_str(), &hints, &found);
    if (gai != 0) {
      throw Error(Errc::Io, "cannot listen on " + address_ + ": " + ::gai_strerror(gai));
    }
    err = EADDRNOTAVAIL;
    for (addrinfo* ai = found; ai != nullptr && listen_fd_ < 0; ai = ai->ai_next) {
      err = try_bind(ai->ai_addr, ai->ai_addrlen, ai->ai_family);
    }
    ::freeaddrinfo(found);
  }
  if (listen_fd_ < 0) throw fail(err);

  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                            : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  if (where.port == 0) address_ = ListenAddress{where.host, port_}.to_string();

  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    const int perr = errno;
    close_fd(listen_fd_);
    throw Error(Errc::Io,
                "listener " + address_ + ": cannot create a wake-up pipe: " + os_reason(perr));
  }
}

TcpServer::~TcpServer() {
  close_fd(listen_fd_);
  close_fd(wake_[0]);
  close_fd(wake_[1]);
}

TcpServerStats TcpServer::stats() const {
  TcpServerStats s;
  s.accepted = accepted_.load(std::memory_order_relaxed);
  s.rejected = rejected_.load(std::memory_order_relaxed);
  s.handler_errors = handler_errors_.load(std::memory_order_relaxed);
  s.accept_starved = accept_starved_.load(std::memory_order_relaxed);
  s.active = active_.load(std::memory_order_acquire);
  return s;
}

void TcpServer::reap(bool all) {
  std::vector<std::unique_ptr<Connection>> finished;
  {
    std::lock_guard lock(mutex_);
    for (auto it = connections_.begin(); it != connections_.end();) {
      if (all || (*it)->done) {
        finished.push_back(std::move(*it));
        it = connections_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& c : finished) c->thread.join();  // outside the lock: a handler's epilogue takes it
}

// Any thread. A full pipe (EAGAIN) is already readable: nothing is lost.
void TcpServer::wake() noexcept {
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_[1], &byte, 1);
}

namespace {
// accept() failures that say the process (or system) is out of descriptors or
// memory: the connection stays queued, and retrying at once would spin.
bool is_shortage(int err) {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}
}  // namespace

void TcpServer::run(std::stop_token stop, const Handler& handler) {
  if (listen_fd_ < 0) throw Error(Errc::InvalidArgument, "listener " + address_ + " already ran");
  std::stop_callback on_stop(stop, [this] { wake(); });

  std::string failure;
  bool starved = false;   // the last accept() failed for want of descriptors
  bool reported = false;  // on_accept_starved called since the last accepted connection
  const int retry_ms = static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(
      options_.accept_retry.count(), 1, std::numeric_limits<int>::max()));
  while (!stop.stop_requested()) {
    reap(false);
    // Starved, the listener stays readable (its connection is still queued):
    // watching it would spin, so sleep on the wake-up pipe alone, which an
    // ending handler (a descriptor freed) or stop writes to, or until the retry.
    pollfd fds[2] = {{wake_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    if (::poll(fds, starved ? 1 : 2, starved ? retry_ms : -1) < 0) {
      if (errno == EINTR) continue;
      failure = "listener " + address_ + ": poll failed: " + os_reason(errno);
      break;
    }
    if ((fds[0].revents & POLLIN) != 0) {
      char drain[64];
      while (::read(wake_[0], drain, sizeof drain) > 0) {
      }
    }
    if (stop.stop_requested()) break;
    if (!starved && (fds[1].revents & POLLIN) == 0) continue;  // only a handler ended

    sockaddr_storage peer_addr{};
    socklen_t peer_len = sizeof peer_addr;
    const int fd =
        ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer_addr), &peer_len, SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      starved = is_shortage(err);
      if (starved) {
        accept_starved_.fetch_add(1, std::memory_order_relaxed);
        if (!reported && options_.on_accept_starved) {
          options_.on_accept_starved("listener " + address_ +
                                     ": cannot accept a connection: " + os_reason(err) +
                                     "; it stays queued until a descriptor is free");
        }
        reported = true;
        continue;
      }
      // The peer's problems (gone before accept, aborted) and transient errors
      // do not end the listener.
      if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED ||
          err == EPROTO || err == EPERM || err == ENETDOWN || err == EHOSTUNREACH ||
          err == ENETUNREACH) {
        continue;
      }
      failure = "listener " + address_ + ": accept failed: " + os_reason(err);
      break;
    }
    starved = false;
    reported = false;
    std::string peer = format_peer(reinterpret_cast<sockaddr*>(&peer_addr), peer_len);

    if (active_.load(std::memory_order_acquire) >= options_.max_connections) {
      rejected_.fetch_add(1, std::memory_order_relaxed);  // counted before the peer can see it
      ::close(fd);
      if (options_.on_rejected) options_.on_rejected(peer);
      continue;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    active_.fetch_add(1, std::memory_order_acq_rel);
    accepted_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mutex_);
    auto& conn = *connections_.emplace_back(std::make_unique<Connection>());
    conn.fd = fd;
    conn.thread = std::thread([this, &conn, &handler, peer = std::move(peer), fd] {
      TcpConnection c(fd, peer, conn.stop.get_token());
      try {
        handler(c);
      } catch (const std::exception& e) {
        handler_errors_.fetch_add(1, std::memory_order_relaxed);
        if (options_.on_handler_error) options_.on_handler_error(peer, e.what());
      } catch (...) {
        handler_errors_.fetch_add(1, std::memory_order_relaxed);
        if (options_.on_handler_error) options_.on_handler_error(peer, "unknown exception");
      }
      {
        std::lock_guard done_lock(mutex_);
        close_fd(conn.fd);
        conn.done = true;
        active_.fetch_sub(1, std::memory_order_acq_rel);
      }
      wake();  // a descriptor is free (a starved loop accepts again) and a thread to reap
    });
  }

  // Teardown: no new connections, then every handler is told and unblocked.
  close_fd(listen_fd_);
  {
    std::lock_guard lock(mutex_);
    for (auto& c : connections_) {
      c->stop.request_stop();
      if (c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);
    }
  }
  reap(true);
  if (!failure.empty()) throw Error(Errc::Io, failure);
}

void serve_tcp(std::stop_token stop, std::string_view listen_address,
               const TcpServer::Handler& handler, TcpServerOptions options) {
  TcpServer server(listen_address, std::move(options));
  server.run(std::move(stop), handler);
}

}  // namespace arcly
