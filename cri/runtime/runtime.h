// berth's in-process CRI RuntimeService: pod sandboxes (berth-pause + pod cgroup + CNI) and
// containers (overlay rootfs + OCI spec + conmon/runc), persisted in SQLite so a restarted
// berth adopts what is running. Semantics follow containerd's CRI plugin and CRI-O; the
// contract is kubelet's use of the CRI (k8s.io/cri-api v0.36.3 api.proto).
//
// Thread safety: all methods may be called concurrently. A global mutex guards only the
// in-memory maps and record fields; blocking work (runc, CNI, mounts, waits) holds a
// per-sandbox / per-container operation mutex instead (lock order: sandbox op -> container
// op -> global). CreateContainer holds its sandbox's op mutex shared, so it never races a
// StopPodSandbox/RemovePodSandbox of the same pod.
//
// Include note: include this header (or cri/api/api.pb.h) BEFORE <signal.h>/<csignal>:
// their SIG* macros clash with the CRI `Signal` enum's value names.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cni/cni.h"
#include "cri/image/resolver.h"
#include "cri/oci/oci_runtime.h"
#include "cri/runtime/sandbox_infra.h"
#include "cri/runtime_service.h"
#include "cri/store/db.h"
#include "cri/streaming/server.h"

namespace berth::metrics {
class FsUsageCache;
struct KubeletMetrics;
}  // namespace berth::metrics

namespace berth::cri::runtime {

struct RuntimeOptions {
  // Persistent state: containers/<id>/{config.json,rootfs,upper,work}, sandboxes/<id>/.
  std::string root_dir = "/var/lib/berth";
  // Volatile state: netns/<id>, exits/<id> (conmon exit files), conmon/, runc/.
  std::string state_dir = "/run/berth";
  // berth-pause binary used by the default SandboxInfra.
  std::string pause_binary = "berth-pause";
  // Prefix prepended to every CRI cgroup_parent (cgroupfs driver), e.g. "/berth-e2e".
  std::string cgroup_root;
  // RuntimeHandler name -> OCI runtime binary. "" and "runc" map to runc unless overridden.
  std::map<std::string, std::string> runtime_handlers;
  // How streaming Exec starts commands: "native" (berth joins the container itself,
  // native_exec.h; `runc exec` for containers it cannot serve) or "runc" (always `runc exec`).
  std::string exec_mode = "native";
};

// Dependencies; not owned, must outlive the Runtime.
struct RuntimeDeps {
  store::Db* db = nullptr;                 // required
  image::ImageResolver* images = nullptr;  // required
  cni::NetworkPlugin* network = nullptr;   // required
  oci::OciRuntime* oci = nullptr;          // required; the default handler's runtime
  SandboxInfra* infra = nullptr;           // optional; default NewPauseInfra(pause_binary)
  // optional; where writable-layer usage (ContainerStats.writable_layer) is measured in the
  // background; default a cache of the Runtime's own, refreshed once a minute.
  metrics::FsUsageCache* fs_usage = nullptr;
  // optional; where the phases of RunPodSandbox / CreateContainer / StartContainer are
  // observed (berth_pod_start_phase_duration_seconds: sandbox_files, sandbox_cgroup,
  // sandbox_infra, cni_add, store_write, rootfs, oci_create, oci_start) and pod cgroup
  // creation / removal (kubelet_cgroup_manager_duration_seconds).
  const metrics::KubeletMetrics* kubelet_metrics = nullptr;
};

// The SQLite tables this runtime uses (idempotent DDL); pass to store::Db::Open together
// with other modules' schemas, or let Start() create them.
extern const char kRuntimeSchema[];

class Runtime : public RuntimeService, public streaming::StreamingRuntime {
 public:
  Runtime(RuntimeOptions opts, RuntimeDeps deps);
  ~Runtime() override;
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Creates the state dirs and tables, loads sandboxes and containers from the store,
  // reconciles them with reality (exit files written while berth was down -> EXITED; dead
  // pause -> sandbox NOTREADY) and starts the exit monitor (inotify on <state>/exits).
  // Must be called once before any RPC.
  absl::Status Start();

  // Registers `cb`, called (on the exit monitor thread, without locks held) with the ID of
  // every container whose exit was recorded. Callbacks must not block for long.
  void OnContainerExit(std::function<void(const std::string& container_id)> cb);

  absl::StatusOr<v1::VersionResponse> Version(const v1::VersionRequest& req) override;
  absl::StatusOr<v1::StatusResponse> Status(const v1::StatusRequest& req) override;
  absl::StatusOr<v1::RuntimeConfigResponse> RuntimeConfig(
      const v1::RuntimeConfigRequest& req) override;
  absl::StatusOr<v1::RunPodSandboxResponse> RunPodSandbox(
      const v1::RunPodSandboxRequest& req) override;
  absl::StatusOr<v1::StopPodSandboxResponse> StopPodSandbox(
      const v1::StopPodSandboxRequest& req) override;
  absl::StatusOr<v1::RemovePodSandboxResponse> RemovePodSandbox(
      const v1::RemovePodSandboxRequest& req) override;
  absl::StatusOr<v1::PodSandboxStatusResponse> PodSandboxStatus(
      const v1::PodSandboxStatusRequest& req) override;
  absl::StatusOr<v1::ListPodSandboxResponse> ListPodSandbox(
      const v1::ListPodSandboxRequest& req) override;
  absl::StatusOr<v1::CreateContainerResponse> CreateContainer(
      const v1::CreateContainerRequest& req) override;
  absl::StatusOr<v1::StartContainerResponse> StartContainer(
      const v1::StartContainerRequest& req) override;
  absl::StatusOr<v1::StopContainerResponse> StopContainer(
      const v1::StopContainerRequest& req) override;
  absl::StatusOr<v1::RemoveContainerResponse> RemoveContainer(
      const v1::RemoveContainerRequest& req) override;
  absl::StatusOr<v1::ListContainersResponse> ListContainers(
      const v1::ListContainersRequest& req) override;
  absl::StatusOr<v1::ContainerStatusResponse> ContainerStatus(
      const v1::ContainerStatusRequest& req) override;
  absl::StatusOr<v1::ExecSyncResponse> ExecSync(const v1::ExecSyncRequest& req) override;
  absl::StatusOr<v1::UpdateContainerResourcesResponse> UpdateContainerResources(
      const v1::UpdateContainerResourcesRequest& req) override;
  // Records network_config.pod_cidr (comma-separated, one CIDR per address family, as
  // kubelet sends Node.spec.podCIDRs). Sandboxes created afterwards pass them to CNI plugins
  // with capability ipRanges, as containerd does. An empty pod_cidr keeps the previous value.
  absl::StatusOr<v1::UpdateRuntimeConfigResponse> UpdateRuntimeConfig(
      const v1::UpdateRuntimeConfigRequest& req) override;

  // Streaming (streaming_rpcs.cc): Exec/Attach/PortForward validate the request (container
  // running / sandbox ready) and return a single-use URL of the streaming server; the
  // StreamingRuntime methods run the session's process (runc exec, conmon attach socket,
  // a TCP connection inside the sandbox netns). Unavailable until SetStreamingServer().
  absl::StatusOr<v1::ExecResponse> Exec(const v1::ExecRequest& req) override;
  absl::StatusOr<v1::AttachResponse> Attach(const v1::AttachRequest& req) override;
  absl::StatusOr<v1::PortForwardResponse> PortForward(const v1::PortForwardRequest& req) override;
  absl::StatusOr<std::unique_ptr<streaming::StreamProcess>> StartExec(
      const v1::ExecRequest& req) override;
  absl::StatusOr<std::unique_ptr<streaming::StreamProcess>> StartAttach(
      const v1::AttachRequest& req) override;
  absl::StatusOr<int> DialPort(const std::string& sandbox_id, int32_t port) override;
  // The server whose URLs Exec/Attach/PortForward return; not owned; set once after Start().
  void SetStreamingServer(streaming::Server* server) { streaming_.store(server); }

  // container_log.cc. ReopenContainerLog asks the container's conmon to reopen its log file
  // (after kubelet's log rotation renamed it) and returns once the new file exists.
  // FailedPrecondition when the container is not running.
  absl::StatusOr<v1::ReopenContainerLogResponse> ReopenContainerLog(
      const v1::ReopenContainerLogRequest& req) override;

  // stats.cc: cgroup numbers as /metrics/cadvisor reports them (metrics/cgroup_stats);
  // usage_nano_cores is the rate since the previous stats call for the same container or
  // pod (0 on the first). Writable layer usage is the size of the container's overlay upper
  // directory as last measured by RuntimeDeps::fs_usage in the background (a call never walks
  // the tree; `timestamp` is when it was measured; omitted until the first measurement, which
  // starts when a container is first asked about). Stats of every container in the store,
  // exited ones with attributes only.
  absl::StatusOr<v1::ContainerStatsResponse> ContainerStats(
      const v1::ContainerStatsRequest& req) override;
  absl::StatusOr<v1::ListContainerStatsResponse> ListContainerStats(
      const v1::ListContainerStatsRequest& req) override;
  absl::StatusOr<v1::PodSandboxStatsResponse> PodSandboxStats(
      const v1::PodSandboxStatsRequest& req) override;
  absl::StatusOr<v1::ListPodSandboxStatsResponse> ListPodSandboxStats(
      const v1::ListPodSandboxStatsRequest& req) override;

  // runtime_config.cc. UpdatePodSandboxResources writes the pod-level limits (CPU
  // shares/quota/period, memory limit, cpuset) to the sandbox's cgroup (v1 and v2). NotFound
  // for an unknown sandbox.
  absl::StatusOr<v1::UpdatePodSandboxResourcesResponse> UpdatePodSandboxResources(
      const v1::UpdatePodSandboxResourcesRequest& req) override;

  // checkpoint.cc: `runc checkpoint --leave-running` (CRIU) of a running container, written
  // as a checkpoint archive (layout in cri/runtime/checkpoint.h) to req.location; the
  // container keeps running. req.timeout in seconds (0: 2 minutes) bounds the CRIU dump.
  // NotFound for an unknown container, FailedPrecondition when it is not running,
  // InvalidArgument for an empty location, Internal with the end of CRIU's dump.log when the
  // dump fails, DeadlineExceeded on timeout. On any error nothing is left at the location
  // and the work dir (<root_dir>/checkpoint-work/<id>.*) is removed.
  absl::StatusOr<v1::CheckpointContainerResponse> CheckpointContainer(
      const v1::CheckpointContainerRequest& req) override;

  // events.cc: see RuntimeService::GetContainerEvents. Events carry the sandbox status and
  // the statuses of the sandbox's containers at the time of the event. A subscriber that
  // falls more than kMaxBufferedEvents behind misses the oldest events.
  absl::Status GetContainerEvents(
      const v1::GetEventsRequest& req,
      const std::function<bool(const v1::ContainerEventResponse&)>& send,
      const std::function<bool()>& cancelled) override;
  static constexpr size_t kMaxBufferedEvents = 4096;

  const RuntimeOptions& options() const { return opts_; }

  struct SandboxRec;
  struct ContainerRec;

 private:
  std::shared_ptr<SandboxRec> FindSandbox(const std::string& id_or_prefix);
  std::shared_ptr<ContainerRec> FindContainer(const std::string& id_or_prefix);
  absl::Status SetupSandbox(SandboxRec* sb);
  void TeardownSandbox(SandboxRec* sb);  // best effort, idempotent
  absl::Status StopSandboxLocked(SandboxRec* sb);
  absl::Status CreateContainerLocked(ContainerRec* c, SandboxRec* sb);
  absl::Status StopContainerLocked(ContainerRec* c, int64_t timeout_s);
  absl::Status RemoveContainerLocked(ContainerRec* c);
  absl::StatusOr<oci::OciRuntime*> RuntimeFor(const std::string& handler);
  oci::OciRuntime* RuntimeOf(const ContainerRec& c);
  absl::Status SaveSandbox(const SandboxRec& sb) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SaveContainer(const ContainerRec& c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Load();
  void MonitorLoop();
  void HandleExit(const std::string& id);
  std::string ExitDir() const;
  // Records a lifecycle event of container (or sandbox) `id` in sandbox `sandbox_id`.
  // Must be called without mu_ held.
  void EmitEvent(v1::ContainerEventType type, const std::string& id, const std::string& sandbox_id);
  absl::StatusOr<v1::ContainerStats> StatsOf(const ContainerRec& c);
  // Tells deps_.fs_usage the upper directories of all created containers (forgetting
  // removed ones). Must be called without mu_ held.
  void WantWritableLayers();

  RuntimeOptions opts_;
  RuntimeDeps deps_;
  std::unique_ptr<SandboxInfra> own_infra_;
  std::unique_ptr<metrics::FsUsageCache> own_fs_usage_;  // when deps_.fs_usage was null
  int current_oom_score_adj_ = 0;
  bool rro_supported_ = false;            // set once in Start()
  uint64_t cap_bounding_ = ~uint64_t{0};  // berth's CapBnd

  absl::Mutex mu_;
  absl::CondVar exit_cv_;  // signalled (with mu_) whenever a container exit is recorded
  std::map<std::string, std::shared_ptr<SandboxRec>> sandboxes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<ContainerRec>> containers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> sandbox_names_ ABSL_GUARDED_BY(mu_);    // name key -> id
  std::map<std::string, std::string> container_names_ ABSL_GUARDED_BY(mu_);  // name key -> id
  std::map<std::string, std::unique_ptr<oci::OciRuntime>> handler_runtimes_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void(const std::string&)>> exit_cbs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> pod_cidrs_ ABSL_GUARDED_BY(mu_);  // from UpdateRuntimeConfig

  absl::Mutex events_mu_;  // never held with mu_
  std::deque<std::pair<uint64_t, v1::ContainerEventResponse>> events_ ABSL_GUARDED_BY(events_mu_);
  uint64_t next_event_seq_ ABSL_GUARDED_BY(events_mu_) = 0;

  absl::Mutex cpu_samples_mu_;
  // ID -> (timestamp ns, cumulative CPU ns) of the previous stats read, for usage_nano_cores.
  std::map<std::string, std::pair<int64_t, uint64_t>> cpu_samples_ ABSL_GUARDED_BY(cpu_samples_mu_);

  std::atomic<streaming::Server*> streaming_{nullptr};
  int inotify_fd_ = -1;
  int wake_fd_ = -1;  // eventfd to stop the monitor
  std::thread monitor_;
};

// Helpers shared with tests.

// A new random 64-hex-character ID (256 bits from getrandom).
std::string NewId();
// True when every key/value of `selector` is present in `labels`.
bool MatchLabels(const google::protobuf::Map<std::string, std::string>& labels,
                 const google::protobuf::Map<std::string, std::string>& selector);
// Idempotence keys: same key = same CRI object (retried request).
std::string SandboxNameKey(const v1::PodSandboxMetadata& m);
std::string ContainerNameKey(const std::string& sandbox_id, const v1::ContainerMetadata& m);
// /etc/resolv.conf content for a DNSConfig; empty when the config is empty (caller copies
// the host's file then).
std::string ResolvConf(const v1::DNSConfig& dns);

}  // namespace berth::cri::runtime
