// File-system helpers. All functions are thread-safe (they hold no state) and return
// errno-based Statuses that name the path.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace berth {

// Reads the whole file at `path`.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Writes `data` to `path` atomically: a temp file in the same directory is written,
// fsync'ed and renamed over `path`; the directory is fsync'ed. `mode` is the file mode.
absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, int mode = 0644);

// Creates `path` and missing parents (like mkdir -p). OK if it exists as a directory.
absl::Status MkdirAll(const std::string& path, int mode = 0755);

// Removes `path` recursively (like rm -rf); does not cross mount points (returns
// FailedPrecondition naming the mount). OK when `path` does not exist.
absl::Status RemoveAll(const std::string& path);

// The mount points at or below directory `dir` in this process's mount namespace
// (/proc/self/mountinfo, octal escapes decoded), deepest first. Errors: mountinfo unreadable.
absl::StatusOr<std::vector<std::string>> MountPointsUnder(const std::string& dir);

// Unmounts every mount point at or below `dir`, deepest first (a busy one lazily, MNT_DETACH),
// so that RemoveAll(dir) can proceed. Errors: the first umount2 that failed, named.
absl::Status UnmountAllUnder(const std::string& dir);

// True when directory `path` is a mount point (its device differs from its parent's).
bool IsMountPoint(const std::string& path);

// True when `path` exists (lstat succeeds).
bool PathExists(const std::string& path);

// Names of the entries of directory `path` (no "." or ".."), sorted.
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path);

// Joins path components with exactly one '/' between them.
std::string JoinPath(absl::string_view a, absl::string_view b);

}  // namespace berth
