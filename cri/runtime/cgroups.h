// cgroupfs helpers for pod cgroups (cgroup v1 controllers and the cgroup2 / hybrid
// `unified` mount), used by the runtime for sandbox cgroups.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/cgroup_mounts.h"

namespace berth::cri::runtime {

// The hierarchies (CgroupMount, HostCgroupMounts) come from base/cgroup_mounts.h.

// True when runc can apply hugepage limits with `mounts`: a v1 hierarchy has the hugetlb
// controller, or (on a cgroup2-only host) the cgroup2 mount's cgroup.controllers (read from
// disk) lists it. On a v1/hybrid host runc ignores the `unified` mount, so hugetlb there does
// not count. runc refuses a spec with linux.resources.hugepageLimits otherwise.
bool HasHugetlbController(const std::vector<CgroupMount>& mounts);

// Creates cgroup `path` (absolute within the hierarchy, e.g. /berth-e2e/kubepods/pod1) in
// every hierarchy; in cpuset hierarchies each new level gets cpuset.cpus/mems copied from
// its parent. Returns the created leaf directories.
absl::StatusOr<std::vector<std::string>> CreateCgroup(const std::vector<CgroupMount>& mounts,
                                                      const std::string& path);
// Removes cgroup `path` and its sub-cgroups in every hierarchy (rmdir, leaves first). OK when
// absent. Errors name the directory that could not be removed (e.g. EBUSY: tasks left).
absl::Status RemoveCgroup(const std::vector<CgroupMount>& mounts, const std::string& path);

}  // namespace berth::cri::runtime
