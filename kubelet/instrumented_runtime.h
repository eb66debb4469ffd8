// The kubelet's CRI decorator (upstream pkg/kubelet/kuberuntime/instrumented_services.go):
// every RuntimeService / ImageService call the kubelet makes counts into
// kubelet_runtime_operations_total{operation_type}, its latency into
// kubelet_runtime_operations_duration_seconds{operation_type}, and a failure into
// kubelet_runtime_operations_errors_total{operation_type}, with upstream's operation names
// ("run_podsandbox", "create_container", "list_containers", ...).
//
// Example:
//   metrics::KubeletMetrics km = metrics::RegisterKubeletMetrics(&registry);
//   InstrumentedRuntimeService runtime(&real_runtime, &km);
//   runtime.RunPodSandbox(req);  // counted as run_podsandbox
#pragma once

#include <functional>
#include <string>

#include "cri/runtime_service.h"
#include "metrics/kubelet_metrics.h"

namespace berth::kubelet {

// Upstream's operation_type for a CRI method name ("RunPodSandbox" -> "run_podsandbox",
// "UpdateContainerResources" -> "update_container", "GetContainerEvents" ->
// "get_container_events"). Pure.
std::string RuntimeOperationName(const std::string& method);

// Records one finished operation (`km` may be null: nothing).
void RecordRuntimeOperation(const metrics::KubeletMetrics* km, const std::string& operation,
                            double seconds, bool failed);

// Forwards every RuntimeService call to `inner` and records it. Neither pointer is owned;
// both must outlive this object. Thread-safe as `inner` is.
class InstrumentedRuntimeService : public cri::RuntimeService {
 public:
  InstrumentedRuntimeService(cri::RuntimeService* inner, const metrics::KubeletMetrics* km);

#define BERTH_INSTRUMENTED_DECLARE_(name, req, resp) \
  absl::StatusOr<cri::v1::resp> name(const cri::v1::req& request) override;
  BERTH_CRI_RUNTIME_RPCS(BERTH_INSTRUMENTED_DECLARE_)

  absl::Status GetContainerEvents(
      const cri::v1::GetEventsRequest& request,
      const std::function<bool(const cri::v1::ContainerEventResponse&)>& send,
      const std::function<bool()>& cancelled) override;

 private:
  cri::RuntimeService* inner_;
  const metrics::KubeletMetrics* km_;
};

// The same for the ImageService.
class InstrumentedImageService : public cri::ImageService {
 public:
  InstrumentedImageService(cri::ImageService* inner, const metrics::KubeletMetrics* km);

  BERTH_CRI_IMAGE_RPCS(BERTH_INSTRUMENTED_DECLARE_)
#undef BERTH_INSTRUMENTED_DECLARE_

 private:
  cri::ImageService* inner_;
  const metrics::KubeletMetrics* km_;
};

}  // namespace berth::kubelet
