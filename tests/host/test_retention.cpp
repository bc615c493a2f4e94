// Retention decisions and segment files, without a camera: segment names, the
// per-storage index (max-age on capture times with a clock that jumps, per-camera
// max-bytes counting the open segment, min-free across cameras, streams no section
// matches, older formats and set-aside files), the start-up walk of a real
// directory tree, and the recorder's retry backoff.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "../engine/check_main.hpp"
#include "recorder.hpp"
#include "retention.hpp"
#include "segment_file.hpp"

using namespace std::chrono_literals;
using namespace arcly::host;
namespace fs = std::filesystem;

namespace {

constexpr std::int64_t kSec = 1'000'000'000;
constexpr std::int64_t kNow = 1'800'000'000LL * kSec;  // 2027-01-15, an arbitrary "now"

SegmentName name_at(std::int64_t capture_ns, std::uint32_t n = 0, const char* ext = "mp4",
                    bool partial = false) {
  SegmentName s;
  s.capture_ns = capture_ns;
  s.number = n;
  s.extension = ext;
  s.partial = partial;
  return s;
}

RetentionRule rule(const char* pattern, std::chrono::seconds max_age, std::uint64_t max_bytes = 0,
                   std::uint64_t min_free = 0) {
  RetentionRule r;
  r.section = pattern;
  r.pattern = pattern;
  r.max_age = max_age;
  r.max_bytes = max_bytes;
  r.min_free_bytes = min_free;
  return r;
}

std::vector<std::string> paths(const RetentionPlan& p) {
  std::vector<std::string> out;
  for (const auto& d : p.deletions) out.push_back(d.path + " " + d.reason);
  return out;
}

bool has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

START_TEST(segment_names_carry_the_capture_time_and_parse_back) {
  const std::int64_t t = kNow + 250'000'000;  // .250 s
  const std::string n = segment_file_name(t, 3, RecordFormat::Mp4);
  ck_assert_str_eq(n.c_str(), "20270115T080000.250Z-0003.mp4");
  auto p = SegmentName::parse(n);
  ck_assert(p && p->capture_ns == t && p->number == 3 && p->extension == "mp4" && !p->partial);
  // Older seconds-only names, set-aside files and other formats are segments too.
  p = SegmentName::parse("20270115T080000Z-0012.mkv.partial");
  ck_assert(p && p->capture_ns == kNow && p->number == 12 && p->partial && !p->millis);
  const std::string again = p->str();
  ck_assert_str_eq(again.c_str(), "20270115T080000Z-0012.mkv.partial");
  ck_assert(SegmentName::parse("20270115T080000.250Z-0001.ts"));
  // Anything else is not footage and is never touched.
  for (const char* junk : {"notes.txt", "20270115T080000Z.mp4", "2027-01-15-0001.mp4",
                           "20271315T080000Z-0001.mp4", "20270115T080000Z-00x1.mp4"})
    ck_assert_msg(!SegmentName::parse(junk), "%s parsed", junk);
}
END_TEST

START_TEST(max_age_uses_capture_times_and_refuses_to_age_found_footage_after_a_clock_jump) {
  SegmentIndex index;
  // Found at start (names only): two days and one hour old.
  index.add("live/cam", name_at(kNow - 2 * 86400 * kSec, 0), 100);
  index.add("live/cam", name_at(kNow - 3600 * kSec, 1), 100);
  const std::vector<RetentionRule> rules{rule("live/*", 86400s)};
  const Clocks now{kNow, 5000 * kSec};
  auto plan = index.plan(rules, now, /*wall_trusted=*/false, 1ull << 40, 1ull << 40);
  ck_assert_int_eq(plan.deletions.size(), 0);  // the clock jumped: nothing aged out
  ck_assert(plan.age_refused);
  plan = index.plan(rules, now, true, 1ull << 40, 1ull << 40);
  ck_assert_int_eq(plan.deletions.size(), 1);
  ck_assert_str_eq(plan.deletions[0].path.c_str(), "live/cam/20270113T080000.000Z-0000.mp4");
  ck_assert_str_eq(plan.deletions[0].reason.c_str(), "max-age");

  // Recorded by this process: aged on the monotonic clock, whatever the wall says.
  SegmentIndex run;
  run.add("live/cam", name_at(kNow - 10 * 86400 * kSec, 0), 100, /*steady=*/4000 * kSec);
  run.add("live/cam", name_at(kNow + 10 * 86400 * kSec, 1), 100, /*steady=*/4990 * kSec);
  plan = run.plan(rules, now, false, 1ull << 40, 1ull << 40);
  ck_assert_int_eq(plan.deletions.size(), 0);  // wall says 10 days old, monotonic says 1000 s
  const Clocks later{kNow, 4000 * kSec + 86401 * kSec};
  plan = run.plan(rules, later, false, 1ull << 40, 1ull << 40);
  ck_assert_int_eq(plan.deletions.size(), 1);  // the first is a day old on the monotonic clock
  ck_assert_str_eq(plan.deletions[0].path.c_str(), "live/cam/20270105T080000.000Z-0000.mp4");
}
END_TEST

START_TEST(max_bytes_is_per_camera_and_counts_the_open_segment) {
  SegmentIndex index;
  for (int i = 0; i < 4; ++i) {
    index.add("live/a", name_at(kNow + i * kSec, i), 100);
    index.add("live/b", name_at(kNow + i * kSec, i), 100);
  }
  index.opened("live/a", name_at(kNow + 10 * kSec, 9), 0);
  index.grew("live/a", name_at(kNow + 10 * kSec, 9).str(), 150);
  const std::vector<RetentionRule> rules{rule("live/*", 0s, 350)};
  const auto plan = index.plan(rules, Clocks{kNow, 0}, true, 1ull << 40, 1ull << 40);
  const auto p = paths(plan);
  // a: 400 closed + 150 open > 350: its two oldest go (550 -> 350). b: 400 -> 300.
  ck_assert_int_eq(p.size(), 3);
  ck_assert(has(p, "live/a/20270115T080000.000Z-0000.mp4 max-bytes"));
  ck_assert(has(p, "live/a/20270115T080001.000Z-0001.mp4 max-bytes"));
  ck_assert(has(p, "live/b/20270115T080000.000Z-0000.mp4 max-bytes"));
  // The open segment is never a candidate.
  for (const auto& s : p) ck_assert(s.find("-0009") == std::string::npos);
}
END_TEST

START_TEST(min_free_deletes_the_oldest_across_cameras_and_says_when_it_cannot) {
  SegmentIndex index;
  index.add("live/a", name_at(kNow + 5 * kSec, 0), 10000);
  index.add("live/b", name_at(kNow + 1 * kSec, 0), 10000);
  index.add("old/gone", name_at(kNow + 3 * kSec, 0, "ts"), 10000);       // no section matches it
  index.add("live/b", name_at(kNow + 2 * kSec, 1, "mkv", true), 10000);  // set aside, older format
  index.opened("live/a", name_at(kNow + 9 * kSec, 1), 0);
  const std::vector<RetentionRule> rules{rule("live/*", 0s, 0, 25000)};
  // 5000 free, 25000 wanted: the two oldest (b's, whatever their format) go.
  auto plan = index.plan_free(rules, 5000, 1 << 20);
  auto p = paths(plan);
  ck_assert_int_eq(p.size(), 2);
  ck_assert_str_eq(p[0].c_str(), "live/b/20270115T080001.000Z-0000.mp4 min-free");
  ck_assert_str_eq(p[1].c_str(), "live/b/20270115T080002.000Z-0001.mkv.partial min-free");
  ck_assert_int_eq(plan.short_of_free, 0);
  // Nothing but the open segment left after two more: short by what is missing.
  plan = index.plan_free(rules, 0, 1 << 20);
  p = paths(plan);
  ck_assert_int_eq(p.size(), 2);
  ck_assert_str_eq(p[0].c_str(), "old/gone/20270115T080003.000Z-0000.ts min-free");
  ck_assert_int_eq(plan.short_of_free, 5000);
  ck_assert_int_eq(index.segments(), 1);  // the open one
}
END_TEST

START_TEST(streams_no_section_matches_keep_the_longest_max_age) {
  SegmentIndex index;
  index.add("gone/cam", name_at(kNow - 3 * 86400 * kSec), 1);
  index.add("gone/cam", name_at(kNow - 1 * 86400 * kSec, 1), 1);
  auto plan = index.plan({rule("live/*", 86400s), rule("door/*", 2 * 86400s)}, Clocks{kNow, 0},
                         true, 1ull << 40, 1ull << 40);
  ck_assert_int_eq(plan.deletions.size(), 1);  // older than 2 days: gone; 1 day: kept
  // A section that keeps forever keeps them forever.
  plan = index.plan({rule("live/*", 3600s), rule("door/*", 0s)}, Clocks{kNow, 0}, true, 1ull << 40,
                    1ull << 40);
  ck_assert_int_eq(plan.deletions.size(), 0);
}
END_TEST

START_TEST(the_start_up_walk_indexes_segments_only_and_reports_what_it_cannot_read) {
  const fs::path dir = fs::temp_directory_path() / ("arcly-retention-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "live/cam");
  fs::create_directories(dir / "live/door");
  std::ofstream(dir / "live/cam/20270115T080001.000Z-0001.mp4") << "abcd";
  std::ofstream(dir / "live/cam/20270115T080000Z-0000.mkv.partial") << "ab";
  std::ofstream(dir / "live/cam/notes.txt") << "not footage";
  std::ofstream(dir / "live/door/20270115T070000.000Z-0000.ts") << "abcdef";
  std::ofstream(dir / "stray.mp4") << "x";  // not under app/stream
  // A stream path that is a file, and one whose directory is a dangling link.
  std::ofstream(dir / "live/file") << "x";
  fs::create_directory_symlink(dir / "nowhere", dir / "live/link");
  SegmentIndex index;
  std::vector<std::string> problems;
  Storage::build_index(dir.string(), index, [&](const std::string& p) { problems.push_back(p); });
  ck_assert_int_eq(index.segments(), 3);
  ck_assert_int_eq(index.bytes(), 12);
  // Sorted by capture time across the walk's order: door first under min-free.
  const auto plan = index.plan_free({rule("live/*", 0s, 0, 5000)}, 0, 1 << 20);
  ck_assert_int_eq(plan.deletions.size(), 2);  // each counts as at least a block (4096)
  ck_assert_str_eq(plan.deletions[0].path.c_str(), "live/door/20270115T070000.000Z-0000.ts");
  ck_assert_str_eq(plan.deletions[1].path.c_str(), "live/cam/20270115T080000Z-0000.mkv.partial");
  // A directory that cannot be read is reported, and the walk goes on.
  SegmentIndex none;
  problems.clear();
  Storage::build_index((dir / "live/cam/notes.txt").string(), none,
                       [&](const std::string& p) { problems.push_back(p); });
  ck_assert_int_eq(problems.size(), 1);
  ck_assert_msg(problems[0].find("Not a directory") != std::string::npos, "%s",
                problems[0].c_str());
  fs::remove_all(dir);
}
END_TEST

// An MP4 as mp4mux's first-moov-then-finalise writes it, cut mid-fragment: the
// recovery keeps everything up to the last whole moof.
START_TEST(an_unfinished_fragmented_mp4_is_cut_after_its_last_whole_fragment) {
  const std::string path =
      (fs::temp_directory_path() / ("arcly-recover-" + std::to_string(getpid()) + ".mp4")).string();
  std::string data;
  auto box = [&](const char* type, std::uint32_t size) {
    const char h[8] = {static_cast<char>(size >> 24),
                       static_cast<char>(size >> 16),
                       static_cast<char>(size >> 8),
                       static_cast<char>(size),
                       type[0],
                       type[1],
                       type[2],
                       type[3]};
    data.append(h, 8);
    data.append(size - 8, '\0');
  };
  box("ftyp", 32);
  box("free", 8);
  box("mdat", 5000);
  box("moov", 1000);
  box("free", 8);
  box("mdat", 4000);
  box("moof", 272);
  const std::size_t whole = data.size();
  box("free", 8);
  box("mdat", 4000);
  data.resize(data.size() - 1500);  // the write that failed
  std::ofstream(path, std::ios::binary) << data;
  ck_assert_int_eq(fragmented_mp4_complete_end(path), whole);
  const auto r = recover_unfinished(path, RecordFormat::Mp4);
  ck_assert(r.outcome == Recovery::Kept);
  ck_assert_int_eq(r.size, whole);
  ck_assert_int_eq(fs::file_size(path), whole);
  // Nothing but a header: nothing to keep.
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data.substr(0, 100);
  ck_assert(recover_unfinished(path, RecordFormat::Mp4).outcome == Recovery::Removed);
  ck_assert(!fs::exists(path));
}
END_TEST

START_TEST(retry_backoff_doubles_to_30_s_and_resets_after_a_healthy_minute) {
  auto d = next_retry_delay(0ms, 0s);
  ck_assert_int_eq(d.count(), 1000);
  for (int i = 0; i < 10; ++i) d = next_retry_delay(d, 2s);
  ck_assert_int_eq(d.count(), 30000);
  // Failures days apart: the attempt that failed had recorded for a long time.
  ck_assert_int_eq(next_retry_delay(d, 3h).count(), 1000);
  ck_assert_int_eq(next_retry_delay(d, kHealthyPeriod).count(), 1000);
  ck_assert_int_eq(next_retry_delay(d, kHealthyPeriod - 1s).count(), 30000);
}
END_TEST

int main() {
  return testing::run_suite(
      "retention",
      {segment_names_carry_the_capture_time_and_parse_back,
       max_age_uses_capture_times_and_refuses_to_age_found_footage_after_a_clock_jump,
       max_bytes_is_per_camera_and_counts_the_open_segment,
       min_free_deletes_the_oldest_across_cameras_and_says_when_it_cannot,
       streams_no_section_matches_keep_the_longest_max_age,
       the_start_up_walk_indexes_segments_only_and_reports_what_it_cannot_read,
       an_unfinished_fragmented_mp4_is_cut_after_its_last_whole_fragment,
       retry_backoff_doubles_to_30_s_and_resets_after_a_healthy_minute},
      60);
}
