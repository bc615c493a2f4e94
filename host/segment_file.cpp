#include "segment_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>

namespace arcly::host {

namespace {

bool digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

int to_int(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

}  // namespace

std::string SegmentName::str() const {
  const std::time_t secs = static_cast<std::time_t>(capture_ns / 1'000'000'000 -
                                                    (capture_ns % 1'000'000'000 < 0 ? 1 : 0));
  const int ms =
      static_cast<int>(((capture_ns % 1'000'000'000) + 1'000'000'000) % 1'000'000'000 / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
  char out[96];
  if (millis)
    std::snprintf(out, sizeof out, "%s.%03dZ-%04u.%s%s", stamp, ms, number, extension.c_str(),
                  partial ? ".partial" : "");
  else
    std::snprintf(out, sizeof out, "%sZ-%04u.%s%s", stamp, number, extension.c_str(),
                  partial ? ".partial" : "");
  return out;
}

std::optional<SegmentName> SegmentName::parse(std::string_view file) {
  // 20261126T105641[.250]Z-0003.mp4[.partial]
  SegmentName n;
  if (file.ends_with(".partial")) {
    n.partial = true;
    file.remove_suffix(8);
  }
  const auto dot = file.rfind('.');
  if (dot == std::string_view::npos) return std::nullopt;
  n.extension = std::string(file.substr(dot + 1));
  if (n.extension != "mp4" && n.extension != "mkv" && n.extension != "ts") return std::nullopt;
  file = file.substr(0, dot);
  const auto dash = file.rfind('-');
  if (dash == std::string_view::npos || !digits(file.substr(dash + 1))) return std::nullopt;
  n.number = static_cast<std::uint32_t>(std::stoul(std::string(file.substr(dash + 1))));
  std::string_view stamp = file.substr(0, dash);
  if (!stamp.ends_with('Z')) return std::nullopt;
  stamp.remove_suffix(1);
  int ms = 0;
  n.millis = false;
  if (stamp.size() == 19 && stamp[15] == '.') {
    if (!digits(stamp.substr(16))) return std::nullopt;
    ms = to_int(stamp.substr(16));
    stamp = stamp.substr(0, 15);
    n.millis = true;
  }
  if (stamp.size() != 15 || stamp[8] != 'T' || !digits(stamp.substr(0, 8)) ||
      !digits(stamp.substr(9)))
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = to_int(stamp.substr(0, 4)) - 1900;
  tm.tm_mon = to_int(stamp.substr(4, 2)) - 1;
  tm.tm_mday = to_int(stamp.substr(6, 2));
  tm.tm_hour = to_int(stamp.substr(9, 2));
  tm.tm_min = to_int(stamp.substr(11, 2));
  tm.tm_sec = to_int(stamp.substr(13, 2));
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60)
    return std::nullopt;
  const std::time_t secs = timegm(&tm);
  n.capture_ns = static_cast<std::int64_t>(secs) * 1'000'000'000 + ms * 1'000'000LL;
  return n;
}

std::string segment_file_name(std::int64_t capture_ns, std::uint32_t number, RecordFormat format) {
  SegmentName n;
  n.capture_ns = capture_ns;
  n.number = number;
  n.extension = std::string(format_extension(format));
  return n.str();
}

std::uint64_t fragmented_mp4_complete_end(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const off_t file_size = ::lseek(fd, 0, SEEK_END);
  std::uint64_t pos = 0;
  std::uint64_t complete = 0;
  bool moof_pending = false;
  while (file_size > 0 && pos + 8 <= static_cast<std::uint64_t>(file_size)) {
    unsigned char h[16];
    if (::pread(fd, h, 16, static_cast<off_t>(pos)) < 8) break;
    std::uint64_t size = (std::uint64_t{h[0]} << 24) | (std::uint64_t{h[1]} << 16) |
                         (std::uint64_t{h[2]} << 8) | h[3];
    const std::string type(reinterpret_cast<const char*>(h + 4), 4);
    if (size == 1) {
      if (pos + 16 > static_cast<std::uint64_t>(file_size)) break;
      size = 0;
      for (int i = 8; i < 16; ++i) size = (size << 8) | h[i];
    } else if (size == 0) {
      size = static_cast<std::uint64_t>(file_size) - pos;  // "to the end": cannot be trusted
      if (type == "mdat") break;
    }
    if (size < 8 || pos + size > static_cast<std::uint64_t>(file_size)) break;  // cut short
    pos += size;
    // Whole index boxes end a playable prefix: mp4mux's first-moov-then-finalise
    // writes each fragment's mdat before the moof that describes it. In the usual
    // order (moof, then mdat) the mdat completes the fragment.
    if (type == "moov" || type == "moof") {
      complete = pos;
      moof_pending = type == "moof";
    } else if (type == "mdat" && moof_pending) {
      complete = pos;
      moof_pending = false;
    } else if (type != "free" && type != "skip") {
      moof_pending = false;
    }
  }
  ::close(fd);
  return complete;
}

RecoveryResult recover_unfinished(const std::string& path, RecordFormat format) {
  namespace fs = std::filesystem;
  RecoveryResult r;
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return r;
  auto remove = [&] {
    fs::remove(path, ec);
    r.outcome = Recovery::Removed;
    return r;
  };
  if (size == 0) return remove();
  std::uint64_t keep = 0;
  switch (format) {
    case RecordFormat::Mp4:
      keep = fragmented_mp4_complete_end(path);
      break;
    case RecordFormat::Ts:
      keep = size - size % 188;
      break;
    case RecordFormat::Mkv: {
      fs::rename(path, path + ".partial", ec);
      r.outcome = ec ? Recovery::Kept : Recovery::SetAside;
      r.path = ec ? path : path + ".partial";
      r.size = size;
      return r;
    }
  }
  if (keep == 0) return remove();
  if (keep < size && ::truncate(path.c_str(), static_cast<off_t>(keep)) != 0) {
    // Cannot cut it: keep it aside rather than pass it off as playable.
    fs::rename(path, path + ".partial", ec);
    r.outcome = Recovery::SetAside;
    r.path = path + ".partial";
    r.size = size;
    return r;
  }
  r.outcome = Recovery::Kept;
  r.path = path;
  r.size = keep;
  return r;
}

}  // namespace arcly::host
