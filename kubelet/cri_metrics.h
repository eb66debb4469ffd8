// The CRI ListMetricDescriptors / ListPodSandboxMetrics RPCs (k8s.io/cri-api api.proto,
// KEP-2371 "cAdvisor-less, CRI-full container and pod stats"): berth's eBPF per-cgroup
// counters, the same numbers as the berth_cgroup_* families on /metrics, per PodSandbox and
// container, so that `crictl metricsp` and a kubelet with PodAndContainerStatsFromCRI (its
// criMetricsCollector) see them.
//
// CRI metric values are unsigned integers, so families measured in seconds on /metrics are
// served in nanoseconds here (berth_cgroup_cpu_nanoseconds_total) and a histogram is served
// as its sum and count (berth_cgroup_runqueue_latency_nanoseconds_total,
// berth_cgroup_runqueue_latency_samples_total), without buckets. Label keys are
// container, namespace, pod (container "" on the pod's own cgroup).
//
// Example (main()):
//   kubelet::CriMetricsService service(&runtime, [&] { return collectors->Snapshot(); });
//   cri::server::CriServer server(&service, &images, options);
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cri/runtime_service.h"
#include "ebpf/collectors.h"
#include "kubelet/stats_source.h"

namespace berth::kubelet {

// One CRI metric, as reported for every PodSandbox and container.
struct CriMetricDef {
  const char* name;
  const char* help;
  runtime::v1::MetricType type;
  uint64_t (*value)(const ebpf::CgroupStats&);
};

// The metrics ListMetricDescriptors describes, in the order ListPodSandboxMetrics reports them.
const std::vector<CriMetricDef>& CriMetricDefs();

// ListPodSandboxMetrics' answer from a listing of the runtime and an eBPF snapshot (a pure
// function): one PodSandboxMetrics per pod-level entry of `targets.cadvisor`, with a
// ContainerMetrics per running container; an entry whose cgroup id (`cgroup_id` of its
// path, see CgroupOwners) has no counters gets zeros. `timestamp_ns` stamps every metric.
runtime::v1::ListPodSandboxMetricsResponse BuildPodSandboxMetrics(
    const StatsTargets& targets, const ebpf::StatsSnapshot& snapshot,
    const std::function<uint64_t(const std::string&)>& cgroup_id, int64_t timestamp_ns);

// The cgroup subtree to give the eBPF collectors (ebpf::Collectors::Track) for a pod whose
// sandbox cgroup is `pod_cgroup` (relative to the hierarchy roots): the prefix through the
// first component that starts with "kubepods" (the kubelet's layout, cgroupfs or systemd:
// "/r/kubepods/besteffort/pod<uid>" -> "/r/kubepods"), else the pod cgroup's parent
// ("/berth/<id>" -> "/berth"); "" for "" or "/".
std::string TrackedSubtreeOf(const std::string& pod_cgroup);

// A RuntimeService that forwards every RPC to `base` and serves ListMetricDescriptors and
// ListPodSandboxMetrics itself. `snapshot` returns the eBPF counters, or nullopt when the
// collectors are not loaded (then both RPCs answer with no metrics, not an error). After
// each successful RunPodSandbox, `track` (when set) gets the new sandbox's cgroup path (from
// its verbose PodSandboxStatus): a CRI client such as the upstream kubelet chooses the
// cgroup parent. Thread-safe when `base`, `snapshot` and `track` are. None is owned.
class CriMetricsService : public cri::RuntimeService {
 public:
  // `cache` (optional, not owned) spares ListPodSandboxMetrics the per-pod verbose status
  // calls (see ListStatsTargets).
  CriMetricsService(cri::RuntimeService* base,
                    std::function<std::optional<ebpf::StatsSnapshot>()> snapshot,
                    std::function<void(const std::string& pod_cgroup)> track = nullptr,
                    StatsInfoCache* cache = nullptr);

  // Every RPC goes through Handle(): the template forwards to `base_`, the two overloads
  // below serve the metrics RPCs.
#define BERTH_CRI_FORWARD_(name, req, resp)                                          \
  absl::StatusOr<runtime::v1::resp> name(const runtime::v1::req& request) override { \
    return Handle(request, &cri::RuntimeService::name);                              \
  }
  BERTH_CRI_RUNTIME_RPCS(BERTH_CRI_FORWARD_)
#undef BERTH_CRI_FORWARD_

 private:
  template <typename Req, typename Resp>
  absl::StatusOr<Resp> Handle(const Req& request,
                              absl::StatusOr<Resp> (cri::RuntimeService::*rpc)(const Req&)) {
    return (base_->*rpc)(request);
  }
  absl::StatusOr<runtime::v1::ListMetricDescriptorsResponse> Handle(
      const runtime::v1::ListMetricDescriptorsRequest& request,
      absl::StatusOr<runtime::v1::ListMetricDescriptorsResponse> (cri::RuntimeService::*)(
          const runtime::v1::ListMetricDescriptorsRequest&));
  absl::StatusOr<runtime::v1::ListPodSandboxMetricsResponse> Handle(
      const runtime::v1::ListPodSandboxMetricsRequest& request,
      absl::StatusOr<runtime::v1::ListPodSandboxMetricsResponse> (cri::RuntimeService::*)(
          const runtime::v1::ListPodSandboxMetricsRequest&));

  absl::StatusOr<runtime::v1::RunPodSandboxResponse> Handle(
      const runtime::v1::RunPodSandboxRequest& request,
      absl::StatusOr<runtime::v1::RunPodSandboxResponse> (cri::RuntimeService::*)(
          const runtime::v1::RunPodSandboxRequest&));

  cri::RuntimeService* const base_;
  const std::function<std::optional<ebpf::StatsSnapshot>()> snapshot_;
  const std::function<void(const std::string&)> track_;
  StatsInfoCache* const cache_;
};

}  // namespace berth::kubelet
