// The CRI as C++ interfaces. The kubelet role talks to these; the gRPC server (cri/server)
// adapts them to the CRI socket; a remote implementation can forward to another runtime.
// Messages are the protobuf types generated from the pinned k8s.io/cri-api api.proto
// (package runtime.v1), so semantics follow the CRI field by field.
//
// Thread safety: implementations must be safe to call from many threads at once.
// Errors: absl::Status codes are the gRPC codes the CRI returns (NotFound for a missing ID,
// ...). An RPC an implementation cannot serve returns Unimplemented with a message.
#pragma once

#include <functional>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cri/api/api.pb.h"

namespace berth::cri {

namespace v1 = ::runtime::v1;

// Unary RuntimeService RPCs: (method name, request type, response type).
#define BERTH_CRI_RUNTIME_RPCS(X)                                                                \
  X(Version, VersionRequest, VersionResponse)                                                    \
  X(RunPodSandbox, RunPodSandboxRequest, RunPodSandboxResponse)                                  \
  X(StopPodSandbox, StopPodSandboxRequest, StopPodSandboxResponse)                               \
  X(RemovePodSandbox, RemovePodSandboxRequest, RemovePodSandboxResponse)                         \
  X(PodSandboxStatus, PodSandboxStatusRequest, PodSandboxStatusResponse)                         \
  X(ListPodSandbox, ListPodSandboxRequest, ListPodSandboxResponse)                               \
  X(CreateContainer, CreateContainerRequest, CreateContainerResponse)                            \
  X(StartContainer, StartContainerRequest, StartContainerResponse)                               \
  X(StopContainer, StopContainerRequest, StopContainerResponse)                                  \
  X(RemoveContainer, RemoveContainerRequest, RemoveContainerResponse)                            \
  X(ListContainers, ListContainersRequest, ListContainersResponse)                               \
  X(ContainerStatus, ContainerStatusRequest, ContainerStatusResponse)                            \
  X(UpdateContainerResources, UpdateContainerResourcesRequest, UpdateContainerResourcesResponse) \
  X(ReopenContainerLog, ReopenContainerLogRequest, ReopenContainerLogResponse)                   \
  X(ExecSync, ExecSyncRequest, ExecSyncResponse)                                                 \
  X(Exec, ExecRequest, ExecResponse)                                                             \
  X(Attach, AttachRequest, AttachResponse)                                                       \
  X(PortForward, PortForwardRequest, PortForwardResponse)                                        \
  X(ContainerStats, ContainerStatsRequest, ContainerStatsResponse)                               \
  X(ListContainerStats, ListContainerStatsRequest, ListContainerStatsResponse)                   \
  X(PodSandboxStats, PodSandboxStatsRequest, PodSandboxStatsResponse)                            \
  X(ListPodSandboxStats, ListPodSandboxStatsRequest, ListPodSandboxStatsResponse)                \
  X(UpdateRuntimeConfig, UpdateRuntimeConfigRequest, UpdateRuntimeConfigResponse)                \
  X(Status, StatusRequest, StatusResponse)                                                       \
  X(CheckpointContainer, CheckpointContainerRequest, CheckpointContainerResponse)                \
  X(ListMetricDescriptors, ListMetricDescriptorsRequest, ListMetricDescriptorsResponse)          \
  X(ListPodSandboxMetrics, ListPodSandboxMetricsRequest, ListPodSandboxMetricsResponse)          \
  X(RuntimeConfig, RuntimeConfigRequest, RuntimeConfigResponse)                                  \
  X(UpdatePodSandboxResources, UpdatePodSandboxResourcesRequest, UpdatePodSandboxResourcesResponse)

// Unary ImageService RPCs.
#define BERTH_CRI_IMAGE_RPCS(X)                           \
  X(ListImages, ListImagesRequest, ListImagesResponse)    \
  X(ImageStatus, ImageStatusRequest, ImageStatusResponse) \
  X(PullImage, PullImageRequest, PullImageResponse)       \
  X(RemoveImage, RemoveImageRequest, RemoveImageResponse) \
  X(ImageFsInfo, ImageFsInfoRequest, ImageFsInfoResponse)

#define BERTH_CRI_DECLARE_VIRTUAL_(name, req, resp)                        \
  virtual absl::StatusOr<v1::resp> name(const v1::req& request) {          \
    return absl::UnimplementedError(#name " is not implemented by berth"); \
  }

// CRI RuntimeService (api.proto `service RuntimeService`). Every method defaults to
// Unimplemented; implementations override what they serve.
class RuntimeService {
 public:
  virtual ~RuntimeService() = default;
  BERTH_CRI_RUNTIME_RPCS(BERTH_CRI_DECLARE_VIRTUAL_)

  // GetContainerEvents (server stream): calls `send` with each container or sandbox
  // lifecycle event (CONTAINER_CREATED/STARTED/STOPPED/DELETED_EVENT; for a sandbox the
  // container_id is the sandbox ID) that happens after the call starts, in order, until
  // `send` returns false (the client went away) or `cancelled()` returns true; then returns
  // OK. `cancelled` is polled at least once a second, the first time once the subscription
  // is in place (every later event is delivered). Blocks the calling thread.
  virtual absl::Status GetContainerEvents(
      const v1::GetEventsRequest& request,
      const std::function<bool(const v1::ContainerEventResponse&)>& send,
      const std::function<bool()>& cancelled) {
    return absl::UnimplementedError("GetContainerEvents is not implemented by berth");
  }
};

// CRI ImageService (api.proto `service ImageService`).
class ImageService {
 public:
  virtual ~ImageService() = default;
  BERTH_CRI_IMAGE_RPCS(BERTH_CRI_DECLARE_VIRTUAL_)
};

}  // namespace berth::cri
