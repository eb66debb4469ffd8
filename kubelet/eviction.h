// Local ephemeral-storage eviction: the part of the kubelet's eviction manager that evicts a
// pod whose emptyDir usage exceeds the volume's sizeLimit, whose ephemeral-storage usage
// exceeds the sum of its containers' ephemeral-storage limits, or one of whose containers
// (writable layer + logs) exceeds its own ephemeral-storage limit (upstream
// pkg/kubelet/eviction/eviction_manager.go localStorageEviction; checked in that order, the
// first limit exceeded names the eviction).
//
// Usage comes from the FsUsageCache's background walks and is checked after each of its
// passes (--fs-usage-period), never by walking on the check itself. An evicted pod is killed
// with no grace period, its phase set to Failed with reason "Evicted" and the upstream
// message, and a Warning "Evicted" event is recorded (PodManager::EvictPod).
//
// Example (main):
//   LocalStorageEvictor evictor({&fs_usage, pods_fn, running_fn, evict_fn, pods_dir});
//   fs_usage.OnRefresh([&evictor] { evictor.Check(); });
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kubelet/api/pod.h"
#include "kubelet/api_client.h"
#include "metrics/fs_usage.h"
#include "metrics/summary.h"

namespace berth::kubelet {

// What a pod uses on local ephemeral storage, in bytes (measured values only).
struct PodStorageUsage {
  std::map<std::string, uint64_t> volumes;     // emptyDir volume name -> bytes under it
  std::map<std::string, uint64_t> containers;  // container name -> writable layer + log bytes
  // Containers plus disk-backed emptyDirs and configMap volumes: the pod's ephemeral-storage
  // (upstream counts the local ephemeral volumes, volumeutil.IsLocalEphemeralVolume).
  uint64_t total = 0;
};

// resource.Quantity's canonical String() of `bytes`: with the largest binary suffix (Ki..Ei)
// that divides it exactly when `binary`, else the largest decimal one (k..E); "0" for 0.
std::string FormatQuantity(uint64_t bytes, bool binary);

// The eviction message for `pod` (v1.Pod) at `usage`, or nullopt when no limit is exceeded:
//   Usage of EmptyDir volume "<name>" exceeds the limit "<sizeLimit>".
//   Pod ephemeral local storage usage exceeds the total limit of containers <sum>.
//   Container <name> exceeded its local ephemeral storage limit "<limit>".
// (each with the upstream trailing space). A volume or container absent from `usage` is not
// measured yet and exceeds nothing. Pure.
std::optional<std::string> LocalStorageEvictionMessage(const api::Pod& pod,
                                                       const PodStorageUsage& usage);

// Checks the node's pods against their local-storage limits. Not thread-safe: Check() runs on
// one thread (the FsUsageCache's).
class LocalStorageEvictor {
 public:
  struct Deps {
    // Not owned; outlives the evictor. Check() tells it the paths to measure (consumer
    // "eviction"): emptyDirs and configMap volumes of pods with limits, their containers'
    // writable layers and logs.
    metrics::FsUsageCache* fs = nullptr;
    // The active (not terminal, not deleted) pods bound to this node.
    std::function<std::vector<api::Pod>()> pods;
    // Ready sandboxes with their running containers (rootfs_dir, log_path), by pod uid.
    std::function<std::vector<metrics::SummaryPod>()> running;
    // Evicts pod `uid` with `message`; must not block for long.
    std::function<void(const std::string& uid, const std::string& message)> evict;
    // <kubelet root>/pods: emptyDirs are <pods_dir>/<uid>/volumes/kubernetes.io~empty-dir/<name>.
    std::string pods_dir;
  };
  explicit LocalStorageEvictor(Deps deps);

  // One pass: evicts (once each) the pods over a limit by the last measurements, and asks the
  // cache for the paths of the pods with limits. Critical pods (mirror pods, priority at or
  // above system-critical, 2000000000) are never evicted, as upstream evictPod refuses them.
  // Returns the uids evicted by this pass.
  std::vector<std::string> Check();

 private:
  Deps deps_;
  std::set<std::string> evicted_;  // uids already evicted, while still listed
};

}  // namespace berth::kubelet
