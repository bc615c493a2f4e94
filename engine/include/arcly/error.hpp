// arcly::Error — the one exception type the engine throws.
//
// Every failure carries a code (for programs) and a message that names what was
// wrong — the stream key, the application, the limit — for people. The GStreamer
// bridge catches Error at its boundary and turns it into a GError; no exception
// ever crosses into GObject code.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace arcly {

enum class Errc {
  InvalidKey,               // a stream key failed validation
  UnknownApplication,       // the key's app is not configured on this engine
  StreamAlreadyPublishing,  // somebody already publishes this key
  PublisherLimitReached,    // the app's publisher limit is reached
  SubscriberLimitReached,   // the stream's subscriber limit is reached
  StreamNotFound,           // nobody publishes this key
  StreamClosed,             // the publish ended (finished, reaped or replaced)
  Timeout,                  // a bounded wait ran out
  Cancelled,                // a stop token was triggered
  InvalidArgument,          // a bad option value
  WorkerFailed,             // an ingest worker stopped with a fatal error
  Io,                       // storage or transport failure
};

// Stable lower-case name of a code ("stream-already-publishing", ...).
std::string_view errc_name(Errc code);

class Error : public std::runtime_error {
 public:
  Error(Errc code, const std::string& message) : std::runtime_error(message), code_(code) {}
  Errc code() const noexcept { return code_; }

 private:
  Errc code_;
};

}  // namespace arcly
