// A plain HTTP/1.1 client over a socket for the control-plane tests: every byte
// of the request is the test's own (paths sent as they are, lengths that lie,
// requests left half-sent), and the answer is read to the end (Connection: close).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>

namespace http_testing {

struct Reply {
  int status = 0;                              // 0 = no answer
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

inline int connect_to(const std::string& host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

inline bool send_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads until EOF (bounded by `limit`) and parses status, headers and body.
inline Reply read_reply(int fd, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  std::string raw;
  char buf[65536];
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  Reply r;
  const auto head_end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos) return r;
  r.status = std::stoi(raw.substr(9, 3));
  std::size_t pos = raw.find("\r\n") + 2;
  while (pos < head_end) {
    const auto eol = raw.find("\r\n", pos);
    const std::string line = raw.substr(pos, eol - pos);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      r.headers[name] = value;
    }
    pos = eol + 2;
  }
  r.body = raw.substr(head_end + 4);
  return r;
}

inline std::string request_text(const std::string& method, const std::string& path,
                                const std::string& body, const std::string& token,
                                const std::string& extra_headers = "") {
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  if (!body.empty() || method == "POST")
    req +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  req += extra_headers + "\r\n" + body;
  return req;
}

inline Reply request(int port, const std::string& method, const std::string& path,
                     const std::string& body = "", const std::string& token = "",
                     const std::string& host = "127.0.0.1") {
  const int fd = connect_to(host, port);
  if (fd < 0) return {};
  send_all(fd, request_text(method, path, body, token));
  Reply r = read_reply(fd);
  close(fd);
  return r;
}

}  // namespace http_testing
