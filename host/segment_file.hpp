// Segment files on disk: their names, and recovering what a failed attempt wrote.
//
// A segment is named after the capture time of its first frame (UTC, to the
// millisecond) and its number within the recording:
//   {dir}/{app}/{stream}/20261126T105641.250Z-0003.mp4
// so the name alone tells retention when the footage was captured (no file has to
// be opened or stat'ed for its time, and a file's mtime, which any copy or touch
// changes, is never used). Older arcly versions wrote seconds only
// (20261126T105641Z-0003.mp4); those names still parse.
//
// A recording attempt that fails leaves its open segment unfinished. What can be
// kept is kept playable (recover_unfinished): a fragmented MP4 is cut after its
// last complete fragment, a TS after its last whole packet; a Matroska file, which
// has no such boundary to cut at without parsing clusters, is set aside as
// "<name>.partial".
//
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config.hpp"

namespace arcly::host {

struct SegmentName {
  std::int64_t capture_ns = 0;  // wall clock, ns since the epoch (UTC)
  std::uint32_t number = 0;
  std::string extension;  // "mp4", "mkv", "ts"
  bool partial = false;   // "<name>.partial": set aside, not playable as is
  bool millis = true;     // false for the seconds-only names of older versions

  std::string str() const;
  // Parses a file name (no directory); nullopt when it is not a segment name.
  static std::optional<SegmentName> parse(std::string_view file);
};

std::string segment_file_name(std::int64_t capture_ns, std::uint32_t number, RecordFormat format);

// What recover_unfinished did with a file.
enum class Recovery {
  Kept,      // cut to its last complete unit; playable under its own name
  SetAside,  // renamed to "<path>.partial"
  Removed,   // held no complete fragment: deleted
  Missing,   // the file was not there
};
struct RecoveryResult {
  Recovery outcome = Recovery::Missing;
  std::string path;        // where the file is now (empty when removed or missing)
  std::uint64_t size = 0;  // its size now
};
RecoveryResult recover_unfinished(const std::string& path, RecordFormat format);

// The end offset of the playable prefix of a fragmented MP4 (up to its last whole
// moov or moof, or the whole mdat after a moof), or 0 when it has none. Reads box
// headers only.
std::uint64_t fragmented_mp4_complete_end(const std::string& path);

}  // namespace arcly::host
