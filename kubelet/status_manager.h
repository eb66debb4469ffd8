// Pod status: computing the API PodStatus from the runtime's view (upstream kubelet's
// generateAPIPodStatus/getPhase in pkg/kubelet/kubelet_pods.go) and writing it back to the
// API server asynchronously, coalesced per pod (upstream pkg/kubelet/status/status_manager.go).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cri/runtime_service.h"
#include "kubelet/api/pod.h"
#include "kubelet/api_client.h"
#include "metrics/kubelet_metrics.h"

namespace berth::kubelet {

// What the runtime reports for one pod: its sandboxes and the statuses of all its container
// instances (every restart is a new instance).
struct PodRuntimeStatus {
  std::vector<cri::v1::PodSandboxStatus> sandboxes;  // newest first
  std::vector<cri::v1::ContainerStatus> containers;  // newest first (by created_at)
};

// Why a container is waiting, as decided by the last sync (ErrImagePull, ImagePullBackOff,
// CrashLoopBackOff, CreateContainerError, ...).
struct ContainerWaiting {
  std::string reason;
  std::string message;
};

// The restart count of a container instance: its io.kubernetes.container.restartCount
// annotation (what the kubelet put there at creation), else its CRI attempt (upstream
// getContainerInfoFromAnnotations / the container's metadata). Pure.
int RestartCountOf(const cri::v1::ContainerStatus& cs);

// Inputs of ComputePodStatus besides the pod and the runtime view.
struct PodStatusContext {
  std::string node_ip;           // hostIP / hostIPs
  absl::Time now;                // for startTime and condition transitions
  bool pod_is_terminal = false;  // the pod worker has stopped the pod for good
  // Container name -> why it is waiting (set by the pod worker).
  std::map<std::string, ContainerWaiting> waiting;
  // Probe results of running container instances by container ID (ready: readinessProbe
  // succeeded and started; started: startupProbe succeeded). Instances not listed have no
  // probes: a running container is ready and started.
  struct ProbeStatus {
    bool ready = true;
    bool started = true;
  };
  std::map<std::string, ProbeStatus> probes;
};

// The pod phase from the API container statuses, per upstream getPhase (without the
// ContainerRestartRules gate). Restartable init containers (sidecars) count as running
// containers, keep the pod Pending until started unless `pod_has_initialized` (regular
// containers were created before), and are ignored once exited.
std::string GetPodPhase(const api::Pod& pod, const Json& init_container_statuses,
                        const Json& container_statuses, bool pod_is_terminal,
                        bool pod_has_initialized = false);

// Computes the API `status` of `pod`. `old_status` (the last status we computed or the one
// on the object) keeps startTime, PodScheduled and condition transition times stable, so
// that an unchanged pod yields an identical status. Pure; thread-safe.
Json ComputePodStatus(const api::Pod& pod, const PodRuntimeStatus& runtime, const Json& old_status,
                      const PodStatusContext& ctx);

// Writes pod statuses to the API server: PATCH /api/v1/namespaces/<ns>/pods/<name>/status
// with a strategic-merge patch {"metadata":{"uid":...},"status":...} (the uid acts as a
// precondition), from a few writer threads (one pod is written by one of them at a time, so
// a pod's writes stay in order; pods are written in parallel, so 30 starting pods do not
// wait for each other's round trips), only when the status differs from what was last
// written, and coalesced per pod (several updates before a write produce one PATCH). The
// time from a status change to its PATCH answered is observed as phase "status_write" of
// berth_pod_start_phase_duration_seconds when metrics are given.
// Once a pod is marked for deletion and its latest status is written, it deletes the pod
// object with gracePeriodSeconds=0 and a UID precondition (as upstream once the pod's
// containers are stopped).
// Thread safety: every method may be called from any thread.
class StatusManager {
 public:
  // `api` (and `km`, which may be null) are not owned and must outlive this object.
  // `writers`: number of writer threads (at least 1).
  explicit StatusManager(ApiClient* api, const metrics::KubeletMetrics* km = nullptr,
                         int writers = 8);
  ~StatusManager();

  // Starts / stops the writer thread. Stop() returns after the thread exits; pending writes
  // are dropped.
  void Start();
  void Stop();

  // Records the desired status of `pod` (a v1.Pod JSON: only metadata is read).
  void SetPodStatus(const api::Pod& pod, const Json& status);
  // Deletes the pod object once its latest status is written.
  void MarkForDeletion(const std::string& uid);
  // Forgets a pod (its object is gone); a pending write is dropped.
  void RemovePod(const std::string& uid);
  // The latest desired status of pod `uid`, if any.
  std::optional<Json> GetPodStatus(const std::string& uid);

  // Static pods (upstream TranslatePodUID): `mirror_uid_of(uid)` returns nullopt for a pod
  // of the API server (its status goes to the object with that UID), "" for a static pod
  // whose mirror pod does not exist yet (the write waits for MirrorPodChanged), else the UID
  // of its mirror pod, which the status is written to (same namespace/name, the mirror's UID
  // as precondition). A static pod's entry is kept when its mirror pod is gone. Call before
  // Start(); must be thread-safe and must not call back into this object.
  void SetMirrorUidSource(std::function<std::optional<std::string>(const std::string&)> fn);
  // The mirror pod of static pod `uid` was created or replaced: its latest status is written
  // (again).
  void MirrorPodChanged(const std::string& uid);

 private:
  struct Entry {
    std::string ns, name;
    Json status;   // desired
    Json written;  // last successfully written (null: none)
    bool delete_requested = false;
    bool retry_pending = false;  // a failed write waits in retries_: same status, no rewrite
    // When `status` last became different from `written` (for the status_write phase).
    std::chrono::steady_clock::time_point changed_at;
  };
  void Run();
  void SyncOne(const std::string& uid);

  ApiClient* api_;
  std::function<std::optional<std::string>(const std::string&)> mirror_uid_of_;
  const metrics::KubeletMetrics* km_;
  const int writers_count_;
  absl::Mutex mu_;
  absl::CondVar cv_;
  std::map<std::string, Entry> pods_ ABSL_GUARDED_BY(mu_);  // by uid
  std::set<std::string> dirty_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> in_flight_ ABSL_GUARDED_BY(mu_);  // being written by a writer
  std::multimap<absl::Time, std::string> retries_ ABSL_GUARDED_BY(mu_);  // real time
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> writers_;
};

}  // namespace berth::kubelet
