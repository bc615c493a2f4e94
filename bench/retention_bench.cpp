// retention-bench: start-up index build and one retention pass over a recording
// tree of 2 M segment files (issue 13, item 10).
//
// 50 cameras × 30 days of 60 s segments is ~2.2 M files. The bench generates
// FILES empty segment files under DIR/live/camNN/ (names as the recorder writes
// them: capture time of the first frame), then measures, in the same run:
//
//   baseline  what retention did before, once a second: FileStorage::list of the
//             whole tree (recursive walk + stat of every file) and a sort by mtime;
//   build     the start-up index build (Storage::build_index: readdir + one fstatat
//             per file, then a sort per camera), once;
// (both walks run twice, alternating; the faster of each is the figure);
//   pass      one retention pass on the index with max-age set so that the oldest
//             minute of every camera is due (50 deletions, the steady state of a
//             60 s-segment NVR), unlinks included;
//   idle      one pass with nothing due (the other 59 passes of the minute).
//
// Printed: one line per figure, the index's memory (RSS growth), then a summary.
// The tree is removed at the end unless --keep. Run under the heavy-work lock.
//
// Usage: retention-bench [--files N] [--dir DIR] [--keep]
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "arcly/record.hpp"
#include "retention.hpp"
#include "segment_file.hpp"

using namespace arcly::host;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  long files = 2'000'000;
  std::string dir = (fs::temp_directory_path() / "arcly-retention-bench").string();
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--files") && i + 1 < argc)
      files = std::atol(argv[++i]);
    else if (!std::strcmp(argv[i], "--dir") && i + 1 < argc)
      dir = argv[++i];
    else if (!std::strcmp(argv[i], "--keep"))
      keep = true;
    else {
      std::fprintf(stderr, "usage: retention-bench [--files N] [--dir DIR] [--keep]\n");
      return 2;
    }
  }
  constexpr int kCameras = 50;
  constexpr std::int64_t kSec = 1'000'000'000;
  const long per_camera = (files + kCameras - 1) / kCameras;
  const std::int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  const std::int64_t first_ns = now_ns - per_camera * 60 * kSec;

  // Generate (or reuse) the tree.
  auto t = Clock::now();
  long made = 0;
  for (int c = 0; c < kCameras; ++c) {
    char cam[16];
    std::snprintf(cam, sizeof cam, "cam%02d", c);
    const std::string d = dir + "/live/" + cam;
    fs::create_directories(d);
    const int dfd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY);
    for (long i = 0; i < per_camera && made < files; ++i, ++made) {
      const std::string name = segment_file_name(
          first_ns + i * 60 * kSec, static_cast<std::uint32_t>(i % 10000), RecordFormat::Mp4);
      const int fd = ::openat(dfd, name.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
      if (fd >= 0) ::close(fd);
    }
    ::close(dfd);
  }
  std::printf("tree: %ld files, %d cameras under %s (generated in %.1f s)\n", made, kCameras,
              dir.c_str(), seconds_since(t));
  std::fflush(stdout);
  ::sync();

  // The start-up index build (first, so the RSS growth is the index's own), then
  // the baseline, then both again: the figures are the second (warm) runs, the
  // first ones printed too.
  auto build_once = [&](SegmentIndex& index, std::size_t& problems) {
    const auto t0 = Clock::now();
    Storage::build_index(dir, index, [&](const std::string& p) {
      ++problems;
      std::fprintf(stderr, "%s\n", p.c_str());
    });
    return seconds_since(t0);
  };
  auto baseline_once = [&] {
    const auto t0 = Clock::now();
    arcly::FileStorage storage(dir);
    auto objects = storage.list("");
    std::sort(objects.begin(), objects.end(),
              [](const auto& a, const auto& b) { return a.modified_ns < b.modified_ns; });
    const double s = seconds_since(t0);
    std::printf("  baseline walk: %.2f s (%zu files)\n", s, objects.size());
    return s;
  };
  const long rss0 = rss_kib();
  SegmentIndex index;
  std::size_t problems = 0;
  const double build_cold = build_once(index, problems);
  const long rss1 = rss_kib();
  std::printf("  index build: %.2f s\n", build_cold);
  const double baseline_cold = baseline_once();
  {
    SegmentIndex again;
    std::size_t p2 = 0;
    const double b2 = build_once(again, p2);
    std::printf("  index build: %.2f s\n", b2);
  }
  const double baseline = std::min(baseline_cold, baseline_once());
  double build = build_cold;
  {
    SegmentIndex again;
    std::size_t p2 = 0;
    build = std::min(build, build_once(again, p2));
  }
  std::printf("baseline full walk + stat + sort (the old pass, every second): %.2f s\n", baseline);
  std::printf(
      "index build at start: %.2f s (%zu segments, %zu problems), index memory %.0f MiB "
      "(%.0f bytes per segment)\n",
      build, index.segments(), problems, static_cast<double>(rss1 - rss0) / 1024.0,
      static_cast<double>(rss1 - rss0) * 1024.0 /
          static_cast<double>(std::max<std::size_t>(index.segments(), 1)));

  // One pass with the oldest minute of every camera due.
  RetentionRule rule;
  rule.section = "bench";
  rule.pattern = "live/*";
  rule.max_age = std::chrono::seconds((per_camera - 1) * 60 + 30);
  const std::vector<RetentionRule> rules{rule};
  t = Clock::now();
  auto plan = index.plan(rules, Clocks{now_ns, 0}, true, 1ull << 40, 1ull << 40);
  std::size_t unlinked = 0;
  for (const auto& d : plan.deletions) unlinked += ::unlink((dir + "/" + d.path).c_str()) == 0;
  const double pass = seconds_since(t);
  std::printf("retention pass, oldest minute due: %.3f ms (%zu deleted)\n", pass * 1e3, unlinked);

  t = Clock::now();
  plan = index.plan(rules, Clocks{now_ns, 0}, true, 1ull << 40, 1ull << 40);
  const double idle = seconds_since(t);
  std::printf("retention pass, nothing due: %.1f us (%zu deleted)\n", idle * 1e6,
              plan.deletions.size());
  std::printf(
      "summary: %ld files: index build %.2f s once; a pass %.3f ms (%.1f us idle) "
      "against %.2f s for the old walk every second (%.0fx)\n",
      made, build, pass * 1e3, idle * 1e6, baseline, baseline / std::max(pass, 1e-9));
  if (!keep) {
    t = Clock::now();
    fs::remove_all(dir);
    std::printf("removed the tree in %.1f s\n", seconds_since(t));
  }
  return 0;
}
