#include "arcly/inbound.hpp"

namespace arcly {

PublishSession::PublishSession(StreamHandle stream, std::shared_ptr<PublishRegistry> registry)
    : stream_(std::move(stream)), registry_(std::move(registry)) {}

PublishSession::~PublishSession() {
  try {
    finish();
  } catch (...) {
    // Destruction must not throw; the stream is closed either way.
  }
}

PublishSession::PublishSession(PublishSession&& other) noexcept
    : stream_(std::move(other.stream_)),
      registry_(std::move(other.registry_)),
      released_(std::exchange(other.released_, true)) {}

PublishSession& PublishSession::operator=(PublishSession&& other) noexcept {
  if (this != &other) {
    try {
      finish();
    } catch (...) {
    }
    stream_ = std::move(other.stream_);
    registry_ = std::move(other.registry_);
    released_ = std::exchange(other.released_, true);
  }
  return *this;
}

void PublishSession::finish() {
  if (released_ || !stream_) return;
  released_ = true;
  registry_->end_publish(stream_);
}

PublishSession IngestContext::open_publish(const StreamKey& key) const {
  return PublishSession(registry_->start_publish(key), registry_);
}

namespace {
class HandlerAdapter final : public InboundProtocol {
 public:
  explicit HandlerAdapter(std::shared_ptr<ProtocolHandler> h) : handler_(std::move(h)) {}
  std::string_view name() const override { return handler_->name(); }
  void serve(IngestContext ctx, std::stop_token stop) override {
    handler_->run(ctx.registry(), std::move(stop));
  }

 private:
  std::shared_ptr<ProtocolHandler> handler_;
};
}  // namespace

std::shared_ptr<InboundProtocol> as_inbound(std::shared_ptr<ProtocolHandler> handler) {
  return std::make_shared<HandlerAdapter>(std::move(handler));
}

}  // namespace arcly
