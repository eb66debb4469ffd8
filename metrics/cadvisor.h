// cAdvisor-compatible container metrics (the kubelet's /metrics/cadvisor): container_* and
// machine_* families with cAdvisor's names, help texts, types and labels
// (container, id, image, name, namespace, pod), computed from cgroupfs through CgroupReader
// and from the pod's /proc/<pid>/net/dev.
//
// Reference: github.com/google/cadvisor metrics/prometheus.go and prometheus_machine.go.
// Differences: per-sample timestamps are not written; container_cpu_usage_seconds_total is
// reported with cpu="total" only (as the kubelet does, per-CPU usage disabled).
//
// Example (in main()):
//   ASSIGN_OR_RETURN(CgroupReader reader, CgroupReader::Create());
//   RegisterCadvisorMetrics(&registry, reader, [&] { return runtime.CadvisorContainers(); });
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "metrics/cgroup_stats.h"
#include "metrics/fs_usage.h"
#include "metrics/registry.h"

namespace berth::metrics {

// One entry to report, filled by the caller from the CRI. A pod-level entry (the pod
// cgroup) has an empty `container` and carries the network stats via `network_pid`.
struct CadvisorContainer {
  std::string container;          // label container: the Kubernetes container name; "" for the pod
  std::string name;               // label name: the runtime's name (container ID for berth)
  std::string pod;                // label pod
  std::string namespace_;         // label namespace
  std::string image;              // label image: the image reference; "" for the pod
  std::string cgroup_path;        // relative to the hierarchy roots; label id ("/kubepods/...")
  int network_pid = 0;            // > 0: report container_network_* from /proc/<pid>/net/dev
  double start_time_seconds = 0;  // creation time, seconds since the Unix epoch
  std::string pod_sandbox_id;     // the CRI PodSandbox ID (not a label; joins CRI metrics)
  std::string rootfs_dir;         // the writable layer, for container_fs_usage_bytes ("" none)
};

// Machine facts for machine_cpu_cores and machine_memory_bytes.
struct MachineInfo {
  uint64_t cpu_cores = 0;     // logical CPUs online
  uint64_t memory_bytes = 0;  // MemTotal
};

// Reads the number of logical CPUs ("processor" entries of <proc_root>/cpuinfo, else
// sysconf) and MemTotal from <proc_root>/meminfo.
// Errors: meminfo unreadable or without MemTotal.
absl::StatusOr<MachineInfo> ReadMachineInfo(const std::string& proc_root = "/proc");

// Stats of one entry as read at scrape time. `stats` is nullopt when the cgroup could not
// be read (the entry then yields only its spec-less start time and last-seen samples).
struct CadvisorSample {
  CadvisorContainer container;
  std::optional<CgroupStats> stats;
  std::vector<InterfaceStats> network;
  std::optional<FsStats> rootfs;  // the writable layer's usage (container_fs_usage_bytes ...)
};

// Device label of major:minor: "/dev/<DEVNAME>" from <sys_root>/dev/block/M:m/uevent, as
// cAdvisor names devices; "M:m" when that is unknown.
std::string BlockDeviceName(uint32_t major, uint32_t minor, const std::string& sys_root = "/sys");

// Builds the families from already-read samples: a pure function, sorted by family name,
// samples in input order. `now_seconds` is the value of container_last_seen.
// `device_name` maps major:minor to the device label (BlockDeviceName in production).
// `node_fs`, when set, is reported as the root container's (id="/", other labels empty)
// container_fs_usage_bytes / _limit_bytes / _inodes_free on its device, as cAdvisor does for
// the machine's filesystem.
std::vector<FamilySnapshot> BuildCadvisorFamilies(
    const std::vector<CadvisorSample>& samples, const MachineInfo& machine, double now_seconds,
    const std::function<std::string(uint32_t, uint32_t)>& device_name,
    const std::optional<FsStats>& node_fs = std::nullopt);

// Where and when a collector reads; defaults are the real host.
struct CadvisorOptions {
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
  std::function<double()> now;  // seconds since the epoch; wall clock when empty
  // Writable-layer usage (not owned); container_fs_usage_bytes etc. omitted when null.
  FsUsageCache* fs_usage = nullptr;
  // The node's filesystem (berth's --root-dir): the root container's container_fs_* from
  // statvfs on every scrape (no walk); "" omits them.
  std::string root_fs_dir;
};

// Reads stats for each entry `list()` returns and appends the families to `out`. Entries
// whose cgroup is gone are reported without usage (logged at DEBUG); a failing netns read
// drops that entry's network samples only.
void CollectCadvisorMetrics(const CgroupReader& reader,
                            const std::vector<CadvisorContainer>& containers,
                            const MachineInfo& machine, const CadvisorOptions& options,
                            std::vector<FamilySnapshot>* out);

// Adds a collector to `registry` that calls `list` (must be thread-safe; it runs on the
// scraping thread) and reports its entries on every scrape. Machine info is read once, now.
void RegisterCadvisorMetrics(Registry* registry, CgroupReader reader,
                             std::function<std::vector<CadvisorContainer>()> list,
                             CadvisorOptions options = {});

}  // namespace berth::metrics
