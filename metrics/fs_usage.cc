#include "metrics/fs_usage.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/status.h"

namespace berth::metrics {
namespace {

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// nftw has no user pointer: the walk's totals, one walk at a time per thread.
thread_local uint64_t walk_bytes = 0;
thread_local uint64_t walk_inodes = 0;

int CountEntry(const char*, const struct stat* st, int type, struct FTW*) {
  if (type == FTW_NS) return 0;  // vanished meanwhile
  walk_bytes += static_cast<uint64_t>(st->st_blocks) * 512;
  ++walk_inodes;
  return 0;
}

}  // namespace

// The filesystem holding `path`: capacity, free space and inodes (statvfs) and its device;
// `follow` stats through a symlink at `path`.
static absl::StatusOr<FsStats> FilesystemOf(const std::string& path, bool follow, struct stat* st) {
  if ((follow ? stat(path.c_str(), st) : lstat(path.c_str(), st)) != 0) {
    return ErrnoStatus(errno, "fs usage: stat " + path);
  }
  struct statvfs vfs;
  if (statvfs(path.c_str(), &vfs) != 0) return ErrnoStatus(errno, "fs usage: statvfs " + path);
  FsStats s;
  s.time_seconds = NowSeconds();
  s.capacity_bytes = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
  s.available_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  s.used_bytes = static_cast<uint64_t>(vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize;
  s.inodes = vfs.f_files;
  s.inodes_free = vfs.f_ffree;
  s.inodes_used = vfs.f_files - vfs.f_ffree;
  s.dev_major = major(st->st_dev);
  s.dev_minor = minor(st->st_dev);
  return s;
}

absl::StatusOr<FsStats> MeasurePath(const std::string& path) {
  struct stat st;
  ASSIGN_OR_RETURN(FsStats s, FilesystemOf(path, /*follow=*/false, &st));
  if (!S_ISDIR(st.st_mode)) {
    s.used_bytes = static_cast<uint64_t>(st.st_blocks) * 512;
    s.inodes_used = 1;
    return s;
  }
  walk_bytes = 0;
  walk_inodes = 0;
  if (nftw(path.c_str(), CountEntry, 32, FTW_PHYS | FTW_MOUNT) != 0) {
    return ErrnoStatus(errno, "fs usage: walk " + path);
  }
  s.used_bytes = walk_bytes;
  s.inodes_used = walk_inodes;
  return s;
}

absl::StatusOr<FsStats> MeasureFilesystem(const std::string& path) {
  struct stat st;
  return FilesystemOf(path, /*follow=*/true, &st);
}

FsUsageCache::FsUsageCache(Options options) : options_(options), thread_([this] { Loop(); }) {}

FsUsageCache::~FsUsageCache() { Stop(); }

void FsUsageCache::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void FsUsageCache::Want(const std::string& consumer, const std::set<std::string>& wanted) {
  bool news = false;
  {
    absl::MutexLock lock(&mu_);
    wanted_by_[consumer] = wanted;
    std::set<std::string> paths;
    for (const auto& [c, set] : wanted_by_) paths.insert(set.begin(), set.end());
    for (const std::string& p : paths) {
      if (wanted_.count(p) == 0 && measured_.count(p) == 0) {
        fresh_.insert(p);
        news = true;
      }
    }
    for (auto it = measured_.begin(); it != measured_.end();) {
      it = paths.count(it->first) != 0 ? std::next(it) : measured_.erase(it);
    }
    for (auto it = fresh_.begin(); it != fresh_.end();) {
      it = paths.count(*it) != 0 ? std::next(it) : fresh_.erase(it);
    }
    wanted_ = std::move(paths);
  }
  if (news) wake_.SignalAll();
}

void FsUsageCache::WantAlso(const std::string& consumer, const std::string& path) {
  {
    absl::MutexLock lock(&mu_);
    wanted_by_[consumer].insert(path);
    if (!wanted_.insert(path).second || measured_.count(path) != 0) return;
    fresh_.insert(path);
  }
  wake_.SignalAll();
}

void FsUsageCache::OnRefresh(std::function<void()> cb) {
  absl::MutexLock lock(&mu_);
  on_refresh_.push_back(std::move(cb));
}

void FsUsageCache::Measure(const std::string& p) {
  absl::StatusOr<FsStats> s = MeasurePath(p);
  walks_.fetch_add(1);
  absl::MutexLock lock(&mu_);
  fresh_.erase(p);
  if (wanted_.count(p) == 0) return;
  if (s.ok()) {
    measured_[p] = *s;
  } else {
    measured_.erase(p);
  }
}

std::optional<FsStats> FsUsageCache::Get(const std::string& path) const {
  absl::MutexLock lock(&mu_);
  auto it = measured_.find(path);
  if (it == measured_.end()) return std::nullopt;
  return it->second;
}

void FsUsageCache::RefreshNow() {
  std::set<std::string> paths;
  {
    absl::MutexLock lock(&mu_);
    paths = wanted_;
  }
  for (const std::string& p : paths) Measure(p);
}

void FsUsageCache::Loop() {
  absl::Time next_full = absl::Now();
  mu_.Lock();
  while (!stop_) {
    std::vector<std::string> batch;
    bool full = false;
    if (absl::Now() >= next_full) {
      batch.assign(wanted_.begin(), wanted_.end());
      next_full = absl::Now() + absl::FromChrono(options_.period);
      full = true;
    } else {
      batch.assign(fresh_.begin(), fresh_.end());
    }
    if (batch.empty() && !full) {
      if (fresh_.empty()) wake_.WaitWithDeadline(&mu_, next_full);
      continue;
    }
    std::vector<std::function<void()>> callbacks;
    if (full) callbacks = on_refresh_;
    mu_.Unlock();
    for (const std::string& p : batch) {
      {
        absl::MutexLock relock(&mu_);
        if (stop_) break;
      }
      Measure(p);
    }
    for (const auto& cb : callbacks) {
      {
        absl::MutexLock relock(&mu_);
        if (stop_) break;
      }
      cb();
    }
    mu_.Lock();
  }
  mu_.Unlock();
}

}  // namespace berth::metrics
