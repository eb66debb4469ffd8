#include "kubelet/subpath.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/file.h"
#include "base/status.h"

namespace berth::kubelet {
namespace {

// An fd closed when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_;
};

// Relative, not empty, no ".." component (upstream's validation of subPath).
absl::Status CheckRelative(const std::string& sub_path) {
  if (sub_path.empty()) return absl::InvalidArgumentError("subPath is empty");
  if (sub_path[0] == '/') {
    return absl::InvalidArgumentError(
        absl::StrCat("subPath \"", sub_path, "\" must not be an absolute path"));
  }
  for (absl::string_view c : absl::StrSplit(sub_path, '/')) {
    if (c == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("subPath \"", sub_path, "\" must not contain '..'"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RealPath(const std::string& p) {
  char* r = ::realpath(p.c_str(), nullptr);
  if (r == nullptr) return ErrnoStatus(errno, absl::StrCat("resolve ", p));
  std::string out = r;
  ::free(r);
  return out;
}

// `path` (resolved) relative to `root` (resolved), or InvalidArgument when outside.
absl::StatusOr<std::string> Inside(const std::string& root, const std::string& path,
                                   const std::string& sub_path) {
  if (path == root) return std::string();
  const std::string prefix = root == "/" ? root : root + "/";
  if (path.compare(0, prefix.size(), prefix) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("subPath \"", sub_path, "\" resolves to ", path,
                                                   ", outside the volume ", root));
  }
  return path.substr(prefix.size());
}

// Opens `rel` below the directory fd `dir` one component at a time with O_PATH | O_NOFOLLOW:
// a component that is a symlink fails the walk (it may have been swapped in after the path
// was checked). An empty `rel` reopens `dir`.
absl::StatusOr<Fd> OpenNoSymlinks(int dir, const std::string& rel, const std::string& what) {
  Fd cur(::fcntl(dir, F_DUPFD_CLOEXEC, 0));
  if (!cur.ok()) return ErrnoStatus(errno, "dup volume fd");
  for (absl::string_view c : absl::StrSplit(rel, '/', absl::SkipEmpty())) {
    if (c == ".") continue;
    const std::string comp(c);
    Fd next(::openat(cur.get(), comp.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
    if (!next.ok()) return ErrnoStatus(errno, absl::StrCat("open ", what, " at ", comp));
    struct stat st;
    if (::fstat(next.get(), &st) != 0) return ErrnoStatus(errno, absl::StrCat("stat ", comp));
    if (S_ISLNK(st.st_mode)) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": \"", comp, "\" is a symlink (changed while it was prepared?)"));
    }
    cur = std::move(next);
  }
  return cur;
}

absl::StatusOr<Fd> OpenVolumeRoot(const std::string& root) {
  Fd fd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!fd.ok()) return ErrnoStatus(errno, absl::StrCat("open volume ", root));
  return fd;
}

}  // namespace

absl::Status SafeMakeDir(const std::string& volume_path, const std::string& sub_path, int mode) {
  RETURN_IF_ERROR(CheckRelative(sub_path));
  ASSIGN_OR_RETURN(std::string root, RealPath(volume_path));
  // The deepest existing ancestor, resolved: it must be inside the volume.
  std::string existing = JoinPath(volume_path, sub_path);
  std::string missing;
  while (!PathExists(existing)) {
    size_t slash = existing.rfind('/');
    missing = missing.empty() ? existing.substr(slash + 1)
                              : absl::StrCat(existing.substr(slash + 1), "/", missing);
    existing = existing.substr(0, slash);
  }
  ASSIGN_OR_RETURN(std::string resolved, RealPath(existing));
  ASSIGN_OR_RETURN(std::string rel, Inside(root, resolved, sub_path));
  ASSIGN_OR_RETURN(Fd vol, OpenVolumeRoot(root));
  ASSIGN_OR_RETURN(Fd cur, OpenNoSymlinks(vol.get(), rel, absl::StrCat("subPath ", sub_path)));
  for (absl::string_view c : absl::StrSplit(missing, '/', absl::SkipEmpty())) {
    const std::string comp(c);
    if (::mkdirat(cur.get(), comp.c_str(), mode) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, absl::StrCat("create ", comp, " of subPath ", sub_path));
    }
    // Open it back without following: a symlink put there meanwhile fails the call.
    Fd next(::openat(cur.get(), comp.c_str(), O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC));
    if (!next.ok()) {
      return ErrnoStatus(errno, absl::StrCat("open ", comp, " of subPath ", sub_path,
                                             " (not a directory or a symlink)"));
    }
    // mkdir's mode is filtered by the umask; the kubelet sets the volume's mode exactly.
    const std::string proc = absl::StrCat("/proc/self/fd/", next.get());
    ::chmod(proc.c_str(), mode);
    cur = std::move(next);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> PrepareSafeSubPath(const SubPathMount& m) {
  RETURN_IF_ERROR(CheckRelative(m.sub_path));
  ASSIGN_OR_RETURN(std::string root, RealPath(m.volume_path));
  const std::string path = JoinPath(m.volume_path, m.sub_path);
  absl::StatusOr<std::string> resolved = RealPath(path);
  if (!resolved.ok()) {
    return absl::Status(
        resolved.status().code(),
        absl::StrCat("subPath \"", m.sub_path, "\": ", resolved.status().message()));
  }
  ASSIGN_OR_RETURN(std::string rel, Inside(root, *resolved, m.sub_path));
  ASSIGN_OR_RETURN(Fd vol, OpenVolumeRoot(root));
  ASSIGN_OR_RETURN(Fd src, OpenNoSymlinks(vol.get(), rel, absl::StrCat("subPath ", m.sub_path)));
  struct stat src_st;
  if (::fstat(src.get(), &src_st) != 0) return ErrnoStatus(errno, "stat subPath");

  const std::string dir =
      JoinPath(JoinPath(JoinPath(m.pod_dir, "volume-subpaths"), m.volume_name), m.container_name);
  const std::string target = JoinPath(dir, std::to_string(m.mount_index));
  RETURN_IF_ERROR(MkdirAll(dir, 0750));
  // A bind mount of the same filesystem keeps st_dev: only mountinfo tells it is one.
  ASSIGN_OR_RETURN(std::vector<std::string> mounted, MountPointsUnder(target));
  if (!mounted.empty()) {
    struct stat t;
    if (::stat(target.c_str(), &t) == 0 && t.st_dev == src_st.st_dev && t.st_ino == src_st.st_ino) {
      return target;  // a restarted container: the same object is still bound
    }
    RETURN_IF_ERROR(Annotate(UnmountAllUnder(target), "unmount stale subPath mount"));
  }
  // The mount point must be of the source's kind: a directory for a directory, a file else.
  if (S_ISDIR(src_st.st_mode)) {
    ::unlink(target.c_str());
    if (::mkdir(target.c_str(), 0750) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, absl::StrCat("create ", target));
    }
  } else {
    ::rmdir(target.c_str());
    Fd f(::open(target.c_str(), O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0640));
    if (!f.ok()) return ErrnoStatus(errno, absl::StrCat("create ", target));
  }
  // Bind the opened object itself: /proc/self/fd/<n> of an O_PATH fd names exactly it.
  const std::string proc = absl::StrCat("/proc/self/fd/", src.get());
  if (::mount(proc.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return ErrnoStatus(errno, absl::StrCat("bind subPath ", m.sub_path, " to ", target));
  }
  struct stat t;
  if (::stat(target.c_str(), &t) != 0 || t.st_dev != src_st.st_dev || t.st_ino != src_st.st_ino) {
    ::umount2(target.c_str(), MNT_DETACH);
    return absl::InternalError(absl::StrCat("subPath mount ", target, " does not show ", path));
  }
  return target;
}

absl::Status CleanSubPaths(const std::string& pod_dir) {
  const std::string dir = JoinPath(pod_dir, "volume-subpaths");
  if (!PathExists(dir)) return absl::OkStatus();
  RETURN_IF_ERROR(Annotate(UnmountAllUnder(dir), "unmount subPath mounts"));
  return RemoveAll(dir);
}

}  // namespace berth::kubelet
