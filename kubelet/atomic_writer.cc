#include "kubelet/atomic_writer.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/file.h"
#include "base/status.h"

namespace berth::kubelet {
namespace {

constexpr char kDataDir[] = "..data";
constexpr char kNewDataDir[] = "..data_tmp";

// Lexically cleaned path ("a//b/./c" -> "a/b/c"), or an error for what upstream's
// validatePath refuses.
absl::StatusOr<std::string> CleanPath(const std::string& p) {
  if (p.empty()) return absl::InvalidArgumentError("empty file path");
  if (p.size() > 4096)
    return absl::InvalidArgumentError(
        absl::StrCat("file path \"", p.substr(0, 64), "...\" is too long"));
  if (p[0] == '/')
    return absl::InvalidArgumentError(absl::StrCat("file path \"", p, "\" is absolute"));
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(p, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..")
      return absl::InvalidArgumentError(absl::StrCat("file path \"", p, "\" contains \"..\""));
    parts.emplace_back(part);
  }
  if (parts.empty())
    return absl::InvalidArgumentError(
        absl::StrCat("file path \"", p, "\" names the volume itself"));
  if (absl::StartsWith(parts[0], "..")) {
    return absl::InvalidArgumentError(absl::StrCat("file path \"", p, "\" starts with \"..\""));
  }
  return absl::StrJoin(parts, "/");
}

absl::Status WriteFile(const std::string& path, const FileProjection& f) {
  std::string parent = path.substr(0, path.rfind('/'));
  RETURN_IF_ERROR(MkdirAll(parent, 0755));
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoStatus(errno, absl::StrCat("create ", path));
  size_t off = 0;
  while (off < f.data.size()) {
    ssize_t n = ::write(fd, f.data.data() + off, f.data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return ErrnoStatus(e, absl::StrCat("write ", path));
    }
    off += static_cast<size_t>(n);
  }
  // Exact mode, whatever the umask.
  if (::fchmod(fd, static_cast<mode_t>(f.mode)) != 0) {
    int e = errno;
    ::close(fd);
    return ErrnoStatus(e, absl::StrCat("chmod ", path));
  }
  if (::close(fd) != 0) return ErrnoStatus(errno, absl::StrCat("close ", path));
  return absl::OkStatus();
}

// Whether the timestamped directory `ts` holds `payload`'s contents (modes aside, as
// upstream's shouldWritePayload).
bool SameContent(const std::string& ts, const Payload& payload) {
  for (const auto& [rel, f] : payload) {
    auto on_disk = ReadFile(JoinPath(ts, rel));
    if (!on_disk.ok() || *on_disk != f.data) return false;
  }
  return true;
}

// Every file and directory below `ts`, relative to it.
std::set<std::string> PathsIn(const std::string& ts) {
  std::set<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(ts, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    out.insert(std::filesystem::relative(it->path(), ts, ec).string());
  }
  return out;
}

}  // namespace

absl::StatusOr<bool> WriteAtomically(
    const std::string& dir, const Payload& payload,
    const std::function<absl::Status(const std::string&)>& set_perms) {
  Payload clean;
  for (const auto& [rel, f] : payload) {
    ASSIGN_OR_RETURN(std::string c, CleanPath(rel));
    clean[c] = f;
  }
  RETURN_IF_ERROR(MkdirAll(dir, 0755));
  const std::string data_link = JoinPath(dir, kDataDir);
  std::string old_ts;
  {
    char buf[4096];
    ssize_t n = ::readlink(data_link.c_str(), buf, sizeof(buf) - 1);
    if (n > 0)
      old_ts.assign(buf, static_cast<size_t>(n));
    else if (errno != ENOENT && errno != EINVAL)
      return ErrnoStatus(errno, absl::StrCat("readlink ", data_link));
  }
  // Every prefix of every new path: what stays user-visible.
  std::set<std::string> new_paths;
  for (const auto& [rel, f] : clean) {
    std::string p = rel;
    while (true) {
      new_paths.insert(p);
      size_t slash = p.rfind('/');
      if (slash == std::string::npos) break;
      p.resize(slash);
    }
  }
  std::set<std::string> to_remove;
  if (!old_ts.empty()) {
    for (const auto& p : PathsIn(JoinPath(dir, old_ts))) {
      if (!new_paths.count(p)) to_remove.insert(p);
    }
  }
  bool write = old_ts.empty() || !to_remove.empty() || !SameContent(JoinPath(dir, old_ts), clean);
  if (write) {
    std::string tmpl = JoinPath(
        dir,
        absl::StrCat("..", absl::FormatTime("%Y_%m_%d_%H_%M_%S", absl::Now(), absl::UTCTimeZone()),
                     ".XXXXXXXXXX"));
    if (::mkdtemp(tmpl.data()) == nullptr)
      return ErrnoStatus(errno, absl::StrCat("mkdtemp in ", dir));
    const std::string ts_dir = tmpl;
    const std::string ts_name = ts_dir.substr(ts_dir.rfind('/') + 1);
    auto fail = [&](absl::Status s) {
      (void)RemoveAll(ts_dir);
      return s;
    };
    if (::chmod(ts_dir.c_str(), 0755) != 0)
      return fail(ErrnoStatus(errno, absl::StrCat("chmod ", ts_dir)));
    for (const auto& [rel, f] : clean) {
      if (absl::Status s = WriteFile(JoinPath(ts_dir, rel), f); !s.ok()) return fail(s);
    }
    if (set_perms) {
      if (absl::Status s = set_perms(ts_dir); !s.ok()) return fail(s);
    }
    const std::string new_link = JoinPath(dir, kNewDataDir);
    ::unlink(new_link.c_str());
    if (::symlink(ts_name.c_str(), new_link.c_str()) != 0) {
      return fail(ErrnoStatus(errno, absl::StrCat("symlink ", new_link)));
    }
    if (::rename(new_link.c_str(), data_link.c_str()) != 0) {
      int e = errno;
      ::unlink(new_link.c_str());
      return fail(ErrnoStatus(e, absl::StrCat("rename ", new_link, " to ", data_link)));
    }
  }
  // User-visible names: one symlink per first path component.
  for (const auto& [rel, f] : clean) {
    std::string first = rel.substr(0, rel.find('/'));
    std::string visible = JoinPath(dir, first);
    std::string target = JoinPath(kDataDir, first);
    struct stat st;
    if (::lstat(visible.c_str(), &st) == 0) {
      if (S_ISLNK(st.st_mode)) continue;
      RETURN_IF_ERROR(RemoveAll(visible));  // a file of the pre-atomic layout
    }
    if (::symlink(target.c_str(), visible.c_str()) != 0 && errno != EEXIST) {
      return ErrnoStatus(errno, absl::StrCat("symlink ", visible));
    }
  }
  for (const auto& p : to_remove) {
    if (p.find('/') != std::string::npos) continue;  // inside a removed or kept directory link
    std::string visible = JoinPath(dir, p);
    if (::unlink(visible.c_str()) != 0 && errno != ENOENT)
      return ErrnoStatus(errno, absl::StrCat("remove ", visible));
  }
  if (write && !old_ts.empty()) RETURN_IF_ERROR(RemoveAll(JoinPath(dir, old_ts)));
  return write;
}

}  // namespace berth::kubelet
