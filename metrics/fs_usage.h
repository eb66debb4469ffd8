// Filesystem usage of container writable layers, log files and volumes, measured in the
// background: walking a tree costs in proportion to its size, so scrapes read the last
// measurement instead (as cAdvisor's fsHandler and the kubelet's volume stats calculator do,
// once a minute).
//
// Example:
//   FsUsageCache fs({.period = std::chrono::seconds(60)});
//   fs.Want("summary", {"/var/lib/berth/containers/<id>/upper", "/var/log/pods/.../0.log"});
//   std::optional<FsStats> s = fs.Get("/var/lib/berth/containers/<id>/upper");
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace berth::metrics {

// Usage of one path and the filesystem it is on (the kubelet's FsStats).
struct FsStats {
  double time_seconds = 0;       // when it was measured (seconds since the epoch)
  uint64_t used_bytes = 0;       // allocated blocks (du): files under a directory, or the file
  uint64_t inodes_used = 0;      // inodes under a directory (itself included), 1 for a file
  uint64_t capacity_bytes = 0;   // the filesystem's size (statvfs)
  uint64_t available_bytes = 0;  // free to unprivileged users
  uint64_t inodes = 0;           // the filesystem's inodes
  uint64_t inodes_free = 0;
  uint32_t dev_major = 0;  // the filesystem's device (st_dev)
  uint32_t dev_minor = 0;
};

// Measures `path` now: a directory is walked without following symlinks or crossing mounts;
// a file counts its own blocks. Errors: `path` cannot be stat'ed or statvfs'ed.
absl::StatusOr<FsStats> MeasurePath(const std::string& path);

// The filesystem holding `path`, without walking (statvfs): capacity, available, inodes,
// inodes_free as MeasurePath; used_bytes = capacity - free blocks (what df reports as used,
// cAdvisor's fs "usage") and inodes_used = inodes - inodes_free. Errors: statvfs fails.
absl::StatusOr<FsStats> MeasureFilesystem(const std::string& path);

// Keeps FsStats of the paths last given to Want(), re-measured every `period` by one
// background thread; a path new to Want() is measured at once (in the background). Thread-safe.
class FsUsageCache {
 public:
  struct Options {
    std::chrono::milliseconds period = std::chrono::seconds(60);
  };
  explicit FsUsageCache(Options options);
  // Stop()s.
  ~FsUsageCache();
  // Stops the background thread (waits for a measurement or OnRefresh callback in progress);
  // no callback runs afterwards. Idempotent; call before what the callbacks use goes away.
  void Stop();
  FsUsageCache(const FsUsageCache&) = delete;
  FsUsageCache& operator=(const FsUsageCache&) = delete;

  // The paths `consumer` (e.g. "summary", "cadvisor") wants measured, replacing its earlier
  // set; paths no consumer wants are forgotten.
  void Want(const std::string& consumer, const std::set<std::string>& paths);
  // Adds `path` to what `consumer` wants (measured at once in the background if new).
  void WantAlso(const std::string& consumer, const std::string& path);
  // The last measurement of `path`; nullopt before the first one or when it failed.
  std::optional<FsStats> Get(const std::string& path) const;
  // Measures every wanted path now, in the caller's thread (tests).
  void RefreshNow();
  // Registers `cb`, run on the cache's thread (no lock held; it may call any method) after
  // every periodic pass over all wanted paths: the eviction manager checks limits then.
  // Callbacks cannot be removed; what they capture must outlive the cache.
  void OnRefresh(std::function<void()> cb);
  // How many paths this cache has measured so far (each a walk of a tree): lets tests show
  // that readers never walk.
  uint64_t walks() const { return walks_.load(); }

 private:
  void Loop();
  void Measure(const std::string& path);

  const Options options_;
  mutable absl::Mutex mu_;
  absl::CondVar wake_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::set<std::string>> wanted_by_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> wanted_ ABSL_GUARDED_BY(mu_);  // the union of wanted_by_
  std::set<std::string> fresh_ ABSL_GUARDED_BY(mu_);   // wanted, never measured
  std::map<std::string, FsStats> measured_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> on_refresh_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> walks_{0};
  std::thread thread_;
};

}  // namespace berth::metrics
