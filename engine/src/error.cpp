#include "arcly/error.hpp"

namespace arcly {

std::string_view errc_name(Errc code) {
  switch (code) {
    case Errc::InvalidKey:
      return "invalid-key";
    case Errc::UnknownApplication:
      return "unknown-application";
    case Errc::StreamAlreadyPublishing:
      return "stream-already-publishing";
    case Errc::PublisherLimitReached:
      return "publisher-limit-reached";
    case Errc::SubscriberLimitReached:
      return "subscriber-limit-reached";
    case Errc::StreamNotFound:
      return "stream-not-found";
    case Errc::StreamClosed:
      return "stream-closed";
    case Errc::Timeout:
      return "timeout";
    case Errc::Cancelled:
      return "cancelled";
    case Errc::InvalidArgument:
      return "invalid-argument";
    case Errc::WorkerFailed:
      return "worker-failed";
    case Errc::Io:
      return "io";
  }
  return "unknown";
}

}  // namespace arcly
