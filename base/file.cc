#include "base/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status.h"
#include "base/volatile_file.h"

namespace berth {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", path));
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      return ErrnoStatus(e, absl::StrCat("read ", path));
    }
    if (n == 0) break;
    out.append(buf, n);
  }
  close(fd);
  return out;
}

namespace {
// WriteFileAtomic and WriteVolatileFile: temp file, [fsync], rename, [fsync of the dir].
absl::Status ReplaceFile(const std::string& path, absl::string_view data, int mode, bool sync) {
  std::string dir = ".";
  if (auto pos = path.rfind('/'); pos != std::string::npos)
    dir = pos == 0 ? "/" : path.substr(0, pos);
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("create ", tmp));
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      unlink(tmp.c_str());
      return ErrnoStatus(e, absl::StrCat("write ", tmp));
    }
    off += n;
  }
  if ((sync && fsync(fd) != 0) || close(fd) != 0) {
    int e = errno;
    unlink(tmp.c_str());
    return ErrnoStatus(e, absl::StrCat(sync ? "fsync " : "close ", tmp));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    unlink(tmp.c_str());
    return ErrnoStatus(e, absl::StrCat("rename ", tmp, " to ", path));
  }
  if (!sync) return absl::OkStatus();
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status WriteFileAtomic(const std::string& path, absl::string_view data, int mode) {
  return ReplaceFile(path, data, mode, /*sync=*/true);
}

absl::Status WriteVolatileFile(const std::string& path, absl::string_view data, int mode) {
  return ReplaceFile(path, data, mode, /*sync=*/false);
}

absl::Status MkdirAll(const std::string& path, int mode) {
  if (path.empty()) return absl::InvalidArgumentError("mkdir: empty path");
  std::string cur;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    cur = path.substr(0, j);
    if (!cur.empty() && mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, absl::StrCat("mkdir ", cur));
    }
    i = j + 1;
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", path));
  if (!S_ISDIR(st.st_mode))
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a directory"));
  return absl::OkStatus();
}

namespace {
absl::Status RemoveAllAt(int parent, const std::string& name, const std::string& full, dev_t dev) {
  struct stat st;
  if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, absl::StrCat("stat ", full));
  }
  if (!S_ISDIR(st.st_mode)) {
    if (unlinkat(parent, name.c_str(), 0) != 0 && errno != ENOENT)
      return ErrnoStatus(errno, absl::StrCat("unlink ", full));
    return absl::OkStatus();
  }
  if (st.st_dev != dev) {
    return absl::FailedPreconditionError(absl::StrCat("remove ", full, ": is a mount point"));
  }
  int fd = openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("open ", full));
  DIR* d = fdopendir(fd);
  if (!d) {
    close(fd);
    return ErrnoStatus(errno, absl::StrCat("opendir ", full));
  }
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
  }
  absl::Status st_all;
  for (const auto& n : names) {
    absl::Status s = RemoveAllAt(dirfd(d), n, absl::StrCat(full, "/", n), dev);
    if (!s.ok() && st_all.ok()) st_all = s;
  }
  closedir(d);
  if (!st_all.ok()) return st_all;
  if (unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
    return ErrnoStatus(errno, absl::StrCat("rmdir ", full));
  return absl::OkStatus();
}
}  // namespace

absl::Status RemoveAll(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return ErrnoStatus(errno, absl::StrCat("stat ", path));
  }
  return RemoveAllAt(AT_FDCWD, path, path, st.st_dev);
}

namespace {

// Decodes mountinfo's octal escapes (\040 for a space, \011, \012, \134).
std::string UnescapeMountPath(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3') {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> MountPointsUnder(const std::string& dir) {
  ASSIGN_OR_RETURN(std::string mountinfo, ReadFile("/proc/self/mountinfo"));
  std::string prefix = dir;
  while (prefix.size() > 1 && prefix.back() == '/') prefix.pop_back();
  std::vector<std::string> out;
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() < 5) continue;
    std::string mp = UnescapeMountPath(f[4]);
    if (mp == prefix || absl::StartsWith(mp, prefix + "/")) out.push_back(std::move(mp));
  }
  // Deepest first; a path mounted twice appears twice (each umount removes one).
  std::stable_sort(out.begin(), out.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return out;
}

absl::Status UnmountAllUnder(const std::string& dir) {
  ASSIGN_OR_RETURN(std::vector<std::string> mounts, MountPointsUnder(dir));
  absl::Status result;
  for (const std::string& m : mounts) {
    if (umount2(m.c_str(), UMOUNT_NOFOLLOW) == 0 || errno == EINVAL || errno == ENOENT) continue;
    if (errno == EBUSY && umount2(m.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) continue;
    if (result.ok()) result = ErrnoStatus(errno, absl::StrCat("unmount ", m));
  }
  return result;
}

bool IsMountPoint(const std::string& path) {
  struct stat st, parent;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  if (stat(JoinPath(path, "..").c_str(), &parent) != 0) return false;
  return st.st_dev != parent.st_dev || st.st_ino == parent.st_ino;
}

bool PathExists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* d = opendir(path.c_str());
  if (!d) return ErrnoStatus(errno, absl::StrCat("opendir ", path));
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    names.emplace_back(e->d_name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

std::string JoinPath(absl::string_view a, absl::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  bool as = a.back() == '/', bs = b.front() == '/';
  if (as && bs) return absl::StrCat(a, b.substr(1));
  if (as || bs) return absl::StrCat(a, b);
  return absl::StrCat(a, "/", b);
}

}  // namespace berth
