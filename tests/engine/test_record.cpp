// The recording seam: a recorder flushes when its stream ends; storage paths stay inside.
#include <filesystem>
#include <thread>

#include "check_main.hpp"

using arcly::Errc;

namespace {
class ListSink final : public arcly::RecordingSink {
 public:
  std::vector<std::string> frames;
  int flushes = 0;
  void write(const arcly::FrameRef& f, bool) override { frames.push_back(testing::text(f)); }
  void flush() override { ++flushes; }
};
}  // namespace

START_TEST(a_recorder_is_flushed_when_its_publisher_disconnects) {
  auto engine = arcly::Engine::builder().application(arcly::AppSpec("live")).build();
  auto key = arcly::StreamKey::parse("live/cam");
  arcly::IngestContext ctx(engine);
  auto session = ctx.open_publish(key);
  session.publish_frame(testing::video(0, true));
  auto sub = session.handle()->subscribe_resilient();
  ListSink sink;
  arcly::RecordingResult result;
  std::jthread recorder([&] { result = arcly::drive_recording(sub, sink); });
  session.publish_frame(testing::video(1, false));
  session.finish();
  recorder.join();
  ck_assert(result.stream_ended);
  ck_assert_int_eq(sink.flushes, 1);
  ck_assert_uint_eq(sink.frames.size(), 2);
  ck_assert_text(sink.frames[0], "frame-0");
}
END_TEST

START_TEST(object_paths_cannot_escape_the_root) {
  const char* bad[] = {"", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", "a/"};
  for (const char* p : bad) {
    ck_assert_throws_code(arcly::check_object_path(p), Errc::InvalidArgument,
                          "'" + std::string(p) + "'");
  }
  arcly::check_object_path("live/cam/2026-11-25T19-00-00.mp4");
}
END_TEST

START_TEST(file_storage_commits_atomically_lists_and_removes) {
  auto root = std::filesystem::temp_directory_path() / ("arcly-store-" + std::to_string(getpid()));
  std::filesystem::remove_all(root);
  arcly::FileStorage storage(root);
  {
    auto w = storage.create("live/cam/a.bin");
    const std::uint8_t bytes[] = {1, 2, 3};
    w->write(bytes);
    ck_assert(storage.list("live/").empty());  // not visible before commit
    w->commit();
  }
  { auto abandoned = storage.create("live/cam/b.bin"); }  // never committed: removed
  auto objects = storage.list("live/");
  ck_assert_uint_eq(objects.size(), 1);
  ck_assert_text(objects[0].path, "live/cam/a.bin");
  ck_assert_uint_eq(objects[0].size, 3);
  ck_assert(storage.local_path("live/cam/a.bin") == root / "live/cam/a.bin");
  ck_assert_throws_code(storage.create("../escape"), Errc::InvalidArgument, "../escape");
  storage.remove("live/cam/a.bin");
  ck_assert(storage.list("").empty());
  std::filesystem::remove_all(root);
}
END_TEST

START_TEST(memory_storage_keeps_committed_objects) {
  arcly::MemoryStorage storage;
  auto w = storage.create("x/y");
  const std::uint8_t bytes[] = {7};
  w->write(bytes);
  w->commit();
  ck_assert_uint_eq(storage.read("x/y").at(0), 7);
  ck_assert_uint_eq(storage.list("x").size(), 1);
  storage.remove("x/y");
  ck_assert_throws_code(storage.read("x/y"), Errc::Io, "x/y");
}
END_TEST

namespace {
class DiscontSink final : public arcly::RecordingSink {
 public:
  std::vector<std::pair<std::uint64_t, bool>> writes;  // position, discont
  void write(const arcly::FrameRef& f, bool discont) override {
    writes.emplace_back(f.position(), discont);
  }
  void flush() override {}
};
}  // namespace

// Issue 9, defect 5: on a strict subscription the first frame written after
// Lagged is flagged DISCONT.
START_TEST(a_strict_recording_flags_the_first_frame_after_a_lag_discont) {
  auto engine =
      arcly::Engine::builder().application(arcly::AppSpec("live").gop_cache(8).ring(16)).build();
  auto key = arcly::StreamKey::parse("live/cam");
  auto stream = engine->start_publish(key);
  auto sub = stream->subscribe({arcly::StartAt::Now, {}, false});
  for (int i = 0; i < 40; ++i) stream->publish_frame(testing::video(i, i % 10 == 0));
  engine->end_publish(key);
  DiscontSink sink;
  auto result = arcly::drive_recording(sub, sink);
  ck_assert(result.stream_ended);
  ck_assert_uint_eq(result.dropped, 40 - 16);
  ck_assert_uint_eq(sink.writes.size(), 16);
  ck_assert_uint_eq(sink.writes[0].first, 24);
  ck_assert_msg(sink.writes[0].second, "the first frame after the lag lacks DISCONT");
  for (std::size_t i = 1; i < sink.writes.size(); ++i) ck_assert(!sink.writes[i].second);
}
END_TEST

int main() {
  return testing::run_suite(
      "record",
      {a_recorder_is_flushed_when_its_publisher_disconnects, object_paths_cannot_escape_the_root,
       file_storage_commits_atomically_lists_and_removes, memory_storage_keeps_committed_objects,
       a_strict_recording_flags_the_first_frame_after_a_lag_discont});
}
