#include "metrics/kubelet_metrics.h"

namespace berth::metrics {

std::vector<double> PodStartupDurationBuckets() {
  return {0.5, 1,   2,   3,   4,   5,   6,   8,   10,   20,   30,   45,  60,
          120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600};
}

std::vector<double> PodStartPhaseBuckets() { return ExponentialBuckets(0.001, 2, 15); }

KubeletMetrics RegisterKubeletMetrics(Registry* registry) {
  KubeletMetrics km;
  if (registry == nullptr) return km;
  const char* kSliHelp =
      "Duration in seconds to start a pod, excluding time to pull images and run init "
      "containers, measured from pod creation timestamp to when all its containers are "
      "reported as started and observed via watch";
  km.pod_start_sli = registry->AddHistogram("kubelet_pod_start_sli_duration_seconds", kSliHelp, {},
                                            PodStartupDurationBuckets());
  km.pod_start_total = registry->AddHistogram(
      "kubelet_pod_start_total_duration_seconds",
      "Duration in seconds to start a pod since creation, including time to pull images and run "
      "init containers, measured from pod creation timestamp to when all its containers are "
      "reported as started and observed via watch",
      {}, PodStartupDurationBuckets());
  km.pod_start = registry->AddHistogram(
      "kubelet_pod_start_duration_seconds",
      "Duration in seconds from kubelet seeing a pod for the first time to the pod starting to run",
      {}, PodStartupDurationBuckets());
  km.pod_worker = registry->AddHistogram(
      "kubelet_pod_worker_duration_seconds",
      "Duration in seconds to sync a single pod. Broken down by operation type: create, update, "
      "or sync",
      {"operation_type"}, DefaultBuckets());
  km.pod_worker_start = registry->AddHistogram(
      "kubelet_pod_worker_start_duration_seconds",
      "Duration in seconds from kubelet seeing a pod to starting a worker.", {}, DefaultBuckets());
  km.runtime_operations = registry->AddCounter(
      "kubelet_runtime_operations_total",
      "Cumulative number of runtime operations by operation type.", {"operation_type"});
  km.runtime_operations_duration = registry->AddHistogram(
      "kubelet_runtime_operations_duration_seconds",
      "Duration in seconds of runtime operations. Broken down by operation type.",
      {"operation_type"}, ExponentialBuckets(.005, 2.5, 14));
  km.runtime_operations_errors = registry->AddCounter(
      "kubelet_runtime_operations_errors_total",
      "Cumulative number of runtime operation errors by operation type.", {"operation_type"});
  km.cgroup_manager = registry->AddHistogram(
      "kubelet_cgroup_manager_duration_seconds",
      "Duration in seconds for cgroup manager operations. Broken down by method.",
      {"operation_type"}, DefaultBuckets());
  km.pod_start_phase = registry->AddHistogram(
      "berth_pod_start_phase_duration_seconds",
      "Duration in seconds of each phase of starting a pod (kubelet side: queue_wait, "
      "runtime_status, volumes, sandbox, image_check, container_config, container_create, "
      "container_start, status_write; runtime side: sandbox_files, sandbox_cgroup, "
      "sandbox_infra, cni_add, store_write, rootfs, oci_create, oci_start).",
      {"phase"}, PodStartPhaseBuckets());
  return km;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void ObservePhaseSeconds(const KubeletMetrics* km, const char* phase, double seconds) {
  if (km == nullptr || km->pod_start_phase == nullptr) return;
  km->pod_start_phase->WithLabelValues({phase})->Observe(seconds);
}

void ObservePhase(const KubeletMetrics* km, const char* phase,
                  std::chrono::steady_clock::time_point start) {
  ObservePhaseSeconds(km, phase, SecondsSince(start));
}

void ObserveCgroupManager(const KubeletMetrics* km, const char* operation,
                          std::chrono::steady_clock::time_point start) {
  if (km == nullptr || km->cgroup_manager == nullptr) return;
  km->cgroup_manager->WithLabelValues({operation})->Observe(SecondsSince(start));
}

}  // namespace berth::metrics
