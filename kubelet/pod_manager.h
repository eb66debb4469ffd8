// PodManager: the kubelet's pod workers, SyncPod and their wiring to the volume and status
// managers (upstream pkg/kubelet/pod_workers.go, kuberuntime/kuberuntime_manager.go
// SyncPod/KillPod). What a sync does is decided by ComputePodActions (pod_actions.h); the CRI
// configs come from container_config.h, images from ImagePuller (image_puller.h).
//
// Event-driven: pod add/update/delete events from the watch, "container exited" events from
// the runtime and timers (image pull / crash-loop back-off expiry, token refresh) queue a
// sync of one pod; workers run syncs, one at a time per pod and pods in parallel. As
// upstream's pod workers (a goroutine per pod), a queued sync never waits for another pod's:
// the pool grows by one thread whenever a sync is queued and no worker is idle (up to
// max_workers), and threads above `workers` exit after worker_idle_timeout without work.
// A slow periodic resync of every pod is only a safety net.
//
// The runtime state is read back from the CRI on every sync (ListPodSandbox/ListContainers by
// the io.kubernetes.pod.uid label), so a restarted berth adopts what is running.
//
// Example:
//   PodManager pods(api, runtime, images, {.node_name = "n1", .node_ip = "10.0.0.2"});
//   pods.Start();
//   watch handler:   pods.HandlePodEvent("ADDED", pod_json);
//   runtime handler: pods.OnContainerEvent(container_id);
//   pods.Stop();
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
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
#include "kubelet/container_config.h"
#include "kubelet/image_puller.h"
#include "kubelet/lifecycle.h"
#include "kubelet/pod_actions.h"
#include "kubelet/prober.h"
#include "kubelet/pull_secrets.h"
#include "kubelet/service_env.h"
#include "kubelet/status_manager.h"
#include "kubelet/sysctl.h"
#include "kubelet/volume_manager.h"
#include "metrics/kubelet_metrics.h"

namespace berth::kubelet {

// Configuration of a PodManager (node identity, paths, timing). Copied at construction.
struct PodManagerOptions {
  // This node's name (spec.nodeName of its pods) and its InternalIP (status.hostIP).
  std::string node_name;
  std::string node_ip;
  // Kubelet root: volumes under <root_dir>/pods/<uid>/volumes.
  std::string root_dir = "/var/lib/berth/kubelet";
  // Pod log directories: <log_root>/<namespace>_<name>_<uid>.
  std::string log_root = "/var/log/pods";
  // Cgroup root of pods; QoS classes below it (cgroupfs driver naming).
  std::string cgroup_root = "/kubepods";
  // Containers without a seccompProfile (neither their own nor the pod's) run with the
  // runtime's default profile instead of unconfined (the kubelet's --seccomp-default).
  // Localhost profiles are files under <root_dir>/seccomp.
  bool seccomp_default = false;
  // Pod worker threads kept when idle, and the most that run at once (a sync waits in the
  // queue only when max_workers syncs run). Threads above `workers` exit once idle for
  // worker_idle_timeout.
  int workers = 4;
  int max_workers = 256;
  absl::Duration worker_idle_timeout = absl::Seconds(30);
  // Safety-net resync of every pod.
  absl::Duration resync_period = absl::Seconds(10);
  // Cluster DNS servers and domain (the kubelet's --cluster-dns, --cluster-domain). With no
  // servers, ClusterFirst pods get the host's resolv.conf (a MissingClusterDNS event); with
  // no domain, no cluster search domains are added.
  std::vector<std::string> cluster_dns;
  std::string cluster_domain;
  std::string resolv_conf = "/etc/resolv.conf";
  // CRI runtime handler for RunPodSandbox ("" = default); a pod's runtimeClassName is
  // resolved to its RuntimeClass handler instead.
  std::string runtime_handler;
  // Back-off for image pulls and crash loops: initial, doubled per failure up to max.
  absl::Duration backoff_initial = absl::Seconds(10);
  absl::Duration image_backoff_max = absl::Seconds(300);
  absl::Duration crash_backoff_max = absl::Minutes(5);
  // The cluster's services, for the containers' service environment variables (service
  // links, KUBERNETES_SERVICE_HOST/PORT); not owned. Null: no such variables.
  ServiceEnv* service_env = nullptr;
  // The kubelet's --allowed-unsafe-sysctls patterns (checked by main with
  // SysctlAllowlist::Create; an invalid list here leaves the safe sysctls only).
  std::vector<std::string> allowed_unsafe_sysctls;
  // Current time (tests inject a fake clock). Waits use real time.
  std::function<absl::Time()> clock = absl::Now;
  // Receives the Events kubelet would record about a pod (type "Normal"/"Warning", reason,
  // message, involvedObject fieldPath such as "spec.containers{main}"); empty: none.
  // Wired to an EventRecorder by main(). Called on pod worker threads; must not block.
  std::function<void(const Json& pod, const std::string& type, const std::string& reason,
                     const std::string& message, const std::string& field_path)>
      record_event;
  // Runs container probes; nullptr: a DefaultProbeRunner over `runtime` (CRI ExecSync,
  // HTTP/TCP/gRPC from berth's network namespace). Not owned.
  ProbeRunner* probe_runner = nullptr;
  // Where prober_probe_total is counted (the kubelet's /metrics/probes); may be nullptr.
  metrics::Registry* probe_metrics = nullptr;
  // Static pods (kubelet/static_pods.h). A pod object of the API server that mirrors a
  // static pod (kubernetes.io/config.mirror) is never run: HandlePodEvent passes it here
  // (MirrorPodManager::HandleMirrorPodEvent); empty: ignored.
  std::function<void(const std::string& type, const Json& mirror)> on_mirror_pod;
  // For the status manager (StatusManager::SetMirrorUidSource): the mirror pod UID a static
  // pod's status is written to (MirrorPodManager::MirrorUidOf); empty: no static pods.
  std::function<std::optional<std::string>(const std::string& uid)> mirror_uid_of;
  // The kubelet's pod-start metrics (kubelet_pod_worker_duration_seconds, ...,
  // berth_pod_start_phase_duration_seconds; metrics/kubelet_metrics.h); not owned, may be
  // nullptr. When set, every CRI call of the manager is also counted
  // (kubelet_runtime_operations_*, InstrumentedRuntimeService).
  const metrics::KubeletMetrics* kubelet_metrics = nullptr;
};

// The kubelet pod lifecycle for the pods bound to this node (see the file comment).
// Thread safety: all public methods may be called from any thread.
class PodManager {
 public:
  // None of the pointers is owned; all must outlive this object.
  PodManager(ApiClient* api, cri::RuntimeService* runtime, cri::ImageService* images,
             PodManagerOptions options);
  ~PodManager();

  // Starts the workers, the timer thread and the status writer. Stop() waits for running
  // syncs to finish and joins every thread; queued work is dropped.
  void Start();
  void Stop();

  // A watch event for a pod bound to this node: `type` is "ADDED", "MODIFIED", "DELETED"
  // (as in ApiClient::Watch; "SYNC" is treated as MODIFIED), `pod` the v1.Pod object; or a
  // static pod from the file source (FilePodSource: "ADDED", "DELETED"; a changed file is a
  // new pod). A mirror pod goes to options.on_mirror_pod instead (upstream: a mirror pod is
  // never run; its static pod is). The
  // object is parsed here, once (api::ParsePod); one that does not parse is logged and
  // reported as a Warning event "FailedToParsePod" naming the field, and otherwise ignored:
  // a known pod keeps its last good spec, other pods are not affected.
  void HandlePodEvent(const std::string& type, const Json& pod);

  // Call once the initial LIST of pods has been fed through HandlePodEvent: sandboxes and
  // containers (found by their io.kubernetes.pod.uid label) of pods that are not known any
  // more, e.g. deleted while berth was down, are stopped and removed.
  void HandlePodsSynced();

  // The runtime reports that container `container_id` changed state (typically exited).
  // Unknown IDs are ignored.
  void OnContainerEvent(const std::string& container_id);

  // The mirror pod of static pod `uid` was created or replaced (MirrorPodManager's
  // on_mirror_changed): the pod's status is written to it.
  void MirrorPodChanged(const std::string& uid);

  // The latest status computed for pod `uid` (what is or will be written), if any.
  std::optional<Json> GetPodStatus(const std::string& uid);

  // UIDs of the pods the manager currently tracks.
  std::vector<std::string> PodUids();

  // The tracked pods that are neither deleted nor terminal: what the eviction manager checks.
  std::vector<api::Pod> ActivePods();

  // Evicts pod `uid` (the kubelet eviction manager's evictPod): records a Warning "Evicted"
  // event with `message`, kills its containers with no grace period and sets the pod's phase
  // Failed, reason "Evicted", message `message`. Asynchronous (the pod's worker does it);
  // unknown or already terminal pods are ignored.
  void EvictPod(const std::string& uid, const std::string& message);

  // The volume manager (for the lead's wiring and tests).
  VolumeManager& volumes() { return volumes_; }
  // The probe workers (liveness / readiness / startup) of the tracked pods.
  Prober& prober() { return *prober_; }

 private:
  // Per-pod state. Fields under "worker" are touched only by the (serialized) pod worker.
  struct PodState {
    // guarded by mu_: the latest object from the API, parsed; replaced (never mutated) on
    // each update, so a worker may hold it while a newer one arrives.
    std::shared_ptr<const api::Pod> pod;
    bool removed = false;  // guarded by mu_: DELETED seen; kill then forget
    bool queued = false;   // guarded by mu_
    bool running = false;  // guarded by mu_
    bool dirty = false;    // guarded by mu_: an event arrived while running
    // guarded by mu_: when the pod was first seen and when its pending sync was queued
    // (kubelet_pod_worker_start_duration_seconds, the queue_wait phase).
    std::chrono::steady_clock::time_point first_seen, queued_at;
    // guarded by mu_: kubelet_pod_start_sli_duration_seconds was recorded.
    bool sli_recorded = false;
    // guarded by mu_: seconds spent ensuring images (pulls), subtracted from the SLI.
    double image_seconds = 0;
    // worker:
    std::map<std::string, ContainerWaiting> waiting;      // container name -> reason
    std::map<std::string, RestartBackoff> crash_backoff;  // container name
    ImagePullState image_pulls;                           // pull back-off by image
    // Retry delay after a failed volume set-up: 200 ms doubling to backoff_initial (a
    // TokenRequest right after scheduling can be refused until the node authorizer's graph
    // has the pod).
    absl::Duration volume_retry = absl::ZeroDuration();
    std::string volume_error;  // the last volume set-up error reported as FailedMount

    Json last_status = Json::object();
    bool synced = false;  // a sync ran (kubelet_pod_worker_duration "create" first)
    std::shared_ptr<const api::Pod> last_synced;  // the object the last sync saw
    // kubelet_pod_start_duration_seconds was recorded (or the pod ran before we saw it):
    // the start phases are no longer observed.
    bool start_recorded = false;
    bool terminated = false;  // containers stopped and the pod is terminal
    bool cleaned_up = false;  // deleting pod: containers, sandboxes and volumes removed
    std::string evicted;      // guarded by mu_: the eviction message, once EvictPod() ran
    // Admission (upstream canAdmitPod) ran and accepted the pod. A pod rejected by it (or
    // killed for its activeDeadlineSeconds) is terminal with status.reason `rejected_reason`
    // and the message kept in `evicted`.
    bool admitted = false;
    std::string rejected_reason;
  };

  void Enqueue(const std::string& uid);
  // Observes phase `phase` of berth_pod_start_phase_duration_seconds (time since `start`)
  // while the pod has not run yet (worker thread).
  void Phase(const PodState& state, const char* phase, std::chrono::steady_clock::time_point start);
  // The image_check phase since `start`, also added to the pod's image time (subtracted from
  // the SLI); returns the current time (worker thread).
  std::chrono::steady_clock::time_point ImageTime(PodState* state,
                                                  std::chrono::steady_clock::time_point start);
  // Queues `uid` (not queued nor running) and wakes or starts a worker. `self_available`:
  // the caller is a worker about to take work from the queue.
  void PushLocked(const std::string& uid, PodState* st, bool self_available = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts one more worker thread when the queued syncs outnumber the idle workers (plus
  // `about_to_wait` workers that will take work without waiting).
  void MaybeAddWorkerLocked(int about_to_wait = 0) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records kubelet_pod_start_sli_duration_seconds once the watch shows `pod` running.
  void MaybeRecordSli(PodState* st, const api::Pod& pod) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnqueueAfter(const std::string& uid, absl::Duration delay);
  void WorkerLoop(int id);
  void TimerLoop();
  // The sandbox a sync starts containers in.
  struct SandboxInfo {
    std::string id;
    cri::v1::PodSandboxConfig config;
    std::string pod_ip;  // the node's IP for a host-network pod
  };
  // One sync of one pod (upstream syncPod + kuberuntime SyncPod): the pod-level steps, then
  // ComputePodActions' plan carried out phase by phase. Returns true when the pod is finished
  // and must be forgotten.
  bool SyncPod(const std::string& uid, PodState* state, const api::Pod& pod, bool removed);
  // A deleted or deleting pod: kill, remove, tear volumes down. Returns true to forget it.
  bool SyncTerminatingPod(const std::string& uid, PodState* state, const api::Pod& pod,
                          bool removed);
  // Eviction (EvictPod) or a passed activeDeadlineSeconds: kills the pod with no grace and
  // makes it terminal. Returns true when the sync ends here.
  bool EvictIfDue(const std::string& uid, PodState* state, const api::Pod& pod);
  // Admission, once per pod not yet running here; false when the pod was rejected.
  bool AdmitOnce(const std::string& uid, PodState* state, const api::Pod& pod,
                 const PodRuntimeStatus& rt);
  // Sets up the pod's volumes; nullopt (FailedMount event, retry scheduled) on failure.
  std::optional<std::map<std::string, MountedVolume>> SetUpVolumes(const std::string& uid,
                                                                   PodState* state,
                                                                   const api::Pod& pod,
                                                                   const PodRuntimeStatus& rt,
                                                                   absl::Time now);
  // ComputePodActions over `rt`, the crash back-off state and the prober's verdicts.
  PodActions PlanSync(const std::string& uid, PodState* state, const api::Pod& pod,
                      const PodRuntimeStatus& rt, absl::Time now,
                      const std::string& created_sandbox_id = "");
  // The plan's sandbox step: the ready sandbox, or kill + RunPodSandbox (*rt is re-read
  // then). False when the sync ends here (failure retried, or a lost sandbox made the pod
  // terminal).
  bool EnsureSandbox(const std::string& uid, PodState* state, const api::Pod& pod,
                     const PodActions& plan, PodRuntimeStatus* rt, SandboxInfo* sandbox);
  // The plan's probe-failure kills, starts and garbage removals; each returns true when it
  // changed the runtime.
  bool KillContainers(const api::Pod& pod, const PodActions& plan, const std::string& pod_ip);
  bool StartContainers(const std::string& uid, PodState* state, const api::Pod& pod,
                       const PodActions& plan, const SandboxInfo& sandbox,
                       const std::map<std::string, MountedVolume>& volumes);
  bool RemoveContainers(const PodActions& plan);
  // Points the probe workers at the newest instance of each container.
  void SyncProbes(const api::Pod& pod, const PodRuntimeStatus& rt, const std::string& pod_ip);
  // After the status is written: a pod that is done (phase Succeeded/Failed, a failed init
  // container of a Never pod, only sidecars left) is stopped and made terminal.
  void FinishIfTerminal(const std::string& uid, PodState* state, const api::Pod& pod,
                        const PodActions& plan, const PodRuntimeStatus& rt);
  // Stops and removes everything of the pod; `grace_seconds` for StopContainer.
  absl::Status KillPod(const std::string& uid, const api::Pod& pod, int64_t grace_seconds,
                       bool remove);
  // Stops running instance `id` of container `name` (upstream killContainer): its
  // lifecycle.preStop hook first, when it has one and `grace_seconds` > 0 (a failure is a
  // FailedPreStopHook event), then StopContainer with what is left of the grace period (at
  // least 2 s after a hook). NotFound is success.
  absl::Status StopOne(const api::Pod& pod, const std::string& name, const std::string& id,
                       int64_t grace_seconds, const std::string& pod_ip);
  absl::StatusOr<PodRuntimeStatus> GetRuntimeStatus(const std::string& uid);
  cri::v1::PodSandboxConfig MakeSandboxConfig(const api::Pod& pod, uint32_t attempt);
  // The kubelet's pod admission for a pod not yet running here (its OS: node selector and
  // spec.os; its sysctls against the allowlist). Returns {reason, message} when the pod must be
  // rejected, nullopt otherwise.
  std::optional<std::pair<std::string, std::string>> AdmitPod(const api::Pod& pod);
  // Time left before spec.activeDeadlineSeconds passes (counted from status.startTime, ours
  // or the object's); nullopt when the pod has no deadline or no start time yet.
  std::optional<absl::Duration> ActiveDeadlineLeft(const api::Pod& pod, const PodState& state);
  // Forwards an Event about `pod` (and container `container`, if set) to opts_.record_event.
  void Event(const Json& pod, const std::string& type, const std::string& reason,
             const std::string& message, const std::string& container = "");
  void Event(const api::Pod& pod, const std::string& type, const std::string& reason,
             const std::string& message, const std::string& container = "");
  // Ensures the image of `c` (ImagePuller), creates and starts container `c` in the sandbox and
  // runs its lifecycle.postStart hook (a failing hook: FailedPostStartHook event, the container is
  // stopped, error). Returns the container ID. `pid_target_id`: an ephemeral container's
  // targetContainerName instance, whose PID namespace it joins (CRI NamespaceMode TARGET) when the
  // pod has no shared one.
  absl::StatusOr<std::string> StartContainer(PodState* state, const api::Pod& pod,
                                             const api::Container& c, int restart_count,
                                             const std::string& sandbox_id,
                                             const cri::v1::PodSandboxConfig& sandbox,
                                             const std::string& pod_ip,
                                             const std::map<std::string, MountedVolume>& volumes,
                                             const std::string& pid_target_id = "");
  void UpdateStatus(const std::string& uid, PodState* state, const api::Pod& pod,
                    const PodRuntimeStatus& runtime, bool terminal);

  ApiClient* api_;
  // With opts.kubelet_metrics, the instrumented decorators of the given services.
  std::unique_ptr<cri::RuntimeService> instrumented_runtime_;
  std::unique_ptr<cri::ImageService> instrumented_images_;
  cri::RuntimeService* runtime_;
  cri::ImageService* images_;
  const PodManagerOptions opts_;
  const metrics::KubeletMetrics* km_;
  VolumeManager volumes_;
  SysctlAllowlist sysctls_;
  StatusManager status_;
  ImagePuller puller_;
  std::unique_ptr<DefaultProbeRunner> default_probe_runner_;
  std::unique_ptr<Prober> prober_;
  std::unique_ptr<LifecycleHandlerRunner> hooks_;

  absl::Mutex mu_;
  absl::CondVar work_cv_;
  absl::CondVar timer_cv_;
  std::map<std::string, std::shared_ptr<PodState>> pods_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  // Earliest pending timed sync per pod (real time). One per pod suffices: every sync
  // re-arms the timers it still needs.
  std::map<std::string, absl::Time> timers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> container_to_pod_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  // Worker threads by id; a worker that exits when idle moves its thread to exited_ (joined
  // by the next MaybeAddWorkerLocked or by Stop).
  std::map<int, std::thread> workers_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> exited_ ABSL_GUARDED_BY(mu_);
  int next_worker_id_ ABSL_GUARDED_BY(mu_) = 0;
  int idle_workers_ ABSL_GUARDED_BY(mu_) = 0;  // waiting on work_cv_
  std::thread timer_thread_;
};

}  // namespace berth::kubelet
