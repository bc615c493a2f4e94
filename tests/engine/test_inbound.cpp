// The ingest contract: the seed's three tests, translated, and Engine::serve.
#include <thread>

#include "check_main.hpp"

using namespace std::chrono_literals;
using arcly::AppSpec;
using arcly::Engine;
using arcly::IngestContext;
using arcly::StreamKey;

namespace {
// Publishes a config and a keyframe, then idles until stopped (the seed's DemoProtocol).
class DemoProtocol final : public arcly::InboundProtocol {
 public:
  explicit DemoProtocol(StreamKey key) : key_(std::move(key)) {}
  std::string_view name() const override { return "demo"; }
  void serve(IngestContext ctx, std::stop_token stop) override {
    auto session = ctx.open_publish(key_);
    session.publish_frame(testing::config(0, "sps"));
    session.publish_frame(testing::video(0, true));
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    cv.wait(lock, stop, [] { return false; });
    session.finish();
  }

 private:
  StreamKey key_;
};

class FailingProtocol final : public arcly::InboundProtocol {
 public:
  std::string_view name() const override { return "broken"; }
  void serve(IngestContext, std::stop_token) override {
    throw arcly::Error(arcly::Errc::Io, "cannot bind port 9000");
  }
};

class LegacyHandler final : public arcly::ProtocolHandler {
 public:
  std::string_view name() const override { return "legacy"; }
  void run(std::shared_ptr<arcly::PublishRegistry> registry, std::stop_token) override {
    auto s = registry->start_publish(StreamKey::parse("live/legacy"));
    s->publish_frame(testing::video(0, true));
    registry->end_publish(s);
  }
};
}  // namespace

START_TEST(custom_protocol_publishes_through_ingest_context) {
  auto engine = Engine::builder().application(AppSpec("live").gop_cache(8)).build();
  auto key = StreamKey::parse("live/cam");
  std::stop_source stop;
  std::jthread worker([&] { DemoProtocol(key).serve(IngestContext(engine), stop.get_token()); });
  auto handle = engine->wait_for_stream(key, -1ms);
  while (true) {  // until the cache holds the keyframe
    auto replay = handle->replay_buffer();
    if (!replay.empty() && replay.front()->is_keyframe()) break;
    std::this_thread::yield();
  }
  ck_assert_uint_eq(handle->cached_configs().size(), 1);
  stop.request_stop();
  worker.join();
  ck_assert(!engine->find_stream(key));
}
END_TEST

START_TEST(dropping_session_releases_the_slot) {
  auto engine = Engine::builder().application(AppSpec("live")).build();
  auto key = StreamKey::parse("live/drop-test");
  IngestContext ctx(engine);
  {
    auto session = ctx.open_publish(key);
    ck_assert(engine->find_stream(key));
    auto moved = std::move(session);  // ownership moves, the slot stays held
    ck_assert(engine->find_stream(key));
  }
  ck_assert(!engine->find_stream(key));
}
END_TEST

START_TEST(finishing_a_session_notifies_subscribers_via_the_bus) {
  auto engine = Engine::builder().application(AppSpec("live").gop_cache(4)).build();
  auto key = StreamKey::parse("live/cam");
  IngestContext ctx(engine);
  auto session = ctx.open_publish(key);
  auto handle = engine->get_stream(key);
  auto sub = handle->subscribe_resilient();
  session.publish_frame(testing::video(0, true));
  ck_assert(sub.next_frame());
  handle.reset();
  session.finish();
  ck_assert(!sub.next_frame());
  ck_assert(!engine->find_stream(key));
  ck_assert_throws_code(session.publish_frame(testing::video(1, false)), arcly::Errc::StreamClosed,
                        "live/cam");
}
END_TEST

START_TEST(serve_stops_every_worker_on_stop) {
  auto engine = Engine::builder().application(AppSpec("live")).build();
  std::vector<std::shared_ptr<arcly::InboundProtocol>> workers{
      std::make_shared<DemoProtocol>(StreamKey::parse("live/a")),
      std::make_shared<DemoProtocol>(StreamKey::parse("live/b"))};
  std::stop_source stop;
  std::jthread server([&] { engine->serve(workers, stop.get_token()); });
  engine->wait_for_stream(StreamKey::parse("live/a"), -1ms);
  engine->wait_for_stream(StreamKey::parse("live/b"), -1ms);
  stop.request_stop();
  server.join();
  ck_assert(engine->streams().empty());
}
END_TEST

START_TEST(a_failing_worker_stops_its_siblings_and_is_reported_by_name) {
  auto engine = Engine::builder().application(AppSpec("live")).build();
  std::vector<std::shared_ptr<arcly::InboundProtocol>> workers{
      std::make_shared<DemoProtocol>(StreamKey::parse("live/a")),
      std::make_shared<FailingProtocol>()};
  ck_assert_throws_code(engine->serve(workers), arcly::Errc::WorkerFailed,
                        "'broken' failed: cannot bind port 9000");
  ck_assert(engine->streams().empty());  // the sibling was stopped and released its stream
}
END_TEST

START_TEST(legacy_handlers_run_as_inbound_protocols) {
  auto engine = Engine::builder().application(AppSpec("live")).build();
  auto worker = arcly::as_inbound(std::make_shared<LegacyHandler>());
  ck_assert(worker->name() == "legacy");
  engine->serve({worker});
  ck_assert(engine->streams().empty());
}
END_TEST

// Issue 9, defect 9: a moved-from session answers with an error, not a crash.
START_TEST(a_moved_from_session_reports_an_error_instead_of_crashing) {
  auto engine = Engine::builder().application(AppSpec("live")).build();
  IngestContext ctx(engine);
  auto session = ctx.open_publish(StreamKey::parse("live/cam"));
  auto moved = std::move(session);
  ck_assert_text(moved.key().str(), "live/cam");
  ck_assert_throws_code(session.key(), arcly::Errc::InvalidArgument, "moved");
  ck_assert_throws_code(session.publish_frame(testing::video(0, true)),
                        arcly::Errc::InvalidArgument, "moved");
  ck_assert(session.finished());
  session.finish();  // harmless
  ck_assert(!moved.finished());
}
END_TEST

int main() {
  return testing::run_suite(
      "inbound",
      {custom_protocol_publishes_through_ingest_context, dropping_session_releases_the_slot,
       finishing_a_session_notifies_subscribers_via_the_bus, serve_stops_every_worker_on_stop,
       a_failing_worker_stops_its_siblings_and_is_reported_by_name,
       legacy_handlers_run_as_inbound_protocols,
       a_moved_from_session_reports_an_error_instead_of_crashing});
}
