#include "base/cgroup_mounts.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "base/file.h"

namespace berth {

std::vector<CgroupMount> ParseCgroupMounts(const std::string& mountinfo) {
  std::vector<CgroupMount> out;
  auto same_hierarchy = [](const CgroupMount& a, const CgroupMount& b) {
    return a.v2 == b.v2 && a.controllers == b.controllers;
  };
  for (absl::string_view line : absl::StrSplit(mountinfo, '\n', absl::SkipEmpty())) {
    // <id> <parent> <maj:min> <root> <mount point> <opts> [tags...] - <fstype> <src> <super opts>
    std::vector<absl::string_view> halves = absl::StrSplit(line, absl::MaxSplits(" - ", 1));
    if (halves.size() != 2) continue;
    std::vector<absl::string_view> pre = absl::StrSplit(halves[0], ' ');
    std::vector<absl::string_view> post = absl::StrSplit(halves[1], ' ');
    if (pre.size() < 5 || post.size() < 3) continue;
    CgroupMount m;
    m.root = std::string(pre[3]);
    m.mount_point = std::string(pre[4]);
    if (post[0] == "cgroup2") {
      m.v2 = true;
    } else if (post[0] == "cgroup") {
      static const std::set<absl::string_view> kNonControllers = {
          "rw",       "ro",   "nosuid", "nodev", "noexec", "relatime", "clone_children",
          "noprefix", "xattr"};
      for (absl::string_view o : absl::StrSplit(post[2], ',')) {
        if (kNonControllers.count(o) || absl::StartsWith(o, "release_agent")) continue;
        m.controllers.emplace_back(o);
      }
      if (m.controllers.empty()) continue;
    } else {
      continue;
    }
    auto seen = std::find_if(out.begin(), out.end(),
                             [&](const CgroupMount& o) { return same_hierarchy(o, m); });
    if (seen == out.end()) {
      out.push_back(std::move(m));
    } else if (seen->root != "/" && m.root == "/") {
      *seen = std::move(m);  // the hierarchy's root beats a mount of one of its cgroups
    }
  }
  return out;
}

std::vector<CgroupMount> HostCgroupMounts() {
  auto s = ReadFile("/proc/self/mountinfo");
  if (!s.ok()) return {};
  return ParseCgroupMounts(*s);
}

std::string UnifiedCgroupMount(const std::vector<CgroupMount>& mounts) {
  for (const auto& m : mounts) {
    if (m.v2) return m.mount_point;
  }
  return "";
}

std::string V1CgroupMount(const std::vector<CgroupMount>& mounts, absl::string_view controller) {
  for (const auto& m : mounts) {
    if (m.v2) continue;
    if (std::find(m.controllers.begin(), m.controllers.end(), controller) != m.controllers.end()) {
      return m.mount_point;
    }
  }
  return "";
}

}  // namespace berth
