#include "cri/runtime/cgroups.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/status.h"

namespace berth::cri::runtime {

bool HasHugetlbController(const std::vector<CgroupMount>& mounts) {
  // On a v1 or hybrid host runc manages cgroups through the v1 hierarchies only, so a
  // controller that merely shows up in the hybrid `unified` mount does not count.
  bool v1 = false;
  for (const auto& m : mounts) {
    if (m.v2) continue;
    for (const auto& c : m.controllers) {
      if (c == "hugetlb") return true;
      if (!absl::StartsWith(c, "name=")) v1 = true;
    }
  }
  if (v1) return false;
  for (const auto& m : mounts) {
    if (!m.v2) continue;
    auto controllers = ReadFile(m.mount_point + "/cgroup.controllers");
    if (!controllers.ok()) continue;
    for (absl::string_view c :
         absl::StrSplit(*controllers, absl::ByAnyChar(" \n"), absl::SkipEmpty())) {
      if (c == "hugetlb") return true;
    }
  }
  return false;
}

namespace {

bool IsCpuset(const CgroupMount& m) {
  return std::find(m.controllers.begin(), m.controllers.end(), "cpuset") != m.controllers.end();
}

absl::Status CopyIfEmpty(const std::string& parent, const std::string& child,
                         const std::string& file) {
  auto cur = ReadFile(JoinPath(child, file));
  if (cur.ok() && !std::string(absl::StripAsciiWhitespace(*cur)).empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::string val, ReadFile(JoinPath(parent, file)));
  std::string v(absl::StripAsciiWhitespace(val));
  FILE* f = fopen(JoinPath(child, file).c_str(), "w");
  if (!f) return ErrnoStatus(errno, "open " + JoinPath(child, file));
  bool ok = fputs(v.c_str(), f) >= 0;
  if (fclose(f) != 0) ok = false;
  if (!ok) return ErrnoStatus(errno, "write " + JoinPath(child, file));
  return absl::OkStatus();
}

absl::Status RemoveTree(const std::string& dir) {
  auto entries = ListDir(dir);
  if (!entries.ok()) {
    if (absl::IsNotFound(entries.status())) return absl::OkStatus();
    return entries.status();
  }
  for (const auto& e : *entries) {
    std::string p = JoinPath(dir, e);
    struct stat st;
    if (lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) RETURN_IF_ERROR(RemoveTree(p));
  }
  if (rmdir(dir.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, "rmdir cgroup " + dir);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> CreateCgroup(const std::vector<CgroupMount>& mounts,
                                                      const std::string& path) {
  std::vector<std::string> created;
  std::vector<std::string> levels = absl::StrSplit(path, '/', absl::SkipEmpty());
  for (const auto& m : mounts) {
    std::string cur = m.mount_point;
    for (const auto& level : levels) {
      std::string next = JoinPath(cur, level);
      if (mkdir(next.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoStatus(errno, "create cgroup " + next);
      }
      if (IsCpuset(m)) {
        RETURN_IF_ERROR(CopyIfEmpty(cur, next, "cpuset.cpus"));
        RETURN_IF_ERROR(CopyIfEmpty(cur, next, "cpuset.mems"));
      }
      cur = next;
    }
    created.push_back(cur);
  }
  return created;
}

absl::Status RemoveCgroup(const std::vector<CgroupMount>& mounts, const std::string& path) {
  absl::Status first;
  std::string rel(absl::StripPrefix(path, "/"));
  if (rel.empty()) return absl::InvalidArgumentError("refusing to remove the root cgroup");
  for (const auto& m : mounts) {
    absl::Status s = RemoveTree(JoinPath(m.mount_point, rel));
    if (!s.ok() && first.ok()) first = s;
  }
  return first;
}

}  // namespace berth::cri::runtime
