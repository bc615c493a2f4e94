// Shared scaffolding for the engine's Check suites: one suite per file, one
// behaviour per test, and small frame builders whose payload names the frame.
#pragma once

#include <check.h>
#undef fail  // check.h's legacy alias collides with std::basic_ios::fail

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "arcly/arcly.hpp"

namespace testing {

inline int run_suite(const char* name, std::initializer_list<const TTest*> tests,
                     double timeout_s = 120) {
  Suite* s = suite_create(name);
  TCase* tc = tcase_create("all");
  tcase_set_timeout(tc, timeout_s);
  for (const TTest* t : tests) tcase_add_test(tc, t);
  suite_add_tcase(s, tc);
  SRunner* sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  const int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}

inline arcly::Bytes seq_payload(std::uint64_t seq) {
  return arcly::Bytes::copy_from("frame-" + std::to_string(seq));
}

// A video frame whose pts is `seq` * 33 ms.
inline arcly::MediaFrame video(std::uint64_t seq, bool key, std::uint32_t track = 0) {
  return arcly::MediaFrame::video(static_cast<std::int64_t>(seq) * 33'000'000, std::nullopt,
                                  seq_payload(seq), arcly::CodecId::H264, key, track);
}

inline arcly::MediaFrame audio(std::uint64_t seq, std::uint32_t track = 1) {
  return arcly::MediaFrame::audio(static_cast<std::int64_t>(seq) * 21'000'000, seq_payload(seq),
                                  arcly::CodecId::AAC, track);
}

inline arcly::MediaFrame config(std::uint32_t track, const char* what,
                                arcly::MediaKind kind = arcly::MediaKind::Video) {
  auto info = std::make_shared<arcly::TrackInfo>();
  info->track = track;
  info->kind = kind;
  info->codec = kind == arcly::MediaKind::Video ? arcly::CodecId::H264 : arcly::CodecId::AAC;
  info->description = what;
  return arcly::MediaFrame::config(kind, info->codec, track, arcly::Bytes::copy_from(what), info);
}

inline std::string text(const arcly::FrameRef& f) {
  return std::string(f->payload.view());
}

// Counts payload releases, to prove memory is given back.
struct ReleaseCounter {
  std::atomic<int> released{0};
  static void release(void* self) {
    static_cast<ReleaseCounter*>(self)->released.fetch_add(1, std::memory_order_relaxed);
  }
  arcly::Bytes wrap(const char* s) {
    return arcly::Bytes::wrap(s, std::char_traits<char>::length(s), &ReleaseCounter::release, this);
  }
};

}  // namespace testing

#define ck_assert_throws_code(expr, errc, needle)                                       \
  do {                                                                                  \
    bool thrown_ = false;                                                               \
    try {                                                                               \
      (void)(expr);                                                                     \
    } catch (const arcly::Error& e_) {                                                  \
      thrown_ = true;                                                                   \
      ck_assert_msg(e_.code() == (errc), "wrong code for '%s': %s", #expr, e_.what());  \
      ck_assert_msg(std::string(e_.what()).find(needle) != std::string::npos,           \
                    "message '%s' lacks '%s'", e_.what(), std::string(needle).c_str()); \
    }                                                                                   \
    ck_assert_msg(thrown_, "%s did not throw", #expr);                                  \
  } while (0)

// Compares text by value (ck_assert_str_eq on a temporary's c_str() would dangle).
#define ck_assert_text(expr, expected)                                                  \
  do {                                                                                  \
    const std::string got_ = (expr);                                                    \
    const std::string want_ = (expected);                                               \
    ck_assert_msg(got_ == want_, "%s is '%s', expected '%s'", #expr, got_.c_str(),      \
                  want_.c_str());                                                       \
  } while (0)
