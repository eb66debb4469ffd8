// The kubelet's own pod-start and runtime metrics, with upstream's names, help texts, labels
// and buckets (k8s.io/kubernetes v1.36.3 pkg/kubelet/metrics/metrics.go), plus berth's
// breakdown of one pod start into phases.
//
// Registered once from main() on the kubelet's /metrics Registry; the pod workers, the
// kubelet's CRI decorator and the runtime (sandbox and container phases, the pod cgroup)
// observe into them. Every pointer may be null in tests: Observe* helpers accept a null
// KubeletMetrics and do nothing.
//
// Example:
//   metrics::KubeletMetrics km = metrics::RegisterKubeletMetrics(&registry);
//   auto start = std::chrono::steady_clock::now();
//   ... CNI ADD ...
//   metrics::ObservePhase(&km, metrics::kPhaseCniAdd, start);
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "metrics/registry.h"

namespace berth::metrics {

// Values of the `phase` label of berth_pod_start_phase_duration_seconds, in the order a pod
// start runs them. Kubelet side (pod worker):
inline constexpr char kPhaseQueueWait[] = "queue_wait";              // event seen -> worker runs
inline constexpr char kPhaseRuntimeStatus[] = "runtime_status";      // CRI list + status reads
inline constexpr char kPhaseVolumes[] = "volumes";                   // SetUpPodVolumes
inline constexpr char kPhaseSandbox[] = "sandbox";                   // RunPodSandbox, whole RPC
inline constexpr char kPhaseImageCheck[] = "image_check";            // ImageStatus (/PullImage)
inline constexpr char kPhaseContainerConfig[] = "container_config";  // CRI config building
inline constexpr char kPhaseContainerCreate[] = "container_create";  // CreateContainer RPC
inline constexpr char kPhaseContainerStart[] = "container_start";    // StartContainer RPC
inline constexpr char kPhaseStatusWrite[] = "status_write";          // status set -> PATCH answered
// Runtime side (inside RunPodSandbox / CreateContainer / StartContainer):
inline constexpr char kPhaseSandboxFiles[] = "sandbox_files";    // dirs, /etc files, shm
inline constexpr char kPhaseSandboxCgroup[] = "sandbox_cgroup";  // pod cgroup creation
inline constexpr char kPhaseSandboxInfra[] = "sandbox_infra";    // berth-pause spawn
inline constexpr char kPhaseCniAdd[] = "cni_add";                // CNI ADD of the list
inline constexpr char kPhaseStoreWrite[] = "store_write";        // SQLite record write
inline constexpr char kPhaseRootfs[] = "rootfs";                 // overlay snapshot + spec
inline constexpr char kPhaseOciCreate[] = "oci_create";          // conmon + `runc create`
inline constexpr char kPhaseOciStart[] = "oci_start";            // `runc start`

// The families. Null members are not registered (tests); the Observe helpers skip them.
struct KubeletMetrics {
  // kubelet_pod_start_sli_duration_seconds (no labels; upstream podStartupDurationBuckets):
  // pod creationTimestamp -> the watch shows all its containers running, minus image pulls.
  HistogramFamily* pod_start_sli = nullptr;
  // kubelet_pod_start_total_duration_seconds: the same including image pulls.
  HistogramFamily* pod_start_total = nullptr;
  // kubelet_pod_start_duration_seconds: kubelet first saw the pod -> status Running computed.
  HistogramFamily* pod_start = nullptr;
  // kubelet_pod_worker_duration_seconds{operation_type}: one sync of one pod ("create",
  // "update", "sync", "terminated"); DefBuckets.
  HistogramFamily* pod_worker = nullptr;
  // kubelet_pod_worker_start_duration_seconds: pod seen -> its first sync starts.
  HistogramFamily* pod_worker_start = nullptr;
  // kubelet_runtime_operations_total / _duration_seconds / _errors_total {operation_type}:
  // every CRI call of the kubelet (operation names as upstream instrumented_services.go).
  CounterFamily* runtime_operations = nullptr;
  HistogramFamily* runtime_operations_duration = nullptr;
  CounterFamily* runtime_operations_errors = nullptr;
  // kubelet_cgroup_manager_duration_seconds{operation_type}: "create", "update", "destroy"
  // of pod cgroups (done by berth's runtime).
  HistogramFamily* cgroup_manager = nullptr;
  // berth_pod_start_phase_duration_seconds{phase}: see the kPhase* constants; 1 ms .. 16 s.
  HistogramFamily* pod_start_phase = nullptr;
};

// Registers every family of KubeletMetrics on `registry` (not owned; idempotent for the same
// registry) and returns pointers to them, valid as long as the registry.
KubeletMetrics RegisterKubeletMetrics(Registry* registry);

// Upstream's podStartupDurationBuckets (seconds): 0.5 1 2 3 4 5 6 8 10 20 30 45 60 120 ...
// 3600.
std::vector<double> PodStartupDurationBuckets();
// The buckets of berth_pod_start_phase_duration_seconds: 0.001 * 2^k, k = 0..14.
std::vector<double> PodStartPhaseBuckets();

// Seconds since `start` on the steady clock.
double SecondsSince(std::chrono::steady_clock::time_point start);

// Observes `seconds` into berth_pod_start_phase_duration_seconds{phase}. `km` may be null.
void ObservePhaseSeconds(const KubeletMetrics* km, const char* phase, double seconds);
// Observes the time since `start`. `km` may be null.
void ObservePhase(const KubeletMetrics* km, const char* phase,
                  std::chrono::steady_clock::time_point start);
// Observes the time since `start` into kubelet_cgroup_manager_duration_seconds{operation}.
void ObserveCgroupManager(const KubeletMetrics* km, const char* operation,
                          std::chrono::steady_clock::time_point start);

}  // namespace berth::metrics
