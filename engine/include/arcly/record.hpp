// The recording seam: RecordingSink (what consumes a subscription to record it)
// and StorageBackend (where the bytes land). The engine defines the contract; the
// real recorder (splitmuxsink-based, in the host) implements it.
//
// * drive_recording() pulls frames from a subscription into a sink until the
//   stream ends or `stop` fires, and then always calls flush(): a recording is
//   finalized when its publisher disconnects.
// * StorageBackend resolves relative object paths under its root; a path that
//   would escape it is refused with Error{InvalidArgument}.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <stop_token>
#include <string>
#include <vector>

#include "arcly/frame_ref.hpp"
#include "arcly/subscription.hpp"

namespace arcly {

class RecordingSink {
 public:
  virtual ~RecordingSink() = default;
  // One frame in order; `discont` if frames were dropped before it.
  virtual void write(const FrameRef& frame, bool discont) = 0;
  // The stream ended or recording stops: finalize what was written.
  virtual void flush() = 0;
};

struct RecordingResult {
  std::uint64_t frames = 0;
  std::uint64_t dropped = 0;
  bool stream_ended = false;  // false: stopped by the token
};

RecordingResult drive_recording(Subscription& subscription, RecordingSink& sink,
                                std::stop_token stop = {});

struct StoredObject {
  std::string path;  // relative to the backend's root
  std::uint64_t size = 0;
  std::int64_t modified_ns = 0;  // since the Unix epoch
};

class StorageWriter {
 public:
  virtual ~StorageWriter() = default;
  virtual void write(std::span<const std::uint8_t> bytes) = 0;
  // Makes the object complete and visible under its final path.
  virtual void commit() = 0;
};

class StorageBackend {
 public:
  virtual ~StorageBackend() = default;
  virtual std::unique_ptr<StorageWriter> create(const std::string& path) = 0;
  virtual std::vector<StoredObject> list(const std::string& prefix) const = 0;
  virtual void remove(const std::string& path) = 0;
  // Where a GStreamer sink may write `path` directly (local backends), else empty.
  virtual std::filesystem::path local_path(const std::string& path) const = 0;
};

// Checks a relative object path: no absolute path, no "..", no empty component.
// Throws Error{InvalidArgument} quoting it.
void check_object_path(const std::string& path);

// The local file system under `root`; create() writes "<path>.part" and renames
// it on commit().
class FileStorage final : public StorageBackend {
 public:
  explicit FileStorage(std::filesystem::path root);
  std::unique_ptr<StorageWriter> create(const std::string& path) override;
  std::vector<StoredObject> list(const std::string& prefix) const override;
  void remove(const std::string& path) override;
  std::filesystem::path local_path(const std::string& path) const override;
  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
};

// Objects kept in memory (tests, embedders).
class MemoryStorage final : public StorageBackend {
 public:
  std::unique_ptr<StorageWriter> create(const std::string& path) override;
  std::vector<StoredObject> list(const std::string& prefix) const override;
  void remove(const std::string& path) override;
  std::filesystem::path local_path(const std::string&) const override { return {}; }
  std::vector<std::uint8_t> read(const std::string& path) const;

 private:
  friend class MemoryWriter;
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<std::uint8_t>> objects_;
};

}  // namespace arcly
