#include "arcly/record.hpp"

#include <chrono>
#include <fstream>

#include "arcly/error.hpp"

namespace arcly {

RecordingResult drive_recording(Subscription& subscription, RecordingSink& sink,
                                std::stop_token stop) {
  RecordingResult result;
  bool gap = false;  // a strict subscription's Lagged: the next frame follows a gap
  for (;;) {
    Received r = subscription.recv(std::chrono::steady_clock::time_point::max(), stop);
    if (r.status == RecvStatus::Frame) {
      const bool media = !r.frame->is_config();
      sink.write(r.frame, r.discont || (gap && media));
      if (media) gap = false;
      ++result.frames;
      result.dropped += r.skipped;
    } else if (r.status == RecvStatus::Lagged) {
      gap = true;
      result.dropped += r.skipped;
    } else {
      result.stream_ended = r.status == RecvStatus::Closed;
      break;
    }
  }
  sink.flush();
  return result;
}

void check_object_path(const std::string& path) {
  auto bad = [&](const char* why) {
    throw Error(Errc::InvalidArgument, "storage path '" + path + "' " + why);
  };
  if (path.empty()) bad("is empty");
  if (path.front() == '/') bad("is absolute");
  if (path.find('\0') != std::string::npos) bad("contains a NUL byte");
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string part = path.substr(start, end - start);
    if (part.empty()) bad("has an empty component");
    if (part == "." || part == "..") bad("has a '.' or '..' component");
    start = end + 1;
  }
}

namespace {

class FileWriter final : public StorageWriter {
 public:
  FileWriter(std::filesystem::path final_path)
      : final_(std::move(final_path)), part_(final_.string() + ".part") {
    std::error_code ec;
    std::filesystem::create_directories(final_.parent_path(), ec);
    if (ec) {
      throw Error(Errc::Io, "cannot create directory '" + final_.parent_path().string() +
                                "': " + ec.message());
    }
    out_.open(part_, std::ios::binary | std::ios::trunc);
    if (!out_) throw Error(Errc::Io, "cannot open '" + part_.string() + "' for writing");
  }
  ~FileWriter() override {
    if (!committed_) {
      out_.close();
      std::error_code ec;
      std::filesystem::remove(part_, ec);
    }
  }
  void write(std::span<const std::uint8_t> bytes) override {
    out_.write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    if (!out_) throw Error(Errc::Io, "cannot write to '" + part_.string() + "'");
  }
  void commit() override {
    out_.close();
    if (!out_) throw Error(Errc::Io, "cannot finish '" + part_.string() + "'");
    std::error_code ec;
    std::filesystem::rename(part_, final_, ec);
    if (ec) throw Error(Errc::Io, "cannot rename '" + part_.string() + "': " + ec.message());
    committed_ = true;
  }

 private:
  std::filesystem::path final_;
  std::filesystem::path part_;
  std::ofstream out_;
  bool committed_ = false;
};

std::int64_t to_unix_ns(std::filesystem::file_time_type t) {
  // libstdc++ 12 lacks clock_cast; translate through "now" on both clocks.
  const auto sys = std::chrono::system_clock::now() +
                   std::chrono::duration_cast<std::chrono::system_clock::duration>(
                       t - std::filesystem::file_time_type::clock::now());
  return std::chrono::duration_cast<std::chrono::nanoseconds>(sys.time_since_epoch()).count();
}

}  // namespace

FileStorage::FileStorage(std::filesystem::path root) : root_(std::move(root)) {}

std::filesystem::path FileStorage::local_path(const std::string& path) const {
  check_object_path(path);
  return root_ / path;
}

std::unique_ptr<StorageWriter> FileStorage::create(const std::string& path) {
  return std::make_unique<FileWriter>(local_path(path));
}

std::vector<StoredObject> FileStorage::list(const std::string& prefix) const {
  std::vector<StoredObject> out;
  std::error_code ec;
  if (!std::filesystem::exists(root_, ec)) return out;
  for (auto it = std::filesystem::recursive_directory_iterator(root_, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string rel = std::filesystem::relative(it->path(), root_, ec).generic_string();
    if (rel.rfind(prefix, 0) != 0 || rel.ends_with(".part")) continue;
    out.push_back(
        {rel, static_cast<std::uint64_t>(it->file_size(ec)), to_unix_ns(it->last_write_time(ec))});
  }
  return out;
}

void FileStorage::remove(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(local_path(path), ec);
  if (ec) throw Error(Errc::Io, "cannot remove '" + path + "': " + ec.message());
}

class MemoryWriter final : public StorageWriter {
 public:
  MemoryWriter(MemoryStorage& storage, std::string path)
      : storage_(storage), path_(std::move(path)) {}
  void write(std::span<const std::uint8_t> bytes) override {
    data_.insert(data_.end(), bytes.begin(), bytes.end());
  }
  void commit() override {
    std::lock_guard lock(storage_.mutex_);
    storage_.objects_[path_] = std::move(data_);
  }

 private:
  MemoryStorage& storage_;
  std::string path_;
  std::vector<std::uint8_t> data_;
};

std::unique_ptr<StorageWriter> MemoryStorage::create(const std::string& path) {
  check_object_path(path);
  return std::make_unique<MemoryWriter>(*this, path);
}

std::vector<StoredObject> MemoryStorage::list(const std::string& prefix) const {
  std::lock_guard lock(mutex_);
  std::vector<StoredObject> out;
  for (const auto& [path, data] : objects_) {
    if (path.rfind(prefix, 0) == 0) out.push_back({path, data.size(), 0});
  }
  return out;
}

void MemoryStorage::remove(const std::string& path) {
  std::lock_guard lock(mutex_);
  objects_.erase(path);
}

std::vector<std::uint8_t> MemoryStorage::read(const std::string& path) const {
  std::lock_guard lock(mutex_);
  auto it = objects_.find(path);
  if (it == objects_.end()) throw Error(Errc::Io, "no stored object '" + path + "'");
  return it->second;
}

}  // namespace arcly
