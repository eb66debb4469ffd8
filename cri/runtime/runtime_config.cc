// UpdatePodSandboxResources.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/file.h"
#include "base/log.h"
#include "base/status.h"
#include "cri/runtime/cgroups.h"
#include "cri/runtime/runtime_records.h"

namespace berth::cri::runtime {
namespace {

// Writes `value` to an existing cgroup control file (no create: a missing file means the
// controller is not available there).
absl::Status WriteControl(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open " + path);
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  if (n < 0) return ErrnoStatus(err, absl::StrCat("write \"", value, "\" to ", path));
  return absl::OkStatus();
}

bool Has(const CgroupMount& m, const char* controller) {
  return std::find(m.controllers.begin(), m.controllers.end(), controller) != m.controllers.end();
}

// cgroup v1 cpu.shares -> v2 cpu.weight (the conversion runc and the kubelet use).
uint64_t SharesToWeight(uint64_t shares) {
  if (shares == 0) return 0;
  shares = std::clamp<uint64_t>(shares, 2, 262144);
  return 1 + ((shares - 2) * 9999) / 262142;
}

// Applies the cgroup limits of `r` to cgroup `path` in every hierarchy that has the
// controller. Zero/empty fields are left unchanged.
absl::Status ApplyResources(const std::string& path, const v1::LinuxContainerResources& r) {
  for (const auto& m : HostCgroupMounts()) {
    std::string dir = JoinPath(m.mount_point, std::string(absl::StripPrefix(path, "/")));
    if (!PathExists(dir)) continue;
    std::vector<std::pair<std::string, std::string>> writes;
    if (m.v2) {
      if (r.cpu_shares() > 0)
        writes.emplace_back("cpu.weight", absl::StrCat(SharesToWeight(r.cpu_shares())));
      if (r.cpu_quota() != 0 || r.cpu_period() > 0) {
        int64_t period = r.cpu_period() > 0 ? r.cpu_period() : 100000;
        writes.emplace_back("cpu.max", r.cpu_quota() > 0 ? absl::StrCat(r.cpu_quota(), " ", period)
                                                         : absl::StrCat("max ", period));
      }
      if (r.memory_limit_in_bytes() > 0)
        writes.emplace_back("memory.max", absl::StrCat(r.memory_limit_in_bytes()));
      if (!r.cpuset_cpus().empty()) writes.emplace_back("cpuset.cpus", r.cpuset_cpus());
      if (!r.cpuset_mems().empty()) writes.emplace_back("cpuset.mems", r.cpuset_mems());
      // In a hybrid layout the unified hierarchy has no controllers: skip absent files.
      std::erase_if(writes, [&](const auto& w) { return !PathExists(JoinPath(dir, w.first)); });
    } else {
      if (Has(m, "cpu")) {
        if (r.cpu_shares() > 0) writes.emplace_back("cpu.shares", absl::StrCat(r.cpu_shares()));
        if (r.cpu_period() > 0)
          writes.emplace_back("cpu.cfs_period_us", absl::StrCat(r.cpu_period()));
        if (r.cpu_quota() != 0)
          writes.emplace_back("cpu.cfs_quota_us", absl::StrCat(r.cpu_quota()));
      }
      if (Has(m, "memory") && r.memory_limit_in_bytes() > 0) {
        writes.emplace_back("memory.limit_in_bytes", absl::StrCat(r.memory_limit_in_bytes()));
      }
      if (Has(m, "cpuset")) {
        if (!r.cpuset_cpus().empty()) writes.emplace_back("cpuset.cpus", r.cpuset_cpus());
        if (!r.cpuset_mems().empty()) writes.emplace_back("cpuset.mems", r.cpuset_mems());
      }
    }
    for (const auto& [file, value] : writes)
      RETURN_IF_ERROR(WriteControl(JoinPath(dir, file), value));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::UpdatePodSandboxResourcesResponse> Runtime::UpdatePodSandboxResources(
    const v1::UpdatePodSandboxResourcesRequest& req) {
  auto sb = FindSandbox(req.pod_sandbox_id());
  if (!sb)
    return absl::NotFoundError("UpdatePodSandboxResources: pod sandbox " + req.pod_sandbox_id() +
                               " not found");
  absl::MutexLock ol(&sb->op_mu);
  std::string cgroup;
  {
    absl::MutexLock l(&mu_);
    if (!sb->created)
      return absl::NotFoundError("UpdatePodSandboxResources: pod sandbox " + sb->id + " not found");
    cgroup = sb->cgroup_path;
  }
  if (req.has_resources() && !cgroup.empty()) {
    RETURN_IF_ERROR(
        Annotate(ApplyResources(cgroup, req.resources()), "UpdatePodSandboxResources " + sb->id));
  }
  return v1::UpdatePodSandboxResourcesResponse();
}

}  // namespace berth::cri::runtime
