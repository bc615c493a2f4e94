// Retention: what footage a storage keeps, decided from an index of its segments.
//
// A storage is one recording `dir`. Every [record] section writing there shares one
// Storage: its SegmentIndex is built once at start (one walk of
// {dir}/{app}/{stream}/, names only plus one stat per file) and then kept up to
// date as segments open and close, so a retention pass never walks the tree. The
// pass runs on the storage's own thread, once a second, and deletes in the
// background; the recorders and the status loop never wait for it.
//
// What is deleted (oldest capture time first), per camera (stream key):
//  * max-age: footage older than the matching section's max-age. Age is measured
//    on the recorded capture time: for segments recorded by this process on the
//    monotonic clock (a wall-clock step cannot age them); for segments found at
//    start from the capture time in their names, against the wall clock — unless
//    the wall clock has jumped (wall and monotonic clocks disagree by more than
//    10 s between passes): then that age-based deletion is refused until restart
//    and an event says so. A capture time in the future is never "old".
//  * max-bytes: per camera, counting its open segment, the oldest closed segments
//    go until the camera is under the bound.
//  * min-free (bytes or % of the filesystem): before each new segment and on each
//    pass, while the filesystem has less free space than the largest min-free of
//    the storage's sections, the oldest footage of the whole storage goes, across
//    cameras, as an NVR does. If nothing is left to delete, a storage-full event.
//  * Files of every format (mp4, mkv, ts) and set-aside ".partial" files are
//    footage; streams that no section of the storage matches any more keep the
//    longest max-age of the storage's sections (none if one keeps forever) and
//    are subject to min-free. Files whose names are not segment names are never
//    touched. The open segment of a recording is never deleted.
//
// Threads: SegmentIndex is not thread-safe (Storage guards it with its mutex).
// Storage: every method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config.hpp"
#include "segment_file.hpp"

namespace arcly::host {

// The retention settings of one [record] section on a storage.
struct RetentionRule {
  std::string section;  // "cam1" of [record cam1]
  std::string pattern;
  std::chrono::seconds max_age{0};  // 0 = by age, never
  std::uint64_t max_bytes = 0;      // per camera; 0 = no bound
  std::uint64_t min_free_bytes = 0;
  double min_free_percent = 0;  // of the filesystem's size
};

struct Clocks {
  std::int64_t wall_ns = 0;    // system clock, ns since the epoch
  std::int64_t steady_ns = 0;  // monotonic clock (CLOCK_MONOTONIC), ns
  static Clocks now();
};

struct Deletion {
  std::string path;  // relative to the storage: app/stream/name
  std::string key;
  std::string reason;  // "max-age", "max-bytes", "min-free"
  std::uint64_t size = 0;
};

struct RetentionPlan {
  std::vector<Deletion> deletions;
  std::uint64_t short_of_free = 0;  // bytes min-free still lacks with nothing left to delete
  bool age_refused = false;         // age-based deletion was skipped: the wall clock jumped
};

class SegmentIndex {
 public:
  static constexpr std::int64_t kUnknown = INT64_MIN;

  // A closed segment (from the start-up walk, or closed by a recorder).
  // `steady_ns` is its capture time on the monotonic clock when recorded by this
  // process, else kUnknown.
  void add(const std::string& key, const SegmentName& name, std::uint64_t size,
           std::int64_t steady_ns = kUnknown);
  // The start-up walk adds in directory order, then sorts once.
  void add_unsorted(const std::string& key, const SegmentName& name, std::uint64_t size);
  void sort();
  // Adds this index's segments to `target`, replacing same-named ones there.
  void merge_into(SegmentIndex& target) const;
  // A segment being written: counted by max-bytes (with `size` as last seen),
  // never deleted. closed() turns it into a closed segment.
  void opened(const std::string& key, const SegmentName& name, std::int64_t steady_ns);
  void grew(const std::string& key, const std::string& file, std::uint64_t size);
  void closed(const std::string& key, const std::string& file, std::uint64_t size);
  // A segment that is gone (an open one whose attempt failed and left nothing).
  void forget(const std::string& key, const std::string& file);

  // Decides (and takes out of the index) what to delete now. `free_bytes` and
  // `total_bytes` describe the filesystem; `wall_trusted` is false after a jump.
  RetentionPlan plan(const std::vector<RetentionRule>& rules, Clocks now, bool wall_trusted,
                     std::uint64_t free_bytes, std::uint64_t total_bytes);
  // Only the min-free part of plan(): before a new segment.
  RetentionPlan plan_free(const std::vector<RetentionRule>& rules, std::uint64_t free_bytes,
                          std::uint64_t total_bytes);

  std::size_t segments() const;
  std::uint64_t bytes() const;
  // The open segments (key, file) and their last size, for the pass to stat.
  std::vector<std::pair<std::string, std::string>> open_segments() const;

 private:
  struct Entry {
    std::int64_t capture_ns;
    std::int64_t steady_ns;
    std::uint64_t size;
    std::uint32_t number;
    std::uint8_t extension;  // index into kExtensions
    bool partial;
    bool millis;
  };
  struct Camera {
    std::deque<Entry> closed;           // by capture time, oldest first
    std::map<std::string, Entry> open;  // by file name
    std::uint64_t closed_bytes = 0;
  };
  static Entry entry_of(const SegmentName& n, std::uint64_t size, std::int64_t steady_ns);
  static std::string file_of(const Entry& e);
  void insert(Camera& c, Entry e);
  Deletion take_oldest(const std::string& key, Camera& c, const char* reason);
  void plan_min_free(const std::vector<RetentionRule>& rules, std::uint64_t free_bytes,
                     std::uint64_t total_bytes, RetentionPlan& plan);

  std::map<std::string, Camera> cameras_;  // by stream key
};

// One storage (dir), shared by the [record] sections that write there.
class Storage {
 public:
  struct Event {
    std::string type;     // "segment-deleted", "storage-full", "retention-error",
                          // "retention-clock-jump", "index-built"
    std::string section;  // the section whose rule applies ("" for the storage)
    std::string key;
    std::string location;  // absolute path
    std::string message;
  };
  using Observer = std::function<void(const Event&)>;
  struct Status {
    std::string dir;
    bool indexed = false;
    std::size_t segments = 0;
    std::uint64_t bytes = 0;
    std::uint64_t free_bytes = 0;
    std::uint64_t min_free_bytes = 0;  // the largest min-free, in bytes now
    std::uint64_t deleted = 0;
    std::string error;  // the last retention problem
  };

  // The storage for `dir` (one per directory in the process).
  static std::shared_ptr<Storage> attach(const std::string& dir);
  ~Storage();

  // A [record] section starts / stops writing here. `observer` receives the
  // events of the cameras its rule matches (and of the storage, for the first).
  void add_rule(const void* owner, RetentionRule rule, Observer observer);
  void remove_rule(const void* owner);

  // Recorder notifications (absolute paths under dir). Any thread.
  void segment_opened(const std::string& path, std::int64_t capture_wall_ns,
                      std::int64_t capture_steady_ns);
  void segment_closed(const std::string& path);
  void segment_gone(const std::string& path);
  // Before a new segment: deletes the oldest footage until min-free holds; false
  // (and a storage-full event) when it cannot.
  bool make_room();

  Status status() const;
  const std::string& dir() const { return dir_; }
  // Waits until the start-up index is built (tests, benchmarks).
  void wait_indexed() const;

  // The start-up walk, as the storage's thread runs it: fills `index`; each
  // directory that cannot be read is reported through `problem`.
  static void build_index(const std::string& dir, SegmentIndex& index,
                          const std::function<void(const std::string&)>& problem);

 private:
  explicit Storage(std::string dir);
  void run(std::stop_token stop);
  void pass();
  void execute(RetentionPlan plan);
  void emit(Event e);
  bool split(const std::string& path, std::string& key, std::string& file) const;
  std::vector<RetentionRule> rules_locked() const;
  bool filesystem_space(std::uint64_t& free_bytes, std::uint64_t& total_bytes) const;

  const std::string dir_;
  mutable std::mutex mutex_;
  mutable std::condition_variable_any indexed_cv_;
  SegmentIndex index_;
  bool indexed_ = false;
  std::vector<std::pair<const void*, std::pair<RetentionRule, Observer>>> rules_;
  std::optional<Clocks> last_pass_;
  bool wall_trusted_ = true;
  bool short_reported_ = false;
  std::uint64_t deleted_ = 0;
  std::string error_;
  std::mutex delete_mutex_;  // one deleter at a time (pass or make_room)
  std::jthread thread_;
};

}  // namespace arcly::host
