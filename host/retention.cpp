#include "retention.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "srt_worker.hpp"  // key_matches

namespace arcly::host {

namespace {

constexpr const char* kExtensions[] = {"mp4", "mkv", "ts"};
constexpr std::int64_t kJumpTolerance_ns = 10'000'000'000;  // wall vs monotonic between passes
constexpr std::size_t kEventsPerPass = 20;  // segment-deleted events; the rest summed up

std::uint8_t extension_index(const std::string& ext) {
  for (std::uint8_t i = 0; i < 3; ++i) {
    if (ext == kExtensions[i]) return i;
  }
  return 0;
}

const RetentionRule* rule_for(const std::vector<RetentionRule>& rules, const std::string& key) {
  for (const auto& r : rules) {
    if (ingest::key_matches(r.pattern, key)) return &r;
  }
  return nullptr;
}

std::uint64_t min_free_of(const std::vector<RetentionRule>& rules, std::uint64_t total_bytes) {
  std::uint64_t want = 0;
  for (const auto& r : rules) {
    want = std::max(want, r.min_free_bytes);
    if (r.min_free_percent > 0)
      want = std::max(want, static_cast<std::uint64_t>(static_cast<double>(total_bytes) *
                                                       r.min_free_percent / 100.0));
  }
  return want;
}

std::string errno_text(int e) {
  return std::strerror(e);
}

}  // namespace

Clocks Clocks::now() {
  Clocks c;
  c.wall_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  c.steady_ns = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  return c;
}

// ---- SegmentIndex ----------------------------------------------------------------

SegmentIndex::Entry SegmentIndex::entry_of(const SegmentName& n, std::uint64_t size,
                                           std::int64_t steady_ns) {
  return Entry{n.capture_ns, steady_ns, size, n.number, extension_index(n.extension),
               n.partial,    n.millis};
}

std::string SegmentIndex::file_of(const Entry& e) {
  SegmentName n;
  n.capture_ns = e.capture_ns;
  n.number = e.number;
  n.extension = kExtensions[e.extension];
  n.partial = e.partial;
  n.millis = e.millis;
  return n.str();
}

void SegmentIndex::insert(Camera& c, Entry e) {
  c.closed_bytes += e.size;
  if (c.closed.empty() || c.closed.back().capture_ns <= e.capture_ns) {
    c.closed.push_back(e);
    return;
  }
  auto at = std::upper_bound(c.closed.begin(), c.closed.end(), e.capture_ns,
                             [](std::int64_t t, const Entry& x) { return t < x.capture_ns; });
  c.closed.insert(at, e);
}

void SegmentIndex::add(const std::string& key, const SegmentName& name, std::uint64_t size,
                       std::int64_t steady_ns) {
  insert(cameras_[key], entry_of(name, size, steady_ns));
}

void SegmentIndex::add_unsorted(const std::string& key, const SegmentName& name,
                                std::uint64_t size) {
  auto& c = cameras_[key];
  c.closed.push_back(entry_of(name, size, kUnknown));
  c.closed_bytes += size;
}

void SegmentIndex::sort() {
  for (auto& [key, c] : cameras_) {
    std::sort(c.closed.begin(), c.closed.end(),
              [](const Entry& a, const Entry& b) { return a.capture_ns < b.capture_ns; });
  }
}

void SegmentIndex::merge_into(SegmentIndex& target) const {
  for (const auto& [key, c] : cameras_) {
    auto& t = target.cameras_[key];
    for (const auto& [file, e] : c.open) {
      target.forget(key, file);
      t.open[file] = e;
    }
    for (const auto& e : c.closed) {
      target.forget(key, file_of(e));
      target.insert(t, e);
    }
  }
}

void SegmentIndex::opened(const std::string& key, const SegmentName& name, std::int64_t steady_ns) {
  cameras_[key].open[name.str()] = entry_of(name, 0, steady_ns);
}

void SegmentIndex::grew(const std::string& key, const std::string& file, std::uint64_t size) {
  auto c = cameras_.find(key);
  if (c == cameras_.end()) return;
  if (auto it = c->second.open.find(file); it != c->second.open.end()) it->second.size = size;
}

void SegmentIndex::closed(const std::string& key, const std::string& file, std::uint64_t size) {
  auto& c = cameras_[key];
  if (auto it = c.open.find(file); it != c.open.end()) {
    Entry e = it->second;
    e.size = size;
    c.open.erase(it);
    insert(c, e);
    return;
  }
  // Not seen open (recovered under another name, or found late): by its name.
  if (auto n = SegmentName::parse(file)) {
    forget(key, file);  // known already: replaced
    insert(cameras_[key], entry_of(*n, size, kUnknown));
  }
}

void SegmentIndex::forget(const std::string& key, const std::string& file) {
  auto c = cameras_.find(key);
  if (c == cameras_.end()) return;
  c->second.open.erase(file);
  auto n = SegmentName::parse(file);
  if (!n) return;
  auto& closed = c->second.closed;
  // Sorted by capture time: look back from the newest while it can still match.
  for (auto it = closed.rbegin(); it != closed.rend() && it->capture_ns >= n->capture_ns; ++it) {
    if (it->capture_ns == n->capture_ns && it->number == n->number &&
        it->extension == extension_index(n->extension) && it->partial == n->partial) {
      c->second.closed_bytes -= it->size;
      closed.erase(std::next(it).base());
      return;
    }
  }
}

Deletion SegmentIndex::take_oldest(const std::string& key, Camera& c, const char* reason) {
  const Entry e = c.closed.front();
  c.closed.pop_front();
  c.closed_bytes -= e.size;
  return Deletion{key + "/" + file_of(e), key, reason, e.size};
}

RetentionPlan SegmentIndex::plan(const std::vector<RetentionRule>& rules, Clocks now,
                                 bool wall_trusted, std::uint64_t free_bytes,
                                 std::uint64_t total_bytes) {
  RetentionPlan plan;
  // Streams no rule matches keep the longest max-age (none if one keeps forever).
  std::chrono::seconds orphan_age{0};
  bool any_forever = rules.empty();
  for (const auto& r : rules) {
    if (r.max_age.count() == 0) any_forever = true;
    orphan_age = std::max(orphan_age, r.max_age);
  }
  if (any_forever) orphan_age = std::chrono::seconds(0);

  for (auto& [key, cam] : cameras_) {
    const RetentionRule* rule = rule_for(rules, key);
    const auto max_age = rule ? rule->max_age : orphan_age;
    if (max_age.count() > 0) {
      const std::int64_t limit = std::chrono::nanoseconds(max_age).count();
      while (!cam.closed.empty()) {
        const Entry& e = cam.closed.front();
        std::int64_t age;
        if (e.steady_ns != kUnknown) {
          age = now.steady_ns - e.steady_ns;
        } else if (!wall_trusted) {
          if (now.wall_ns - e.capture_ns > limit) plan.age_refused = true;
          break;
        } else {
          age = now.wall_ns - e.capture_ns;
        }
        if (age <= limit) break;
        plan.deletions.push_back(take_oldest(key, cam, "max-age"));
      }
    }
    if (rule && rule->max_bytes > 0) {
      std::uint64_t total = cam.closed_bytes;
      for (const auto& [file, e] : cam.open) total += e.size;
      while (total > rule->max_bytes && !cam.closed.empty()) {
        const auto d = take_oldest(key, cam, "max-bytes");
        total -= d.size;
        plan.deletions.push_back(d);
      }
    }
  }
  // What the deletions above free counts towards min-free.
  std::uint64_t freed = 0;
  for (const auto& d : plan.deletions) freed += d.size;
  plan_min_free(rules, free_bytes + freed, total_bytes, plan);
  return plan;
}

RetentionPlan SegmentIndex::plan_free(const std::vector<RetentionRule>& rules,
                                      std::uint64_t free_bytes, std::uint64_t total_bytes) {
  RetentionPlan plan;
  plan_min_free(rules, free_bytes, total_bytes, plan);
  return plan;
}

void SegmentIndex::plan_min_free(const std::vector<RetentionRule>& rules, std::uint64_t free_bytes,
                                 std::uint64_t total_bytes, RetentionPlan& plan) {
  const std::uint64_t want = min_free_of(rules, total_bytes);
  while (free_bytes < want) {
    // The oldest closed segment of the whole storage, across cameras.
    std::map<std::string, Camera>::iterator oldest = cameras_.end();
    for (auto it = cameras_.begin(); it != cameras_.end(); ++it) {
      if (it->second.closed.empty()) continue;
      if (oldest == cameras_.end() ||
          it->second.closed.front().capture_ns < oldest->second.closed.front().capture_ns)
        oldest = it;
    }
    if (oldest == cameras_.end()) {
      plan.short_of_free = want - free_bytes;
      return;
    }
    const auto d = take_oldest(oldest->first, oldest->second, "min-free");
    // A file's blocks may be fewer than its size: count at least one block.
    free_bytes += std::max<std::uint64_t>(d.size, 4096);
    plan.deletions.push_back(d);
  }
}

std::size_t SegmentIndex::segments() const {
  std::size_t n = 0;
  for (const auto& [key, c] : cameras_) n += c.closed.size() + c.open.size();
  return n;
}

std::uint64_t SegmentIndex::bytes() const {
  std::uint64_t n = 0;
  for (const auto& [key, c] : cameras_) {
    n += c.closed_bytes;
    for (const auto& [file, e] : c.open) n += e.size;
  }
  return n;
}

std::vector<std::pair<std::string, std::string>> SegmentIndex::open_segments() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, c] : cameras_) {
    for (const auto& [file, e] : c.open) out.emplace_back(key, file);
  }
  return out;
}

// ---- Storage ---------------------------------------------------------------------

namespace {
std::mutex registry_mutex;
std::map<std::string, std::weak_ptr<Storage>>& registry() {
  static std::map<std::string, std::weak_ptr<Storage>> r;
  return r;
}
}  // namespace

std::shared_ptr<Storage> Storage::attach(const std::string& dir) {
  std::error_code ec;
  std::string canonical = std::filesystem::absolute(dir, ec).lexically_normal().string();
  while (canonical.size() > 1 && canonical.back() == '/') canonical.pop_back();
  std::lock_guard lock(registry_mutex);
  auto& slot = registry()[canonical];
  if (auto s = slot.lock()) return s;
  std::shared_ptr<Storage> s(new Storage(canonical));
  slot = s;
  return s;
}

Storage::Storage(std::string dir) : dir_(std::move(dir)) {
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

Storage::~Storage() {
  thread_.request_stop();
  if (thread_.joinable()) thread_.join();
}

void Storage::add_rule(const void* owner, RetentionRule rule, Observer observer) {
  std::lock_guard lock(mutex_);
  rules_.emplace_back(owner, std::make_pair(std::move(rule), std::move(observer)));
}

void Storage::remove_rule(const void* owner) {
  std::lock_guard lock(mutex_);
  std::erase_if(rules_, [&](const auto& r) { return r.first == owner; });
}

std::vector<RetentionRule> Storage::rules_locked() const {
  std::vector<RetentionRule> out;
  for (const auto& [owner, r] : rules_) out.push_back(r.first);
  return out;
}

bool Storage::split(const std::string& path, std::string& key, std::string& file) const {
  if (path.size() <= dir_.size() + 1 || path.compare(0, dir_.size(), dir_) != 0 ||
      path[dir_.size()] != '/')
    return false;
  const std::string rel = path.substr(dir_.size() + 1);
  const auto slash = rel.rfind('/');
  if (slash == std::string::npos) return false;
  key = rel.substr(0, slash);
  file = rel.substr(slash + 1);
  return true;
}

bool Storage::filesystem_space(std::uint64_t& free_bytes, std::uint64_t& total_bytes) const {
  struct statvfs v {};
  if (::statvfs(dir_.c_str(), &v) != 0) return false;
  free_bytes = static_cast<std::uint64_t>(v.f_bavail) * v.f_frsize;
  total_bytes = static_cast<std::uint64_t>(v.f_blocks) * v.f_frsize;
  return true;
}

void Storage::segment_opened(const std::string& path, std::int64_t capture_wall_ns,
                             std::int64_t capture_steady_ns) {
  std::string key, file;
  if (!split(path, key, file)) return;
  auto n = SegmentName::parse(file);
  if (!n) return;
  (void)capture_wall_ns;  // the name carries it
  std::lock_guard lock(mutex_);
  index_.opened(key, *n, capture_steady_ns);
}

void Storage::segment_closed(const std::string& path) {
  std::string key, file;
  if (!split(path, key, file)) return;
  struct stat st {};
  const std::uint64_t size =
      ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
  std::lock_guard lock(mutex_);
  index_.closed(key, file, size);
}

void Storage::segment_gone(const std::string& path) {
  std::string key, file;
  if (!split(path, key, file)) return;
  std::lock_guard lock(mutex_);
  index_.forget(key, file);
}

bool Storage::make_room() {
  RetentionPlan plan;
  {
    std::lock_guard lock(mutex_);
    const auto rules = rules_locked();
    if (min_free_of(rules, 1) == 0) return true;  // no min-free here
    std::uint64_t free_bytes = 0, total_bytes = 0;
    if (!filesystem_space(free_bytes, total_bytes)) return true;
    plan = index_.plan_free(rules, free_bytes, total_bytes);
  }
  const bool short_of_free = plan.short_of_free > 0;
  execute(std::move(plan));
  return !short_of_free;
}

void Storage::emit(Event e) {
  Observer observer;
  {
    std::lock_guard lock(mutex_);
    for (const auto& [owner, r] : rules_) {
      if (!e.key.empty() && ingest::key_matches(r.first.pattern, e.key)) {
        observer = r.second;
        e.section = r.first.section;
        break;
      }
    }
    if (!observer && !rules_.empty()) {
      observer = rules_.front().second.second;
      e.section = rules_.front().second.first.section;
    }
  }
  if (observer) observer(e);
}

void Storage::execute(RetentionPlan plan) {
  std::lock_guard deleting(delete_mutex_);
  std::size_t reported = 0;
  std::uint64_t unreported = 0;
  for (const auto& d : plan.deletions) {
    const std::string path = dir_ + "/" + d.path;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      const std::string why = "cannot delete " + path + ": " + errno_text(errno);
      {
        std::lock_guard lock(mutex_);
        error_ = why;
      }
      emit({"retention-error", "", d.key, path, why});
      continue;
    }
    {
      std::lock_guard lock(mutex_);
      ++deleted_;
    }
    if (reported < kEventsPerPass) {
      ++reported;
      emit({"segment-deleted", "", d.key, path, d.reason});
    } else {
      ++unreported;
    }
  }
  if (unreported > 0)
    emit({"segment-deleted", "", "", dir_,
          std::to_string(unreported) + " more segments deleted by retention"});
  if (plan.short_of_free > 0) {
    bool report = false;
    {
      std::lock_guard lock(mutex_);
      report = !short_reported_;
      short_reported_ = true;
      error_ = "min-free: " + std::to_string(plan.short_of_free) +
               " bytes short and no footage left to delete in " + dir_;
    }
    if (report)
      emit({"storage-full", "", "", dir_,
            "free space is " + std::to_string(plan.short_of_free) +
                " bytes below min-free and no footage is left to delete (other files fill the "
                "filesystem)"});
  } else {
    std::lock_guard lock(mutex_);
    if (short_reported_) error_.clear();
    short_reported_ = false;
  }
}

void Storage::build_index(const std::string& dir, SegmentIndex& index,
                          const std::function<void(const std::string&)>& problem) {
  // {dir}/{app}/{stream}/{segment}: a fixed depth, read with one readdir and one
  // fstatat per file; a directory that cannot be read is reported and skipped.
  auto list = [&](const std::string& path, auto&& each) {
    DIR* d = ::opendir(path.c_str());
    if (!d) {
      if (errno != ENOENT || path != dir) problem("cannot read " + path + ": " + errno_text(errno));
      return;
    }
    errno = 0;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      each(d, e);
      errno = 0;
    }
    if (errno != 0) problem("cannot read " + path + ": " + errno_text(errno));
    ::closedir(d);
  };
  auto is_dir = [](DIR* d, dirent* e) {
    if (e->d_type == DT_DIR) return true;
    if (e->d_type != DT_UNKNOWN) return false;
    struct stat st {};
    return ::fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
  };
  list(dir, [&](DIR* top, dirent* app) {
    if (!is_dir(top, app)) return;
    const std::string app_path = dir + "/" + app->d_name;
    list(app_path, [&](DIR* mid, dirent* stream) {
      if (!is_dir(mid, stream)) return;
      const std::string key = std::string(app->d_name) + "/" + stream->d_name;
      list(app_path + "/" + stream->d_name, [&](DIR* leaf, dirent* f) {
        auto n = SegmentName::parse(f->d_name);
        if (!n) return;
        struct stat st {};
        if (::fstatat(dirfd(leaf), f->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
          return;
        index.add_unsorted(key, *n, static_cast<std::uint64_t>(st.st_size));
      });
    });
  });
  index.sort();
}

void Storage::run(std::stop_token stop) {
  SegmentIndex found;
  build_index(dir_, found, [&](const std::string& why) {
    {
      std::lock_guard lock(mutex_);
      error_ = why;
    }
    emit({"retention-error", "", "", dir_, why});
  });
  {
    // Segments opened or closed while the walk ran are the newest: they win.
    std::lock_guard lock(mutex_);
    for (const auto& [key, file] : index_.open_segments()) found.forget(key, file);
    std::swap(found, index_);
    found.merge_into(index_);
    indexed_ = true;
  }
  indexed_cv_.notify_all();
  std::mutex m;
  std::condition_variable_any cv;
  while (!stop.stop_requested()) {
    pass();
    std::unique_lock l(m);
    cv.wait_for(l, stop, std::chrono::seconds(1), [] { return false; });
  }
}

void Storage::pass() {
  RetentionPlan plan;
  bool jumped = false;
  std::int64_t jump_ns = 0;
  {
    std::lock_guard lock(mutex_);
    if (rules_.empty()) return;
    const auto now = Clocks::now();
    if (last_pass_) {
      jump_ns = (now.wall_ns - last_pass_->wall_ns) - (now.steady_ns - last_pass_->steady_ns);
      if (wall_trusted_ && (jump_ns > kJumpTolerance_ns || jump_ns < -kJumpTolerance_ns)) {
        wall_trusted_ = false;
        jumped = true;
      }
    }
    last_pass_ = now;
    for (const auto& [key, file] : index_.open_segments()) {
      struct stat st {};
      if (::stat((dir_ + "/" + key + "/" + file).c_str(), &st) == 0)
        index_.grew(key, file, static_cast<std::uint64_t>(st.st_size));
    }
    std::uint64_t free_bytes = 0, total_bytes = 0;
    if (!filesystem_space(free_bytes, total_bytes)) free_bytes = total_bytes = 0;
    plan = index_.plan(rules_locked(), now, wall_trusted_, free_bytes, total_bytes);
  }
  if (jumped) {
    emit({"retention-clock-jump", "", "", dir_,
          "the wall clock jumped by " + std::to_string(jump_ns / 1'000'000'000) +
              " s: footage found at start is no longer deleted by age until arcly restarts "
              "(max-bytes and min-free still apply; footage recorded since start is aged on "
              "the monotonic clock)"});
  }
  execute(std::move(plan));
}

Storage::Status Storage::status() const {
  std::lock_guard lock(mutex_);
  Status s;
  s.dir = dir_;
  s.indexed = indexed_;
  s.segments = index_.segments();
  s.bytes = index_.bytes();
  std::uint64_t total = 0;
  filesystem_space(s.free_bytes, total);
  s.min_free_bytes = min_free_of(rules_locked(), total);
  s.deleted = deleted_;
  s.error = error_;
  return s;
}

void Storage::wait_indexed() const {
  std::unique_lock lock(mutex_);
  indexed_cv_.wait(lock, [&] { return indexed_; });
}

}  // namespace arcly::host
