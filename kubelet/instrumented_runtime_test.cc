#include "kubelet/instrumented_runtime.h"

#include "gtest/gtest.h"

namespace berth::kubelet {
namespace {

TEST(InstrumentedRuntimeTest, UpstreamOperationNames) {
  EXPECT_EQ(RuntimeOperationName("RunPodSandbox"), "run_podsandbox");
  EXPECT_EQ(RuntimeOperationName("PodSandboxStatus"), "podsandbox_status");
  EXPECT_EQ(RuntimeOperationName("ListPodSandboxStats"), "list_podsandbox_stats");
  EXPECT_EQ(RuntimeOperationName("CreateContainer"), "create_container");
  EXPECT_EQ(RuntimeOperationName("UpdateContainerResources"), "update_container");
  EXPECT_EQ(RuntimeOperationName("ImageFsInfo"), "image_fs_info");
  EXPECT_EQ(RuntimeOperationName("Version"), "version");
  EXPECT_EQ(RuntimeOperationName("GetContainerEvents"), "get_container_events");
}

class FailingVersion : public cri::RuntimeService {
 public:
  absl::StatusOr<cri::v1::VersionResponse> Version(const cri::v1::VersionRequest&) override {
    return absl::UnavailableError("down");
  }
};

TEST(InstrumentedRuntimeTest, CountsCallsAndErrors) {
  metrics::Registry r;
  metrics::KubeletMetrics km = metrics::RegisterKubeletMetrics(&r);
  FailingVersion inner;
  InstrumentedRuntimeService rs(&inner, &km);
  EXPECT_FALSE(rs.Version({}).ok());
  EXPECT_EQ(rs.Status({}).status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(km.runtime_operations->WithLabelValues({"version"})->Value(), 1);
  EXPECT_EQ(km.runtime_operations_errors->WithLabelValues({"version"})->Value(), 1);
  EXPECT_EQ(km.runtime_operations->WithLabelValues({"status"})->Value(), 1);
  EXPECT_EQ(km.runtime_operations_duration->WithLabelValues({"version"})->Count(), 1u);
}

}  // namespace
}  // namespace berth::kubelet
