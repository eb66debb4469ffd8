// What the node's stats endpoints report: the pod sandboxes and containers the CRI runtime
// knows, with their cgroups, as inputs of /metrics/cadvisor (metrics/cadvisor.h),
// /stats/summary (metrics/summary.h) and the eBPF families (the berth_cgroup_* metrics).
//
// Example:
//   ASSIGN_OR_RETURN(StatsTargets t, ListStatsTargets(&runtime));
//   provider.Summary(t.pods);
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cri/runtime_service.h"
#include "ebpf/collectors.h"
#include "metrics/cadvisor.h"
#include "metrics/registry.h"
#include "metrics/summary.h"

namespace berth::kubelet {

// The entries to report, from one listing of the runtime.
struct StatsTargets {
  // One pod-level entry (container "") per ready sandbox, then one per running container.
  std::vector<metrics::CadvisorContainer> cadvisor;
  // Ready sandboxes with their running containers.
  std::vector<metrics::SummaryPod> pods;
};

// What the verbose PodSandboxStatus/ContainerStatus says about an id that does not change
// while the sandbox is ready / the container runs: its cgroup, pid and (containers) image.
// With a cache, ListStatsTargets asks the runtime once per id instead of once per id and
// scrape (the scrape path then makes two list calls whatever the number of pods). Ids no
// longer listed are dropped at each listing. Thread-safe.
class StatsInfoCache {
 public:
  struct Entry {
    std::string cgroup_path;
    int pid = 0;
    std::string image;       // containers: the status' image, "" if none
    std::string rootfs_dir;  // containers: the writable layer (<bundle>/upper), "" if unknown
    std::string log_path;    // containers: the log file, "" if none
  };
  // The entry of `id`, if cached.
  std::optional<Entry> Find(const std::string& id) const;
  void Put(const std::string& id, Entry entry);
  // Drops every id not in `live`.
  void Retain(const std::set<std::string>& live);
  size_t size() const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

// Lists ready PodSandboxes and running containers through ListPodSandbox, ListContainers
// and verbose PodSandboxStatus/ContainerStatus (info["info"] JSON: "cgroupPath", "pid"),
// the latter only for ids not in `cache` (when given). Cgroup paths are relative to the
// hierarchy roots ("/kubepods/besteffort/pod<uid>/<id>"). Sandboxes or containers that
// vanish between the calls are skipped.
// Errors: ListPodSandbox or ListContainers fails.
absl::StatusOr<StatsTargets> ListStatsTargets(cri::RuntimeService* runtime,
                                              StatsInfoCache* cache = nullptr);

// Who a cgroup belongs to, for labelling eBPF counters.
struct CgroupOwner {
  std::string pod;
  std::string namespace_;
  std::string container;  // "" for the pod cgroup itself
};

// Builds the berth_cgroup_* / berth_oom_kills_total families (sorted by name) from an eBPF
// snapshot, labelled pod/namespace/container through `owners` (by cgroup v2 id). Cgroup ids
// not in `owners` are skipped. A pure function.
std::vector<metrics::FamilySnapshot> BuildEbpfFamilies(
    const ebpf::StatsSnapshot& snapshot, const std::map<uint64_t, CgroupOwner>& owners);

// The cgroup v2 id of `cgroup_path` (relative to the hierarchy roots): the inode of the
// cgroup2 mount (base/cgroup_mounts.h: /sys/fs/cgroup/unified on a hybrid host,
// /sys/fs/cgroup on a v2 host) + path; 0 when it does not exist or there is no cgroup2 mount.
uint64_t DefaultCgroupId(const std::string& cgroup_path);

// Maps the cgroup v2 ids of `targets.cadvisor` entries to their owners, with `cgroup_id`
// resolving a path relative to the hierarchy roots (default: DefaultCgroupId).
std::map<uint64_t, CgroupOwner> CgroupOwners(
    const StatsTargets& targets,
    const std::function<uint64_t(const std::string&)>& cgroup_id = nullptr);

// Starts the eBPF per-pod network counters (cgroup_skb ingress/egress) for every pod: one
// attachment on the cgroup that holds all pods, `pods_cgroup` (e.g. "<cgroup-root>/kubepods",
// relative to the hierarchy roots), in the cgroup v2 hierarchy of `reader` (the `unified`
// mount on a hybrid host). The directory is created when missing so that pods started later
// are counted from their first packet; counts land on each socket's own (container) cgroup.
// Errors: the host has no cgroup2 mount (pure v1), mkdir fails, or AttachNetwork fails.
absl::Status AttachPodNetworkCounters(ebpf::Collectors* collectors,
                                      const metrics::CgroupReader& reader,
                                      const std::string& pods_cgroup);

// Appends the kubelet's /metrics/resource families (container_/pod_/node_ cpu usage and
// memory working set, container_start_time_seconds, scrape_error) for `targets`, read
// through `reader`; the node is the root cgroup "/". Unreadable cgroups are skipped and set
// scrape_error to 1. Thread-safe (reader is read-only).
void CollectResourceMetrics(const metrics::CgroupReader& reader, const StatsTargets& targets,
                            std::vector<metrics::FamilySnapshot>* out);

}  // namespace berth::kubelet
