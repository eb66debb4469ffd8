// The kubelet's /stats/summary document (k8s.io/kubelet/pkg/apis/stats/v1alpha1 Summary:
// node, pods[] with podRef, startTime, containers[], cpu, memory, network, process_stats),
// built from cgroup stats (CgroupReader) and the pods' /proc/<pid>/net/dev.
//
// usageNanoCores is a rate: SummaryProvider keeps the previous CPU sample per cgroup and
// reports (delta usage ns) / (delta seconds); it is omitted on the first sample of a cgroup,
// as the kubelet does. Container rootfs (writable layer) and logs, pod emptyDir volumes and
// ephemeral-storage come from an FsUsageCache (measured in the background, not per scrape).
// node.fs is the filesystem of the kubelet root (statvfs, as the kubelet's RootFsStats);
// node.runtime.imageFs is the image store's filesystem with usedBytes = the image store's
// size (cached walk) and inodesUsed = the filesystem's used inodes, and containerFs equals
// imageFs (one filesystem: the upstream kubelet's non-split case).
// Not yet reported: swap, io/psi, systemContainers.
//
// Example (the /stats/summary handler):
//   absl::StatusOr<std::string> json = provider.Summary(pods);
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "metrics/cgroup_stats.h"
#include "metrics/fs_usage.h"
#include "metrics/registry.h"

namespace berth::metrics {

// A container of a pod, filled by the caller from the CRI.
struct SummaryContainer {
  std::string name;               // Kubernetes container name
  double start_time_seconds = 0;  // seconds since the Unix epoch
  std::string cgroup_path;        // relative to the hierarchy roots
  std::string rootfs_dir;         // the writable layer (overlay upper dir); "" if unknown
  std::string log_path;           // the container's log file; "" if none
};

// A pod volume whose usage is reported in the pod's volume[] (emptyDir, configMap, secret,
// downwardAPI, projected: the volumes berth keeps under the pod's directory).
struct SummaryVolume {
  std::string name;
  std::string path;
  // Counted in the pod's ephemeral-storage: a local ephemeral volume (upstream
  // volumeutil.IsLocalEphemeralVolume: an emptyDir on disk or a configMap).
  bool local_ephemeral = true;
  // A volume from a PersistentVolumeClaim: reported with pvcRef {name, namespace}.
  std::string pvc_name;
  std::string pvc_namespace;
  // Stats of the filesystem holding `path` (statvfs: used = capacity - free, as upstream's
  // MetricsStatFS for local PVs) instead of a walk of `path`.
  bool filesystem = false;
  // When set, the volume's stats come from it instead (a CSI driver's NodeGetVolumeStats);
  // an error leaves the volume without stats. Called on the scraping thread.
  std::function<absl::StatusOr<FsStats>()> measure;
};

// The plugin directories under <pod>/volumes/ that berth reports, with whether their volumes
// count in the pod's ephemeral-storage (kubernetes.io~empty-dir, ~configmap: yes; ~secret,
// ~downward-api, ~projected: no).
const std::vector<std::pair<std::string, bool>>& SummaryVolumePlugins();

// A pod sandbox and its containers, filled by the caller from the CRI.
struct SummaryPod {
  std::string name;
  std::string namespace_;
  std::string uid;
  double start_time_seconds = 0;
  std::string cgroup_path;  // the pod cgroup ("/kubepods/burstable/pod<uid>")
  int network_pid = 0;      // > 0: the sandbox's infra process, for network stats
  std::vector<SummaryContainer> containers;
  std::vector<SummaryVolume> volumes;  // filled by SummaryProvider from SummaryOptions::pods_dir
};

// Stats of one cgroup at one instant, with the CPU rate when a previous sample existed.
struct StatsPoint {
  std::optional<CgroupStats> stats;          // nullopt: unreadable, cpu/memory omitted
  std::optional<uint64_t> usage_nano_cores;  // nullopt on the first sample
};

// Node-level input of BuildSummaryJson.
struct NodeSummaryInput {
  std::string node_name;
  double start_time_seconds = 0;       // node (boot) start time
  StatsPoint stats;                    // the root cgroup
  uint64_t memory_capacity_bytes = 0;  // MemTotal; availableBytes = capacity - working set
  std::vector<InterfaceStats> network;
  std::optional<FsStats> fs;            // node.fs (nullopt: omitted)
  std::optional<FsStats> image_fs;      // node.runtime.imageFs
  std::optional<FsStats> container_fs;  // node.runtime.containerFs
};

// Pod-level input of BuildSummaryJson; `containers[i]` are the stats of pod.containers[i].
struct PodSummaryInput {
  SummaryPod pod;
  StatsPoint stats;
  std::vector<StatsPoint> containers;
  std::vector<InterfaceStats> network;
  // Filesystem usage per container (same order as pod.containers; nullopt: not measured yet)
  // and per volume of pod.volumes.
  std::vector<std::optional<FsStats>> rootfs;
  std::vector<std::optional<FsStats>> logs;
  std::vector<std::optional<FsStats>> volumes;
};

// usageNanoCores from two cumulative CPU samples: (cur-prev) ns over (now-prev_time)
// seconds. nullopt when the interval is not positive or the counter went backwards
// (cgroup re-created).
std::optional<uint64_t> UsageNanoCores(uint64_t prev_usage_ns, double prev_seconds,
                                       uint64_t cur_usage_ns, double cur_seconds);

// RFC 3339 UTC with second precision, as metav1.Time marshals: "2026-11-21T14:50:00Z".
std::string FormatTime(double seconds_since_epoch);

// Renders the Summary JSON (a pure function). `now_seconds` is the "time" of every stats
// block. Field names are those of the v1alpha1 Go types; absent values are omitted as the
// Go `omitempty` pointers are.
std::string BuildSummaryJson(const NodeSummaryInput& node, const std::vector<PodSummaryInput>& pods,
                             double now_seconds);

// The kubelet's volume stats families on /metrics (its volumeStatsCollector):
// kubelet_volume_stats_{capacity,available,used}_bytes and kubelet_volume_stats_inodes,
// _inodes_free, _inodes_used, gauges labelled {namespace, persistentvolumeclaim}, one series
// per claim (the first of its volumes wins). `volumes` are claim volumes (pvc_name set; others
// are skipped) with their measured stats. A pure function.
std::vector<FamilySnapshot> VolumeStatsFamilies(
    const std::vector<std::pair<SummaryVolume, FsStats>>& volumes);

// Options of SummaryProvider; defaults are the real host.
struct SummaryOptions {
  std::string proc_root = "/proc";
  // Filesystem usage of rootfs, logs and volumes (not owned; none reported when null).
  FsUsageCache* fs_usage = nullptr;
  // The kubelet's pods directory: emptyDir volumes are
  // <pods_dir>/<uid>/volumes/kubernetes.io~empty-dir/<name>; "" reports none.
  std::string pods_dir;
  // The volumes of pod `uid` that come from PersistentVolumeClaims and report stats (local
  // PVs), added to those found under pods_dir; none when empty. Called on the scraping
  // thread; must be thread-safe.
  std::function<std::vector<SummaryVolume>(const std::string& uid)> claim_volumes;
  // The kubelet's root directory (node.fs: its filesystem); "" omits node.fs.
  std::string root_dir;
  // The image store's directory (node.runtime.imageFs/containerFs; its size is measured by
  // fs_usage); "" or a null fs_usage omits them.
  std::string image_dir;
  std::function<double()> now;  // seconds since the epoch; wall clock when empty
};

// Reads stats and renders /stats/summary, remembering the previous CPU sample of every
// cgroup it reported (forgetting cgroups not in the latest call). Thread-safe.
class SummaryProvider {
 public:
  SummaryProvider(CgroupReader reader, std::string node_name, SummaryOptions options = {});

  // The Summary JSON for the node and `pods`. Pods or containers whose cgroup cannot be
  // read are still listed, without cpu/memory. Errors: the root cgroup is unreadable.
  absl::StatusOr<std::string> Summary(const std::vector<SummaryPod>& pods);

 private:
  struct CpuSample {
    uint64_t usage_ns;
    double seconds;
  };
  StatsPoint Point(const std::string& cgroup_path, double now,
                   std::map<std::string, CpuSample>* next) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const CgroupReader reader_;
  const std::string node_name_;
  const SummaryOptions options_;
  absl::Mutex mu_;
  std::map<std::string, CpuSample> previous_ ABSL_GUARDED_BY(mu_);
};

}  // namespace berth::metrics
