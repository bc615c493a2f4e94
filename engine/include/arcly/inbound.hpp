// The ingest contract: how a wire protocol teaches the engine a new transport
// without touching the kernel (the C++ form of the seed's inbound.rs).
//
// * InboundProtocol — a worker: serve(ctx, stop) owns its listener for its whole
//   life, accepts connections, opens publish sessions and bridges frames. It must
//   return promptly once `stop` is requested. Throwing signals a fatal fault
//   (e.g. it could not bind) and makes Engine::serve stop the other workers.
// * IngestContext — a cheap, copyable handle to the engine's publish registry.
// * PublishSession — the RAII token of one live stream. Not copyable. finish()
//   releases the slot deterministically; destruction releases it too, so a worker
//   that returns early or throws never leaks a stream. Ending the session closes
//   the stream's bus: subscribers drain and see the end, no worker reaches across
//   to them.
//
// Threads: a worker instance may be shared; serve() runs on a thread of
// Engine::serve. A PublishSession may publish from any thread (see Stream).
#pragma once

#include <memory>
#include <stop_token>
#include <string_view>

#include "arcly/engine.hpp"

namespace arcly {

class PublishSession {
 public:
  PublishSession(StreamHandle stream, std::shared_ptr<PublishRegistry> registry);
  PublishSession(PublishSession&& other) noexcept = default;
  PublishSession& operator=(PublishSession&& other) noexcept = default;  // ends its own first
  PublishSession(const PublishSession&) = delete;
  PublishSession& operator=(const PublishSession&) = delete;

  // A moved-from session has no stream: key() and publish_frame() throw
  // Error{InvalidArgument}, handle() is null, finished() is true.
  const StreamKey& key() const { return stream().key(); }
  const StreamHandle& handle() const { return stream_; }
  // Returns the live subscriber count; throws Error{StreamClosed} once ended.
  std::size_t publish_frame(MediaFrame frame) { return stream().publish_frame(std::move(frame)); }
  // Every track's config is published (see Stream::declare_tracks_complete).
  void declare_tracks_complete() { stream().declare_tracks_complete(); }
  // Releases the publish slot (idempotent).
  void finish() { claim_.reset(); }
  bool finished() const { return !claim_; }

 private:
  // The publish slot: released (end_publish) when destroyed, so destruction,
  // finish() and move-assignment all release it, and moves need no code.
  struct Claim {
    StreamHandle stream;
    std::shared_ptr<PublishRegistry> registry;
    ~Claim();
  };
  Stream& stream() const;

  StreamHandle stream_;
  std::unique_ptr<Claim> claim_;
};

class IngestContext {
 public:
  explicit IngestContext(std::shared_ptr<PublishRegistry> registry)
      : registry_(std::move(registry)) {}

  // Claims `key`; throws StreamAlreadyPublishing, PublisherLimitReached, ...
  PublishSession open_publish(const StreamKey& key) const;
  const std::shared_ptr<PublishRegistry>& registry() const { return registry_; }

 private:
  std::shared_ptr<PublishRegistry> registry_;
};

class InboundProtocol {
 public:
  virtual ~InboundProtocol() = default;
  // Stable, human-readable name ("rtsp", "srt", ...), used in logs and errors.
  virtual std::string_view name() const = 0;
  // Runs until `stop` is requested; throws on a fatal fault.
  virtual void serve(IngestContext ctx, std::stop_token stop) = 0;
};

// The legacy shape: a handler that wants the raw registry. Wrap it with
// as_inbound() to run it as an InboundProtocol.
class ProtocolHandler {
 public:
  virtual ~ProtocolHandler() = default;
  virtual std::string_view name() const = 0;
  virtual void run(std::shared_ptr<PublishRegistry> registry, std::stop_token stop) = 0;
};

std::shared_ptr<InboundProtocol> as_inbound(std::shared_ptr<ProtocolHandler> handler);

}  // namespace arcly
