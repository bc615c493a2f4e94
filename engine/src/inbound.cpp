#include "arcly/inbound.hpp"

#include "arcly/error.hpp"

namespace arcly {

PublishSession::PublishSession(StreamHandle stream, std::shared_ptr<PublishRegistry> registry)
    : stream_(stream), claim_(new Claim{std::move(stream), std::move(registry)}) {}

PublishSession::Claim::~Claim() {
  try {
    if (stream && registry) registry->end_publish(stream);
  } catch (...) {
    // Destruction must not throw; the stream is closed either way.
  }
}

Stream& PublishSession::stream() const {
  if (!stream_) throw Error(Errc::InvalidArgument, "this publish session was moved from");
  return *stream_;
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
