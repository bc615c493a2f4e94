// URLs as ingest workers show and use them: credentials are split off before a
// URL reaches an element, a log, an error, a stat or a message. Everything a
// person sees goes through redact().
#pragma once

#include <string>
#include <string_view>

namespace arcly::ingest {

struct UrlParts {
  std::string scheme;    // "rtsp", "rtsps", "srt", ... (lower case)
  std::string user;      // percent-decoded
  std::string password;  // percent-decoded
  std::string host;      // may be empty (SRT listener "srt://:9000")
  int port = -1;         // -1 when absent
  std::string rest;      // path, query and fragment, starting with '/', '?' or '#', or empty
  // The URL without credentials.
  std::string without_credentials() const;
  // For people: "rtsp://***@host:554/path" when credentials were given, and
  // "?passphrase=***" for a secret in the query.
  std::string redacted() const;
};

// Throws arcly::Error{InvalidArgument} naming the (redacted) URL and the problem.
UrlParts parse_url(std::string_view url);

// Best effort for any text: hides "user:pass@" in every "scheme://user:pass@" it contains
// (a password with unencoded spaces included) and the value of every passphrase=,
// password= and token= field (URI queries, SRT streamids).
std::string redact(std::string_view text);

}  // namespace arcly::ingest
