// Where the host mounts its cgroup hierarchies: the one place berth reads cgroup mounts
// from /proc/self/mountinfo (cgroup v1 controllers and named hierarchies, and the cgroup2
// hierarchy: the whole tree on a v2 host, the controller-less `unified` mount on a hybrid
// one). Used by the runtime (pod cgroups, OOM detection, exec), the stats readers, the eBPF
// collectors and the kubelet's per-pod network counters.
//
// Example:
//   std::vector<CgroupMount> mounts = HostCgroupMounts();
//   std::string memory = V1CgroupMount(mounts, "memory");  // "/sys/fs/cgroup/memory", or ""
//   std::string unified = UnifiedCgroupMount(mounts);      // "/sys/fs/cgroup/unified", or ""
//
// Thread safety: the functions hold no state.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace berth {

// One mounted cgroup hierarchy.
struct CgroupMount {
  std::string mount_point;  // e.g. /sys/fs/cgroup/cpu,cpuacct or /sys/fs/cgroup/unified
  std::vector<std::string> controllers;  // v1 controllers (and "name=..."); empty for cgroup2
  bool v2 = false;                       // the cgroup2 hierarchy
  // The mount's root within its hierarchy (mountinfo field 4): "/" when the hierarchy's root
  // is mounted, a cgroup's path when only that cgroup is (a bind mount, or a container's
  // view without a cgroup namespace).
  std::string root = "/";
};

// Parses /proc/self/mountinfo content into cgroup hierarchies, in mount order: v1 mounts with
// a controller or a named hierarchy (name=systemd; runc's cgroupfs driver joins those too)
// and the cgroup2 mount. Each hierarchy appears once: the first mount of its root ("/"), or
// else its first mount. Mount options that are not controllers (rw, nosuid, xattr,
// clone_children, release_agent=...) are dropped. Lines that do not parse are skipped.
std::vector<CgroupMount> ParseCgroupMounts(const std::string& mountinfo);

// The host's hierarchies: ParseCgroupMounts of /proc/self/mountinfo (empty when unreadable).
std::vector<CgroupMount> HostCgroupMounts();

// The cgroup2 hierarchy's mount point (/sys/fs/cgroup on a v2 host, /sys/fs/cgroup/unified
// on a hybrid one), or "" when there is none (a pure v1 host).
std::string UnifiedCgroupMount(const std::vector<CgroupMount>& mounts);

// The mount point of the v1 hierarchy that has `controller` ("memory", "blkio", or a named
// hierarchy as "name=systemd"), or "" when none has it.
std::string V1CgroupMount(const std::vector<CgroupMount>& mounts, absl::string_view controller);

}  // namespace berth
