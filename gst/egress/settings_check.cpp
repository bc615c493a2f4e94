// What the RTSP and SRT servers accept as settings, checked before one starts.
// Plain C++ (no GStreamer, no libsrt): the host's config loader and its fuzz
// target check the same rules the servers enforce.
#include <set>
#include <string>

#include "arcly/error.hpp"
#include "rtsp_server.hpp"
#include "srt_server.hpp"

namespace arcly::egress {

using namespace std::chrono_literals;

void validate(const RtspServerSettings& s) {
  if (s.port < 0 || s.port > 65535)
    throw Error(Errc::InvalidArgument, "port " + std::to_string(s.port) + ": expected 0 to 65535");
  if (s.engine.empty()) throw Error(Errc::InvalidArgument, "engine: must not be empty");
  if (!s.tcp && !s.udp)
    throw Error(Errc::InvalidArgument, "transports: at least one of TCP and UDP must be offered");
  if (s.shared_media && !s.tcp)
    throw Error(Errc::InvalidArgument,
                "media shared: its readers are served over TCP only, "
                "and TCP is not offered");
  if (!s.users.empty() && !s.basic && !s.digest)
    throw Error(Errc::InvalidArgument, "auth: users need Basic or Digest authentication enabled");
  std::set<std::string> names;
  for (const auto& u : s.users) {
    if (u.name.empty() || u.name.find_first_of(":\"") != std::string::npos)
      throw Error(Errc::InvalidArgument,
                  "user '" + u.name + "': a user name must be non-empty, without ':' or '\"'");
    if (u.password.empty())
      throw Error(Errc::InvalidArgument, "user " + u.name + ": empty password");
    if (!names.insert(u.name).second)
      throw Error(Errc::InvalidArgument, "user " + u.name + ": defined twice");
  }
}

void validate(const SrtServerSettings& s) {
  if (s.port < 0 || s.port > 65535)
    throw Error(Errc::InvalidArgument, "port " + std::to_string(s.port) + ": expected 0 to 65535");
  if (s.engine.empty()) throw Error(Errc::InvalidArgument, "engine: must not be empty");
  if (!s.passphrase.empty() && (s.passphrase.size() < 10 || s.passphrase.size() > 79))
    throw Error(Errc::InvalidArgument, "passphrase: SRT requires 10 to 79 characters");
  if (s.pbkeylen != 0 && s.pbkeylen != 16 && s.pbkeylen != 24 && s.pbkeylen != 32)
    throw Error(Errc::InvalidArgument,
                "pbkeylen " + std::to_string(s.pbkeylen) + ": expected 16, 24 or 32");
  if (s.publish_timeout <= 0ms)
    throw Error(Errc::InvalidArgument, "publish_timeout: must be positive");
}

}  // namespace arcly::egress
